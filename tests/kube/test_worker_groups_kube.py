"""Worker groups on Kubernetes: the reconciler's target reads the rendered worker Jobs' task
replicas and patches one task's, its workers name their Volcano Job, task and index, and
`xpool apply` / `xpool diff` keep the replicas the reconciler set. Against the contract API
server, with the Jobs created by `xpool apply` of examples/ascend-only.yaml and the pods
Volcano's job controller would create from them (labels as in createJobPod,
pkg/controllers/job/job_controller_util.go)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.contract.apiserver import ContractApiServer
from tests.gateway.test_drain_handshake import WANT, StandIn, xinference  # noqa: F401
from tests.gateway.test_gateway_cli_reports import forbidden, rendered_role
from tests.kube.test_queue_shares import apply, diff
from xpool.adapters.kube_client import Connection, KubeClient, RetryPolicy
from xpool.adapters.worker_jobs import RECONCILER_MANAGER, scale_task, with_live_replicas
from xpool.adapters.worker_pods import volcano_task
from xpool.adapters.xinference import XinferenceClient
from xpool.errors import RemoteError
from xpool.policy.actions import ScaleWorkers
from xpool.policy.decide import Outcome
from xpool.policy.spec import PolicySpec, PoolSpec, ScalingSpec
from xpool.policy.state import WorkerObs
from xpool.reconcile import reconciler as reconciler_module
from xpool.reconcile.audit import AuditLog
from xpool.reconcile.kube_target import KubeTarget
from xpool.reconcile.memory_store import FileMemoryStore
from xpool.reconcile.reconciler import Reconciler

NS = "npu-qa"
JOBS = "batch.volcano.sh/v1alpha1"
ACC = "huawei.com/Ascend910"
P0 = "xinference-p0-ascend910b"
BURST = "xinference-p1-ascend910b-burst"
RENDERED = {
    (P0, "worker-4"): 1,
    (P0, "worker-2"): 1,
    ("xinference-p1-ascend910b", "worker-4"): 1,
    ("xinference-p1-ascend910b", "worker-1"): 1,
    (BURST, "worker-8"): 0,
    ("xinference-p2-ascend910b", "worker-4"): 1,
    ("xinference-p2-ascend910b", "worker-1"): 1,
}


# -- pure ----------------------------------------------------------------------------------------


def job(tasks: dict[str, int], component: str = "xinference-worker") -> dict[str, Any]:
    return {
        "apiVersion": JOBS,
        "kind": "Job",
        "metadata": {"name": "w", "labels": {"app.kubernetes.io/component": component}},
        "spec": {
            "minAvailable": 1,
            "tasks": [{"name": n, "replicas": r} for n, r in tasks.items()],
        },
    }


def test_apply_sends_a_live_worker_jobs_replicas() -> None:
    rendered = job({"worker-4": 1, "worker-2": 1})
    assert with_live_replicas(rendered, None) is rendered  # created: as rendered
    assert with_live_replicas(rendered, job({"worker-4": 1, "worker-2": 1})) is rendered
    live = job({"worker-4": 3, "worker-2": 1})
    del live["spec"]["tasks"][1]["replicas"]  # Volcano's Go types omit a 0
    body = with_live_replicas(rendered, live)
    assert [t["replicas"] for t in body["spec"]["tasks"]] == [3, 0]
    assert [t["replicas"] for t in rendered["spec"]["tasks"]] == [1, 1]  # not edited in place
    # Volcano's mutating admission set maxRetry on each task at creation: sent back as it is
    defaulted = job({"worker-4": 3, "worker-2": 1})
    for task in defaulted["spec"]["tasks"]:
        task["maxRetry"] = 3
    assert with_live_replicas(rendered, defaulted)["spec"] == defaulted["spec"]
    other = job({"worker-4": 1}, component="xinference-supervisor")
    assert with_live_replicas(other, job({"worker-4": 5})) is other


def test_volcano_task_reads_labels_then_annotations() -> None:
    labels = {"volcano.sh/job-name": P0, "volcano.sh/task-spec": "worker-4"}
    assert volcano_task(
        {"labels": {**labels, "volcano.sh/task-index": "2"}, "annotations": {}}
    ) == (P0, "worker-4", 2)
    assert volcano_task({"labels": labels, "annotations": {"volcano.sh/task-index": "0"}}) == (
        P0,
        "worker-4",
        0,
    )
    assert volcano_task({"labels": labels}) == ("", "", 0)
    assert volcano_task({"labels": {**labels, "volcano.sh/task-index": "x"}}) == ("", "", 0)


# -- against the contract server -----------------------------------------------------------------


@pytest.fixture
def kube(kubeconfig) -> Iterator[KubeClient]:
    policy = RetryPolicy(attempts=2, max_seconds=5, base_seconds=0.05, timeout_seconds=10)
    client = KubeClient.connect(Connection(kubeconfig=str(kubeconfig)), policy=policy)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def applied(cluster, kubeconfig, platform):
    """examples/ascend-only.yaml applied through the CLI; the request log starts empty."""
    path = platform()
    result = apply(path, kubeconfig)
    assert result.returncode == 0, result.stderr
    cluster.clear_log()
    return path


def target(kube: KubeClient, client: XinferenceClient) -> KubeTarget:
    return KubeTarget(kube, NS, client, {("chat", "1"): WANT}, worker_resources={"ascend910b": ACC})


def live_tasks(cluster: ContractApiServer, name: str) -> list[dict[str, Any]]:
    return cluster.get(JOBS, "Job", name, NS)["spec"]["tasks"]


def replicas_of(cluster: ContractApiServer, name: str) -> dict[str, int]:
    return {t["name"]: t.get("replicas", 0) for t in live_tasks(cluster, name)}


def reconciler_forbidden(cluster: ContractApiServer) -> list[str]:
    return forbidden(rendered_role("xpool-reconciler"), cluster.requests)


def test_worker_replicas_are_the_rendered_jobs_tasks(
    cluster,
    applied,
    kube,
    xinference: tuple[StandIn, XinferenceClient],  # noqa: F811
) -> None:
    _, client = xinference
    assert target(kube, client).worker_replicas() == RENDERED
    assert cluster.writes() == []
    assert reconciler_forbidden(cluster) == []
    # without worker resources (as `xpool worker drain` runs it) nothing is read
    cluster.clear_log()
    assert KubeTarget(kube, NS, client, {}).worker_replicas() == {}
    assert cluster.requests == []


def test_scale_patches_exactly_the_tasks_replicas(cluster, applied, kube) -> None:
    before = cluster.get(JOBS, "Job", P0, NS)
    assert scale_task(kube, NS, P0, "worker-2", 3)
    (write,) = cluster.writes()
    assert write.method == "PATCH" and write.content_type.startswith("application/json-patch+json")
    assert write.query == {"fieldManager": RECONCILER_MANAGER}
    assert write.json() == [
        {"op": "test", "path": "/spec/tasks/1/name", "value": "worker-2"},
        {"op": "test", "path": "/spec/tasks/1/replicas", "value": 1},
        {"op": "add", "path": "/spec/tasks/1/replicas", "value": 3},
    ]
    after = cluster.get(JOBS, "Job", P0, NS)
    expected = json.loads(json.dumps(before["spec"]))
    expected["tasks"][1]["replicas"] = 3
    assert after["spec"] == expected  # nothing else changed
    updates = [e for e in after["metadata"]["managedFields"] if e["manager"] == RECONCILER_MANAGER]
    assert [e["operation"] for e in updates] == ["Update"]
    assert "f:tasks" in updates[0]["fieldsV1"]["f:spec"]  # an atomic list: owned whole
    # the same replicas again: read, nothing written
    cluster.clear_log()
    assert scale_task(kube, NS, P0, "worker-2", 3)
    assert cluster.writes() == []
    assert reconciler_forbidden(cluster) == []


def test_a_concurrent_change_fails_the_patch_cleanly(cluster, applied, kube) -> None:
    """Someone changes the task's replicas between the reconciler's read and its patch: the test
    op fails (422), nothing of the reconciler's is written, and it reports False (next pass)."""
    real = kube.request

    def racing(method: str, path: str, **kw: Any) -> dict[str, Any]:
        if method == "PATCH" and kw.get("query", {}).get("fieldManager") == RECONCILER_MANAGER:
            real(
                "PATCH",
                path,
                what="someone else",
                query={"fieldManager": "kubectl-patch"},
                body=[{"op": "replace", "path": "/spec/tasks/0/replicas", "value": 2}],
                content_type="application/json-patch+json",
            )
        return real(method, path, **kw)

    kube.request = racing  # type: ignore[method-assign]
    assert scale_task(kube, NS, BURST, "worker-8", 1) is False
    assert replicas_of(cluster, BURST) == {"worker-8": 2}
    rejected = [r for r in cluster.requests if r.query.get("fieldManager") == RECONCILER_MANAGER]
    assert [r.status for r in rejected] == [422]
    kube.request = real  # type: ignore[method-assign]
    assert scale_task(kube, NS, BURST, "worker-8", 1)  # the next pass reads again
    assert replicas_of(cluster, BURST) == {"worker-8": 1}


