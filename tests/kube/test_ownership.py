"""Whose objects `xpool apply` may change and prune: platforms side by side, existing objects
refused unless adopted, the cluster's shared scheduler configuration never pruned."""

from __future__ import annotations

import json

from tests.kube.conftest import NS, ONE_POOL, VOLCANO_NS, run, two_pools
from tests.kube.test_apply import PART_OF, apply, expected_id, outcomes

QUEUES = "scheduling.volcano.sh/v1beta1"
RBAC = "rbac.authorization.k8s.io/v1"
CLUSTER_KINDS = ("PriorityClass", "ClusterRole", "ClusterRoleBinding", "Queue")
SCHEDULER = f"ConfigMap {VOLCANO_NS}/volcano-scheduler-configmap"


def cluster_scoped(result) -> dict[str, str]:
    return {k: v for k, v in outcomes(result).items() if k.split(" ")[0] in CLUSTER_KINDS}


def queue_names(cluster) -> set[str]:
    return {q["metadata"]["name"] for q in cluster.objects(QUEUES, "Queue")}


def errors(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_two_namespaces_coexist_and_prune_only_their_own(cluster, kubeconfig, platform, tmp_path):
    path = platform(two_pools())
    first = apply(path, kubeconfig, "-n", "team-a")
    assert first.returncode == 0, first.stderr
    team_a = cluster_scoped(first)
    assert len(team_a) == 13 and set(team_a.values()) == {"created"}
    assert all(name.split(" ")[1].startswith(("team-a-", "xpool-team-a-")) for name in team_a)

    second = apply(path, kubeconfig, "-n", "team-b")
    assert second.returncode == 0, second.stderr
    team_b = cluster_scoped(second)
    assert len(team_b) == 13 and set(team_b.values()) == {"created"}
    assert not set(team_a) & set(team_b)
    # the scheduler configuration is the cluster's: the same for both, written once
    assert outcomes(second)[SCHEDULER] == "unchanged"

    for team in ("team-a", "team-b"):
        binding = cluster.get(RBAC, "ClusterRoleBinding", f"xpool-{team}-queues")
        assert binding["roleRef"]["name"] == f"xpool-{team}-queues"
        assert [s["namespace"] for s in binding["subjects"]] == [team]
        assert binding["metadata"]["labels"][PART_OF] == expected_id(team)
        role = cluster.get(RBAC, "ClusterRole", f"xpool-{team}-queues")
        assert all(n.startswith(f"{team}-") for n in role["rules"][0]["resourceNames"])
        job = cluster.get("batch.volcano.sh/v1alpha1", "Job", "xinference-p0-rtx5090", team)
        assert job["spec"]["queue"] == f"{team}-p0-rtx5090"
        assert job["spec"]["priorityClassName"] == f"{team}-p0"

    # team-b drops its second pool: its prune takes its own queues, never team-a's
    one_pool = tmp_path / "one-pool.yaml"
    one_pool.write_text(ONE_POOL, encoding="utf-8")
    result = apply(one_pool, kubeconfig, "-n", "team-b")
    assert result.returncode == 0, result.stderr
    pruned = {k for k, v in outcomes(result).items() if v == "pruned"}
    assert pruned and all("team-b" in k or k.startswith("Job team-b/") for k in pruned)
    assert {f"team-a-{t}-rtx5090" for t in ("p0", "p1", "p2")} <= queue_names(cluster)
    assert not {q for q in queue_names(cluster) if q.startswith("team-b-") and "rtx5090" in q}
    assert cluster.get(QUEUES, "Queue", "team-a-rtx5090") is not None
    assert cluster.get("v1", "ConfigMap", "volcano-scheduler-configmap", VOLCANO_NS)

    # and team-a, applied again, finds everything as it left it
    cluster.clear_log()
    result = apply(path, kubeconfig, "-n", "team-a")
    assert result.returncode == 0, result.stderr
    assert set(outcomes(result).values()) == {"unchanged"}
    assert cluster.writes() == []


def seed_strangers(cluster) -> None:
    """Objects with rendered names that xpool did not create: a hand-made ConfigMap, a Queue
    of another ApplySet, and the scheduler configuration as the Volcano chart installs it."""
    cluster.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, "kubectl")
    cluster.seed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "xpool-platform", "namespace": NS},
            "data": {"platform.yaml": "by hand\n"},
        },
        manager="ops-console",
    )
    cluster.seed(
        {
            "apiVersion": QUEUES,
            "kind": "Queue",
            "metadata": {
                "name": "npu-qa-p2-ascend910b",
                "labels": {PART_OF: "applyset-other-v1", "app.kubernetes.io/part-of": "batch"},
            },
            "spec": {"weight": 1},
        },
        manager="xpool",
    )
    cluster.seed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "volcano-scheduler-configmap",
                "namespace": VOLCANO_NS,
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {
                    "meta.helm.sh/release-name": "volcano",
                    "meta.helm.sh/release-namespace": VOLCANO_NS,
                },
            },
            "data": {"volcano-scheduler.conf": 'actions: "enqueue, allocate, backfill"\n'},
        },
        manager="helm",
    )
    cluster.clear_log()


