"""The embedded Xinference: a local supervisor+worker (`xinference-local`) as a subprocess.

It binds loopback only, which is the one reason auth may be off (`XINFERENCE_AUTH_ADVANCED=
false`, DESIGN.md fact 2). Its home (`XINFERENCE_HOME`), log and pid file live in the state
directory, so two platforms never share one and a stale instance is detected and reported.
Stopping sends SIGTERM to its process group (the supervisor, the worker and the model
processes it forks), waits, then SIGKILLs what is left.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from xpool.errors import InputError, RemoteError

PID_FILE = "xinference.pid"
LOG_FILE = "xinference.log"
UP_FILE = "up.json"  # written by `xpool up` so that `xpool status` finds the running pieces


def default_state_dir(platform: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "xpool" / platform


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its parent) is not alive
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class EmbeddedXinference:
    """Start, health-check and stop one local Xinference under `state_dir`."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        start_timeout: float = 180.0,
        python: str = sys.executable,
    ) -> None:
        if not is_loopback(host):
            raise InputError(
                f"the embedded Xinference binds loopback only (got host {host}): it runs "
                "without auth; use a remote endpoint with an API key instead"
            )
        self.state_dir = state_dir
        self.host = host
        self.port = port
        self.start_timeout = start_timeout
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / PID_FILE

    @property
    def log_file(self) -> Path:
        return self.state_dir / LOG_FILE

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def check_stale(self, progress: Callable[[str], None]) -> None:
        """Refuse to start over a live instance; clean up after a dead one."""
        info = read_json(self.pid_file)
        if info is None:
            return
        pid = int(info.get("pid", 0))
        if pid and pid_alive(pid):
            raise InputError(
                f"{self.state_dir}: an embedded Xinference already runs (pid {pid}, "
                f"{info.get('endpoint')}); stop the `xpool up` that started it, or "
                f"`kill -TERM -{pid}` if it was left behind, then retry"
            )
        progress(f"removing stale pid file of an Xinference that is gone (pid {pid})")
        self.pid_file.unlink(missing_ok=True)

    def start(self, progress: Callable[[str], None]) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.check_stale(progress)
        try:
            import xinference  # noqa: F401
        except ImportError:
            raise InputError(
                "the embedded default needs Xinference in this environment: "
                "pip install 'xpool[local]' (or set spec.xinference.endpoint to a remote one)"
            ) from None
        self.port = self.port or free_port(self.host)
        home = self.state_dir / "xinference"
        home.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(
            XINFERENCE_HOME=str(home),
            XINFERENCE_AUTH_ADVANCED="false",  # loopback only (checked in __init__)
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
        )
        cmd = [
            self.python,
            "-c",
            "from xinference.deploy.cmdline import local; local()",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "INFO",
        ]
        progress(f"starting Xinference on {self.endpoint} (log: {self.log_file})")
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.state_dir,
                start_new_session=True,  # its own process group: stop() signals all of it
            )
        self.pid_file.write_text(
            json.dumps({"pid": self.process.pid, "endpoint": self.endpoint}) + "\n"
        )
        self._wait_healthy()
        return self.endpoint

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(base_url=self.endpoint, timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self.pid_file.unlink(missing_ok=True)
                    raise RemoteError(
                        f"Xinference exited with code {self.process.returncode} while "
                        f"starting; see {self.log_file}: {self._log_tail()}"
                    )
                try:
                    if http.get("/v1/cluster/version").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
        self.stop()
        raise RemoteError(
            f"Xinference did not answer on {self.endpoint} within {self.start_timeout:.0f} s; "
            f"see {self.log_file}"
        )

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1][:300] if lines else "(empty log)"

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the process group, wait up to `grace` seconds, then SIGKILL it."""
        proc = self.process
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait(timeout=10)
        # the leader is gone; forked model processes may linger in the group a little longer
        deadline = time.monotonic() + grace
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the process group at once, without waiting (giving up on a clean stop)."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
