"""The gateway's non-blocking instance lifecycle as the reconciler drives it:
`/-/admin/launch`, `/drain`, `/terminate` and `GET /-/admin/instances`, against a real
`xpool up` (subprocess, real embedded Xinference, real HTTP).

The platform is the quickstart plus an embedding version "2" whose source is a directory
holding a broken config.json: Xinference accepts the registration and fails to load it, a
real launch failure. Tests run in file order on one `xpool up` (module fixture)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT
from tests.integration.conftest import free_port, quickstart_copy
from xpool.gateway.loadgen import running_up

BROKEN_VERSION = """        - {version: "2", source: "file://BROKEN", weightPrecision: fp32,
           engines: {cpu: sentence_transformers}}
"""
# Greedy decoding of the seeded tiny model: about 300 chunks, seconds of streaming.
LONG_STREAM = {
    "model": "chat",
    "messages": [{"role": "user", "content": "tell a long story"}],
    "max_tokens": 1000,
    "temperature": 0,
    "stream": True,
}
SHORT_CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


@dataclass
class Up:
    admin: httpx.Client  # the gateway, with the admin token
    http: httpx.Client  # the gateway, as a client
    endpoint: str  # Xinference
    log: Path  # xpool up's stderr

    def instances(self) -> dict[str, dict[str, Any]]:
        r = self.admin.get("/-/admin/instances")
        assert r.status_code == 200, r.text
        assert abs(r.json()["now"] - time.time()) < 60
        return {i["uid"]: i for i in r.json()["instances"]}

    def wait_for(
        self, what: str, check: Callable[[dict[str, dict[str, Any]]], bool], timeout: float = 180
    ) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.instances()
            if check(rows):
                return rows
            assert time.monotonic() < deadline, f"{what} not reached in {timeout} s: {rows}"
            time.sleep(0.25)

    def xinference(self) -> dict[str, str]:
        """UID -> status, as Xinference lists its instances."""
        r = httpx.get(f"{self.endpoint}/v1/models/instances", timeout=30)
        r.raise_for_status()
        return {i["model_uid"]: i["status"] for i in r.json()}

    def xinference_uids(self) -> set[str]:
        return set(self.xinference())

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.admin.post(f"/-/admin/{path}", json=body)

    def served_by(self, n: int = 6) -> set[str]:
        seen = set()
        for _ in range(n):
            r = self.http.post("/v1/chat/completions", json=SHORT_CHAT)
            assert r.status_code == 200, r.text
            seen.add(r.headers["x-xpool-instance"])
        return seen

    def metric(self, name: str, **labels: str) -> float:
        total = 0.0
        for line in self.http.get("/metrics").text.splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp = tmp_path_factory.mktemp("lifecycle")
    platform = quickstart_copy(tmp, free_port())
    broken = tmp / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("not json")
    anchor = "engines: {cpu: sentence_transformers}}\n"
    text = platform.read_text()
    assert text.count(anchor) == 1
    platform.write_text(
        text.replace(anchor, anchor + BROKEN_VERSION.replace("BROKEN", str(broken)))
    )
    state = tmp / "state"
    log = tmp / "up.log"
    with log.open("w") as stderr, running_up(platform, state, stderr=stderr, cwd=ROOT) as proc:
        info = json.loads((state / "up.json").read_text())
        token = Path(info["adminTokenFile"]).read_text().strip()
        with (
            httpx.Client(
                base_url=info["gateway"], headers={"Authorization": f"Bearer {token}"}, timeout=60
            ) as admin,
            httpx.Client(base_url=info["gateway"], timeout=120) as http,
        ):
            yield Up(admin, http, info["endpoint"], log)
    assert proc.returncode == 0, log.read_text()[-3000:]


def test_launch_answers_at_once_then_the_instance_loads_becomes_ready_and_serves(up: Up):
    r = up.post("launch", {"model": "chat"})
    assert r.status_code == 202, r.text
    assert r.json() == {
        "model": "chat",
        "version": "1",
        "uids": ["chat--1--2"],
        "started": ["chat--1--2"],
    }
    row = up.instances()["chat--1--2"]  # a load takes seconds: the answer came before it
    assert (row["state"], row["model"], row["version"], row["tier"], row["pool"]) == (
        "loading",
        "chat",
        "1",
        "P0",
        "local",
    )
    assert row["error"] is None and row["inflight"] == 0

    again = up.post("launch", {"model": "chat", "uids": ["chat--1--2"]})
    assert again.status_code == 202 and again.json()["started"] == [], again.text

    rows = up.wait_for("chat--1--2 ready", lambda rows: rows["chat--1--2"]["state"] == "ready")
    ready = rows["chat--1--2"]
    assert ready["since"] >= row["since"] and ready["limit"] == 4 and not ready["draining"]
    assert rows["chat--1--1"]["state"] == "ready"
    assert up.post("launch", {"model": "chat", "uids": ["chat--1--2"]}).json()["started"] == []
    assert "chat--1--2" in up.served_by()
    assert sorted(u for u in up.xinference_uids() if u.startswith("chat")) == [
        "chat--1--1",
        "chat--1--2",
    ]
    assert up.metric("xpool_instances", model="chat", state="ready", pool="local") == 2
    assert up.metric("xpool_instances", model="chat", state="loading") == 0


def test_drain_lets_a_stream_finish_and_terminate_waits_for_it(up: Up):
    with up.http.stream("POST", "/v1/chat/completions", json=LONG_STREAM) as s:
        assert s.status_code == 200
        uid = s.headers["x-xpool-instance"]
        lines = s.iter_lines()
        first = next(lines)  # the stream runs

        drained = up.post("drain", {"uids": [uid]})
        repeated = up.post("drain", {"uids": [uid]})
        busy = up.post("terminate", {"uids": [uid]})
        row = up.instances()[uid]
        alive = uid in up.xinference_uids()
        elsewhere = up.served_by(2)

        rest = [line for line in lines if line.strip()]
    assert drained.status_code == 200 and drained.json() == {"draining": {uid: 1}}, drained.text
    assert repeated.json() == {"draining": {uid: 1}}
    assert busy.status_code == 200, busy.text
    assert busy.json() == {"terminated": [], "busy": {uid: 1}, "deferred": [], "interrupted": {}}
    assert (row["state"], row["inflight"], row["draining"]) == ("draining", 1, True)
    assert alive and uid not in elsewhere

    stream = [first, *rest]
    assert stream[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in stream[:-1]]
    assert len(chunks) > 50 and {c["model"] for c in chunks} == {"chat"}
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")

    up.wait_for(f"{uid} drained", lambda rows: rows[uid]["inflight"] == 0, timeout=30)
    done = up.post("terminate", {"uids": [uid]})
    assert done.status_code == 200, done.text
    assert done.json()["terminated"] == [uid] and done.json()["busy"] == {}
    assert uid not in up.instances() and uid not in up.xinference_uids()
    assert up.metric("xpool_gateway_drain_timeouts_total", model="chat") == 0


def test_refusals_name_what_is_wrong(up: Up):
    ready = [u for u, row in up.instances().items() if row["state"] == "ready"]
    chat = next(u for u in ready if u.startswith("chat--"))
    refused = up.post("terminate", {"uids": [chat]})
    assert refused.status_code == 409, refused.text
    assert "drain it first" in refused.json()["error"]["message"]
    assert up.instances()[chat]["state"] == "ready" and chat in up.xinference_uids()

    unknown = up.post("drain", {"uids": ["chat--1--99"]})
    assert unknown.status_code == 404 and "chat--1--99" in unknown.json()["error"]["message"]
    assert up.post("launch", {"model": "nope"}).status_code == 404
    assert up.post("launch", {"model": "chat", "version": "7"}).status_code == 404
    foreign = up.post("launch", {"model": "chat", "uids": ["embedding--1--4"]})
    assert foreign.status_code == 400 and "embedding--1--4" in foreign.json()["error"]["message"]
    assert up.post("terminate", {"uids": [chat], "force": "yes"}).status_code == 400
    no_token = up.http.post("/-/admin/drain", json={"uids": [chat]})
    assert no_token.status_code == 401
    assert up.instances()[chat]["state"] == "ready"


def test_failed_launch_and_drain_or_terminate_while_loading(up: Up):
    """Three loads at once: embedding version 2 fails; chat--1--3 is drained while it loads
    (so it is never routed); chat--1--5 is terminated while it loads (done when it loaded)."""
    bad = up.post("launch", {"model": "embedding", "version": "2"})
    assert bad.status_code == 202 and bad.json()["uids"] == ["embedding--2--1"], bad.text
    for uid in ("chat--1--3", "chat--1--5"):
        assert up.post("launch", {"model": "chat", "uids": [uid]}).status_code == 202
    assert up.post("drain", {"uids": ["chat--1--3", "chat--1--5"]}).json() == {
        "draining": {"chat--1--3": 0, "chat--1--5": 0}
    }
    deferred = up.post("terminate", {"uids": ["chat--1--5"]}).json()
    assert deferred == {"terminated": [], "busy": {}, "deferred": ["chat--1--5"], "interrupted": {}}
    rows = up.instances()
    assert rows["chat--1--3"]["state"] == rows["chat--1--5"]["state"] == "draining"

    rows = up.wait_for(
        "the failure, chat--1--3 loaded and chat--1--5 gone",
        lambda rows: (
            rows["embedding--2--1"]["state"] == "failed"
            and up.xinference().get("chat--1--3") == "READY"
            and "chat--1--5" not in rows
        ),
    )
    failed = rows["embedding--2--1"]
    assert "config" in failed["error"] and failed["inflight"] == 0, failed
    assert up.metric("xpool_instances", model="embedding", version="2", state="failed") == 1
    assert "chat--1--5" not in up.xinference_uids()

    # chat--1--3 is ready in Xinference: the gateway takes it in drained, never routed.
    deadline = time.monotonic() + 60
    while "chat--1--3: ready, draining" not in up.log.read_text():
        assert time.monotonic() < deadline, up.log.read_text()[-2000:]
        time.sleep(0.25)
    assert up.instances()["chat--1--3"]["state"] == "draining"
    assert "chat--1--3" not in up.served_by()
    assert up.post("terminate", {"uids": ["chat--1--3"]}).json()["terminated"] == ["chat--1--3"]

    cleaned = up.post("terminate", {"uids": ["embedding--2--1"]})
    assert cleaned.status_code == 200 and cleaned.json()["terminated"] == ["embedding--2--1"]
    rows = up.instances()
    assert not {"embedding--2--1", "chat--1--3", "chat--1--5"} & set(rows)
    listed = up.xinference()
    assert not {"chat--1--3", "chat--1--5"} & set(listed)
    # Xinference 4.1 keeps a failed launch listed as ERROR (no process; DELETE: not found).
    assert listed.get("embedding--2--1", "ERROR") == "ERROR"
    assert up.metric("xpool_instances", model="embedding", version="2", state="failed") == 0
