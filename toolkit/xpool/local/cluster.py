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

Each worker belongs to its tier's worker group (`capacity.worker_groups`: a Job task, workers
of one size) with an index, 0.. in start order, as a pod of that task would. A group scales
(`LocalCluster.scale`) as Volcano runs a Job whose `tasks[*].replicas` changed: a new worker
binds to the first of the pool's nodes with room for it; fewer replicas end the
highest-index workers, each evicted like a pod: its instances drained through the gateway,
then its process stopped (SIGINT, so that Xinference's worker unregisters from the
supervisor, then SIGTERM to its process group, SIGKILL after a grace).

When no node has room, the cluster plays Volcano's capacity plugin `reclaim`, which nothing
else plays here (`capacity.reclaim`): if the new worker keeps its tier within its deserved
share on the pool, other tiers' preemptable workers (burst Jobs' workers, any worker of a
preemptible tier) are evicted while their tier holds more than its deserved share, lowest
priority and highest index first, until a node has room; the new worker is bound to that
node and starts once the victims' processes have ended (as it does, without reclaiming, on a
node a stopping worker leaves room on: Volcano pipelines a pod onto releasing resources). An evicted worker stays a pending
member of its group, as the Job controller recreates an evicted pod as Pending: its
replicas do not drop, and it starts when room appears (the policy releases it if nothing
waits for it). Pending members have no address, so the supervisor lists them nowhere and
the policy sees them as asked for and not started. A worker that neither fits nor can
reclaim is not made a member: `scale` reports it pending and the reconciler asks again.

Every process leads its own process group (a process cannot join a group in another
session), and the pid file lists them all, workers started later included until they end,
so stopping, killing and the stale-state check treat the cluster as one, like the
single-process runtime it extends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import httpx

from xpool.capacity.borrowing import tier_pool_shares
from xpool.capacity.packing import first_fit, worker_layout
from xpool.capacity.reclaim import Holder, reclaim
from xpool.capacity.worker_groups import WorkerGroup, worker_groups
from xpool.config.models import Platform
from xpool.errors import InputError, RemoteError
from xpool.local.runtime import EmbeddedXinference, end_groups, free_port, read_json
from xpool.logs import get_logger
from xpool.policy.state import WorkerObs

WORKERS_FILE = "workers.json"
log = get_logger(__name__)