def test_existing_objects_are_refused_unless_adopted(cluster, kubeconfig, platform):
    seed_strangers(cluster)
    before = {
        "platform": cluster.get("v1", "ConfigMap", "xpool-platform", NS),
        "queue": cluster.get(QUEUES, "Queue", "npu-qa-p2-ascend910b"),
        "scheduler": cluster.get("v1", "ConfigMap", "volcano-scheduler-configmap", VOLCANO_NS),
    }
    path = platform()
    for extra in ((), ("--force-conflicts",), ("--dry-run=server",)):
        result = apply(path, kubeconfig, *extra)
        assert result.returncode == 2, (extra, result.stderr)
        lines = errors(result)
        assert len(lines) == 3, result.stderr
        assert all("re-run with --adopt" in line for line in lines)
        scheduler, platform_file, queue = lines
        assert "volcano-scheduler-configmap" in scheduler and "Helm release volcano" in scheduler
        assert "field managers: helm" in scheduler
        assert f"ConfigMap {NS}/xpool-platform" in platform_file
        assert "field managers: ops-console" in platform_file
        assert "Queue npu-qa-p2-ascend910b" in queue
        assert "ApplySet applyset-other-v1 (platform batch)" in queue
        assert cluster.writes() == [], extra  # nothing written: every target is read first
        assert result.stdout == ""
    assert cluster.get("v1", "ConfigMap", "xpool-applyset", NS) is None
    assert before == {
        "platform": cluster.get("v1", "ConfigMap", "xpool-platform", NS),
        "queue": cluster.get(QUEUES, "Queue", "npu-qa-p2-ascend910b"),
        "scheduler": cluster.get("v1", "ConfigMap", "volcano-scheduler-configmap", VOLCANO_NS),
    }

    # a client dry run reads nothing, so it has nothing to adopt
    cluster.clear_log()
    result = apply(path, kubeconfig, "--adopt", "--dry-run=client")
    assert result.returncode == 2 and "--adopt with --dry-run=client" in result.stderr
    assert cluster.requests == []

    # diff says so too, and counts them as changes
    result = run("diff", str(path), "--kubeconfig", str(kubeconfig))
    assert result.returncode == 1
    refused = [line for line in result.stderr.splitlines() if line.startswith("not ours:")]
    assert len(refused) == 3 and "3 adopt" in result.stderr

    # --adopt takes them over; the fields Helm and ops-console own still need forcing
    result = apply(path, kubeconfig, "--adopt")
    assert result.returncode == 1, result.stderr
    assert "conflict" in errors(result)[0] and "helm" in errors(result)[0]
    result = apply(path, kubeconfig, "--adopt", "--force-conflicts")
    assert result.returncode == 0, result.stderr
    actions = outcomes(result)
    assert actions[f"Namespace {NS}"] == "exists"
    assert {k for k, v in actions.items() if v == "adopted"} == {
        SCHEDULER,
        f"ConfigMap {NS}/xpool-platform",
        "Queue npu-qa-p2-ascend910b",
    }
    queue = cluster.get(QUEUES, "Queue", "npu-qa-p2-ascend910b")
    assert queue["metadata"]["labels"][PART_OF] == expected_id()
    scheduler = cluster.get("v1", "ConfigMap", "volcano-scheduler-configmap", VOLCANO_NS)
    assert PART_OF not in scheduler["metadata"]["labels"]
    assert "reclaim" in scheduler["data"]["volcano-scheduler.conf"]
    # the Namespace someone else made is used as it is: never written, so never ours
    namespace = cluster.get("v1", "Namespace", NS)
    assert PART_OF not in namespace["metadata"]["labels"]
    assert not any(r.path == f"/api/v1/namespaces/{NS}" for r in cluster.writes())

    # adopted, they are ours: a plain apply is a no-op
    cluster.clear_log()
    result = apply(path, kubeconfig)
    assert result.returncode == 0, result.stderr
    assert set(outcomes(result).values()) == {"unchanged", "exists"}
    assert cluster.writes() == []