def test_below_min_available_is_refused_before_writing(cluster, applied, kube) -> None:
    """The main Job's minAvailable is 1: Volcano refuses an update leaving 0 workers."""
    assert scale_task(kube, NS, P0, "worker-4", 0)
    cluster.clear_log()
    with pytest.raises(RemoteError, match=r"minAvailable \(1\) <= its total replicas"):
        scale_task(kube, NS, P0, "worker-2", 0)
    with pytest.raises(RemoteError, match="has no task 'worker-3'"):
        scale_task(kube, NS, P0, "worker-3", 1)
    with pytest.raises(RemoteError, match="does not exist"):
        scale_task(kube, NS, "xinference-p9-ascend910b", "worker-4", 1)
    assert cluster.writes() == []
    assert replicas_of(cluster, P0) == {"worker-4": 0, "worker-2": 1}


def test_listing_refused_names_the_permission(cluster, applied, kube) -> None:
    cluster.inject("GET", r"/apis/batch\.volcano\.sh/v1alpha1/namespaces/npu-qa/jobs$", 403)
    with pytest.raises(RemoteError, match=r"grant list on jobs\.batch\.volcano\.sh in npu-qa"):
        target(kube, XinferenceClient("http://127.0.0.1:9", attempts=1)).worker_replicas()


