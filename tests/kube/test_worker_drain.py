"""`xpool worker drain` on Kubernetes, as a subprocess against the contract API server: what a
worker pod's preStop hook runs when Volcano evicts it or a node is drained.

A gateway replica runs in-process as `xpool gateway` wires it (RoutingTable,
ConfigMapRoutingSource and ReplicaReporter on their own threads), so the drain reads the same
report Leases the reconciler reads; a request in flight is a lease taken from its table.
Xinference is a stand-in serving the one route the drain reads, `GET /v1/models/instances`, in
Xinference 4.1.0's shape (each replica's `worker_address`): the adapter and the drain against
real Xinference workers are tested in tests/integration/test_eviction.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.contract.apiserver import ContractApiServer
from tests.gateway.test_gateway_cli_reports import forbidden, rendered_role, wait_for
from tests.kube.conftest import RETRY_ENV
from xpool.adapters.kube_client import Connection, KubeClient
from xpool.gateway.replica_report import ReplicaReporter
from xpool.gateway.routing import Lease, RoutingTable
from xpool.gateway.source import DATA_KEY, ConfigMapRoutingSource

NS = "default"
ROUTES = "xpool-routes"
# chat--1--2 and embedding--1--1 run on the evicted worker's pod (10.0.0.2), chat--1--1 elsewhere
ON_WORKERS = {
    "chat--1--1": "10.0.0.1:30001",
    "chat--1--2": "10.0.0.2:30001",
    "embedding--1--1": "10.0.0.2:30001",
}
SECRET = "sk-worker-drain-test-51c7"
REPLICA = "xpool-gateway-0"


def _stand_in(instances: dict[str, str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != "/v1/models/instances":
                self.send_error(404)
                return
            body = json.dumps(
                [
                    {
                        "model_uid": uid,
                        "model_name": f"xpool-{uid.rsplit('--', 1)[0]}",
                        "status": "READY",
                        "replica_statuses": [{"worker_address": worker, "status": "READY"}],
                    }
                    for uid, worker in instances.items()
                ]
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def xinference() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _stand_in(ON_WORKERS))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def platform_file(tmp_path: Path, endpoint: str, drain_timeout: str = "4s") -> Path:
    """The quickstart on a remote Xinference with an API key and a short drainTimeout."""
    text = (EXAMPLES / "quickstart.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "    endpoint: embedded\n",
        f"    endpoint: {endpoint}\n    apiKeyEnv: XPOOL_TEST_KEY\n",
    )
    text = text.replace(
        "  pools:\n", f"  autoscaling:\n    drainTimeout: {drain_timeout}\n  pools:\n"
    )
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    return path


def seed_routes(kube_api: ContractApiServer) -> None:
    def model(name: str, uids: list[str]) -> dict[str, Any]:
        entries = [
            {"uid": u, "version": "1", "limit": 4, "state": "ready", "generation": 1} for u in uids
        ]
        return {"model": name, "type": "LLM", "instances": entries}

    doc = {
        "generation": 1,
        "models": [model("chat", ["chat--1--1", "chat--1--2"]), model("embedding", [])],
    }
    kube_api.seed(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": ROUTES, "namespace": NS},
            "data": {DATA_KEY: json.dumps(doc)},
        }
    )


def routes(kube_api: ContractApiServer) -> dict[str, Any]:
    return json.loads(kube_api.get("v1", "ConfigMap", ROUTES, NS)["data"][DATA_KEY])


def states(doc: dict[str, Any]) -> dict[str, str]:
    return {i["uid"]: i["state"] for m in doc["models"] for i in m["instances"]}


class Replica:
    """One gateway replica on its own threads: it polls the routes and renews its report."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kube = KubeClient.connect(Connection(str(kubeconfig), "contract"))
        self.table = RoutingTable(seed=1)
        self.source = ConfigMapRoutingSource(self.kube, NS, self.table, name=ROUTES, interval=0.2)
        self.reporter = ReplicaReporter(
            self.kube, NS, self.table, self.source, replica=REPLICA, interval=0.2
        ).start()
        self.source.start()

    def hold(self, uid: str) -> Lease:
        """A request in flight on `uid`, once the replica routes to it."""
        wait_for(f"{uid} routed", lambda: uid in {s.uid for s in self.table.slots()})
        others = [s.uid for s in self.table.slots() if s.uid != uid]
        lease = self.table.acquire("chat", exclude=others)
        assert isinstance(lease, Lease) and lease.uid == uid
        return lease

    def stop(self) -> None:
        self.source.stop()
        self.reporter.stop()
        self.kube.close()


@pytest.fixture
def replica(kube_api: ContractApiServer, kubeconfig: Path) -> Iterator[Replica]:
    seed_routes(kube_api)
    made = Replica(kubeconfig)
    try:
        yield made
    finally:
        made.stop()


