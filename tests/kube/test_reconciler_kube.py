"""The reconciler's Kubernetes writers against the contract server: the policy's queue shares
land on the rendered Queues as whole accelerators with their CPU and memory (field manager
xpool-reconciler, no write when unchanged), and the policy memory survives in its ConfigMap."""

from __future__ import annotations

from tests.kube.test_queue_shares import ACC, P0, P1, QUEUES, apply
from xpool.adapters.kube_client import Connection, KubeClient, RetryPolicy
from xpool.config.loader import load_platform
from xpool.policy.actions import SetQueue
from xpool.policy.state import ModelMemory
from xpool.reconcile.memory_store import ConfigMapMemoryStore
from xpool.reconcile.wiring import VolcanoQueueSink

NS = "npu-qa"


def client(kubeconfig) -> KubeClient:
    policy = RetryPolicy(attempts=2, max_seconds=5, base_seconds=0.05, timeout_seconds=10)
    return KubeClient.connect(Connection(kubeconfig=str(kubeconfig)), policy=policy)


def test_policy_shares_reach_the_queues_once(cluster, kubeconfig, platform):
    path = platform()
    assert apply(path, kubeconfig).returncode == 0
    sink = VolcanoQueueSink(client(kubeconfig), load_platform(str(path)).platform)
    lend = [
        SetQueue("P0", "ascend910b", 4, 6, "lends 2 idle accelerator(s) of its share 6"),
        SetQueue("P1", "ascend910b", 7, 13, "borrows 2 accelerator(s) beyond its share 5"),
    ]
    cluster.clear_log()
    changes = sink.apply(lend)
    assert {c.queue for c in changes} == {P0, P1}
    assert {c.share.tier for c in changes} == {"P0", "P1"}
    p0 = cluster.get(QUEUES, "Queue", P0)["spec"]
    assert p0["deserved"] == {ACC: "4", "cpu": "96", "memory": "768Gi"}
    assert cluster.get(QUEUES, "Queue", P1)["spec"]["deserved"][ACC] == "7"
    cluster.clear_log()
    assert sink.apply(lend) == []
    assert cluster.writes() == []


def test_memory_survives_in_its_configmap(cluster, kubeconfig, platform):
    path = platform()
    assert apply(path, kubeconfig).returncode == 0
    store = ConfigMapMemoryStore(client(kubeconfig), NS)
    assert store.load() == {}
    memory = {"qa-chat": ModelMemory(last_up=12.5, low_since=3.0)}
    store.save(memory)
    assert ConfigMapMemoryStore(client(kubeconfig), NS).load() == memory
    live = cluster.get("v1", "ConfigMap", "xpool-reconciler-state", NS)
    assert live["metadata"]["managedFields"][0]["manager"] == "xpool-reconciler"
