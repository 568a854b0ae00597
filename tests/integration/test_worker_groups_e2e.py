"""Elastic worker groups end to end on a local pool: `xpool reconcile --once`, pass after pass,
against a multi-worker `xpool up` with real workers. 3 CPU nodes of 2 accelerators; P0 owns
two thirds (two workers), P2 a third (one worker) and borrows what is idle.

While P0 is idle its second worker is released and P2's model borrows that node (P2's group
grows onto it, and two of P2's four instances run there). Then P0's demand rises to 4
instances: P2's newest instances, those on the borrowed node, are drained and terminated,
P2's extra worker stopped (released, or evicted for P0's pending worker by the reclaim
`xpool up` plays for Volcano), a P0 worker started on the freed node and P0's instances placed
on it, each step in the audit log with its reason, and no request fails meanwhile, neither
chat's nor embedding's (whose instances are drained). Last, P2 borrows a node it only partly
uses, which the policy does not drain for P0: the reclaim evicts it for P0's pending worker.
(P0's demand rises through instances.min: there is no Prometheus here.)"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import free_port
from tests.integration.test_eviction import Load
from tests.integration.test_placement import Up, running_up, tier_of_worker, xpool
from xpool.local.up_state import read_up_state

P0_JOB, P2_JOB = "xinference-p0-local", "xinference-p2-local"
P0, P2 = f"{P0_JOB}/worker-2", f"{P2_JOB}/worker-2"  # the subjects of their ScaleWorkers


def platform_file(path: Path, port: int, chat: int, embedding: int) -> Path:
    path.write_text(
        f"""\
apiVersion: xpool.io/v1alpha1
kind: Platform
metadata: {{name: groups-e2e}}
spec:
  xinference: {{endpoint: embedded}}
  gateway: {{listen: "127.0.0.1:{port}"}}
  pools:
    - {{name: local, vendor: cpu, accelerator: cpu, nodes: 3, acceleratorsPerNode: 2}}
  tiers:
    - {{name: P0, share: 0.67, priority: 1000000}}
    - {{name: P2, share: 0.33, priority: 10, preemptible: true, borrow: true}}
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
      instances: {{min: {chat}, max: 4}}
    - name: embedding
      type: embedding
      tier: P2
      architecture: all-minilm-l6-v2
      versions:
        - {{version: "1", source: "local://all-minilm-l6-v2", weightPrecision: fp32,
           engines: {{cpu: sentence_transformers}}}}
      context: {{batch: 8, seqLen: 256}}
      demand: {{peakQps: 1}}
      perInstanceQps: 20
      instances: {{min: {embedding}, max: 4}}
"""
    )
    return path


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp = tmp_path_factory.mktemp("groups-e2e")
    port = free_port()
    with running_up(tmp, platform_file(tmp / "platform.yaml", port, 1, 1), port) as started:
        yield started


class Embeddings:
    """One client sending embedding requests through the gateway; each outcome is (status,
    instance or error)."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.stop = threading.Event()
        self.outcomes: list[tuple[int, str]] = []
        self.thread = threading.Thread(target=self._run)

    def __enter__(self) -> Embeddings:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(120)

    def _run(self) -> None:
        body = {"model": "embedding", "input": "hello"}
        with httpx.Client(base_url=self.gateway, timeout=120) as http:
            while not self.stop.is_set():
                try:
                    response = http.post("/v1/embeddings", json=body)
                    ok = response.status_code == 200 and bool(response.json()["data"])
                    seen = response.headers.get("x-xpool-instance", "") if ok else response.text
                    self.outcomes.append((response.status_code if ok else -1, seen[:200]))
                except httpx.HTTPError as exc:
                    self.outcomes.append((0, repr(exc)))
                time.sleep(0.2)

    def failed(self) -> list[tuple[int, str]]:
        return [o for o in self.outcomes if o[0] != 200]


def workers(up: Up) -> dict[str, dict]:
    """Worker address -> its bookkeeping (group, index, node, state), from the admin API."""
    state = read_up_state(up.state)
    assert state is not None
    answer = httpx.get(
        f"{state.gateway}/-/admin/workers",
        headers={"Authorization": f"Bearer {state.admin_token()}"},
        timeout=30,
    ).json()
    return {w["address"]: w for w in answer["workers"]}


