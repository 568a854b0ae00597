"""Splitting a model's instances across versions by gateway weight (policy/versions.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xpool.policy.state import InstanceObs
from xpool.policy.versions import apportion, plan_versions, sized


def inst(version: str, n: int, state: str = "ready") -> InstanceObs:
    return InstanceObs(f"chat--{version}--{n}", "chat", version, state, 0.0)  # type: ignore[arg-type]


def test_apportion_by_weight_with_one_each():
    assert apportion(4, {"1": 75, "2": 25}) == {"1": 3, "2": 1}
    assert apportion(1, {"1": 95, "2": 5}) == {"1": 1, "2": 1}  # a canary surges
    assert apportion(3, {"1": 50, "2": 50}) == {"1": 2, "2": 1}  # ties: the stable first
    assert apportion(0, {"1": 100}) == {"1": 0}
    assert apportion(0, {"1": 100, "2": 50}) == {"1": 0, "2": 0}  # no demand


@given(
    total=st.integers(1, 40),
    weights=st.lists(st.integers(1, 100), min_size=1, max_size=4),
)
def test_apportion_sums_and_follows_weights(total: int, weights: list[int]) -> None:
    named = {str(i): float(w) for i, w in enumerate(weights)}
    out = apportion(total, named)
    assert sum(out.values()) == max(total, len(named))
    assert all(n >= 1 for n in out.values())
    mass = sum(weights)
    if total >= len(named):
        for v, w in named.items():  # within one instance of the exact share (or its minimum)
            assert out[v] <= max(1, total * w / mass + 1)


def test_canary_gets_an_instance_without_draining_the_stable():
    plan = plan_versions(2, [inst("1", 1), inst("1", 2)], [("1", 95), ("2", 5)])
    assert plan.launch == {"2": 1}
    assert plan.drain == ()  # the stable's surplus waits until the canary is ready


def test_stable_surplus_drains_once_the_canary_is_ready():
    plan = plan_versions(2, [inst("1", 1), inst("1", 2), inst("2", 1)], [("1", 50), ("2", 50)])
    assert plan.launch == {}
    assert [i.uid for i in plan.drain] == ["chat--1--2"]


def test_retired_version_drains_only_as_replacements_become_ready():
    weights = [("1", 0.0), ("2", 100.0)]
    old = [inst("1", 1), inst("1", 2)]
    first = plan_versions(2, [*old, inst("2", 1)], weights)
    assert first.launch == {"2": 1}
    assert [i.uid for i in first.drain] == ["chat--1--2"]  # 3 ready, 2 wanted: one may go
    loading = plan_versions(2, [old[0], inst("2", 1), inst("2", 2, "loading")], weights)
    assert loading.drain == ()  # 2 ready, 2 wanted: the old one still serves
    done = plan_versions(2, [old[0], inst("2", 1), inst("2", 2)], weights)
    assert [i.uid for i in done.drain] == ["chat--1--1"]


def test_a_loading_retired_instance_drains_at_once():
    plan = plan_versions(1, [inst("1", 1), inst("2", 1, "loading")], [("1", 100), ("2", 0)])
    assert [i.uid for i in plan.drain] == ["chat--2--1"]


@given(
    ready=st.lists(st.sampled_from(["1", "2"]), max_size=6),
    loading=st.lists(st.sampled_from(["1", "2"]), max_size=3),
    desired=st.integers(0, 6),
    canary=st.sampled_from([0.0, 5.0, 50.0, 100.0]),
)
def test_drains_never_leave_fewer_ready_than_wanted(
    ready: list[str], loading: list[str], desired: int, canary: float
) -> None:
    instances = [inst(v, n) for n, v in enumerate(ready)] + [
        inst(v, 100 + n, "loading") for n, v in enumerate(loading)
    ]
    plan = plan_versions(desired, instances, [("1", 100 - canary), ("2", canary)])
    drained = {i.uid for i in plan.drain}
    left_ready = sum(1 for i in instances if i.state == "ready" and i.uid not in drained)
    assert left_ready >= min(len(ready), sum(plan.desired.values()))
    assert all(n > 0 for n in plan.launch.values())


def test_the_canary_is_sized_for_the_next_step_before_the_shift():
    # 4 instances at 95/5; the next step is 50/50: the canary gets 2 now, the stable keeps 3
    assert sized(4, [("1", 95), ("2", 5)], [("1", 50), ("2", 50)]) == {"1": 3, "2": 2}
    # launching (weight 0 now): the first step's share, even with no demand at all
    assert sized(4, [("1", 100), ("2", 0)], [("1", 75), ("2", 25)]) == {"1": 4, "2": 1}
    assert sized(0, [("1", 100), ("2", 0)], [("1", 95), ("2", 5)]) == {"1": 1, "2": 1}
    # the last shift: the canary is sized for all of it while the stable keeps its half
    assert sized(4, [("1", 50), ("2", 50)], [("1", 0), ("2", 100)]) == {"1": 2, "2": 4}


def test_the_next_steps_instances_launch_ahead_while_this_steps_share_stays():
    instances = [inst("1", 1), inst("1", 2), inst("2", 1)]
    plan = plan_versions(2, instances, [("1", 50), ("2", 50)], [("1", 0), ("2", 100)])
    assert plan.launch == {"2": 1} and plan.desired == {"1": 1, "2": 2}
    # 50/50 of 2 needs one of each: the stable's second instance is spare and drains
    assert [i.uid for i in plan.drain] == ["chat--1--2"] and plan.now == {"1": 1, "2": 1}
    # a canary launched ahead (weight 0 now) is no capacity yet: nothing drains for it
    launching = plan_versions(
        2, [inst("1", 1), inst("1", 2), inst("2", 1)], [("1", 100)], [("1", 50), ("2", 50)]
    )
    assert launching.drain == () and launching.desired == {"1": 2, "2": 1}
