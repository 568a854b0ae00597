"""The simulator models what runs: the gateway's admission and clients' retries, the engine's
context limit, cold starts from the plan, lost work on killed instances, and the utilisation
the accelerator exporters report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from tests.conftest import EXAMPLES
from tests.unit.policy_world import model, spec_of
from tests.unit.test_sim_engine import SCALING, service
from xpool.capacity.storage import cold_load_seconds
from xpool.policy.actions import Action, Launch, Terminate
from xpool.policy.queueing import erlang_b
from xpool.policy.state import Observation
from xpool.resolve import resolve_platform
from xpool.sim.baselines import Static
from xpool.sim.engine import Options, run_requests
from xpool.sim.load import RateCursor, RateLoad, RequestLoad
from xpool.sim.policy_comparison import setup, simulate
from xpool.sim.requests import Request
from xpool.sim.service import ENGINE_START_S, Service


def _one(svc: Service, reqs: list[Request], end: float, controller=None, **options):
    """`reqs` on one warm instance of `svc` (pool of 10 accelerators), nothing scaled."""
    spec = spec_of([model(svc.model, svc.tier, lo=1, hi=1)], scaling=SCALING)
    result = run_requests(
        spec,
        {svc.model: svc},
        RequestLoad(lambda: iter(reqs), end),
        controller or Static(15.0),
        {svc.model: 1},
        Options(**options),
    )
    return result, result.tiers[svc.tier]


def _long(qps: float = 8.0) -> Service:
    """8 slots; the reference request (100 in, 32 out) holds its slot 1.5 s."""
    return replace(service("chat", "P0", qps=qps), decode_per_token=(1.5 - 0.01) / 32)


def test_a_full_instance_answers_429_and_the_client_retries_after_retry_after() -> None:
    """16 requests at once on 8 slots busy for 1.5 s: the second 8 are refused, refused again
    at 1 s, and served at 2 s; their TTFT counts from their first attempt."""
    svc = _long()
    reqs = [Request(0.0, "chat", 100, 32)] * 16
    _, tier = _one(svc, reqs, 60.0)
    assert tier.requests == 16 and tier.shed == 0
    assert tier.within_slo == 8  # 2 s + prefill is past the 0.5 s SLO
    assert tier.quantile(1.0) == pytest.approx(2.0, rel=0.15)


def test_a_client_gives_up_after_its_retries() -> None:
    svc = replace(_long(), decode_per_token=10.0 / 32)  # slots busy for 10 s
    reqs = [Request(0.0, "chat", 100, 32)] * 12
    _, tier = _one(svc, reqs, 60.0, retries=2)
    assert tier.requests == 12 and tier.shed == 4
    _, tier = _one(svc, reqs, 60.0, retries=0)
    assert tier.shed == 4
    _, tier = _one(svc, reqs, 60.0, retries=20)
    assert tier.shed == 0 and tier.requests == 12


def test_prompts_over_the_context_are_refused_and_answers_stop_at_it() -> None:
    svc = replace(_long(), seq_len=1000)
    reqs = [Request(0.0, "chat", 1001, 10), Request(1.0, "chat", 990, 500)]
    result, tier = _one(svc, reqs, 60.0)
    assert tier.requests == 2 and tier.too_long == 1 and tier.within_slo == 1
    # the second request generates 10 tokens (990 + 10 = seqLen), not 500
    assert result.busy_accelerator_seconds == pytest.approx(svc.duration(990, 10) / svc.slots)


class _KillAt:
    """Terminates the first instance at its first pass after `at` (a reclaim past its
    drainTimeout), once."""

    name = "kill"
    interval = 15.0
    acts = True

    def __init__(self, at: float) -> None:
        self.at = at
        self.done = False

    def step(self, obs: Observation) -> Sequence[Action]:
        if self.done or obs.now < self.at or not obs.instances:
            return ()
        self.done = True
        inst = obs.instances[0]
        return (Terminate(inst.uid, inst.model, "P0", "reclaimed past drainTimeout"),)


def test_work_killed_on_a_terminated_instance_is_served_again() -> None:
    """4 requests of 20 s start at 10 s, 2 on each instance; one instance is killed at 15 s
    and its 2 are sent again to the other, whose slots they hold another 20 s."""
    svc = replace(_long(), decode_per_token=(20.0 - 0.01) / 32)
    spec = spec_of([model("chat", "P0", lo=1, hi=2)], scaling=SCALING)
    reqs = [Request(10.0, "chat", 100, 32)] * 4
    result = run_requests(
        spec,
        {"chat": svc},
        RequestLoad(lambda: iter(reqs), 120.0),
        _KillAt(15.0),
        {"chat": 2},
        Options(),
    )
    tier = result.tiers["P0"]
    assert tier.requeued == 2 and tier.requests == 4 and tier.shed == 0
    assert tier.within_slo == 2  # the killed answers came 20 s later than promised
    # slot-seconds: 2 x 20 s served, 2 x (5 s lost + 20 s again), of 8 slots per accelerator
    assert result.busy_accelerator_seconds == pytest.approx((2 * 20 + 2 * 25) / 8, rel=0.01)


def test_pool_utilisation_counts_busy_accelerators_over_the_pool() -> None:
    """One request in flight keeps its accelerator busy for the exporter (kernels run)
    while it fills 1 of 8 slots: 1/10 of the pool, 1/8 of the held slot-time."""
    svc = replace(_long(), decode_per_token=(100.0 - 0.01) / 32)
    result, _ = _one(svc, [Request(0.0, "chat", 100, 32)], 100.0)
    assert result.pool_utilisation == pytest.approx(0.1)
    assert result.utilisation == pytest.approx(1 / 8)


def test_cold_start_is_engine_start_plus_weights_over_storage_bandwidth() -> None:
    resolved = resolve_platform(EXAMPLES / "platform.yaml")
    _, svcs = setup(resolved.platform, resolved.plan, ["qa-chat", "batch-eval"])
    for name, svc in svcs.items():
        weights = resolved.plan.placements[name].footprint.weight_bytes
        # the Atlas 800 A2 profile reaches its store over 50 Gb/s
        assert svc.cold_start == pytest.approx(ENGINE_START_S + cold_load_seconds(weights, 50))
    assert svcs["batch-eval"].cold_start > svcs["qa-chat"].cold_start


def test_a_launch_serves_after_its_models_cold_start() -> None:
    """A second instance is launched at 0 s: how long its accelerator is held before it
    serves is the model's cold start unless --cold-start fixes one."""
    svc = replace(_long(), cold_start=100.0)

    class _LaunchOnce:
        name = "launch"
        interval = 15.0
        acts = True

        def step(self, obs: Observation) -> Sequence[Action]:
            if obs.now:
                return ()
            return (Launch("chat", "1", 1, 1, "p", "P0", "test"),)

    reqs = [Request(50.0, "chat", 100, 32)] * 16
    _, tier_own = _one(svc, reqs, 200.0, _LaunchOnce())
    _, tier_fixed = _one(svc, reqs, 200.0, _LaunchOnce(), cold_start=10.0)
    # at 50 s the second instance is still loading for its 100 s: 8 of 16 wait for retries
    assert tier_own.within_slo == 8
    assert tier_fixed.within_slo == 16


