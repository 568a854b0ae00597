"""`xpool status FILE`: flags -> StatusOptions -> xpool.actions.status -> tables (or -o json|yaml).

Models (instances ready, loading, draining; where they run; QPS and saturation), tiers
(accelerators used against the deserved share) and the reconciler's last actions.
"""

from __future__ import annotations

import time

import click

from xpool.actions.runtime import Runtime
from xpool.actions.status import StatusOptions, status
from xpool.cli.options import state_dir_option
from xpool.cli.output import emit_data, emit_table, note, output_option


@click.command("status")
@click.argument("file", type=click.Path(dir_okay=False))
@state_dir_option
@output_option()
def status_command(file: str, state_dir: str | None, output: str) -> None:
    """Per model: instances (ready, loading, draining), where they run, tier usage vs share."""
    data = status(StatusOptions(file, state_dir), Runtime())
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
