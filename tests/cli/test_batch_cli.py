"""`xpool batch` as a subprocess: what it refuses before it sends anything (exit 2, one line
each), and a gateway that is not there (exit 3 after retries)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from xpool.local.runtime import free_port

QUICKSTART = str(EXAMPLES / "quickstart.yaml")


@pytest.fixture
def requests_file(tmp_path: Path) -> Path:
    path = tmp_path / "requests.jsonl"
    path.write_text('{"custom_id": "1", "body": {"input": "hello"}}\n')
    return path


def test_unknown_model_names_the_known_ones(xpool, requests_file, tmp_path):
    result = xpool(
        "batch", "submit", QUICKSTART, "nope", str(requests_file), "--state-dir", str(tmp_path)
    )
    assert result.returncode == 2, result.stderr
    assert "no model 'nope' (models: chat, embedding)" in result.stderr


def test_a_line_for_another_model_is_located(xpool, tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"custom_id": "1"}\n{"custom_id": "2", "body": {"model": "chat"}}\n')
    gateway = f"http://127.0.0.1:{free_port()}"
    result = xpool("batch", "submit", QUICKSTART, "embedding", str(path), "--gateway", gateway)
    assert result.returncode == 2, result.stderr
    assert f"{path}:2:1" in result.stderr
    assert "one model per batch" in result.stderr


def test_without_a_running_up_it_says_how_to_reach_a_gateway(xpool, requests_file, tmp_path):
    result = xpool(
        "batch", "submit", QUICKSTART, "embedding", str(requests_file), "--state-dir", str(tmp_path)
    )
    assert result.returncode == 2, result.stderr
    assert "no running `xpool up` for platform quickstart" in result.stderr
    assert "--gateway" in result.stderr


def test_a_file_that_is_not_utf8_is_located(xpool, tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"custom_id": "1"}\n{"custom_id": "\xff"}\n')
    gateway = f"http://127.0.0.1:{free_port()}"
    result = xpool("batch", "submit", QUICKSTART, "embedding", str(path), "--gateway", gateway)
    assert result.returncode == 2, result.stderr
    assert f"{path}:2:1" in result.stderr and "not UTF-8" in result.stderr


def test_bad_metadata_is_a_usage_error(xpool, requests_file):
    result = xpool(
        "batch", "submit", QUICKSTART, "embedding", str(requests_file), "--metadata", "novalue"
    )
    assert result.returncode == 2
    assert "KEY=VALUE" in result.stderr


def test_a_gateway_that_does_not_answer_is_a_remote_failure(xpool):
    gateway = f"http://127.0.0.1:{free_port()}"
    result = xpool("batch", "status", QUICKSTART, "batch_x", "--gateway", gateway)
    assert result.returncode == 3, result.stderr
    assert gateway in result.stderr
    assert result.stdout == ""