def test_apply_and_diff_keep_the_reconcilers_replicas(cluster, kubeconfig, applied, kube) -> None:
    assert replicas_of(cluster, BURST) == {"worker-8": 0}  # created as rendered
    assert scale_task(kube, NS, BURST, "worker-8", 2)
    assert scale_task(kube, NS, P0, "worker-4", 3)
    cluster.clear_log()

    result = apply(applied, kubeconfig)

    assert result.returncode == 0, result.stderr
    actions = {o["name"]: o["action"] for o in json.loads(result.stdout)["objects"]}
    assert actions[BURST] == actions[P0] == "unchanged"
    assert cluster.writes() == []
    assert all(r.status != 409 for r in cluster.requests)
    sent = [r.json() for r in cluster.requests if r.method == "PATCH" and r.path.endswith(BURST)]
    assert sent and all(b["spec"]["tasks"][0]["replicas"] == 2 for b in sent)
    assert replicas_of(cluster, BURST) == {"worker-8": 2}
    assert replicas_of(cluster, P0) == {"worker-4": 3, "worker-2": 1}

    result = diff(applied, kubeconfig)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert cluster.writes() == []


# -- workers and a reconciler pass ---------------------------------------------------------------


def volcano_pod(name: str, job: str, task: str, index: int | None, ip: str) -> dict[str, Any]:
    """A worker pod as Volcano creates it from a rendered Job (`index` None: no Volcano keys)."""
    keys = (
        {
            "volcano.sh/job-name": job,
            "volcano.sh/task-spec": task,
            "volcano.sh/task-index": str(index),
        }
        if index is not None
        else {}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {
                "app.kubernetes.io/component": "xinference-worker",
                "xpool.io/tier": "P0",
                "xpool.io/pool": "ascend910b",
                **keys,
            },
            "annotations": keys,
        },
        "spec": {
            "nodeName": f"node-{name}",
            "containers": [
                {"name": "xinference-worker", "image": "x:1", "resources": {"limits": {ACC: 4}}}
            ],
        },
    }