def on(up: Up, uid: str) -> dict | None:
    """The bookkeeping of the worker the supervisor runs `uid` on, once it serves."""
    address = up.where().get(uid)
    return workers(up).get(address) if address else None


def reconcile_until(up: Up, platform: Path, done: Callable[[], bool], passes: int = 15) -> None:
    """One `xpool reconcile --once` after another (exit 3 without Prometheus: floors are
    restored anyway) until `done`."""
    last = ""
    for _ in range(passes):
        run = xpool(
            "reconcile",
            str(platform),
            "--once",
            "--state-dir",
            str(up.state),
            "--audit-log",
            str(up.tmp / "audit.jsonl"),
        )
        last = run.stderr[-3000:]
        if done():
            return
        time.sleep(5)
    audit = (up.tmp / "audit.jsonl").read_text() if (up.tmp / "audit.jsonl").exists() else ""
    raise AssertionError(f"not done after {passes} passes\naudit:\n{audit}\nlast pass:\n{last}")


def audit(up: Up) -> list[dict]:
    return [json.loads(line) for line in (up.tmp / "audit.jsonl").read_text().splitlines()]


def steps(records: list[dict]) -> list[tuple[str, str, str]]:
    return [(r["action"], r["subject"], r["reason"]) for r in records]


def index_of(records: list[dict], action: str, subject: str) -> int:
    found = [i for i, r in enumerate(records) if (r["action"], r["subject"]) == (action, subject)]
    assert found, (action, subject, steps(records))
    assert all(records[i]["reason"] for i in found)
    return found[0]


def test_p2_borrows_the_node_p0_leaves_idle(up: Up) -> None:
    platform = platform_file(up.tmp / "borrow.yaml", up.port, chat=1, embedding=4)

    def borrowed() -> bool:
        there = [on(up, f"embedding--1--{n}") for n in (3, 4)]
        return all(w is not None and (w["job"], w["node"]) == (P2_JOB, 1) for w in there)

    reconcile_until(up, platform, borrowed)
    records = audit(up)
    released = index_of(records, "scale-workers", P0)
    grown = index_of(records, "scale-workers", P2)
    assert (records[released]["before"]["replicas"], records[released]["fields"]["replicas"]) == (
        2,
        1,
    )
    assert released < grown
    assert records[grown]["fields"]["replicas"] == 2
    assert tier_of_worker(up.where()["embedding--1--3"]) == "P2"
    assert sorted((w["job"], w["index"]) for w in workers(up).values()) == [
        ("xinference-p0-local", 0),
        ("xinference-p2-local", 0),
        ("xinference-p2-local", 1),
    ]


