"""`xpool validate` on a corpus of platform files that each hold exactly one defect.

Every file in `malformed/` starts with header comments saying what the error must look like:

    # expect-path: spec.models[0].tier      dotted field path on the error line, or `-` for none
    # expect-line: 17                       1-based line the error must point at
    # expect-message: unknown tier 'P9'     substring of the message (may repeat: all must match)
    # expect-errors: 2                      optional: number of error lines (default 1)

Every user error must be `error: FILE:LINE:COL: field.path: message` lines on stderr, exit 2,
nothing on stdout and never a traceback.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "malformed"
FILES = sorted(CORPUS.glob("*.yaml"), key=lambda f: int(f.name.partition("-")[0]))
HEADER = re.compile(r"^#\s*expect-(path|line|message|errors):\s?(.*)$")


@dataclass(frozen=True)
class Expectation:
    path: str | None  # None: the error has no field path (YAML syntax, top level)
    line: int
    messages: tuple[str, ...]
    errors: int


def expectation(file: Path) -> Expectation:
    found: dict[str, list[str]] = {}
    for text in file.read_text(encoding="utf-8").splitlines():
        match = HEADER.match(text)
        if match is None:
            break
        found.setdefault(match.group(1), []).append(match.group(2).rstrip())
    assert len(found.get("path", [])) == 1, f"{file.name}: needs one '# expect-path:' header"
    assert len(found.get("line", [])) == 1, f"{file.name}: needs one '# expect-line:' header"
    assert found.get("message"), f"{file.name}: needs a '# expect-message:' header"
    path = found["path"][0]
    return Expectation(
        path=None if path == "-" else path,
        line=int(found["line"][0]),
        messages=tuple(found["message"]),
        errors=int(found.get("errors", ["1"])[0]),
    )


@functools.cache
def validate(file: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xpool.cli", "validate", file],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error: ")]


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 36, f"only {len(FILES)} malformed files in {CORPUS}"


def test_corpus_files_are_numbered() -> None:
    names = [f.name for f in FILES]
    assert all(re.fullmatch(r"(0[1-9]|[1-9][0-9]+)-[a-z0-9-]+\.yaml", n) for n in names), names
    assert [int(n.partition("-")[0]) for n in names] == list(range(1, len(names) + 1)), names


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_malformed_file_is_reported(file: Path) -> None:
    expect = expectation(file)
    result = validate(str(file))
    report = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, report
    assert result.returncode == 2, report
    assert result.stdout == "", report
    located = re.compile(rf"^error: {re.escape(str(file))}:{expect.line}:\d+: ")
    wanted = [
        line
        for line in result.stderr.splitlines()
        if located.match(line)
        and (expect.path is None or f" {expect.path}: " in line)
        and all(m in line for m in expect.messages)
    ]
    assert wanted, (
        f"expected an error line at {file.name}:{expect.line} with path {expect.path or '-'} "
        f"containing {list(expect.messages)}\n{report}"
    )


@pytest.mark.parametrize("file", FILES, ids=[f.stem for f in FILES])
def test_every_stderr_line_is_a_located_error(file: Path) -> None:
    """One defect gives one error (or as many as the header says), each in the located form."""
    expect = expectation(file)
    result = validate(str(file))
    lines = result.stderr.splitlines()
    located = re.compile(rf"^error: {re.escape(str(file))}:\d+:\d+: ")
    assert lines, f"nothing on stderr (exit {result.returncode})"
    assert all(located.match(line) for line in lines), result.stderr
    assert len(error_lines(result)) == expect.errors, result.stderr


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-platform.yaml"
    result = validate(str(missing))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {missing}"), result.stderr
