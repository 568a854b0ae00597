"""Placement on Kubernetes: the reconciler's target joins the supervisor's workers to the
worker pods (by pod IP) and launches a placed instance on its worker, against the contract
API server over real HTTP and the Xinference stand-in of the drain-handshake tests.

Worker pods are what Volcano creates from the rendered worker Jobs; the test seeds them, and
sets what only the kubelet and a graceful delete set (status.podIP, deletionTimestamp)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.contract.apiserver import ContractApiServer
from tests.gateway.test_drain_handshake import NS, WANT, StandIn, kube, xinference  # noqa: F401
from xpool.adapters.kube_client import KubeClient
from xpool.adapters.xinference import XinferenceClient
from xpool.policy.actions import Launch
from xpool.policy.state import WorkerObs
from xpool.reconcile.kube_target import KubeTarget

GPU = "nvidia.com/gpu"


def worker_pod(name: str, tier: str, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {
                "app.kubernetes.io/component": "xinference-worker",
                "xpool.io/tier": tier,
                "xpool.io/pool": "gpu",
            },
        },
        "spec": {
            "nodeName": f"node-{name}",
            "containers": [
                {
                    "name": "xinference-worker",
                    "image": "xprobe/xinference:v1",
                    "resources": {"limits": {GPU: gpus}},
                },
                {"name": "drain", "image": "xpool:0.1.0"},
            ],
        },
    }


@pytest.fixture
def pods(kube_api: ContractApiServer) -> None:
    """P0 on 10.0.0.1 (4 GPUs), P1 on 10.0.0.2 (2 GPUs, being deleted) and 10.0.0.3 (2)."""
    for name, tier, gpus, ip in [("p0-a", "P0", 4, "10.0.0.1"), ("p1-a", "P1", 2, "10.0.0.2"),
                                 ("p1-b", "P1", 2, "10.0.0.3")]:  # fmt: skip
        kube_api.seed(worker_pod(name, tier, gpus))
        kube_api.kubelet_update(name, NS, status={"phase": "Running", "podIP": ip})
    kube_api.kubelet_update("p1-a", NS, terminating=True)


def target(kube: KubeClient, client: XinferenceClient) -> KubeTarget:  # noqa: F811
    return KubeTarget(kube, NS, client, {("chat", "1"): WANT}, worker_resources={"gpu": GPU})


def test_workers_are_the_supervisors_joined_to_serving_pods(
    pods: None,
    kube: KubeClient,  # noqa: F811
    xinference: tuple[StandIn, XinferenceClient],  # noqa: F811
) -> None:
    state, client = xinference
    state.workers = {
        "10.0.0.1:31001": {"chat--1--1-rep0": {"accelerators": [0, 1]}},
        "10.0.0.2:31002": {},  # its pod is being deleted: nothing may be placed there
        "10.0.0.3:31003": {},
        "10.0.0.9:31009": {},  # no pod of ours
    }
    state.status["chat--1--1"] = "READY"
    observed = target(kube, client)
    assert observed.workers() == [
        WorkerObs("10.0.0.1:31001", "gpu", "P0", "node-p0-a", 4),
        WorkerObs("10.0.0.3:31003", "gpu", "P1", "node-p1-b", 2),
    ]
    (instance,) = observed.instances()
    assert (instance.uid, instance.worker, instance.devices) == (
        "chat--1--1",
        "10.0.0.1:31001",
        (0, 1),
    )


def test_without_worker_resources_nothing_is_observed(
    pods: None,
    kube: KubeClient,  # noqa: F811
    xinference: tuple[StandIn, XinferenceClient],  # noqa: F811
) -> None:
    state, client = xinference
    state.workers = {"10.0.0.1:31001": {}}
    assert KubeTarget(kube, NS, client, {("chat", "1"): WANT}).workers() == []


def test_a_placed_launch_names_its_worker_and_devices(
    kube: KubeClient,  # noqa: F811
    xinference: tuple[StandIn, XinferenceClient],  # noqa: F811
) -> None:
    state, client = xinference
    launch = Launch("chat", "1", 1, 2, "gpu", "P0", "test", worker="10.0.0.1:31001", devices=(2, 3))
    (uid,) = target(kube, client).launch(launch)
    ((body, _),) = state.launches
    assert (body["model_uid"], body["worker_ip"], body["gpu_idx"]) == (
        uid,
        "10.0.0.1:31001",
        [2, 3],
    )


def test_an_unplaced_launch_names_no_worker(
    kube: KubeClient,  # noqa: F811
    xinference: tuple[StandIn, XinferenceClient],  # noqa: F811
) -> None:
    state, client = xinference
    target(kube, client).launch(Launch("chat", "1", 2, 1, "gpu", "P0", "test"))
    assert len(state.launches) == 2
    assert all("worker_ip" not in b and "gpu_idx" not in b for b, _ in state.launches)
