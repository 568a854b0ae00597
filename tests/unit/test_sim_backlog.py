"""The simulator's batch backlog: idle slots only, interactive requests first, re-queued on
preemption, never shed; and owned utilisation on a case computed by hand."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT
from tests.unit.policy_world import model
from tests.unit.test_sim_engine import run, service, setup
from xpool.actions.simulate_traces import build_load, parse_trace
from xpool.errors import InputError
from xpool.sim.backlog import BatchJob, BatchQueue, BatchSpec, parse_batch, trace_jobs
from xpool.sim.load import RateLoad
from xpool.sim.requests import Request

# 8 slots, reference request 100 in / 32 out at 0.8 QPS per instance: each holds a slot 10 s
SLOW = {"qps": 0.8}
LOAD = {"fluid": None, "start": 0.0, "duration": None, "speedup": 1.0, "seed": 0}


def _job(n: int, at: float = 0.0, model_name: str = "bulk") -> BatchJob:
    return BatchJob(model_name, at, n, 100, 32, 10.0)


def _bulk(lo: int = 2, hi: int = 2, rate: float = 0.0, seconds: float = 1000.0):
    spec, svcs = setup((model("bulk", "P2", qps=0.8, lo=lo, hi=hi), service("bulk", "P2", **SLOW)))
    return spec, svcs, RateLoad({"bulk": ((0.0, rate),)}, seconds)


def test_owned_and_held_utilisation_of_a_batch_on_two_static_instances() -> None:
    """2 instances x (8 slots - 1 reserved) = 14 slots take 140 requests of 10 s in 10 waves:
    done at 100 s; 1,400 busy slot-seconds = 175 accelerator-seconds, over 2 held
    accelerators (2,000 s) and over the pool's 10 (10,000 s)."""
    spec, svcs, load = _bulk()
    c = run(spec, svcs, load, policies=("static",), batches=(_job(140),))
    static = c.result("static")
    assert static is not None and static.batch is not None
    assert static.batch.completion_seconds == pytest.approx(100.0)
    assert static.batch.completed == pytest.approx(140)
    assert static.batch.tokens == pytest.approx(140 * 132)
    assert static.busy_accelerator_seconds == pytest.approx(175.0)
    assert static.utilisation == pytest.approx(175 / 2000)
    assert static.owned_utilisation == pytest.approx(175 / 10_000)
    assert static.as_dict(None)["ownedUtilisation"] == pytest.approx(0.0175)


def test_interactive_requests_come_first_and_the_batch_yields_while_they_queue() -> None:
    # interactive at half the instances' capacity (0.8 QPS of 1.6): the batch gets the rest
    spec, svcs, half = _bulk(rate=0.8)
    c = run(spec, svcs, half, policies=("static",), batches=(_job(10_000),))
    static = c.result("static")
    assert static is not None and static.batch is not None
    assert static.tiers["P2"].attainment == 1.0
    # 16 slots - 8 interactive - 2 reserved = 6 slots of 10 s for 1,000 s
    assert static.batch.completed == pytest.approx(600, rel=0.02)
    # interactive beyond capacity queues all the time: the batch gets nowhere (a fluid
    # fraction of a request may start in a step before the first refusal, and is taken back)
    spec, svcs, over = _bulk(rate=2.0)
    c = run(spec, svcs, over, policies=("static",), batches=(_job(10_000),))
    static = c.result("static")
    assert static is not None and static.batch is not None
    assert static.batch.completed < 1


def test_a_batch_outwaits_any_client_and_is_never_shed() -> None:
    spec, svcs, load = _bulk(lo=1, hi=1, seconds=3000.0)
    c = run(spec, svcs, load, policies=("static",), batches=(_job(1400),), retries=0)
    static = c.result("static")
    assert static is not None and static.batch is not None
    # 7 slots, 200 waves of 10 s
    assert static.batch.completion_seconds == pytest.approx(2000.0)
    assert static.shed == 0 and static.tiers["P2"].requests == 0


