"""The embedded Xinference: a local supervisor+worker (`xinference-local`) as a subprocess.

It binds loopback only, which is the one reason auth may be off (`XINFERENCE_AUTH_ADVANCED=
false`, DESIGN.md fact 2). Its home (`XINFERENCE_HOME`), log and pid file live in the state
directory, so two platforms never share one and a stale instance is detected and reported.
Stopping sends SIGTERM to its process group (the supervisor, the worker and the model
processes it forks), waits, then SIGKILLs what is left; the same for each process group of a
multi-worker run (local/cluster.py), all listed in the pid file.
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

    ROLE = "embedded Xinference"  # the process serving the REST API, in messages

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
        self.process: subprocess.Popen[bytes] | None = None  # the one serving the REST API
        self._groups: list[subprocess.Popen[bytes]] = []  # every process started, in order

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
        groups = [int(g) for g in info.get("groups", [pid]) if g]
        if any(pid_alive(g) or _group_alive(g) for g in groups):
            kills = " ".join(f"-{g}" for g in groups)
            raise InputError(
                f"{self.state_dir}: an embedded Xinference already runs (pid {pid}, "
                f"{info.get('endpoint')}); stop the `xpool up` that started it, or "
                f"`kill -TERM {kills}` if it was left behind, then retry"
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
        progress(f"starting Xinference on {self.endpoint} (log: {self.log_file})")
        self.process = self._spawn(self._command(), self.log_file)
        self._wait_healthy()
        return self.endpoint

    def _command(self) -> list[str]:
        """The process that serves the REST API: here supervisor and worker in one."""
        return [
            *self._python("local"),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "INFO",
        ]

    def _python(self, entry: str) -> list[str]:
        """Xinference's console script `entry` run by our interpreter (its venv)."""
        return [self.python, "-c", f"from xinference.deploy.cmdline import {entry}; {entry}()"]

    def _env(self) -> dict[str, str]:
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
        return env

    def _spawn(
        self, cmd: list[str], log_file: Path, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Each process leads its own process group (what it forks stays in it), recorded in
        the pid file, so stop(), kill() and a later stale check reach all of them."""
        env = self._env()
        env.update(extra_env or {})
        with open(log_file, "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.state_dir,
                start_new_session=True,  # its own process group: stop() signals all of it
            )
        self._groups.append(proc)
        self._write_pid_file()
        return proc

    def _write_pid_file(self) -> None:
        """The pid file names every process group still running (the first serves the API)."""
        self.pid_file.write_text(
            json.dumps(
                {
                    "pid": self._groups[0].pid,
                    "endpoint": self.endpoint,
                    "groups": [p.pid for p in self._groups],
                }
            )
            + "\n"
        )

    def exited(self) -> str | None:
        """Why this runtime no longer serves, or None while it does."""
        proc = self.process
        if proc is not None and proc.poll() is not None:
            return f"the {self.ROLE} exited (code {proc.returncode}); see {self.log_file}"
        return None

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
        """SIGTERM every process group, wait up to `grace` seconds, then SIGKILL them."""
        if not self._groups:
            return
        end_groups(self._groups, grace)
        self.pid_file.unlink(missing_ok=True)
        self.process = None
        self._groups = []

    def kill(self) -> None:
        """SIGKILL every process group at once, without waiting (giving up on a clean stop)."""
        for proc in self._groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def end_groups(procs: list[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM the process groups these processes lead, wait up to `grace` seconds for their
    leaders, then SIGKILL the groups (forked model processes may outlive a leader)."""
    for proc in procs:  # start_new_session: each group id is its leader's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # the leaders are gone; forked model processes may linger in a group a little longer
    deadline = time.monotonic() + grace
    while any(_group_alive(p.pid) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
