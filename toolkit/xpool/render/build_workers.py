"""The Xinference workers: one Volcano Job per tier and pool holding the tier's deserved share,
and for a non-preemptible borrowing tier a second, preemptable "burst" Job that starts at 0
workers and holds what the tier borrows (capacity/borrowing.py says why).

Each Job's tasks cut its accelerators into worker sizes that pack onto the pool's nodes, one
task per size (capacity/worker_groups.py, which the reconciler scales by too).

Eviction drains first. Volcano's reclaim and preempt, `kubectl drain` and a deleted pod all
end a worker pod the same way: the kubelet runs every container's preStop hook, then sends
SIGTERM, within the pod's `terminationGracePeriodSeconds`. The Xinference image has no xpool,
so each worker pod carries a second container, `drain`, running the xpool image: its preStop
runs `xpool worker drain` for the pod's IP (the gateways stop routing to the worker's instances
and their requests finish, up to drainTimeout) and touches a file on a volume the two
containers share; the worker's preStop waits for that file, so SIGTERM reaches Xinference only
after the drain. Both hooks start when the pod is deleted. The grace period is drainTimeout plus
a margin for the API calls and Xinference's own stop. A native sidecar (an init container
with restartPolicy Always) would not do: the kubelet stops those only after the main
containers, so its hook would run after the worker it should protect had stopped.
The drain container alone mounts a token (ServiceAccount xpool-worker-drain: get and patch of
the routes ConfigMap, list of Leases); its requests come out of the worker's, so a pod asks
for exactly the share the queue holds.
"""

from __future__ import annotations

import math
from typing import Any

from xpool.capacity.worker_groups import WorkerGroup, worker_groups
from xpool.config.models import Pool, Tier
from xpool.config.quantities import memory_bytes
from xpool.render.build_context import BuildContext
from xpool.render.items import Built
from xpool.render.object_names import (
    DRAIN_MARGIN_SECONDS,
    DRAIN_TIMEOUT_ANNOTATION,
    SUPERVISOR,
    SUPERVISOR_PORT,
    WORKER,
    WORKER_DRAIN,
    WORKER_METRICS_PORT,
    job_name,
    priority_class_name,
    queue_name,
)
from xpool.render.quantities import format_cpu, format_memory
from xpool.render.resources import resource_name

ORDER = 6  # after the queues, priority classes and the supervisor they need
ASCEND_IMAGE_FALLBACK = "xinference-ascend:v4.1.0"
DRAIN_DIR = "/var/run/xpool"  # the emptyDir both containers mount
DRAINED_FILE = f"{DRAIN_DIR}/drained"
SIDECAR_MILLICORES = 100
SIDECAR_MEMORY = 256 * 2**20
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # where in-cluster clients look


def node_selector(pool: Pool) -> dict[str, str]:
    return dict(pool.node_labels) if pool.node_labels else {"gpu-type": pool.vendor}


def build_workers(ctx: BuildContext, out: Built) -> None:
    spec = ctx.spec
    ascend_image = spec.images.xinference.ascend
    if ascend_image is None and any(p.vendor == "ascend" for p in spec.pools):
        out.notes.append(
            "spec.images.xinference.ascend is not set: Xinference publishes no Ascend image, "
            f"so workers use '{ASCEND_IMAGE_FALLBACK}', which you build "
            "(docs/scheduling.md, Images)"
        )
    jobs: dict[tuple[str, str, bool], list[WorkerGroup]] = {}
    for group in worker_groups(ctx.platform):
        jobs.setdefault((group.pool, group.tier, group.burst), []).append(group)
    for pool in spec.pools:
        image = (
            spec.images.xinference.nvidia
            if pool.vendor == "nvidia"
            else ascend_image or ASCEND_IMAGE_FALLBACK
        )
        for tier in ctx.tiers:
            for burst in (False, True):
                if tasks := jobs.get((pool.name, tier.name, burst)):
                    _worker_job(ctx, out, tier, pool, image, tasks)


