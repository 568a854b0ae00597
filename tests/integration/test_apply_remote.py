"""`xpool apply` against a running (remote-style) Xinference: registers the models, launches
`instances.min` instances, and a second apply launches nothing. Real Xinference, the CLI as
a subprocess; Xinference is started separately, as an operator's supervisor would be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.integration.conftest import QUICKSTART
from xpool.local.runtime import EmbeddedXinference


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    xinf = EmbeddedXinference(tmp_path_factory.mktemp("supervisor"))
    endpoint = xinf.start(lambda _: None)
    yield endpoint
    xinf.stop()


def _apply(platform: Path, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(state), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "xpool.cli", "apply", str(platform), "-o", "json", *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=900,
        check=False,
    )


def test_apply_launches_min_instances_once_and_they_answer(supervisor, tmp_path):
    platform = tmp_path / "platform.yaml"
    platform.write_text(
        QUICKSTART.read_text().replace("endpoint: embedded", f"endpoint: {supervisor}")
    )
    first = _apply(platform, tmp_path / "state")
    assert first.returncode == 0, first.stderr
    actions = {i["uid"]: i["action"] for i in json.loads(first.stdout)["instances"]}
    assert actions == {"chat--1--1": "launched", "embedding--1--1": "launched"}

    second = _apply(platform, tmp_path / "state")
    assert second.returncode == 0, second.stderr
    actions = {i["uid"]: i["action"] for i in json.loads(second.stdout)["instances"]}
    assert actions == {"chat--1--1": "unchanged", "embedding--1--1": "unchanged"}

    running = httpx.get(f"{supervisor}/v1/models", timeout=30).json()["data"]
    assert sorted(m["id"] for m in running) == ["chat--1--1", "embedding--1--1"]
    vector = httpx.post(
        f"{supervisor}/v1/embeddings",
        json={"model": "embedding--1--1", "input": "pooled serving"},
        timeout=60,
    ).json()["data"][0]["embedding"]
    assert len(vector) == 384


def test_dry_run_server_reads_but_launches_nothing(supervisor, tmp_path):
    platform = tmp_path / "platform.yaml"
    text = QUICKSTART.read_text().replace("endpoint: embedded", f"endpoint: {supervisor}")
    platform.write_text(text.replace("name: quickstart", "name: quickstart-dry", 1))
    before = httpx.get(f"{supervisor}/v1/models", timeout=30).json()["data"]
    result = _apply(platform, tmp_path / "state", "--dry-run=server")
    assert result.returncode == 0, result.stderr
    assert "would be" in result.stderr
    after = httpx.get(f"{supervisor}/v1/models", timeout=30).json()["data"]
    assert after == before
