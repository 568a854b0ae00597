"""`xpool render`: golden files, determinism, Volcano validity, tier semantics, RBAC, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_xpool
from xpool.capacity.packing import worker_sizes
from xpool.render import Rendering, render_platform, validate_volcano
from xpool.resolve import resolve_platform
from xpool.volcano import Job, Queue

GOLDEN = Path(__file__).parent / "golden"
KUBERNETES_EXAMPLES = ["platform.yaml", "ascend-only.yaml"]
ALLOWED_VERBS = {"get", "list", "watch", "patch", "update", "create", "delete"}


def render(example: str) -> Rendering:
    path = EXAMPLES / example
    resolved = resolve_platform(path)
    loaded, plan = resolved.loaded, resolved.plan
    return render_platform(loaded.platform, plan, loaded.architectures, resolved.mount)


def of_kind(rendering: Rendering, kind: str) -> list[dict]:
    return [o.obj for o in rendering.objects if o.kind == kind]


@pytest.mark.parametrize("example", KUBERNETES_EXAMPLES)
def test_golden(example: str, update_golden: bool) -> None:
    rendering = render(example)
    stem = Path(example).stem
    outputs = {
        f"{stem}.yaml": rendering.yaml(),
        f"{stem}.launch-specs.json": json.dumps(rendering.launch_specs, indent=2) + "\n",
    }
    for name, text in outputs.items():
        golden = GOLDEN / name
        if update_golden:
            golden.write_text(text, encoding="utf-8")
            continue
        assert golden.exists(), f"{golden} missing: run `pytest tests/render --update-golden`"
        assert text == golden.read_text(encoding="utf-8"), (
            f"{name} differs from the golden file; if intended, run `pytest --update-golden`"
        )


@pytest.mark.parametrize("example", KUBERNETES_EXAMPLES)
def test_two_renders_are_byte_identical(example: str) -> None:
    first, second = render(example), render(example)
    assert first.yaml() == second.yaml()
    assert first.json() == second.json()


@pytest.mark.parametrize("example", KUBERNETES_EXAMPLES)
def test_every_volcano_object_validates_with_the_generated_client(example: str) -> None:
    rendering = render(example)
    volcano = [o.obj for o in rendering.objects if o.kind in ("Queue", "Job")]
    assert volcano
    for obj in volcano:
        validate_volcano(obj)
        model = {"Queue": Queue, "Job": Job}[obj["kind"]].model_validate(obj)
        assert model.spec is not None


def test_apply_order() -> None:
    kinds = [o.kind for o in render("platform.yaml").objects]
    order = [
        "Namespace",
        "PriorityClass",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "NetworkPolicy",
        "ConfigMap",
        "Queue",
        "Deployment",
        "Service",
        "StatefulSet",
        "Job",
        "CronJob",
        "PrometheusRule",
    ]
    firsts = [kinds.index(k) for k in order]
    assert firsts == sorted(firsts)
    assert kinds[-1] == "ConfigMap"  # the Grafana dashboard comes with monitoring, last


def test_queue_shares_match_the_planner() -> None:
    rendering = render("platform.yaml")
    resolved = resolve_platform(EXAMPLES / "platform.yaml")
    plan = resolved.plan
    queues = {q["metadata"]["name"]: q["spec"] for q in of_kind(rendering, "Queue")}
    for tier in plan.tiers:
        spec = queues[f"xpool-{tier.tier.lower()}-{tier.pool}"]
        resource = "nvidia.com/gpu" if tier.pool == "rtx5090" else "huawei.com/Ascend910"
        assert spec["deserved"][resource] == tier.deserved_accelerators
        if tier.guarantee_accelerators:
            assert spec["guarantee"]["resource"][resource] == tier.guarantee_accelerators
        assert spec["capability"][resource] >= spec["deserved"][resource]
    # P0 does not borrow: capability = deserved. P1 borrows up to 16 - P0's guarantee (3).
    assert queues["xpool-p0-rtx5090"]["capability"] == queues["xpool-p0-rtx5090"]["deserved"]
    assert queues["xpool-p1-rtx5090"]["capability"]["nvidia.com/gpu"] == 13
    assert queues["xpool-p0-rtx5090"]["deserved"]["cpu"] == "48"  # 6 of 8 GPUs x 64 / 8


def test_p0_is_never_reclaimed_nor_preempted() -> None:
    rendering = render("platform.yaml")
    for queue in of_kind(rendering, "Queue"):
        tier = queue["metadata"]["labels"]["xpool.io/tier"]
        assert queue["spec"]["reclaimable"] is (tier != "P0")
    for job in of_kind(rendering, "Job"):
        tier = job["metadata"]["labels"]["xpool.io/tier"]
        for task in job["spec"]["tasks"]:
            value = task["template"]["metadata"]["annotations"]["volcano.sh/preemptable"]
            if tier == "P0":
                assert value == "false"
            if tier == "P2" or job["metadata"]["name"].endswith("-burst"):
                assert value == "true"


def test_worker_jobs_fit_serving() -> None:
    for job in of_kind(render("platform.yaml"), "Job"):
        spec = job["spec"]
        assert spec["schedulerName"] == "volcano"
        assert spec["priorityClassName"].startswith("xpool-")
        for policy in spec.get("policies", []):
            assert policy.get("action") != "RestartJob"
        for task in spec["tasks"]:
            assert task["template"]["spec"]["restartPolicy"] == "Always"
            assert task.get("minAvailable", 0) <= task["replicas"]
        assert spec["minAvailable"] <= sum(t["replicas"] for t in spec["tasks"])


def test_worker_sizes_pack_onto_nodes() -> None:
    assert worker_sizes(6, 8) == [(4, 1), (2, 1)]
    assert worker_sizes(13, 8) == [(8, 1), (4, 1), (1, 1)]
    assert worker_sizes(16, 8) == [(8, 2)]
    assert worker_sizes(0, 8) == []
    # the rtx5090 split 6/5/5 of 2 x 8 packs (first-fit decreasing) onto the 2 nodes
    sizes = sorted(
        (s for d in (6, 5, 5) for s, n in worker_sizes(d, 8) for _ in range(n)), reverse=True
    )
    nodes = [8, 8]
    for s in sizes:
        i = next(i for i, free in enumerate(nodes) if free >= s)
        nodes[i] -= s
    assert nodes == [0, 0]


def test_rbac_is_least_privilege() -> None:
    rendering = render("platform.yaml")
    roles = of_kind(rendering, "Role") + of_kind(rendering, "ClusterRole")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), (role["metadata"]["name"], rule)
            assert set(rule["verbs"]) <= ALLOWED_VERBS, rule
            assert "secrets" not in rule["resources"]
            assert "xpool-platform" not in rule.get("resourceNames", []), rule
            if "create" in rule["verbs"] and not rule.get("resourceNames"):
                # only the reconciler's leader Lease, created by POST
                assert role["metadata"]["name"] == "xpool-reconciler", rule
                assert rule == {**rule, "resources": ["leases"], "verbs": ["create"]}
            if "delete" in rule["verbs"]:
                # only the gateway replicas withdrawing their own report Leases, by name
                assert role["metadata"]["name"] == "xpool-gateway", rule
                assert rule["resources"] == ["leases"], rule
                assert rule["resourceNames"] == [
                    "xpool-gateway-xpool-gateway-0",
                    "xpool-gateway-xpool-gateway-1",
                ]


def _containers(obj: dict) -> list[dict]:
    spec = obj["spec"]
    if obj["kind"] == "Job":  # Volcano: one pod template per task
        return [c for t in spec["tasks"] for c in t["template"]["spec"]["containers"]]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]["containers"] if "template" in spec else []


def test_client_api_keys_reach_the_gateway_only_from_the_secret() -> None:
    """spec.gateway.apiKeysEnv: the gateway's container reads it from Secret
    xpool-credentials (required: no pod serves open without it); no other container gets it,
    and no value is written anywhere."""
    rendering = render("platform.yaml")
    holders = {}
    for obj in rendering.objects:
        if obj.kind in ("Deployment", "StatefulSet", "CronJob", "Job"):
            for container in _containers(obj.obj):
                for env in container.get("env", []):
                    if env["name"] == "XPOOL_GATEWAY_API_KEYS":
                        holders[obj.obj["metadata"]["name"]] = env
    assert holders == {
        "xpool-gateway": {
            "name": "XPOOL_GATEWAY_API_KEYS",
            "valueFrom": {
                "secretKeyRef": {
                    "name": "xpool-credentials",
                    "key": "XPOOL_GATEWAY_API_KEYS",
                    "optional": False,
                }
            },
        }
    }
    assert not any(o.kind == "Secret" for o in rendering.objects)


def test_labels_on_everything() -> None:
    """The platform's label on each of its objects; not on the one the cluster's platforms
    share (Volcano's scheduler configuration), which no platform may call its own."""
    shared = []
    for obj in render("platform.yaml").objects:
        labels = obj.obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "xpool"
        if obj.shared:
            shared.append((obj.kind, obj.namespace, obj.name))
            assert "app.kubernetes.io/part-of" not in labels
        else:
            assert labels["app.kubernetes.io/part-of"] == "qa-platform"
    assert shared == [("ConfigMap", "volcano-system", "volcano-scheduler-configmap")]


def test_launch_specs() -> None:
    specs = {(s["model"], s["version"]): s for s in render("platform.yaml").launch_specs}
    qa = specs[("qa-chat", "1.0.0")]["launch"]
    assert qa["model_uid"] == "qa-chat--1.0.0--{n}"
    assert qa["replica"] == 1
    assert (qa["model_format"], qa["quantization"]) == ("gptq", "Int8")
    assert specs[("embedding", "1.0.0")]["launch"]["model_type"] == "embedding"
    assert specs[("reranker", "1.0.0")]["launch"]["model_type"] == "rerank"
    assert specs[("translation", "1.0.0")]["launch"]["model_engine"] == "vLLM"


def test_platform_configmap_round_trips() -> None:
    rendering = render("platform.yaml")
    cm = next(
        o for o in of_kind(rendering, "ConfigMap") if o["metadata"]["name"] == "xpool-platform"
    )
    assert cm["data"]["platform.yaml"] == (EXAMPLES / "platform.yaml").read_text(encoding="utf-8")


def test_cli_yaml_json_out_and_launch_specs(tmp_path: Path) -> None:
    path = str(EXAMPLES / "platform.yaml")
    yaml_run = run_xpool("render", path)
    assert yaml_run.returncode == 0, yaml_run.stderr
    assert yaml_run.stdout == (GOLDEN / "platform.yaml").read_text(encoding="utf-8")
    json_run = run_xpool("render", path, "-o", "json")
    assert json_run.returncode == 0
    listing = json.loads(json_run.stdout)
    assert (
        listing["kind"] == "List" and len(listing["items"]) == yaml_run.stdout.count("\n---\n") + 1
    )
    out = run_xpool("render", path, "--out", str(tmp_path / "objs"))
    assert out.returncode == 0 and out.stdout == ""
    files = sorted(p.name for p in (tmp_path / "objs").iterdir())
    assert files[0] == "00-namespace-xpool.yaml" and len(files) == len(listing["items"])
    specs = run_xpool("render", path, "--launch-specs")
    assert json.loads(specs.stdout)[0]["launch"]["model_uid"] == "qa-chat--1.0.0--{n}"


def test_cli_bad_input_is_located(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (EXAMPLES / "platform.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("tier: P0\n", "tier: P9\n", 1), encoding="utf-8")
    result = run_xpool("render", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{bad}:" in result.stderr and "P9" in result.stderr


def test_cli_without_kubernetes(tmp_path: Path) -> None:
    text = (EXAMPLES / "platform.yaml").read_text(encoding="utf-8")
    no_kube = tmp_path / "local.yaml"
    no_kube.write_text(text.replace("  kubernetes:\n    namespace: xpool\n", ""), encoding="utf-8")
    result = run_xpool("render", str(no_kube))
    assert result.returncode == 0
    assert result.stdout == ""
    assert "nothing to render for Kubernetes" in result.stderr
    specs = run_xpool("render", str(no_kube), "--launch-specs")
    assert specs.returncode == 0 and len(json.loads(specs.stdout)) == 7  # one per version


def _gateway_env(rendering: Rendering) -> dict[str, dict]:
    [gateway] = [o.obj for o in rendering.objects if o.kind == "StatefulSet"]
    [container] = _containers(gateway)
    return {e["name"]: e for e in container["env"]}


def test_an_s3_batch_store_gives_the_gateway_its_credentials_from_the_secret(
    tmp_path: Path,
) -> None:
    """spec.batch.store: s3://...: the gateway reads AWS_* from Secret xpool-credentials, the
    keys required (no replica serves the Batch API without them), region and endpoint
    optional; a directory store (the default) adds nothing."""
    assert not any(n.startswith("AWS_") for n in _gateway_env(render("platform.yaml")))
    text = (EXAMPLES / "platform.yaml").read_text(encoding="utf-8")
    path = tmp_path / "s3-batches.yaml"
    path.write_text(text.replace("spec:\n", "spec:\n  batch:\n    store: s3://batches/xpool\n", 1))
    resolved = resolve_platform(path)
    loaded = resolved.loaded
    env = _gateway_env(
        render_platform(loaded.platform, resolved.plan, loaded.architectures, resolved.mount)
    )
    refs = {n: e["valueFrom"]["secretKeyRef"] for n, e in env.items() if n.startswith("AWS_")}
    assert refs == {
        name: {"name": "xpool-credentials", "key": name, "optional": optional}
        for name, optional in (
            ("AWS_ACCESS_KEY_ID", False),
            ("AWS_SECRET_ACCESS_KEY", False),
            ("AWS_SESSION_TOKEN", True),
            ("AWS_REGION", True),
            ("AWS_ENDPOINT_URL", True),
        )
    }
