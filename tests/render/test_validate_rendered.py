"""`xpool validate --rendered` and `render` run the built-in checks on every rendered object."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLES


@pytest.mark.parametrize("example", ["platform.yaml", "ascend-only.yaml"])
def test_examples_render_sets_pass_every_check(xpool, example):
    result = xpool("validate", str(EXAMPLES / example), "--rendered")
    assert result.returncode == 0, result.stderr
    assert "rendered objects pass the checks" in result.stderr


def test_unknown_kubernetes_version_is_a_usage_error(xpool):
    result = xpool("render", str(EXAMPLES / "platform.yaml"), "--kubernetes-version", "1.12")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "1.12 is not supported" in result.stderr and "1.37" in result.stderr


def test_a_name_too_long_for_kubernetes_is_refused_before_anything_prints(xpool, tmp_path):
    # 40 characters pass the platform file's own rule; the rendered worker Job name
    # (<platform>-<tier>-<pool>-workers) then exceeds what Volcano accepts.
    text = (EXAMPLES / "ascend-only.yaml").read_text()
    long_pool = "p" + "x" * 39
    platform = tmp_path / "long.yaml"
    first_pool = text.split("- name: ", 1)[1].split("\n", 1)[0].strip()
    platform.write_text(text.replace(first_pool, long_pool))
    result = xpool("render", str(platform))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert all(line.startswith("error: ") for line in result.stderr.splitlines() if line)
