"""`xpool up` as a user runs it: a subprocess with a real embedded Xinference and gateway."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.integration.conftest import free_port, quickstart_copy
from xpool.gateway.loadgen import running_up
from xpool.local.runtime import pid_alive


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_smoke_answers_through_the_gateway_and_stops_clean(tmp_path: Path):
    """--smoke prints the answers on stdout; --log-format json makes progress JSON lines."""
    platform = quickstart_copy(tmp_path)
    state = tmp_path / "state"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "xpool.cli",
            "up",
            str(platform),
            "--smoke",
            "--state-dir",
            str(state),
            "--log-format",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    logged = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert all(line["logger"].startswith("xpool.") for line in logged), logged
    events = [line["event"] for line in logged]
    assert any(e.startswith("gateway listening on http://127.0.0.1:") for e in events), events
    assert events[-1] == "stopped", events
    assert re.search(r"^embedding: embedding of 'hello world' = 384 floats", proc.stdout, re.M), (
        proc.stdout
    )
    assert re.search(r"^chat: chat answer to 'Say hello\.' = .+finish_reason", proc.stdout, re.M), (
        proc.stdout
    )
    pid = int(re.search(r"stopping Xinference \(pid (\d+)\)", proc.stderr).group(1))
    assert not pid_alive(pid) and not group_alive(pid)
    assert not (state / "xinference.pid").exists() and not (state / "up.json").exists()


def test_up_serves_until_sigterm_then_stops_clean(tmp_path: Path):
    port = free_port()
    platform = quickstart_copy(tmp_path, port)
    state = tmp_path / "state"
    with running_up(platform, state, stderr=subprocess.PIPE, cwd=ROOT) as proc:
        info = json.loads((state / "up.json").read_text())
        xpid = info["xinferencePid"]
        assert pid_alive(xpid)
        gateway = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=gateway, timeout=60) as http:
            models = http.get("/v1/models").json()["data"]
            assert sorted(m["id"] for m in models) == ["chat", "embedding"]
            r = http.post("/v1/embeddings", json={"model": "embedding", "input": ["a", "b"]})
            assert r.status_code == 200 and len(r.json()["data"][1]["embedding"]) == 384
            r = http.post("/v1/embeddings", json={"model": "nope", "input": "a"})
            assert r.status_code == 404 and "nope" in r.json()["error"]["message"]
            body = {
                "model": "chat",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 8,
                "stream": True,
            }
            with http.stream("POST", "/v1/chat/completions", json=body) as stream:
                assert stream.status_code == 200
                events = [line for line in stream.iter_lines() if line.startswith("data:")]
            assert events[-1].strip() == "data: [DONE]" and len(events) > 2
        status = subprocess.run(
            [
                sys.executable,
                "-m",
                "xpool.cli",
                "status",
                str(platform),
                "--state-dir",
                str(state),
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        data = json.loads(status.stdout)
        assert {m["model"]: m["ready"] for m in data["models"]} == {"chat": 1, "embedding": 1}
        assert all(i["workers"] for m in data["models"] for i in m["instances"])
        assert {t["tier"]: t["usedAccelerators"] for t in data["tiers"]} == {
            "P0": 1,
            "P1": 1,
            "P2": 0,
        }

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, proc.stderr.read()[-3000:]
    deadline = time.monotonic() + 30
    while group_alive(xpid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not pid_alive(xpid) and not group_alive(xpid)
    assert not (state / "up.json").exists() and not (state / "xinference.pid").exists()
