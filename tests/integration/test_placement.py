"""Placement on real Xinference workers: a multi-worker `xpool up` (a supervisor and one
`xinference-worker` process per node, one tier per node) launches each instance on a worker of
its own tier, and so do `xpool scale` and `xpool reconcile`. Where an instance runs is read back from the
supervisor (GET /v1/workers), and which tier a worker serves from the environment of the
process listening on that address, not from xpool's bookkeeping."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ROOT
from tests.integration.conftest import free_port
from xpool.local.runtime import pid_alive

MODELS = """\
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
      instances: {{min: {chat}, max: 3}}
    - name: embedding
      type: embedding
      tier: P1
      architecture: all-minilm-l6-v2
      versions:
        - {{version: "1", source: "local://all-minilm-l6-v2", weightPrecision: fp32,
           engines: {{cpu: sentence_transformers}}}}
      context: {{batch: 8, seqLen: 256}}
      demand: {{peakQps: 1}}
      perInstanceQps: 20
      instances: {{min: {embedding}, max: 3}}
"""
TIERS = {"chat": "P0", "embedding": "P1"}


def platform_file(path: Path, port: int, chat: int, embedding: int) -> Path:
    """3 CPU nodes of 2 accelerators: the tiers' 40/30/30 are 2/2/2, a node each."""
    path.write_text(
        f"""\
apiVersion: xpool.io/v1alpha1
kind: Platform
metadata: {{name: placement-test}}
spec:
  xinference: {{endpoint: embedded}}
  gateway: {{listen: "127.0.0.1:{port}"}}
  pools:
    - {{name: local, vendor: cpu, accelerator: cpu, nodes: 3, acceleratorsPerNode: 2}}
  models:
{MODELS.format(chat=chat, embedding=embedding)}"""
    )
    return path


class Up:
    def __init__(self, proc: subprocess.Popen[str], state: Path, port: int, tmp: Path) -> None:
        self.proc, self.state, self.port, self.tmp = proc, state, port, tmp

    @property
    def endpoint(self) -> str:
        return json.loads((self.state / "up.json").read_text())["endpoint"]

    def where(self) -> dict[str, str]:
        """instance UID -> worker address, as the supervisor reports it."""
        listed = httpx.get(f"{self.endpoint}/v1/workers", timeout=30).json()
        return {uid.removesuffix("-rep0"): w["work-ip"] for w in listed for uid in w["models"]}


def tier_of_worker(address: str) -> str:
    """XPOOL_TIER of the process listening on `address` (host:port)."""
    port = int(address.rsplit(":", 1)[1])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid).environ()["XPOOL_TIER"]
    raise AssertionError(f"no process listens on {address}")


@contextmanager
def running_up(tmp: Path, platform: Path, port: int) -> Iterator[Up]:
    """`xpool up` of `platform` (a CPU pool of several nodes: --workers is the default), its
    gateway on `port`, as a subprocess once it serves; SIGTERM when done."""
    state = tmp / "state"
    log = (tmp / "up.log").open("w")
    cmd = [sys.executable, "-m", "xpool.cli", "up", str(platform), "--state-dir", str(state)]
    proc = subprocess.Popen(
        [*cmd, "--no-prometheus"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=ROOT,
    )
    try:
        first = proc.stdout.readline() if proc.stdout else ""
        assert "is serving on" in first, (tmp / "up.log").read_text()[-3000:]
        yield Up(proc, state, port, tmp)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp = tmp_path_factory.mktemp("placement")
    port = free_port()
    with running_up(tmp, platform_file(tmp / "platform.yaml", port, 1, 1), port) as started:
        yield started


def test_up_starts_one_worker_per_node_and_places_each_instance_on_its_tier(up: Up) -> None:
    listed = httpx.get(f"{up.endpoint}/v1/workers", timeout=30).json()
    workers = sorted(w["work-ip"] for w in listed)
    assert len(workers) == 3
    assert sorted(tier_of_worker(w) for w in workers) == ["P0", "P1", "P2"]
    where = up.where()
    assert set(where) == {"chat--1--1", "embedding--1--1"}, where
    for uid, address in where.items():
        assert tier_of_worker(address) == TIERS[uid.split("--")[0]], (uid, address)


def xpool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xpool.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def test_scale_places_on_the_tier_and_refuses_when_its_workers_are_full(up: Up) -> None:
    """`xpool scale` through the gateway: chat's second instance goes to P0's worker; a third
    has no room there (2 accelerators), although P2's worker is idle."""
    platform = str(up.tmp / "platform.yaml")
    state = ["--state-dir", str(up.state)]
    done = xpool("scale", platform, "chat", "--instances", "2", *state)
    assert done.returncode == 0, done.stderr
    where = up.where()
    assert tier_of_worker(where["chat--1--2"]) == "P0", where
    refused = xpool("scale", platform, "chat", "--instances", "3", *state)
    assert refused.returncode != 0
    assert "no worker of tier P0 on local has 1 free accelerator(s)" in refused.stderr
    assert "chat--1--3" not in up.where()


def test_reconcile_places_new_instances_on_their_tier_and_says_when_there_is_no_room(
    up: Up,
) -> None:
    """P1 borrows (its share is full, the pool is not), but a third embedding instance has no
    room on P1's worker of 2 accelerators, and P2's idle worker is not P1's: the decision says
    so. The same pass asks P1's burst Job for a worker, pending while P2's worker holds its
    node: P2's main Job keeps its one worker (Volcano refuses a Job below its minAvailable),
    so nothing is released (tests/integration/test_worker_groups_*.py go on)."""
    platform = platform_file(up.tmp / "more.yaml", up.port, chat=2, embedding=3)
    audit = up.tmp / "audit.jsonl"
    # exit 3: no Prometheus to read load from; floors are restored anyway
    done = xpool(
        "reconcile",
        str(platform),
        "--once",
        "--state-dir",
        str(up.state),
        "--audit-log",
        str(audit),
    )
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    launched = [r["fields"] for r in records if r["action"] == "launch"]
    assert [(f["model"], f["count"]) for f in launched] == [("embedding", 1)], done.stderr
    assert "no worker of tier P1 on local has 1 free accelerator(s)" in done.stderr, done.stderr
    released = [r["fields"] for r in records if r["action"] == "scale-workers"]
    assert released == []  # the burst Job's worker is pending: a scale that waits
    pending = "xinference-p1-local-burst/worker-1: 1 replica(s) asked, pending: no node of pool"
    assert pending in (up.tmp / "up.log").read_text()
    deadline = time.monotonic() + 300
    while len(where := up.where()) < 4 and time.monotonic() < deadline:
        time.sleep(2)
    assert set(where) == {"chat--1--1", "chat--1--2", "embedding--1--1", "embedding--1--2"}
    for uid, address in where.items():
        assert tier_of_worker(address) == TIERS[uid.split("--")[0]], (uid, address)
    assert launched[0]["worker"] == where["embedding--1--2"]


def test_stopping_up_ends_every_worker(up: Up) -> None:
    groups = json.loads((up.state / "xinference.pid").read_text())["groups"]
    assert len(groups) == 4  # the supervisor and the P0, P1 and P2 workers
    up.proc.send_signal(signal.SIGTERM)
    up.proc.wait(timeout=120)
    assert not any(pid_alive(g) for g in groups)
    assert not (up.state / "workers.json").exists()
    assert not (up.state / "xinference.pid").exists()
