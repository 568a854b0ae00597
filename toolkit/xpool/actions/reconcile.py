"""`xpool reconcile`: observe -> decide -> act, once (a CronJob's run) or in a loop that acts
only while it holds the leadership and serves `/metrics` and `/healthz` meanwhile."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xpool.actions.flag_values import check_listen, flag_seconds
from xpool.actions.reconciler_wiring import Wired, kube_reconciler, local_reconciler
from xpool.actions.runtime import Runtime
from xpool.errors import InputError, Problem, RemoteError
from xpool.local.up_state import state_dir_for, supervised_locally
from xpool.logs import get_logger
from xpool.reconcile.leader import Leadership, wait_for_leadership
from xpool.reconcile.metrics import ReconcilerMetrics
from xpool.reconcile.pass_result import PassResult
from xpool.reconcile.reconciler import run_loop
from xpool.reconcile.serve import HealthServer
from xpool.resolve import resolve_platform

log = get_logger(__name__)
# Leadership changes under the leader module's name, whether the loop or the wait saw them.
leader_log = get_logger(wait_for_leadership.__module__)


@dataclass(frozen=True)
class ReconcileOptions:
    file: str
    loop: bool = False
    interval: str = "15s"
    dry_run: bool = False
    state_dir: str | None = None  # local: the running `xpool up`
    prometheus: str | None = None  # default: spec.prometheus.url, else the one `xpool up` runs
    audit_log: str | None = None  # default: STATE_DIR/audit.jsonl locally, stderr on Kubernetes
    listen: str = "127.0.0.1:9464"
    namespace: str | None = None

    @property
    def seconds(self) -> float:
        return flag_seconds("--interval", self.interval)

    def validate(self) -> None:
        """--interval and --listen matter only with --loop, and --once ignores them (a
        CronJob's arguments may carry them); a malformed value is refused either way, so a
        typo shows on the first run rather than on the switch to --loop. --dry-run goes with
        both: once it needs no leadership, in a loop it decides every pass and changes nothing.
        """
        flag_seconds("--interval", self.interval)
        check_listen("--listen", self.listen)


def wire(options: ReconcileOptions, runtime: Runtime, metrics: ReconcilerMetrics) -> Wired:
    """The reconciler of the options' platform: local (`endpoint: embedded`, or `--state-dir`
    of a running `xpool up`) or Kubernetes."""
    resolved = resolve_platform(options.file, namespace=options.namespace)
    audit = Path(options.audit_log) if options.audit_log else None
    if supervised_locally(resolved.platform.spec.xinference.endpoint, options.state_dir):
        wired = local_reconciler(
            resolved,
            state_dir_for(resolved.name, options.state_dir),
            prometheus=options.prometheus,
            audit_path=audit,
            dry_run=options.dry_run,
            metrics=metrics,
            runtime=runtime,
        )
    else:
        wired = kube_reconciler(
            resolved,
            prometheus=options.prometheus,
            audit_path=audit,
            dry_run=options.dry_run,
            metrics=metrics,
            runtime=runtime,
        )
    if wired.prometheus is None:
        log.warning(
            "no Prometheus configured: load is unknown, so only instances.min/max and drains act"
        )
    return wired


def reconcile_once(options: ReconcileOptions, runtime: Runtime) -> PassResult:
    """One pass. A dry run changes nothing, so it needs no leadership; a real pass refuses
    (exit 3) while another reconciler leads."""
    wired = wire(options, runtime, ReconcilerMetrics())
    try:
        if options.dry_run:
            return wired.reconciler.run_pass()
        if not wired.leader.try_acquire():
            raise RemoteError(
                f"another reconciler is active ({wired.leader.holder() or 'unknown'}); "
                "this pass did nothing"
            )
        try:
            return wired.reconciler.run_pass()
        finally:
            wired.leader.release()
    finally:
        wired.close()


class LeaderWatch:
    """`try_acquire` before each pass, with the leader gauge set and each change of
    leadership logged once (not every pass)."""

    def __init__(self, leader: Leadership, metrics: ReconcilerMetrics) -> None:
        self.leader = leader
        self.metrics = metrics
        self.leading = threading.Event()

    def check(self) -> bool:
        who = {"identity": self.leader.identity}
        try:
            held = self.leader.try_acquire()
        except RemoteError as exc:  # cannot tell: acting now could make two leaders
            leader_log.warning(f"leadership unknown ({exc}): not acting", extra=who)
            held = False
        self.metrics.leader.set(1 if held else 0)
        if held and not self.leading.is_set():
            leader_log.info("leading: acting every pass", extra=who)
            self.leading.set()
        elif not held and self.leading.is_set():
            leader_log.warning("lost leadership: standing by", extra=who)
            self.leading.clear()
        return held


def reconcile_loop(options: ReconcileOptions, runtime: Runtime, stop: threading.Event) -> None:
    """Pass every --interval while leading (a standby waits and takes over when the leader
    stops) until `stop` is set; leadership is released on every way out."""
    seconds = options.seconds
    metrics = ReconcilerMetrics()
    wired = wire(options, runtime, metrics)
    try:
        watch = LeaderWatch(wired.leader, metrics)
        server = _health_server(options.listen, metrics, seconds, watch.leading.is_set)
        log.info(
            f"reconciler serving {server.url}/metrics and /healthz; pass every {seconds:g} s",
            extra={"url": server.url, "interval_seconds": seconds},
        )
        try:
            retry = min(seconds, 5.0)
            if wait_for_leadership(wired.leader, retry_every=retry, stop=stop, log=leader_log.info):
                run_loop(
                    wired.reconciler,
                    interval=seconds,
                    stop=stop,
                    is_leader=watch.check,
                    log=log.warning,
                )
        finally:
            wired.leader.release()
            server.stop()
            log.info("reconciler stopped")
    finally:
        wired.close()


def _health_server(
    listen: str, metrics: ReconcilerMetrics, interval: float, is_leader: Callable[[], bool]
) -> HealthServer:
    try:
        server = HealthServer(listen, metrics, interval=interval, is_leader=is_leader)
    except OSError as exc:
        raise InputError(
            [
                Problem(
                    "--listen",
                    "",
                    f"cannot listen on {listen} ({exc.strerror or exc}); "
                    "stop what uses it or choose another address",
                )
            ]
        ) from None
    return server.start()
