"""How a placed launch reaches Xinference: the admin request's worker fields, the supervisor's
worker list, the launch body (`worker_ip` as host:port; `gpu_idx` never on a CPU pool), and
the local bookkeeping of which tier a worker stands for."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import EXAMPLES
from xpool.adapters.xinference import XinferenceClient
from xpool.capacity.packing import first_fit
from xpool.errors import InputError
from xpool.gateway.admin_routes import AdminError, _pin
from xpool.local.cluster import (
    LocalCluster,
    LocalWorker,
    gpu_idx,
    planned_workers,
    read_workers,
    worker_obs,
)
from xpool.policy.state import WorkerObs
from xpool.resolve import resolve_platform

WORKERS = [
    {"work-ip": "127.0.0.1:2", "models": {"chat--1--1-rep0": {"accelerators": [0, 1]}}},
    {"work-ip": "127.0.0.1:1", "models": {}},
]


def client(seen: list[httpx.Request]) -> XinferenceClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/v1/workers":
            return httpx.Response(200, json=WORKERS)
        return httpx.Response(200, json={"model_uid": "chat--1--2"})

    return XinferenceClient("http://x", transport=httpx.MockTransport(answer))


def test_workers_lists_each_workers_instances_and_devices() -> None:
    workers = client([]).workers()
    assert [(w.address, w.instances) for w in workers] == [
        ("127.0.0.1:1", {}),
        ("127.0.0.1:2", {"chat--1--1": (0, 1)}),
    ]


def test_a_placed_launch_names_the_worker_and_only_given_devices() -> None:
    seen: list[httpx.Request] = []
    launch = {"model_name": "chat-v1", "worker_ip": None, "gpu_idx": None}
    client(seen).submit(launch, "chat--1--2", worker_ip="127.0.0.1:1")
    body = json.loads(seen[-1].content)
    assert body["worker_ip"] == "127.0.0.1:1" and "gpu_idx" not in body
    client(seen).submit(launch, "chat--1--3", worker_ip="127.0.0.1:1", gpu_idx=[2, 3])
    assert json.loads(seen[-1].content)["gpu_idx"] == [2, 3]


@pytest.mark.parametrize(
    ("payload", "pin"),
    [
        ({}, None),
        ({"worker": "127.0.0.1:1"}, ("127.0.0.1:1", None)),
        ({"worker": "127.0.0.1:1", "gpuIdx": [0, 1]}, ("127.0.0.1:1", [0, 1])),
    ],
)
def test_admin_launch_reads_the_worker(payload, pin) -> None:
    assert _pin(payload) == pin


@pytest.mark.parametrize(
    "payload",
    [{"gpuIdx": [0]}, {"worker": ""}, {"worker": "a:1", "gpuIdx": [True]}, {"worker": 3}],
)
def test_admin_launch_refuses_bad_worker_fields(payload) -> None:
    with pytest.raises(AdminError) as err:
        _pin(payload)
    assert err.value.status == 400


def test_no_gpu_idx_on_a_cpu_pool() -> None:
    platform = resolve_platform(EXAMPLES / "multi-worker.yaml").platform
    assert gpu_idx(platform, "local", (0, 1)) is None
    nvidia = resolve_platform(EXAMPLES / "platform.yaml").platform
    pool = next(p.name for p in nvidia.spec.pools if p.vendor == "nvidia")
    assert gpu_idx(nvidia, pool, (2, 3)) == [2, 3]


def test_the_example_plans_one_worker_per_node_each_a_tiers() -> None:
    planned = planned_workers(resolve_platform(EXAMPLES / "multi-worker.yaml").platform)
    assert [(w.tier, w.node, w.accelerators) for w in planned] == [
        ("P0", 0, 2),
        ("P1", 1, 2),
        ("P2", 2, 2),
    ]


def test_each_planned_worker_is_a_member_of_its_tiers_main_job_task() -> None:
    planned = planned_workers(resolve_platform(EXAMPLES / "multi-worker.yaml").platform)
    assert [(w.job, w.task, w.index) for w in planned] == [
        ("xinference-p0-local", "worker-2", 0),
        ("xinference-p1-local", "worker-2", 0),
        ("xinference-p2-local", "worker-2", 0),
    ]


def test_a_new_worker_binds_to_the_first_node_with_room() -> None:
    assert first_fit([0, 1, 2, 2], 2) == 2
    assert first_fit([1, 0, 1], 1) == 0
    assert first_fit([1, 1, 1], 2) is None


@pytest.mark.parametrize(
    ("job", "task", "replicas", "message"),
    [
        ("xinference-p9-local", "worker-2", 1, "is not a worker group of a CPU pool"),
        ("xinference-p0-local", "worker-2", 2, "replicas 2 is outside 0..1"),
        ("xinference-p1-local-burst", "worker-1", -1, "replicas -1 is outside 0..1"),
    ],
)
def test_a_scale_of_a_group_not_ours_or_out_of_range_is_refused(
    tmp_path, job: str, task: str, replicas: int, message: str
) -> None:
    cluster = LocalCluster(tmp_path, resolve_platform(EXAMPLES / "multi-worker.yaml").platform)
    with pytest.raises(InputError, match=message):
        cluster.scale(job, task, replicas, print)
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


def test_the_bookkeeping_names_each_observed_workers_group() -> None:
    book = [LocalWorker("a:1", "local", "P2", 2, 2, 7, "xinference-p2-local", "worker-2", 1)]
    assert worker_obs(book, ["a:1"]) == [
        WorkerObs("a:1", "local", "P2", "2", 2, "xinference-p2-local", "worker-2", 1)
    ]


def test_a_worker_the_supervisor_no_longer_lists_is_not_observed() -> None:
    book = [LocalWorker("a:1", "local", "P0", 0, 2), LocalWorker("a:2", "local", "P1", 1, 2)]
    assert worker_obs(book, ["a:2", "b:9"]) == [WorkerObs("a:2", "local", "P1", "1", 2)]


def test_bookkeeping_of_another_run_is_ignored(tmp_path) -> None:
    worker = {"address": "a:1", "pool": "local", "tier": "P0", "node": 0, "accelerators": 2}
    (tmp_path / "workers.json").write_text(
        json.dumps({"endpoint": "http://old", "workers": [worker]})
    )
    assert read_workers(tmp_path, "http://new") == []
    assert read_workers(tmp_path, "http://old") == [LocalWorker(**worker)]
