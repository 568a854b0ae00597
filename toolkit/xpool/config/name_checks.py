"""Names that are valid one by one but not together, or not once xpool derives from them.

Two model versions whose Xinference registrations or instance UIDs are spelled alike would
serve each other's weights; a tier name that differs only in case, or a name that makes a
Kubernetes object name longer than a DNS label, fails only when rendering, without a place
in the file. Each is refused here, at the second name involved.
"""

from __future__ import annotations

from collections.abc import Iterator

from xpool.config.derived_names import (
    instance_uid,
    job_name,
    parent_queue_name,
    priority_class_name,
    queue_name,
    registered_name,
)
from xpool.config.models import Platform
from xpool.config.positions import PathElem, format_path

Found = tuple[tuple[PathElem, ...], str]

# RFC 1123 label: the limit for Volcano queues, Jobs and PriorityClass names as xpool uses them.
MAX_OBJECT_NAME = 63


def derived_name_problems(platform: Platform) -> Iterator[Found]:
    yield from _model_name_separator_problems(platform)
    yield from _version_name_collisions(platform)
    yield from _tier_case_collisions(platform)
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


def _object_name_lengths(platform: Platform) -> Iterator[Found]:
    """The longest object name derived from each tier, and each pool's parent queue."""
    pools = platform.spec.pools
    for i, tier in enumerate(platform.spec.tiers):
        names = [priority_class_name(platform, tier)]
        names += [queue_name(platform, tier, pool) for pool in pools]
        names += [job_name(tier, pool, burst=True) for pool in pools]
        yield from _too_long(("spec", "tiers", i, "name"), names)
    kubernetes = platform.spec.kubernetes
    if kubernetes is not None and kubernetes.queue_hierarchy:
        for i, pool in enumerate(pools):
            yield from _too_long(("spec", "pools", i, "name"), [parent_queue_name(platform, pool)])


def _too_long(where: tuple[PathElem, ...], names: list[str]) -> Iterator[Found]:
    longest = max(names, key=len)
    if len(longest) > MAX_OBJECT_NAME:
        yield (
            where,
            f"the derived Kubernetes object name '{longest}' is {len(longest)} characters; "
            f"names are at most {MAX_OBJECT_NAME} (RFC 1123 label): shorten this name, the "
            "pool name or metadata.name",
        )
