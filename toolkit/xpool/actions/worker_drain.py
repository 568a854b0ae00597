"""`xpool worker drain FILE --worker HOST[:PORT]`: drain every instance an Xinference worker runs
before that worker stops, as a worker pod's preStop hook does when Volcano evicts it or a node
is drained (docs/operations.md, "When a node is drained").

The instances are those the supervisor reports on the worker (each replica's
`worker_address`), of the platform's models. They are drained as the reconciler drains: locally
through the running `xpool up`'s gateway (admin API), on Kubernetes through the routes ConfigMap
and the gateway replicas' report Leases (reconcile/kube_target.py). Then this waits until none
has a request in flight, or `spec.autoscaling.drainTimeout` passes: the kubelet stops the worker
after the hook either way, so a timeout is a warning, not a failure. `--done-file` is touched
on every way out, since the worker container's own preStop waits for it.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from xpool.actions.runtime import Runtime
from xpool.adapters.xinference import XinferenceClient, api_key_from_env
from xpool.errors import InputError, Problem
from xpool.local.admin import AdminClient
from xpool.local.up_state import require_up_state, state_dir_for, supervised_locally
from xpool.logs import get_logger
from xpool.reconcile.kube_target import KubeTarget
from xpool.render.instances import parse_uid
from xpool.resolve import ResolvedPlatform, resolve_platform

log = get_logger(__name__)


@dataclass(frozen=True)
class DrainWorkerOptions:
    file: str
    worker: str  # HOST:PORT as Xinference names the worker, or HOST (any worker there)
    state_dir: str | None = None  # local: the running `xpool up`
    namespace: str | None = None
    done_file: str | None = None
    poll: float = 1.0  # seconds between two looks at the in-flight counts

    def validate(self) -> None:
        if worker_host_port(self.worker) is None:
            raise InputError(
                [
                    Problem(
                        "--worker",
                        "",
                        f"'{self.worker}' is not HOST or HOST:PORT (the worker's address as "
                        "the Xinference supervisor lists it, e.g. 10.1.2.3:30001)",
                    )
                ]
            )


def worker_host_port(text: str) -> tuple[str, int | None] | None:
    """(host, port or None) of `--worker`; None when it is neither HOST nor HOST:PORT. A bare
    IPv6 address is a host (its colons name no port)."""
    text = text.strip()
    if not text or any(c.isspace() or c in "/@" for c in text):
        return None
    try:
        ipaddress.ip_address(text)
        return text, None
    except ValueError:
        pass
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, None
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host.strip("[]"), int(port)


def on_worker(addresses: Iterable[str], worker: str) -> bool:
    """Whether one of an instance's worker addresses is `worker` (HOST matches every port)."""
    parsed = worker_host_port(worker)
    if parsed is None:
        return False
    host, port = parsed
    for address in addresses:
        there = worker_host_port(address)
        if there is not None and there[0] == host and (port is None or there[1] == port):
            return True
    return False


@dataclass
class DrainResult:
    worker: str
    instances: list[str]
    drained: bool  # False: drainTimeout passed with requests still in flight
    inflight: dict[str, int] = field(default_factory=dict)  # at the end
    seconds: float = 0.0


class DrainSide(Protocol):
    """Where the routing lives: the local gateway or the Kubernetes routes."""

    def routed(self, uids: list[str]) -> list[str]: ...

    def mark(self, uids: list[str]) -> None: ...

    def inflight(self, uids: list[str]) -> dict[str, int]: ...

    def close(self) -> None: ...


class LocalSide:
    """The running `xpool up`: its gateway drains at once (one process, one routing table)."""

    def __init__(self, admin: AdminClient) -> None:
        self.admin = admin

    def _rows(self) -> dict[str, int]:
        return {str(i["uid"]): int(i.get("inflight", 0)) for i in self.admin.instances()}

    def routed(self, uids: list[str]) -> list[str]:
        known = self._rows()
        return [u for u in uids if u in known]

    def mark(self, uids: list[str]) -> None:
        self.admin.call("POST", "/-/admin/drain", {"uids": uids})

    def inflight(self, uids: list[str]) -> dict[str, int]:
        rows = self._rows()
        return {u: rows.get(u, 0) for u in uids}  # gone: terminated meanwhile

    def close(self) -> None:
        self.admin.close()


