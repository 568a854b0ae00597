"""Pure gateway decisions: priority admission and canary version selection (no I/O)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def admit(
    rank: int, *, total: int, top_tier: int, limit: int | None, headroom: float
) -> str | None:
    """None to admit a request of tier `rank` (0 = highest priority), or the reason to shed it.

    Without a global limit everything is admitted (per-instance limits still apply). A tier of
    rank r > 0 is shed once the requests in flight (all tiers) reach limit x (1 - r x headroom):
    with headroom 0.15, P1 from 85 % and P2 from 70 % of the limit, so P2 is shed first, then
    P1. The top tier counts only its own requests against the whole limit: it is never shed
    while lower tiers hold part of the capacity (they get no new requests and drain away).
    """
    if limit is None:
        return None
    if rank <= 0:
        return "overload" if top_tier >= limit else None
    threshold = limit * max(0.0, 1.0 - rank * headroom)
    return "overload" if total >= threshold else None


def client_point(client_id: str) -> float:
    """A stable point in [0, 1) for a client: the same client always lands on the same version."""
    digest = hashlib.blake2b(client_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def pick_version(weights: Sequence[tuple[str, float]], point: float) -> str | None:
    """The version whose cumulative-weight bucket holds `point` in [0, 1); None when every
    weight is zero."""
    total = sum(w for _, w in weights if w > 0)
    if total <= 0:
        return None
    edge = point * total
    acc = 0.0
    last = None
    for version, weight in weights:
        if weight <= 0:
            continue
        acc += weight
        last = version
        if edge < acc:
            return version
    return last