def drain(platform: Path, kubeconfig: Path, worker: str, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(RETRY_ENV, PYTHONPATH=str(ROOT / "toolkit"), XPOOL_TEST_KEY=SECRET)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xpool.cli",
            "worker",
            "drain",
            str(platform),
            "--worker",
            worker,
            "--kubeconfig",
            str(kubeconfig),
            "--context",
            "contract",
            "-n",
            NS,
            "-o",
            "json",
            *extra,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def drain_forbidden(kube_api: ContractApiServer) -> list[str]:
    """The drain's requests the rendered Role xpool-worker-drain does not allow (the replica's
    writes to its own Lease left out). The routes existed, so the API server authorizes the
    drain's apply as a patch alone: it checks `create` only when an apply creates the object
    (apiserver endpoints/handlers/patch.go), which the Role does not grant on purpose."""
    mine = [r for r in kube_api.requests if not r.path.endswith(f"/leases/xpool-gateway-{REPLICA}")]
    return [
        line
        for line in forbidden(rendered_role("xpool-worker-drain"), mine)
        if not line.endswith("create configmaps 'xpool-routes'")
    ]


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[dict[str, Any], str]:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert SECRET not in stdout + stderr
    assert "Traceback" not in stderr
    return (json.loads(stdout) if stdout.strip() else {}), stderr


def test_drains_the_workers_instances_and_waits_for_their_requests(
    kube_api: ContractApiServer, kubeconfig: Path, xinference: str, replica: Replica, tmp_path: Path
) -> None:
    held = replica.hold("chat--1--2")
    done = tmp_path / "run" / "drained"
    proc = drain(
        platform_file(tmp_path, xinference, "60s"), kubeconfig, "10.0.0.2", "--done-file", str(done)
    )
    marked = wait_for(
        "the worker's instances draining",
        lambda: (doc := routes(kube_api)) and states(doc).get("chat--1--2") == "draining" and doc,
        timeout=30,
    )
    # both of the worker's instances in one generation; the other worker's stays routed
    assert states(marked) == {
        "chat--1--1": "ready",
        "chat--1--2": "draining",
        "embedding--1--1": "draining",
    }
    assert marked["generation"] == 2
    wait_for("the replica to apply it", lambda: replica.table.routes()[0].draining)
    assert [r.uids for r in replica.table.routes() if r.model == "chat"] == [("chat--1--1",)]
    time.sleep(1.5)  # the replica has reported generation 2 with 1 request in flight
    assert proc.poll() is None and not done.exists()

    replica.table.release(held)
    result, stderr = finish(proc)
    assert proc.returncode == 0, stderr
    assert result["drained"] is True and result["inflight"] == {
        "chat--1--2": 0,
        "embedding--1--1": 0,
    }
    assert sorted(result["instances"]) == ["chat--1--2", "embedding--1--1"]
    assert "waiting for chat--1--2: 1" in stderr and "drained" in stderr
    assert done.exists()
    assert drain_forbidden(kube_api) == []


def test_a_drain_that_outlasts_drain_timeout_warns_and_exits_0(
    kube_api: ContractApiServer, kubeconfig: Path, xinference: str, replica: Replica, tmp_path: Path
) -> None:
    replica.hold("chat--1--2")  # never released
    done = tmp_path / "drained"
    started = time.monotonic()
    proc = drain(
        platform_file(tmp_path, xinference, "3s"),
        kubeconfig,
        "10.0.0.2:30001",
        "--done-file",
        str(done),
    )
    result, stderr = finish(proc)
    assert proc.returncode == 0, stderr
    assert time.monotonic() - started >= 3
    assert result["drained"] is False and result["inflight"]["chat--1--2"] == 1
    assert "drainTimeout 3 s passed with 1 request(s) in flight" in stderr
    assert done.exists()


def test_a_worker_without_instances_changes_nothing(
    kube_api: ContractApiServer, kubeconfig: Path, xinference: str, replica: Replica, tmp_path: Path
) -> None:
    before = routes(kube_api)
    proc = drain(platform_file(tmp_path, xinference), kubeconfig, "10.0.0.9")
    result, stderr = finish(proc)
    assert proc.returncode == 0, stderr
    assert result == {
        "worker": "10.0.0.9",
        "instances": [],
        "drained": True,
        "inflight": {},
        "seconds": 0.0,
    }
    assert "no instance of the platform to drain" in stderr
    assert routes(kube_api) == before


def test_bad_input_exits_2_and_an_unreachable_supervisor_exits_3(
    kube_api: ContractApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    done = tmp_path / "drained"
    proc = drain(platform_file(tmp_path, "http://127.0.0.1:1"), kubeconfig, "10.0.0.2:x")
    _, stderr = finish(proc)
    assert proc.returncode == 2 and "--worker" in stderr
    proc = drain(
        platform_file(tmp_path, "http://127.0.0.1:1"),
        kubeconfig,
        "10.0.0.2",
        "--done-file",
        str(done),
    )
    _, stderr = finish(proc)
    assert proc.returncode == 3, stderr
    assert "cannot reach Xinference" in stderr
    assert done.exists()  # the worker's own preStop is not left waiting
    assert kube_api.writes() == []