def test_a_busy_neighbour_does_not_scale_a_model_up() -> None:
    """P2's steady load keeps 8 of 10 accelerators busy; P0 has 2 QPS on one instance. The
    policy sees the pool's utilisation as the exporters report it (80%, over
    scaleUp.utilization), but it is the pool's, not P0's: P0's own saturation (20%) keeps it
    at one instance."""
    spec = spec_of(
        [model("chat", "P0", qps=10, lo=1, hi=4), model("eval", "P2", qps=1, lo=0, hi=8)],
        scaling=SCALING,
    )
    svcs = {"chat": service("chat", "P0", qps=10), "eval": service("eval", "P2", qps=1)}
    load = RateLoad({"chat": ((0.0, 2.0),), "eval": ((0.0, 6.0),)}, 1800.0)
    result = simulate(spec, svcs, load, ("pooled",), Options(), 15.0).result("pooled")
    assert result is not None
    assert result.pool_utilisation is not None and result.pool_utilisation > 0.75
    assert max(s.held["P0"] for s in result.samples) == 1


def test_window_rates_move_linearly_between_window_middles() -> None:
    cursor = RateCursor(((0.0, 10.0), (600.0, 20.0), (1800.0, 5.0)), 600.0)
    got = [cursor.at(t) for t in (0.0, 300.0, 450.0, 600.0, 899.0, 1000.0, 1800.0)]
    # 1200-1800 has no window: the rate steps there, and 600-1200 ends flat
    assert got == pytest.approx([10.0, 10.0, 12.5, 15.0, 19.983, 20.0, 5.0], abs=1e-3)
    assert RateCursor(((0.0, 10.0), (600.0, 20.0)), 0.0).at(599.0) == 10.0


