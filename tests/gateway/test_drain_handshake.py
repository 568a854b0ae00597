"""The drain handshake across gateway replicas, against the contract API server over real HTTP.

Two (or three) gateway replicas run in-process as the `xpool gateway` process wires them: a
RoutingTable, a ConfigMapRoutingSource and a ReplicaReporter each, all reading one routes
ConfigMap and writing their own Lease. Requests in flight are leases taken from a replica's
table, as the gateway app takes them. The steps are driven by hand (poll, report) so that a
replica can be caught between two generations.

Xinference is a small stand-in on real HTTP that serves the six REST routes the Xinference
adapter uses, with the answers of Xinference 4.1.0 (restful_api.py, supervisor.py); the
adapter itself is tested against the real Xinference in tests/integration.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from xpool.adapters.kube_client import Connection, KubeClient
from xpool.adapters.xinference import XinferenceClient
from xpool.errors import InputError
from xpool.gateway.replica_report import (
    ReplicaReport,
    ReplicaReporter,
    lease_name,
    read_reports,
)
from xpool.gateway.routing import Lease, RoutingTable
from xpool.gateway.source import DATA_KEY, ConfigMapRoutingSource
from xpool.policy.actions import Drain, Launch, Terminate
from xpool.reconcile.kube_target import KubeTarget, Routes, drain_inflight
from xpool.render.instances import Want

NS = "default"
ROUTES = "xpool-routes"


# -- Xinference stand-in -----------------------------------------------------------------------


class StandIn:
    """Instances (uid -> status), registrations and the launch requests received."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.status: dict[str, str] = {}
        self.registrations: dict[str, dict[str, Any]] = {}
        self.launches: list[tuple[dict[str, Any], dict[str, list[str]]]] = []
        self.terminated: list[str] = []
        # GET /v1/workers: worker address -> {replica uid: the instance's spec}
        self.workers: dict[str, dict[str, dict[str, Any]]] = {}


