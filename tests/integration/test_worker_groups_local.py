"""Local worker groups: a multi-worker `xpool up` (3 CPU nodes of 2 accelerators; P0, P1 and P2
a node each) scales its tiers' worker groups through the gateway's admin API, as Volcano runs
a worker Job whose task replicas change: a new worker binds to a node with room, reclaims
one from a tier beyond its share or stays pending, and a stopped or evicted one is drained
first, then its process ends. What runs is read from the
supervisor (GET /v1/workers), the processes and their environment, not from xpool's
bookkeeping alone."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.integration.conftest import free_port
from tests.integration.test_placement import Up, platform_file, running_up, tier_of_worker
from xpool.adapters.xinference import XinferenceClient
from xpool.errors import RemoteError
from xpool.local.admin import AdminClient
from xpool.local.runtime import pid_alive
from xpool.local.up_state import read_up_state
from xpool.policy.actions import ScaleWorkers
from xpool.reconcile.local_target import LocalTarget
from xpool.resolve import resolve_platform

P0 = ("xinference-p0-local", "worker-2")
P1 = ("xinference-p1-local", "worker-2")
BURST = ("xinference-p1-local-burst", "worker-2")
P2 = ("xinference-p2-local", "worker-2")
TIER = {P0: "P0", P1: "P1", BURST: "P1", P2: "P2"}


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp = tmp_path_factory.mktemp("worker-groups")
    port = free_port()
    with running_up(tmp, platform_file(tmp / "platform.yaml", port, 1, 1), port) as started:
        yield started


@pytest.fixture
def target(up: Up) -> Iterator[LocalTarget]:
    state = read_up_state(up.state)
    assert state is not None
    platform = resolve_platform(str(up.tmp / "platform.yaml")).platform
    t = LocalTarget(AdminClient.of(state), XinferenceClient(state.endpoint), platform)
    yield t
    t.close()


def scale(target: LocalTarget, group: tuple[str, str], replicas: int) -> bool:
    previous = target.worker_replicas()[group]
    action = ScaleWorkers(*group, TIER[group], "local", replicas, previous, "test")
    return target.scale_workers(action)


def admin_post(up: Up, path: str, body: dict) -> httpx.Response:
    state = read_up_state(up.state)
    assert state is not None
    return httpx.post(
        f"{state.gateway}{path}",
        json=body,
        headers={"Authorization": f"Bearer {state.admin_token()}"},
        timeout=60,
    )


def listed(up: Up) -> set[str]:
    return {w["work-ip"] for w in httpx.get(f"{up.endpoint}/v1/workers", timeout=30).json()}


def bookkeeping(up: Up) -> list[dict]:
    return json.loads((up.state / "workers.json").read_text())["workers"]


def pid_groups(up: Up) -> list[int]:
    return json.loads((up.state / "xinference.pid").read_text())["groups"]


def wait(condition: Callable[[], bool], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(1)


def members(up: Up, group: tuple[str, str]) -> list[dict]:
    return [w for w in bookkeeping(up) if (w["job"], w["task"]) == group]


def test_each_worker_is_a_member_of_its_tiers_group(up: Up, target: LocalTarget) -> None:
    assert target.worker_replicas() == {
        P0: 1,
        P1: 1,
        BURST: 0,
        ("xinference-p1-local-burst", "worker-1"): 0,
        P2: 1,
    }
    observed = {(w.job, w.task): w for w in target.workers()}
    assert set(observed) == {P0, P1, P2}
    for group, worker in observed.items():
        assert (worker.tier, worker.index) == (TIER[group], 0)
        assert tier_of_worker(worker.address) == TIER[group]


def test_a_full_pool_leaves_a_new_worker_pending_and_bad_requests_are_refused(
    up: Up, target: LocalTarget
) -> None:
    answer = admin_post(up, "/-/admin/workers", {"job": BURST[0], "task": BURST[1], "replicas": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()["pending"] == "no node of pool local has 2 free accelerator(s)"
    assert answer.json()["started"] == []
    assert not scale(target, BURST, 1)
    assert target.worker_replicas()[BURST] == 0
    refused = admin_post(up, "/-/admin/workers", {"job": P0[0], "task": P0[1], "replicas": 2})
    assert refused.status_code == 409
    assert "replicas 2 is outside 0..1" in refused.json()["error"]["message"]
    with pytest.raises(RemoteError, match="is not a worker group of a CPU pool"):
        scale_unknown = ScaleWorkers("xinference-p9-local", "worker-2", "P9", "local", 1, 0, "t")
        target.scale_workers(scale_unknown)


def test_scaling_down_frees_the_node_a_new_worker_then_starts_on(
    up: Up, target: LocalTarget
) -> None:
    (p2,) = members(up, P2)
    assert scale(target, P2, 0)
    wait(lambda: not pid_alive(p2["pid"]), "P2's worker process ends")
    wait(lambda: p2["address"] not in listed(up), "the supervisor stops listing P2's worker")
    assert members(up, P2) == []
    assert p2["pid"] not in pid_groups(up)
    assert target.worker_replicas()[P2] == 0

    assert scale(target, BURST, 1)
    (burst,) = members(up, BURST)
    assert (burst["node"], burst["index"], burst["tier"]) == (p2["node"], 0, "P1")
    assert burst["pid"] in pid_groups(up)
    wait(lambda: burst["address"] in listed(up), "the new worker registers")
    assert tier_of_worker(burst["address"]) == "P1"
    assert [(w.job, w.index) for w in target.workers() if w.address == burst["address"]] == [
        (BURST[0], 0)
    ]


def test_a_stopped_worker_is_drained_first(up: Up, target: LocalTarget) -> None:
    (burst,) = members(up, BURST)
    launched = admin_post(
        up, "/-/admin/launch", {"model": "embedding", "count": 1, "worker": burst["address"]}
    )
    assert launched.status_code == 202, launched.text
    (uid,) = launched.json()["uids"]

    def state() -> str | None:
        return next((i.state for i in target.instances() if i.uid == uid), None)

    wait(lambda: state() == "ready", f"{uid} ready on the burst worker", timeout=300)
    assert up.where()[uid] == burst["address"]
    assert scale(target, BURST, 0)
    assert members(up, BURST) == []
    wait(lambda: not pid_alive(burst["pid"]), "the burst worker's process ends")
    assert state() is None  # drained and terminated through the gateway, not killed under it
    assert uid not in up.where()
    wait(lambda: burst["address"] not in listed(up), "the supervisor stops listing it")
    log = (up.tmp / "up.log").read_text()
    drained = log.index(f"worker {burst['address']}: draining {uid} before it stops")
    terminated = log.index(f"{uid}: terminated", drained)
    assert terminated < log.index(f"worker {burst['address']} stopped")


def test_a_tier_within_its_share_reclaims_a_burst_worker_drained_first(
    up: Up, target: LocalTarget
) -> None:
    """Volcano's reclaim, played locally: P2, within its share, asks for a worker while P1's
    burst worker (borrowed, preemptable) holds the only node with room for it. The burst
    worker is evicted, drained first, and stays a pending member of its group, as the Job
    controller recreates an evicted pod; P2's worker starts on its node once it has ended."""
    assert scale(target, BURST, 1)
    (burst,) = members(up, BURST)
    wait(lambda: burst["address"] in listed(up), "the burst worker registers")
    launched = admin_post(
        up, "/-/admin/launch", {"model": "embedding", "count": 1, "worker": burst["address"]}
    )
    assert launched.status_code == 202, launched.text
    (uid,) = launched.json()["uids"]

    def state() -> str | None:
        return next((i.state for i in target.instances() if i.uid == uid), None)

    wait(lambda: state() == "ready", f"{uid} ready on the burst worker", timeout=300)
    answer = admin_post(up, "/-/admin/workers", {"job": P2[0], "task": P2[1], "replicas": 1})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["pending"], answer.json()["reclaiming"]) == (None, [burst["address"]])
    assert target.worker_replicas()[BURST] == 1  # evicted: pending, not gone
    assert target.worker_replicas()[P2] == 1
    wait(lambda: not pid_alive(burst["pid"]), "the burst worker's process ends")
    assert state() is None  # drained and terminated through the gateway, not killed under it
    wait(lambda: len(members(up, P2)) == 1, "P2's worker starts once the node is free")
    (p2,) = members(up, P2)
    assert p2["node"] == burst["node"]
    assert members(up, BURST) == []
    wait(lambda: p2["address"] in listed(up), "P2's worker registers")
    assert tier_of_worker(p2["address"]) == "P2"
    log = (up.tmp / "up.log").read_text()
    evicted = log.index(f"evicting worker {burst['address']}")
    assert "reclaimed for P2: P1 holds 4 > deserved 2 on local" in log[evicted:]
    drained = log.index(f"worker {burst['address']}: draining {uid} before it stops", evicted)
    stopped = log.index(f"worker {burst['address']} stopped", drained)
    assert stopped < log.index(f"starting worker {p2['address']}")
    # the pending burst worker nobody waits for is released
    assert scale(target, BURST, 0)
    assert target.worker_replicas()[BURST] == 0


def test_stopping_up_ends_every_worker_also_those_started_later(
    up: Up, target: LocalTarget
) -> None:
    assert scale(target, P2, 1)
    (p2,) = members(up, P2)
    wait(lambda: p2["address"] in listed(up), "P2's new worker registers")
    groups = pid_groups(up)
    assert p2["pid"] in groups and len(groups) == 4  # the supervisor and three workers
    target.close()
    up.proc.send_signal(signal.SIGTERM)
    up.proc.wait(timeout=120)
    assert not any(pid_alive(g) for g in groups)
    assert not (up.state / "workers.json").exists()
    assert not (up.state / "xinference.pid").exists()
