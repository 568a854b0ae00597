"""`xpool up FILE`: run a platform here, as a session a caller starts, serves and stops.

start: the embedded Xinference (`xinference.endpoint: embedded`) or the remote one -> the
gateway on `gateway.listen`, with its admin API -> a local Prometheus scraping it (when
installed) -> the up state file other commands find it by -> each model version registered
and its instances ensured (the stable version of each model, at least one instance, and the
canaries the file's weights ask for). stop: undo exactly what start did, each step even if an
earlier one failed. The CLI adds signal handling around it; a test drives the same session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from xpool.actions.runtime import Runtime
from xpool.adapters.object_store import open_store
from xpool.adapters.xinference import (
    Pin,
    XinferenceClient,
    api_key_from_env,
    ensure_instances,
)
from xpool.errors import InputError, Problem, RemoteError
from xpool.gateway.admin_routes import AdminError
from xpool.gateway.app import create_app
from xpool.gateway.batch_api import BatchLimits
from xpool.gateway.control import Scaler
from xpool.gateway.limits import RequestLimits
from xpool.gateway.metrics import GatewayMetrics
from xpool.gateway.server import GatewayServer
from xpool.gateway.wiring import client_keys, model_limits, table_for, write_token
from xpool.local.cluster import LocalCluster, gpu_idx, worker_obs
from xpool.local.models import resolve_local_sources
from xpool.local.prometheus import LocalPrometheus
from xpool.local.runtime import EmbeddedXinference
from xpool.local.smoke import example_requests, smoke_requests
from xpool.local.up_state import UpState, state_dir_for
from xpool.policy.placement import Placer
from xpool.policy.spec import policy_spec
from xpool.policy.state import InstanceObs
from xpool.render.instances import Want, parse_uid
from xpool.resolve import resolve_platform

GATEWAY_JOB = "xpool-gateway"  # the Prometheus job scraping the gateway


@dataclass(frozen=True)
class UpOptions:
    file: str
    state_dir: str | None = None  # default: $XDG_STATE_HOME/xpool/<platform>
    smoke: bool = False  # one request per model through the gateway, then stop
    timeout: float = 600.0  # seconds to wait for each instance to become ready
    with_prometheus: bool = True  # start a local Prometheus when the binary is installed
    # a supervisor and one worker process per worker of the CPU pools' tiers (local/cluster.py);
    # None: when a CPU pool has more than one node
    workers: bool | None = None

    def validate(self) -> None:
        if self.timeout < 1:
            raise InputError(
                [Problem("--timeout", "", f"{self.timeout:g} s: wait at least 1 s per instance")]
            )


class LocalWorkerGroups:
    """A multi-worker `xpool up`'s worker groups behind the admin API (`/-/admin/workers`)."""

    def __init__(self, cluster: LocalCluster, log: Callable[[str], None]) -> None:
        self.cluster = cluster
        self.log = log

    def groups(self) -> dict[str, Any]:
        return {"replicas": self.cluster.replicas(), "workers": self.cluster.processes()}

    def scale(self, job: str, task: str, replicas: int) -> dict[str, Any]:
        """As LocalCluster.scale; a group it does not run or replicas out of range is 409."""
        try:
            return self.cluster.scale(job, task, replicas, self.log)
        except InputError as exc:
            raise AdminError(409, "; ".join(p.message for p in exc.problems)) from None


