"""ConfigMaps: Volcano's scheduler configuration, the platform file, the launch specs."""

from __future__ import annotations

import json
from typing import Any

from xpool.render.build_context import BuildContext
from xpool.render.environment import policy_text
from xpool.render.items import Built
from xpool.render.object_names import (
    LAUNCH_CONFIGMAP,
    PLATFORM_CONFIGMAP,
    VOLCANO_CONFIGMAP,
    VOLCANO_NAMESPACE,
)

ORDER = 3  # before the workloads that mount or read them
# Kubernetes refuses a ConfigMap over 1 MiB; keep each well below it (YAML quoting adds some).
LAUNCH_CONFIGMAP_BYTES = 768 * 1024


def build_configmaps(
    ctx: BuildContext,
    out: Built,
    platform_files: dict[str, str],
    launch_chunks: list[tuple[str, dict[str, str]]],
) -> None:
    """Volcano's scheduler configuration (hierarchical queues when asked), the platform file
    and the config.json files it names (`platform_files`: `Mount.data`, config/mounted.py),
    and the launch specs split by `launch_configmaps`.

    The scheduler configuration is the cluster's, read by Volcano under its chart's name:
    shared by every platform on the cluster, so it carries no platform's labels and is never
    part of a platform's ApplySet (no prune deletes it from under the scheduler)."""
    ns = ctx.namespace
    conf = "volcano-scheduler-hierarchy.conf" if ctx.kubernetes.queue_hierarchy else None
    labels = ctx.labels("volcano-scheduler")
    del labels["app.kubernetes.io/part-of"]
    out.add(
        ORDER,
        "ConfigMap",
        "configmap.yaml.j2",
        shared=True,
        name=VOLCANO_CONFIGMAP,
        namespace=VOLCANO_NAMESPACE,
        labels=labels,
        comment=(
            "Volcano's scheduler configuration (cluster-wide: it replaces the one the Volcano "
            "chart installs, for every platform on the cluster)."
        ),
        data={"volcano-scheduler.conf": policy_text(conf or "volcano-scheduler.conf")},
    )
    out.add(
        ORDER,
        "ConfigMap",
        "configmap.yaml.j2",
        name=PLATFORM_CONFIGMAP,
        namespace=ns,
        labels=ctx.labels("platform"),
        comment=(
            "The platform file and the config.json files it names; the gateway and the "
            "reconciler read them."
        ),
        data=platform_files,
    )
    for name, data in launch_chunks:
        out.add(
            ORDER,
            "ConfigMap",
            "configmap.yaml.j2",
            name=name,
            namespace=ns,
            labels=ctx.labels("launch-specs"),
            comment="Xinference registration and launch spec per model version (JSON per key).",
            data=data,
        )


def launch_configmaps(specs: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    """Launch specs as ConfigMap data, one key per model version, split into as many
    ConfigMaps (`xpool-launch-specs`, `-1`, `-2`, ...) as the 1 MiB object limit needs."""
    chunks: list[dict[str, str]] = [{}]
    size = 0
    for s in specs:
        key = f"{s['model']}--{s['version']}.json"
        value = json.dumps(
            {k: s[k] for k in ("tier", "pool", "vendor", "registration", "launch")},
            sort_keys=True,
            separators=(",", ":"),
        )
        entry = len(key) + len(value.encode())
        if chunks[-1] and size + entry > LAUNCH_CONFIGMAP_BYTES:
            chunks.append({})
            size = 0
        chunks[-1][key] = value
        size += entry
    return [
        (LAUNCH_CONFIGMAP if i == 0 else f"{LAUNCH_CONFIGMAP}-{i}", data)
        for i, data in enumerate(chunks)
    ]
