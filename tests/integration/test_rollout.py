"""Canary releases end to end, every part real: `xpool up` (embedded Xinference on CPU, the
gateway and its Prometheus), `xpool reconcile --loop` as a subprocess, `xpool rollout` as a
subprocess, and clients streaming chat completions through the gateway the whole time.

1. Version 2 rolls out 50 -> 100 % with no failed request and no incomplete stream; the
   reconciler is killed (SIGKILL) mid-rollout and a new one resumes the step it was in; each
   step passed the gate's tests (their statistics on record).
2. Version 3 fails every request (its chat template raises): the gate rolls it back within
   its first step, the gateway having retried each failed canary attempt on the stable
   version, so no P0 request failed.
3. Version 4's weights file is corrupt: its launch fails, and it is rolled back before it
   got any traffic.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT
from tests.integration.conftest import free_port
from tests.integration.test_reconcile import (
    admin_instances,
    audit,
    reconciling,
    wait_for,
    xpool,
)
from xpool.gateway.loadgen import Load, chat_stream_request, running_up
from xpool.local.models import write_tiny_qwen2

VERSION = """\
        - {{version: "{v}", source: "local://tiny-qwen2-chat", weightPrecision: fp32,
           kvPrecision: fp32, engines: {{cpu: transformers}}{extra}}}
"""
BROKEN = ", chatTemplate: \"{{{{ raise_exception('version 3 is broken') }}}}\""


def corrupt_copy(directory: Path) -> Path:
    """The tiny chat model with its weights file cut in half (no checksum declared, so only
    loading it finds out)."""
    write_tiny_qwen2(directory)
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return directory


def platform_file(tmp: Path, port: int) -> Path:
    corrupt = corrupt_copy(tmp / "chat-4")
    versions = (
        VERSION.format(v="1", extra="")
        + VERSION.format(v="2", extra=', note: "same weights, a new release"')
        + VERSION.format(v="3", extra=BROKEN)
        + VERSION.format(v="4", extra="").replace("local://tiny-qwen2-chat", corrupt.as_uri())
    )
    text = f"""\
apiVersion: xpool.io/v1alpha1
kind: Platform
metadata: {{name: rollout-test}}
spec:
  xinference: {{endpoint: embedded}}
  gateway: {{listen: "127.0.0.1:{port}"}}
  pools:
    - {{name: local, vendor: cpu, accelerator: cpu, nodes: 1, acceleratorsPerNode: 8}}
  autoscaling:
    scaleDown: {{stabilization: 600s}}
    drainTimeout: 60s
  models:
    - name: chat
      type: llm
      tier: P0
      architecture: tiny-qwen2-chat
      versions:
{versions}      context: {{batch: 4, seqLen: 512, outputTokens: 8}}
      demand: {{peakQps: 20}}
      perInstanceQps: 50
      instances: {{min: 1, max: 2}}
      rollout:
        to: "2"
        steps: [50, 100]
        interval: 25s
        gate: {{minRequests: 20}}