@pytest.fixture
def workers(cluster: ContractApiServer, xinference: tuple[StandIn, XinferenceClient]):  # noqa: F811
    state, _ = xinference
    pods = [
        (f"{P0}-worker-4-0", "worker-4", 0, "10.0.0.1"),
        (f"{P0}-worker-4-1", "worker-4", 1, "10.0.0.2"),
        ("stray", "", None, "10.0.0.3"),
    ]
    for name, task, index, ip in pods:
        cluster.seed(volcano_pod(name, P0, task, index, ip))
        cluster.kubelet_update(name, NS, status={"phase": "Running", "podIP": ip})
        state.workers[f"{ip}:31001"] = {}
    cluster.clear_log()


def test_workers_name_their_job_task_and_index(
    cluster,
    applied,
    workers,
    kube,
    xinference: tuple[StandIn, XinferenceClient],  # noqa: F811
) -> None:
    _, client = xinference
    node = f"node-{P0}-worker-4-"
    assert target(kube, client).workers() == [
        WorkerObs("10.0.0.1:31001", "ascend910b", "P0", node + "0", 4, P0, "worker-4", 0),
        WorkerObs("10.0.0.2:31001", "ascend910b", "P0", node + "1", 4, P0, "worker-4", 1),
        WorkerObs("10.0.0.3:31001", "ascend910b", "P0", "node-stray", 4),  # no group
    ]
    assert reconciler_forbidden(cluster) == []


def test_a_pass_scales_through_the_api_and_audits_it(
    cluster,
    applied,
    workers,
    kube,
    xinference: tuple[StandIn, XinferenceClient],  # noqa: F811
    tmp_path,
    monkeypatch,
) -> None:
    _, client = xinference
    seen = []
    action = ScaleWorkers(P0, "worker-4", "P0", "ascend910b", 2, 1, "P0 needs one more worker")

    def decide(spec, obs, memory):  # the policy is not under test here: one hand-made action
        seen.append(obs)
        return Outcome((action,), (), {})

    monkeypatch.setattr(reconciler_module, "decide", decide)
    spec = PolicySpec((PoolSpec("ascend910b", 16),), (), (), ScalingSpec())
    audit = tmp_path / "audit.jsonl"
    reconciler = Reconciler(
        spec,
        target(kube, client),
        loads=dict,
        store=FileMemoryStore(tmp_path / "memory.json"),
        audit=AuditLog(audit),
    )

    result = reconciler.run_pass()

    assert result.errors == []
    assert seen[0].replicas == RENDERED
    assert {(w.job, w.task, w.index) for w in seen[0].workers} >= {(P0, "worker-4", 1)}
    assert replicas_of(cluster, P0) == {"worker-4": 2, "worker-2": 1}
    (record,) = [json.loads(line) for line in audit.read_text().splitlines()]
    assert (record["action"], record["subject"]) == ("scale-workers", f"{P0}/worker-4")
    assert (record["before"]["replicas"], record["after"]) == (1, {"replicas": 2})
    assert reconciler_forbidden(cluster) == []

    # the Jobs cannot be read: the pass goes on without the groups, and says why
    seen.clear()
    cluster.inject("GET", r"/apis/batch\.volcano\.sh/v1alpha1/namespaces/npu-qa/jobs$", 403)
    result = reconciler.run_pass()
    assert seen[0].replicas == {}
    assert any(e.startswith("worker groups: worker Jobs in npu-qa") for e in result.errors)
