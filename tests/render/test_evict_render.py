"""Eviction drains first, on the rendered worker pods: the drain container and its preStop, the
worker's wait, the grace period, the drain's least-privilege identity and its network path to
the supervisor; and the offline check (render/check_evict.py) catching each one missing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from xpool.render import render_platform
from xpool.render.check_evict import check_evict
from xpool.render.check_network import selects
from xpool.render.check_quantity import parse_quantity
from xpool.render.resources import pool_resources, resource_name
from xpool.resolve import resolve_platform

DONE = "/var/run/xpool/drained"


def render(path: Path) -> list[dict[str, Any]]:
    resolved = resolve_platform(path)
    rendering = render_platform(
        resolved.loaded.platform, resolved.plan, resolved.loaded.architectures, resolved.mount
    )
    return [o.obj for o in rendering.objects]


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The article's platform with drainTimeout 5m."""
    text = (EXAMPLES / "platform.yaml").read_text(encoding="utf-8")
    assert "    drainTimeout: 120s\n" in text
    path = tmp_path_factory.mktemp("evict") / "platform.yaml"
    path.write_text(text.replace("    drainTimeout: 120s\n", "    drainTimeout: 5m\n"))
    return render(path)


def worker_pods(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{o['metadata']['name']}/{t['name']}", t["template"])
        for o in objects
        if o["kind"] == "Job" and o["apiVersion"].startswith("batch.volcano.sh/")
        for t in o["spec"]["tasks"]
    ]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def test_every_worker_pod_drains_before_its_worker_stops(objects) -> None:
    pods = worker_pods(objects)
    assert len(pods) >= 6  # P0, P1, P2 (and burst Jobs) on both pools
    for where, template in pods:
        spec = template["spec"]
        worker, drain = spec["containers"]
        assert (worker["name"], drain["name"]) == ("xinference-worker", "drain"), where
        assert spec["terminationGracePeriodSeconds"] >= 300 + 30, where
        assert template["metadata"]["annotations"]["xpool.io/drain-timeout-seconds"] == "300"
        assert {"xpool.io/tier", "xpool.io/pool"} <= template["metadata"]["labels"].keys()
        hook = drain["lifecycle"]["preStop"]["exec"]["command"]
        assert hook[:2] == ["sh", "-c"] and hook[2].startswith(
            f'exec xpool worker drain /etc/xpool/platform.yaml --worker "$POD_IP" '
            f"--done-file {DONE} "
        ), where
        assert drain["image"] == "xpool:0.1.0"
        wait = worker["lifecycle"]["preStop"]["exec"]["command"]
        assert wait[:2] == ["sh", "-c"]
        first, *then = wait[2].split("; done; ")
        assert first == f"until [ -e {DONE} ]; do sleep 1"  # waits for the drain, then
        assert then == ["kill -INT -1 2>/dev/null; kill -INT 1 2>/dev/null; sleep 5"]  # SIGINT
        # the file is on one emptyDir both mount
        dirs = [{m["mountPath"]: m["name"] for m in c["volumeMounts"]} for c in (worker, drain)]
        assert dirs[0]["/var/run/xpool"] == dirs[1]["/var/run/xpool"] == "drain"
        assert {"name": "drain", "emptyDir": {}} in spec["volumes"]
        assert "/etc/xpool" in dirs[1]  # the platform file the drain resolves


def test_only_the_drain_container_holds_a_token_and_the_pod_asks_for_its_share(objects) -> None:
    platform = resolve_platform(EXAMPLES / "platform.yaml").platform
    for where, template in worker_pods(objects):
        spec = template["spec"]
        assert spec["serviceAccountName"] == "xpool-worker-drain"
        assert spec["automountServiceAccountToken"] is False
        worker, drain = spec["containers"]
        token = "/var/run/secrets/kubernetes.io/serviceaccount"
        assert token in {m["mountPath"] for m in drain["volumeMounts"]}
        assert token not in {m["mountPath"] for m in worker["volumeMounts"]}
        assert "env" not in worker or all("secretKeyRef" not in str(e) for e in worker["env"])
        # the drain's requests come out of the worker's: the pod asks for its queue's share
        pool = platform.pool(template["metadata"]["labels"]["xpool.io/pool"])
        share = pool_resources(pool, worker["resources"]["requests"][resource_name(pool)])
        for resource in ("cpu", "memory"):
            total = sum(
                parse_quantity(c["resources"]["requests"][resource]) for c in (worker, drain)
            )
            assert total == parse_quantity(share[resource]), where
        assert "cpu" not in drain["resources"]["limits"]


def test_the_drain_identity_may_only_mark_routes_and_read_reports(objects) -> None:
    role = named(objects, "Role", "xpool-worker-drain")
    rules = [
        (r["apiGroups"], r["resources"], r.get("resourceNames"), r["verbs"]) for r in role["rules"]
    ]
    assert rules == [
        ([""], ["configmaps"], ["xpool-routes"], ["get", "patch"]),
        (["coordination.k8s.io"], ["leases"], None, ["list"]),
    ]
    binding = named(objects, "RoleBinding", "xpool-worker-drain")
    assert binding["roleRef"]["name"] == "xpool-worker-drain"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "xpool-worker-drain", "namespace": "xpool"}
    ]
    assert named(objects, "ServiceAccount", "xpool-worker-drain")


def test_the_drain_container_reaches_the_supervisors_api(objects) -> None:
    policy = named(objects, "NetworkPolicy", "xinference-supervisor")
    _, template = worker_pods(objects)[0]
    labels = template["metadata"]["labels"]
    admitted = [
        rule
        for rule in policy["spec"]["ingress"]
        if any(selects(peer["podSelector"], labels) for peer in rule["from"])
        and (not rule.get("ports") or any(p["port"] == 9997 for p in rule["ports"]))
    ]
    assert admitted, "worker pods cannot reach the supervisor's API port"


def _broken(objects: list[dict[str, Any]], change) -> list[str]:
    jobs = [copy.deepcopy(o) for o in objects if o["kind"] == "Job"]
    change(jobs[0]["spec"]["tasks"][0]["template"])
    return sorted({p.rule for p in check_evict(jobs)})


def test_the_check_passes_the_rendered_pods_and_catches_each_gap(objects) -> None:
    assert check_evict(objects) == []

    def no_drain(t):
        t["spec"]["containers"].pop()

    def no_wait(t):
        del t["spec"]["containers"][0]["lifecycle"]

    def short_grace(t):
        t["spec"]["terminationGracePeriodSeconds"] = 300

    def no_grace(t):
        del t["spec"]["terminationGracePeriodSeconds"]

    assert _broken(objects, no_drain) == ["evict.no-drain"]
    assert _broken(objects, no_wait) == ["evict.no-wait"]
    assert _broken(objects, short_grace) == ["evict.grace"]
    assert _broken(objects, no_grace) == ["evict.grace"]
