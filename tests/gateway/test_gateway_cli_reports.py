"""`xpool gateway` as a subprocess against the contract API server: it reports in its own Lease
before it reads the routes, follows the routes generation, and withdraws the Lease on SIGTERM.
Every request it (and the reconciler's Kubernetes side) makes is checked against the rendered
Roles with RBAC's matching rules, so a verb or name the Roles lack fails here, not in a cluster.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.contract.apiserver import ContractApiServer, Recorded
from xpool.adapters.kube_client import Connection, KubeClient
from xpool.adapters.xinference import XinferenceClient
from xpool.gateway.replica_report import (
    COMPONENT,
    COMPONENT_LABEL,
    GENERATION_ANNOTATION,
    INFLIGHT_ANNOTATION,
    ReplicaReporter,
)
from xpool.gateway.routing import RoutingTable
from xpool.gateway.source import DATA_KEY, ConfigMapRoutingSource
from xpool.policy.rollout import Gate, abort, start
from xpool.policy.state import ModelMemory
from xpool.reconcile.kube_target import KubeTarget
from xpool.reconcile.leader import LeaseLeadership
from xpool.reconcile.memory_store import ConfigMapMemoryStore
from xpool.reconcile.rollout_store import ConfigMapRolloutStore
from xpool.render import render_platform
from xpool.resolve import resolve_platform

NS = "default"
POD = "xpool-gateway-0"  # the gateway StatefulSet's first pod: the replica id (POD_NAME)
LEASE = f"xpool-gateway-{POD}"
APPLY = "application/apply-patch+yaml"
RESOURCE_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<ns>[^/]+)"
    r"/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?$"
)
DISCOVERY_PATH = re.compile(r"^/(api|apis|version)(/.*)?$")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remote_platform(tmp_path: Path) -> Path:
    """The quickstart with a remote Xinference nothing listens on: no request goes there."""
    text = (EXAMPLES / "quickstart.yaml").read_text(encoding="utf-8")
    assert "endpoint: embedded" in text
    path = tmp_path / "platform.yaml"
    path.write_text(text.replace("endpoint: embedded", "endpoint: http://127.0.0.1:1"))
    return path


def seed_routes(kube_api: ContractApiServer, generation: int) -> None:
    doc = {
        "generation": generation,
        "models": [
            {
                "model": "chat",
                "type": "LLM",
                "tier": "P0",
                "instances": [
                    {"uid": "chat--1--1", "version": "1", "state": "ready", "generation": 1}
                ],
            }
        ],
    }
    kube_api.seed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "xpool-routes", "namespace": NS},
            "data": {DATA_KEY: json.dumps(doc)},
        }
    )


def lease(kube_api: ContractApiServer, name: str = LEASE) -> dict[str, Any] | None:
    return kube_api.get("coordination.k8s.io/v1", "Lease", name, NS)


# -- RBAC, as the API server evaluates it ----------------------------------------------------


def rendered(kind: str) -> dict[str, dict[str, Any]]:
    """The rendered objects of `kind` of the article's platform, by name."""
    path = EXAMPLES / "platform.yaml"
    resolved = resolve_platform(path)
    loaded, plan = resolved.loaded, resolved.plan
    rendering = render_platform(loaded.platform, plan, loaded.architectures, resolved.mount)
    return {o.obj["metadata"]["name"]: o.obj for o in rendering.objects if o.kind == kind}


def rendered_role(name: str) -> list[dict[str, Any]]:
    return rendered("Role")[name]["rules"]


