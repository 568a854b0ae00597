"""`xpool models list|show FILE`: the model versions a platform file declares, what is known
about each (source, precision, weight, metadata, checksums), and where each runs.

Instance counts come from the running `xpool up`'s gateway (its loopback admin API, found
through the up state as `xpool status` finds it); without one they are None. `show` with
`check` checks each version's source (xpool.adapters.sources) and records each result in the
data, so that the results print before the failures end the command. A model's rollout history
(each rollout's transitions with their reasons) comes from the state directory's
`rollouts.json`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xpool.adapters.sources import check_source, scheme_of
from xpool.config.models import Model, ModelVersion, Platform
from xpool.errors import InputError, RemoteError, XpoolError
from xpool.local.admin import running_instances
from xpool.local.up_state import read_up_state, state_dir_for
from xpool.reconcile.rollout_store import FileRolloutStore
from xpool.render.launch import registered_name
from xpool.resolve import ResolvedPlatform, resolve_platform

STATES = ("ready", "loading", "draining", "failed")


@dataclass(frozen=True)
class ListOptions:
    file: str
    state_dir: str | None = None  # of the `xpool up` whose gateway reports instances


@dataclass(frozen=True)
class ShowOptions:
    file: str
    model: str
    check: bool = False  # check each version's source
    state_dir: str | None = None


@dataclass(frozen=True)
class ModelsView:
    """The data `-o json` prints, where the gateway was looked for, and the failed checks."""

    data: dict[str, Any]
    state_dir: Path
    failures: list[XpoolError] = field(default_factory=list)

    @property
    def gateway(self) -> str | None:
        return self.data["gateway"]

    def error(self) -> XpoolError | None:
        """Every failed check as one error: exit 3 when a remote system failed, else 2."""
        if not self.failures:
            return None
        if any(isinstance(f, RemoteError) for f in self.failures):
            return RemoteError("\n".join(str(f) for f in self.failures))
        return InputError(
            [p for f in self.failures if isinstance(f, InputError) for p in f.problems]
        )


def list_models(options: ListOptions) -> ModelsView:
    resolved = resolve_platform(options.file)
    state = state_dir_for(resolved.name, options.state_dir)
    gateway, rows = running_instances(read_up_state(state))
    return ModelsView(list_data(resolved.platform, gateway, rows), state)


def show_model(options: ShowOptions) -> ModelsView:
    resolved = resolve_platform(options.file)
    _, model = resolved.model(options.model)
    state = state_dir_for(resolved.name, options.state_dir)
    gateway, rows = running_instances(read_up_state(state))
    data = show_data(resolved.platform, model, gateway, rows)
    data["model"]["history"] = rollout_history(resolved.platform, model, state)
    failures = run_checks(resolved, model, data) if options.check else []
    return ModelsView(data, state, failures)


# -- data --------------------------------------------------------------------------------------


def _counts(rows: list[dict]) -> dict[str, int]:
    return {state: sum(r.get("state") == state for r in rows) for state in STATES}


def _of(rows: list[dict], model: str, version: str) -> list[dict]:
    return [r for r in rows if r.get("model") == model and r.get("version") == version]


def list_data(platform: Platform, gateway: str | None, rows: list[dict]) -> dict[str, Any]:
    versions = []
    for model in platform.spec.models:
        weights = model.version_weights()
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
    weights = model.version_weights()
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


def rollout_history(platform: Platform, model: Model, state_dir: Path) -> list[dict]:
    """The model's rollouts, oldest first, each with its events (local state directory)."""
    if platform.spec.xinference.endpoint != "embedded":
        return []
    doc = FileRolloutStore(state_dir).load()
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


def run_checks(resolved: ResolvedPlatform, model: Model, data: dict[str, Any]) -> list[XpoolError]:
    """Check each version's source; record each result (or error) in `data`; the failures."""
    failures: list[XpoolError] = []
    for v, row in zip(model.versions, data["model"]["versions"], strict=True):
        try:
            row["check"] = check_source(model.name, v).as_dict()
        except (InputError, RemoteError) as exc:
            row["check"] = {"scheme": scheme_of(v.source), "checked": True, "error": str(exc)}
            failures.append(exc)
    return failures