def test_p0_demand_takes_the_node_back_draining_p2_first(up: Up) -> None:
    start = len(audit(up))
    borrowed = next(a for a, w in workers(up).items() if (w["job"], w["index"]) == (P2_JOB, 1))
    platform = platform_file(up.tmp / "burst.yaml", up.port, chat=4, embedding=1)

    def placed() -> bool:
        """chat's four instances serve on P0's workers, some of them on node 1."""
        where, book = up.where(), workers(up)
        chats = [book.get(where.get(f"chat--1--{n}", ""), {}) for n in (1, 2, 3, 4)]
        return all(w.get("job") == P0_JOB for w in chats) and any(w["node"] == 1 for w in chats)

    gateway = f"http://127.0.0.1:{up.port}"
    with Load(gateway, clients=1) as chat, Embeddings(gateway) as embeddings:
        reconcile_until(up, platform, placed, passes=20)
        time.sleep(3)  # and the load goes on against what serves now
    assert chat.failed() == [], chat.failed()[:5]
    assert embeddings.failed() == [], embeddings.failed()[:5]
    assert len(chat.outcomes) > 10 and len(embeddings.outcomes) > 10
    served = {instance for _, instance in embeddings.outcomes}
    assert {"embedding--1--3", "embedding--1--4"} & served, served  # the drained ones served
    records = audit(up)[start:]
    print("\n".join(f"{a} {s}: {r}" for a, s, r in steps(records)))
    drained = sorted(r["subject"] for r in records if r["action"] == "drain")
    assert "embedding--1--4" in drained, steps(records)  # the newest first
    released = index_of(records, "scale-workers", P2)
    grown = index_of(records, "scale-workers", P0)
    assert min(index_of(records, "drain", uid) for uid in drained) < grown, steps(records)
    assert (records[released]["fields"]["replicas"], records[grown]["fields"]["replicas"]) == (1, 2)
    # P2's borrowed worker ends once its instances are terminated: released by the policy,
    # or evicted for P0's pending worker (Volcano's reclaim, which `xpool up` plays; it may
    # then take one of the borrowed instances the policy's drain had not), drained first
    log = (up.tmp / "up.log").read_text()
    stopped = log.index(f"worker {borrowed} stopped")
    for uid in ("embedding--1--3", "embedding--1--4"):
        assert log.index(f"{uid}: terminated") < stopped, log[-3000:]
    launches = [r for r in records[grown:] if r["action"] == "launch"]
    new = next(a for a, w in workers(up).items() if (w["job"], w["node"]) == (P0_JOB, 1))
    assert any(r["fields"]["worker"] == new for r in launches), steps(records)
    assert tier_of_worker(new) == "P0"
    assert borrowed not in workers(up)
    assert borrowed not in {w["work-ip"] for w in httpx.get(f"{up.endpoint}/v1/workers").json()}


def test_a_pending_p0_worker_reclaims_the_node_p2_borrowed_and_only_partly_uses(up: Up) -> None:
    """P2 borrows a node again but runs three instances on its four accelerators, so the
    ledger has room for P0's demand without draining P2: the policy asks for a P0 worker,
    which no node has room for. `xpool up` plays Volcano's reclaim: P2's borrowed worker is
    evicted (its instance drained first), P0's worker starts on its node and P0's
    instances are placed there."""
    lend = platform_file(up.tmp / "lend.yaml", up.port, chat=1, embedding=3)
    # chat back to one instance (no Prometheus here, so nothing scales down by itself), on
    # P0's first worker: P0's second one is idle and released, P2 borrows its node
    run = xpool("scale", str(lend), "chat", "--instances", "1", "--state-dir", str(up.state))
    assert run.returncode == 0, run.stderr

    def lent() -> bool:
        where, book = up.where(), workers(up)
        members = sorted((w["job"], w["index"]) for w in book.values() if w["state"] == "member")
        hosts = [book.get(a, {}) for uid, a in where.items() if uid.startswith("embedding--")]
        return (
            members == [(P0_JOB, 0), (P2_JOB, 0), (P2_JOB, 1)]
            and len(hosts) == 3
            and all(w.get("job") == P2_JOB for w in hosts)
        )

    reconcile_until(up, lend, lent)
    borrowed = next(a for a, w in workers(up).items() if (w["job"], w["index"]) == (P2_JOB, 1))
    node = workers(up)[borrowed]["node"]
    # one chat instance more fits P0's worker, the third needs a worker of its own
    platform = platform_file(up.tmp / "reclaim.yaml", up.port, chat=3, embedding=3)

    def placed() -> bool:
        where, book = up.where(), workers(up)
        chats = [book.get(a, {}) for uid, a in where.items() if uid.startswith("chat--")]
        return (
            len(chats) == 3
            and all(w.get("job") == P0_JOB for w in chats)
            and any(w["node"] == node for w in chats)
        )

    with Embeddings(f"http://127.0.0.1:{up.port}") as embeddings:
        reconcile_until(up, platform, placed, passes=15)
    assert embeddings.failed() == [], embeddings.failed()[:5]
    log = (up.tmp / "up.log").read_text()
    assert f"evicting worker {borrowed}" in log, log[-3000:]
    assert "reclaimed for P0: P2 holds 4 > deserved 2 on local" in log
    assert borrowed not in workers(up)
    new = next(a for a, w in workers(up).items() if (w["job"], w["node"]) == (P0_JOB, node))
    assert tier_of_worker(new) == "P0"
