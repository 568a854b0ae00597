"""`--log-format json` on the long-running commands, as subprocesses against the contract API
server (a remote Xinference nothing listens on, so no platform has to run): every stderr line
is one JSON object with ts, level, logger and event; `text` prints the bare messages as
before; the Xinference API key and the gateway's client keys, set in the environment, never
appear in any output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.contract.apiserver import ContractApiServer
from tests.contract.conftest import kube_api, kubeconfig  # noqa: F401
from tests.gateway.test_gateway_cli_reports import free_port, lease, wait_for

SECRET = "sk-log-format-test-3f9c2e71"
KEY_ENV = "XPOOL_TEST_API_KEY"
CLIENT_KEY = "ck-log-format-test-8d41b0c5"
CLIENT_KEYS_ENV = "XPOOL_TEST_GATEWAY_KEYS"
NS = "default"
NO_PROMETHEUS = (
    "no Prometheus configured: load is unknown, so only instances.min/max and drains act"
)


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    """The quickstart on a remote Xinference that needs an API key (from KEY_ENV), its gateway
    requiring client keys (from CLIENT_KEYS_ENV)."""
    text = (EXAMPLES / "quickstart.yaml").read_text(encoding="utf-8")
    listen = "    listen: 127.0.0.1:8000\n"
    assert "    endpoint: embedded\n" in text and listen in text
    path = tmp_path / "platform.yaml"
    path.write_text(
        text.replace(
            "    endpoint: embedded\n",
            f"    endpoint: http://127.0.0.1:1\n    apiKeyEnv: {KEY_ENV}\n",
        ).replace(listen, f"{listen}    apiKeysEnv: {CLIENT_KEYS_ENV}\n")
    )
    return path


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "xpool.cli", *args]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "POD_NAME")}
    env.update(
        {
            KEY_ENV: SECRET,
            CLIENT_KEYS_ENV: f"other-key-0123456789,{CLIENT_KEY}",
            "PYTHONPATH": str(ROOT / "toolkit"),
            "XPOOL_KUBE_RETRY_ATTEMPTS": "2",
            "XPOOL_KUBE_RETRY_BASE_SECONDS": "0.05",
        }
    )
    return env


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line as an object with the stable keys (fails on any other line)."""
    lines = []
    for line in stderr.splitlines():
        data = json.loads(line)
        assert isinstance(data, dict), line
        assert {"ts", "level", "logger", "event"} <= data.keys(), line
        assert data["logger"].startswith("xpool."), line
        lines.append(data)
    return lines


def kube_flags(config: Path) -> tuple[str, ...]:
    return ("--kubeconfig", str(config), "--context", "contract", "-n", NS)