def test_prune_keeps_what_is_not_of_this_applyset(cluster, kubeconfig, platform):
    """Dropping every pool but one prunes only members: the Namespace that was there before,
    a neighbour's ConfigMap and the shared scheduler configuration stay."""
    cluster.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, "kubectl")
    cluster.seed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "notes", "namespace": NS},
            "data": {"a": "b"},
        }
    )
    assert apply(platform(two_pools()), kubeconfig).returncode == 0
    result = apply(platform(), kubeconfig)
    assert result.returncode == 0, result.stderr
    pruned = {k for k, v in outcomes(result).items() if v == "pruned"}
    assert len(pruned) == 8 and all("rtx5090" in k for k in pruned)
    assert cluster.get("v1", "Namespace", NS) is not None
    assert cluster.get("v1", "ConfigMap", "notes", NS) is not None
    assert cluster.get("v1", "ConfigMap", "volcano-scheduler-configmap", VOLCANO_NS)


def test_a_member_scheduler_configuration_leaves_the_applyset(cluster, kubeconfig, platform):
    """Before, the scheduler configuration was a member of the ApplySet that applied it:
    the next apply takes its label off (and the parent's record of volcano-system) without
    pruning it."""
    path = platform()
    assert apply(path, kubeconfig).returncode == 0
    scheduler = cluster.get("v1", "ConfigMap", "volcano-scheduler-configmap", VOLCANO_NS)
    scheduler["metadata"] = {
        "name": "volcano-scheduler-configmap",
        "namespace": VOLCANO_NS,
        "labels": {**scheduler["metadata"]["labels"], PART_OF: expected_id()},
    }
    parent = cluster.get("v1", "ConfigMap", "xpool-applyset", NS)
    notes = parent["metadata"]["annotations"]
    notes["applyset.kubernetes.io/additional-namespaces"] = VOLCANO_NS
    parent["metadata"] = {k: parent["metadata"][k] for k in ("name", "namespace", "labels")}
    parent["metadata"]["annotations"] = notes
    for obj in (scheduler, parent):
        cluster.apply(
            cluster.resource_type("v1", "ConfigMap"),
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            json.dumps(obj).encode(),
            {"fieldManager": "xpool"},
            "xpool",
        )
    result = apply(path, kubeconfig)
    assert result.returncode == 0, result.stderr
    assert "pruned" not in outcomes(result).values()
    scheduler = cluster.get("v1", "ConfigMap", "volcano-scheduler-configmap", VOLCANO_NS)
    assert PART_OF not in scheduler["metadata"]["labels"]
    notes = cluster.get("v1", "ConfigMap", "xpool-applyset", NS)["metadata"]["annotations"]
    assert "applyset.kubernetes.io/additional-namespaces" not in notes
