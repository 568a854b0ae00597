"""Rules that span fields: names unique, references resolve, shares add up, min <= max.

Returns (path, message) pairs so the loader can locate each one in the file.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Iterator

from xpool.catalog.accelerators import accelerators
from xpool.config.credentials import credential_problems
from xpool.config.kube_values import kube_value_problems
from xpool.config.models import CandidatePool, Model, PlacementConstraint, Platform, Pool
from xpool.config.name_checks import derived_name_problems
from xpool.config.positions import PathElem
from xpool.config.source_urls import source_problem

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
    found += list(fp8_problems(platform))
    found += list(context_problems(platform))
    found += list(hardware_selection_problems(platform))
    found += list(derived_name_problems(platform))
    found += list(credential_problems(platform))
    found += list(kube_value_problems(platform))
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
    candidates = [c.name for c in platform.spec.candidate_pools]
    for i, model in enumerate(platform.spec.models):
        base = ("spec", "models", i)
        yield from _model_reference_problems(model, base, tiers, pools, candidates)
        yield from _model_bound_problems(model, base)
        yield from _version_problems(model, base)
        if model.rollout is not None:
            yield from _rollout_problems(model, (*base, "rollout"))


def _model_reference_problems(
    model: Model,
    base: tuple[PathElem, ...],
    tiers: list[str],
    pools: list[str],
    candidates: list[str],
) -> Iterator[Found]:
    """The tier and pools a model names exist (perInstanceQps may name candidate pools too:
    hardware selection sizes the model on them)."""
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
            if name not in pools and name not in candidates:
                yield (
                    (*base, "perInstanceQps", name),
                    f"unknown pool '{name}' (known: {', '.join(pools)})",
                )


def _model_bound_problems(model: Model, base: tuple[PathElem, ...]) -> Iterator[Found]:
    """Lower bounds not above upper ones: instances.min <= max, demand.baseQps <= peakQps;
    no decode figure for a model that generates nothing."""
    yield from _per_instance_problems(model, (*base, "perInstance"))
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


def _per_instance_problems(model: Model, base: tuple[PathElem, ...]) -> Iterator[Found]:
    """Measured token figures are all the autoscaler needs or absent: an LLM both, an
    embedding model (which generates nothing) the prefill one only, a rerank model none."""
    given = model.per_instance
    if given is None:
        return
    if model.type == "rerank":
        yield (
            base,
            "rerank models are autoscaled on QPS (the gateway cannot count their tokens: "
            "Xinference reports them only on request); use perInstanceQps",
        )
        return
    if given.prefill_tokens_per_second is None:
        yield (base, "give prefillTokensPerSecond (measured prompt tokens/s of one instance)")
    if model.type == "llm" and given.decode_tokens_per_second is None:
        yield (base, "an llm model needs decodeTokensPerSecond too (generated tokens/s)")
    if model.type != "llm" and given.decode_tokens_per_second is not None:
        yield (
            (*base, "decodeTokensPerSecond"),
            f"a {model.type} model generates no tokens; give only prefillTokensPerSecond",
        )


def _version_problems(model: Model, base: tuple[PathElem, ...]) -> Iterator[Found]:
    """Versions unique; sources of a usable form; checksums and sizeBytes only where xpool
    can check them (file://, s3://), and checksum names that stay inside the source."""
    seen: set[str] = set()
    for j, version in enumerate(model.versions):
        if version.version in seen:
            yield (
                (*base, "versions", j, "version"),
                f"duplicate version '{version.version}' of model '{model.name}'",
            )
        seen.add(version.version)
        wrong = source_problem(version.source)
        if wrong is not None:
            yield ((*base, "versions", j, "source"), wrong)
        scheme = version.source.partition("://")[0]
        if (version.checksums or version.size_bytes) and scheme not in ("file", "s3"):
            yield (
                (*base, "versions", j, "checksums" if version.checksums else "sizeBytes"),
                f"version '{version.version}' has a {scheme}:// source: checksums and "
                "sizeBytes are checked only for file:// and s3:// sources",
            )
        for name in version.checksums:
            if ".." in name.split("/"):
                yield (
                    (*base, "versions", j, "checksums", name),
                    f"'{name}' leaves the source with '..'; name files inside it",
                )


def _rollout_problems(model: Model, base: tuple[PathElem, ...]) -> Iterator[Found]:
    versions = [v.version for v in model.versions]
    if model.rollout is None:
        return
    if model.rollout.to not in versions:
        yield (
            (*base, "to"),
            f"unknown version '{model.rollout.to}' of model '{model.name}' "
            f"(versions: {', '.join(versions)})",
        )
    steps = model.rollout.steps
    if any(b <= a for a, b in itertools.pairwise(steps)):
        yield ((*base, "steps"), f"steps {steps} must increase")
    if steps[-1] != 100:
        yield ((*base, "steps"), f"the last step is {steps[-1]:g}; it must be 100")
    yield from _gate_sample_problems(model, base)


def gate_sample_shortfall(peak: float, first_step: float, interval: float, need: int) -> str | None:
    """Why a first step cannot reach the gate's minimum sample even at peak demand (it would
    be extended and then held every time), naming the interval or weight that would; None
    when it can."""
    share = first_step / 100
    expected = peak * share * interval
    if peak <= 0 or expected >= need:
        return None
    return (
        f"at peak demand ({peak:g} QPS) a {first_step:g}% first step of {interval:g} s gets "
        f"about {expected:.0f} canary requests, fewer than the {need} the gate needs; make "
        f"interval at least {math.ceil(need / (peak * share))} s or the first step at least "
        f"{min(100.0, math.ceil(100 * need / (peak * interval))):g}%"
    )


def _gate_sample_problems(model: Model, base: tuple[PathElem, ...]) -> Iterator[Found]:
    assert model.rollout is not None
    rollout = model.rollout
    why = gate_sample_shortfall(
        model.demand.peak_qps, rollout.steps[0], rollout.interval, rollout.gate.min_requests
    )
    if why is not None:
        yield ((*base, "gate", "minRequests"), why)


def fp8_problems(platform: Platform) -> Iterator[Found]:
    """FP8 weights or KV cache only for pools whose accelerator can hold FP8 (the catalog's
    fp8Storage: the Ascend 910B has no FP8 data type)."""
    catalog = accelerators()
    for i, model in enumerate(platform.spec.models):
        pools = [p for p in _pools_named(platform, model.pools) if p.accelerator in catalog]
        without = [p.name for p in pools if not catalog[p.accelerator].fp8_storage]
        if not without:
            continue
        for j, version in enumerate(model.versions):
            for field, value in (
                ("weightPrecision", version.weight_precision),
                ("kvPrecision", version.kv_precision),
            ):
                if value == "fp8":
                    yield (
                        ("spec", "models", i, "versions", j, field),
                        f"{field} fp8 on pool {', '.join(without)}, whose accelerator cannot "
                        "hold FP8; use int8 (or bf16) there, or list only FP8-capable pools "
                        "in the model's pools",
                    )


def context_problems(platform: Platform) -> Iterator[Found]:
    """An LLM's seqLen holds its prompt and its answer, so outputTokens must be below it (the
    prompt, seqLen - outputTokens, is what the prefill bound charges for)."""
    for i, model in enumerate(platform.spec.models):
        context = model.context
        if model.type == "llm" and context.output_tokens >= context.seq_len:
            yield (
                ("spec", "models", i, "context", "outputTokens"),
                f"outputTokens {context.output_tokens} leaves no prompt in seqLen "
                f"{context.seq_len} (seqLen = prompt + answer); raise seqLen or lower outputTokens",
            )


def _pools_named(platform: Platform, names: list[str] | None) -> list[Pool]:
    """The pools a model may use (all when it names none; unknown names are reported elsewhere)."""
    if names is None:
        return list(platform.spec.pools)
    return [p for p in platform.spec.pools if p.name in names]


def hardware_selection_problems(platform: Platform) -> Iterator[Found]:
    """spec.candidatePools, spec.costs and spec.constraints (see docs/hardware-selection.md)."""
    spec = platform.spec
    yield from _duplicates(
        [c.name for c in spec.candidate_pools], ("spec", "candidatePools"), "candidate pool"
    )
    for i, cand in enumerate(spec.candidate_pools):
        yield from _candidate_problems(platform, i, cand)
    yield from _cost_problems(platform)
    for i, rule in enumerate(spec.constraints.placement):
        yield from _placement_problems(platform, ("spec", "constraints", "placement", i), rule)


def _candidate_problems(platform: Platform, i: int, cand: CandidatePool) -> Iterator[Found]:
    """A candidate pool's name is its own, its accelerator is known and made by its vendor,
    and a server profile hosts it (the one named, or a default)."""
    from xpool.catalog.servers import default_server_for, servers

    catalog = accelerators()
    base = ("spec", "candidatePools", i)
    if cand.name in [p.name for p in platform.spec.pools]:
        yield (
            (*base, "name"),
            f"candidate pool '{cand.name}' has the name of a pool in spec.pools; rename it",
        )
    accel = catalog.get(cand.accelerator)
    if accel is None:
        hint = difflib.get_close_matches(cand.accelerator, catalog, n=1)
        did = f"did you mean '{hint[0]}'? " if hint else ""
        yield (
            (*base, "accelerator"),
            f"unknown accelerator '{cand.accelerator}'; {did}known: {', '.join(sorted(catalog))}",
        )
        return
    if accel.vendor != cand.vendor:
        yield (
            (*base, "vendor"),
            f"vendor is '{cand.vendor}' but {cand.accelerator} is made by {accel.vendor}; "
            f"set vendor: {accel.vendor}",
        )
    if cand.server is not None:
        yield from _server_problems(
            (*base, "server"), cand.server, cand.accelerator, cand.accelerators_per_node
        )
    elif default_server_for(cand.accelerator) is None:
        yield (
            (*base, "server"),
            f"no server profile hosts {cand.accelerator}; set server: one of "
            f"{', '.join(servers())}",
        )


def _cost_problems(platform: Platform) -> Iterator[Found]:
    """spec.costs names known accelerators and server profiles, and pools of spec.pools."""
    from xpool.catalog.servers import servers

    spec = platform.spec
    catalog = accelerators()
    profiles = servers()
    costs = spec.costs
    for key in [*costs.accelerator_price, *costs.accelerator_power_w]:
        if key not in catalog:
            field = "acceleratorPrice" if key in costs.accelerator_price else "acceleratorPowerW"
            yield (
                ("spec", "costs", field, key),
                f"unknown accelerator '{key}' (known: {', '.join(sorted(catalog))})",
            )
    for key in costs.server_price:
        if key not in profiles:
            yield (
                ("spec", "costs", "serverPrice", key),
                f"unknown server profile '{key}' (known: {', '.join(profiles)})",
            )
    pools = [p.name for p in spec.pools]
    for name, key in costs.server_profiles.items():
        where = ("spec", "costs", "serverProfiles", name)
        pool = next((p for p in spec.pools if p.name == name), None)
        if pool is None:
            yield (where, f"unknown pool '{name}' (known: {', '.join(pools)})")
            continue
        yield from _server_problems(where, key, pool.accelerator, pool.accelerators_per_node)


def _placement_problems(
    platform: Platform, base: tuple[PathElem, ...], rule: PlacementConstraint
) -> Iterator[Found]:
    """A placement constraint applies to a tier or a model that exists, and restricts to a
    vendor or to pools that exist."""
    spec = platform.spec
    tiers = [t.name for t in spec.tiers]
    models = [m.name for m in spec.models]
    everything = [p.name for p in spec.pools] + [c.name for c in spec.candidate_pools]
    if rule.tier is not None and rule.model is not None:
        yield (base, "set tier or model, not both (one constraint applies to one of them)")
    if rule.tier is not None and rule.tier not in tiers:
        yield ((*base, "tier"), f"unknown tier '{rule.tier}' (known: {', '.join(tiers)})")
    if rule.model is not None and rule.model not in models:
        yield ((*base, "model"), f"unknown model '{rule.model}' (known: {', '.join(models)})")
    if rule.vendor is None and rule.candidates is None:
        yield (base, "a placement constraint needs vendor or candidates")
    for j, name in enumerate(rule.candidates or []):
        if name not in everything:
            yield (
                (*base, "candidates", j),
                f"unknown pool '{name}' (known: {', '.join(everything)})",
            )


def _server_problems(
    where: tuple[PathElem, ...], key: str, accelerator: str, per_node: int
) -> Iterator[Found]:
    from xpool.catalog.servers import servers

    profile = servers().get(key)
    if profile is None:
        yield (where, f"unknown server profile '{key}' (known: {', '.join(servers())})")
    elif accelerator not in profile.hosts:
        yield (
            where,
            f"server profile '{key}' does not host {accelerator} (it hosts "
            f"{', '.join(profile.hosts)})",
        )
    elif per_node > profile.accelerators:
        yield (
            where,
            f"acceleratorsPerNode {per_node} exceeds the {profile.accelerators} slots of '{key}'",
        )
