"""An exception no handler expects (a bug) ends in one line and exit 1, never a traceback,
and never a silent success; XPOOL_DEBUG=1 shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

# A command added to the real group for this run only, that fails as a bug would, with a
# credential in its message (redacted like every other error line).
SCRIPT = """
import sys
import click
from xpool.cli.main import cli, main

@cli.command("explode")
def explode() -> None:
    raise ZeroDivisionError("boom at http://user:hunter2@example.com")

sys.argv = ["xpool", "explode"]
main()
"""


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, env=env
    )


def test_a_bug_is_one_line_and_exit_1():
    env = {k: v for k, v in os.environ.items() if k != "XPOOL_DEBUG"}
    out = run(env)
    assert out.returncode == 1 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith("error: unexpected ZeroDivisionError: boom at http://***@example.com")
    assert "hunter2" not in out.stderr and "Traceback" not in out.stderr


def test_xpool_debug_shows_the_traceback():
    out = run({**os.environ, "XPOOL_DEBUG": "1"})
    assert out.returncode == 1 and "Traceback" in out.stderr and "ZeroDivisionError" in out.stderr
