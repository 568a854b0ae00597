"""`xpool validate` on inputs that cannot be committed as corpus files: bad bytes, special files.

Each must give exit 2, one located error line, nothing on stdout and never a traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

VALID = """\
apiVersion: xpool.io/v1alpha1
kind: Platform
metadata:
  name: mini
spec:
  pools:
    - name: gpu
      vendor: nvidia
      accelerator: rtx-5090
      nodes: 1
      acceleratorsPerNode: 8
  models:
    - name: chat
      tier: P1
      architecture: qwen2.5-7b-instruct
      versions:
        - version: "1.0.0"
          source: hf://Qwen/Qwen2.5-7B-Instruct
      demand:
        peakQps: 10
        baseQps: 2
"""


def validate(file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xpool.cli", "validate", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a refused input, after the checks every refusal must pass."""
    report = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, report
    assert result.returncode == 2, report
    assert result.stdout == "", report
    lines = result.stderr.splitlines()
    assert len(lines) == 1, report
    return lines[0]


def test_the_base_file_is_valid(tmp_path: Path) -> None:
    file = tmp_path / "platform.yaml"
    file.write_text(VALID, encoding="utf-8")
    assert validate(file).returncode == 0


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        (VALID.replace("name: chat", "name: ch\xe9t").encode("latin-1"), "13:15", "byte 0xe9"),
        (VALID.encode("utf-16"), "1:1", "the file is UTF-16; save it as UTF-8"),
        (VALID.encode("utf-32"), "1:1", "the file is UTF-32; save it as UTF-8"),
        (VALID.replace("name: chat", "name: ch\0at").encode(), "13:15", "U+0000"),
        (VALID.replace("name: mini", "name: m\x07ini").encode(), "4:10", "U+0007"),
    ],
    ids=["latin-1", "utf-16", "utf-32", "nul-byte", "control-character"],
)
def test_unreadable_bytes_are_located(
    tmp_path: Path, data: bytes, where: str, message: str
) -> None:
    file = tmp_path / "platform.yaml"
    file.write_bytes(data)
    line = one_error(validate(file))
    assert re.match(rf"^error: {re.escape(str(file))}:{where}: ", line), line
    assert message in line, line


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("hf://Qwen/Qwen2.5-7B-Instruct", "s3://AKIAEXAMPLE:examplesecret@bucket/qwen"),
        ("hf://Qwen/Qwen2.5-7B-Instruct", "ftp://user:examplesecret@host/qwen"),
        ("  models:", "  xinference:\n    endpoint: http://admin:examplesecret@x:9997\n  models:"),
        ("  models:", "  xinference:\n    endpoint: ftp://admin:examplesecret@x:9997\n  models:"),
    ],
    ids=["s3-source", "bad-scheme-source", "endpoint", "bad-scheme-endpoint"],
)
def test_credentials_are_refused_and_never_echoed(tmp_path: Path, old: str, new: str) -> None:
    file = tmp_path / "platform.yaml"
    file.write_text(VALID.replace(old, new), encoding="utf-8")
    result = validate(file)
    line = one_error(result)
    assert "examplesecret" not in result.stdout + result.stderr, line
    assert "***@" in line, line


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "platform.yaml"
    os.mkfifo(fifo)
    line = one_error(validate(fifo))
    assert line == f"error: {fifo}: is a FIFO, not a regular file; give the path of a file"


def test_a_device_is_refused_without_reading_it() -> None:
    line = one_error(validate(Path("/dev/zero")))
    assert "/dev/zero: is a character device, not a regular file" in line, line


def test_an_oversized_platform_file_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "platform.yaml"
    file.write_text(VALID + "#" * (16 * 1024 * 1024), encoding="utf-8")
    line = one_error(validate(file))
    assert "at most 16777216 bytes (16 MiB) are read" in line, line


@pytest.mark.parametrize("kind", ["fifo", "device", "oversized"])
def test_a_special_or_oversized_config_json_is_refused(tmp_path: Path, kind: str) -> None:
    config = tmp_path / "model" / "config.json"
    config.parent.mkdir()
    if kind == "fifo":
        os.mkfifo(config)
    elif kind == "device":
        config.symlink_to("/dev/zero")
    else:
        config.write_text("{}" + " " * (4 * 1024 * 1024), encoding="utf-8")
    file = tmp_path / "platform.yaml"
    arch = "architecture:\n        config: model/config.json"
    file.write_text(VALID.replace("architecture: qwen2.5-7b-instruct", arch), encoding="utf-8")
    line = one_error(validate(file))
    assert re.match(rf"^error: {re.escape(str(file))}:16:17: ", line), line
    expected = {
        "fifo": "is a FIFO, not a regular file",
        "device": "is a character device, not a regular file",
        "oversized": "at most 4194304 bytes (4 MiB) are read",
    }[kind]
    assert expected in line, line


@pytest.mark.parametrize("namespace", ["kube-system", "volcano-system"])
def test_a_system_namespace_flag_is_refused(tmp_path: Path, namespace: str) -> None:
    file = tmp_path / "platform.yaml"
    file.write_text(VALID, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "xpool.cli", "render", "-n", namespace, str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    line = one_error(result)
    assert line == (
        f"error: -n/--namespace: '{namespace}' is a system namespace; "
        "give xpool a namespace of its own"
    ), line
