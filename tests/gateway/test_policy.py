"""Pure gateway decisions: canary selection and priority admission."""

from __future__ import annotations

import random

import pytest

from xpool.config.models import Model
from xpool.gateway.policy import admit, client_point, pick_version
from xpool.gateway.routing import Lease, Refusal, RoutingTable


def test_a_95_5_split_lands_within_2_points_over_10000_decisions():
    rng = random.Random(7)
    weights = [("1", 95.0), ("2", 5.0)]
    picks = [pick_version(weights, rng.random()) for _ in range(10_000)]
    share = picks.count("2") / len(picks) * 100
    assert abs(share - 5) <= 2, share


def test_a_95_5_split_by_client_id_is_sticky_and_lands_within_2_points():
    weights = [("1", 95.0), ("2", 5.0)]
    picks = [pick_version(weights, client_point(f"client-{i}")) for i in range(10_000)]
    assert abs(picks.count("2") / 100 - 5) <= 2
    assert all(pick_version(weights, client_point(f"client-{i}")) == picks[i] for i in range(100))


def test_zero_weights_pick_nothing_and_zero_weight_versions_are_never_picked():
    assert pick_version([("1", 0.0), ("2", 0.0)], 0.5) is None
    assert {pick_version([("1", 0.0), ("2", 1.0)], p / 10) for p in range(10)} == {"2"}


def _model(*weights: float | None) -> Model:
    versions = [
        {"version": str(i + 1), "source": "hf://org/m", **({} if w is None else {"weight": w})}
        for i, w in enumerate(weights)
    ]
    return Model.model_validate(
        {
            "name": "m",
            "tier": "P0",
            "architecture": "qwen2-0.5b",
            "versions": versions,
            "demand": {"peakQps": 1},
        }
    )


def test_platform_weights_default_to_first_version_100():
    assert _model(None, None).version_weights() == {"1": 100.0, "2": 0.0}
    assert _model(95, 5).version_weights() == {"1": 95.0, "2": 5.0}
    assert _model(None, 5).version_weights() == {"1": 0.0, "2": 5.0}


@pytest.mark.parametrize(
    ("rank", "total", "top", "expected"),
    [
        (2, 69, 0, None),  # P2 admitted below 70 % of 100
        (2, 70, 0, "overload"),  # P2 shed first, from 70 %
        (1, 70, 0, None),  # P1 still admitted there
        (1, 85, 0, "overload"),  # P1 shed from 85 %
        (0, 100, 10, None),  # P0 not shed while P1/P2 hold capacity
        (0, 150, 99, None),
        (0, 150, 100, "overload"),  # only when P0 alone fills the limit
    ],
)
def test_admission_sheds_p2_first_then_p1_never_p0_while_others_hold_capacity(
    rank, total, top, expected
):
    assert admit(rank, total=total, top_tier=top, limit=100, headroom=0.15) == expected


def test_no_global_limit_admits_everything():
    assert admit(2, total=10_000, top_tier=0, limit=None, headroom=0.15) is None


def table(**kw) -> RoutingTable:
    t = RoutingTable(seed=1, **kw)
    t.add("emb", "embedding", "emb--1--1", version="1", tier="P1", limit=2)
    t.add("emb", "embedding", "emb--1--2", version="1", tier="P1", limit=2)
    return t


def test_least_outstanding_requests_and_request_limits():
    t = table()
    leases = [t.acquire("emb") for _ in range(4)]
    assert all(isinstance(x, Lease) for x in leases)
    assert sorted(x.uid for x in leases) == ["emb--1--1", "emb--1--1", "emb--1--2", "emb--1--2"]
    refused = t.acquire("emb")
    assert isinstance(refused, Refusal) and refused.status == 429
    assert refused.reason == "instance_limits" and refused.tier == "P1"
    t.release(leases[0])
    again = t.acquire("emb")
    assert isinstance(again, Lease) and again.uid == leases[0].uid


def test_draining_takes_no_new_requests_and_wait_drained_follows_in_flight():
    t = table()
    held = t.acquire("emb")
    assert isinstance(held, Lease)
    t.mark_draining(held.uid)
    other = {t.acquire("emb").uid for _ in range(2)}  # type: ignore[union-attr]
    assert held.uid not in other
    assert not t.wait_drained(held.uid, 0.05)
    t.release(held)
    assert t.wait_drained(held.uid, 0.05)
    assert [r.draining for r in t.routes()] == [(held.uid,)]


def test_unknown_model_is_404_and_retry_excludes_the_failed_instance():
    t = table()
    assert t.acquire("nope").status == 404  # type: ignore[union-attr]
    first = t.acquire("emb")
    second = t.acquire("emb", exclude=[first.uid])  # type: ignore[union-attr]
    assert second.uid != first.uid  # type: ignore[union-attr]
    third = t.acquire("emb", exclude=["emb--1--1", "emb--1--2"])
    assert isinstance(third, Refusal) and (third.reason, third.status) == ("no_instance", 503)


def test_a_model_with_every_instance_draining_is_429_with_the_reason():
    t = table()
    for slot in t.slots("emb"):
        t.mark_draining(slot.uid)
    refusal = t.acquire("emb")
    assert isinstance(refusal, Refusal) and (refusal.status, refusal.reason) == (429, "no_instance")
    assert "draining" in refusal.message


def test_global_limit_sheds_the_p2_model_while_p0_still_gets_in():
    t = RoutingTable(max_inflight=4, tier_headroom=0.25, seed=1)
    t.add("batch", "embedding", "batch--1--1", version="1", tier="P2", limit=10)
    t.add("core", "embedding", "core--1--1", version="1", tier="P0", limit=10)
    assert isinstance(t.acquire("batch"), Lease)
    assert isinstance(t.acquire("batch"), Lease)
    shed = t.acquire("batch")  # P2 threshold: 4 x (1 - 2 x 0.25) = 2
    assert isinstance(shed, Refusal) and (shed.status, shed.reason, shed.tier) == (
        429,
        "overload",
        "P2",
    )
    assert all(isinstance(t.acquire("core"), Lease) for _ in range(4))
    assert isinstance(t.acquire("core"), Refusal)


def test_canary_weights_route_between_versions():
    t = RoutingTable(seed=3)
    t.declare("emb", "embedding", "P1", {"1": 95, "2": 5})
    t.add("emb", "embedding", "emb--1--1", version="1", tier="P1")
    t.add("emb", "embedding", "emb--2--1", version="2", tier="P1")
    versions = []
    for _ in range(2000):
        lease = t.acquire("emb")
        versions.append(lease.version)  # type: ignore[union-attr]
        t.release(lease)  # type: ignore[arg-type]
    assert 2 <= versions.count("2") / 20 <= 8
    sticky = {t.acquire("emb", client_id="alice").version for _ in range(20)}  # type: ignore[union-attr]
    assert len(sticky) == 1
    t.set_weights("emb", {"1": 0, "2": 1})
    assert t.acquire("emb").version == "2"  # type: ignore[union-attr]
