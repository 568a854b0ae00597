"""The Lease adapter against the contract API server: what each call sends, and how the answers
xpool decides on (404, 409) come back as values rather than exceptions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.contract.apiserver import ContractApiServer
from xpool.adapters.kube_client import Connection, KubeClient, RetryPolicy
from xpool.adapters.leases import (
    Lease,
    LeaseSpec,
    apply_lease,
    create_lease,
    delete_lease,
    list_leases,
    micro_time,
    parse_time,
    read_lease,
    update_lease,
)
from xpool.errors import RemoteError

NS = "default"
API = "coordination.k8s.io/v1"
FAST = RetryPolicy(attempts=2, max_seconds=2.0, base_seconds=0.05, timeout_seconds=10.0)
SPEC = LeaseSpec(
    holder="a",
    duration=15,
    acquire_time="2026-01-01T00:00:00.000000Z",
    renew_time="2026-01-01T00:00:00.000000Z",
    transitions=0,
)


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[KubeClient]:
    client = KubeClient.connect(Connection(kubeconfig=str(kubeconfig)), policy=FAST)
    yield client
    client.close()


def test_create_then_read_returns_the_stored_lease(kube: KubeClient, kube_api: ContractApiServer):
    assert read_lease(kube, NS, "l") is None
    created = create_lease(kube, NS, "l", SPEC)
    assert created is not None
    assert (created.name, created.namespace, created.spec) == ("l", NS, SPEC)
    assert created.resource_version
    stored = kube_api.get(API, "Lease", "l", NS)
    assert stored is not None and stored["spec"] == SPEC.to_json()
    [post] = kube_api.writes()
    assert (post.method, post.path) == ("POST", f"/apis/{API}/namespaces/{NS}/leases")

    read = read_lease(kube, NS, "l")
    assert read == created
    assert read is not None and read.written_by("unknown") == []


def test_creating_an_existing_lease_returns_none(kube: KubeClient, kube_api: ContractApiServer):
    assert create_lease(kube, NS, "l", SPEC) is not None
    assert create_lease(kube, NS, "l", replace(SPEC, holder="b")) is None  # 409 AlreadyExists
    assert [r.status for r in kube_api.writes()] == [201, 409]
    assert kube_api.get(API, "Lease", "l", NS)["spec"]["holderIdentity"] == "a"


def test_update_carries_the_resource_version_and_a_stale_one_conflicts(
    kube: KubeClient, kube_api: ContractApiServer
):
    first = create_lease(kube, NS, "l", SPEC)
    assert first is not None
    renewed = update_lease(kube, first, replace(first.spec, renew_time=micro_time(1.0e9)))
    assert renewed is not None
    assert renewed.spec.renew_time == "2001-09-09T01:46:40.000000Z"
    assert renewed.resource_version != first.resource_version
    put = kube_api.writes()[-1]
    assert put.method == "PUT" and put.json()["metadata"]["resourceVersion"] == (
        first.resource_version
    )

    kube_api.clear_log()
    assert update_lease(kube, first, replace(first.spec, holder="b")) is None  # stale: 409
    assert [r.status for r in kube_api.writes()] == [409]
    assert read_lease(kube, NS, "l") == renewed  # nothing overwritten

    assert delete_lease(kube, NS, "l") is True
    assert update_lease(kube, renewed, replace(renewed.spec, holder="b")) is None  # gone: 404


def test_update_keeps_fields_it_does_not_model(kube: KubeClient, kube_api: ContractApiServer):
    kube_api.seed(
        {
            "apiVersion": API,
            "kind": "Lease",
            "metadata": {"name": "l", "namespace": NS, "labels": {"team": "x"}},
            "spec": {**SPEC.to_json(), "preferredHolder": "c"},
        }
    )
    lease = read_lease(kube, NS, "l")
    assert lease is not None
    assert update_lease(kube, lease, replace(lease.spec, holder="b")) is not None
    stored = kube_api.get(API, "Lease", "l", NS)
    assert stored["metadata"]["labels"] == {"team": "x"}
    assert stored["spec"]["preferredHolder"] == "c"
    assert stored["spec"]["holderIdentity"] == "b"


def test_delete_reports_whether_there_was_one(kube: KubeClient, kube_api: ContractApiServer):
    assert create_lease(kube, NS, "l", SPEC) is not None
    assert delete_lease(kube, NS, "l") is True
    assert kube_api.get(API, "Lease", "l", NS) is None
    assert delete_lease(kube, NS, "l") is False  # 404: absent is not an error


def test_apply_and_list_by_label_selector(kube: KubeClient, kube_api: ContractApiServer):
    for name, routes in (("r1", "a"), ("r2", "a"), ("r3", "b")):
        applied = apply_lease(
            kube,
            NS,
            name,
            LeaseSpec(holder=name, duration=15, renew_time=micro_time(1.0e9)),
            manager="xpool-test",
            labels={"app.kubernetes.io/component": "report", "routes": routes},
            annotations={"note": name},
        )
        assert applied.labels["routes"] == routes and applied.annotations == {"note": name}
    assert create_lease(kube, NS, "unlabelled", SPEC) is not None
    kube_api.clear_log()

    found = list_leases(kube, NS, {"app.kubernetes.io/component": "report", "routes": "a"})
    assert sorted(lease.name for lease in found) == ["r1", "r2"]
    [listing] = kube_api.requests
    assert listing.query["labelSelector"] == "app.kubernetes.io/component=report,routes=a"
    assert all(isinstance(lease, Lease) for lease in found)
    # the API server's clock: when each field manager last wrote, not the renewTime sent
    [written] = found[0].written_by("xpool-test")
    assert abs(written - time.time()) < 60

    again = apply_lease(
        kube,
        NS,
        "r1",
        LeaseSpec(holder="r1", duration=15, renew_time=micro_time(2.0e9)),
        manager="xpool-test",
        labels={"app.kubernetes.io/component": "report", "routes": "a"},
        annotations={"note": "renewed"},
    )
    assert again.annotations == {"note": "renewed"}
    assert [r.method for r in kube_api.writes()] == ["PATCH"]


def test_refusals_name_the_lease_and_what_to_grant(kube: KubeClient, kube_api: ContractApiServer):
    kube_api.inject("GET", r"/leases/l$", 403)
    with pytest.raises(RemoteError, match=r"Lease default/l: cannot read it: HTTP 403.*grant get"):
        read_lease(kube, NS, "l")
    with pytest.raises(
        RemoteError, match=r"Lease nowhere/l: cannot create it: HTTP 404.*namespace"
    ):
        create_lease(kube, "nowhere", "l", SPEC)
    kube_api.inject("GET", r"/leases$", 503, times=2)  # retries run out
    with pytest.raises(RemoteError, match=r"Leases default/a=b.*503"):
        list_leases(kube, NS, {"a": "b"})


def test_tolerant_parsing_and_times() -> None:
    spec = LeaseSpec.from_json(
        {"holderIdentity": None, "leaseDurationSeconds": True, "renewTime": 5, "acquireTime": ""}
    )
    assert spec == LeaseSpec()
    assert spec.to_json() == {"holderIdentity": ""}
    assert parse_time("2001-09-09T01:46:40.000000Z") == 1.0e9
    assert parse_time("2001-09-09T01:46:40Z") == 1.0e9
    assert parse_time("yesterday") is None and parse_time(None) is None
