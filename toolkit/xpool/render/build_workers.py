"""The Xinference workers: one Volcano Job per tier and pool holding the tier's deserved share,
and for a non-preemptible borrowing tier a second, preemptable "burst" Job that starts at 0
workers and holds what the tier borrows (capacity/borrowing.py says why).

Each Job's tasks cut its accelerators into worker sizes that pack onto the pool's nodes
(capacity/packing.py).
"""

from __future__ import annotations

from typing import Any

from xpool.capacity.packing import worker_sizes
from xpool.config.models import Pool, Tier
from xpool.render.build_context import BuildContext
from xpool.render.items import Built
from xpool.render.object_names import (
    SUPERVISOR,
    SUPERVISOR_PORT,
    WORKER,
    WORKER_METRICS_PORT,
    job_name,
    priority_class_name,
    queue_name,
    worker_task_name,
)
from xpool.render.resources import pool_resources, resource_name

ORDER = 6  # after the queues, priority classes and the supervisor they need
ASCEND_IMAGE_FALLBACK = "xinference-ascend:v4.1.0"


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
    for pool in spec.pools:
        image = (
            spec.images.xinference.nvidia
            if pool.vendor == "nvidia"
            else ascend_image or ASCEND_IMAGE_FALLBACK
        )
        for tier in ctx.tiers:
            mine = ctx.shares[pool.name][tier.name]
            for burst, accelerators in ((False, mine.deserved), (True, mine.burst)):
                if accelerators:
                    _worker_job(ctx, out, tier, pool, image, burst, accelerators)


def _worker_job(
    ctx: BuildContext,
    out: Built,
    tier: Tier,
    pool: Pool,
    image: str,
    burst: bool,
    accelerators: int,
) -> None:
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
            {
                "name": "POD_IP",
                "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
            },
            {"name": "XINFERENCE_HOME", "value": "/data"},
            {"name": "XPOOL_TIER", "value": tier.name},
            {"name": "XPOOL_POOL", "value": pool.name},
        ],
        tasks=_tasks(pool, accelerators, burst),
    )


def _tasks(pool: Pool, accelerators: int, burst: bool) -> list[dict[str, Any]]:
    """One task per worker size; a burst group's tasks start at 0 replicas."""
    return [
        {
            "name": worker_task_name(size),
            "replicas": 0 if burst else count,
            "resources": {
                "requests": pool_resources(pool, size),
                "limits": {
                    resource_name(pool): size,
                    "memory": pool_resources(pool, size)["memory"],
                },
            },
        }
        for size, count in worker_sizes(accelerators, pool.accelerators_per_node)
    ]
