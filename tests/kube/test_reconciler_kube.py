"""The reconciler's Kubernetes writers against the contract server: the policy's queue shares
land on the rendered Queues as whole accelerators with their CPU and memory (field manager
xpool-reconciler, no write when unchanged), the policy memory survives in its ConfigMap, and
rollouts changed by two writers at once keep both changes."""

from __future__ import annotations

from tests.kube.conftest import run
from tests.kube.test_queue_shares import ACC, P0, P1, QUEUES, apply
from xpool.actions.reconciler_wiring import VolcanoQueueSink
from xpool.adapters.kube_client import Connection, KubeClient, RetryPolicy
from xpool.config.loader import load_platform
from xpool.policy.actions import SetQueue
from xpool.policy.rollout import CanaryObs, Gate, abort, advance, start
from xpool.policy.state import ModelMemory
from xpool.reconcile.kube_target import Routes
from xpool.reconcile.memory_store import ConfigMapMemoryStore
from xpool.reconcile.rollout_store import ConfigMapRolloutStore, Rollouts

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


def test_shares_follow_the_namespace_the_platform_was_applied_to(
    cluster, kubeconfig, platform, tmp_path
):
    """Applied with -n team-a and -n team-b, each reconciler (loading its namespace's copy of
    the file, as in the pod) sets its own queues' shares and leaves the other's alone."""
    path = platform()
    for team in ("team-a", "team-b"):
        result = run(
            "apply", str(path), "--kubeconfig", str(kubeconfig), "-n", team, "--skip-models"
        )
        assert result.returncode == 0, result.stderr
    text = cluster.get("v1", "ConfigMap", "xpool-platform", "team-b")["data"]["platform.yaml"]
    copy = tmp_path / "in-cluster.yaml"
    copy.write_text(text, encoding="utf-8")
    sink = VolcanoQueueSink(client(kubeconfig), load_platform(str(copy)).platform)
    lend = [SetQueue("P0", "ascend910b", 4, 6, "lends 2 idle accelerator(s) of its share 6")]
    cluster.clear_log()
    assert [c.queue for c in sink.apply(lend)] == ["team-b-p0-ascend910b"]
    assert cluster.get(QUEUES, "Queue", "team-b-p0-ascend910b")["spec"]["deserved"][ACC] == "4"
    assert cluster.get(QUEUES, "Queue", "team-a-p0-ascend910b")["spec"]["deserved"][ACC] == 6
    assert {r.path.rsplit("/", 1)[1] for r in cluster.writes()} == {"team-b-p0-ascend910b"}


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


def test_rollout_changes_from_two_writers_are_both_kept(cluster, kubeconfig, platform):
    """The CLI and the reconciler write `xpool-rollouts` concurrently: the resourceVersion
    precondition turns the second write into a 409, re-read and re-applied, so neither change
    is lost."""
    path = platform()
    assert apply(path, kubeconfig).returncode == 0
    mine, theirs = (ConfigMapRolloutStore(client(kubeconfig), NS) for _ in range(2))
    first = start("qa-chat", "1.0.0", "1.1.0", (5.0, 100.0), 60.0, Gate(), 1.0, "test")
    mine.update(lambda doc: doc.replace(first))
    calls = []

    def advance_while_someone_aborts(doc: Rollouts) -> None:
        calls.append(doc.current["qa-chat"].phase)
        if len(calls) == 1:  # another writer gets in between this read and this write
            theirs.update(lambda d: d.replace(abort(d.current["qa-chat"], 2.0)))
        doc.current["qa-chat"] = advance(doc.current["qa-chat"], 3.0, CanaryObs(1, 0), None)

    mine.update(advance_while_someone_aborts)
    assert calls == ["launching", "aborted"]  # re-read after the conflict
    final = ConfigMapRolloutStore(client(kubeconfig), NS).load().current["qa-chat"]
    assert final.phase == "aborted"  # the abort was not overwritten by the stale advance
    assert [e.event for e in final.history] == ["started", "aborted"]


def test_weights_reach_the_routes_of_a_listed_model():
    routes = Routes(
        {"generation": 3, "models": [{"model": "chat", "type": "LLM", "instances": []}]}
    )
    routes.set_weights("chat", {"1": 95.0, "2": 5.0})
    assert routes.changed and routes.doc["models"][0]["weights"] == {"1": 95.0, "2": 5.0}
    again = Routes(routes.doc)
    again.set_weights("chat", {"1": 95.0, "2": 5.0})
    again.set_weights("absent", {"1": 100.0})  # no instances listed yet: nothing to route
    assert not again.changed
