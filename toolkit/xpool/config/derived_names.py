"""Names xpool derives from the platform file's names: Xinference registrations, instance UIDs
and Kubernetes objects.

They are spelled here, below the renderer, so that validation can refuse names that would
collide or be too long before anything is rendered or launched; render/ uses these same
functions, so the check and the output cannot drift apart.

Cluster-scoped objects (PriorityClasses, Queues, the queues' ClusterRole and its binding) are
shared by every platform on the cluster, so their names start with the platform namespace:
the namespace holds the platform's ApplySet, one platform per namespace, so it tells two
platforms apart where their own names (or one file applied with `-n a` and `-n b`) would not.
A name longer than a DNS label keeps its first characters and ends in a hash of the whole.
"""

from __future__ import annotations

import hashlib

from xpool.config.models import KubernetesSpec, Platform, Pool, Tier

MAX_OBJECT_NAME = 63  # RFC 1123 label: Volcano queues, Jobs and PriorityClasses as xpool uses them
_HASH_CHARS = 8


def slug(name: str) -> str:
    return name.lower()


def registered_name(model: str, version: str) -> str:
    return f"{model}-v{version.replace('.', '_')}"


def instance_uid(model: str, version: str, n: int) -> str:
    return f"{model}--{version}--{n}"


def bounded(name: str) -> str:
    """`name` if it is a DNS label's length, else its head and 8 hex digits of its sha256:
    stable, and distinct for distinct names (but for a hash collision)."""
    if len(name) <= MAX_OBJECT_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_CHARS]
    head = name[: MAX_OBJECT_NAME - _HASH_CHARS - 1].rstrip("-")
    return f"{head}-{digest}"


def platform_namespace(platform: Platform) -> str:
    """The namespace the platform is (or would be) rendered into, after `-n`."""
    kubernetes = platform.spec.kubernetes
    return (kubernetes or KubernetesSpec()).namespace


def cluster_name(platform: Platform, *parts: str) -> str:
    """A cluster-scoped object's name: the platform namespace, then `parts`."""
    return bounded("-".join([platform_namespace(platform), *parts]))


def queue_name(platform: Platform, tier: Tier, pool: Pool) -> str:
    return cluster_name(platform, slug(tier.name), pool.name)


def parent_queue_name(platform: Platform, pool: Pool) -> str:
    return cluster_name(platform, pool.name)


def priority_class_name(platform: Platform, tier: Tier) -> str:
    return cluster_name(platform, slug(tier.name))


def queues_cluster_role_name(platform: Platform) -> str:
    """The ClusterRole (and its binding) that lets the reconciler set this platform's queues."""
    return bounded(f"xpool-{platform_namespace(platform)}-queues")


def job_name(tier: Tier, pool: Pool, burst: bool = False) -> str:
    return f"xinference-{slug(tier.name)}-{pool.name}" + ("-burst" if burst else "")


def worker_task_name(size: int) -> str:
    """The task of a worker Job whose workers hold `size` accelerators each."""
    return f"worker-{size}"


def worker_pod_name(job: str, task: str, index: int) -> str:
    """The name Volcano gives a task's pod (`<job>-<task>-<index>`, admit_job.go), which must
    be a DNS label as well."""
    return f"{job}-{task}-{index}"


def longest_worker_pod_name(tier: Tier, pool: Pool) -> str:
    """The longest pod name a worker Job of `tier` on `pool` can give: its burst Job's task of
    whole-node workers (capacity/packing.py: the widest task, the others hold one worker)
    scaled to every node of the pool."""
    task = worker_task_name(pool.accelerators_per_node)
    return worker_pod_name(job_name(tier, pool, burst=True), task, pool.nodes - 1)
