"""`xpool status FILE`: per model, its instances as Xinference reports them, where they run,
and each tier's usage against its share.

The endpoint is the remote `xinference.endpoint`, or for `embedded` the Xinference that a
running `xpool up` started (found through its up state). Instances are the model UIDs of
xpool's scheme `<model>--<version>--<n>`; usage counts instances x TP accelerators against
the tier's deserved accelerators from the planner. `draining` and per-instance in-flight counts
come from the running `xpool up`'s gateway (its loopback admin API) when there is one; QPS
from the Prometheus the reconciler reads, when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xpool.actions.reconciler_wiring import AUDIT_FILE, load_reader, prometheus_url
from xpool.actions.runtime import Runtime
from xpool.adapters.xinference import Instance, api_key_from_env
from xpool.capacity.plan import CapacityPlan
from xpool.config.models import Model
from xpool.errors import RemoteError
from xpool.local.admin import running_instances
from xpool.local.up_state import UpState, read_up_state, require_up_state, state_dir_for
from xpool.policy.spec import policy_spec
from xpool.policy.state import LoadObs
from xpool.reconcile.audit import read_audit
from xpool.render.instances import parse_uid
from xpool.resolve import ResolvedPlatform, resolve_platform

LAST_ACTIONS = 8

Rows = list[tuple[Instance, str]]  # (instance, its version)


@dataclass(frozen=True)
class StatusOptions:
    file: str
    state_dir: str | None = None  # of the `xpool up` to inspect


def status(options: StatusOptions, runtime: Runtime) -> dict[str, Any]:
    """The status document `-o json` prints (the tables show the same data)."""
    resolved = resolve_platform(options.file)
    state = state_dir_for(resolved.name, options.state_dir)
    up = read_up_state(state)
    endpoint = resolved.platform.spec.xinference.endpoint
    if endpoint == "embedded":
        endpoint = (up or require_up_state(resolved.name, state)).endpoint
    with runtime.xinference(endpoint, api_key_from_env(resolved.platform)) as client:
        version = client.check_version()
        running = client.instances()
    gateway = {row["uid"]: row for row in running_instances(up)[1]}
    by_model = _by_model(resolved, running)
    models = [
        _model_row(resolved, m, by_model[m.name], gateway) for m in resolved.platform.spec.models
    ]
    loads, load_error = _loads(resolved, up, runtime)
    for row in models:
        _add_load(row, loads.get(row["model"]))
    return {
        "platform": resolved.name,
        "endpoint": endpoint,
        "xinferenceVersion": version,
        "models": models,
        "tiers": _tier_rows(resolved.plan, _used(models, by_model)),
        "loadError": load_error,
        "lastActions": _last_actions(state),
    }


def _by_model(resolved: ResolvedPlatform, running: list[Instance]) -> dict[str, Rows]:
    """Xinference's instances of the file's model versions, by model."""
    specs = {(s["model"], s["version"]) for s in resolved.launch_specs}
    by_model: dict[str, Rows] = {m.name: [] for m in resolved.platform.spec.models}
    for inst in running:
        parsed = parse_uid(inst.uid)
        if parsed and parsed[0] in by_model and (parsed[0], parsed[1]) in specs:
            by_model[parsed[0]].append((inst, parsed[1]))
    return by_model


def _instance_row(inst: Instance, version: str, gateway: dict[str, dict]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "uid": inst.uid,
        "version": version,
        "status": inst.status,
        "workers": list(inst.workers),
    }
    seen = gateway.get(inst.uid)
    if seen is not None:
        row.update(inflight=seen["inflight"], draining=seen["draining"])
    if inst.error:
        row["error"] = inst.error
    return row


def _model_row(
    resolved: ResolvedPlatform, model: Model, rows: Rows, gateway: dict[str, dict]
) -> dict[str, Any]:
    placed = resolved.plan.placements.get(model.name)
    pool = placed.pool if placed else resolved.platform.model_pools(model)[0].name
    tp = placed.tp if placed and placed.tp else 1
    return {
        "model": model.name,
        "tier": model.tier,
        "pool": pool,
        "tp": tp,
        "min": model.instances.min,
        "max": model.instances.max,
        "limit": model.context.batch,
        "ready": sum(i.ready for i, _ in rows),
        "loading": sum(i.loading for i, _ in rows),
        "draining": sum(bool(gateway.get(i.uid, {}).get("draining")) for i, _ in rows),
        "failed": sum(i.status == "ERROR" for i, _ in rows),
        "instances": [_instance_row(i, v, gateway) for i, v in rows],
    }


def _used(models: list[dict[str, Any]], by_model: dict[str, Rows]) -> dict[tuple[str, str], int]:
    """Accelerators held per (tier, pool): live (ready or loading) instances x TP."""
    used: dict[tuple[str, str], int] = {}
    for row in models:
        live = sum(1 for i, _ in by_model[row["model"]] if i.ready or i.loading)
        key = (row["tier"], row["pool"])
        used[key] = used.get(key, 0) + live * row["tp"]
    return used


def _tier_rows(plan: CapacityPlan, used: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    tiers = []
    for t in plan.tiers:
        in_use = used.get((t.tier, t.pool), 0)
        tiers.append(
            {
                "tier": t.tier,
                "pool": t.pool,
                "share": t.share,
                "deservedAccelerators": t.deserved_accelerators,
                "usedAccelerators": in_use,
                "borrowedAccelerators": max(0, in_use - t.deserved_accelerators),
            }
        )
    return tiers


def _loads(
    resolved: ResolvedPlatform, up: UpState | None, runtime: Runtime
) -> tuple[dict[str, LoadObs], str | None]:
    """QPS per model from the Prometheus the reconciler reads, when there is one."""
    url = prometheus_url(resolved.platform, None, up)
    if url is None:
        return {}, None
    try:
        spec = policy_spec(resolved.platform, resolved.plan)
        return load_reader(resolved.loaded, spec, url, runtime)(), None
    except RemoteError as exc:
        return {}, str(exc)


def _add_load(row: dict[str, Any], load: LoadObs | None) -> None:
    row["qps"] = None if load is None or load.qps is None else round(load.qps, 3)
    inflight = sum(i.get("inflight", 0) for i in row["instances"] if not i.get("draining"))
    ready, limit = row["ready"], row["limit"]
    row["saturation"] = round(inflight / (ready * limit), 3) if ready and limit else None


def _last_actions(state: Path) -> list[dict[str, Any]]:
    return [
        {k: r.get(k) for k in ("time", "action", "subject", "reason")}
        for r in read_audit(state / AUDIT_FILE, last=LAST_ACTIONS)
    ]
