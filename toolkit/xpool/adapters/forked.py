"""Independent computations run side by side in forked processes (the simulator's policies).

Each policy of a simulation replays the same load with its own world, and nothing is shared
between them, so they can run on as many cores as the machine has. The tasks are closures
over a load of millions of counts: a forked child inherits them (copy on write), so nothing
but the results is pickled.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

_TASKS: Sequence[Callable[[], object]] = ()  # what the forked children run, by index


def _run(index: int) -> object:
    return _TASKS[index]()


def forked_map(tasks: Sequence[Callable[[], T]], workers: int | None = None) -> list[T]:
    """Every task's result, in order; in up to `workers` forked processes (default: the
    CPUs this process may use), or here when one would do."""
    global _TASKS
    workers = min(len(tasks), workers or len(os.sched_getaffinity(0)))
    if workers <= 1:
        return [task() for task in tasks]
    _TASKS = tasks
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_run, range(len(tasks)), chunksize=1)  # type: ignore[return-value]
    finally:
        _TASKS = ()
