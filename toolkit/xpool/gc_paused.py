"""Pause Python's cyclic garbage collector around bulk work that builds, and keeps, many
objects.

Loading, planning and rendering a large platform (1,000 models on 20 pools: 60,000 plan
rows, a 1 MB parse tree) allocates steadily and frees little, so every collection the
allocations trigger walks a growing heap for nothing: about a quarter of `xpool render`'s
time (bench/render.py). Whatever cycles the work leaves are collected once it ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the collector inside the block; restore its previous state after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
