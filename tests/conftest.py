"""Shared fixtures: the repository root and a way to run the CLI as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_xpool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m xpool.cli ARGS` exactly as a user's shell would, capturing both streams."""
    return subprocess.run(
        [sys.executable, "-m", "xpool.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=120,
        check=False,
    )


@pytest.fixture
def xpool():
    return run_xpool
