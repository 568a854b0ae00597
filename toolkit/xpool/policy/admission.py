"""The gateway's priority admission, a pure rule shared by the gateway and the simulator."""

from __future__ import annotations


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