def test_the_rendered_gateway_reports_under_its_own_identity() -> None:
    gateway = rendered("StatefulSet")["xpool-gateway"]
    assert gateway["spec"]["replicas"] == 2
    pod = gateway["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "xpool-gateway"
    assert pod["automountServiceAccountToken"] is True
    (env,) = [e for e in pod["containers"][0]["env"] if e["name"] == "POD_NAME"]
    assert env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    binding = rendered("RoleBinding")["xpool-gateway"]
    assert binding["roleRef"]["name"] == "xpool-gateway"
    assert binding["subjects"][0]["name"] == "xpool-gateway"
    assert "xpool-gateway" in rendered("ServiceAccount")
    # the Xinference pods still mount no token
    supervisor = rendered("Deployment")["xinference-supervisor"]["spec"]["template"]["spec"]
    assert supervisor["automountServiceAccountToken"] is False
    for job in rendered("Job").values():
        for task in job["spec"]["tasks"]:
            assert task["template"]["spec"]["automountServiceAccountToken"] is False


def attributes(request: Recorded) -> list[tuple[str, str, str, str]]:
    """(verb, API group, resource, name) the API server authorizes for `request`: a
    server-side apply is a patch and, when it creates the object, a create of the name in its
    URL (apiserver endpoints/handlers/patch.go); both are required here, whether it created or
    not. Discovery requests are not resource requests: none."""
    match = RESOURCE_PATH.match(request.path)
    if match is None:
        assert DISCOVERY_PATH.match(request.path), request.path
        return []
    group = "" if match["core"] else match["group"]
    name = match["name"] or ""
    resource = match["resource"]
    verb = {
        "GET": "get" if name else "list",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete",
    }[request.method]
    out = [(verb, group, resource, name)]
    if request.method == "PATCH" and request.content_type.startswith(APPLY):
        out.append(("create", group, resource, name))
    return out


def allowed(rules: list[dict[str, Any]], verb: str, group: str, resource: str, name: str) -> bool:
    """RBAC's RuleAllows: verb, group and resource match, and resourceNames (if any) holds the
    request's name (a request without a name, such as list or POST, never matches them)."""
    return any(
        verb in rule["verbs"]
        and group in rule["apiGroups"]
        and resource in rule["resources"]
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
        for rule in rules
    )


def forbidden(rules: list[dict[str, Any]], requests: list[Recorded]) -> list[str]:
    return [
        f"{r.method} {r.path}: {verb} {resource} {name!r}"
        for r in requests
        for verb, group, resource, name in attributes(r)
        if not allowed(rules, verb, group, resource, name)
    ]


def test_forbidden_finds_what_a_role_lacks() -> None:
    rules = rendered_role("xpool-gateway")
    delete_other = Recorded(
        "DELETE", f"/api/v1/namespaces/{NS}/configmaps/xpool-routes", {}, "", b"", {}
    )
    list_leases = Recorded(
        "GET", f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases", {}, "", b"", {}
    )
    assert len(forbidden(rules, [delete_other, list_leases])) == 2
    # the Leases of other components and of pods outside the StatefulSet are out of reach
    leases = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
    others = [
        Recorded(method, f"{leases}/{name}", {}, APPLY if method == "PATCH" else "", b"", {})
        for method in ("PATCH", "DELETE")
        for name in ("xpool-reconciler", "xpool-gateway-xpool-gateway-2", "xpool-gateway-r1")
    ]
    refused = {line.split(":")[0] for line in forbidden(rules, others)}
    assert refused == {f"{r.method} {r.path}" for r in others}
    own = [Recorded("DELETE", f"{leases}/{LEASE}", {}, "", b"", {})]
    assert forbidden(rules, own) == []


# -- the gateway process -----------------------------------------------------------------------


@pytest.fixture
def gateway(
    kube_api: ContractApiServer, kubeconfig: Path, tmp_path: Path
) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "toolkit"), "POD_NAME": POD}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xpool.cli",
            "gateway",
            str(remote_platform(tmp_path)),
            "--kubeconfig",
            str(kubeconfig),
            "--context",
            "contract",
            "-n",
            NS,
            "--interval",
            "0.5",
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_the_gateway_reports_before_routing_and_withdraws_on_sigterm(
    kube_api: ContractApiServer, gateway: subprocess.Popen[str]
) -> None:
    first = wait_for("the report Lease", lambda: lease(kube_api))
    assert first["spec"]["holderIdentity"] == POD
    assert first["metadata"]["labels"][COMPONENT_LABEL] == COMPONENT
    assert first["metadata"]["labels"]["xpool.io/routes"] == "xpool-routes"
    # no routes yet: the report promises nothing about any generation
    assert GENERATION_ANNOTATION not in first["metadata"]["annotations"]
    lease_path = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{LEASE}"
    routes_path = f"/api/v1/namespaces/{NS}/configmaps/xpool-routes"
    wait_for("a read of the routes", lambda: any(r.path == routes_path for r in kube_api.requests))
    paths = [r.path for r in kube_api.requests]
    assert paths.index(lease_path) < paths.index(routes_path)  # counted before it reads

    seed_routes(kube_api, generation=7)
    renewed = wait_for(
        "the report of generation 7",
        lambda: (
            (got := lease(kube_api))
            and got["metadata"]["annotations"].get(GENERATION_ANNOTATION) == "7"
            and got
        ),
    )
    assert json.loads(renewed["metadata"]["annotations"][INFLIGHT_ANNOTATION]) == {"chat--1--1": 0}
    assert gateway.poll() is None

    gateway.send_signal(signal.SIGTERM)
    _, stderr = gateway.communicate(timeout=30)
    assert gateway.returncode == 0, stderr
    assert lease(kube_api) is None
    assert [r.method for r in kube_api.requests if r.path == lease_path][-1] == "DELETE"
    assert "Traceback" not in stderr

    assert forbidden(rendered_role("xpool-gateway"), kube_api.requests) == []


