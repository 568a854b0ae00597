"""`xpool apply`: order, idempotence without writes, dry runs, conflicts, pruning."""

from __future__ import annotations

import base64
import hashlib
import json

from tests.kube.conftest import NS, ONE_POOL, VOLCANO_NS, run, two_pools

PART_OF = "applyset.kubernetes.io/part-of"


def expected_id(namespace: str = NS) -> str:
    # KEP-3659: base64url(sha256("<name>.<namespace>.<kind>.<group>")), unpadded
    digest = hashlib.sha256(f"xpool-applyset.{namespace}.ConfigMap.".encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


def auth(record) -> str:
    return {k.lower(): v for k, v in record.headers.items()}.get("authorization", "")


def outcomes(result) -> dict[str, str]:
    assert result.stdout, result.stderr
    data = json.loads(result.stdout)
    return {
        f"{o['kind']} {o['namespace'] + '/' if o['namespace'] else ''}{o['name']}": o["action"]
        for o in data["objects"]
    }


def rendered(path) -> list[dict]:
    result = run("render", str(path), "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["items"]


def apply(path, kubeconfig, *extra, env=None):
    return run(
        "apply",
        str(path),
        "--kubeconfig",
        str(kubeconfig),
        "-o",
        "json",
        "--skip-models",
        *extra,
        env=env,
    )


def test_apply_creates_everything_in_order(cluster, kubeconfig, platform):
    path = platform()
    result = apply(path, kubeconfig)
    assert result.returncode == 0, result.stderr
    objs = rendered(path)
    assert set(outcomes(result).values()) == {"created"}
    assert len(outcomes(result)) == len(objs)

    # the real (non-dry-run) apply requests follow the renderer's order, namespace first
    member_paths = [
        r.path
        for r in cluster.writes()
        if r.is_apply and not r.path.endswith("/configmaps/xpool-applyset")
    ]
    names = [p.rsplit("/", 1)[1] for p in member_paths]
    assert names == [o["metadata"]["name"] for o in objs]
    assert member_paths[0] == f"/api/v1/namespaces/{NS}"
    assert all(r.query.get("fieldManager") == "xpool" for r in cluster.writes())
    assert not any("force" in r.query for r in cluster.requests)
    assert all(auth(r).startswith("Bearer ") for r in cluster.requests)

    for o in objs:
        live = cluster.get(
            o["apiVersion"], o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")
        )
        assert live is not None, o["metadata"]["name"]
        managers = {e["manager"] for e in live["metadata"]["managedFields"]}
        assert managers == {"xpool"}
        if o["metadata"].get("namespace") == VOLCANO_NS:
            # the cluster's scheduler configuration: shared, no platform's ApplySet member
            assert PART_OF not in live["metadata"]["labels"]
        else:
            assert live["metadata"]["labels"][PART_OF] == expected_id()

    parent = cluster.get("v1", "ConfigMap", "xpool-applyset", NS)
    assert parent["metadata"]["labels"]["applyset.kubernetes.io/id"] == expected_id()
    notes = parent["metadata"]["annotations"]
    assert notes["applyset.kubernetes.io/tooling"].startswith("xpool/")
    kinds = notes["applyset.kubernetes.io/contains-group-kinds"].split(",")
    assert kinds == sorted(kinds)
    assert {"Namespace", "ConfigMap", "Queue.scheduling.volcano.sh", "Job.batch.volcano.sh"} <= set(
        kinds
    )
    assert "applyset.kubernetes.io/additional-namespaces" not in notes  # members live in NS
    assert PART_OF not in parent["metadata"]["labels"]


def test_second_apply_performs_no_writes(cluster, kubeconfig, platform):
    path = platform()
    assert apply(path, kubeconfig).returncode == 0
    cluster.clear_log()
    result = apply(path, kubeconfig)
    assert result.returncode == 0, result.stderr
    assert set(outcomes(result).values()) == {"unchanged"}
    assert cluster.writes() == []
    assert {r.method for r in cluster.requests} == {"GET", "PATCH"}
    assert all(r.dry_run for r in cluster.requests if r.method == "PATCH")


def test_change_is_configured_and_only_changed_objects_are_written(cluster, kubeconfig, platform):
    assert apply(platform(), kubeconfig).returncode == 0
    cluster.clear_log()
    changed = ONE_POOL.replace("peakQps: 10, baseQps: 2", "peakQps: 12, baseQps: 2")
    result = apply(platform(changed), kubeconfig)
    assert result.returncode == 0, result.stderr
    actions = outcomes(result)
    configured = {k for k, v in actions.items() if v == "configured"}
    assert f"ConfigMap {NS}/xpool-platform" in configured
    assert {k for k, v in actions.items() if v not in ("configured", "unchanged")} == set()
    written = {r.path.rsplit("/", 1)[1] for r in cluster.writes()}
    assert written == {k.rsplit("/", 1)[1].split(" ")[-1] for k in configured}


def test_dry_run_server_persists_nothing(cluster, kubeconfig, platform):
    result = apply(platform(), kubeconfig, "--dry-run=server")
    assert result.returncode == 0, result.stderr
    assert set(outcomes(result).values()) == {"created"}
    assert cluster.writes() == []
    assert cluster.get("v1", "Namespace", NS) is None
    assert cluster.objects("scheduling.volcano.sh/v1beta1", "Queue") == []

    # on an applied platform, a change is reported but not persisted
    assert apply(platform(), kubeconfig).returncode == 0
    before = cluster.get("v1", "ConfigMap", "xpool-platform", NS)
    cluster.clear_log()
    changed = ONE_POOL.replace("peakQps: 10, baseQps: 2", "peakQps: 12, baseQps: 2")
    result = apply(platform(changed), kubeconfig, "--dry-run=server")
    assert result.returncode == 0, result.stderr
    assert outcomes(result)[f"ConfigMap {NS}/xpool-platform"] == "configured"
    assert cluster.writes() == []
    assert cluster.get("v1", "ConfigMap", "xpool-platform", NS) == before


def test_dry_run_client_sends_nothing(cluster, kubeconfig, platform):
    result = apply(platform(), kubeconfig, "--dry-run=client")
    assert result.returncode == 0, result.stderr
    assert cluster.requests == []
    assert "not contacted" in result.stderr
    assert set(outcomes(result).values()) == {"would apply"}


def edit(cluster, api_version: str, kind: str, name: str, namespace: str, patch: dict) -> None:
    """Another client's change (a merge patch, recorded as an Update by `ops-console`)."""
    cluster.patch(
        cluster.resource_type(api_version, kind),
        namespace,
        name,
        json.dumps(patch).encode(),
        {"fieldManager": "ops-console"},
        "application/merge-patch+json",
        "kubectl",
    )


def test_conflict_with_another_manager(cluster, kubeconfig, platform):
    path = platform()
    assert apply(path, kubeconfig).returncode == 0
    edit(cluster, "v1", "ConfigMap", "xpool-platform", NS, {"data": {"platform.yaml": "edited\n"}})
    # an object after the contested one, to be created again
    cluster.delete(cluster.resource_type("v1", "ConfigMap"), NS, "xpool-launch-specs", b"", {})
    cluster.clear_log()
    result = apply(path, kubeconfig)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    line = errors[0]
    assert f"ConfigMap {NS}/xpool-platform" in line
    assert ".data.platform.yaml" in line
    assert '"ops-console"' in line
    assert "--force-conflicts" in line and "remove the field from the other manager" in line
    assert "Traceback" not in result.stderr
    live = cluster.get("v1", "ConfigMap", "xpool-platform", NS)
    assert live["data"]["platform.yaml"] == "edited\n"
    # stopped at the conflict: objects after it were not applied
    assert cluster.get("v1", "ConfigMap", "xpool-launch-specs", NS) is None
    # the partial summary is still data on stdout
    assert outcomes(result)[f"ConfigMap {VOLCANO_NS}/volcano-scheduler-configmap"] == "unchanged"
    assert f"ConfigMap {NS}/xpool-launch-specs" not in outcomes(result)

    result = apply(path, kubeconfig, "--force-conflicts")
    assert result.returncode == 0, result.stderr
    live = cluster.get("v1", "ConfigMap", "xpool-platform", NS)
    assert live["data"]["platform.yaml"] == path.read_text(encoding="utf-8")
    assert cluster.get("v1", "ConfigMap", "xpool-launch-specs", NS) is not None
    assert any(r.query.get("force") == "true" for r in cluster.writes())


def test_prune_removes_exactly_what_was_dropped(cluster, kubeconfig, platform):
    assert apply(platform(two_pools()), kubeconfig).returncode == 0
    assert len(cluster.objects("scheduling.volcano.sh/v1beta1", "Queue")) == 8
    # neighbours that are not ours: unlabelled, and labelled by another ApplySet
    cluster.seed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "xinference-p0-rtx5090-notes", "namespace": NS},
            "data": {"a": "b"},
        }
    )
    foreign = {PART_OF: "applyset-someone-else-v1"}
    cluster.seed(
        {
            "apiVersion": "scheduling.volcano.sh/v1beta1",
            "kind": "Queue",
            "metadata": {"name": "npu-qa-p2-rtx5090-other", "labels": foreign},
            "spec": {"weight": 1},
        }
    )

    # --no-prune keeps the dropped pool's objects
    result = apply(platform(), kubeconfig, "--no-prune")
    assert result.returncode == 0, result.stderr
    assert "pruned" not in outcomes(result).values()
    assert len(cluster.objects("scheduling.volcano.sh/v1beta1", "Queue")) == 9

    cluster.clear_log()
    result = apply(platform(), kubeconfig)
    assert result.returncode == 0, result.stderr
    pruned = sorted(k for k, v in outcomes(result).items() if v == "pruned")
    assert pruned == sorted(
        [f"Job {NS}/xinference-{t}-rtx5090" for t in ("p0", "p1", "p2")]
        + [f"Job {NS}/xinference-p1-rtx5090-burst"]
        + ["Queue npu-qa-rtx5090"]
        + [f"Queue npu-qa-{t}-rtx5090" for t in ("p0", "p1", "p2")]
    )
    queues = {
        q["metadata"]["name"] for q in cluster.objects("scheduling.volcano.sh/v1beta1", "Queue")
    }
    assert queues == {
        "npu-qa-ascend910b",
        "npu-qa-p0-ascend910b",
        "npu-qa-p1-ascend910b",
        "npu-qa-p2-ascend910b",
        "npu-qa-p2-rtx5090-other",
    }
    assert cluster.get("v1", "ConfigMap", "xinference-p0-rtx5090-notes", NS) is not None
    deletes = [r for r in cluster.writes() if r.method == "DELETE"]
    assert len(deletes) == 8
    assert all("rtx5090" in r.path for r in deletes)
    # a further apply is a no-op: nothing written, nothing pruned
    cluster.clear_log()
    result = apply(platform(), kubeconfig)
    assert set(outcomes(result).values()) == {"unchanged"}
    assert cluster.writes() == []


