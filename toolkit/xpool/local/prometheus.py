"""A local Prometheus (the Debian `prometheus` binary) on a free loopback port.

What it scrapes is driven by file-based service discovery: one scrape config globs
`targets/*.json` in the work directory and each job is one JSON file whose target labels set
`job` (Prometheus keeps a `job` label given by discovery). So `set_targets` adds, changes or
empties a job without a restart or reload: Prometheus watches the directory (its discovery
manager forwards changes at most every 5 s). Its TSDB, log and config live in the work
directory. Stopping sends SIGTERM to its own pid, waits, then SIGKILLs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from xpool.adapters.prometheus import PrometheusClient
from xpool.errors import InputError, RemoteError
from xpool.local.runtime import free_port

HOST = "127.0.0.1"
CONFIG_FILE = "prometheus.yml"
LOG_FILE = "prometheus.log"
TARGETS_DIR = "targets"
JOB_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
PORT_ATTEMPTS = 3  # another process may take the port between our probe and Prometheus' bind


def _duration(seconds: float) -> str:
    """Prometheus' duration syntax, in milliseconds so that fractions survive."""
    return f"{max(1, round(seconds * 1000))}ms"


class LocalPrometheus:
    """Start, feed targets to, and stop one Prometheus under `work_dir`."""

    def __init__(
        self,
        work_dir: Path,
        *,
        scrape_interval: float = 1.0,
        binary: str = "prometheus",
        start_timeout: float = 30.0,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.scrape_interval = scrape_interval
        self.binary = binary
        self.start_timeout = start_timeout
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("LocalPrometheus.url is known only after start()")
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_file(self) -> Path:
        return self.work_dir / LOG_FILE

    @property
    def config_file(self) -> Path:
        return self.work_dir / CONFIG_FILE

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- targets ----------------------------------------------------------------------------

    def set_targets(
        self, job: str, targets: list[str], labels: dict[str, str] | None = None
    ) -> None:
        """Scrape `targets` ("host:port", /metrics over HTTP) as `job`, with extra target
        `labels`; an empty list stops scraping the job. Takes effect while running."""
        if not JOB_PATTERN.match(job):
            raise InputError(
                f"job {job!r}: use letters, digits, '_', '.' or '-' (it names a targets file)"
            )
        group_labels = {**(labels or {}), "job": job}
        groups = [{"targets": list(targets), "labels": group_labels}] if targets else []
        directory = self.work_dir / TARGETS_DIR
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{job}.json"
        staging = path.with_suffix(".json.tmp")  # outside the *.json glob until complete
        staging.write_text(json.dumps(groups, indent=2) + "\n")
        os.replace(staging, path)

    # -- process ----------------------------------------------------------------------------

    def _write_config(self) -> None:
        interval = _duration(self.scrape_interval)
        glob = str((self.work_dir / TARGETS_DIR).resolve() / "*.json")
        config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval},
            "scrape_configs": [
                {
                    "job_name": "xpool-local",  # replaced by each targets file's `job` label
                    "file_sd_configs": [{"files": [glob], "refresh_interval": interval}],
                }
            ],
        }
        # JSON is YAML: no YAML writer needed for a file Prometheus only reads
        self.config_file.write_text(json.dumps(config, indent=2) + "\n")

    def start(self) -> LocalPrometheus:
        """Start Prometheus and wait until it is ready; returns self."""
        if self.process is not None and self.process.poll() is None:
            return self
        executable = shutil.which(self.binary)
        if executable is None:
            raise InputError(
                "prometheus is not installed: apt-get install -y prometheus (Debian) "
                "or pass --prometheus URL"
            )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        (self.work_dir / TARGETS_DIR).mkdir(exist_ok=True)
        self._write_config()
        attempt = 1
        while not self._launch(executable, may_retry=attempt < PORT_ATTEMPTS):
            attempt += 1
        return self

    def _launch(self, executable: str, *, may_retry: bool) -> bool:
        """Spawn on a fresh free port and wait until ready. False when it lost the port race
        and `may_retry`; RemoteError on any other failure, carrying the end of the log."""
        self.port = free_port(HOST)
        cmd = [
            executable,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.work_dir / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
            "--storage.tsdb.retention.time=2h",
        ]
        with open(self.log_file, "ab") as log:
            log.write(f"--- starting {' '.join(cmd)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
            )
        deadline = time.monotonic() + self.start_timeout
        with PrometheusClient(self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    code = self.process.returncode
                    self.process = None
                    tail = self._log_tail()
                    if "address already in use" in tail and may_retry:
                        return False
                    raise RemoteError(
                        f"prometheus exited with code {code} while starting; "
                        f"see {self.log_file}:\n{tail}"
                    )
                if client.ready():
                    return True
                time.sleep(0.1)
        self.stop()
        raise RemoteError(
            f"prometheus did not become ready on {self.url} within {self.start_timeout:.0f} s; "
            f"see {self.log_file}:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:]) if text else "(empty log)"

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM our Prometheus, wait up to `grace` seconds, then SIGKILL it."""
        proc = self.process
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)
        self.process = None