"""
    path = tmp / "platform.yaml"
    path.write_text(text)
    return path


def rollout_state(state: Path) -> dict[str, Any]:
    path = state / "rollouts.json"
    return json.loads(path.read_text())["rollouts"]["chat"] if path.exists() else {}


def versions_running(state: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in admin_instances(state):
        if i["model"] == "chat" and i["state"] in ("ready", "loading", "draining"):
            out[i["version"]] = out.get(i["version"], 0) + 1
    return out


def chat_request(i: int) -> tuple[str, dict[str, Any], bool]:
    body = {"model": "chat", "messages": [{"role": "user", "content": f"hi {i}"}]}
    return "/v1/chat/completions", {**body, "max_tokens": 4}, False


def test_rollout_resumes_after_a_kill_and_a_broken_canary_rolls_back(tmp_path: Path):
    port = free_port()
    platform = platform_file(tmp_path, port)
    state = tmp_path / "state"
    gateway = f"http://127.0.0.1:{port}"
    with running_up(platform, state, stderr=subprocess.PIPE, cwd=ROOT):
        load = Load(
            gateway,
            [chat_stream_request("chat", 4), chat_request],
            total=10**9,
            concurrency=4,
        ).start()
        # 1. the file declares the rollout of version 2; kill the reconciler at the 100 % step
        with reconciling(platform, state, None, "reconcile-1.log") as first:
            wait_for(lambda: rollout_state(state).get("step") == 1, 480, "the 100 % step", first)
            first.kill()
            first.wait(10)
        at_kill = rollout_state(state)
        assert at_kill["phase"] == "shifting" and at_kill["step"] == 1
        time.sleep(4)  # the reconciler is gone; traffic keeps flowing through the gateway
        with reconciling(platform, state, None, "reconcile-2.log") as second:
            wait_for(
                lambda: rollout_state(state).get("phase") == "completed",
                180,
                "the rollout to complete",
                second,
            )
            wait_for(
                lambda: set(versions_running(state)) == {"2"},
                180,
                "version 1 drained and terminated",
                second,
            )
            done = rollout_state(state)
            # 2. version 3 fails every request: rolled back within its first step
            started = xpool(
                "rollout", "start", str(platform), "chat", "--to", "3", "--steps", "50,100",
                "--interval", "60s", "--state-dir", str(state), "-o", "json",
            )  # fmt: skip
            assert started.returncode == 0, started.stderr
            wait_for(
                lambda: rollout_state(state).get("phase") == "rolled-back",
                480,
                "the broken canary rolled back",
                second,
            )
            broken = rollout_state(state)
            wait_for(
                lambda: set(versions_running(state)) == {"2"}, 120, "version 3 drained", second
            )
            status = xpool("rollout", "status", str(platform), "--state-dir", str(state))
            assert status.returncode == 0 and "rolled-back" in status.stdout, status.stderr
            # 3. version 4's weights file is corrupt: its launch fails and it is rolled back
            started = xpool(
                "rollout", "start", str(platform), "chat", "--to", "4", "--state-dir", str(state),
            )  # fmt: skip
            assert started.returncode == 0, started.stderr
            wait_for(
                lambda: (
                    rollout_state(state).get("canary") == "4"
                    and rollout_state(state).get("phase") == "rolled-back"
                ),
                480,
                "the unloadable canary rolled back",
                second,
            )
            corrupt = rollout_state(state)
        load.stop()
        result = load.join(120)
        metrics = httpx.get(f"{gateway}/metrics", timeout=10).text
    assert result.failed == 0 and result.incomplete_streams == 0, result.line()
    assert result.total >= 50, result.line()
    # one rollout of 2, resumed at the step it was killed in (no second "started", no 5 % again)
    events = [(e["event"], e["weight"]) for e in done["history"]]
    assert events[0] == ("started", 0.0) and events.count(("started", 0.0)) == 1
    steps = [w for e, w in events if e == "step"]
    assert steps == [50.0, 100.0], events
    assert events[-1] == ("completed", 100.0)
    completed_at = done["history"][-1]["time"]
    assert completed_at - done["history"][-2]["time"] >= 25  # the 100 % step ran its interval
    # every step passed on the gate's tests, with their statistics on record; the 100 % step
    # (no stable traffic alongside) compares errors with the baseline, not latency
    judged = [
        e for e in done["history"] if e["event"] in ("step", "completed") and e["weight"] > 50
    ]
    tests = [[c["test"] for c in e["signals"]["gate"]["checks"]] for e in judged]
    assert all(e["signals"]["gate"]["outcome"] == "pass" for e in judged), judged
    assert tests[0] == ["exact-binomial", "mann-whitney-u"] and tests[-1] == [
        "exact-binomial",
        "none",
    ]
    # the broken canary: rolled back in step 1 (50 %), naming the error rate it was judged on
    last = broken["history"][-1]
    assert last["event"] == "rolled-back" and "error rate" in last["reason"], last
    assert [e["weight"] for e in broken["history"] if e["event"] == "step"] == [50.0]
    assert last["time"] - broken["history"][-2]["time"] < 60  # within the step's interval
    # the corrupt canary never served: rolled back at weight 0, naming the failed launch
    assert [e["event"] for e in corrupt["history"]][-1] == "rolled-back"
    assert "failed to launch" in corrupt["reason"] and corrupt["step"] == -1, corrupt["reason"]
    # every transition was audited
    actions = [r["action"] for r in audit(state)]
    assert actions.count("rollout-completed") == 1 and actions.count("rollout-rolled-back") == 2
    # the gateway saw the canary fail (its upstream attempts) while no client did
    assert canary_failures(metrics, "3") >= 5
    assert canary_failures(metrics, "2") == 0


def canary_failures(metrics: str, version: str) -> float:
    """Failed upstream attempts of `version` in the gateway's /metrics text."""
    total = 0.0
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "xpool_gateway_upstream_responses_total"
                and labels.get("version") == version
                and not labels.get("code", "").startswith(("2", "4"))
            ):
                total += sample.value
    return total
