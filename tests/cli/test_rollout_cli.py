"""`xpool rollout start|status|promote|abort` as a subprocess on a local state directory (no
Xinference needed: the commands record intent; the reconciler acts). A corrupt canary source,
unknown versions, bad steps and steps too short for the gate's minimum sample are refused with
one line, exit 2, and nothing recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_models_cli import CHECKSUMS, version, write_model_dir, write_platform
from tests.conftest import run_xpool as xpool
from xpool.local.up_state import UpState


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    model = write_model_dir(tmp_path / "emb-2")
    platform = write_platform(
        tmp_path,
        [
            version("1", "local://all-minilm-l6-v2"),
            version("2", model.as_uri(), checksums=CHECKSUMS),
        ],
    )
    return platform, tmp_path / "state", model


def test_start_status_abort_and_refusals(tmp_path: Path):
    platform, state, _ = setup(tmp_path)
    common = ("--state-dir", str(state))
    bad_steps = xpool("rollout", "start", str(platform), "embedding", "--to", "2", "--steps",
                      "50,25,100", *common)  # fmt: skip
    assert bad_steps.returncode == 2
    assert (
        bad_steps.stderr.strip() == "error: --steps: 50,25,100: steps must increase and end at 100"
    )
    unknown = xpool("rollout", "start", str(platform), "embedding", "--to", "7", *common)
    assert unknown.returncode == 2 and "has no version '7' (versions: 1, 2)" in unknown.stderr
    assert not (state / "rollouts.json").exists()  # nothing recorded by a refusal

    # at the model's peak (2 QPS) a 10 % step of 30 s gets 6 requests: the gate needs 50
    short = xpool("rollout", "start", str(platform), "embedding", "--to", "2", "--steps",
                  "10,100", "--interval", "30s", *common)  # fmt: skip
    assert short.returncode == 2 and "--steps/--interval: at peak demand (2 QPS)" in short.stderr
    assert "make interval at least 250 s or the first step at least 84%" in short.stderr
    assert not (state / "rollouts.json").exists()

    started = xpool("rollout", "start", str(platform), "embedding", "--to", "2", "--steps",
                    "50,100", "--interval", "60s", *common, "-o", "json")  # fmt: skip
    assert started.returncode == 0, started.stderr
    (r,) = json.loads(started.stdout)["rollouts"]
    assert (r["stable"], r["canary"], r["phase"], r["steps"]) == ("1", "2", "launching", [50, 100])
    assert r["gate"]["min_requests"] == 50 and r["gate"]["significance"] == 0.01
    again = xpool("rollout", "start", str(platform), "embedding", "--to", "2", *common)
    assert again.returncode == 2 and "promote or abort it first" in again.stderr
    early = xpool("rollout", "promote", str(platform), "embedding", *common)
    assert early.returncode == 2 and "is not ready yet" in early.stderr

    aborted = xpool("rollout", "abort", str(platform), "embedding", *common, "-o", "json")
    assert aborted.returncode == 0, aborted.stderr
    assert json.loads(aborted.stdout)["rollouts"][0]["phase"] == "aborted"
    assert "no local gateway is running" in aborted.stderr
    status = xpool("rollout", "status", str(platform), *common)
    assert status.returncode == 0 and "aborted" in status.stdout
    audited = [
        json.loads(line)["action"] for line in (state / "audit.jsonl").read_text().splitlines()
    ]
    assert audited == ["rollout-started", "rollout-aborted"]

    # a new start keeps the aborted one as history, shown by `xpool models show`
    assert (
        xpool("rollout", "start", str(platform), "embedding", "--to", "2", *common).returncode == 0
    )
    shown = xpool("models", "show", str(platform), "embedding", *common, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)["model"]["history"]
    assert [h["phase"] for h in history] == ["aborted", "launching"]
    assert [e["event"] for e in history[0]["events"]] == ["started", "aborted"]


def test_a_corrupt_canary_source_is_refused_before_anything_changes(tmp_path: Path):
    platform, state, model = setup(tmp_path)
    (model / "model.safetensors").write_bytes(b"truncated")
    refused = xpool("rollout", "start", str(platform), "embedding", "--to", "2",
                    "--state-dir", str(state))  # fmt: skip
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert "model 'embedding' version '2'" in line and "model.safetensors" in line, line
    assert not (state / "rollouts.json").exists()


def test_an_xpool_up_in_front_of_a_remote_xinference_keeps_rollouts_local(tmp_path: Path):
    """`xpool up` serves a remote Xinference too; its --state-dir, not a cluster, then holds
    the rollouts. Without a running `xpool up` there, the platform is a cluster's."""
    platform, state, _ = setup(tmp_path)
    remote = platform.read_text().replace('"embedded"', '"http://127.0.0.1:9"')
    platform.write_text(remote)
    start = ("rollout", "start", str(platform), "embedding", "--to", "2", "--state-dir", str(state))
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"} | {"HOME": str(tmp_path)}
    cluster = subprocess.run(
        [sys.executable, "-m", "xpool.cli", *start], capture_output=True, text=True, env=env
    )
    assert cluster.returncode == 2 and "no Kubernetes configuration" in cluster.stderr
    state.mkdir()
    token = tmp_path / "admin.token"
    token.write_text("secret\n")
    UpState(
        "rollout-cli", "http://127.0.0.1:9", "http://127.0.0.1:1", token, pid=os.getpid()
    ).write(state)
    local = xpool(*start)
    assert local.returncode == 0, local.stderr
    assert (
        json.loads((state / "rollouts.json").read_text())["rollouts"]["embedding"]["canary"] == "2"
    )
