"""`xpool status FILE`: per model, its instances as Xinference reports them, where they run,
and each tier's usage against its share.

The endpoint is the remote `xinference.endpoint`, or for `embedded` the Xinference that a
running `xpool up` started (found through its state directory). Instances are the model UIDs
of xpool's scheme `<model>--<version>--<n>`; usage counts instances x TP accelerators against
the tier's deserved accelerators from the planner. `draining` and per-instance in-flight counts
come from the running `xpool up`'s gateway (its loopback admin endpoint) when there is one.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from xpool.adapters.xinference import Instance, XinferenceClient, parse_uid
from xpool.cli.output import emit_data, emit_table, note, output_option
from xpool.cli.up import api_key_from_env, gateway_instances, read_up_file, state_dir_for
from xpool.errors import RemoteError
from xpool.policy.spec import policy_spec
from xpool.policy.state import LoadObs
from xpool.reconcile.audit import read_audit
from xpool.reconcile.wiring import AUDIT_FILE, load_reader, prometheus_url
from xpool.render.launch import launch_specs
from xpool.validate import load_and_plan


def _endpoint(platform, state_dir: str | None) -> str:
    endpoint = platform.spec.xinference.endpoint
    if endpoint != "embedded":
        return endpoint
    state: Path = state_dir_for(platform, state_dir)
    info = read_up_file(state)
    if info is None:
        raise RemoteError(
            f"no `xpool up` is running for {platform.metadata.name} (state dir {state}); "
            "start one with `xpool up FILE` or pass --state-dir"
        )
    return str(info["endpoint"])


def collect(file: str, state_dir: str | None) -> dict:
    loaded, plan = load_and_plan(file)
    platform = loaded.platform
    endpoint = _endpoint(platform, state_dir)
    with XinferenceClient(endpoint, api_key_from_env(platform)) as client:
        version = client.check_version()
        running = client.instances()
    specs = {
        (s["model"], s["version"]): s for s in launch_specs(platform, plan, loaded.architectures)
    }
    by_model: dict[str, list[tuple[Instance, str]]] = {m.name: [] for m in platform.spec.models}
    for inst in running:
        parsed = parse_uid(inst.uid)
        if parsed and parsed[0] in by_model and (parsed[0], parsed[1]) in specs:
            by_model[parsed[0]].append((inst, parsed[1]))

    gateway = {i["uid"]: i for i in gateway_instances(platform, state_dir)[1]}
    models = []
    used: dict[tuple[str, str], int] = {}
    for model in platform.spec.models:
        rows = by_model[model.name]
        placed = plan.placements.get(model.name)
        pool = placed.pool if placed else platform.model_pools(model)[0].name
        tp = placed.tp if placed and placed.tp else 1
        live = [i for i, _ in rows if i.ready or i.loading]
        used[(model.tier, pool)] = used.get((model.tier, pool), 0) + len(live) * tp
        models.append(
            {
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
                "instances": [
                    {
                        "uid": i.uid,
                        "version": v,
                        "status": i.status,
                        "workers": list(i.workers),
                        **(
                            {
                                "inflight": gateway[i.uid]["inflight"],
                                "draining": gateway[i.uid]["draining"],
                            }
                            if i.uid in gateway
                            else {}
                        ),
                        **({"error": i.error} if i.error else {}),
                    }
                    for i, v in rows
                ],
            }
        )
    tiers = [
        {
            "tier": t.tier,
            "pool": t.pool,
            "share": t.share,
            "deservedAccelerators": t.deserved_accelerators,
            "usedAccelerators": used.get((t.tier, t.pool), 0),
        }
        for t in plan.tiers
    ]
    for tier in tiers:
        tier["borrowedAccelerators"] = max(
            0, tier["usedAccelerators"] - tier["deservedAccelerators"]
        )
    loads, load_error = _loads(loaded, plan, state_dir)
    for row in models:
        load = loads.get(row["model"])
        row["qps"] = None if load is None or load.qps is None else round(load.qps, 3)
        inflight = sum(i.get("inflight", 0) for i in row["instances"] if not i.get("draining"))
        row["saturation"] = (
            round(inflight / (row["ready"] * row["limit"]), 3)
            if row["ready"] and row["limit"]
            else None
        )
    state = state_dir_for(platform, state_dir)
    return {
        "platform": platform.metadata.name,
        "endpoint": endpoint,
        "xinferenceVersion": version,
        "models": models,
        "tiers": tiers,
        "loadError": load_error,
        "lastActions": [
            {k: r.get(k) for k in ("time", "action", "subject", "reason")}
            for r in read_audit(state / AUDIT_FILE, last=8)
        ],
    }


def _loads(loaded, plan, state_dir: str | None) -> tuple[dict[str, LoadObs], str | None]:
    """QPS per model from the Prometheus the reconciler reads, when there is one."""
    platform = loaded.platform
    url = prometheus_url(loaded, None, read_up_file(state_dir_for(platform, state_dir)))
    if url is None:
        return {}, None
    try:
        return load_reader(loaded, policy_spec(platform, plan), url)(), None
    except RemoteError as exc:
        return {}, str(exc)


@click.command("status")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="State directory of the `xpool up` to inspect (embedded endpoint).",
)
@output_option()
def status_command(file: str, state_dir: str | None, output: str) -> None:
    """Per model: instances (ready, loading, draining), where they run, tier usage vs share."""
    data = collect(file, state_dir)
    if output != "table":
        emit_data(data, output)
        return
    emit_table(
        f"Models ({data['platform']}, Xinference {data['xinferenceVersion']} at {data['endpoint']})",
        [
            "MODEL",
            "TIER",
            "POOL",
            "TP",
            "MIN",
            "READY",
            "LOADING",
            "DRAINING",
            "FAILED",
            "QPS",
            "SATURATION",
            "INSTANCES",
        ],
        [
            [
                m["model"],
                m["tier"],
                m["pool"],
                m["tp"],
                m["min"],
                m["ready"],
                m["loading"],
                m["draining"],
                m["failed"],
                m["qps"],
                m["saturation"],
                " ".join(f"{i['uid']}@{','.join(i['workers']) or '-'}" for i in m["instances"])
                or "-",
            ]
            for m in data["models"]
        ],
    )
    emit_table(
        "Tiers (accelerators: instances x TP vs deserved share)",
        ["TIER", "POOL", "SHARE", "DESERVED", "USED", "BORROWED"],
        [
            [
                t["tier"],
                t["pool"],
                t["share"],
                t["deservedAccelerators"],
                t["usedAccelerators"],
                t["borrowedAccelerators"],
            ]
            for t in data["tiers"]
        ],
    )
    if data["loadError"]:
        note(f"load unknown: {data['loadError']}")
    if data["lastActions"]:
        emit_table(
            "Last reconciler actions",
            ["TIME", "ACTION", "SUBJECT", "REASON"],
            [
                [
                    time.strftime("%H:%M:%S", time.localtime(r["time"] or 0)),
                    r["action"],
                    r["subject"],
                    r["reason"],
                ]
                for r in data["lastActions"]
            ],
        )
