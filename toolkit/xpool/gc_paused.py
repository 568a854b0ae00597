"""Pause Python's cyclic garbage collector around bulk work that builds, and keeps, many
objects.

Loading, planning and rendering a large platform (1,000 models on 20 pools: 60,000 plan
rows, a 1 MB parse tree) allocates steadily and frees little, so every collection the
allocations trigger walks a growing heap for nothing: about a quarter of `xpool render`'s
time (bench/render.py).

Once the block ends, what it built would all be young, and the first collection would walk
it (a tenth of a second after a large platform's load and plan) to find it alive. It moves
to the oldest generation instead (`gc.freeze` then `gc.unfreeze`), where only a full
collection walks it: whatever cycles the work left are freed then. (`gc.unfreeze` releases
any object frozen before; xpool freezes only as a command ends, cli/main.py.)
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the collector inside the block; after it, move what is alive to the oldest
    generation and restore the collector's previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
