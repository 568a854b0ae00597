"""Build a Reconciler for a platform file: which target, Prometheus, memory, audit, leader.

Local (`xinference.endpoint: embedded`): the running `xpool up` found through its state
directory; memory, audit log and the leader lock live in that directory.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xpool.adapters.kube_client import Connection, KubeClient
from xpool.adapters.prometheus import PrometheusClient
from xpool.adapters.queue_shares import QueueShare, set_queue_shares
from xpool.adapters.xinference import XinferenceClient, api_key_from_env, wants_for
from xpool.capacity.plan import CapacityPlan
from xpool.config.loader import LoadedPlatform
from xpool.config.models import Platform
from xpool.errors import InputError, Problem, RemoteError
from xpool.gateway.control import gateway_wants
from xpool.policy.actions import SetQueue
from xpool.policy.spec import PolicySpec, policy_spec
from xpool.policy.state import LoadObs
from xpool.reconcile.audit import AuditLog
from xpool.reconcile.kube_target import KubeTarget
from xpool.reconcile.leader import FileLeadership, Leadership, LeaseLeadership, default_identity
from xpool.reconcile.local_target import LocalTarget
from xpool.reconcile.memory_store import ConfigMapMemoryStore, FileMemoryStore
from xpool.reconcile.metrics import ReconcilerMetrics
from xpool.reconcile.reconciler import QueueChange, Reconciler
from xpool.reconcile.rollout_store import ConfigMapRolloutStore, FileRolloutStore
from xpool.reconcile.rollouts import GateReader, RolloutController
from xpool.reconcile.signals import queries_for, read_loads
from xpool.render.build import pool_resources, queue_name
from xpool.render.launch import launch_specs

AUDIT_FILE = "audit.jsonl"
MEMORY_FILE = "reconciler-memory.json"
LOCK_FILE = "reconciler.lock"


@dataclass
class Wired:
    reconciler: Reconciler
    leader: Leadership
    audit_path: Path
    prometheus: str | None


def prometheus_url(loaded: LoadedPlatform, flag: str | None, up_info: dict | None) -> str | None:
    prom = loaded.platform.spec.prometheus
    return flag or (prom.url if prom else None) or (up_info or {}).get("prometheus")


def prometheus_client(loaded: LoadedPlatform, url: str | None) -> PrometheusClient | None:
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
                        loaded.path,
                        "spec.prometheus.bearerTokenEnv",
                        f"the environment variable {prom.bearer_token_env} is not set",
                    )
                ]
            )
    return PrometheusClient(url, bearer_token=token)


def load_reader(
    loaded: LoadedPlatform, spec: PolicySpec, url: str | None
) -> Callable[[], dict[str, LoadObs]]:
    """Per-pass load from Prometheus; without one every model's QPS is missing (so only the
    floor, the ceiling and drains act, never a load-based scale-down)."""
    client = prometheus_client(loaded, url)
    if client is None:
        return lambda: {
            m.name: LoadObs(missing=("qps (no Prometheus configured)",)) for m in spec.models
        }
    queries = queries_for(loaded.platform)
    vendors = {p.name: p.vendor for p in loaded.platform.spec.pools}
    return lambda: read_loads(client, queries, spec, vendors)


def local_reconciler(
    loaded: LoadedPlatform,
    plan: CapacityPlan,
    state: Path,
    up_info: dict | None,
    *,
    prometheus: str | None,
    audit_path: Path | None,
    dry_run: bool,
    metrics: ReconcilerMetrics | None,
    log: Callable[[str], None],
) -> Wired:
    name = loaded.platform.metadata.name
    if up_info is None or not up_info.get("adminTokenFile"):
        raise RemoteError(
            f"no `xpool up` is running for {name} (state dir {state}); start one with "
            "`xpool up FILE` or pass --state-dir"
        )
    try:
        token = Path(up_info["adminTokenFile"]).read_text().strip()
    except OSError as exc:
        raise RemoteError(
            f"cannot read the admin token {up_info['adminTokenFile']}: {exc}"
        ) from None
    spec = policy_spec(loaded.platform, plan)
    url = prometheus_url(loaded, prometheus, up_info)
    audit = audit_path or state / AUDIT_FILE
    target = LocalTarget(str(up_info["gateway"]), token)
    log_audit = AuditLog(None if dry_run else audit)
    reconciler = Reconciler(
        spec,
        target,
        loads=load_reader(loaded, spec, url),
        store=FileMemoryStore(state / MEMORY_FILE),
        audit=log_audit,
        rollouts=RolloutController(
            loaded.platform,
            FileRolloutStore(state),
            GateReader(prometheus_client(loaded, url), min_window=5.0),  # 1 s scrapes
            target.set_weights,
            log_audit.write,
            log,
        ),
        metrics=metrics,
        dry_run=dry_run,
        log=log,
    )
    leader = FileLeadership(state / LOCK_FILE, identity=default_identity())
    return Wired(reconciler, leader, audit, url)


class VolcanoQueueSink:
    """Queue shares as whole accelerators -> the Queues' resources (with the pool's matching
    CPU and memory, as `xpool render` computes them), set under field manager
    `xpool-reconciler`."""

    def __init__(self, kube: KubeClient, platform: Platform) -> None:
        self.kube = kube
        self.platform = platform

    def apply(self, shares: list[SetQueue]) -> list[QueueChange]:
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
        return [QueueChange(named[c.name][0], c.name, c.before, c.after) for c in changes]


def kube_reconciler(
    loaded: LoadedPlatform,
    plan: CapacityPlan,
    *,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    prometheus: str | None,
    audit_path: Path | None,
    dry_run: bool,
    metrics: ReconcilerMetrics | None,
    log: Callable[[str], None],
) -> Wired:
    """Kubernetes: instances through the remote Xinference and the `xpool-routes` ConfigMap
    every gateway replica reads; queue shares; memory in a ConfigMap; a Lease for leadership.
    The audit log goes to `audit_path`, or as JSON lines to stderr (the pod's log)."""
    platform = loaded.platform
    ns = namespace or (platform.spec.kubernetes.namespace if platform.spec.kubernetes else "xpool")
    kube = KubeClient.connect(Connection(kubeconfig, context), log=log)
    client = XinferenceClient(platform.spec.xinference.endpoint, api_key_from_env(platform))
    specs = launch_specs(platform, plan, loaded.architectures)
    by_version, _ = gateway_wants(platform, specs, wants_for(platform, specs, at_least=1))
    spec = policy_spec(platform, plan)
    url = prometheus_url(loaded, prometheus, None)
    target = KubeTarget(kube, ns, client, by_version)
    log_audit = AuditLog(None if dry_run else audit_path, stream=None if audit_path else sys.stderr)
    reconciler = Reconciler(
        spec,
        target,
        loads=load_reader(loaded, spec, url),
        store=ConfigMapMemoryStore(kube, ns),
        audit=log_audit,
        queues=VolcanoQueueSink(kube, platform) if platform.spec.kubernetes else None,
        rollouts=RolloutController(
            platform,
            ConfigMapRolloutStore(kube, ns),
            GateReader(prometheus_client(loaded, url)),
            target.set_weights,
            log_audit.write,
            log,
        ),
        metrics=metrics,
        dry_run=dry_run,
        log=log,
    )
    leader = LeaseLeadership(kube, ns, identity=default_identity())
    return Wired(reconciler, leader, audit_path or Path("-"), url)
