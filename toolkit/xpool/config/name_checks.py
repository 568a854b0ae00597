"""Names that are valid one by one but not together, or not once xpool derives from them.

Two model versions whose Xinference registrations or instance UIDs are spelled alike would
serve each other's weights; a tier name that differs only in case, two tier and pool names
that join into one Queue or Job name (`a-b` + `c` and `a` + `b-c`), or a name that makes a
worker Job's name longer than a DNS label, fails only when rendering or applying, without a
place in the file. Each is refused here, at the second name involved (a name too long, at the
tier or pool that makes it so). The lengths are those of the names render gives (both use
`derived_names`); cluster-scoped names never get too long: `derived_names.bounded` shortens
them. Model and version names reach no Kubernetes name (their schema bounds keep the launch
specs' ConfigMap keys far below 253 characters).
"""

from __future__ import annotations

from collections.abc import Iterator

from xpool.config.derived_names import (
    MAX_OBJECT_NAME,
    instance_uid,
    job_name,
    longest_worker_pod_name,
    parent_queue_name,
    queue_name,
    registered_name,
    slug,
)
from xpool.config.models import Platform, Pool, Tier
from xpool.config.positions import PathElem, format_path

Found = tuple[tuple[PathElem, ...], str]
_SHORTEST_TIER = Tier(name="t", share=1, priority=0)  # a pool's names are at least this long


def derived_name_problems(platform: Platform) -> Iterator[Found]:
    yield from _model_name_separator_problems(platform)
    yield from _version_name_collisions(platform)
    yield from _tier_case_collisions(platform)
    yield from _object_name_collisions(platform)
    yield from _object_name_lengths(platform)


def _model_name_separator_problems(platform: Platform) -> Iterator[Found]:
    """`--` separates model, version and number in a UID; inside a model name it is ambiguous."""
    for i, model in enumerate(platform.spec.models):
        if "--" in model.name:
            yield (
                ("spec", "models", i, "name"),
                f"model name '{model.name}' contains '--', which separates the model from the "
                "version in instance UIDs (<model>--<version>--<n>); use single hyphens",
            )


def _version_name_collisions(platform: Platform) -> Iterator[Found]:
    """Each model version's registered name and UID prefix belong to it alone."""
    seen: dict[str, tuple[str, tuple[PathElem, ...]]] = {}
    for i, model in enumerate(platform.spec.models):
        for j, version in enumerate(model.versions):
            where: tuple[PathElem, ...] = ("spec", "models", i, "versions", j, "version")
            this = f"model '{model.name}' version '{version.version}'"
            derived = {
                "registered name": registered_name(model.name, version.version),
                "instance UID": instance_uid(model.name, version.version, 1),
            }
            for kind, name in derived.items():
                key = f"{kind} {name}"
                if key in seen and seen[key][0] != this:
                    first, at = seen[key]
                    yield (
                        where,
                        f"{this} has the {kind} '{name}' of {first} ({format_path(at[:-1])}); "
                        "one would serve the other's weights: rename one",
                    )
                seen.setdefault(key, (this, where))


def _tier_case_collisions(platform: Platform) -> Iterator[Found]:
    """Kubernetes names use the lower-cased tier name, so `P0` and `p0` would be one object."""
    seen: dict[str, tuple[str, int]] = {}
    for i, tier in enumerate(platform.spec.tiers):
        first = seen.setdefault(tier.name.lower(), (tier.name, i))
        if first[0] != tier.name:
            yield (
                ("spec", "tiers", i, "name"),
                f"tier '{tier.name}' differs from tier '{first[0]}' (spec.tiers[{first[1]}]) "
                "only in case; object names are lower case, so rename one",
            )


def _object_name_collisions(platform: Platform) -> Iterator[Found]:
    """Each (tier, pool) has its own Queue and worker Job, each pool its own parent Queue;
    one line per (tier, pool) that takes another's name. Tiers equal but for case, and pools
    of one name, are reported by their own checks."""
    kubernetes = platform.spec.kubernetes
    seen: dict[tuple[str, str], str] = {}
    tiers: set[str] = set()
    unique: dict[str, Pool] = {}
    for pool in platform.spec.pools:
        unique.setdefault(pool.name, pool)
    pools = list(unique.values())
    if kubernetes is not None and kubernetes.queue_hierarchy:
        for pool in pools:
            seen["Queue", parent_queue_name(platform, pool)] = f"pool '{pool.name}' (its parent)"
    for i, tier in enumerate(platform.spec.tiers):
        if slug(tier.name) in tiers:
            continue
        tiers.add(slug(tier.name))
        for pool in pools:
            this = f"tier '{tier.name}' on pool '{pool.name}'"
            names = [("Queue", queue_name(platform, tier, pool)), ("Job", job_name(tier, pool))]
            taken = [(kind, name, seen[kind, name]) for kind, name in names if (kind, name) in seen]
            seen.update((key, this) for key in names if key not in seen)
            if taken:
                kind, name, first = taken[0]
                yield (
                    ("spec", "tiers", i, "name"),
                    f"{this} would name its {kind} '{name}', as {first} does: tier and pool "
                    "names are joined with '-'; rename the tier or the pool",
                )


def _object_name_lengths(platform: Platform) -> Iterator[Found]:
    """The longest worker pod name (longer than its Job's) within a DNS label: refused at a
    pool whose name is too long even with a one-character tier, else at each tier too long
    on some pool."""
    fitting = []
    for j, pool in enumerate(platform.spec.pools):
        name = longest_worker_pod_name(_SHORTEST_TIER, pool)
        if len(name) > MAX_OBJECT_NAME:
            yield (
                ("spec", "pools", j, "name"),
                _too_long(name, pool.name, "pool", " even with a one-character tier name"),
            )
        else:
            fitting.append(pool)
    for i, tier in enumerate(platform.spec.tiers):
        longest = max(
            (longest_worker_pod_name(tier, pool) for pool in fitting), key=len, default=""
        )
        if len(longest) > MAX_OBJECT_NAME:
            yield (
                ("spec", "tiers", i, "name"),
                _too_long(longest, tier.name, "tier") + " (or the pool name)",
            )


def _too_long(name: str, part: str, what: str, note: str = "") -> str:
    room = len(part) - (len(name) - MAX_OBJECT_NAME)
    return (
        f"the derived pod name '{name}' (a worker of this {what}'s Volcano Job, with a pod "
        f"on every node) is {len(name)} characters{note}, over the {MAX_OBJECT_NAME} of a "
        f"Kubernetes name (RFC 1123 label): shorten the {what} name to at most "
        f"{max(room, 0)} characters"
    )
