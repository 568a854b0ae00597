"""Builders: the values every template lays out, computed from the platform and its plan.

Templates only place values in YAML; each object group has its builder module, and the
numbers are the planner's: a tier's accelerators on a pool come from `tier_pool_shares`
(capacity/borrowing.py), exactly what `xpool plan` prints. See docs/scheduling.md for why each
value is what it is.

Apply order (`Item.order`; objects of one group keep the order below):
  0 Namespace                     this module
  1 PriorityClasses               build_queues.py
  2 ServiceAccounts and RBAC      build_rbac.py
    NetworkPolicies               build_network.py
  3 ConfigMaps                    build_configmaps.py
  4 Queues                        build_queues.py
  5 workloads and Services       build_services.py
  6 Worker Jobs                   build_workers.py
  7 the reconciler's CronJob      build_reconciler.py
  8 monitoring                    build_monitoring.py
"""

from __future__ import annotations

from typing import Any

from xpool.config.models import Platform
from xpool.config.mounted import Mount
from xpool.render.build_configmaps import build_configmaps, launch_configmaps
from xpool.render.build_context import BuildContext
from xpool.render.build_monitoring import build_monitoring
from xpool.render.build_network import build_network_policies
from xpool.render.build_queues import build_priority_classes, build_queues
from xpool.render.build_rbac import build_rbac
from xpool.render.build_reconciler import build_reconciler
from xpool.render.build_services import build_services
from xpool.render.build_workers import build_workers
from xpool.render.items import Built


def build(
    platform: Platform,
    mount: Mount,
    specs: list[dict[str, Any]],
) -> Built:
    ctx = BuildContext.of(platform, mount)
    out = Built()
    launch_chunks = launch_configmaps(specs)
    _namespace(ctx, out)
    build_priority_classes(ctx, out)
    build_rbac(ctx, out)
    build_network_policies(ctx, out)
    build_configmaps(ctx, out, mount.data, launch_chunks)
    build_queues(ctx, out)
    build_services(ctx, out)
    build_workers(ctx, out)
    build_reconciler(ctx, out)
    build_monitoring(ctx, out)
    return out


def _namespace(ctx: BuildContext, out: Built) -> None:
    out.add(0, "Namespace", "namespace.yaml.j2", name=ctx.namespace, labels=ctx.labels("namespace"))