def test_a_drained_instance_requeues_its_batch_work_and_counts_what_was_lost() -> None:
    queue = BatchQueue([_job(20)], {"bulk": 0.5}, reserve=1)
    queue.submit_due(0.0)
    assert queue.queued("bulk") == (20, 20 * 132)
    assert queue.slots("a", 8, interactive=2.0) == 5.0
    assert queue.dispatch("bulk", "a", 5.0, 0.0) == 5.0
    assert queue.dispatch("bulk", "b", 7.0, 0.0) == 7.0
    assert queue.queued("bulk")[0] == 8 and queue.held_on("a") == 5.0
    queue.requeue("a", 4.0)
    assert queue.held_on("a") == 0 and queue.queued("bulk")[0] == 13
    assert queue.result.requeued == 5 and queue.result.lost_accelerator_seconds == 5 * 4 * 0.5
    queue.run(10.0, {"bulk": True})  # b's 7 complete at 10 s and take 7 more
    assert queue.result.jobs[0].completed == 7 and queue.queued("bulk")[0] == 6
    assert queue.dispatch("bulk", "c", 8.0, 10.0) == 6.0
    queue.run(20.0, {"bulk": False})
    assert queue.result.jobs[0].finished == 20.0 and queue.result.completed == 20


def test_pooled_lends_idle_capacity_to_the_batch_and_takes_it_back_for_p0() -> None:
    """P0 jumps after 30 min into a pool the batch filled: the batch's instances are drained
    for it, their requests re-queued, and every request of the batch still completes."""
    spec, svcs = setup(
        (model("chat", "P0", qps=10, lo=2, hi=8), service("chat", "P0", qps=10)),
        (model("bulk", "P2", qps=0.8, lo=0, hi=8), service("bulk", "P2", **SLOW)),
    )
    # 18 QPS on P0's 2 instances (20 QPS) is over its scale-up ratio yet served in time
    load = RateLoad({"chat": ((0.0, 5.0), (1800.0, 18.0))}, 7200.0)
    c = run(spec, svcs, load, policies=("pooled",), batches=(_job(20_000),))
    pooled = c.result("pooled")
    assert pooled is not None and pooled.batch is not None
    assert pooled.reclaimed == {"P2": {"P0": pooled.preemptions}} and pooled.preemptions >= 1
    # (the work lost depends on where the drain falls in a request: counted in the test below)
    assert pooled.batch.requeued > 0
    assert pooled.batch.completed == pytest.approx(20_000)
    assert pooled.tiers["P0"].attainment == 1.0


@pytest.mark.parametrize(
    ("value", "spec"),
    [
        ("bulk=100", BatchSpec("bulk", 100, None, None, 0.0)),
        ("bulk=100:2048:0@2h", BatchSpec("bulk", 100, 2048, 0, 7200.0)),
    ],
)
def test_batch_arguments(value: str, spec: BatchSpec) -> None:
    assert parse_batch(value) == spec


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("bulk", "write MODEL=N"),
        ("bulk=0", "N '0' must be a whole number >= 1"),
        ("bulk=10:512", "give N or N:IN_TOKENS:OUT_TOKENS"),
        ("bulk=10@soon", "START:"),
    ],
)
def test_bad_batch_arguments_name_the_flag(value: str, message: str) -> None:
    with pytest.raises(InputError, match="--batch") as caught:
        parse_batch(value)
    assert message in str(caught.value)


def test_a_shifted_servegen_trace_peaks_later_and_wraps_its_tail_round() -> None:
    directory = ROOT / "tests" / "data" / "traces" / "servegen-language" / "m-large"
    plain, later = (
        build_load([parse_trace(f"servegen:{directory}=qa-chat{at}")], **LOAD) for at in ("", "@6h")
    )
    assert isinstance(plain, RateLoad) and isinstance(later, RateLoad)
    span = plain.end
    for t in (0.0, 3600.0, span - 6 * 3600 - 600):
        assert later.rate("qa-chat", t + 6 * 3600) == plain.rate("qa-chat", t)
    assert later.rate("qa-chat", 0.0) == plain.rate("qa-chat", span - 6 * 3600)


def test_a_batch_trace_becomes_jobs_of_the_requests_submitted_together() -> None:
    _, svcs, _ = _bulk()
    reqs = [Request(0.0, "bulk", 100, 32)] * 3 + [
        Request(0.0, "bulk", 200, 32),
        Request(60.0, "bulk", 100, 32),
        Request(60.0, "other", 100, 32),
    ]
    jobs = trace_jobs(reqs, svcs)
    assert [(j.submitted, j.requests, j.input_tokens) for j in jobs] == [
        (0.0, 3, 100),
        (0.0, 1, 200),
        (60.0, 1, 100),
    ]
    assert jobs[0].duration == svcs["bulk"].duration(100, 32)
