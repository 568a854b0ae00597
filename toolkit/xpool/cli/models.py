"""`xpool models list|show FILE`: flags -> options -> xpool.actions.models -> tables.

Without a running gateway, instance counts are "-" and a note on stderr says so. `show
--check` prints the check results, then every failure is one error line and the exit code is
2 (3 when a remote system failed).

`show` prints a list of sections, each built by one function from the same data that `-o json`
prints; a new section is one more function in SHOW_SECTIONS.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click

from xpool.actions.models import ListOptions, ModelsView, ShowOptions, list_models, show_model
from xpool.cli.options import state_dir_option
from xpool.cli.output import emit_data, emit_table, note, output_option

SOURCE_WIDTH = 40
TEMPLATE_WIDTH = 60

Section = tuple[str, Sequence[str], list[list[Any]]]


def short_source(source: str, width: int = SOURCE_WIDTH) -> str:
    """The source, its middle elided when long: `s3://...ls/chat/v2`."""
    if len(source) <= width:
        return source
    scheme, _, rest = source.partition("://")
    keep = max(8, width - len(scheme) - 6)
    return f"{scheme}://...{rest[-keep:]}"


# -- tables ------------------------------------------------------------------------------------


def _num(value: float | None) -> str | None:
    return None if value is None else f"{value:g}"


def _list_rows(data: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for v in data["versions"]:
        counts = v["instances"] or {}
        rows.append(
            [
                v["model"],
                v["version"],
                v["tier"],
                _num(v["weight"]),
                short_source(v["source"]),
                v["weightPrecision"],
                v["parameters"],
                _num(v["measuredQps"]),
                _num(v["measuredTtftMs"]),
                *(counts.get(s) for s in ("ready", "loading", "draining")),
                v["note"],
            ]
        )
    return rows


def _versions_section(data: dict[str, Any]) -> Section:
    m = data["model"]
    return (
        f"Model {m['name']} ({data['platform']}): type {m['type']}, tier {m['tier']}, "
        f"architecture {m['architecture']}",
        ["VERSION", "REGISTERED AS", "WEIGHT", "SOURCE", "PRECISION", "ENGINES", "NOTE"],
        [
            [
                v["version"],
                v["registeredName"],
                _num(v["weight"]),
                v["source"],
                f"{v['weightPrecision']}/kv {v['kvPrecision']}",
                ",".join(f"{k}={e}" for k, e in v["engines"].items()) or None,
                v["note"],
            ]
            for v in m["versions"]
        ],
    )


def _details_rows(v: dict[str, Any]) -> list[list[Any]]:
    meta = v["metadata"]
    rows: list[list[Any]] = [
        ["parameters", meta["parameters"]],
        ["hardware", ", ".join(meta["hardware"]) or None],
    ]
    rows += [
        [f"measured.{k}", _num(x) if not isinstance(x, str) else x]
        for k, x in (meta["measured"] or {}).items()
        if x is not None
    ]
    rows += [[f"label {k}", x] for k, x in meta["labels"].items()]
    rows.append(["sizeBytes", f"{v['sizeBytes']:,}" if v["sizeBytes"] else None])
    rows += [[f"sha256 {name}", digest] for name, digest in v["checksums"].items()]
    template = v["chatTemplate"]
    if template:
        flat = template.replace("\n", "\\n")
        rows.append(
            ["chatTemplate", flat[:TEMPLATE_WIDTH] + ("..." if len(flat) > TEMPLATE_WIDTH else "")]
        )
    return rows


def _details_section(data: dict[str, Any]) -> Section:
    rows = [[v["version"], *row] for v in data["model"]["versions"] for row in _details_rows(v)]
    return ("Version details", ["VERSION", "FIELD", "VALUE"], rows)


def _instances_section(data: dict[str, Any]) -> Section | None:
    if data["gateway"] is None:
        return None
    rows = [
        [i["uid"], v["version"], i["state"], i["inflight"], i["error"]]
        for v in data["model"]["versions"]
        for i in v["instances"]
    ]
    return (
        f"Instances (gateway {data['gateway']})",
        ["UID", "VERSION", "STATE", "INFLIGHT", "ERROR"],
        rows,
    )


def _checks_section(data: dict[str, Any]) -> Section | None:
    versions = [v for v in data["model"]["versions"] if "check" in v]
    if not versions:
        return None
    rows = []
    for v in versions:
        c = v["check"]
        result = "FAILED (see the error below)" if "error" in c else c["note"]
        checked = c["checked"] and "error" not in c
        rows.append(
            [
                v["version"],
                c["scheme"],
                result,
                c["files"] if checked else None,
                f"{c['totalBytes']:,}" if checked else None,
                c["checksumsVerified"] if checked else None,
            ]
        )
    return (
        "Source checks",
        ["VERSION", "SCHEME", "RESULT", "FILES", "BYTES", "CHECKSUMS VERIFIED"],
        rows,
    )


def _history_section(data: dict[str, Any]) -> Section | None:
    runs = data["model"].get("history") or []
    if not runs:
        return None
    rows = [
        [
            datetime.fromtimestamp(e["time"], UTC).strftime("%Y-%m-%d %H:%M:%S"),
            f"{run['from']} -> {run['to']}",
            e["event"],
            f"{e['weight']:g}%",
            e["reason"],
        ]
        for run in runs
        for e in run["events"]
    ]
    return ("Rollout history (UTC)", ["TIME", "ROLLOUT", "EVENT", "CANARY", "REASON"], rows)


SHOW_SECTIONS: tuple[Callable[[dict[str, Any]], Section | None], ...] = (
    _versions_section,
    _details_section,
    _instances_section,
    _checks_section,
    _history_section,
)


# -- commands ----------------------------------------------------------------------------------


def _no_gateway(view: ModelsView) -> None:
    note(
        f"note: no gateway answered for {view.data['platform']} (state dir "
        f"{view.state_dir}): instance counts are unknown ('-'); `xpool up FILE` runs one"
    )


@click.group("models")
def models_group() -> None:
    """Model versions: sources, metadata, weights, and where they run."""


@models_group.command("list")
@click.argument("file", type=click.Path(dir_okay=False))
@state_dir_option
@output_option()
def list_command(file: str, state_dir: str | None, output: str) -> None:
    """One row per model version, with instance counts from the running gateway."""
    view = list_models(ListOptions(file, state_dir))
    if view.gateway is None:
        _no_gateway(view)
    if output != "table":
        emit_data(view.data, output)
        return
    emit_table(
        f"Model versions ({view.data['platform']})",
        [
            "MODEL",
            "VERSION",
            "TIER",
            "WEIGHT",
            "SOURCE",
            "PRECISION",
            "PARAMS",
            "QPS",
            "TTFT_MS",
            "READY",
            "LOADING",
            "DRAINING",
            "NOTE",
        ],
        _list_rows(view.data),
    )


@models_group.command("show")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("model")
@click.option(
    "--check",
    is_flag=True,
    help="Check each version's source (files, sizeBytes, checksums; s3:// uses the AWS_* "
    "environment); exit 2 when one fails.",
)
@state_dir_option
@output_option()
def show_command(file: str, model: str, check: bool, state_dir: str | None, output: str) -> None:
    """Every field of each version of MODEL, its instances, and (--check) its sources."""
    view = show_model(ShowOptions(file, model, check, state_dir))
    if view.gateway is None:
        _no_gateway(view)
    if output != "table":
        emit_data(view.data, output)
    else:
        for build in SHOW_SECTIONS:
            section = build(view.data)
            if section is not None:
                emit_table(*section)
    error = view.error()
    if error is not None:
        raise error