class UpSession:
    """What one `xpool up` started, so that stopping undoes exactly that.

    `start()` returns once every instance serves; `serve_until(event)` then watches the
    embedded Xinference; `stop()` is safe at any point, also after a failed or interrupted
    start."""

    def __init__(self, options: UpOptions, runtime: Runtime) -> None:
        self.options = options
        self.log = runtime.log
        self._runtime = runtime
        self.resolved = resolve_platform(options.file)
        self.platform = self.resolved.platform
        self.state_dir = state_dir_for(self.resolved.name, options.state_dir)
        self._api_key = api_key_from_env(self.platform)
        self._client_keys = client_keys(self.platform)
        self.wants: list[Want] = self.resolved.wants(at_least=1)
        self._by_version, self._canaries = self.resolved.version_wants(at_least=1)
        self._policy = policy_spec(self.platform, self.resolved.plan)  # models' pool and TP
        self.table = table_for(self.platform)
        self.metrics = GatewayMetrics(self.table)
        self.limits = model_limits(self.platform)
        self.launched: list[str] = []  # UIDs this session launched: terminated by stop()
        self.xinference: EmbeddedXinference | None = None
        self.client: XinferenceClient | None = None
        self.gateway: GatewayServer | None = None
        self.prometheus: LocalPrometheus | None = None
        self.up_state: UpState | None = None
        self._token_file: Path | None = None
        self._up_file: Path | None = None
        self._stopped = False

    # -- start -------------------------------------------------------------------------------

    def start(self) -> UpState:
        """Start every piece in order; returns what serves (as `up.json` records it)."""
        endpoint = self._start_xinference()
        gateway = self._start_gateway(endpoint)
        prometheus = self._start_prometheus()
        assert self._token_file is not None
        self.up_state = UpState(
            platform=self.resolved.name,
            endpoint=endpoint,
            gateway=gateway,
            admin_token_file=self._token_file,
            prometheus=prometheus,
            xinference_pid=self.xinference.pid if self.xinference else None,
            pid=os.getpid(),
        )
        self._up_file = self.up_state.write(self.state_dir)
        self._ensure_instances()
        return self.up_state

    def _start_xinference(self) -> str:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.platform.spec.xinference.endpoint == "embedded":
            self._resolve_local_sources()
            self.xinference = self._embedded()
            endpoint = self.xinference.start(self.log)
        elif self.options.workers:
            raise InputError(
                "--workers starts local Xinference workers: it needs spec.xinference.endpoint "
                f"embedded, not {self.platform.spec.xinference.endpoint}"
            )
        else:
            endpoint = self.platform.spec.xinference.endpoint
        self.client = self._runtime.xinference(endpoint, self._api_key)
        self.log(f"Xinference {self.client.check_version()} at {endpoint}")
        return endpoint

    def _embedded(self) -> EmbeddedXinference:
        """One `xinference-local` process, or with `--workers` (by default when a CPU pool has
        more than one node) a supervisor and the tiers' workers."""
        multi = self.options.workers
        if multi is None:
            multi = any(p.vendor == "cpu" and p.nodes > 1 for p in self.platform.spec.pools)
        if not multi:
            return EmbeddedXinference(self.state_dir)
        cluster = LocalCluster(self.state_dir, self.platform)
        if not cluster.planned:
            raise InputError("--workers: the platform has no CPU pool whose tiers get workers")
        return cluster

    def _resolve_local_sources(self) -> None:
        """Point every registration at files this host's Xinference reads (local://, s3://
        copies, checked file://), failing before anything starts."""

        def resolved(wants: list[Want]) -> list[Want]:
            return resolve_local_sources(wants, self.state_dir, self.platform)

        self.wants = resolved(self.wants)
        self._canaries = resolved(self._canaries)
        keys = list(self._by_version)
        self._by_version = dict(zip(keys, resolved(list(self._by_version.values())), strict=True))

    def _start_gateway(self, endpoint: str) -> str:
        assert self.client is not None
        self._token_file = write_token(self.state_dir)
        scaler = Scaler(
            self.client,
            self.table,
            self.metrics,
            self._by_version,
            self.limits,
            drain_timeout=self.platform.spec.autoscaling.drain_timeout,
            launch_timeout=self.options.timeout,
            log=self.log,
            on_launched=self.launched.append,
            on_terminated=self._forget,
            placer=self._place_launches if isinstance(self.xinference, LocalCluster) else None,
        )
        cluster = self.xinference if isinstance(self.xinference, LocalCluster) else None
        if cluster is not None:
            cluster.evict = scaler.evacuate
        gw = self.platform.spec.gateway
        app = create_app(
            self.table,
            endpoint,
            api_key=self._api_key,
            timeout=gw.request_timeout,
            client_id_header=gw.client_id_header,
            metrics=self.metrics,
            admin=scaler,
            admin_token=self._token_file.read_text().strip(),
            limits=RequestLimits.of(gw),
            client_keys=self._client_keys,
            workers=None if cluster is None else LocalWorkerGroups(cluster, self.log),
            batch_store=open_store(self.platform.spec.batch.store, self.state_dir),
            batch_limits=BatchLimits.of(self.platform.spec.batch),
        )
        self.gateway = GatewayServer(app, gw.listen)
        self.gateway.start()
        self.log(f"gateway listening on {self.gateway.url}")
        return self.gateway.url

    def _forget(self, uid: str) -> None:
        if uid in self.launched:
            self.launched.remove(uid)

    def _start_prometheus(self) -> str | None:
        """A local Prometheus scraping the gateway, for `xpool reconcile` to read load from."""
        if not self.options.with_prometheus:
            return None
        if shutil.which("prometheus") is None:
            self.log(
                "Prometheus is not installed (apt-get install -y prometheus): the reconciler "
                "will not see load"
            )
            return None
        assert self.gateway is not None
        self.prometheus = LocalPrometheus(self.state_dir / "prometheus")
        self.prometheus.start()
        self.prometheus.set_targets(GATEWAY_JOB, [f"{self.gateway.host}:{self.gateway.port}"])
        self.log(f"Prometheus at {self.prometheus.url} scraping the gateway")
        return self.prometheus.url

    def _ensure_instances(self) -> None:
        """Adopt or launch every wanted instance, routing to each as it becomes ready."""
        assert self.client is not None
        before = {i.uid for i in self.client.instances()}

        def ready(want: Want, uid: str) -> None:
            lim = self.limits[want.model]
            self.table.add(
                want.model,
                want.model_type,
                uid,
                version=want.version,
                tier=lim.tier,
                limit=lim.request_limit,
            )
            if uid not in before:
                self.launched.append(uid)

        result = ensure_instances(
            self.client,
            [*self.wants, *self._canaries],
            timeout=self.options.timeout,
            progress=self.log,
            on_ready=ready,
            place=self._place_initial(),
        )
        self.log(
            f"instances: {len(result.launched) + len(result.replaced)} launched, "
            f"{len(result.adopted)} adopted"
        )

    def _placer(self, loading: dict[str, str] | None = None) -> Placer | None:
        """With local workers, the policy's placer over what runs on each worker now (and
        the launches still `loading` onto one), so every launch goes to a worker of its
        model's tier with room, as the reconciler places; None with one process."""
        cluster = self.xinference
        if not isinstance(cluster, LocalCluster):
            return None
        assert self.client is not None
        listed = self.client.workers()
        where = {uid: (w.address, d) for w in listed for uid, d in w.instances.items()}
        where.update({uid: (worker, ()) for uid, worker in (loading or {}).items()})
        running = [
            InstanceObs(uid, parsed[0], parsed[1], "ready", 0.0, worker=worker, devices=d)
            for uid, (worker, d) in where.items()
            if (parsed := parse_uid(uid)) is not None
        ]
        workers = worker_obs(cluster.workers, [w.address for w in listed])
        return Placer.of(self._policy, running, workers)

    def _pin(self, placer: Placer, want: Want, uid: str) -> Pin:
        """Where `uid` goes, or InputError saying why it has no room."""
        model = self._policy.model(want.model)
        if model is None:
            raise InputError(f"{uid}: model {want.model} has no pool the planner placed it on")
        slot = placer.place(model.pool, model.tier, model.accelerators)
        if slot is None:
            why = placer.shortage(model.pool, model.tier, model.accelerators)
            raise InputError(f"cannot place {uid}: {why}")
        self.log(f"placing {uid} on worker {slot.worker} (tier {model.tier})")
        return slot.worker, gpu_idx(self.platform, model.pool, slot.devices)

    def _place_initial(self) -> Callable[[Want, str], Pin] | None:
        placer = self._placer()
        return None if placer is None else partial(self._pin, placer)

    def _place_launches(self, want: Want, uids: list[str], loading: dict[str, str]) -> list[Pin]:
        """The gateway's launches that name no worker (`xpool scale`); 409 when one has no
        room on its tier's workers."""
        placer = self._placer(loading)
        assert placer is not None
        try:
            return [self._pin(placer, want, uid) for uid in uids]
        except InputError as exc:
            raise AdminError(409, "; ".join(p.message for p in exc.problems)) from None

    # -- serve -------------------------------------------------------------------------------

    def examples(self) -> list[str]:
        """A `curl` line per model, against the gateway."""
        assert self.up_state is not None
        return example_requests(
            self.up_state.gateway, self.wants, self.platform.spec.gateway.api_keys_env
        )

    def smoke(self) -> list[str]:
        """One request per model through the gateway: a line per answer."""
        assert self.up_state is not None
        key = self._client_keys[0] if self._client_keys else None
        return smoke_requests(self.up_state.gateway, self.wants, key)

    def serve_until(self, stop: threading.Event, poll: float = 1.0) -> None:
        """Serve until `stop` is set; RemoteError when an embedded Xinference process exits."""
        while True:
            why = self.xinference.exited() if self.xinference else None
            if why is not None:
                raise RemoteError(why)
            if stop.wait(poll):
                return

    # -- stop --------------------------------------------------------------------------------

    def _stop_steps(self) -> list[tuple[str, Callable[[], object]]]:
        """(progress line or "", step) in order: routing first, processes last."""
        steps: list[tuple[str, Callable[[], object]]] = []
        if self.gateway is not None:
            steps.append(("stopping the gateway", self.gateway.stop))
        if self.client is not None:
            client = self.client
            for uid in self.launched:
                steps.append((f"terminating {uid}", partial(client.terminate, uid, quiet=True)))
            steps.append(("", client.close))
        if self.prometheus is not None and self.prometheus.process is not None:
            steps.append((f"stopping Prometheus (pid {self.prometheus.pid})", self.prometheus.stop))
        if self.xinference is not None and self.xinference.process is not None:
            steps.append((f"stopping Xinference (pid {self.xinference.pid})", self.xinference.stop))
        for path in (self._up_file, self._token_file):
            if path is not None:
                steps.append(("", partial(path.unlink, missing_ok=True)))
        return steps

    def stop(self) -> None:
        """Undo what this session started. Every step runs even if an earlier one fails
        (e.g. the terminal is gone, so writing progress raises BrokenPipeError): the embedded
        Xinference must never outlive `xpool up`. Calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        for message, step in self._stop_steps():
            with contextlib.suppress(Exception):
                if message:
                    self.log(message)
            try:
                step()
            except Exception as exc:  # go on: the remaining steps still free resources
                with contextlib.suppress(Exception):
                    self.log(f"warning: {message or 'cleanup'} failed: {exc}")
        with contextlib.suppress(Exception):
            self.log("stopped")

    def kill(self) -> None:
        """Give up at once (a second Ctrl-C while stopping): SIGKILL the embedded Xinference
        and everything it forked."""
        if self.xinference is not None:
            self.xinference.kill()
