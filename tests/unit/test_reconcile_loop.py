"""The loop renews leadership between passes, not only once per pass: with a 15 s interval and
a 15 s Lease, renewing once per pass would let a standby take over while this one acts."""

from __future__ import annotations

import threading

from xpool.reconcile.reconciler import PassResult, run_loop


class CountingReconciler:
    def __init__(self) -> None:
        self.passes = 0

    def run_pass(self) -> PassResult:
        self.passes += 1
        return PassResult(started=0.0)


def test_leadership_is_renewed_between_passes() -> None:
    stop = threading.Event()
    checks = []

    def is_leader() -> bool:
        checks.append(1)
        if len(checks) == 6:
            stop.set()
        return True

    reconciler = CountingReconciler()
    run_loop(
        reconciler,  # type: ignore[arg-type]
        interval=1.0,
        stop=stop,
        is_leader=is_leader,
        log=lambda _m: None,
        renew_every=0.01,
    )
    assert reconciler.passes == 1 and len(checks) == 6


def test_a_standby_never_runs_a_pass() -> None:
    stop = threading.Event()
    checks = []

    def is_leader() -> bool:
        checks.append(1)
        if len(checks) == 4:
            stop.set()
        return False

    reconciler = CountingReconciler()
    run_loop(
        reconciler,  # type: ignore[arg-type]
        interval=0.02,
        stop=stop,
        is_leader=is_leader,
        log=lambda _m: None,
        renew_every=0.01,
    )
    assert reconciler.passes == 0
