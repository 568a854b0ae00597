"""Pure gateway decisions: priority admission and canary version selection (no I/O).

`admit` lives in `policy/admission.py`, where the simulator can call it too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from xpool.policy.admission import admit as admit


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
