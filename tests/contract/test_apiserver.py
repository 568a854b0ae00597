"""The contract server is faithful: proven with the official ``kubernetes`` client and ``kubectl``."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from tests.contract.apiserver import ContractApiServer

NS = "xpool"


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=str(kubeconfig), context="contract")
    yield api_client
    api_client.close()


@pytest.fixture
def dyn(api: client.ApiClient, tmp_path: Path, kube_api: ContractApiServer) -> DynamicClient:
    dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=NS))
    )
    kube_api.clear_log()
    return dynamic


def resource(dyn: DynamicClient, api_version: str, kind: str) -> Any:
    return dyn.resources.get(api_version=api_version, kind=kind)


def status_of(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body)


def cm(name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def deployment(replicas: int, image: str = "nginx:1.27") -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def raw(
    server: ContractApiServer,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    token: str | None = None,
) -> tuple[int, dict[str, Any], Any]:
    """One request without any client library: (status, headers, parsed body)."""
    data = (
        None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    )
    headers = {"Authorization": f"Bearer {token or server.token}", "Content-Type": content_type}
    request = urllib.request.Request(server.url + path, data=data, method=method, headers=headers)
    context = ssl.create_default_context(cafile=server.ca_file)
    try:
        with urllib.request.urlopen(request, context=context) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def owners(obj: Any) -> dict[str, dict[str, Any]]:
    entries = obj["metadata"]["managedFields"]
    return {f"{e['manager']}/{e['operation']}": e["fieldsV1"] for e in entries}


# --- authentication and discovery --------------------------------------------------------------


def test_requests_without_the_token_get_401(kube_api: ContractApiServer) -> None:
    context = ssl.create_default_context(cafile=kube_api.ca_file)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        request = urllib.request.Request(f"{kube_api.url}/api/v1/namespaces", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, context=context)
        assert err.value.code == 401
        body = json.loads(err.value.read())
        assert (body["kind"], body["status"], body["reason"]) == (
            "Status",
            "Failure",
            "Unauthorized",
        )
    assert [r.status for r in kube_api.requests] == [401, 401]


def test_discovery_lists_every_resource_with_its_scope(
    api: client.ApiClient, dyn: DynamicClient
) -> None:
    expected = {
        ("v1", "Namespace"): False,
        ("v1", "ConfigMap"): True,
        ("v1", "Secret"): True,
        ("v1", "Service"): True,
        ("v1", "ServiceAccount"): True,
        ("apps/v1", "Deployment"): True,
        ("apps/v1", "StatefulSet"): True,
        ("batch/v1", "CronJob"): True,
        ("rbac.authorization.k8s.io/v1", "Role"): True,
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): False,
        ("scheduling.k8s.io/v1", "PriorityClass"): False,
        ("coordination.k8s.io/v1", "Lease"): True,
        ("networking.k8s.io/v1", "NetworkPolicy"): True,
        ("scheduling.volcano.sh/v1beta1", "Queue"): False,
        ("scheduling.volcano.sh/v1beta1", "PodGroup"): True,
        ("batch.volcano.sh/v1alpha1", "Job"): True,
        ("monitoring.coreos.com/v1", "PrometheusRule"): True,
    }
    for (api_version, kind), namespaced in expected.items():
        found = resource(dyn, api_version, kind)
        assert found.namespaced is namespaced, kind
        assert {"get", "list", "create", "update", "patch", "delete"} <= set(found.verbs)
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"apps", "batch.volcano.sh", "scheduling.volcano.sh", "monitoring.coreos.com"} <= groups
    assert client.VersionApi(api).get_code().git_version.startswith("v1.")
    assert resource(dyn, "v1", "ConfigMap").short_names == ["cm"]


# --- server-side apply -----------------------------------------------------------------------


def test_apply_creates_and_identical_reapply_is_a_no_op(dyn: DynamicClient, kube_api) -> None:
    cms = resource(dyn, "v1", "ConfigMap")
    first = cms.server_side_apply(body=cm("a", {"k": "v"}), namespace=NS, field_manager="xpool")
    assert owners(first.to_dict()) == {"xpool/Apply": {"f:data": {"f:k": {}}}}
    second = cms.server_side_apply(body=cm("a", {"k": "v"}), namespace=NS, field_manager="xpool")
    assert second.metadata.resourceVersion == first.metadata.resourceVersion
    assert second.to_dict() == first.to_dict()
    assert kube_api.resource_version == first.metadata.resourceVersion
    # The server records both PATCHes: a client that wants "no writes" must not send the second.
    assert [(r.method, r.is_apply, r.query["fieldManager"]) for r in kube_api.writes()] == [
        ("PATCH", True, "xpool"),
        ("PATCH", True, "xpool"),
    ]
    assert [r.status for r in kube_api.writes()] == [201, 200]


def test_apply_requires_field_manager_and_apiversion_kind(dyn: DynamicClient, kube_api) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps/a"
    status, _, body = raw(
        kube_api, "PATCH", path, cm("a", {"k": "v"}), "application/apply-patch+yaml"
    )
    assert (status, body["reason"]) == (400, "BadRequest") and "fieldManager" in body["message"]
    headless = {"metadata": {"name": "a"}, "data": {"k": "v"}}
    status, _, body = raw(
        kube_api, "PATCH", path + "?fieldManager=x", headless, "application/apply-patch+yaml"
    )
    assert status == 400 and "apiVersion and kind" in body["message"]
    as_yaml = yaml.safe_dump(cm("a", {"k": "v"})).encode()
    status, _, body = raw(
        kube_api, "PATCH", path + "?fieldManager=x", as_yaml, "application/apply-patch+yaml"
    )
    assert status == 201 and body["data"] == {"k": "v"}


def test_conflicting_managers_get_409_with_causes_and_force_transfers(dyn: DynamicClient) -> None:
    deploys = resource(dyn, "apps/v1", "Deployment")
    deploys.server_side_apply(body=deployment(2), namespace=NS, field_manager="manager-a")
    with pytest.raises(ApiException) as err:
        deploys.server_side_apply(body=deployment(3), namespace=NS, field_manager="manager-b")
    status = status_of(err.value)
    assert (err.value.status, status["reason"], status["code"]) == (409, "Conflict", 409)
    assert status["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "manager-a": .spec.replicas',
            "field": ".spec.replicas",
        }
    ]
    assert (
        status["message"]
        == 'Apply failed with 1 conflict: conflict with "manager-a": .spec.replicas'
    )
    # The same value applied by another manager: co-ownership, no conflict.
    shared = deploys.server_side_apply(body=deployment(2), namespace=NS, field_manager="manager-b")
    fields = owners(shared.to_dict())
    assert "f:replicas" in fields["manager-a/Apply"]["f:spec"]
    assert "f:replicas" in fields["manager-b/Apply"]["f:spec"]
    # force=true takes the field over.
    forced = deploys.server_side_apply(
        body=deployment(3), namespace=NS, field_manager="manager-b", force_conflicts=True
    )
    assert forced.spec.replicas == 3 and forced.metadata.generation == 2
    fields = owners(forced.to_dict())
    assert "f:replicas" not in fields["manager-a/Apply"]["f:spec"]
    assert "f:replicas" in fields["manager-b/Apply"]["f:spec"]
    container = 'k:{"name":"web"}'
    assert fields["manager-a/Apply"]["f:spec"]["f:template"]["f:spec"]["f:containers"][
        container
    ] == {
        ".": {},
        "f:image": {},
        "f:name": {},
    }


def test_conflict_on_a_keyed_list_item_names_its_key(dyn: DynamicClient) -> None:
    deploys = resource(dyn, "apps/v1", "Deployment")
    deploys.server_side_apply(body=deployment(1), namespace=NS, field_manager="a")
    with pytest.raises(ApiException) as err:
        deploys.server_side_apply(body=deployment(1, "nginx:2"), namespace=NS, field_manager="b")
    assert [c["field"] for c in status_of(err.value)["details"]["causes"]] == [
        '.spec.template.spec.containers[name="web"].image'
    ]


def test_fields_a_manager_stops_applying_are_removed_unless_co_owned(dyn: DynamicClient) -> None:
    cms = resource(dyn, "v1", "ConfigMap")
    cms.server_side_apply(
        body=cm("a", {"x": "1", "y": "2", "z": "3"}), namespace=NS, field_manager="a"
    )
    cms.server_side_apply(body=cm("a", {"z": "3"}), namespace=NS, field_manager="b")
    result = cms.server_side_apply(body=cm("a", {"x": "1"}), namespace=NS, field_manager="a")
    assert result.data.to_dict() == {"x": "1", "z": "3"}  # y dropped; z kept, b still owns it
    assert owners(result.to_dict())["b/Apply"] == {"f:data": {"f:z": {}}}


def test_updates_record_update_entries_and_take_changed_fields(dyn: DynamicClient) -> None:
    cms = resource(dyn, "v1", "ConfigMap")
    cms.server_side_apply(body=cm("a", {"x": "1"}), namespace=NS, field_manager="applier")
    patched = cms.patch(
        name="a", namespace=NS, body={"data": {"x": "2"}},
        content_type="application/merge-patch+json", field_manager="editor",
    )  # fmt: skip
    assert owners(patched.to_dict()) == {"editor/Update": {"f:data": {"f:x": {}}}}
    # The applier now conflicts with the editor, who holds the field through an Update.
    with pytest.raises(ApiException) as err:
        cms.server_side_apply(body=cm("a", {"x": "1"}), namespace=NS, field_manager="applier")
    assert status_of(err.value)["details"]["causes"][0]["message"] == (
        'conflict with "editor" using v1: .data.x'
    )


def test_update_without_field_manager_uses_the_user_agent(api: client.ApiClient, dyn) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(NS, cm("a", {"k": "v"}))
    assert [m.manager for m in created.metadata.managed_fields] == ["OpenAPI-Generator"]
    assert created.metadata.managed_fields[0].operation == "Update"


# --- dry run ---------------------------------------------------------------------------------


def test_dry_run_persists_nothing_on_any_verb(dyn: DynamicClient, kube_api) -> None:
    cms = resource(dyn, "v1", "ConfigMap")
    rv = kube_api.resource_version
    preview = cms.server_side_apply(
        body=cm("a", {"k": "v"}), namespace=NS, field_manager="x", dry_run="All"
    )
    assert preview.data.k == "v" and preview.metadata.uid and not preview.metadata.resourceVersion
    cms.create(body=cm("b", {"k": "v"}), namespace=NS, dry_run="All")
    assert kube_api.objects("v1", "ConfigMap", NS) == [] and kube_api.resource_version == rv
    live = cms.server_side_apply(body=cm("a", {"k": "v"}), namespace=NS, field_manager="x")
    kube_api.clear_log()
    changed = cms.server_side_apply(
        body=cm("a", {"k": "w"}), namespace=NS, field_manager="x", dry_run="All"
    )
    assert (
        changed.data.k == "w" and changed.metadata.resourceVersion == live.metadata.resourceVersion
    )
    cms.patch(
        name="a",
        namespace=NS,
        body={"data": {"k": "p"}},
        content_type="application/merge-patch+json",
        dry_run="All",
    )
    cms.replace(body={**cm("a", {"k": "r"})}, namespace=NS, dry_run="All")
    cms.delete(name="a", namespace=NS, dry_run="All")
    assert kube_api.get("v1", "ConfigMap", "a", NS)["data"] == {"k": "v"}
    assert kube_api.resource_version == live.metadata.resourceVersion
    assert len(kube_api.requests) == 4 and kube_api.writes() == []
    with pytest.raises(ApiException) as err:
        cms.create(body=cm("c", {}), namespace=NS, dry_run="Client")
    assert err.value.status == 400


# --- validation ------------------------------------------------------------------------------


# Real API server behaviour (docs "API Concepts: Field validation"): unknown fields are a 400
# BadRequest ("strict decoding error") with fieldValidation=Strict, dropped with a Warning header
# with Warn (the default when the parameter is absent), dropped silently with Ignore; apply
# requests are always strict. 422 Invalid is for values that break the schema or validation.


def test_unknown_fields_are_refused_by_apply_and_by_strict_validation(
    dyn: DynamicClient, kube_api
) -> None:
    bad = {**cm("a", {"k": "v"}), "spec": {"replicas": 1}}
    cms = resource(dyn, "v1", "ConfigMap")
    with pytest.raises(ApiException) as err:
        cms.server_side_apply(body=bad, namespace=NS, field_manager="x")
    assert (
        err.value.status == 400
        and ".spec: field not declared in schema" in status_of(err.value)["message"]
    )
    status, _, body = raw(
        kube_api, "POST", f"/api/v1/namespaces/{NS}/configmaps?fieldValidation=Strict", bad
    )
    assert (status, body["code"], body["reason"]) == (400, 400, "BadRequest")
    assert 'strict decoding error: unknown field "spec"' in body["message"]
    assert kube_api.objects("v1", "ConfigMap", NS) == []


def test_field_validation_warn_drops_the_field_with_a_warning(dyn: DynamicClient, kube_api) -> None:
    bad = {**cm("a", {"k": "v"}), "spec": {"replicas": 1}}
    for mode in ("", "?fieldValidation=Warn"):
        status, headers, body = raw(
            kube_api, "POST", f"/api/v1/namespaces/{NS}/configmaps{mode}", bad
        )
        assert status == 201 and headers["Warning"] == '299 - "unknown field \\"spec\\""'
        assert "spec" not in body
        raw(kube_api, "DELETE", f"/api/v1/namespaces/{NS}/configmaps/a")
    status, headers, body = raw(
        kube_api, "POST", f"/api/v1/namespaces/{NS}/configmaps?fieldValidation=Ignore", bad
    )
    assert status == 201 and "Warning" not in headers and "spec" not in body


def test_schema_violations_are_422_with_field_causes(dyn: DynamicClient) -> None:
    deploys = resource(dyn, "apps/v1", "Deployment")
    bad = deployment(-1)
    del bad["spec"]["selector"]
    with pytest.raises(ApiException) as err:
        deploys.server_side_apply(body=bad, namespace=NS, field_manager="x")
    status = status_of(err.value)
    assert (status["code"], status["reason"], status["details"]["kind"]) == (
        422,
        "Invalid",
        "Deployment",
    )
    fields = {c["field"]: c["reason"] for c in status["details"]["causes"]}
    assert fields == {"spec.selector": "FieldValueRequired", "spec.replicas": "FieldValueInvalid"}
    assert status["message"].startswith('Deployment.apps "web" is invalid: [')
    mismatch = deployment(1)
    mismatch["spec"]["selector"]["matchLabels"] = {"app": "other"}
    with pytest.raises(ApiException) as err:
        deploys.create(body=mismatch, namespace=NS)
    assert status_of(err.value)["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


def queue(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "Queue",
        "metadata": {"name": "p0"},
        "spec": spec,
    }


def test_volcano_queue_is_checked_against_its_crd_schema(dyn: DynamicClient) -> None:
    queues = resource(dyn, "scheduling.volcano.sh/v1beta1", "Queue")
    ok = queues.server_side_apply(
        body=queue({"weight": 4, "deserved": {"cpu": "4"}}), field_manager="x"
    )
    assert ok.metadata.generation == 1 and "namespace" not in ok.metadata
    for spec, field in (
        ({"weight": 0}, "spec.weight"),
        ({"deserved": "4 cpus"}, "spec.deserved"),
        ({"reclaimable": "no"}, "spec.reclaimable"),
    ):
        with pytest.raises(ApiException) as err:
            queues.server_side_apply(body=queue(spec), field_manager="x")
        status = status_of(err.value)
        assert (status["code"], status["reason"]) == (422, "Invalid"), spec
        assert status["details"]["causes"][0]["field"] == field
    with pytest.raises(ApiException) as err:
        queues.server_side_apply(body=queue({"weigth": 1}), field_manager="x")
    assert (
        err.value.status == 400
        and ".spec.weigth: field not declared" in status_of(err.value)["message"]
    )


def test_namespaced_objects_need_their_namespace(dyn: DynamicClient) -> None:
    cms = resource(dyn, "v1", "ConfigMap")
    body = {**cm("a", {}), "metadata": {"name": "a", "namespace": "missing"}}
    with pytest.raises(ApiException) as err:
        cms.server_side_apply(body=body, namespace="missing", field_manager="x")
    assert (
        err.value.status == 404
        and status_of(err.value)["message"] == 'namespaces "missing" not found'
    )


# --- CRUD ------------------------------------------------------------------------------------


def test_create_conflict_stale_update_and_delete(api: client.ApiClient, dyn) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(NS, cm("a", {"k": "v"}))
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(NS, cm("a", {"k": "v"}))
    assert (err.value.status, status_of(err.value)["reason"]) == (409, "AlreadyExists")
    created.data = {"k": "w"}
    updated = core.replace_namespaced_config_map("a", NS, created)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    created.data = {"k": "stale"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("a", NS, created)
    status = status_of(err.value)
    assert (status["code"], status["reason"]) == (409, "Conflict")
    assert "the object has been modified" in status["message"]
    deleted = core.delete_namespaced_config_map("a", NS, propagation_policy="Foreground")
    assert (deleted["status"], deleted["details"]["name"]) == ("Success", "a")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("a", NS)
    assert status_of(err.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'configmaps "a" not found', "reason": "NotFound", "code": 404,
        "details": {"name": "a", "kind": "configmaps"},
    }  # fmt: skip


def test_json_patch_and_generation(dyn: DynamicClient) -> None:
    deploys = resource(dyn, "apps/v1", "Deployment")
    created = deploys.create(body=deployment(1), namespace=NS)
    assert created.metadata.generation == 1 and created.spec.strategy.type == "RollingUpdate"
    patched = deploys.patch(
        name="web", namespace=NS, content_type="application/json-patch+json",
        body=[{"op": "test", "path": "/spec/replicas", "value": 1}, {"op": "replace", "path": "/spec/replicas", "value": 5}],
    )  # fmt: skip
    assert (patched.spec.replicas, patched.metadata.generation) == (5, 2)
    labelled = deploys.patch(
        name="web",
        namespace=NS,
        body={"metadata": {"labels": {"x": "y"}}},
        content_type="application/merge-patch+json",
    )
    assert labelled.metadata.generation == 2  # metadata changes do not bump generation


def test_label_and_field_selectors(dyn: DynamicClient, kube_api) -> None:
    cms = resource(dyn, "v1", "ConfigMap")
    for name, labels in (
        ("a", {"tier": "p0", "app": "x"}),
        ("b", {"tier": "p1"}),
        ("c", {"tier": "p2", "app": "y"}),
        ("d", {}),
    ):
        cms.create(body=cm(name, {}, labels), namespace=NS)

    def names(**kwargs: str) -> list[str]:
        return [i.metadata.name for i in cms.get(namespace=NS, **kwargs).items]

    assert names(label_selector="tier=p0") == ["a"]
    assert names(label_selector="tier==p1") == ["b"]
    assert names(label_selector="tier!=p0") == ["b", "c", "d"]
    assert names(label_selector="tier in (p0, p2)") == ["a", "c"]
    assert names(label_selector="tier notin (p0,p2)") == ["b", "d"]
    assert names(label_selector="app") == ["a", "c"]
    assert names(label_selector="!app") == ["b", "d"]
    assert names(label_selector="tier,!app") == ["b"]
    assert names(field_selector="metadata.name=c") == ["c"]
    assert names(field_selector="metadata.name!=c,metadata.namespace=xpool") == ["a", "b", "d"]
    listing = cms.get(namespace=NS)
    assert listing.metadata.resourceVersion == kube_api.resource_version
    page = cms.get(namespace=NS, limit=3)
    assert len(page.items) == 3 and page.metadata["continue"]
    rest = cms.get(namespace=NS, limit=3, _continue=page.metadata["continue"])
    assert [i.metadata.name for i in rest.items] == ["d"] and not rest.metadata.get("continue")
    for bad in {"label_selector": "tier in p0"}, {"field_selector": "data.x=1"}:
        with pytest.raises(ApiException) as err:
            cms.get(namespace=NS, **bad)
        assert err.value.status == 400


def test_lease_create_and_update_with_resource_version(api: client.ApiClient, dyn) -> None:
    leases = client.CoordinationV1Api(api)
    lease = client.V1Lease(
        metadata=client.V1ObjectMeta(name="xpool-reconciler"),
        spec=client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15),
    )
    created = leases.create_namespaced_lease(NS, lease)
    created.spec.holder_identity = "b"
    renewed = leases.replace_namespaced_lease("xpool-reconciler", NS, created)
    assert renewed.spec.holder_identity == "b"
    created.spec.holder_identity = "c"  # still carries the old resourceVersion
    with pytest.raises(ApiException) as err:
        leases.replace_namespaced_lease("xpool-reconciler", NS, created)
    assert err.value.status == 409
    assert leases.read_namespaced_lease("xpool-reconciler", NS).spec.holder_identity == "b"


# --- faults ----------------------------------------------------------------------------------


def test_injected_429_carries_retry_after_then_clears(dyn: DynamicClient, kube_api) -> None:
    cms = resource(dyn, "v1", "ConfigMap")
    kube_api.clear_log()
    fault = kube_api.inject("PATCH", r"/configmaps/a$", 429, times=1, retry_after=2)
    with pytest.raises(ApiException) as err:
        cms.server_side_apply(body=cm("a", {}), namespace=NS, field_manager="x")
    assert err.value.status == 429 and err.value.headers["Retry-After"] == "2"
    status = status_of(err.value)
    assert (status["reason"], status["details"]["retryAfterSeconds"]) == ("TooManyRequests", 2)
    cms.server_side_apply(body=cm("a", {}), namespace=NS, field_manager="x")
    assert fault.hits == 1 and [r.injected for r in kube_api.requests] == [True, False]
    kube_api.inject("*", r"/configmaps", 503, times=2)
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            cms.get(namespace=NS)
        assert err.value.status == 503
    assert cms.get(namespace=NS).items


def test_injected_disconnect_closes_without_a_response(kube_api: ContractApiServer) -> None:
    kube_api.inject_disconnect("GET", r"^/api$")
    context = ssl.create_default_context(cafile=kube_api.ca_file)
    connection = http.client.HTTPSConnection("127.0.0.1", kube_api.port, context=context, timeout=5)
    connection.request("GET", "/api", headers={"Authorization": f"Bearer {kube_api.token}"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError)):
        connection.getresponse()
    connection.close()
    assert kube_api.requests[-1].status == -1


# --- kubectl as an independent client ---------------------------------------------------------

KUBECTL = shutil.which("kubectl")
# scripts/test installs kubectl as root (CI); there a missing kubectl fails instead of skipping.
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None and not os.environ.get("CI"), reason="kubectl is not installed"
)


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL or "kubectl", "--kubeconfig", str(kubeconfig), *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(kubeconfig.parent), "KUBECTL_EXTERNAL_DIFF": "diff -u"},
    )  # fmt: skip


@needs_kubectl
def test_kubectl_get_apply_server_side_and_diff(
    kubeconfig: Path, kube_api: ContractApiServer
) -> None:
    result = kubectl(kubeconfig, "get", "ns")
    assert result.returncode == 0, result.stderr
    assert "kube-system" in result.stdout and result.stdout.startswith("NAME")
    # Not `kubectl create namespace`: kubectl's generators send protobuf bodies (answered 415).
    result = kubectl(
        kubeconfig,
        "create",
        "-f",
        "-",
        stdin=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}),
    )
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_dump(cm("demo", {"a": "1"}, {"app": "demo"}))
    result = kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=manifest)
    assert result.returncode == 0, result.stderr
    assert "configmap/demo serverside-applied" in result.stdout
    applied = [r for r in kube_api.requests if r.is_apply]
    assert applied[-1].query == {
        "fieldManager": "kubectl",
        "fieldValidation": "Strict",
        "force": "false",
    }
    rv = kube_api.get("v1", "ConfigMap", "demo", NS)["metadata"]["resourceVersion"]
    assert kubectl(kubeconfig, "apply", "--server-side", "-f", "-", stdin=manifest).returncode == 0
    assert kube_api.get("v1", "ConfigMap", "demo", NS)["metadata"]["resourceVersion"] == rv
    for extra in ([], ["--server-side"]):
        same = kubectl(kubeconfig, "diff", *extra, "-f", "-", stdin=manifest)
        assert (same.returncode, same.stdout) == (0, ""), same.stderr
        changed = kubectl(
            kubeconfig, "diff", *extra, "-f", "-", stdin=manifest.replace("'1'", "'2'")
        )
        assert changed.returncode == 1, changed.stderr
        assert '-  a: "1"\n+  a: "2"' in changed.stdout
    assert kube_api.get("v1", "ConfigMap", "demo", NS)["data"] == {"a": "1"}
    result = kubectl(kubeconfig, "get", "cm", "-l", "app=demo", "-o", "name")
    assert result.stdout.strip() == "configmap/demo"
    conflict = kubectl(
        kubeconfig, "apply", "--server-side", "--field-manager", "other", "-f", "-",
        stdin=manifest.replace("'1'", "'3'"),
    )  # fmt: skip
    assert conflict.returncode == 1 and 'conflict with "kubectl"' in conflict.stderr


@needs_kubectl
def test_kubectl_with_a_wrong_token_is_refused(kubeconfig: Path, kube_api) -> None:
    result = kubectl(kubeconfig, "--token", "wrong", "get", "ns")
    assert result.returncode == 1 and "provide credentials" in result.stderr
    assert {r.status for r in kube_api.requests} == {401}


def test_keyed_lists_merge_per_item_across_managers(dyn: DynamicClient) -> None:
    deploys = resource(dyn, "apps/v1", "Deployment")
    deploys.server_side_apply(body=deployment(1), namespace=NS, field_manager="a")
    sidecar = deployment(1)
    del sidecar["spec"]["replicas"]
    sidecar["spec"]["template"]["spec"]["containers"] = [{"name": "proxy", "image": "envoy:1"}]
    merged = deploys.server_side_apply(body=sidecar, namespace=NS, field_manager="b")
    names = [c.name for c in merged.spec.template.spec.containers]
    assert names == ["web", "proxy"]
    fewer = deployment(1)
    fewer["spec"]["template"]["spec"]["containers"] = [{"name": "web", "image": "nginx:1.27"}]
    fewer["metadata"]["resourceVersion"] = (
        "1"  # stale: a resourceVersion in an apply body is a precondition
    )
    with pytest.raises(ApiException) as err:
        deploys.server_side_apply(body=fewer, namespace=NS, field_manager="a")
    assert (err.value.status, status_of(err.value)["reason"]) == (409, "Conflict")


def test_volcano_job_and_podgroup_round_trip(dyn: DynamicClient) -> None:
    jobs = resource(dyn, "batch.volcano.sh/v1alpha1", "Job")
    pod = {"spec": {"containers": [{"name": "worker", "image": "xinference:1"}]}}
    job = {
        "apiVersion": "batch.volcano.sh/v1alpha1",
        "kind": "Job",
        "metadata": {"name": "p0-gpu", "namespace": NS},
        "spec": {
            "queue": "p0",
            "minAvailable": 1,
            "tasks": [{"name": "w", "replicas": 1, "template": pod}],
        },
    }
    created = jobs.server_side_apply(body=job, namespace=NS, field_manager="xpool")
    assert (
        owners(created.to_dict())["xpool/Apply"]["f:spec"]["f:tasks"] == {}
    )  # CRD lists are atomic
    listed = jobs.get(namespace=NS)
    assert listed.items[0].kind == "Job"  # custom resource lists keep apiVersion/kind on items
    groups = resource(dyn, "scheduling.volcano.sh/v1beta1", "PodGroup")
    with pytest.raises(ApiException) as err:
        groups.create(
            body={"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "PodGroup",
                  "metadata": {"name": "g"}, "spec": {"minMember": "two"}},
            namespace=NS,
        )  # fmt: skip
    assert err.value.status == 422


def test_standalone_server_prints_a_kubeconfig(tmp_path: Path) -> None:
    out = tmp_path / "kc.yaml"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.contract.apiserver", "--kubeconfig", str(out)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == str(out.resolve())
        cluster = yaml.safe_load(out.read_text())["clusters"][0]["cluster"]
        assert cluster["server"].startswith("https://127.0.0.1:")
        if KUBECTL:
            result = kubectl(out, "get", "ns", "-o", "name")
            assert "namespace/default" in result.stdout, result.stderr
    finally:
        process.terminate()
        process.wait(timeout=10)
