"""check_access and check_network on the set xpool renders: it passes, and each widening of a
Role or a NetworkPolicy is reported at the object and field that widen it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from xpool.render import render_platform
from xpool.render.checks import check_objects
from xpool.resolve import resolve_platform

Objects = list[dict[str, Any]]
NS = "xpool"  # spec.kubernetes.namespace of examples/platform.yaml
GATEWAY_ROLE = f"Role/{NS}/xpool-gateway"
RECONCILER_ROLE = f"Role/{NS}/xpool-reconciler"
QUEUES_ROLE = "ClusterRole/xpool-xpool-queues"


@cache
def _rendered() -> tuple[dict[str, Any], ...]:
    path = EXAMPLES / "platform.yaml"
    resolved = resolve_platform(path)
    rendering = render_platform(
        resolved.platform, resolved.plan, resolved.architectures, resolved.mount
    )
    return tuple(o.obj for o in rendering.objects)


def rendered() -> Objects:
    return copy.deepcopy(list(_rendered()))


def find(objs: Objects, kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def rule(objs: Objects, kind: str, name: str, resource: str, verb: str) -> dict[str, Any]:
    return next(
        r
        for r in find(objs, kind, name)["rules"]
        if resource in r["resources"] and verb in r["verbs"]
    )


def gateway_leases(objs: Objects) -> dict[str, Any]:
    return rule(objs, "Role", "xpool-gateway", "leases", "delete")


def ingress(objs: Objects, name: str) -> list[dict[str, Any]]:
    return find(objs, "NetworkPolicy", name)["spec"]["ingress"]


def _unnamed_gateway_leases(objs: Objects) -> None:
    """The gateway's rule as it was: every Lease of the namespace."""
    del gateway_leases(objs)["resourceNames"]


def _reconciler_writes_platform(objs: Objects) -> None:
    find(objs, "Role", "xpool-reconciler")["rules"].append(
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["xpool-launch-specs", "xpool-platform"],
            "verbs": ["get", "patch", "update"],
        }
    )


def _drop(kind: str, name: str) -> Callable[[Objects], None]:
    def mutate(objs: Objects) -> None:
        objs.remove(find(objs, kind, name))

    return mutate


# (id, mutation, object, field path, rule id)
WIDENINGS: list[tuple[str, Callable[[Objects], None], str, str, str]] = [
    (
        "gateway may write every Lease",
        _unnamed_gateway_leases,
        GATEWAY_ROLE,
        "rules[1].resourceNames",
        "access.unnamed-write",
    ),
    (
        "gateway may read every Lease",
        lambda o: find(o, "Role", "xpool-gateway")["rules"].append(
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"]}
        ),
        GATEWAY_ROLE,
        "rules[2].resourceNames",
        "access.unnamed-write",
    ),
    (
        "reconciler may rewrite the platform file it mounts",
        _reconciler_writes_platform,
        RECONCILER_ROLE,
        "rules[7].verbs",
        "access.own-configuration",
    ),
    (
        "wildcard verb",
        lambda o: rule(o, "Role", "xpool-reconciler", "pods", "get").update(verbs=["*"]),
        RECONCILER_ROLE,
        "rules[2].verbs",
        "access.wildcard",
    ),
    (
        "secrets",
        lambda o: rule(o, "Role", "xpool-reconciler", "pods", "get").update(
            resources=["pods", "secrets"]
        ),
        RECONCILER_ROLE,
        "rules[2]",
        "access.forbidden",
    ),
    (
        "a queue of another platform",
        lambda o: find(o, "ClusterRole", "xpool-xpool-queues")["rules"][0]["resourceNames"].append(
            "team-a-p0-rtx5090"
        ),
        QUEUES_ROLE,
        "rules[0].resourceNames",
        "access.cluster-foreign",
    ),
    (
        "every queue of the cluster",
        lambda o: find(o, "ClusterRole", "xpool-xpool-queues")["rules"][0].pop("resourceNames"),
        QUEUES_ROLE,
        "rules[0].resourceNames",
        "access.cluster-unnamed",
    ),
    (
        "a rule that admits every source",
        lambda o: ingress(o, "xinference-supervisor").append({"ports": [{"port": 9997}]}),
        f"NetworkPolicy/{NS}/xinference-supervisor",
        "spec.ingress[2].from",
        "network.open",
    ),
    (
        "pods of other namespaces",
        lambda o: ingress(o, "xinference-worker")[0]["from"].append({"namespaceSelector": {}}),
        f"NetworkPolicy/{NS}/xinference-worker",
        "spec.ingress[0].from[1]",
        "network.open",
    ),
    (
        "every pod of the namespace",
        lambda o: ingress(o, "xinference-worker")[0]["from"].append({"podSelector": {}}),
        f"NetworkPolicy/{NS}/xinference-worker",
        "spec.ingress[0].from[1]",
        "network.open",
    ),
    (
        "an address block",
        lambda o: ingress(o, "xinference-supervisor")[0]["from"].append(
            {"ipBlock": {"cidr": "0.0.0.0/0"}}
        ),
        f"NetworkPolicy/{NS}/xinference-supervisor",
        "spec.ingress[0].from[2]",
        "network.open",
    ),
    (
        "no NetworkPolicy for the supervisor",
        _drop("NetworkPolicy", "xinference-supervisor"),
        f"Deployment/{NS}/xinference-supervisor",
        "spec.template.metadata.labels",
        "network.unprotected",
    ),
    (
        "a policy for egress only",
        lambda o: find(o, "NetworkPolicy", "xinference-supervisor")["spec"].update(
            policyTypes=["Egress"]
        ),
        f"Deployment/{NS}/xinference-supervisor",
        "spec.template.metadata.labels",
        "network.unprotected",
    ),
]


def test_the_rendered_set_passes() -> None:
    assert check_objects(rendered()) == []


@pytest.mark.parametrize(
    ("mutate", "where", "path", "rule_id"),
    [w[1:] for w in WIDENINGS],
    ids=[w[0] for w in WIDENINGS],
)
def test_each_widening_is_one_problem(
    mutate: Callable[[Objects], None], where: str, path: str, rule_id: str
) -> None:
    objs = rendered()
    mutate(objs)
    problems = check_objects(objs)
    assert [(p.where, p.path, p.rule) for p in problems] == [(where, path, rule_id)], problems


def test_workers_without_their_policy_are_each_reported() -> None:
    objs = rendered()
    _drop("NetworkPolicy", "xinference-worker")(objs)
    problems = check_objects(objs)
    jobs = {o["metadata"]["name"] for o in objs if o["kind"] == "Job"}
    assert {p.rule for p in problems} == {"network.unprotected"}
    assert {p.where for p in problems} == {f"Job/{NS}/{name}" for name in jobs}
    assert all("xinference-worker pods" in p.message for p in problems)


def test_unnamed_configmap_writes_reach_the_mounted_platform_file() -> None:
    objs = rendered()
    rule(objs, "Role", "xpool-reconciler", "configmaps", "create").pop("resourceNames")
    problems = check_objects(objs)
    assert [(p.where, p.path, p.rule) for p in problems] == [
        (RECONCILER_ROLE, "rules[3].resourceNames", "access.unnamed-write"),
        (RECONCILER_ROLE, "rules[3].verbs", "access.own-configuration"),
    ]
    assert "ConfigMap xpool-platform, which its own pods mount" in problems[1].message