@dataclass(frozen=True)
class LocalWorker:
    """One worker process and what it stands for."""

    address: str  # host:port, Xinference's name for the worker (and what `worker_ip` takes);
    # "" while pending (not started)
    pool: str
    tier: str
    node: int  # -1 while pending and bound to no node
    accelerators: int
    pid: int = 0
    # its worker group (the tier's worker Job and task) and index there; "" in a file an
    # older `xpool up` wrote
    job: str = ""
    task: str = ""
    index: int = 0

    @classmethod
    def of(cls, data: dict[str, Any]) -> LocalWorker:
        """From its JSON (workers.json, the admin API), ignoring fields it does not have."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def cpu_groups(platform: Platform) -> list[WorkerGroup]:
    """The worker groups a multi-worker `xpool up` runs: those of the CPU pools."""
    cpu = {p.name for p in platform.spec.pools if p.vendor == "cpu"}
    return [g for g in worker_groups(platform) if g.pool in cpu]


def planned_workers(platform: Platform) -> list[LocalWorker]:
    """The workers of every CPU pool's tiers, without addresses yet: each a worker of its
    tier's main Job task of its size (the rendered replicas), indexed in start order
    (InputError when a pool's tiers cannot be laid out on its nodes)."""
    groups = {(g.pool, g.tier, g.size): g for g in cpu_groups(platform) if not g.burst}
    indexes: Counter[tuple[str, str]] = Counter()
    out = []
    for pool in platform.spec.pools:
        if pool.vendor != "cpu":
            continue
        try:
            slots = worker_layout(platform.spec.tiers, pool.nodes, pool.accelerators_per_node)
        except ValueError as exc:
            raise InputError(f"pool {pool.name}: {exc}") from None
        for slot in slots:
            group = groups[(pool.name, slot.tier, slot.accelerators)]
            key = (group.job, group.task)
            out.append(
                LocalWorker(
                    "",
                    pool.name,
                    slot.tier,
                    slot.node,
                    slot.accelerators,
                    job=group.job,
                    task=group.task,
                    index=indexes[key],
                )
            )
            indexes[key] += 1
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
        WorkerObs(w.address, w.pool, w.tier, str(w.node), w.accelerators, w.job, w.task, w.index)
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
        return [LocalWorker.of(w) for w in data.get("workers", [])]
    except (TypeError, AttributeError):
        return []


class LocalCluster(EmbeddedXinference):
    """The supervisor alone serves the REST API; the workers join it once it answers."""

    ROLE = "Xinference supervisor"

    def __init__(
        self,
        state_dir: Path,
        platform: Platform,
        *,
        start_timeout: float = 180.0,
        stop_grace: float = 20.0,
    ) -> None:
        super().__init__(state_dir, start_timeout=start_timeout)
        self.planned = planned_workers(platform)
        self.groups = {(g.job, g.task): g for g in cpu_groups(platform)}
        self.bursts = {key for key, g in self.groups.items() if g.burst}
        self.nodes = {
            p.name: (p.nodes, p.accelerators_per_node)
            for p in platform.spec.pools
            if p.vendor == "cpu"
        }
        self.shares = {
            p: tier_pool_shares(platform.spec.tiers, nodes * per_node)
            for p, (nodes, per_node) in self.nodes.items()
        }
        self.priority = {t.name: t.priority for t in platform.spec.tiers}
        self.preemptible = {t.name for t in platform.spec.tiers if t.preemptible}
        self.stop_grace = stop_grace
        # Drains a worker's instances before its process is stopped (the gateway's, set once
        # it runs): the preStop hook of a worker pod.
        self.evict: Callable[[str], object] = lambda _address: None
        # the groups' members, pending ones too (workers.json names the running ones)
        self.workers: list[LocalWorker] = []
        # every worker process not yet ended, by address: members and the ones stopping
        self._procs: dict[str, tuple[LocalWorker, subprocess.Popen[bytes]]] = {}
        self._stopping: set[str] = set()  # scaled down: drained, then ended
        self._lost: set[str] = set()  # workers that exited (evicted), reported once each
        self._scaling = threading.RLock()  # the members, processes and the files naming them

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
        with self._scaling:
            for planned in self.planned:
                self._start_worker(planned, progress)
        self._wait_registered()
        self._write_workers()
        return endpoint

    def _write_workers(self) -> None:
        self.workers_file.write_text(
            json.dumps(
                {
                    "endpoint": self.endpoint,
                    "workers": [asdict(w) for w in self.workers if w.address],
                }
            )
            + "\n"
        )

    def _start_worker(self, planned: LocalWorker, progress: Callable[[str], None]) -> LocalWorker:
        port = free_port(self.host)
        address = f"{self.host}:{port}"
        log = self.state_dir / f"worker-{planned.job}-{planned.task}-{planned.index}.log"
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
            address,
            planned.pool,
            planned.tier,
            planned.node,
            planned.accelerators,
            proc.pid,
            planned.job,
            planned.task,
            planned.index,
        )
        progress(
            f"starting worker {address} ({worker.job}/{worker.task} #{worker.index}: tier "
            f"{worker.tier}, pool {worker.pool}, node {worker.node}, {worker.accelerators} "
            f"accelerator(s); log: {log})"
        )
        self.workers.append(worker)
        self._procs[address] = (worker, proc)
        return worker

    def _wait_registered(self) -> None:
        """Until the supervisor lists every worker; a worker that exits stops the wait."""
        want = {w.address for w in self.workers if w.address}
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

    # -- worker groups -----------------------------------------------------------------------

    def replicas(self) -> list[dict[str, Any]]:
        """Each group's replicas (its members: running, registering or pending) and bounds,
        in group order."""
        with self._scaling:
            counts = Counter((w.job, w.task) for w in self.workers)
        return [
            {
                "job": g.job,
                "task": g.task,
                "tier": g.tier,
                "pool": g.pool,
                "size": g.size,
                "replicas": counts[key],
                "maxReplicas": g.max_replicas,
            }
            for key, g in self.groups.items()
        ]

    def processes(self) -> list[dict[str, Any]]:
        """Every worker process not yet ended, with its state (`member` or `stopping`)."""
        with self._scaling:
            return [
                {**asdict(w), "state": "stopping" if a in self._stopping else "member"}
                for a, (w, _proc) in self._procs.items()
            ]

    def _free(self, pool: str, *, stopping: bool = True) -> list[int]:
        """Each of the pool's nodes' free accelerators: what its worker processes that have
        not ended (stopping ones too, like a terminating pod, unless not `stopping`: the room
        they are releasing) and the pending members bound to a node (waiting for workers
        stopping there to end) leave."""
        nodes, per_node = self.nodes[pool]
        free = [per_node] * nodes
        for address, (worker, proc) in self._procs.items():
            if worker.pool != pool or proc.poll() is not None:
                continue
            if stopping or address not in self._stopping:
                free[worker.node] -= worker.accelerators
        for worker in self.workers:
            if worker.pool == pool and not worker.address and worker.node >= 0:
                free[worker.node] -= worker.accelerators
        return free

    def scale(
        self, job: str, task: str, replicas: int, progress: Callable[[str], None]
    ) -> dict[str, Any]:
        """Start or stop workers of the group until it has `replicas`, without waiting:
        new workers register with the supervisor in the background (replicas count them
        from the start); stopped ones, highest index first, leave the group at once and are
        drained and ended in the background. Pending members of any group that have room
        now start first. A new worker no node has room for is bound to a node a stopping
        worker releases room on, else reclaims one (see the module docstring; its tier holds
        its running workers and the pending ones bound to a node): it is counted at once and
        starts when they have ended; `reclaiming` names the workers evicted for it. `pending`
        says why fewer started (no node has or will have room, nothing to reclaim). InputError
        when the group is not one of this cluster's, `replicas` is outside 0..its
        maxReplicas, or the cluster does not run."""
        group = self.groups.get((job, task))
        if group is None:
            known = ", ".join(f"{j}/{t}" for j, t in self.groups)
            raise InputError(
                f"{job}/{task} is not a worker group of a CPU pool of this `xpool up` "
                f"(groups: {known})"
            )
        if isinstance(replicas, bool) or not 0 <= replicas <= group.max_replicas:
            raise InputError(
                f"{job}/{task}: replicas {replicas!r} is outside 0..{group.max_replicas} "
                "(maxReplicas: the tier's share, plus what it may borrow)"
            )
        started: list[LocalWorker] = []
        evicted: list[tuple[LocalWorker, str]] = []
        pending = None
        with self._scaling:
            if self.process is None:  # not started, or stopped meanwhile: start nothing
                raise InputError(f"{job}/{task}: the local Xinference cluster is not running")
            self._start_pending(progress)
            members = sorted(
                (w for w in self.workers if (w.job, w.task) == (job, task)), key=lambda w: w.index
            )
            taken = {w.index for w in members}
            index = added = 0
            while len(members) + added < replicas:
                while index in taken:
                    index += 1
                planned = LocalWorker(
                    "", group.pool, group.tier, -1, group.size, 0, job, task, index
                )
                node = first_fit(self._free(group.pool), group.size)
                if node is not None:
                    taken.add(index)
                    added += 1
                    started.append(self._start_worker(replace(planned, node=node), progress))
                    continue
                found = self._room_later(group)
                if found is None:
                    pending = f"no node of pool {group.pool} has {group.size} free accelerator(s)"
                    break
                taken.add(index)
                added += 1
                bound, victims = found
                self.workers.append(replace(planned, node=bound))  # starts once they end
                for victim, why in victims:
                    position = self.workers.index(victim)
                    self.workers[position] = replace(victim, address="", node=-1, pid=0)
                    self._stopping.add(victim.address)
                    evicted.append((victim, why))
            doomed = members[replicas:]
            for worker in doomed:
                self.workers.remove(worker)
                if worker.address:
                    self._stopping.add(worker.address)
            self._write_workers()
        for worker, why in evicted:
            progress(
                f"evicting worker {worker.address} ({worker.job}/{worker.task} #{worker.index}, "
                f"node {worker.node}; pending until room appears): {why}"
            )
            self._stop_in_background(worker, progress)
        for worker in doomed:
            if worker.address:
                progress(f"stopping worker {worker.address} ({job}/{task} #{worker.index})")
                self._stop_in_background(worker, progress)
        if pending:
            progress(f"{job}/{task}: {replicas} replica(s) asked, pending: {pending}")
        return {
            "job": job,
            "task": task,
            "replicas": len(members) - len(doomed) + added,
            "started": [w.address for w in started],
            "stopping": [w.address for w in doomed if w.address],
            "reclaiming": [w.address for w, _why in evicted],
            "pending": pending,
        }

    def _room_later(self, group: WorkerGroup) -> tuple[int, list[tuple[LocalWorker, str]]] | None:
        """The node for a new worker of `group` no node has room for now, and the members to
        evict for it with why: one stopping workers release room on (Volcano pipelines a pod
        onto releasing resources), else one reclaimed; None when its tier may not reclaim or
        nothing frees a node."""
        pool = group.pool
        free = self._free(pool, stopping=False)
        if (node := first_fit(free, group.size)) is not None:
            return node, []
        shares = self.shares[pool]
        held: Counter[str] = Counter()
        for w in self.workers:
            if w.pool == pool and (w.address or w.node >= 0):
                held[w.tier] += w.accelerators
        running = {
            w.address: w
            for w in self.workers
            if w.pool == pool and w.address and w.address not in self._stopping
        }
        holders = [
            Holder(
                w.address,
                w.tier,
                w.node,
                w.accelerators,
                w.tier in self.preemptible or (w.job, w.task) in self.bursts,
                self.priority[w.tier],
                w.index,
            )
            for w in running.values()
        ]
        found = reclaim(group.tier, group.size, free, holders, held, shares)
        if found is None:
            return None
        node, victims = found
        return node, [
            (
                running[v.name],
                f"reclaimed for {group.tier}: {v.tier} holds {held[v.tier]} > deserved "
                f"{shares[v.tier].deserved} on {pool}",
            )
            for v in victims
        ]

    def _start_pending(self, progress: Callable[[str], None]) -> bool:
        """Start the pending members that have room now, those bound to a node (for which
        workers were reclaimed) first, then by tier priority; True when one started."""
        pending = [w for w in self.workers if not w.address]
        pending.sort(key=lambda w: (w.node < 0, -self.priority.get(w.tier, 0), w.index))
        started = False
        for worker in pending:
            free = self._free(worker.pool)  # counts the bound ones' reservations, its own too
            if worker.node >= 0:
                node: int | None = worker.node if free[worker.node] >= 0 else None
            else:
                node = first_fit(free, worker.accelerators)
            if node is None:
                continue
            self.workers.remove(worker)
            self._start_worker(replace(worker, node=node), progress)
            started = True
        return started

    def _stop_in_background(self, worker: LocalWorker, progress: Callable[[str], None]) -> None:
        threading.Thread(
            target=self._retire,
            args=(worker, progress),
            name=f"stop worker {worker.address}",
            daemon=True,
        ).start()

    def _retire(self, worker: LocalWorker, progress: Callable[[str], None]) -> None:
        """Evict one worker as the kubelet evicts a pod: drain its instances, then stop its
        process (SIGINT, SIGTERM to its group, SIGKILL after the grace); the pid file stops
        naming it. The room it leaves goes to pending members, as a pending pod schedules."""
        try:
            self.evict(worker.address)
        except Exception as exc:  # the worker stops anyway, as after a failed preStop hook
            progress(f"warning: draining worker {worker.address} failed: {exc}")
        with self._scaling:
            entry = self._procs.get(worker.address)
        if entry is None:
            return
        proc = entry[1]
        # SIGINT first: Xinference's worker (an actor in a child process of the group)
        # unregisters from the supervisor only on SIGINT (core/worker.py, signal_handler);
        # after a bare SIGTERM the supervisor keeps listing it, and fails GET /v1/workers,
        # until its health check gives up on it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=self.stop_grace)
        end_groups([proc], self.stop_grace)  # what it forked, then SIGKILL after the grace
        with self._scaling:
            self._procs.pop(worker.address, None)
            self._stopping.discard(worker.address)
            if proc in self._groups:  # not when `xpool up` stopped meanwhile
                self._groups.remove(proc)
                self._write_pid_file()
        progress(f"worker {worker.address} stopped (code {proc.returncode})")
        with self._scaling:
            if self.process is not None and self._start_pending(progress):
                self._write_workers()

    # -- lifecycle ---------------------------------------------------------------------------

    def exited(self) -> str | None:
        why = super().exited()
        if why is not None:
            return why
        # A worker's exit does not stop `xpool up`: on Kubernetes a worker pod is evicted and
        # replaced while the platform serves on (its instances drained first: `xpool worker
        # drain`), so here the other workers serve on and the supervisor stops listing it.
        with self._scaling:
            procs = [(w, p) for a, (w, p) in self._procs.items() if a not in self._stopping]
        for worker, proc in procs:
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
        with self._scaling:
            super().stop(grace)
            self.workers_file.unlink(missing_ok=True)
            self._procs = {}
