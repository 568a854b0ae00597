"""gc_paused: the collector is off inside the block and as it was after; what the block built
goes to the oldest generation, and a cycle it dropped is still freed by a full collection."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from xpool.gc_paused import gc_paused


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_off_inside_and_restored(collector_on: None) -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_what_the_block_built_is_old_and_not_frozen(collector_on: None) -> None:
    frozen = gc.get_freeze_count()
    with gc_paused():
        kept = Node()
    assert gc.get_freeze_count() == frozen
    assert any(o is kept for o in gc.get_objects(generation=2))
    assert not any(o is kept for o in gc.get_objects(generation=0))


def test_a_dropped_cycle_is_freed_by_a_full_collection(collector_on: None) -> None:
    with gc_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
    assert gone() is not None  # a cycle: only the collector frees it
    gc.collect()
    assert gone() is None
