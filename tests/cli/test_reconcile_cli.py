"""`xpool reconcile` input and remote errors: one line, the right exit code, nothing done."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import EXAMPLES
from tests.conftest import run_xpool as run


def test_no_running_up_is_a_remote_error(tmp_path: Path) -> None:
    result = run(
        "reconcile", str(EXAMPLES / "quickstart.yaml"), "--once", "--state-dir", str(tmp_path)
    )
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"error: no `xpool up` is running for quickstart (state dir {tmp_path}); start one "
        "with `xpool up FILE` or pass --state-dir"
    ]


def test_bad_interval_is_an_input_error(tmp_path: Path) -> None:
    result = run(
        "reconcile",
        str(EXAMPLES / "quickstart.yaml"),
        "--loop",
        "--interval",
        "soon",
        "--state-dir",
        str(tmp_path),
    )
    assert result.returncode == 2
    assert "--interval" in result.stderr and "not a duration" in result.stderr
    assert not any(tmp_path.iterdir())
