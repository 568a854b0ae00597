"""ConfigMapRoutingSource against the contract API server (no watch: polling)."""

from __future__ import annotations

import json

from xpool.adapters.kube_client import Connection, KubeClient
from xpool.gateway.routing import Lease, RoutingTable
from xpool.gateway.source import ConfigMapRoutingSource


def routes(*instances: tuple[str, str]) -> dict:
    doc = {
        "models": [
            {
                "model": "chat",
                "type": "LLM",
                "tier": "P0",
                "weights": {"1": 95, "2": 5},
                "instances": [
                    {"uid": uid, "version": uid.split("--")[1], "limit": 4, "state": state}
                    for uid, state in instances
                ],
            }
        ]
    }
    return {"routes.json": json.dumps(doc)}


def put(kube: KubeClient, data: dict, create: bool = False) -> None:
    """Write the ConfigMap as the reconciler would (server-side apply)."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "xpool-routes", "namespace": "default"},
        "data": data,
    }
    kube.request(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/xpool-routes",
        what="apply routes",
        query={"fieldManager": "xpool-reconciler", "force": "true"},
        body=body,
        content_type="application/apply-patch+yaml",
    )


def test_the_table_follows_the_configmap_ready_draining_gone(kubeconfig):
    kube = KubeClient.connect(Connection(str(kubeconfig), "contract"))
    table = RoutingTable(seed=1)
    source = ConfigMapRoutingSource(kube, "default", table, interval=0.5)
    assert source.poll_once() is False  # not written yet: no routes, no error

    put(
        kube,
        routes(("chat--1--1", "ready"), ("chat--1--2", "ready"), ("chat--2--1", "ready")),
        create=True,
    )
    assert source.poll_once()
    assert [r.uids for r in table.routes()] == [("chat--1--1", "chat--1--2", "chat--2--1")]
    assert table.weights("chat") == {"1": 95.0, "2": 5.0}
    assert {s.limit for s in table.slots()} == {4}

    held = table.acquire("chat", exclude=["chat--1--1", "chat--2--1"])
    assert isinstance(held, Lease) and held.uid == "chat--1--2"
    put(kube, routes(("chat--1--1", "ready"), ("chat--1--2", "draining"), ("chat--2--1", "ready")))
    assert source.poll_once()
    route = table.routes()[0]
    assert route.draining == ("chat--1--2",) and "chat--1--2" not in route.uids
    assert table.inflight("chat--1--2") == 1  # still reported until its request ends

    put(kube, routes(("chat--1--1", "ready"), ("chat--2--1", "ready")))
    source.poll_once()
    assert [s.uid for s in table.slots()] == ["chat--1--1", "chat--1--2", "chat--2--1"]
    table.release(held)
    source.poll_once()  # idle and no longer listed: forgotten
    assert [s.uid for s in table.slots()] == ["chat--1--1", "chat--2--1"]
    kube.close()


def test_the_source_thread_polls(kubeconfig):
    kube = KubeClient.connect(Connection(str(kubeconfig), "contract"))
    table = RoutingTable()
    source = ConfigMapRoutingSource(kube, "default", table, interval=0.2).start()
    try:
        put(kube, routes(("chat--1--1", "ready")), create=True)
        import time

        deadline = time.monotonic() + 10
        while not table.routes() or not table.routes()[0].uids:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        source.stop()
        kube.close()
