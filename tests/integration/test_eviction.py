"""Eviction drains first, on real Xinference workers (issue 15's acceptance test): a multi-worker
`xpool up` (a supervisor and one `xinference-worker` process per node) serves chat from two
instances, one per worker, under steady load through the gateway, streams included. The worker
holding one instance is evicted as the kubelet does it: the preStop command (`xpool worker
drain`), then SIGTERM to the worker. No request fails or is cut, and once the drain has begun
every new request goes to the other instance."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.integration.conftest import free_port
from xpool.local.runtime import pid_alive


def platform_file(path: Path, port: int) -> Path:
    """One tier on a CPU pool of 2 nodes of 1 accelerator: two workers, one chat instance each."""
    path.write_text(
        f"""\
apiVersion: xpool.io/v1alpha1
kind: Platform
metadata: {{name: eviction-test}}
spec:
  xinference: {{endpoint: embedded}}
  gateway: {{listen: "127.0.0.1:{port}"}}
  autoscaling: {{drainTimeout: 60s}}
  tiers:
    - {{name: P0, share: 1.0, priority: 1000000, preemptible: false, borrow: false}}
  pools:
    - {{name: local, vendor: cpu, accelerator: cpu, nodes: 2, acceleratorsPerNode: 1}}
  models:
    - name: chat
      type: llm
      tier: P0
      architecture: tiny-qwen2-chat
      versions:
        - {{version: "1", source: "local://tiny-qwen2-chat", weightPrecision: fp32,
           kvPrecision: fp32, engines: {{cpu: transformers}}}}
      context: {{batch: 4, seqLen: 512, outputTokens: 8}}
      demand: {{peakQps: 1}}
      perInstanceQps: 2
      instances: {{min: 2, max: 2}}
"""
    )
    return path


class Load:
    """Clients sending chat requests through the gateway, alternately whole and streamed;
    each outcome is (start time, status, instance, complete)."""

    def __init__(self, gateway: str, clients: int = 2) -> None:
        self.gateway = gateway
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: list[tuple[float, int, str, bool]] = []
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(120)

    def _one(self, http: httpx.Client, stream: bool) -> tuple[int, str, bool]:
        body = {
            "model": "chat",
            "messages": [{"role": "user", "content": "hello"}],
            "max_tokens": 8,
            "stream": stream,
        }
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            text = response.read().decode()
            instance = response.headers.get("x-xpool-instance", "")
            if response.status_code != 200:
                return response.status_code, f"{instance} {text[:200]}", False
            complete = "data: [DONE]" in text if stream else bool(json.loads(text)["choices"])
            return 200, instance, complete

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.gateway, timeout=120) as http:
            n = 0
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    status, instance, complete = self._one(http, stream=(n + i) % 2 == 0)
                except httpx.HTTPError as exc:
                    status, instance, complete = 0, repr(exc), False
                with self.lock:
                    self.outcomes.append((started, status, instance, complete))
                n += 1

    def served_by(self, after: float = 0.0) -> set[str]:
        with self.lock:
            return {o[2] for o in self.outcomes if o[0] >= after and o[1] == 200}

    def failed(self) -> list[tuple[float, int, str, bool]]:
        with self.lock:
            return [o for o in self.outcomes if o[1] != 200 or not o[3]]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str]]:
    tmp = tmp_path_factory.mktemp("eviction")
    port = free_port()
    platform = platform_file(tmp / "platform.yaml", port)
    state = tmp / "state"
    log = (tmp / "up.log").open("w")
    cmd = [sys.executable, "-m", "xpool.cli", "up", str(platform), "--state-dir", str(state)]
    proc = subprocess.Popen(
        [*cmd, "--no-prometheus"], stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT
    )
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        assert "is serving on" in first, (tmp / "up.log").read_text()[-3000:]
        yield platform, state, f"http://127.0.0.1:{port}"
        assert proc.poll() is None, "xpool up stopped when a worker was evicted"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def test_evicting_a_worker_under_load_loses_no_request(up: tuple[Path, Path, str]) -> None:
    platform, state, gateway = up
    endpoint = json.loads((state / "up.json").read_text())["endpoint"]
    listed = httpx.get(f"{endpoint}/v1/workers", timeout=30).json()
    where = {uid.removesuffix("-rep0"): w["work-ip"] for w in listed for uid in w["models"]}
    assert set(where) == {"chat--1--1", "chat--1--2"} and len(set(where.values())) == 2, where
    victim = where["chat--1--1"]
    pid = next(
        w["pid"]
        for w in json.loads((state / "workers.json").read_text())["workers"]
        if w["address"] == victim
    )

    with Load(gateway) as load:
        deadline = time.monotonic() + 60
        while load.served_by() != {"chat--1--1", "chat--1--2"}:
            assert time.monotonic() < deadline, f"load never reached both: {load.outcomes[-5:]}"
            time.sleep(0.2)
        # the kubelet: the preStop hook, then SIGTERM
        began = time.monotonic()
        drain = subprocess.run(
            [sys.executable, "-m", "xpool.cli", "worker", "drain", str(platform),
             "--worker", victim, "--state-dir", str(state), "-o", "json"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert drain.returncode == 0, drain.stderr
        result = json.loads(drain.stdout)
        assert result["instances"] == ["chat--1--1"] and result["drained"] is True, result
        drained = time.monotonic()
        subprocess.run(["kill", "-TERM", str(pid)], check=True)
        deadline = time.monotonic() + 60
        while pid_alive(pid):
            assert time.monotonic() < deadline, "the worker did not stop on SIGTERM"
            time.sleep(0.2)
        time.sleep(3)  # and the load goes on against what is left

    assert load.failed() == [], load.failed()[:5]
    assert load.served_by(after=drained) == {"chat--1--2"}
    assert len(load.outcomes) > 10
    assert began <= drained
