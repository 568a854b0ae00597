"""The gateway's wiring from the platform file: the routing table with every declared model
and its canary weights, tier ranks, per-model limits for the admin controller, and the admin
token file of `xpool up`."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xpool.gateway.routing import RoutingTable
from xpool.render.launch import MODEL_TYPES


@dataclass(frozen=True)
class ModelLimits:
    """What the admin controller checks and reports per model."""

    tier: str
    min: int
    max: int
    request_limit: int | None
    pool: str = "local"


TOKEN_FILE = "admin.token"


def write_token(state_dir: Path) -> Path:
    """A fresh random admin token in `state_dir/admin.token`, readable by this user only."""
    path = state_dir / TOKEN_FILE
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return path


def tier_ranks(platform: Any) -> dict[str, int]:
    """Tier name -> rank, 0 for the highest priority."""
    ordered = sorted(platform.spec.tiers, key=lambda t: -t.priority)
    return {t.name: i for i, t in enumerate(ordered)}


def table_for(platform: Any, *, seed: int | None = None) -> RoutingTable:
    gw = platform.spec.gateway
    table = RoutingTable(
        tier_ranks=tier_ranks(platform),
        max_inflight=gw.max_inflight,
        tier_headroom=gw.tier_headroom,
        seed=seed,
    )
    for model in platform.spec.models:
        table.declare(
            model.name,
            MODEL_TYPES.get(model.type, model.type),
            model.tier,
            model.version_weights(),
        )
    return table


def model_limits(platform: Any) -> dict[str, ModelLimits]:
    """Per model: tier, instances.min/max, the per-instance request limit (context.batch,
    the launch spec's request_limits) and its pool when the platform file allows only one
    (else `local`: the gateway does not know the planner's placement)."""
    out = {}
    for m in platform.spec.models:
        pools = platform.model_pools(m)
        pool = pools[0].name if len(pools) == 1 else "local"
        out[m.name] = ModelLimits(m.tier, m.instances.min, m.instances.max, m.context.batch, pool)
    return out
