"""Which reconciler a platform file gets: its instance target, memory and rollout stores,
Prometheus client, audit log and leadership.

Local (`xinference.endpoint: embedded`): the running `xpool up`, found through its state
directory, where the memory, the audit log and the leader lock live too. Kubernetes: the remote
Xinference and the `xpool-routes` ConfigMap every gateway replica reads; memory and rollouts in
ConfigMaps; a Lease for leadership.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xpool.actions.runtime import Runtime
from xpool.adapters.kube_client import KubeClient
from xpool.adapters.prometheus import PrometheusClient
from xpool.adapters.queue_shares import QueueShare, set_queue_shares
from xpool.adapters.xinference import api_key_from_env
from xpool.config.loader import LoadedPlatform
from xpool.config.models import Platform
from xpool.errors import InputError, Problem
from xpool.local.admin import AdminClient
from xpool.local.cluster import read_workers
from xpool.local.up_state import UpState, require_up_state
from xpool.logs import get_logger
from xpool.policy.actions import SetQueue
from xpool.policy.spec import PolicySpec, policy_spec
from xpool.policy.state import LoadObs
from xpool.reconcile.audit import AuditLog
from xpool.reconcile.kube_target import KubeTarget
from xpool.reconcile.leader import FileLeadership, Leadership, LeaseLeadership, default_identity
from xpool.reconcile.local_target import LocalTarget
from xpool.reconcile.memory_store import ConfigMapMemoryStore, FileMemoryStore
from xpool.reconcile.metrics import ReconcilerMetrics
from xpool.reconcile.reconciler import AppliedQueueShare, Reconciler
from xpool.reconcile.rollout_store import ConfigMapRolloutStore, FileRolloutStore
from xpool.reconcile.rollouts import GateReader, RolloutController
from xpool.reconcile.signals import queries_for, read_loads
from xpool.render.object_names import queue_name
from xpool.render.resources import pool_resources, resource_name
from xpool.resolve import ResolvedPlatform

AUDIT_FILE = "audit.jsonl"
MEMORY_FILE = "reconciler-memory.json"
LOCK_FILE = "reconciler.lock"

# The pass's own lines (decisions, actions) under the reconciler's name, so a log pipeline
# can tell them from the loop's and the leadership's.
pass_log = get_logger(Reconciler.__module__)


@dataclass
class Wired:
    reconciler: Reconciler
    leader: Leadership
    prometheus: str | None  # the URL load and rollout gates are read from, if any
    closers: tuple[Callable[[], None], ...] = ()

    def close(self) -> None:
        for close in self.closers:
            close()


def prometheus_url(platform: Platform, flag: str | None, up: UpState | None) -> str | None:
    """--prometheus, else spec.prometheus.url, else the one `xpool up` started."""
    prom = platform.spec.prometheus
    return flag or (prom.url if prom else None) or (up.prometheus if up else None)


def prometheus_client(
    loaded: LoadedPlatform, url: str | None, runtime: Runtime | None = None
) -> PrometheusClient | None:
    """A client for `url` with the bearer token the platform file names, if any."""
    if url is None:
        return None
    prom = loaded.platform.spec.prometheus
    token = None
    if prom is not None and prom.bearer_token_env:
        token = os.environ.get(prom.bearer_token_env)
        if not token:
            raise InputError(
                [
                    Problem(
                        str(loaded.path),
                        "spec.prometheus.bearerTokenEnv",
                        f"the environment variable {prom.bearer_token_env} is not set",
                    )
                ]
            )
    if runtime is not None:
        return runtime.prometheus(url, token)
    return PrometheusClient(url, bearer_token=token)


def load_reader(
    loaded: LoadedPlatform, spec: PolicySpec, url: str | None, runtime: Runtime | None = None
) -> Callable[[], dict[str, LoadObs]]:
    """Per-pass load from Prometheus; without one every model's QPS is missing (so only the
    floor, the ceiling and drains act, never a load-based scale-down)."""
    client = prometheus_client(loaded, url, runtime)
    if client is None:
        return lambda: {
            m.name: LoadObs(missing=("qps (no Prometheus configured)",)) for m in spec.models
        }
    queries = queries_for(loaded.platform)
    vendors = {p.name: p.vendor for p in loaded.platform.spec.pools}
    return lambda: read_loads(client, queries, spec, vendors)


class VolcanoQueueSink:
    """Queue shares as whole accelerators -> the Queues' resources (with the pool's matching
    CPU and memory, as `xpool render` computes them), set under field manager
    `xpool-reconciler`."""

    def __init__(self, kube: KubeClient, platform: Platform) -> None:
        self.kube = kube
        self.platform = platform

    def apply(self, shares: list[SetQueue]) -> list[AppliedQueueShare]:
        named = {}
        for share in shares:
            pool = self.platform.pool(share.pool)
            name = queue_name(self.platform, self.platform.tier(share.tier), pool)
            named[name] = (
                share,
                QueueShare(
                    name,
                    {k: str(v) for k, v in pool_resources(pool, share.deserved).items()},
                    {k: str(v) for k, v in pool_resources(pool, share.capability).items()},
                ),
            )
        changes = set_queue_shares(self.kube, [q for _, q in named.values()])
        return [AppliedQueueShare(named[c.name][0], c.name, c.before, c.after) for c in changes]


def local_reconciler(
    resolved: ResolvedPlatform,
    state: Path,
    *,
    prometheus: str | None,
    audit_path: Path | None,
    dry_run: bool,
    metrics: ReconcilerMetrics | None,
    runtime: Runtime,
) -> Wired:
    """The running `xpool up` of `state` through its gateway's admin API (exit 3 if none)."""
    up = require_up_state(resolved.name, state)
    admin = AdminClient.of(up)
    spec = policy_spec(resolved.platform, resolved.plan)
    url = prometheus_url(resolved.platform, prometheus, up)
    workers = read_workers(state, up.endpoint)
    target = LocalTarget(
        admin,
        runtime.xinference(up.endpoint, None) if workers else None,
        resolved.platform,
    )
    audit = AuditLog(None if dry_run else (audit_path or state / AUDIT_FILE))
    reconciler = Reconciler(
        spec,
        target,
        loads=load_reader(resolved.loaded, spec, url, runtime),
        store=FileMemoryStore(state / MEMORY_FILE),
        audit=audit,
        rollouts=RolloutController(
            resolved.platform,
            FileRolloutStore(state),
            # the local Prometheus scrapes every second: a short window has enough samples
            GateReader(prometheus_client(resolved.loaded, url, runtime), min_window=5.0),
            target.set_weights,
            audit.write,
        ),
        metrics=metrics,
        dry_run=dry_run,
        clock=runtime.clock,
        log=pass_log.info,
    )
    leader = FileLeadership(state / LOCK_FILE, identity=default_identity())
    return Wired(reconciler, leader, url, (target.close, audit.close))