class KubeSide:
    """The routes ConfigMap and the gateway replicas' reports (the reconciler's handshake)."""

    def __init__(self, target: KubeTarget, close: Callable[[], None]) -> None:
        self.target = target
        self._close = close

    def routed(self, uids: list[str]) -> list[str]:
        if not self.target.routes_exist():
            log.info(f"no ConfigMap {self.target.routes}: no gateway routes to any instance")
            return []
        return uids  # a loading one is marked too, so it is never routed once ready

    def mark(self, uids: list[str]) -> None:
        self.target.drain_all(uids)

    def inflight(self, uids: list[str]) -> dict[str, int]:
        return self.target.inflight_of(uids)

    def close(self) -> None:
        self._close()


def _side(
    options: DrainWorkerOptions, resolved: ResolvedPlatform, runtime: Runtime
) -> tuple[DrainSide, XinferenceClient]:
    platform = resolved.platform
    if supervised_locally(platform.spec.xinference.endpoint, options.state_dir):
        up = require_up_state(resolved.name, state_dir_for(resolved.name, options.state_dir))
        return LocalSide(AdminClient.of(up)), runtime.xinference(up.endpoint, None)
    api_key = api_key_from_env(platform)  # a missing key fails before anything connects
    xinference = runtime.xinference(platform.spec.xinference.endpoint, api_key)
    kube = runtime.kube()
    by_version, _ = resolved.version_wants()
    target = KubeTarget(kube, resolved.namespace, xinference, by_version, clock=runtime.clock)
    return KubeSide(target, kube.close), xinference


def drain_worker(
    options: DrainWorkerOptions,
    runtime: Runtime,
    sleep: Callable[[float], None] = time.sleep,
) -> DrainResult:
    """Drain the worker's instances and wait; the done file is touched however this ends."""
    done = Path(options.done_file) if options.done_file else None
    if done is not None:
        done.unlink(missing_ok=True)  # a stale one would let the worker stop before this ends
    try:
        resolved = resolve_platform(options.file, namespace=options.namespace)
        side, xinference = _side(options, resolved, runtime)
        try:
            return _drain(options, resolved, side, xinference, runtime, sleep)
        finally:
            side.close()
            xinference.close()
    finally:
        if done is not None:
            _touch(done)


def _touch(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as exc:
        log.warning(f"cannot write the done file {path}: {exc.strerror or exc}")


def _drain(
    options: DrainWorkerOptions,
    resolved: ResolvedPlatform,
    side: DrainSide,
    xinference: XinferenceClient,
    runtime: Runtime,
    sleep: Callable[[float], None],
) -> DrainResult:
    started = runtime.clock()
    worker = options.worker
    models = {m.name for m in resolved.platform.spec.models}
    on_it = [
        i.uid
        for i in xinference.instances()
        if on_worker(i.workers, worker)
        and (parsed := parse_uid(i.uid)) is not None
        and parsed[0] in models
    ]
    uids = side.routed(on_it)
    if not uids:
        log.info(f"worker {worker}: no instance of the platform to drain", extra={"worker": worker})
        return DrainResult(worker, [], True)
    side.mark(uids)
    timeout = resolved.platform.spec.autoscaling.drain_timeout
    log.info(
        f"worker {worker}: draining {', '.join(uids)} (no new requests; waiting up to "
        f"{timeout:g} s for the requests in flight)",
        extra={"worker": worker, "instances": uids},
    )
    deadline = started + timeout
    last: dict[str, int] = {}
    while True:
        counts = side.inflight(uids)
        busy = {u: n for u, n in counts.items() if n > 0}
        if not busy:
            seconds = runtime.clock() - started
            log.info(
                f"worker {worker}: drained {', '.join(uids)} in {seconds:.1f} s",
                extra={"worker": worker, "instances": uids},
            )
            return DrainResult(worker, uids, True, counts, seconds)
        if runtime.clock() >= deadline:
            total = sum(busy.values())
            log.warning(
                f"worker {worker}: drainTimeout {timeout:g} s passed with {total} request(s) "
                f"in flight ({_counts(busy)}); the worker stops anyway",
                extra={"worker": worker, "inflight": busy},
            )
            return DrainResult(worker, uids, False, counts, runtime.clock() - started)
        if busy != last:
            log.info(f"worker {worker}: waiting for {_counts(busy)}", extra={"inflight": busy})
            last = busy
        sleep(min(options.poll, max(0.0, deadline - runtime.clock())))


def _counts(busy: dict[str, int]) -> str:
    return ", ".join(f"{uid}: {n}" for uid, n in sorted(busy.items()))
