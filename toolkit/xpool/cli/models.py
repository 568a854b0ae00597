"""`xpool models list|show FILE`: the model versions a platform file declares, what is known
about each (source, precision, weight, metadata, checksums), and where each runs.

Instance counts come from the running `xpool up`'s gateway (its loopback admin endpoint, found
through the state directory as `xpool status` finds it); without one they are "-" and a note on
stderr says so. `show --check` checks each version's source (xpool.adapters.sources): the
results are printed, then every failure is one error line and the exit code is 2 (3 when a
remote system failed).

`show` prints a list of sections, each built by one function from the same data that `-o json`
prints; a new section is one more function in SHOW_SECTIONS. Its rollout history (each rollout's
transitions with their reasons) comes from the state directory's `rollouts.json`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import click

from xpool.adapters.sources import check_source, scheme_of
from xpool.cli.output import emit_data, emit_table, note, output_option
from xpool.cli.up import gateway_instances, state_dir_for
from xpool.config.loader import LoadedPlatform, load_platform
from xpool.config.models import Model, ModelVersion, Platform
from xpool.errors import InputError, Problem, RemoteError, XpoolError
from xpool.gateway.routing import version_weights
from xpool.reconcile.rollout_store import FileRolloutStore
from xpool.render.launch import registered_name

STATES = ("ready", "loading", "draining", "failed")
SOURCE_WIDTH = 40
TEMPLATE_WIDTH = 60

Section = tuple[str, Sequence[str], list[list[Any]]]


# -- data --------------------------------------------------------------------------------------


def short_source(source: str, width: int = SOURCE_WIDTH) -> str:
    """The source, its middle elided when long: `s3://...ls/chat/v2`."""
    if len(source) <= width:
        return source
    scheme, _, rest = source.partition("://")
    keep = max(8, width - len(scheme) - 6)
    return f"{scheme}://...{rest[-keep:]}"


def _counts(rows: list[dict]) -> dict[str, int]:
    return {state: sum(r.get("state") == state for r in rows) for state in STATES}


def _of(rows: list[dict], model: str, version: str) -> list[dict]:
    return [r for r in rows if r.get("model") == model and r.get("version") == version]


def list_data(platform: Platform, gateway: str | None, rows: list[dict]) -> dict[str, Any]:
    versions = []
    for model in platform.spec.models:
        weights = version_weights([(v.version, v.weight) for v in model.versions])
        for v in model.versions:
            measured = v.metadata.measured
            versions.append(
                {
                    "model": model.name,
                    "version": v.version,
                    "type": model.type,
                    "tier": model.tier,
                    "weight": weights[v.version],
                    "source": v.source,
                    "scheme": scheme_of(v.source),
                    "weightPrecision": v.weight_precision,
                    "parameters": v.metadata.parameters,
                    "measuredQps": measured.qps if measured else None,
                    "measuredTtftMs": measured.ttft_ms if measured else None,
                    "note": v.note,
                    "instances": _counts(_of(rows, model.name, v.version)) if gateway else None,
                }
            )
    return {"platform": platform.metadata.name, "gateway": gateway, "versions": versions}


def _version_data(
    model: Model, v: ModelVersion, weight: float, gateway: str | None, rows: list[dict]
) -> dict[str, Any]:
    return {
        "version": v.version,
        "registeredName": registered_name(model.name, v.version),
        "weight": weight,
        "source": v.source,
        "scheme": scheme_of(v.source),
        "weightPrecision": v.weight_precision,
        "kvPrecision": v.kv_precision,
        "engines": dict(v.engines),
        "note": v.note,
        "metadata": v.metadata.model_dump(mode="json", by_alias=True),
        "checksums": dict(v.checksums),
        "sizeBytes": v.size_bytes,
        "chatTemplate": v.chat_template,
        "instances": (
            [
                {
                    "uid": r.get("uid"),
                    "state": r.get("state"),
                    "inflight": r.get("inflight"),
                    "error": r.get("error"),
                }
                for r in sorted(_of(rows, model.name, v.version), key=lambda r: r.get("uid", ""))
            ]
            if gateway
            else None
        ),
    }


def show_data(
    platform: Platform, model: Model, gateway: str | None, rows: list[dict]
) -> dict[str, Any]:
    weights = version_weights([(v.version, v.weight) for v in model.versions])
    arch = model.architecture
    return {
        "platform": platform.metadata.name,
        "gateway": gateway,
        "model": {
            "name": model.name,
            "type": model.type,
            "tier": model.tier,
            "architecture": arch if isinstance(arch, str) else arch.config,
            "rollout": model.rollout.model_dump(mode="json", by_alias=True)
            if model.rollout
            else None,
            "versions": [
                _version_data(model, v, weights[v.version], gateway, rows) for v in model.versions
            ],
        },
    }


def rollout_history(platform: Platform, model: Model, state_dir: str | None) -> list[dict]:
    """The model's rollouts, oldest first, each with its events (local state directory)."""
    if platform.spec.xinference.endpoint != "embedded":
        return []
    doc = FileRolloutStore(state_dir_for(platform, state_dir)).load()
    current = doc.current.get(model.name)
    runs = [*doc.past.get(model.name, []), *([current] if current else [])]
    return [
        {
            "from": r.stable,
            "to": r.canary,
            "phase": r.phase,
            "started": r.started,
            "events": [asdict(e) for e in r.history],
        }
        for r in runs
    ]


