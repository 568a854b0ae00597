"""`xpool apply` checks every input before its first write: model sources (s3:// ones against
a real S3 server, tests/s3_server.py), the sources a remote Xinference cannot read, the
Xinference API key's variable. A refused apply leaves the cluster untouched."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube.conftest import NS, ONE_POOL, run
from tests.s3_server import S3Server, moto_python
from xpool.local.runtime import free_port


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    python = moto_python()
    if python is None:
        pytest.skip("moto_server is not installed (scripts/test installs it, or names the command)")
    server = S3Server(python, tmp_path_factory.mktemp("s3") / "moto.log").start()
    try:
        server.put("chat/1.0.0/config.json", b"{}")
        yield server
    finally:
        server.stop()


def platform_with(tmp_path: Path, chat_source: str, endpoint: str, api_key_env: str = "") -> Path:
    """The Ascend platform with the chat model's stable version at `chat_source`, its other
    sources on a hub, and a remote Xinference at `endpoint`."""
    text = ONE_POOL.replace(
        '{version: "1.0.0", source: "hf://Qwen/Qwen2.5-7B-Instruct"',
        f'{{version: "1.0.0", source: "{chat_source}"',
    ).replace("file:///models/bge-m3", "hf://BAAI/bge-m3")
    key = f", apiKeyEnv: {api_key_env}" if api_key_env else ""
    text = text.replace("  images:\n", f"  xinference: {{endpoint: {endpoint}{key}}}\n  images:\n")
    path = tmp_path / "platform.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def apply(path: Path, kubeconfig: Path, tmp_path: Path, env: dict[str, str]):
    env = {**env, "XDG_STATE_HOME": str(tmp_path / "state")}
    return run("apply", str(path), "--kubeconfig", str(kubeconfig), "-o", "json", env=env)


def assert_untouched(cluster) -> None:
    assert cluster.requests == []  # the cluster was not even contacted
    assert cluster.get("v1", "Namespace", NS) is None


def error_line(stderr: str) -> str:
    (line,) = [x for x in stderr.splitlines() if x.startswith("error: ")]
    return line


def test_a_missing_s3_source_stops_apply_before_the_first_write(cluster, kubeconfig, s3, tmp_path):
    path = platform_with(tmp_path, "s3://models/chat/9.9.9", f"http://127.0.0.1:{free_port()}")
    result = apply(path, kubeconfig, tmp_path, s3.env())
    assert result.returncode == 2, result.stderr
    assert error_line(result.stderr) == (
        "error: model 'chat' version '1.0.0': s3://models/chat/9.9.9: no objects under "
        "s3://models/chat/9.9.9/; upload the model there or correct source"
    )
    assert result.stdout == ""
    assert_untouched(cluster)


def test_a_failing_s3_endpoint_stops_apply_with_exit_3_before_the_first_write(
    cluster, kubeconfig, tmp_path
):
    path = platform_with(tmp_path, "s3://models/chat/1.0.0", f"http://127.0.0.1:{free_port()}")
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "not-printed-secret",
    }
    result = apply(path, kubeconfig, tmp_path, env)
    assert result.returncode == 3, result.stderr
    assert "still failed after 4 attempts" in error_line(result.stderr)
    assert_untouched(cluster)


@pytest.mark.parametrize(
    ("source", "api_key_env", "expected"),
    [
        ("s3://models/chat/1.0.0", "", "s3:// sources are served from this host's state"),
        (
            "hf://Qwen/Qwen2.5-7B-Instruct",
            "XPOOL_TEST_UNSET_KEY",
            "XPOOL_TEST_UNSET_KEY is not set",
        ),
    ],
)
def test_inputs_of_a_remote_xinference_are_checked_before_the_first_write(
    cluster, kubeconfig, tmp_path, source, api_key_env, expected
):
    assert "XPOOL_TEST_UNSET_KEY" not in os.environ
    path = platform_with(tmp_path, source, "http://xinference.example:9997", api_key_env)
    result = apply(path, kubeconfig, tmp_path, {})
    assert result.returncode == 2, result.stderr
    assert expected in error_line(result.stderr)
    assert_untouched(cluster)


def test_with_valid_inputs_the_objects_are_written_first(cluster, kubeconfig, s3, tmp_path):
    """The checks pass (the s3:// source is downloaded), the objects are applied, and only
    then is the Xinference contacted (here nothing listens: exit 3)."""
    xinference = f"http://127.0.0.1:{free_port()}"
    path = platform_with(tmp_path, "s3://models/chat/1.0.0", xinference)
    result = apply(path, kubeconfig, tmp_path, s3.env())
    assert result.returncode == 3, result.stderr
    assert error_line(result.stderr).startswith(f"error: cannot reach Xinference at {xinference}")
    assert cluster.get("v1", "Namespace", NS) is not None
    copy = tmp_path / "state" / "xpool" / "npu-qa" / "models" / "s3" / "models" / "chat" / "1.0.0"
    assert (copy / "config.json").read_bytes() == b"{}"
