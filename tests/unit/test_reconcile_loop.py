"""The loop renews leadership between passes, not only once per pass: with a 15 s interval and
a 15 s Lease, renewing once per pass would let a standby take over while this one acts."""

from __future__ import annotations

import threading

from xpool.reconcile.pass_result import PassResult
from xpool.reconcile.reconciler import run_loop


class CountingReconciler:
    def __init__(self) -> None:
        self.passes = 0

    def run_pass(self) -> PassResult:
        self.passes += 1
        return PassResult(started=0.0)


def loop_until(checks_wanted: int, *, leader: bool, interval: float) -> tuple[int, int]:
    """Run the loop until leadership was checked `checks_wanted` times: (passes, checks)."""
    stop = threading.Event()
    checks = []

    def is_leader() -> bool:
        checks.append(1)
        if len(checks) == checks_wanted:
            stop.set()
        return leader

    reconciler = CountingReconciler()
    run_loop(
        reconciler,  # type: ignore[arg-type]
        interval=interval,
        stop=stop,
        is_leader=is_leader,
        log=lambda _m: None,
        renew_every=0.01,
    )
    return reconciler.passes, len(checks)


def test_leadership_is_renewed_between_passes() -> None:
    assert loop_until(6, leader=True, interval=1.0) == (1, 6)


def test_a_standby_never_runs_a_pass() -> None:
    passes, _ = loop_until(4, leader=False, interval=0.02)
    assert passes == 0
