"""Zero-loss scaling as a user runs it: `xpool up` (subprocess, real embedded Xinference) and
`xpool scale` moving `chat` 3 -> 1 -> 3 -> 1 under steady load (chat streams and embeddings)
through the gateway: no failed request, every stream complete. The full-size run is
`python bench/gateway_scale.py` (DESIGN.md fact 1: Xinference alone loses requests here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT
from tests.integration.conftest import free_port, quickstart_copy
from xpool.gateway.loadgen import Load, chat_stream_request, embedding_request, running_up


def xpool(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xpool.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


def test_scale_3_1_3_1_under_load_loses_no_request(tmp_path: Path):
    port = free_port()
    platform = quickstart_copy(tmp_path, port)
    platform.write_text(
        platform.read_text().replace("instances: {min: 1, max: 2}", "instances: {min: 1, max: 3}")
    )
    state = tmp_path / "state"
    with running_up(platform, state, stderr=subprocess.PIPE, cwd=ROOT) as up:
        token_file = Path(json.loads((state / "up.json").read_text())["adminTokenFile"])
        assert token_file.stat().st_mode & 0o777 == 0o600

        refused = xpool(
            "scale", str(platform), "chat", "--instances", "4", "--state-dir", str(state)
        )
        assert refused.returncode == 2 and "outside min..max (1..3)" in refused.stderr

        assert (
            xpool(
                "scale", str(platform), "chat", "--instances", "3", "--state-dir", str(state)
            ).returncode
            == 0
        )
        gateway = f"http://127.0.0.1:{port}"
        load = Load(
            gateway,
            [chat_stream_request("chat"), embedding_request("embedding")],
            total=10**9,
            concurrency=4,
        ).start()
        steps = []
        for n in (1, 3, 1):
            step = xpool(
                "scale",
                str(platform),
                "chat",
                "--instances",
                str(n),
                "--state-dir",
                str(state),
                "-o",
                "json",
            )
            assert step.returncode == 0, step.stderr[-2000:]
            steps.append(json.loads(step.stdout))
        load.stop()
        result = load.join(120)
        print(result.line())
        assert result.failed == 0 and result.incomplete_streams == 0, result.line()
        # load ran through every step (a floor, not a speed: the machine may be shared)
        assert result.total >= 60 and result.streams >= 30, result.line()
        assert [len(s["terminated"]) for s in steps] == [2, 0, 2]
        assert [len(s["launched"]) for s in steps] == [0, 2, 0]
        assert all(s["drainTimeouts"] == [] for s in steps)
        status = xpool("status", str(platform), "--state-dir", str(state), "-o", "json")
        assert status.returncode == 0, status.stderr
        chat = next(m for m in json.loads(status.stdout)["models"] if m["model"] == "chat")
        assert (chat["ready"], chat["draining"]) == (1, 0)
        assert [(i["uid"], i["inflight"]) for i in chat["instances"]] == [("chat--1--1", 0)]
        models = httpx.get(f"{gateway}/v1/models").json()["data"]
        assert {m["id"]: m["instances"] for m in models} == {"chat": 1, "embedding": 1}
    assert up.returncode == 0, up.stderr.read()[-3000:]
    assert not token_file.exists()
