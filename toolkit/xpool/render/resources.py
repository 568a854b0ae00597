"""A pool's accelerators as Kubernetes resource lists, with the matching CPU and memory.

Queues (deserved, guarantee, capability) and worker pods (requests, limits) use the same
lists, and so does the reconciler when it moves queue shares (actions/reconciler_wiring.py), so that
what it sets agrees with what `xpool render` wrote.
"""

from __future__ import annotations

from xpool.config.models import Pool
from xpool.config.quantities import memory_bytes
from xpool.render.quantities import format_cpu, format_memory

DEFAULT_RESOURCE = {"nvidia": "nvidia.com/gpu", "ascend": "huawei.com/Ascend910"}


def resource_name(pool: Pool) -> str:
    return pool.resource_name or DEFAULT_RESOURCE[pool.vendor]


def pool_resources(pool: Pool, accelerators: int) -> dict[str, int | str]:
    """`accelerators` of `pool` with the matching share of its nodes' CPU and memory."""
    per_node = pool.accelerators_per_node
    millicores = accelerators * pool.cpu_per_node * 1000 // per_node
    memory = accelerators * memory_bytes(pool.memory_per_node) // per_node
    return {
        resource_name(pool): accelerators,
        "cpu": format_cpu(millicores),
        "memory": format_memory(memory),
    }
