"""Values valid as strings and numbers that the cluster refuses once they are rendered.

A pool's nodeLabels become its workers' nodeSelector and its resourceName their requests and
their queues' resources, which the API server validates as label keys and values and as an
extended resource name; the gateway's port becomes a Service port; and tier shares too small
to give any tier of a pool a whole accelerator leave every queue there with nothing.
`xpool validate --rendered` would not see these, so each is refused at the field that holds it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from xpool.config import kube_names
from xpool.config.models import Platform, Pool
from xpool.config.positions import PathElem

Found = tuple[tuple[PathElem, ...], str]


def kube_value_problems(platform: Platform) -> Iterator[Found]:
    spec = platform.spec
    for base, pools in (("pools", spec.pools), ("candidatePools", spec.candidate_pools)):
        for i, pool in enumerate(pools):
            yield from _pool_problems(("spec", base, i), pool)
    yield from _gateway_port_problems(platform)
    yield from _zero_share_problems(platform)


def _pool_problems(base: tuple[PathElem, ...], pool: Pool) -> Iterator[Found]:
    for key, value in (pool.node_labels or {}).items():
        where = (*base, "nodeLabels", key)
        if problem := kube_names.qualified_name(key):
            yield where, f"node label key {problem}"
        elif problem := kube_names.label_value(value):
            yield where, f"node label value {problem}"
    name = pool.resource_name
    if name is not None and (problem := kube_names.extended_resource_name(name)):
        yield (*base, "resourceName"), f"resourceName {problem}"


def _gateway_port_problems(platform: Platform) -> Iterator[Found]:
    """Port 0 (any free port) serves `xpool up`; a Service and a container need a number."""
    listen = platform.spec.gateway.listen
    if platform.spec.kubernetes is not None and int(listen.rpartition(":")[2]) == 0:
        yield (
            ("spec", "gateway", "listen"),
            "port 0 (any free port) cannot be the gateway Service's port, which spec.kubernetes "
            "renders; give a port 1-65535",
        )


def _zero_share_problems(platform: Platform) -> Iterator[Found]:
    """Tier shares that give no tier of a pool a whole accelerator (capacity/shares.py hands
    out floor(sum of shares x accelerators)), so every queue there deserves 0."""
    tiers = platform.spec.tiers
    shares = sum(t.share for t in tiers)
    for pool in platform.spec.pools:
        total = pool.nodes * pool.accelerators_per_node
        exact = sum(t.share * total for t in tiers)
        if math.floor(round(exact, 9)) == 0:
            yield (
                ("spec", "tiers"),
                f"tier shares add up to {shares:g}, which of pool {pool.name}'s {total} "
                f"accelerators is {exact:g}, less than one: every queue there would deserve 0 "
                "and run nothing; raise the shares or give the pool more accelerators",
            )
