"""A local Xinference cluster: one supervisor and real worker processes, laid out as Kubernetes
would run the tiers' worker groups, so placement runs against real workers on one machine.

Each worker of a tier's worker group on a CPU pool (`capacity.packing.worker_layout`: the
rendered worker Jobs' sizes packed onto the pool's nodes) is one `xinference-worker` process.
When the tiers' shares are whole nodes, as in examples/multi-worker.yaml, that is one worker
per node; a node the tiers share runs one worker per tier on it, as it would run one worker
pod of each tier's Job. Xinference knows a worker only by its address; which tier, pool and
node it stands for (what the worker pod's labels say on Kubernetes) is xpool's bookkeeping,
`workers.json` in the state directory, and each worker's environment (`XPOOL_TIER`,
`XPOOL_POOL`, `XPOOL_NODE`, `XPOOL_ACCELERATORS`). On CPU the accelerators are declared,
not devices: Xinference's CPU worker sees no GPU and refuses any `gpu_idx`.

Every process leads its own process group (a process cannot join a group in another
session), and the pid file lists them all, so stopping, killing and the stale-state check
treat the cluster as one, like the single-process runtime it extends.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from xpool.capacity.packing import worker_layout
from xpool.config.models import Platform
from xpool.errors import InputError, RemoteError
from xpool.local.runtime import EmbeddedXinference, free_port, read_json
from xpool.logs import get_logger
from xpool.policy.state import WorkerObs

WORKERS_FILE = "workers.json"
log = get_logger(__name__)


@dataclass(frozen=True)
class LocalWorker:
    """One worker process and what it stands for."""

    address: str  # host:port, Xinference's name for the worker (and what `worker_ip` takes)
    pool: str
    tier: str
    node: int
    accelerators: int
    pid: int = 0


def planned_workers(platform: Platform) -> list[LocalWorker]:
    """The workers of every CPU pool's tiers, without addresses yet (InputError when a
    pool's tiers cannot be laid out on its nodes)."""
    out = []
    for pool in platform.spec.pools:
        if pool.vendor != "cpu":
            continue
        try:
            slots = worker_layout(platform.spec.tiers, pool.nodes, pool.accelerators_per_node)
        except ValueError as exc:
            raise InputError(f"pool {pool.name}: {exc}") from None
        out += [LocalWorker("", pool.name, s.tier, s.node, s.accelerators) for s in slots]
    return out


def gpu_idx(platform: Platform, pool: str, devices: tuple[int, ...]) -> list[int] | None:
    """The `gpu_idx` of a launch on a worker of `pool`: its devices, but none on a CPU pool,
    whose Xinference worker sees no GPU and fails any launch naming one (core/worker.py,
    allocate_devices_with_gpu_idx: "can only see these GPUs: []")."""
    vendor = next((p.vendor for p in platform.spec.pools if p.name == pool), "cpu")
    return list(devices) if devices and vendor != "cpu" else None


def worker_obs(bookkeeping: list[LocalWorker], listed: Iterable[str]) -> list[WorkerObs]:
    """The workers the supervisor lists, with what the bookkeeping says they stand for; one
    that is gone (or not ours) is left out, so nothing is placed on it."""
    listed = set(listed)
    return [
        WorkerObs(w.address, w.pool, w.tier, str(w.node), w.accelerators)
        for w in bookkeeping
        if w.address in listed
    ]


def read_workers(state_dir: Path, endpoint: str) -> list[LocalWorker]:
    """The workers the multi-worker `xpool up` serving `endpoint` started; [] when it runs one
    process (a file an earlier run left names another endpoint)."""
    data = read_json(state_dir / WORKERS_FILE) or {}
    if data.get("endpoint") != endpoint:
        return []
    try:
        return [LocalWorker(**w) for w in data.get("workers", [])]
    except TypeError:
        return []


