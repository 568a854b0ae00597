"""Names xpool derives from the platform file's names: Xinference registrations, instance UIDs
and Kubernetes objects.

They are spelled here, below the renderer, so that validation can refuse names that would
collide or be too long before anything is rendered or launched; render/ uses these same
functions, so the check and the output cannot drift apart.
"""

from __future__ import annotations

from xpool.config.models import Platform, Pool, Tier


def slug(name: str) -> str:
    return name.lower()


def registered_name(model: str, version: str) -> str:
    return f"{model}-v{version.replace('.', '_')}"


def instance_uid(model: str, version: str, n: int) -> str:
    return f"{model}--{version}--{n}"


def queue_name(platform: Platform, tier: Tier, pool: Pool) -> str:
    return f"{platform.metadata.name}-{slug(tier.name)}-{pool.name}"


def parent_queue_name(platform: Platform, pool: Pool) -> str:
    return f"{platform.metadata.name}-{pool.name}"


def priority_class_name(platform: Platform, tier: Tier) -> str:
    return f"{platform.metadata.name}-{slug(tier.name)}"


def job_name(tier: Tier, pool: Pool, burst: bool = False) -> str:
    return f"xinference-{slug(tier.name)}-{pool.name}" + ("-burst" if burst else "")
