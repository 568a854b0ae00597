"""A queued batch is demand for the policy: it scales the lowest tier up into idle capacity,
and what it borrowed is the first taken back when a higher tier needs room."""

from __future__ import annotations

from dataclasses import replace

from tests.unit.policy_world import model, ready, spec_of
from xpool.policy.actions import Drain, Launch
from xpool.policy.autoscale import autoscale, backlog_instances
from xpool.policy.decide import decide
from xpool.policy.spec import ScalingSpec
from xpool.policy.state import LoadObs, ModelMemory, Observation

SCALING = ScalingSpec(interval=30, stabilization=300, step=8)
# 10 QPS per instance at a reference request of 1,000 tokens: 10,000 tokens/s per instance
BATCH = replace(model("bulk", "P2", lo=0, hi=8), tokens_per_request=1000.0)


def test_backlog_instances_work_it_off_within_the_stabilization_window() -> None:
    # 6,000,000 tokens at 10,000 tokens/s per instance: 600 instance-seconds over 300 s
    load = LoadObs(qps=0.0, batch_queued_requests=1.0, batch_queued_tokens=6e6)
    assert backlog_instances(BATCH, SCALING, load) == 2.0
    # without a token figure, its requests at qps_per_instance: 9,000 / 10 / 300
    no_tokens = replace(BATCH, tokens_per_request=None)
    assert backlog_instances(no_tokens, SCALING, replace(load, batch_queued_requests=9e3)) == 3.0
    assert backlog_instances(BATCH, SCALING, LoadObs(qps=0.0)) == 0.0


def test_a_backlog_scales_an_idle_model_up_and_names_the_batch() -> None:
    load = LoadObs(qps=0.0, batch_queued_requests=6e3, batch_queued_tokens=6e6)
    out = autoscale(BATCH, SCALING, [], load, ModelMemory(), 0.0)
    # 2 instances of backlog at the 80% scale-up ratio -> 3
    assert out.desired == 3
    assert out.reason.startswith("with batch 20 QPS > 80% of 0 QPS")
    assert out.inputs["batchBacklogInstances"] == 2.0
    idle = autoscale(BATCH, SCALING, [], LoadObs(qps=0.0), ModelMemory(), 0.0)
    assert idle.desired == 0


def test_a_backlog_adds_to_the_interactive_load_and_holds_off_scale_down() -> None:
    mine = [ready(f"bulk--1--{i}") for i in (1, 2)]
    quiet = LoadObs(qps=1.0)  # 5% of two instances: would scale down after the window
    memory = ModelMemory(low_since=0.0)
    assert autoscale(BATCH, SCALING, mine, quiet, memory, 400.0).desired == 1
    queued = replace(quiet, batch_queued_requests=3e3, batch_queued_tokens=3e6)
    out = autoscale(BATCH, SCALING, mine, queued, memory, 400.0)
    # 1 QPS + 1 instance of backlog (10 QPS) = 11 QPS, within the band of two instances
    assert (out.desired, out.reason) == (2, "load within the scaling band")


def test_decide_fills_idle_capacity_and_reclaims_it_first_for_a_higher_tier() -> None:
    chat = model("chat", "P0", lo=1, hi=8)
    spec = spec_of([chat, BATCH], accelerators=10, scaling=SCALING)
    backlog = LoadObs(qps=0.0, batch_queued_requests=1e5, batch_queued_tokens=1e8)
    obs = Observation(0.0, (ready("chat--1--1"),), {"chat": LoadObs(qps=5.0), "bulk": backlog})
    launched = [a for a in decide(spec, obs, {}).actions if isinstance(a, Launch)]
    # P2 deserves 3 of 10; it borrows up to its instances.max (8) of the 9 left by P0's one
    assert [(a.model, a.count) for a in launched] == [("bulk", 8)]
    # P0's load then needs 3 more instances: the batch's borrowed instances are drained for it
    bulk = tuple(ready(f"bulk--1--{i}", inflight=8) for i in range(2, 10))
    hot = Observation(
        100.0,
        (ready("chat--1--1", inflight=8), *bulk),
        {"chat": LoadObs(qps=30.0), "bulk": backlog},
    )
    drained = [a for a in decide(spec, hot, {}).actions if isinstance(a, Drain)]
    assert drained and all(a.model == "bulk" and a.reclaimed_for == "P0" for a in drained)
