"""Rules that span fields: names unique, references resolve, shares add up, min <= max.

Returns (path, message) pairs so the loader can locate each one in the file.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from xpool.catalog.accelerators import accelerators
from xpool.config.models import Platform
from xpool.config.positions import PathElem

Found = tuple[tuple[PathElem, ...], str]


def cross_field_problems(platform: Platform) -> list[Found]:
    spec = platform.spec
    found: list[Found] = []
    found += _duplicates([t.name for t in spec.tiers], ("spec", "tiers"), "tier")
    found += _duplicates([p.name for p in spec.pools], ("spec", "pools"), "pool")
    found += _duplicates([m.name for m in spec.models], ("spec", "models"), "model")
    found += list(_tier_problems(platform))
    found += list(_pool_problems(platform))
    found += list(_model_problems(platform))
    return found


def _duplicates(names: list[str], base: tuple[PathElem, ...], what: str) -> list[Found]:
    seen: dict[str, int] = {}
    out: list[Found] = []
    for i, name in enumerate(names):
        if name in seen:
            out.append(
                (
                    (*base, i, "name"),
                    f"duplicate {what} name '{name}' (first at {base[-1]}[{seen[name]}]); "
                    "names must be unique",
                )
            )
        seen.setdefault(name, i)
    return out


def _tier_problems(platform: Platform) -> Iterator[Found]:
    tiers = platform.spec.tiers
    total = sum(t.share for t in tiers)
    if round(total, 9) > 1:
        shares = " + ".join(f"{t.name} {t.share:g}" for t in tiers)
        yield (("spec", "tiers"), f"tier shares add up to {total:g} ({shares}); they must be <= 1")
    for i, tier in enumerate(tiers):
        if tier.guarantee > tier.share:
            yield (
                ("spec", "tiers", i, "guarantee"),
                f"guarantee {tier.guarantee:g} exceeds the tier's share {tier.share:g}; "
                "a guarantee is a floor inside the share",
            )
        if tier.preemptible and tier.guarantee > 0:
            yield (
                ("spec", "tiers", i, "guarantee"),
                "a preemptible tier cannot hold a guarantee; set guarantee: 0 or preemptible: false",
            )


def _pool_problems(platform: Platform) -> Iterator[Found]:
    catalog = accelerators()
    for i, pool in enumerate(platform.spec.pools):
        accel = catalog.get(pool.accelerator)
        if accel is None:
            hint = difflib.get_close_matches(pool.accelerator, catalog, n=1)
            did = f"did you mean '{hint[0]}'? " if hint else ""
            yield (
                ("spec", "pools", i, "accelerator"),
                f"unknown accelerator '{pool.accelerator}'; {did}known: {', '.join(sorted(catalog))}",
            )
        elif accel.vendor != pool.vendor:
            yield (
                ("spec", "pools", i, "vendor"),
                f"vendor is '{pool.vendor}' but {pool.accelerator} is made by {accel.vendor}; "
                f"set vendor: {accel.vendor}",
            )


def _model_problems(platform: Platform) -> Iterator[Found]:
    tiers = [t.name for t in platform.spec.tiers]
    pools = [p.name for p in platform.spec.pools]
    for i, model in enumerate(platform.spec.models):
        base = ("spec", "models", i)
        if model.tier not in tiers:
            yield ((*base, "tier"), f"unknown tier '{model.tier}' (known: {', '.join(tiers)})")
        for j, name in enumerate(model.pools or []):
            if name not in pools:
                yield ((*base, "pools", j), f"unknown pool '{name}' (known: {', '.join(pools)})")
        if model.pools is not None and not model.pools:
            yield (
                (*base, "pools"),
                "an empty pool list leaves nowhere to run; omit it for every pool",
            )
        if isinstance(model.per_instance_qps, dict):
            for name in model.per_instance_qps:
                if name not in pools:
                    yield (
                        (*base, "perInstanceQps", name),
                        f"unknown pool '{name}' (known: {', '.join(pools)})",
                    )
        if model.instances.min > model.instances.max:
            yield (
                (*base, "instances", "min"),
                f"min {model.instances.min} is above max {model.instances.max}; make min <= max",
            )
        if model.demand.base_qps > model.demand.peak_qps:
            yield (
                (*base, "demand", "baseQps"),
                f"baseQps {model.demand.base_qps:g} is above peakQps {model.demand.peak_qps:g}",
            )
        seen: set[str] = set()
        for j, version in enumerate(model.versions):
            if version.version in seen:
                yield (
                    (*base, "versions", j, "version"),
                    f"duplicate version '{version.version}' of model '{model.name}'",
                )
            seen.add(version.version)
