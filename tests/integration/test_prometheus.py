"""The Prometheus adapter against a REAL Prometheus (Debian's binary) scraping a real exporter.

One Prometheus per module keeps the file fast; every wait is a poll with a timeout (targets
reach the scrape loop a few seconds after their file changes: Prometheus batches discovery
updates every 5 s).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TypeVar

import pytest

from tests.integration.metrics_exporter import GPU_UTIL, UtilExporter
from xpool.adapters.prometheus import PrometheusClient, Sample
from xpool.errors import InputError, RemoteError
from xpool.local import prometheus as prometheus_runner
from xpool.local.prometheus import LocalPrometheus
from xpool.local.runtime import free_port
from xpool.render.environment import policy_yaml

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="the prometheus binary is not installed (apt-get install -y prometheus)",
)

T = TypeVar("T")
TOKEN = "secret-token-never-shown"


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll `probe` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result is not None:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def only(samples: list[Sample]) -> Sample | None:
    return samples[0] if len(samples) == 1 else None


@pytest.fixture(scope="module")
def exporter() -> Iterator[UtilExporter]:
    with UtilExporter() as exp:
        yield exp


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, exporter: UtilExporter):
    local = LocalPrometheus(tmp_path_factory.mktemp("prometheus"), scrape_interval=1.0)
    local.set_targets("gpus", [exporter.target], {"pool": "rtx"})
    with local:
        yield local


@pytest.fixture(scope="module")
def client(prometheus: LocalPrometheus) -> Iterator[PrometheusClient]:
    with PrometheusClient(prometheus.url, bearer_token=TOKEN) as c:
        yield c


def test_gauge_is_scraped_and_changes_are_seen(
    client: PrometheusClient, exporter: UtilExporter
) -> None:
    exporter.set("0", 37.5, hostname="node-a")
    query = f'{GPU_UTIL}{{job="gpus", gpu="0"}}'

    def value_is(expected: float) -> Callable[[], Sample | None]:
        def probe() -> Sample | None:
            s = only(client.query(query))
            return s if s is not None and s.value == expected else None

        return probe

    sample = eventually(value_is(37.5), f"{GPU_UTIL} = 37.5")
    assert sample.labels["Hostname"] == "node-a"
    assert sample.labels["modelName"] == "NVIDIA GeForce RTX 5090"
    assert sample.labels["pool"] == "rtx"  # target labels from set_targets
    assert abs(sample.timestamp - time.time()) < 60

    exporter.set("0", 81.0, hostname="node-a")
    eventually(value_is(81.0), f"{GPU_UTIL} = 81 after the change")

    # the policies' own utilisation query aggregates what the exporter exposes
    utilization = policy_yaml("promql.yaml")["utilization"]["nvidia"]
    per_gpu = {(s.labels["Hostname"], s.labels["gpu"]): s.value for s in client.query(utilization)}
    assert per_gpu[("node-a", "0")] == 81.0


def test_cleared_gpu_disappears(client: PrometheusClient, exporter: UtilExporter) -> None:
    exporter.set("7", 10.0)
    query = f'{GPU_UTIL}{{job="gpus", gpu="7"}}'
    eventually(lambda: only(client.query(query)), "gpu 7 to appear")
    exporter.clear("7")
    eventually(lambda: True if client.query(query) == [] else None, "gpu 7 to go stale")


def test_rate_of_a_counter_is_the_qps(client: PrometheusClient, exporter: UtilExporter) -> None:
    qps = policy_yaml("promql.yaml")["qps"]  # sum by (tier) (rate(...[1m]))

    def probe() -> Sample | None:
        exporter.add_requests("P0", "qwen", n=5)
        by_tier = {s.labels.get("tier"): s for s in client.query(qps)}
        s = by_tier.get("P0")
        return s if s is not None and s.value > 0 else None

    sample = eventually(probe, "a positive rate of xpool_gateway_requests_total")
    assert math.isfinite(sample.value)
    # the reconciler's per-model demand reads the same counter
    model_qps = policy_yaml("promql.yaml")["reconciler"]["modelQps"]
    by_model = {s.labels.get("model"): s.value for s in client.query(model_qps)}
    assert by_model["qwen"] > 0


def test_set_targets_adds_a_job_without_restart_and_up_drops_when_it_stops(
    prometheus: LocalPrometheus, client: PrometheusClient
) -> None:
    pid = prometheus.pid
    second = UtilExporter().start()
    target = second.target
    try:
        second.set("0", 55.0, hostname="node-b")
        prometheus.set_targets("second", [target], {"pool": "ascend"})
        up = f'up{{job="second", instance="{target}"}}'

        def up_is(expected: float) -> Callable[[], Sample | None]:
            def probe() -> Sample | None:
                s = only(client.query(up))
                return s if s is not None and s.value == expected else None

            return probe

        sample = eventually(up_is(1.0), "the second job to be scraped")
        assert sample.labels["pool"] == "ascend"
        util = only(client.query(f'{GPU_UTIL}{{job="second"}}'))
        assert util is not None and util.value == 55.0
        assert prometheus.pid == pid and prometheus.process is not None
        assert prometheus.process.poll() is None
    finally:
        second.stop()
    eventually(up_is(0.0), "up to turn 0 after the exporter stopped")

    prometheus.set_targets("second", [])
    eventually(lambda: True if client.query(up) == [] else None, "the emptied job to go away")


def test_scalars_nan_and_evaluation_time(client: PrometheusClient) -> None:
    [two] = client.query("1 + 1")
    assert two.labels == {} and two.value == 2.0 and not two.missing
    [nan] = client.query("0 / 0")
    assert math.isnan(nan.value) and nan.missing
    [at] = client.query("time()", at=1_700_000_000.5)
    assert at.value == 1_700_000_000.5 and at.timestamp == 1_700_000_000.5
    assert client.ready()


def test_invalid_promql_is_an_input_error(client: PrometheusClient) -> None:
    bad = "sum(rate(xpool_gateway_requests_total[1m]"
    with pytest.raises(InputError) as err:
        client.query(bad)
    message = str(err.value)
    assert bad in message
    assert "promql.yaml" in message and "platform file" in message
    assert "parse error" in message  # Prometheus' own explanation
    assert TOKEN not in message


def test_range_vector_result_is_an_input_error(client: PrometheusClient) -> None:
    with pytest.raises(InputError, match=r"returns a matrix.*rate\(\)"):
        client.query("up[1m]")


def test_stopped_prometheus_is_a_remote_error(tmp_path: Path) -> None:
    local = LocalPrometheus(tmp_path).start()
    url, pid = local.url, local.pid
    assert pid is not None
    local.stop()
    assert local.process is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with PrometheusClient(url, bearer_token=TOKEN, attempts=2, timeout=2) as client:
        assert not client.ready()
        with pytest.raises(RemoteError) as err:
            client.query("up")
    message = str(err.value)
    assert f"prometheus at {url}" in message and "after 2 attempts" in message
    assert TOKEN not in message


_SCALAR = {"status": "success", "data": {"resultType": "scalar", "result": [1.5, "3"]}}
_BUSY = {"status": "error", "errorType": "unavailable", "error": "busy"}
_BAD = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error"}


class ScriptedServer(ThreadingHTTPServer):
    """Answers every GET with the next (status, body) of `script` (then a scalar), recording
    the Authorization header of each request in `seen`."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Scripted)
        self.script: list[tuple[int, dict]] = []
        self.seen: list[str | None] = []