class LocalCluster(EmbeddedXinference):
    """The supervisor alone serves the REST API; `workers` join it once it answers."""

    ROLE = "Xinference supervisor"

    def __init__(
        self, state_dir: Path, workers: list[LocalWorker], *, start_timeout: float = 180.0
    ) -> None:
        super().__init__(state_dir, start_timeout=start_timeout)
        self.planned = workers
        self.workers: list[LocalWorker] = []
        self._procs: list[tuple[LocalWorker, subprocess.Popen[bytes]]] = []
        self._lost: set[str] = set()  # workers that exited (evicted), reported once each

    @property
    def workers_file(self) -> Path:
        return self.state_dir / WORKERS_FILE

    def _command(self) -> list[str]:
        return [
            *self._python("supervisor"),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--supervisor-port",
            str(free_port(self.host)),
            "--log-level",
            "INFO",
        ]

    def start(self, progress: Callable[[str], None]) -> str:
        endpoint = super().start(progress)
        for planned in self.planned:
            self._start_worker(planned, progress)
        self._wait_registered()
        self.workers_file.write_text(
            json.dumps({"endpoint": endpoint, "workers": [asdict(w) for w in self.workers]}) + "\n"
        )
        return endpoint

    def _start_worker(self, planned: LocalWorker, progress: Callable[[str], None]) -> None:
        port = free_port(self.host)
        address = f"{self.host}:{port}"
        log = self.state_dir / f"worker-{planned.pool}-{planned.tier}-{planned.node}.log"
        cmd = [
            *self._python("worker"),
            "--endpoint",
            self.endpoint,
            "--host",
            self.host,
            "--worker-port",
            str(port),
            "--metrics-exporter-host",
            self.host,
            "--metrics-exporter-port",
            str(free_port(self.host)),
            "--log-level",
            "INFO",
        ]
        env = {
            "XPOOL_TIER": planned.tier,
            "XPOOL_POOL": planned.pool,
            "XPOOL_NODE": str(planned.node),
            "XPOOL_ACCELERATORS": str(planned.accelerators),
        }
        proc = self._spawn(cmd, log, env)
        worker = LocalWorker(
            address, planned.pool, planned.tier, planned.node, planned.accelerators, proc.pid
        )
        progress(
            f"starting worker {address} (tier {worker.tier}, pool {worker.pool}, node "
            f"{worker.node}, {worker.accelerators} accelerator(s); log: {log})"
        )
        self.workers.append(worker)
        self._procs.append((worker, proc))

    def _wait_registered(self) -> None:
        """Until the supervisor lists every worker; a worker that exits stops the wait."""
        want = {w.address for w in self.workers}
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(base_url=self.endpoint, timeout=5) as http:
            while time.monotonic() < deadline:
                if (why := self.exited()) is not None:
                    self.stop()
                    raise RemoteError(why)
                try:
                    listed = {str(w.get("work-ip")) for w in http.get("/v1/workers").json()}
                except (httpx.HTTPError, ValueError, AttributeError):
                    listed = set()
                if want <= listed:
                    return
                time.sleep(0.5)
        self.stop()
        raise RemoteError(
            f"Xinference workers {', '.join(sorted(want))} did not register with the "
            f"supervisor within {self.start_timeout:.0f} s; see the worker logs in {self.state_dir}"
        )

    def exited(self) -> str | None:
        why = super().exited()
        if why is not None:
            return why
        # A worker's exit does not stop `xpool up`: on Kubernetes a worker pod is evicted and
        # replaced while the platform serves on (its instances drained first: `xpool worker
        # drain`), so here the other workers serve on and the supervisor stops listing it.
        for worker, proc in self._procs:
            code = proc.poll()
            if code is not None and worker.address not in self._lost:
                self._lost.add(worker.address)
                log.warning(
                    f"Xinference worker {worker.address} (tier {worker.tier}, node "
                    f"{worker.node}) exited (code {code}); the other workers serve on; see "
                    f"its log in {self.state_dir}",
                    extra={"worker": worker.address},
                )
        return None

    def stop(self, grace: float = 20.0) -> None:
        super().stop(grace)
        self.workers_file.unlink(missing_ok=True)
        self._procs = []
