"""Which versions a model's instances run, given the gateway weights of its versions.

The autoscaler decides how many instances a model needs; this module splits that number
across versions in proportion to their weights, so a canary at 25% gets about a quarter of the
instances, and every version with traffic (weight > 0) gets at least one: a rollout surges
above the autoscaler's count rather than sending a canary's share of traffic to no instance.
A rollout also names its next step's weights (`ahead`): each version gets the larger of its
share now and its share after the shift, so the canary's instances for the next step load
before that step's traffic arrives, and the stable version keeps its share until the shift. Versions with weight 0 receive no traffic
(the gateway's rule), so their instances are "retired": they drain, but only as fast as
ready instances of the serving versions replace them, so capacity never dips during a switch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from xpool.policy.state import InstanceObs


@dataclass(frozen=True)
class VersionPlan:
    launch: dict[str, int]  # version -> instances to start now
    drain: tuple[InstanceObs, ...]  # retired or surplus instances to drain now, in order
    desired: dict[str, int]  # version -> instances wanted (serving versions only)
    now: dict[str, int]  # version -> instances its weight now calls for (ahead aside)
    # Ready retired or surplus instances kept only to keep capacity up: drained to make room
    # when a launch of this model finds its pool full (they would otherwise block it forever).
    spare: tuple[InstanceObs, ...] = ()


def serving_versions(
    weights: Sequence[tuple[str, float]], ahead: Sequence[tuple[str, float]] = ()
) -> dict[str, float]:
    """Versions that need instances: weight > 0 now, or in a rollout's next step."""
    out = {v: w for v, w in weights if w > 0}
    for v, w in ahead:
        if w > 0:
            out.setdefault(v, 0.0)
    return out


def sized(
    total: int, weights: Sequence[tuple[str, float]], ahead: Sequence[tuple[str, float]] = ()
) -> dict[str, int]:
    """Instances per version: its share of `total` now, or after the next shift if larger."""
    now = _shares(total, tuple(weights))
    if not ahead:
        return now
    # a canary sized for its first step even while the model has no demand: it must load
    later = _shares(max(total, 1), tuple(ahead))
    return {v: max(now.get(v, 0), later.get(v, 0)) for v in serving_versions(weights, ahead)}


def _shares(total: int, weights: tuple[tuple[str, float], ...]) -> dict[str, int]:
    """`apportion` over the versions with weight > 0; a copy of the cached answer, since the
    same few (total, weights) come back every pass (the simulator passes millions of times)."""
    return dict(_cached_shares(total, weights))


@functools.lru_cache(maxsize=4096)
def _cached_shares(total: int, weights: tuple[tuple[str, float], ...]) -> dict[str, int]:
    return apportion(total, {v: w for v, w in weights if w > 0})


def apportion(total: int, weights: dict[str, float]) -> dict[str, int]:
    """`total` instances across versions by weight (largest remainder), each at least one
    when there is any demand; ties go to the earlier version (the stable one comes first)."""
    names = list(weights)
    if not names or total <= 0:
        return dict.fromkeys(names, 0)
    total = max(total, len(names))
    weighted = {v: w for v, w in weights.items() if w > 0}
    out = {v: 1 for v in names}
    spare = total - len(names)
    mass = sum(weighted.values())
    if spare <= 0 or mass <= 0:
        return out
    exact = {v: total * w / mass for v, w in weighted.items()}
    extra = {v: max(0, math.floor(exact[v]) - 1) for v in weighted}
    while sum(extra.values()) > spare:  # each version's floor already counted its minimum
        v = max(extra, key=lambda k: (extra[k], -names.index(k)))
        extra[v] -= 1
    left = spare - sum(extra.values())
    order = sorted(weighted, key=lambda v: (-(exact[v] - 1 - extra[v]), names.index(v)))
    for i in range(left):
        extra[order[i % len(order)]] += 1
    for v, n in extra.items():
        out[v] += n
    return out


def _newest_first(inst: InstanceObs) -> tuple[bool, int]:
    tail = inst.uid.rsplit("--", 1)[-1]
    return (inst.state != "loading", -(int(tail) if tail.isdigit() else 0))


def plan_versions(
    desired_total: int,
    instances: Sequence[InstanceObs],
    weights: Sequence[tuple[str, float]],
    ahead: Sequence[tuple[str, float]] = (),
) -> VersionPlan:
    """Launches and drains that move `instances` (not draining) toward `desired_total` split
    by `weights`. Retired instances drain only while the ready instances beyond the desired
    total allow it, so what serves never shrinks while replacements load."""
    serving = serving_versions(weights, ahead)
    desired = sized(desired_total, weights, ahead)
    active = [i for i in instances if i.state in ("ready", "loading")]
    by_version: dict[str, list[InstanceObs]] = {}
    for inst in active:
        by_version.setdefault(inst.version, []).append(inst)
    launch = {
        v: n - len(by_version.get(v, ()))
        for v, n in desired.items()
        if n > len(by_version.get(v, ()))
    }
    retired = [i for i in active if i.version not in serving]
    candidates = sorted(retired, key=_newest_first)  # retired first
    for v, n in desired.items():  # then the surplus of a serving version whose weight fell
        mine = sorted(by_version.get(v, ()), key=_newest_first)
        candidates.extend(mine[: max(0, len(mine) - n)])
    now = _shares(desired_total, tuple(weights))
    # ready instances beyond what the weights now call for; those launched ahead for the next
    # step take no traffic yet and do not count (retired ones do: the gateway falls back on
    # them when no weighted instance is left)
    ahead_only = {v for v in serving if v not in now}
    ready = sum(1 for i in active if i.state == "ready" and i.version not in ahead_only)
    spare = max(0, ready - sum(now.values()))
    drain = [i for i in candidates if i.state == "loading"]  # nothing to finish
    kept = [i for i in candidates if i.state == "ready"]
    drain.extend(kept[:spare])
    return VersionPlan(launch, tuple(drain), desired, now, tuple(kept[spare:]))