def run_checks(loaded: LoadedPlatform, model: Model, data: dict[str, Any]) -> list[XpoolError]:
    """Check each version's source; record each result (or error) in `data`; the failures."""
    failures: list[XpoolError] = []
    for v, row in zip(model.versions, data["model"]["versions"], strict=True):
        try:
            row["check"] = check_source(model.name, v, base_dir=loaded.path.parent).as_dict()
        except (InputError, RemoteError) as exc:
            row["check"] = {"scheme": scheme_of(v.source), "checked": True, "error": str(exc)}
            failures.append(exc)
    return failures


def find_model(loaded: LoadedPlatform, name: str) -> Model:
    for model in loaded.platform.spec.models:
        if model.name == name:
            return model
    known = ", ".join(m.name for m in loaded.platform.spec.models)
    raise InputError([Problem(str(loaded.path), "", f"unknown model '{name}' (models: {known})")])


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

STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="State directory of the `xpool up` whose gateway reports instances.",
)


def _no_gateway(platform: Platform, state_dir: str | None) -> None:
    note(
        f"note: no gateway answered for {platform.metadata.name} (state dir "
        f"{state_dir_for(platform, state_dir)}): instance counts are unknown ('-'); "
        "`xpool up FILE` runs one"
    )


@click.group("models")
def models_group() -> None:
    """Model versions: sources, metadata, weights, and where they run."""


@models_group.command("list")
@click.argument("file", type=click.Path(dir_okay=False))
@STATE_DIR_OPTION
@output_option()
def list_command(file: str, state_dir: str | None, output: str) -> None:
    """One row per model version, with instance counts from the running gateway."""
    platform = load_platform(file).platform
    gateway, rows = gateway_instances(platform, state_dir)
    data = list_data(platform, gateway, rows)
    if gateway is None:
        _no_gateway(platform, state_dir)
    if output != "table":
        emit_data(data, output)
        return
    emit_table(
        f"Model versions ({data['platform']})",
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
        _list_rows(data),
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
@STATE_DIR_OPTION
@output_option()
def show_command(file: str, model: str, check: bool, state_dir: str | None, output: str) -> None:
    """Every field of each version of MODEL, its instances, and (--check) its sources."""
    loaded = load_platform(file)
    found = find_model(loaded, model)
    gateway, rows = gateway_instances(loaded.platform, state_dir)
    data = show_data(loaded.platform, found, gateway, rows)
    data["model"]["history"] = rollout_history(loaded.platform, found, state_dir)
    failures = run_checks(loaded, found, data) if check else []
    if gateway is None:
        _no_gateway(loaded.platform, state_dir)
    if output != "table":
        emit_data(data, output)
    else:
        for build in SHOW_SECTIONS:
            section = build(data)
            if section is not None:
                emit_table(*section)
    if failures:
        raise _combined(failures)


def _combined(failures: list[XpoolError]) -> XpoolError:
    """All failures as one error: exit 3 when a remote system failed, else 2."""
    if any(isinstance(f, RemoteError) for f in failures):
        return RemoteError("\n".join(str(f) for f in failures))
    return InputError([p for f in failures if isinstance(f, InputError) for p in f.problems])
