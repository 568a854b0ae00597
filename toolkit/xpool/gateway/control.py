"""Manual scaling and canary weights behind the gateway's admin endpoint (`xpool scale`).

Scale up: launch the next free UIDs `<model>--<version>--<n>` through `ensure_instances` and
route to each as it becomes ready. Scale down: mark the highest-n instances draining (no new
requests), wait until their in-flight requests (streams included) finished or `drainTimeout`
passed (logged and counted in `xpool_gateway_drain_timeouts_total`), then terminate them
through the Xinference adapter and forget them. One scale runs at a time.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from xpool.adapters.xinference import (
    Want,
    XinferenceClient,
    ensure_instances,
    instance_uid,
    parse_uid,
)
from xpool.gateway.app import AdminError
from xpool.gateway.metrics import GatewayMetrics
from xpool.gateway.routing import RoutingTable, version_weights
from xpool.render.launch import MODEL_TYPES


@dataclass(frozen=True)
class PinnedWant(Want):
    """A Want for exactly the given UIDs (not 1..count)."""

    pinned: tuple[str, ...] = ()

    def uids(self) -> list[str]:
        return list(self.pinned)


@dataclass(frozen=True)
class ModelLimits:
    tier: str
    min: int
    max: int
    request_limit: int | None


class Scaler:
    def __init__(
        self,
        client: XinferenceClient,
        table: RoutingTable,
        metrics: GatewayMetrics,
        wants: dict[tuple[str, str], Want],
        limits: dict[str, ModelLimits],
        *,
        drain_timeout: float,
        launch_timeout: float = 600.0,
        log: Callable[[str], None] = lambda _m: None,
        on_launched: Callable[[str], None] = lambda _u: None,
        on_terminated: Callable[[str], None] = lambda _u: None,
    ) -> None:
        self.client = client
        self.table = table
        self.metrics = metrics
        self.wants = wants  # (model, version) -> Want (registration + launch spec)
        self.limits = limits
        self.drain_timeout = drain_timeout
        self.launch_timeout = launch_timeout
        self.log = log
        self.on_launched = on_launched
        self.on_terminated = on_terminated
        self._lock = threading.Lock()

    def _version(self, model: str, version: str | None) -> str:
        versions = [v for (m, v) in self.wants if m == model]
        if not versions:
            known = ", ".join(sorted({m for m, _ in self.wants}))
            raise AdminError(404, f"unknown model '{model}' (models: {known})")
        if version is None:
            return versions[0]
        if version not in versions:
            raise AdminError(
                404, f"model '{model}' has no version '{version}' ({', '.join(versions)})"
            )
        return version

    def scale(
        self, model: str, instances: int, *, force: bool = False, version: str | None = None
    ) -> dict[str, Any]:
        version = self._version(model, version)
        lim = self.limits[model]
        if instances < 0:
            raise AdminError(400, "instances must be 0 or more")
        if not force and not lim.min <= instances <= lim.max:
            raise AdminError(
                422,
                f"spec.models[{model}].instances: {instances} is outside min..max "
                f"({lim.min}..{lim.max}); pass --force to go beyond",
            )
        with self._lock:
            started = time.monotonic()
            mine = [s for s in self.table.slots(model) if s.version == version and not s.draining]
            current = sorted(mine, key=lambda s: parse_uid(s.uid)[2] if parse_uid(s.uid) else 0)
            launched: list[str] = []
            terminated: list[str] = []
            timed_out: list[str] = []
            if instances > len(current):
                launched = self._scale_up(model, version, instances - len(current))
            elif instances < len(current):
                victims = [s.uid for s in current[instances:]]
                terminated, timed_out = self._drain_and_terminate(model, victims)
            return {
                "model": model,
                "version": version,
                "instances": instances,
                "launched": launched,
                "terminated": terminated,
                "drainTimeouts": timed_out,
                "seconds": round(time.monotonic() - started, 3),
            }

    def _scale_up(self, model: str, version: str, count: int) -> list[str]:
        used = {s.uid for s in self.table.slots()} | {i.uid for i in self.client.instances()}
        uids: list[str] = []
        n = 1
        while len(uids) < count:
            uid = instance_uid(model, version, n)
            if uid not in used:
                uids.append(uid)
            n += 1
        want = self.wants[(model, version)]
        pinned = PinnedWant(**{**want.__dict__, "count": len(uids)}, pinned=tuple(uids))
        lim = self.limits[model]

        def ready(w: Want, uid: str) -> None:
            self.table.add(
                model, w.model_type, uid, version=version, tier=lim.tier, limit=lim.request_limit
            )
            self.on_launched(uid)

        ensure_instances(
            self.client, [pinned], timeout=self.launch_timeout, progress=self.log, on_ready=ready
        )
        return uids

    def _drain_and_terminate(self, model: str, uids: list[str]) -> tuple[list[str], list[str]]:
        for uid in uids:
            self.table.mark_draining(uid)
            self.log(f"{uid}: draining ({self.table.inflight(uid)} in flight)")
        deadline = time.monotonic() + self.drain_timeout
        timed_out = []
        for uid in uids:
            if not self.table.wait_drained(uid, max(0.0, deadline - time.monotonic())):
                left = self.table.inflight(uid)
                self.log(
                    f"{uid}: drainTimeout ({self.drain_timeout:g} s) passed with {left} "
                    "request(s) in flight; terminating anyway"
                )
                self.metrics.drain_timeouts.labels(model).inc()
                timed_out.append(uid)
        for uid in uids:
            self.client.terminate(uid, quiet=True)
            self.table.remove(uid)
            self.on_terminated(uid)
            self.log(f"{uid}: terminated")
        return uids, timed_out

    def set_weights(self, model: str, weights: dict[str, float]) -> dict[str, Any]:
        versions = [v for (m, v) in self.wants if m == model]
        if not versions:
            raise AdminError(404, f"unknown model '{model}'")
        unknown = sorted(set(weights) - set(versions))
        if unknown:
            raise AdminError(
                404, f"model '{model}' has no version {', '.join(unknown)} ({', '.join(versions)})"
            )
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise AdminError(400, "weights must be >= 0 and not all 0")
        self.table.set_weights(model, weights)
        self.log(f"{model}: canary weights {weights}")
        return {"model": model, "weights": self.table.weights(model)}


def want_for_version(want: Want, version: str, spec: dict[str, Any]) -> Want:
    return replace(
        want,
        version=version,
        registration=spec["registration"],
        launch=spec["launch"],
        model_type=spec["launch"]["model_type"],
    )


# -- wiring from the platform file -------------------------------------------------------------

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
            version_weights([(v.version, v.weight) for v in model.versions]),
        )
    return table


def model_limits(platform: Any) -> dict[str, ModelLimits]:
    """Per model: tier, instances.min/max and the per-instance request limit (context.batch,
    the launch spec's request_limits)."""
    return {
        m.name: ModelLimits(m.tier, m.instances.min, m.instances.max, m.context.batch)
        for m in platform.spec.models
    }


def gateway_wants(
    platform: Any, specs: list[dict[str, Any]], wants: list[Want]
) -> tuple[dict[tuple[str, str], Want], list[Want]]:
    """Every model version as a Want (for `xpool scale`), and the canary versions to launch
    besides the stable ones: later versions whose platform-file weight is above 0 (one
    instance each, or instances.min)."""
    stable = {w.model: w for w in wants}
    minimum = {m.name: m.instances.min for m in platform.spec.models}
    weights = {
        m.name: version_weights([(v.version, v.weight) for v in m.versions])
        for m in platform.spec.models
    }
    by_version: dict[tuple[str, str], Want] = {}
    canaries: list[Want] = []
    for spec in specs:
        base = stable.get(spec["model"])
        if base is None:
            continue
        key = (spec["model"], spec["version"])
        want = (
            base
            if spec["version"] == base.version
            else want_for_version(base, spec["version"], spec)
        )
        by_version[key] = replace(want, count=0)
        if spec["version"] != base.version and weights[spec["model"]].get(spec["version"], 0) > 0:
            canaries.append(replace(want, count=max(1, minimum[spec["model"]])))
    return by_version, canaries