def kube_reconciler(
    resolved: ResolvedPlatform,
    *,
    prometheus: str | None,
    audit_path: Path | None,
    dry_run: bool,
    metrics: ReconcilerMetrics | None,
    runtime: Runtime,
) -> Wired:
    """Kubernetes, in `resolved.namespace`. The audit log goes to `audit_path`, or as JSON
    lines to stderr (the pod's log)."""
    platform, ns = resolved.platform, resolved.namespace
    api_key = api_key_from_env(platform)  # a missing key fails before anything connects
    spec = policy_spec(platform, resolved.plan)
    url = prometheus_url(platform, prometheus, None)
    loads = load_reader(resolved.loaded, spec, url, runtime)
    gate = GateReader(prometheus_client(resolved.loaded, url, runtime))
    kube = runtime.kube()
    xinference = runtime.xinference(platform.spec.xinference.endpoint, api_key)
    by_version, _ = resolved.version_wants()
    # a cpu pool has no accelerator resource (it runs only in `xpool up`): no worker pods
    resources = {p.name: resource_name(p) for p in platform.spec.pools if p.vendor != "cpu"}
    target = KubeTarget(
        kube, ns, xinference, by_version, clock=runtime.clock, worker_resources=resources
    )
    audit = AuditLog(None if dry_run else audit_path, stream=None if audit_path else sys.stderr)
    reconciler = Reconciler(
        spec,
        target,
        loads=loads,
        store=ConfigMapMemoryStore(kube, ns),
        audit=audit,
        queues=VolcanoQueueSink(kube, platform) if platform.spec.kubernetes else None,
        rollouts=RolloutController(
            platform, ConfigMapRolloutStore(kube, ns), gate, target.set_weights, audit.write
        ),
        metrics=metrics,
        dry_run=dry_run,
        clock=runtime.clock,
        log=pass_log.info,
    )
    leader = LeaseLeadership(kube, ns, identity=default_identity())
    return Wired(reconciler, leader, url, (audit.close, xinference.close, kube.close))
