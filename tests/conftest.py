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


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here, not in tests/render/conftest.py: pytest reads options only from root conftests.
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite golden files (tests/render/golden/) from the current code.",
    )