def test_a_dry_run_pass_logs_json_lines_and_text_as_before(
    platform: Path,
    kubeconfig: Path,  # noqa: F811 (the imported fixture)
) -> None:
    runs = {
        fmt: subprocess.run(
            command(
                "reconcile",
                str(platform),
                "--once",
                "--dry-run",
                "-o",
                "json",
                "--log-format",
                fmt,
                *kube_flags(kubeconfig),
            ),
            cwd=ROOT,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for fmt in ("json", "text")
    }
    for run in runs.values():
        assert run.returncode == 0, run.stderr
        assert "cannot reach Xinference" in json.loads(run.stdout)["errors"][0]
        assert SECRET not in run.stdout + run.stderr
    (line,) = json_lines(runs["json"].stderr)
    assert (line["level"], line["logger"], line["event"]) == (
        "warning",
        "xpool.actions.reconcile",
        NO_PROMETHEUS,
    )
    assert runs["text"].stderr == NO_PROMETHEUS + "\n"


def test_errors_are_json_lines_too(
    platform: Path,
    kubeconfig: Path,  # noqa: F811
) -> None:
    """An input error under --log-format json is a JSON line at level error (exit 2), so a log
    pipeline does not drop the one line that says why the pod failed; text keeps `error: `."""
    text = platform.read_text(encoding="utf-8")
    platform.write_text(text.replace("apiVersion: xpool.io/v1alpha1", "apiVersion: xpool.io/v9"))
    runs = {
        fmt: subprocess.run(
            command("reconcile", str(platform), "--log-format", fmt, *kube_flags(kubeconfig)),
            cwd=ROOT,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for fmt in ("json", "text")
    }
    assert {fmt: run.returncode for fmt, run in runs.items()} == {"json": 2, "text": 2}
    (line,) = json_lines(runs["json"].stderr)
    assert (line["level"], line["logger"]) == ("error", "xpool.cli")
    assert line["event"].startswith(f"{platform}:") and "apiVersion" in line["event"]
    assert runs["text"].stderr == f"error: {line['event']}\n"


class Lines:
    """A subprocess's stderr read line by line in the background."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stderr is not None
        stream = proc.stderr
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def text(self) -> str:
        self._thread.join(30)
        return "".join(self.lines)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """The processes a test spawns, killed at teardown if still running."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def spawn(procs: list[subprocess.Popen[str]], *args: str) -> tuple[subprocess.Popen[str], Lines]:
    proc = subprocess.Popen(
        command(*args),
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs.append(proc)
    return proc, Lines(proc)


def stop(proc: subprocess.Popen[str]) -> int:
    """SIGTERM, as Kubernetes stops a pod; the exit code (nothing may be printed on stdout)."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(30)
    assert proc.stdout is not None and proc.stdout.read() == ""
    return code


def test_the_reconciler_loop_logs_json_lines(
    platform: Path,
    kubeconfig: Path,  # noqa: F811
    started: list[subprocess.Popen[str]],
    tmp_path: Path,
) -> None:
    proc, lines = spawn(started, "reconcile", str(platform), "--loop", "--interval", "1s",
                        "--listen", "127.0.0.1:0", "--audit-log", str(tmp_path / "audit.jsonl"),
                        "--log-format", "json", *kube_flags(kubeconfig))  # fmt: skip
    wait_for("a failed pass", lambda: any("pass error" in line for line in lines.lines), 60)
    assert stop(proc) == 0, lines.text()
    logged = json_lines(lines.text())
    assert SECRET not in lines.text()
    by_event = {line["event"]: line for line in logged}
    serving = next(line for line in logged if line["event"].startswith("reconciler serving"))
    assert serving["url"].startswith("http://127.0.0.1:") and serving["interval_seconds"] == 1
    leading = by_event["leading: acting every pass"]
    assert leading["logger"] == "xpool.reconcile.leader" and leading["identity"]
    failed = next(line for line in logged if line["event"].startswith("pass error"))
    assert failed["level"] == "warning" and "cannot reach Xinference" in failed["event"]
    assert logged[-1]["event"] == "reconciler stopped"


def test_the_gateway_logs_json_lines(
    kube_api: ContractApiServer,  # noqa: F811
    platform: Path,
    kubeconfig: Path,  # noqa: F811
    started: list[subprocess.Popen[str]],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc, lines = spawn(started, "gateway", str(platform), "--replica", "r1", "--interval", "0.5",
                        "--listen", url.removeprefix("http://"), "--log-format", "json",
                        *kube_flags(kubeconfig))  # fmt: skip
    wait_for("the gateway's start line", lambda: any("gateway on" in x for x in lines.lines))
    assert lease(kube_api, "xpool-gateway-r1") is not None
    # the client keys came from the environment: one of them opens /v1/*, nothing else does
    assert httpx.get(f"{url}/v1/models").status_code == 401
    wrong = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {SECRET}"})
    assert wrong.status_code == 401
    models = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {CLIENT_KEY}"})
    assert models.status_code == 200 and models.json()["data"] == []
    assert stop(proc) == 0, lines.text()
    logged = json_lines(lines.text())
    assert SECRET not in lines.text() and CLIENT_KEY not in lines.text()
    no_routes = next(line for line in logged if "no routes yet" in line["event"])
    assert no_routes["logger"] == "xpool.gateway.source"
    assert no_routes["configmap"] == f"{NS}/xpool-routes"
    start = next(line for line in logged if line["event"].startswith("gateway on"))
    assert start["lease"] == f"{NS}/xpool-gateway-r1"
    assert logged[-1]["event"] == "stopped"
