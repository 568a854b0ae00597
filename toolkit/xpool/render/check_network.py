"""Who may reach the Xinference pods: every one behind a NetworkPolicy that admits only pods
of its own namespace.

Xinference launches, terminates and serves models without authentication of its own (an API
key, when set, is one shared secret), so a pod anywhere in the cluster that reaches its port
is as good as the reconciler. For every pod template of the Xinference supervisor and workers
(`app.kubernetes.io/name`):

- some NetworkPolicy of its namespace selects it for Ingress; without one, every pod of the
  cluster may connect;
- no NetworkPolicy that selects it admits sources beyond chosen pods of the namespace: a rule
  without `from`, an ipBlock, a namespaceSelector or an empty podSelector admits anyone (or
  any pod). Policies add up, so one such rule opens the pods whatever the others say.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xpool.render.check_pods import pod_templates
from xpool.render.check_types import (
    CheckProblem,
    as_dict,
    as_list,
    dig,
    join_path,
    object_ref,
)
from xpool.render.object_names import SUPERVISOR, WORKER

NAME_LABEL = "app.kubernetes.io/name"
XINFERENCE = {SUPERVISOR, WORKER}


def selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """A metav1.LabelSelector matched against `labels`; `{}` selects everything."""
    for key, value in as_dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for expr in as_list(selector.get("matchExpressions")):
        key, op = dig(expr, "key"), dig(expr, "operator")
        values = as_list(dig(expr, "values"))
        present = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and present and labels.get(key) in values)
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def _ingress(policy: dict[str, Any]) -> bool:
    types = as_list(dig(policy, "spec", "policyTypes"))
    return not types or "Ingress" in types  # the API server defaults policyTypes to Ingress


def check_network(objects: list[dict[str, Any]]) -> list[CheckProblem]:
    policies = [o for o in objects if o.get("kind") == "NetworkPolicy" and _ingress(o)]
    problems: list[CheckProblem] = []
    broad: set[str] = set()
    for obj in objects:
        ns = dig(obj, "metadata", "namespace")
        for path, template in pod_templates(obj):
            labels = as_dict(dig(template, "metadata", "labels"))
            if labels.get(NAME_LABEL) not in XINFERENCE:
                continue
            mine = [
                p
                for p in policies
                if dig(p, "metadata", "namespace") == ns
                and selects(as_dict(dig(p, "spec", "podSelector")), labels)
            ]
            if not mine:
                problems.append(
                    CheckProblem(
                        object_ref(obj),
                        join_path(*path, "metadata", "labels"),
                        f"no NetworkPolicy selects these {labels[NAME_LABEL]} pods for "
                        "Ingress: any pod of the cluster may call Xinference; render one that "
                        "admits only the gateway, the reconciler and the Xinference pods",
                        "network.unprotected",
                    )
                )
            broad.update(object_ref(p) for p in mine)
    for policy in policies:
        if object_ref(policy) in broad:
            problems += _open_rules(policy)
    return problems


def _open_rules(policy: dict[str, Any]) -> Iterator[CheckProblem]:
    for i, rule in enumerate(as_list(dig(policy, "spec", "ingress"))):
        peers = as_list(dig(rule, "from"))
        if not peers:
            yield _open(policy, join_path("spec", "ingress", i, "from"), "admits every source")
        for j, peer in enumerate(peers):
            peer = as_dict(peer)
            where = join_path("spec", "ingress", i, "from", j)
            if "ipBlock" in peer:
                yield _open(policy, where, "admits addresses (ipBlock), not chosen pods")
            elif "namespaceSelector" in peer:
                yield _open(policy, where, "admits pods of other namespaces")
            elif not as_dict(peer.get("podSelector")):
                yield _open(policy, where, "admits every pod of the namespace")


def _open(policy: dict[str, Any], path: str, what: str) -> CheckProblem:
    return CheckProblem(
        object_ref(policy),
        path,
        f"selects Xinference pods and {what}: admit only the gateway, the reconciler and the "
        "Xinference pods, by podSelector",
        "network.open",
    )