def test_fluid_mode_serves_the_counted_arrivals_and_their_bursts() -> None:
    """20 QPS arriving as 60 requests every third second onto 3 static instances (24 slots,
    0.8 s requests, SLO 0.5 s). Within its second the burst comes at random, so the share
    Erlang's loss formula gives for 48 erlangs on 24 slots (a little more: the retries of
    the burst before still hold slots) finds every slot busy and is served at its retry a
    second later (a few, refused thrice, give up), late; the same mean spread evenly (`--smooth`) is served at once."""
    chat = model("chat", "P0", qps=10, lo=1, hi=8)
    spec = spec_of([chat], scaling=SCALING)
    svcs = {"chat": service("chat", "P0", qps=10)}
    seconds = 3600
    counts = [60.0 if k % 3 == 0 else 0.0 for k in range(seconds)]
    load = RateLoad({"chat": ((0.0, 20.0),)}, float(seconds), counts={"chat": counts})
    results = {}
    for name, options in (("smooth", Options(variability=False)), ("drawn", Options())):
        result = simulate(spec, svcs, load, ("static",), options, 15.0).result("static")
        assert result is not None
        results[name] = result.tiers["P0"]
    smooth, drawn = results["smooth"], results["drawn"]
    assert drawn.requests == pytest.approx(smooth.requests) == pytest.approx(sum(counts))
    assert smooth.attainment == 1.0
    assert 1 - erlang_b(24, 52.0) < drawn.attainment < 1 - erlang_b(24, 48.0)
    assert drawn.shed < 0.01 * drawn.requests  # nearly every retry finds a free slot


def test_the_gateways_global_limit_sheds_the_lower_tier_first() -> None:
    """maxInflight 10, tierHeadroom 0.15: P2 is refused from 7 requests in flight (70%), P0
    only when P0 alone holds 10. 8 long P2 requests, then 8 P0 requests."""
    chat = replace(_long(), decode_per_token=30.0 / 32)
    batch = replace(chat, model="eval", tier="P2")
    spec = spec_of([model("chat", "P0", lo=1, hi=1), model("eval", "P2", lo=1, hi=1)])
    reqs = [Request(0.0, "eval", 100, 32)] * 8 + [Request(0.5, "chat", 100, 32)] * 8
    shed = {}
    for limit in (None, 10):
        result = run_requests(
            spec,
            {"chat": chat, "eval": batch},
            RequestLoad(lambda: iter(reqs), 60.0),
            Static(15.0),
            {"chat": 1, "eval": 1},
            Options(gateway_limit=limit),
        )
        shed[limit] = {t: r.shed for t, r in result.tiers.items()}
    assert shed == {None: {"P0": 0, "P2": 0}, 10: {"P0": 0, "P2": 1}}