class _Scripted(BaseHTTPRequestHandler):
    server: ScriptedServer

    def do_GET(self) -> None:
        status, body = self.server.script.pop(0) if self.server.script else (200, _SCALAR)
        self.server.seen.append(self.headers.get("Authorization"))
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_429_and_5xx_are_retried_400_is_not(scripted: ScriptedServer) -> None:
    url = f"http://127.0.0.1:{scripted.server_port}"
    with PrometheusClient(url, bearer_token=TOKEN, attempts=3) as client:
        scripted.script[:] = [(503, _BUSY), (429, _BUSY)]
        [sample] = client.query("x")
        assert sample.value == 3.0 and sample.timestamp == 1.5
        assert scripted.seen == [f"Bearer {TOKEN}"] * 3

        scripted.seen.clear()
        scripted.script[:] = [(400, _BAD), (200, _SCALAR)]
        with pytest.raises(InputError, match="bad_data: 1:5: parse error"):
            client.query("sum(")
        assert len(scripted.seen) == 1

        scripted.script[:] = [(502, _BUSY)] * 3
        with pytest.raises(RemoteError, match="HTTP 502: busy"):
            client.query("x")


def test_start_moves_to_another_port_when_the_free_one_was_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race between probing a free port and Prometheus binding it, made certain."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = iter([busy])
        monkeypatch.setattr(
            prometheus_runner, "free_port", lambda host: next(ports, None) or free_port(host)
        )
        with LocalPrometheus(tmp_path) as local:
            assert local.port != busy
            with PrometheusClient(local.url) as client:
                assert client.ready()
        assert "address already in use" in local.log_file.read_text()

        monkeypatch.setattr(prometheus_runner, "free_port", lambda host: busy)
        monkeypatch.setattr(prometheus_runner, "PORT_ATTEMPTS", 1)  # each failure takes ~2 s
        with pytest.raises(RemoteError, match=r"(?s)exited with code \d+ while starting.*in use"):
            LocalPrometheus(tmp_path / "always-taken").start()


def test_unreadable_ca_bundle_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"CA bundle .*missing\.pem"):
        PrometheusClient("https://127.0.0.1:1", verify=str(tmp_path / "missing.pem"))


def test_missing_binary_is_an_input_error(tmp_path: Path) -> None:
    local = LocalPrometheus(tmp_path, binary="prometheus-that-is-not-installed")
    with pytest.raises(InputError, match=r"apt-get install -y prometheus .*--prometheus URL"):
        local.start()
