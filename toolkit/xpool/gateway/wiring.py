"""The gateway's wiring from the platform file: the routing table with every declared model
and its canary weights, tier ranks, per-model limits for the admin controller, the admin
token file of `xpool up`, and the client API keys from the environment."""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xpool.errors import InputError, Problem
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


def client_keys(platform: Any) -> list[str]:
    """The client API keys in the variable spec.gateway.apiKeysEnv names, separated by commas
    (or whitespace, as a Secret file may hold them); none when the file names no variable.
    Exit 2, naming the variable and never a key, when it is unset or a key cannot be sent."""
    name = platform.spec.gateway.api_keys_env
    if name is None:
        return []
    keys = [k for k in re.split(r"[\s,]+", os.environ.get(name, "")) if k]
    if not keys:
        message = f"{name} is not set; export the clients' API keys as {name}, comma-separated"
    elif not all(k.isascii() and k.isprintable() for k in keys):
        message = f"{name} holds a key a header cannot carry; use printable ASCII keys"
    else:
        return keys
    raise InputError([Problem("environment", "spec.gateway.apiKeysEnv", message)])


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
