"""Which instances a platform wants, as pure data: one `Want` per model version.

An instance is one Xinference model UID `<model>--<version>--<n>` launched with `replica: 1`
(DESIGN.md fact 1: Xinference cannot drain a replica, so xpool never asks it to run two).
The first version of each model is the stable one; later versions run only when a rollout or
a platform-file weight above 0 asks for them. Everything here is derived from the launch
specs, so `xpool up`, `xpool apply` and the reconciler agree on what to run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from xpool.config.derived_names import instance_uid as instance_uid
from xpool.config.models import Platform

UID_PATTERN = re.compile(
    r"^(?P<model>[a-z0-9]([-a-z0-9]*[a-z0-9])?)--(?P<version>[^-].*?)--(?P<n>[1-9][0-9]*)$"
)


def parse_uid(uid: str) -> tuple[str, str, int] | None:
    """(model, version, n) for a UID that follows xpool's scheme, else None."""
    m = UID_PATTERN.match(uid)
    if not m:
        return None
    return m["model"], m["version"], int(m["n"])


@dataclass(frozen=True)
class Want:
    """Instances wanted for one model version: `count` UIDs `<model>--<version>--1..count`."""

    model: str
    version: str
    model_type: str  # Xinference spelling: LLM | embedding | rerank
    registration: dict[str, Any]
    launch: dict[str, Any]
    count: int

    def uids(self) -> list[str]:
        return [instance_uid(self.model, self.version, n) for n in range(1, self.count + 1)]

    def for_version(self, spec: dict[str, Any]) -> Want:
        """The same model's `spec` version (a launch spec), with this want's count."""
        return replace(
            self,
            version=spec["version"],
            registration=spec["registration"],
            launch=spec["launch"],
            model_type=spec["launch"]["model_type"],
        )


def stable_wants(
    platform: Platform, launch_specs: Iterable[dict[str, Any]], *, at_least: int = 0
) -> list[Want]:
    """The instances to run: the FIRST version of each model is the stable one and gets
    max(instances.min, at_least) instances; later versions belong to a rollout (canary
    weights, promotion) and are not launched here."""
    minimum = {m.name: m.instances.min for m in platform.spec.models}
    wants: list[Want] = []
    seen: set[str] = set()
    for spec in launch_specs:
        if spec["model"] in seen:
            continue
        seen.add(spec["model"])
        wants.append(
            Want(
                model=spec["model"],
                version=spec["version"],
                model_type=spec["launch"]["model_type"],
                registration=spec["registration"],
                launch=spec["launch"],
                count=max(minimum[spec["model"]], at_least),
            )
        )
    return wants


class VersionWants(NamedTuple):
    """Every declared model version as a Want with count 0 (what `xpool scale` and the
    reconciler may launch), and the canaries to run beside the stable versions: later
    versions whose platform-file weight is above 0 (instances.min of them, at least one)."""

    by_version: dict[tuple[str, str], Want]
    canaries: list[Want]


def version_wants(
    platform: Platform, launch_specs: Iterable[dict[str, Any]], stable: list[Want]
) -> VersionWants:
    base_of = {w.model: w for w in stable}
    models = {m.name: m for m in platform.spec.models}
    by_version: dict[tuple[str, str], Want] = {}
    canaries: list[Want] = []
    for spec in launch_specs:
        base = base_of.get(spec["model"])
        if base is None:
            continue
        want = base if spec["version"] == base.version else base.for_version(spec)
        by_version[(spec["model"], spec["version"])] = replace(want, count=0)
        model = models[spec["model"]]
        if spec["version"] != base.version and model.version_weights().get(spec["version"], 0) > 0:
            canaries.append(replace(want, count=max(1, model.instances.min)))
    return VersionWants(by_version, canaries)