def test_namespace_flag_overrides_the_platform_namespace(cluster, kubeconfig, platform):
    result = apply(platform(), kubeconfig, "-n", "team-b")
    assert result.returncode == 0, result.stderr
    assert cluster.get("v1", "Namespace", "team-b") is not None
    assert cluster.get("v1", "Namespace", NS) is None
    assert cluster.get("v1", "ConfigMap", "xpool-platform", "team-b") is not None
    assert cluster.get("v1", "ConfigMap", "xpool-applyset", "team-b") is not None
    binding = cluster.get(
        "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "xpool-team-b-queues"
    )
    assert {s["namespace"] for s in binding["subjects"]} == {"team-b"}
    assert binding["metadata"]["labels"][PART_OF] == expected_id("team-b")
    # Volcano's own configuration stays in volcano-system
    assert cluster.get("v1", "ConfigMap", "volcano-scheduler-configmap", "volcano-system")


def test_unserved_kind_refused_before_any_write(cluster, kubeconfig, platform, monkeypatch):
    from tests.contract import apiserver

    kept = tuple(rt for rt in apiserver.RESOURCES if not rt.group.endswith("volcano.sh"))
    monkeypatch.setattr(apiserver, "RESOURCES", kept)
    monkeypatch.setattr(cluster, "_types", {(r.group, r.version, r.plural): r for r in kept})
    result = apply(platform(), kubeconfig)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert any(
        "scheduling.volcano.sh/v1beta1 Queue is not served by the cluster" in e
        and "install Volcano first" in e
        for e in errors
    ), result.stderr
    assert any("batch.volcano.sh/v1alpha1 Job is not served" in e for e in errors)
    assert cluster.writes() == []
    assert cluster.get("v1", "Namespace", NS) is None
