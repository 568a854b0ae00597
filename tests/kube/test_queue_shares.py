"""Queue shares owned by field manager `xpool-reconciler`: `set_queue_shares` against the contract
server, and `xpool apply` / `xpool diff` (CLI subprocesses) leaving the reconciler's values alone."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.kube.conftest import ONE_POOL, run
from xpool.adapters.kube_client import Connection, KubeClient, RetryPolicy
from xpool.adapters.queue_shares import RECONCILER_MANAGER, QueueShare, set_queue_shares
from xpool.errors import InputError

QUEUES = "scheduling.volcano.sh/v1beta1"
ACC = "huawei.com/Ascend910"
P0, P1, P2 = (f"npu-qa-{tier}-ascend910b" for tier in ("p0", "p1", "p2"))
PATHS = {name: f"/apis/{QUEUES}/queues/{name}" for name in (P0, P1, P2)}

# Rendered from examples/ascend-only.yaml (2 x 8 accelerators, 24 CPUs and 96Gi per accelerator).
RENDERED_P0 = {
    "deserved": {ACC: "6", "cpu": "144", "memory": "1152Gi"},
    "capability": {ACC: "6", "cpu": "144", "memory": "1152Gi"},
}
# Lend 2 of P0's 6 deserved accelerators (with their CPU and memory) to P1.
LEND = [
    QueueShare(
        P0,
        deserved={ACC: "4", "cpu": "96", "memory": "768Gi"},
        capability={ACC: "6", "cpu": "144", "memory": "1152Gi"},
    ),
    QueueShare(
        P1,
        deserved={ACC: "7", "cpu": "168", "memory": "1344Gi"},
        capability={ACC: "13", "cpu": "312", "memory": "2496Gi"},
    ),
]


@pytest.fixture
def kube(kubeconfig) -> Iterator[KubeClient]:
    policy = RetryPolicy(attempts=2, max_seconds=5, base_seconds=0.05, timeout_seconds=10)
    client = KubeClient.connect(Connection(kubeconfig=str(kubeconfig)), policy=policy)
    try:
        yield client
    finally:
        client.close()


def apply(path, kubeconfig):
    return run("apply", str(path), "--kubeconfig", str(kubeconfig), "-o", "json", "--skip-models")


def diff(path, kubeconfig):
    return run("diff", str(path), "--kubeconfig", str(kubeconfig))


@pytest.fixture
def applied(cluster, kubeconfig, platform):
    """The platform applied once through the CLI; the request log starts empty."""
    path = platform()
    result = apply(path, kubeconfig)
    assert result.returncode == 0, result.stderr
    cluster.clear_log()
    return path


def spec_of(cluster, name: str) -> dict:
    return cluster.get(QUEUES, "Queue", name)["spec"]


def owned(cluster, name: str, manager: str) -> set[str]:
    """Share entries `manager` owns on the live Queue, as `deserved.<resource>`."""
    out = set()
    for entry in cluster.get(QUEUES, "Queue", name)["metadata"]["managedFields"]:
        if entry["manager"] != manager:
            continue
        spec = entry["fieldsV1"].get("f:spec", {})
        for field in ("deserved", "capability"):
            out |= {f"{field}.{k[2:]}" for k in spec.get(f"f:{field}", {}) if k.startswith("f:")}
    return out


def amounts(spec: dict) -> dict:
    return {f: {k: str(v) for k, v in spec[f].items()} for f in ("deserved", "capability")}


def queue_patches(cluster, name: str) -> list:
    return [r for r in cluster.requests if r.method == "PATCH" and r.path == PATHS[name]]


def test_lend_is_owned_by_the_reconciler_and_survives_apply_and_diff(
    cluster, kubeconfig, platform, kube
):
    path = platform()
    assert apply(path, kubeconfig).returncode == 0
    # before the reconciler ever ran, apply sends (and owns) the shares as rendered
    first = [r.json()["spec"] for r in queue_patches(cluster, P0) if not r.dry_run]
    assert first and amounts(first[0]) == RENDERED_P0
    assert "deserved.huawei.com/Ascend910" in owned(cluster, P0, "xpool")
    cluster.clear_log()

    changes = set_queue_shares(kube, LEND)

    assert [c.name for c in changes] == [P0, P1]
    assert changes[0].before == RENDERED_P0
    assert changes[0].after == {"deserved": LEND[0].deserved, "capability": LEND[0].capability}
    writes = cluster.writes()
    assert [w.path for w in writes] == [PATHS[P0], PATHS[P1]]
    for w, share in zip(writes, LEND, strict=True):
        assert w.is_apply
        assert w.query == {"fieldManager": RECONCILER_MANAGER, "force": "true"}
        assert w.json() == {
            "apiVersion": QUEUES,
            "kind": "Queue",
            "metadata": {"name": share.name},
            "spec": {"deserved": share.deserved, "capability": share.capability},
        }
    assert amounts(spec_of(cluster, P0))["deserved"] == LEND[0].deserved
    assert amounts(spec_of(cluster, P1))["deserved"] == LEND[1].deserved
    every = {f"{f}.{r}" for f in ("deserved", "capability") for r in (ACC, "cpu", "memory")}
    assert owned(cluster, P0, RECONCILER_MANAGER) == every
    # a forced apply takes changed values away from `xpool`; equal ones become co-owned (the
    # rendered accelerator count is the integer 6, not the string "6": a different value)
    for name in (P0, P1):
        assert owned(cluster, name, "xpool") == {"capability.cpu", "capability.memory"}

    cluster.clear_log()
    result = apply(path, kubeconfig)
    assert result.returncode == 0, result.stderr
    actions = {o["name"]: o["action"] for o in json.loads(result.stdout)["objects"]}
    assert actions[P0] == actions[P1] == "unchanged"
    assert cluster.writes() == []
    for name in (P0, P1):
        sent = [r.json()["spec"] for r in queue_patches(cluster, name)]
        assert sent and all("deserved" not in s and "capability" not in s for s in sent)
    assert all("deserved" in r.json()["spec"] for r in queue_patches(cluster, P2))
    assert amounts(spec_of(cluster, P0))["deserved"] == LEND[0].deserved
    assert amounts(spec_of(cluster, P1))["deserved"] == LEND[1].deserved
    assert owned(cluster, P0, RECONCILER_MANAGER) == every

    result = diff(path, kubeconfig)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert cluster.writes() == []


def test_changed_platform_shares_do_not_fight_the_reconciler(cluster, kubeconfig, applied, kube):
    set_queue_shares(kube, LEND)
    p2_before = amounts(spec_of(cluster, P2))
    bigger = ONE_POOL.replace("nodes: 2", "nodes: 3", 1)
    assert bigger != ONE_POOL
    path = applied.parent / "bigger.yaml"
    path.write_text(bigger, encoding="utf-8")
    cluster.clear_log()

    result = apply(path, kubeconfig)

    # without leaving them out, xpool's new rendered values would meet a 409 conflict
    assert result.returncode == 0, result.stderr
    for name in (P0, P1):
        sent = [w.json()["spec"] for w in cluster.writes() if w.path == PATHS[name]]
        assert all("deserved" not in s and "capability" not in s for s in sent)
    # the fields the reconciler does not own still follow the platform file
    assert spec_of(cluster, P0)["guarantee"]["resource"][ACC] == 4
    assert amounts(spec_of(cluster, P0)) == {
        "deserved": LEND[0].deserved,
        "capability": LEND[0].capability,
    }
    assert amounts(spec_of(cluster, P1))["deserved"] == LEND[1].deserved
    # the queue the reconciler never touched follows the platform file
    assert amounts(spec_of(cluster, P2)) != p2_before
    assert PATHS[P2] in {w.path for w in cluster.writes()}


def test_reconciler_owning_only_the_accelerator_leaves_cpu_and_memory_to_apply(
    cluster, kubeconfig, applied, kube
):
    share = QueueShare(P1, deserved={ACC: "7"}, capability={ACC: "13"})
    [change] = set_queue_shares(kube, [share])
    assert change.after["deserved"] == {ACC: "7", "cpu": "120", "memory": "960Gi"}
    assert owned(cluster, P1, RECONCILER_MANAGER) == {f"deserved.{ACC}", f"capability.{ACC}"}
    cluster.clear_log()

    result = apply(applied, kubeconfig)

    assert result.returncode == 0, result.stderr
    assert cluster.writes() == []
    sent = [r.json()["spec"] for r in queue_patches(cluster, P1)]
    assert sent and all(s["deserved"] == {"cpu": "120", "memory": "960Gi"} for s in sent)
    assert amounts(spec_of(cluster, P1))["deserved"] == change.after["deserved"]
    assert {"deserved.cpu", "deserved.memory"} <= owned(cluster, P1, "xpool")


def test_same_shares_again_write_nothing(cluster, applied, kube):
    assert len(set_queue_shares(kube, LEND)) == 2
    cluster.clear_log()
    assert set_queue_shares(kube, LEND) == []
    # the same amounts written differently are the same quantities
    same = QueueShare(
        P0,
        deserved={ACC: "4.0", "cpu": "96000m", "memory": "786432Mi"},
        capability={ACC: "6", "cpu": "144", "memory": "1152Gi"},
    )
    assert set_queue_shares(kube, [same]) == []
    assert {r.method for r in cluster.requests} == {"GET"}


def test_dry_run_returns_the_changes_and_persists_nothing(cluster, applied, kube):
    before = {name: cluster.get(QUEUES, "Queue", name) for name in (P0, P1)}

    changes = set_queue_shares(kube, LEND, dry_run=True)

    assert [c.name for c in changes] == [P0, P1]
    assert changes[1].after["deserved"] == LEND[1].deserved
    assert cluster.writes() == []
    patches = [r for r in cluster.requests if r.method == "PATCH"]
    assert len(patches) == 2 and all(r.query.get("dryRun") == "All" for r in patches)
    assert {name: cluster.get(QUEUES, "Queue", name) for name in (P0, P1)} == before


def test_missing_queue_is_bad_input_and_nothing_is_written(cluster, applied, kube):
    missing = QueueShare("npu-qa-p9-ascend910b", deserved={ACC: "1"}, capability={ACC: "1"})
    with pytest.raises(InputError) as caught:
        set_queue_shares(kube, [LEND[0], missing])
    assert str(caught.value) == (
        "xpool: Queue npu-qa-p9-ascend910b does not exist: run `xpool apply FILE` first"
    )
    assert caught.value.exit_code == 2
    assert cluster.writes() == []
    assert amounts(spec_of(cluster, P0)) == RENDERED_P0


@pytest.mark.parametrize(
    ("deserved", "capability", "field", "words"),
    [
        ({ACC: "8"}, {ACC: "6"}, f"spec.capability.{ACC}", "capability must be >= deserved"),
        ({ACC: "2"}, {ACC: "6"}, f"spec.deserved.{ACC}", "must be >= guarantee"),
        ({ACC: "1.5"}, {ACC: "6"}, f"spec.deserved.{ACC}", "not a whole number"),
        ({ACC: "4", "memory": "lots"}, {ACC: "6"}, "spec.deserved.memory", "is not a quantity"),
    ],
)
def test_shares_volcano_would_refuse_are_bad_input(
    cluster, applied, kube, deserved, capability, field, words
):
    share = QueueShare(P0, deserved=deserved, capability=capability)
    with pytest.raises(InputError) as caught:
        set_queue_shares(kube, [LEND[1], share])
    message = str(caught.value)
    assert message.startswith(f"Queue {P0}: {field}:"), message
    assert words in message
    assert cluster.writes() == []