def _handler(state: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            with state.lock:
                if path == "/v1/models/instances":
                    self._send(200, [_info(uid, s) for uid, s in sorted(state.status.items())])
                elif path == "/v1/workers":
                    listed = [{"work-ip": a, "models": m} for a, m in sorted(state.workers.items())]
                    self._send(200, listed)
                elif m := re.fullmatch(r"/v1/model_registrations/[^/]+/([^/]+)", path):
                    found = state.registrations.get(m[1])
                    if found is None:
                        self._send(400, {"detail": f"Model {m[1]} not found"})
                    else:
                        self._send(200, found)
                else:
                    self._send(404, {"detail": "Not Found"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = self._body()
            with state.lock:
                if url.path == "/v1/models":
                    state.launches.append((body, parse_qs(url.query)))
                    uid = body["model_uid"]
                    if uid in state.status:
                        self._send(
                            400, {"detail": f"Model is already in the model list, uid: {uid}"}
                        )
                        return
                    state.status[uid] = "CREATING"
                    self._send(200, {"model_uid": uid})
                elif url.path.startswith("/v1/model_registrations/"):
                    model = json.loads(body["model"])
                    state.registrations[model["model_name"]] = model
                    self._send(200, None)
                else:
                    self._send(404, {"detail": "Not Found"})

        def do_DELETE(self) -> None:
            uid = urlsplit(self.path).path.rsplit("/", 1)[-1]
            with state.lock:
                if state.status.pop(uid, None) is None:
                    self._send(400, {"detail": f"Model not found in the model list, uid: {uid}"})
                    return
                state.terminated.append(uid)
                self._send(200, None)

    return Handler


def _info(uid: str, status: str) -> dict[str, Any]:
    replica = {"worker_address": "127.0.0.1:30001", "status": status}
    if status == "ERROR":
        replica["error_message"] = "out of memory"
    return {
        "model_uid": uid,
        "model_name": uid.rsplit("--", 1)[0],
        "status": status,
        "replica_statuses": [replica],
    }


@pytest.fixture
def xinference() -> Iterator[tuple[StandIn, XinferenceClient]]:
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = XinferenceClient(f"http://127.0.0.1:{server.server_address[1]}", attempts=1)
    try:
        yield state, client
    finally:
        client.close()
        server.shutdown()
        server.server_close()


# -- gateway replicas and the target -----------------------------------------------------------

WANT = Want(
    model="chat",
    version="1",
    model_type="LLM",
    registration={"model_name": "xpool-chat-1", "model_family": "qwen2-instruct"},
    launch={"model_name": "xpool-chat-1", "model_type": "LLM", "request_limits": 4},
    count=0,
)


@dataclass
class Replica:
    table: RoutingTable
    source: ConfigMapRoutingSource
    reporter: ReplicaReporter

    def sync(self) -> None:
        """Read the routes, then report: one pass of the replica's two loops."""
        self.source.poll_once()
        self.reporter.report_once()

    def hold(self, uid: str) -> Lease:
        """One request in flight on `uid` (only `uid` is eligible)."""
        others = [s.uid for s in self.table.slots() if s.uid != uid]
        lease = self.table.acquire("chat", exclude=others)
        assert isinstance(lease, Lease) and lease.uid == uid
        return lease


@pytest.fixture
def kube(kubeconfig) -> Iterator[KubeClient]:
    client = KubeClient.connect(Connection(str(kubeconfig), "contract"))
    yield client
    client.close()


@pytest.fixture
def replicas(kube) -> Iterator[dict[str, Replica]]:
    made: dict[str, Replica] = {}

    def make(name: str, **report: Any) -> Replica:
        table = RoutingTable(seed=1)
        source = ConfigMapRoutingSource(kube, NS, table, name=ROUTES, interval=0.2)
        reporter = ReplicaReporter(kube, NS, table, source, replica=name, **report)
        reporter.report_once()  # counted before it can route anything
        made[name] = Replica(table, source, reporter)
        return made[name]

    made["make"] = make  # type: ignore[assignment]
    yield made
    for replica in made.values():
        if isinstance(replica, Replica):
            replica.source.stop()
            replica.reporter.stop()


def target_for(kube: KubeClient, client: XinferenceClient, **kw: Any) -> KubeTarget:
    return KubeTarget(kube, NS, client, {("chat", "1"): WANT}, routes=ROUTES, **kw)


def routes_doc(kube_api) -> dict[str, Any]:
    return json.loads(kube_api.get("v1", "ConfigMap", ROUTES, NS)["data"][DATA_KEY])


def states(doc: dict[str, Any]) -> dict[str, str]:
    return {i["uid"]: i["state"] for m in doc["models"] for i in m["instances"]}


def obs(target: KubeTarget) -> dict[str, tuple[str, int]]:
    return {i.uid: (i.state, i.inflight) for i in target.instances()}


DRAIN = Drain("chat--1--2", "chat", "P0", "scale down")
TERMINATE = Terminate("chat--1--2", "chat", "drained: no request in flight")


# -- the handshake -----------------------------------------------------------------------------


def test_drained_only_when_every_replica_applied_the_drain_and_reports_zero(
    kube, kube_api, xinference, replicas
):
    stand_in, client = xinference
    stand_in.status.update({"chat--1--1": "READY", "chat--1--2": "READY"})
    target = target_for(kube, client)
    assert obs(target) == {"chat--1--1": ("ready", 0), "chat--1--2": ("ready", 0)}
    assert states(routes_doc(kube_api)) == {"chat--1--1": "ready", "chat--1--2": "ready"}

    a, b = replicas["make"]("gw-a"), replicas["make"]("gw-b")
    a.sync()
    b.sync()
    held = [b.hold("chat--1--2"), b.hold("chat--1--2")]
    b.reporter.report_once()
    assert obs(target)["chat--1--2"] == ("ready", 2)  # summed over replicas

    assert target.terminate(TERMINATE) is False  # routed: it must be drained first
    target.drain(DRAIN)
    doc = routes_doc(kube_api)
    marked = next(i for i in doc["models"][0]["instances"] if i["uid"] == "chat--1--2")
    assert marked["state"] == "draining" and marked["generation"] == doc["generation"]
    target.drain(DRAIN)  # idempotent: no new generation
    assert routes_doc(kube_api)["generation"] == doc["generation"]

    # A has applied it and reports 0; B still follows the previous generation
    a.sync()
    assert a.table.routes()[0].uids == ("chat--1--1",)
    for lease in held:
        b.table.release(lease)
    assert "chat--1--2" in b.table.routes()[0].uids  # B may still send it new requests
    b.reporter.report_once()  # 0 in flight, but an old generation: unknown = busy
    assert obs(target)["chat--1--2"] == ("draining", 1)
    assert target.terminate(TERMINATE) is False
    assert "chat--1--2" in stand_in.status

    # B applies it with 2 requests in flight
    held = [b.hold("chat--1--2"), b.hold("chat--1--2")]
    b.sync()
    assert b.table.routes()[0].draining == ("chat--1--2",)
    assert obs(target)["chat--1--2"] == ("draining", 2)
    assert target.terminate(TERMINATE) is False

    # B finishes them: drained
    for lease in held:
        b.table.release(lease)
    b.reporter.report_once()
    assert obs(target)["chat--1--2"] == ("draining", 0)
    assert target.terminate(TERMINATE) is True
    assert stand_in.terminated == ["chat--1--2"]
    assert states(routes_doc(kube_api)) == {"chat--1--1": "ready"}
    assert obs(target) == {"chat--1--1": ("ready", 0)}
    b.sync()
    assert [s.uid for s in b.table.slots()] == ["chat--1--1"]  # idle and unlisted: forgotten


def test_an_expired_lease_does_not_block(kube, xinference, replicas):
    stand_in, client = xinference
    stand_in.status.update({"chat--1--1": "READY", "chat--1--2": "READY"})
    target = target_for(kube, client, skew=0.5)
    target.instances()
    a = replicas["make"]("gw-a")
    crashed = replicas["make"]("gw-c", interval=0.5, duration=1)
    a.sync()
    crashed.sync()
    target.drain(DRAIN)
    a.sync()
    # gw-c never renews again (as if its process had died); until its Lease expires it counts
    assert obs(target)["chat--1--2"] == ("draining", 1)
    deadline = time.monotonic() + 15
    while any(r.replica == "gw-c" for r in target.reports()):
        assert time.monotonic() < deadline, "the Lease of gw-c never expired"
        time.sleep(0.2)
    assert any(r.replica == "gw-c" for r in read_reports(kube, NS, ROUTES))  # still stored
    assert obs(target)["chat--1--2"] == ("draining", 0)
    assert target.terminate(TERMINATE) is True


def test_a_stopped_replica_deletes_its_lease_and_does_not_block(
    kube, kube_api, xinference, replicas
):
    stand_in, client = xinference
    stand_in.status.update({"chat--1--1": "READY", "chat--1--2": "READY"})
    target = target_for(kube, client)
    target.instances()
    a, b = replicas["make"]("gw-a"), replicas["make"]("gw-b")
    a.sync()
    b.sync()
    target.drain(DRAIN)
    a.sync()
    assert target.terminate(TERMINATE) is False  # gw-b has not applied the drain
    b.reporter.stop()
    assert kube_api.get("coordination.k8s.io/v1", "Lease", lease_name("gw-b"), NS) is None
    assert [r.replica for r in target.reports()] == ["gw-a"]
    assert target.terminate(TERMINATE) is True


def test_a_timed_out_drain_terminates_under_requests(kube, kube_api, xinference, replicas):
    stand_in, client = xinference
    stand_in.status.update({"chat--1--1": "READY", "chat--1--2": "READY"})
    target = target_for(kube, client)
    target.instances()
    a = replicas["make"]("gw-a")
    a.sync()
    held = a.hold("chat--1--2")
    target.drain(DRAIN)
    a.sync()
    assert target.terminate(TERMINATE) is False
    assert target.terminate(replace(TERMINATE, timed_out=True)) is True
    assert stand_in.terminated == ["chat--1--2"]
    assert states(routes_doc(kube_api)) == {"chat--1--1": "ready"}
    a.sync()  # no longer listed, but its request still runs: kept (draining) until it ends
    assert [s.uid for s in a.table.slots()] == ["chat--1--1", "chat--1--2"]
    a.table.release(held)
    a.sync()
    assert [s.uid for s in a.table.slots()] == ["chat--1--1"]


def test_running_replicas_report_by_themselves(kube, kube_api, xinference):
    stand_in, client = xinference
    stand_in.status.update({"chat--1--1": "READY", "chat--1--2": "READY"})
    target = target_for(kube, client)
    target.instances()
    table = RoutingTable()
    source = ConfigMapRoutingSource(kube, NS, table, name=ROUTES, interval=0.2)
    reporter = ReplicaReporter(kube, NS, table, source, replica="gw-t", interval=0.2).start()
    source.start()
    try:
        target.drain(DRAIN)
        generation = routes_doc(kube_api)["generation"]
        deadline = time.monotonic() + 15
        while not any(r.generation >= generation for r in target.reports()):
            assert time.monotonic() < deadline, "the replica never reported the drain"
            time.sleep(0.1)
        lease = kube_api.get("coordination.k8s.io/v1", "Lease", lease_name("gw-t"), NS)
        assert lease["spec"]["holderIdentity"] == "gw-t"
        assert json.loads(lease["metadata"]["annotations"]["xpool.io/inflight"]) == {
            "chat--1--1": 0,
            "chat--1--2": 0,
        }
        assert target.terminate(TERMINATE) is True
    finally:
        source.stop()
        reporter.stop()
    assert kube_api.get("coordination.k8s.io/v1", "Lease", lease_name("gw-t"), NS) is None


# -- the rest of the target --------------------------------------------------------------------


def test_launch_submits_without_waiting_and_routes_once_ready(kube, kube_api, xinference, replicas):
    stand_in, client = xinference
    stand_in.status.update({"chat--1--1": "READY", "chat--1--3": "READY"})
    target = target_for(kube, client)
    target.instances()
    uids = target.launch(Launch("chat", "1", 2, 1, "cpu", "P0", "load above target"))
    assert uids == ["chat--1--2", "chat--1--4"]  # the lowest free numbers
    assert stand_in.registrations["xpool-chat-1"]["model_family"] == "qwen2-instruct"
    assert [(b["model_uid"], q["wait_ready"]) for b, q in stand_in.launches] == [
        ("chat--1--2", ["false"]),
        ("chat--1--4", ["false"]),
    ]
    assert states(routes_doc(kube_api))["chat--1--4"] == "loading"
    a = replicas["make"]("gw-a")
    a.sync()
    assert [s.uid for s in a.table.slots()] == ["chat--1--1", "chat--1--3"]  # not loading ones

    stand_in.status.update({"chat--1--2": "READY", "chat--1--4": "LOADING"})
    seen = obs(target)
    assert seen["chat--1--2"] == ("ready", 0) and seen["chat--1--4"] == ("loading", 0)
    a.sync()
    assert a.table.routes()[0].uids == ("chat--1--1", "chat--1--2", "chat--1--3")
    assert {s.limit for s in a.table.slots()} == {4}

    with pytest.raises(InputError, match="chat version 9"):
        target.launch(Launch("chat", "9", 1, 1, "cpu", "P0", "x"))


def test_a_loading_instance_drains_without_ever_being_routed(kube, kube_api, xinference, replicas):
    stand_in, client = xinference
    stand_in.status.update({"chat--1--1": "READY", "chat--1--2": "LOADING"})
    target = target_for(kube, client)
    assert obs(target)["chat--1--2"] == ("loading", 0)
    a = replicas["make"]("gw-a")
    target.drain(DRAIN)
    stand_in.status["chat--1--2"] = "READY"
    assert obs(target)["chat--1--2"] == ("draining", 1)  # gw-a has not read the drain yet
    a.sync()
    assert obs(target)["chat--1--2"] == ("draining", 0)
    assert a.table.routes()[0].uids == ("chat--1--1",)  # never routed
    assert target.terminate(TERMINATE) is True


def test_failed_and_vanished_instances(kube, kube_api, xinference, replicas):
    stand_in, client = xinference
    stand_in.status.update({"chat--1--1": "READY", "chat--1--2": "READY", "other--1--1": "READY"})
    target = target_for(kube, client)
    assert set(obs(target)) == {"chat--1--1", "chat--1--2"}  # not the platform's: left alone
    a = replicas["make"]("gw-a")
    a.sync()
    stand_in.status["chat--1--2"] = "ERROR"
    seen = {i.uid: i for i in target.instances()}
    assert seen["chat--1--2"].state == "failed" and seen["chat--1--2"].error == "out of memory"
    assert states(routes_doc(kube_api))["chat--1--2"] == "draining"  # no longer routed
    a.sync()
    assert a.table.routes()[0].uids == ("chat--1--1",)
    assert target.terminate(Terminate("chat--1--2", "chat", "launch failed")) is True

    del stand_in.status["chat--1--1"]  # gone behind our back (e.g. a supervisor restart)
    assert obs(target) == {}
    assert states(routes_doc(kube_api)) == {}


def test_a_write_that_races_another_is_retried_on_the_latest_document(kube, kube_api, xinference):
    stand_in, client = xinference
    stand_in.status.update({"chat--1--1": "READY"})
    target = target_for(kube, client)
    target.instances()
    calls = []

    def change(routes: Routes) -> None:
        calls.append(routes.generation)
        if len(calls) == 1:  # someone else writes between our read and our write
            doc = routes_doc(kube_api)
            doc["models"][0]["weights"] = {"1": 100}
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": ROUTES, "namespace": NS},
                "data": {DATA_KEY: json.dumps(doc)},
            }
            kube.request(
                "PATCH",
                f"/api/v1/namespaces/{NS}/configmaps/{ROUTES}",
                what="set weights",
                query={"fieldManager": "xpool-rollout", "force": "true"},
                body=body,
                content_type="application/apply-patch+yaml",
            )
        routes.set_state("chat--1--1", "draining", 1.0, model_type="LLM", limit=4)

    doc = target.edit_routes(change)
    assert len(calls) == 2
    stored = routes_doc(kube_api)
    assert stored == doc and stored["models"][0]["weights"] == {"1": 100}
    assert states(stored) == {"chat--1--1": "draining"}
    assert stored["generation"] == calls[1] + 1


def test_a_recreated_configmap_continues_after_the_replicas_generation(
    kube, kube_api, xinference, replicas
):
    stand_in, client = xinference
    stand_in.status.update({"chat--1--1": "READY", "chat--1--2": "READY"})
    target = target_for(kube, client)
    target.instances()
    for _ in range(3):
        target.drain(DRAIN)
        target.edit_routes(
            lambda r: r.set_state("chat--1--2", "ready", 0.0, model_type="LLM", limit=4)
        )
    a = replicas["make"]("gw-a")
    a.sync()
    applied = routes_doc(kube_api)["generation"]
    kube.request("DELETE", f"/api/v1/namespaces/{NS}/configmaps/{ROUTES}", what="t")
    target.drain(DRAIN)
    assert routes_doc(kube_api)["generation"] > applied
    assert obs(target)["chat--1--2"] == ("draining", 1)  # gw-a has not seen the new document


# -- pure parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        ([], 0),  # no live replica: nobody routes to it
        ([(5, {"u": 0}), (5, {})], 0),
        ([(5, {"u": 0}), (4, {"u": 0})], 1),  # one has not applied the drain: busy
        ([(6, {"u": 2}), (5, {"u": 1})], 3),
        ([(4, {"u": 3})], 3),
        ([(-1, {})], 1),  # never read the routes
    ],
)
def test_drain_inflight(reports, expected):
    made = [ReplicaReport(f"r{i}", g, n, 0.0, 15.0) for i, (g, n) in enumerate(reports)]
    assert drain_inflight("u", 5, made) == expected


def test_liveness_allows_for_clock_skew():
    report = ReplicaReport("r", 1, {}, renewed=1000.0, duration=15.0)
    assert report.live(1044.0, skew=30.0)
    assert not report.live(1046.0, skew=30.0)
    assert not ReplicaReport("r", 1, {}, renewed=None, duration=15.0).live(0.0, skew=30.0)


def test_replica_ids_and_intervals_are_checked(kube):
    table = RoutingTable()
    source = ConfigMapRoutingSource(kube, NS, table)
    with pytest.raises(InputError, match="Gw_A"):
        ReplicaReporter(kube, NS, table, source, replica="Gw_A")
    with pytest.raises(InputError, match="interval 20 s"):
        ReplicaReporter(kube, NS, table, source, replica="gw-a", interval=20)
