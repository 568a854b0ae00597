"""Policies replayed side by side: results in order, computed in forked children that inherit
what the tasks close over, and in this process when one worker is asked for."""

from __future__ import annotations

import os

from xpool.adapters.forked import forked_map


def test_tasks_run_in_children_and_come_back_in_order() -> None:
    big = list(range(100_000))  # inherited by the children, never pickled
    tasks = [lambda i=i: (i, sum(big) + i, os.getpid()) for i in range(4)]
    results = forked_map(tasks, workers=2)
    assert [(i, total) for i, total, _ in results] == [(i, sum(big) + i) for i in range(4)]
    assert all(pid != os.getpid() for _, _, pid in results)


def test_one_worker_runs_here() -> None:
    assert forked_map([os.getpid, os.getpid], workers=1) == [os.getpid()] * 2