def _worker_job(
    ctx: BuildContext,
    out: Built,
    tier: Tier,
    pool: Pool,
    image: str,
    tasks: list[WorkerGroup],
) -> None:
    burst = tasks[0].burst
    accelerators = sum(t.size * (t.max_replicas if burst else t.replicas) for t in tasks)
    pod_labels = ctx.labels(WORKER, tier=tier.name, pool=pool.name)
    preemptable = tier.preemptible or burst
    out.add(
        ORDER,
        "Job",
        "worker-job.yaml.j2",
        name=job_name(tier, pool, burst),
        namespace=ctx.namespace,
        labels=pod_labels,
        pod_labels=pod_labels,
        comment=(
            f"Xinference workers of tier {tier.name} on {pool.name}: "
            + (
                f"borrowed capacity (up to {accelerators} accelerators), 0 workers "
                "until the reconciler scales them; preemptable so reclaim can "
                "take them back."
                if burst
                else f"{accelerators} accelerators, the tier's deserved share."
            )
        ),
        queue=queue_name(ctx.platform, tier, pool),
        priority_class=priority_class_name(ctx.platform, tier),
        min_available=0 if burst else 1,
        preemptable="true" if preemptable else "false",
        node_selector=node_selector(pool),
        image=image,
        metrics_port=WORKER_METRICS_PORT,
        command=[
            "sh",
            "-c",
            (
                f"exec xinference-worker -e http://{SUPERVISOR}.{ctx.namespace}.svc:"
                f'{SUPERVISOR_PORT} -H "$POD_IP" '
                f"--metrics-exporter-port {WORKER_METRICS_PORT}"
            ),
        ],
        env=[
            _POD_IP,
            {"name": "XINFERENCE_HOME", "value": "/data"},
            {"name": "XPOOL_TIER", "value": tier.name},
            {"name": "XPOOL_POOL", "value": pool.name},
        ],
        tasks=[{"name": t.task, "replicas": t.replicas, **_split(pool, t.size)} for t in tasks],
        **_drain(ctx),
    )


_POD_IP = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}

# After the drain, SIGINT to every process of the container (`-1`: all but PID 1, then PID 1):
# Xinference's worker unregisters from the supervisor only on SIGINT (core/worker.py, its
# signal_handler calls remove_worker); after the kubelet's bare SIGTERM the supervisor keeps
# listing the gone worker, and fails GET /v1/workers, until its health check gives up. The
# sleep lets the unregistration finish before SIGTERM.
_WORKER_PRE_STOP = (
    f"until [ -e {DRAINED_FILE} ]; do sleep 1; done; "
    "kill -INT -1 2>/dev/null; kill -INT 1 2>/dev/null; sleep 5"
)


def _drain(ctx: BuildContext) -> dict[str, Any]:
    """The template values of the drain container and of the worker's wait (module docstring)."""
    drain_timeout = math.ceil(ctx.spec.autoscaling.drain_timeout)
    drain = (
        f'exec xpool worker drain {ctx.platform_path} --worker "$POD_IP" '
        f"--done-file {DRAINED_FILE} --log-format json >/proc/1/fd/1 2>/proc/1/fd/2"
    )
    return {
        "service_account": WORKER_DRAIN,
        "termination_grace": drain_timeout + DRAIN_MARGIN_SECONDS,
        "drain_timeout": drain_timeout,
        "drain_timeout_annotation": DRAIN_TIMEOUT_ANNOTATION,
        "worker_pre_stop": ["sh", "-c", _WORKER_PRE_STOP],
        "drain_dir": DRAIN_DIR,
        "drain_image": ctx.spec.images.xpool,
        # its main process only waits for SIGTERM; the work is in its preStop hook, whose
        # output goes to that process's, so `kubectl logs POD -c drain` shows what it did
        "drain_command": ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1; done"],
        "drain_pre_stop": ["sh", "-c", drain],
        "drain_env": [_POD_IP, *ctx.secret_env],
        "drain_mounts": [
            *ctx.config_mount,
            {"name": "drain", "mountPath": DRAIN_DIR},
            {"name": "kube-api-access", "mountPath": TOKEN_DIR, "readOnly": True},
        ],
        "drain_volumes": [
            *ctx.config_volume,
            {"name": "drain", "emptyDir": {}},
            {"name": "kube-api-access", "projected": {"sources": _token_sources()}},
        ],
    }


def _token_sources() -> list[dict[str, Any]]:
    """What the kubelet mounts for an automounted token, here for the drain container only."""
    return [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {
            "downwardAPI": {
                "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
            }
        },
    ]


def _split(pool: Pool, size: int) -> dict[str, Any]:
    """A worker pod's share of `size` accelerators, cut between the worker and the drain
    container (at most a tenth of the share for the latter), so the pod asks for the share."""
    millicores = size * pool.cpu_per_node * 1000 // pool.accelerators_per_node
    memory = size * memory_bytes(pool.memory_per_node) // pool.accelerators_per_node
    drain_cpu = min(SIDECAR_MILLICORES, millicores // 10)
    drain_memory = min(SIDECAR_MEMORY, memory // 10)
    worker_memory = format_memory(memory - drain_memory)
    return {
        "resources": {
            "requests": {
                resource_name(pool): size,
                "cpu": format_cpu(millicores - drain_cpu),
                "memory": worker_memory,
            },
            "limits": {resource_name(pool): size, "memory": worker_memory},
        },
        "drain_resources": {
            "requests": {"cpu": format_cpu(drain_cpu), "memory": format_memory(drain_memory)},
            "limits": {"memory": format_memory(2 * drain_memory)},
        },
    }