def test_a_replica_id_that_cannot_name_a_lease_is_refused(
    kube_api: ContractApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "xpool.cli",
            "gateway",
            str(remote_platform(tmp_path)),
            "--kubeconfig",
            str(kubeconfig),
            "--context",
            "contract",
            "--replica",
            "Not_A_Name",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "toolkit")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2, run.stderr
    assert "Not_A_Name" in run.stderr and "Traceback" not in run.stderr
    assert kube_api.writes() == []


# -- the reconciler's side of the handshake ----------------------------------------------------


def test_the_reconciler_role_allows_its_handshake_requests(
    kube_api: ContractApiServer, kubeconfig: Path
) -> None:
    """Leadership, the routes (created by apply when absent), the replicas' reports and the
    memory ConfigMap: each request the reconciler makes for them is allowed by its Role."""
    kube = KubeClient.connect(Connection(str(kubeconfig), "contract"))
    table = RoutingTable(seed=1)
    source = ConfigMapRoutingSource(kube, NS, table)
    ReplicaReporter(kube, NS, table, source, replica="r2").report_once()
    kube_api.clear_log()  # from here on, the reconciler's requests only

    leader = LeaseLeadership(kube, NS, identity="reconciler-1")
    assert leader.try_acquire()
    target = KubeTarget(kube, NS, XinferenceClient("http://127.0.0.1:1"), {})
    doc = target.edit_routes(
        lambda r: r.set_state("chat--1--1", "loading", time.time(), model_type="LLM", limit=None)
    )
    assert doc["generation"] == 1
    assert [r.replica for r in target.reports()] == ["r2"]
    store = ConfigMapMemoryStore(kube, NS)
    store.save({"chat": ModelMemory(last_up=1.0)})
    assert "chat" in store.load()
    rollouts = ConfigMapRolloutStore(kube, NS)
    started = start("chat", "1", "2", (5.0, 100.0), 60.0, Gate(), 1.0, "test")
    rollouts.update(lambda doc: doc.replace(started))
    rollouts.update(lambda doc: doc.replace(abort(doc.current["chat"], 2.0)))
    assert rollouts.load().current["chat"].phase == "aborted"
    leader.release()
    kube.close()

    assert {r.path.rsplit("/", 1)[-1] for r in kube_api.writes()} >= {
        "xpool-routes",
        "xpool-reconciler-state",
        "xpool-rollouts",
        "xpool-reconciler",
    }
    assert forbidden(rendered_role("xpool-reconciler"), kube_api.requests) == []
