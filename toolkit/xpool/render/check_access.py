"""Least privilege of the rendered Roles and ClusterRoles: what no schema can check.

A Role that grants more than its component needs turns one compromised pod into a
compromised platform: a gateway that may delete any Lease can end the reconciler's
leadership or erase the other replicas' drain reports; a reconciler that may rewrite the
platform ConfigMap it runs from can change what it runs. "More" is, for every rule:

- a wildcard, a non-resource URL, Secrets, or a verb that escalates (escalate, bind,
  impersonate) or deletes in bulk (deletecollection);
- on Leases and ConfigMaps (the state the components share: routes, memory, rollouts, the
  leader Lease, the drain reports), a verb RBAC can restrict by name (get, update, patch,
  delete; create, which server-side apply authorizes with the name in the URL) without
  resourceNames. Only list and watch, and a Lease's create (the leader Lease is created by
  POST, whose name RBAC never sees), may go unnamed;
- in a ClusterRole, a rule that names no objects, or names one the set does not hold:
  cluster-wide, either reaches other platforms' objects;
- across the set: a ServiceAccount that may write a ConfigMap its own pods mount. A
  component's configuration comes from `xpool apply` alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product
from typing import Any

from xpool.render.check_pods import pod_templates
from xpool.render.check_types import (
    CheckProblem,
    api_group,
    as_dict,
    as_list,
    dig,
    join_path,
    object_ref,
)

RBAC_GROUP = "rbac.authorization.k8s.io"
STATE = {("", "configmaps"), ("coordination.k8s.io", "leases")}
NAMEABLE_VERBS = {"get", "update", "patch", "delete", "create"}
UNNAMED_CREATE = {("coordination.k8s.io", "leases")}
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "deletecollection"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def _is_rbac(obj: dict[str, Any], kind: str) -> bool:
    return obj.get("kind") == kind and api_group(str(obj.get("apiVersion", ""))) == RBAC_GROUP


def _strings(value: Any) -> list[str]:
    return [str(v) for v in as_list(value)]


def plural(kind: str) -> str:
    """The resource name of `kind` as RBAC spells it (Queue -> queues, PriorityClass ->
    priorityclasses, NetworkPolicy -> networkpolicies)."""
    lower = kind.lower()
    if lower.endswith("s"):
        return f"{lower}es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "o", "u"):
        return f"{lower[:-1]}ies"
    return f"{lower}s"


def check_access(objects: list[dict[str, Any]]) -> list[CheckProblem]:
    in_set: dict[tuple[str, str], set[str]] = {}
    for obj in objects:
        key = (api_group(str(obj.get("apiVersion", ""))), plural(str(obj.get("kind", ""))))
        in_set.setdefault(key, set()).add(str(dig(obj, "metadata", "name")))
    problems: list[CheckProblem] = []
    for obj in objects:
        cluster = _is_rbac(obj, "ClusterRole")
        if cluster or _is_rbac(obj, "Role"):
            for i, rule in enumerate(as_list(obj.get("rules"))):
                problems += _rule_problems(object_ref(obj), i, as_dict(rule))
                if cluster:
                    problems += _cluster_rule_problems(object_ref(obj), i, as_dict(rule), in_set)
    problems += _own_configuration_problems(objects)
    return problems


def _rule_problems(where: str, i: int, rule: dict[str, Any]) -> Iterator[CheckProblem]:
    verbs = set(_strings(rule.get("verbs")))
    for field in ("apiGroups", "resources", "verbs", "resourceNames"):
        if "*" in _strings(rule.get(field)):
            yield CheckProblem(
                where,
                join_path("rules", i, field),
                "grants '*': name each API group, resource and verb the component needs",
                "access.wildcard",
            )
    if rule.get("nonResourceURLs"):
        yield CheckProblem(
            where,
            join_path("rules", i, "nonResourceURLs"),
            "grants non-resource URLs: no xpool component needs them; remove them",
            "access.forbidden",
        )
    if "secrets" in _strings(rule.get("resources")) or verbs & FORBIDDEN_VERBS:
        yield CheckProblem(
            where,
            join_path("rules", i),
            "grants Secrets or a verb among escalate, bind, impersonate, deletecollection: "
            "no xpool component needs them; remove it",
            "access.forbidden",
        )
    if not rule.get("resourceNames"):
        targets = set(product(_strings(rule.get("apiGroups")), _strings(rule.get("resources"))))
        for target in sorted(targets & STATE):
            unnamed = verbs & NAMEABLE_VERBS - ({"create"} if target in UNNAMED_CREATE else set())
            if unnamed:
                yield CheckProblem(
                    where,
                    join_path("rules", i, "resourceNames"),
                    f"grants {', '.join(sorted(unnamed))} on every {target[1]} of the "
                    "namespace: name the objects the component owns in resourceNames, or "
                    "it may change another component's state",
                    "access.unnamed-write",
                )


def _cluster_rule_problems(
    where: str, i: int, rule: dict[str, Any], in_set: dict[tuple[str, str], set[str]]
) -> Iterator[CheckProblem]:
    names = _strings(rule.get("resourceNames"))
    path = join_path("rules", i, "resourceNames")
    if not names:
        yield CheckProblem(
            where,
            path,
            "a ClusterRole rule that names no objects reaches every platform's on the "
            "cluster: name this platform's in resourceNames",
            "access.cluster-unnamed",
        )
        return
    known = set().union(
        *(
            in_set.get(target, set())
            for target in product(_strings(rule.get("apiGroups")), _strings(rule.get("resources")))
        )
    )
    foreign = [n for n in names if n not in known]
    if foreign:
        yield CheckProblem(
            where,
            path,
            f"names {', '.join(foreign)}, which this set does not render: another "
            "platform's objects, or a stale name; name only this platform's",
            "access.cluster-foreign",
        )


def _own_configuration_problems(objects: list[dict[str, Any]]) -> Iterator[CheckProblem]:
    """Rules that let a ServiceAccount write a ConfigMap its own pods mount."""
    mounted = _mounted_configmaps(objects)
    roles = {
        (str(dig(o, "metadata", "namespace") or ""), str(dig(o, "metadata", "name"))): o
        for o in objects
        if _is_rbac(o, "Role")
    }
    for binding in objects:
        if not _is_rbac(binding, "RoleBinding"):
            continue
        ns = str(dig(binding, "metadata", "namespace") or "")
        role = roles.get((ns, str(dig(binding, "roleRef", "name"))))
        if role is None or dig(binding, "roleRef", "kind") != "Role":
            continue
        for subject in as_list(binding.get("subjects")):
            if dig(subject, "kind") == "ServiceAccount":
                account = (str(dig(subject, "namespace") or ns), str(dig(subject, "name")))
                yield from _writes_to(role, account, mounted.get(account, set()))


def _writes_to(
    role: dict[str, Any], account: tuple[str, str], configmaps: set[str]
) -> Iterator[CheckProblem]:
    for i, rule in enumerate(as_list(role.get("rules"))):
        rule = as_dict(rule)
        if "" not in _strings(rule.get("apiGroups")) or "configmaps" not in _strings(
            rule.get("resources")
        ):
            continue
        if not set(_strings(rule.get("verbs"))) & WRITE_VERBS:
            continue
        names = set(_strings(rule.get("resourceNames"))) or configmaps
        hit = sorted(names & configmaps)
        if hit:
            yield CheckProblem(
                object_ref(role),
                join_path("rules", i, "verbs"),
                f"lets ServiceAccount {account[0]}/{account[1]} write ConfigMap "
                f"{', '.join(hit)}, which its own pods mount: a component could change the "
                "configuration it runs from; grant it no write there",
                "access.own-configuration",
            )


def _mounted_configmaps(objects: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(namespace, ServiceAccount) -> the ConfigMaps its pods mount as volumes."""
    out: dict[tuple[str, str], set[str]] = {}
    for obj in objects:
        ns = str(dig(obj, "metadata", "namespace") or "")
        for _path, template in pod_templates(obj):
            spec = as_dict(template.get("spec"))
            account = (ns, str(spec.get("serviceAccountName") or "default"))
            for volume in as_list(spec.get("volumes")):
                sources = [as_dict(volume), *as_list(dig(volume, "projected", "sources"))]
                for source in sources:
                    name = dig(source, "configMap", "name")
                    if isinstance(name, str):
                        out.setdefault(account, set()).add(name)
    return out
