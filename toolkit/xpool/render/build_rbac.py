"""ServiceAccounts, Roles and their bindings: the reconciler's, the gateway's and the worker
pods' drain sidecar's.

Each rule carries the reason it is needed as a comment of the rendered Role; nothing is
granted by wildcard, no secrets, nothing on the ConfigMaps a component mounts (its
configuration comes from `xpool apply` alone), and every write to a Lease or ConfigMap names
its object, but the reconciler's creation of its leader Lease (docs/scheduling.md, RBAC;
render/check_access.py checks the rendered set for exactly this).
"""

from __future__ import annotations

import textwrap
from typing import Any

from xpool.render.build_context import BuildContext
from xpool.render.items import Built
from xpool.render.object_names import (
    GATEWAY,
    LEASE,
    RECONCILER,
    ROLLOUTS_CONFIGMAP,
    ROUTES_CONFIGMAP,
    SERVICE_ACCOUNT,
    STATE_CONFIGMAP,
    WORKER_DRAIN,
    gateway_pods,
    gateway_report_lease,
    queue_name,
    queues_cluster_role_name,
)

ORDER = 2  # after the Namespace and the PriorityClasses, before what runs under them


def build_rbac(ctx: BuildContext, out: Built) -> None:
    """The reconciler's identity and rights (its Queues cluster-wide, the rest in the
    namespace), then the gateway's, then the drain sidecar's."""
    _reconciler_rbac(ctx, out)
    _gateway_rbac(ctx, out)
    _namespaced_identity(
        ctx,
        out,
        WORKER_DRAIN,
        "worker-drain",
        "The identity of the worker pods' drain containers (no other container mounts it).",
        "What a worker pod's preStop hook (`xpool worker drain`) touches: it marks the "
        "worker's instances draining in the routes and reads the gateway replicas' reports. "
        "Nothing else, no secrets.",
        worker_drain_rules(),
    )


def _reconciler_rbac(ctx: BuildContext, out: Built) -> None:
    ns = ctx.namespace
    queue_names = sorted(queue_name(ctx.platform, t, p) for t in ctx.tiers for p in ctx.spec.pools)
    rbac_labels = ctx.labels("reconciler")
    out.add(
        ORDER,
        "ServiceAccount",
        "serviceaccount.yaml.j2",
        name=SERVICE_ACCOUNT,
        namespace=ns,
        labels=rbac_labels,
        comment="The identity of the reconciler.",
    )
    cluster_role = queues_cluster_role_name(ctx.platform)
    out.add(
        ORDER,
        "ClusterRole",
        "clusterrole.yaml.j2",
        name=cluster_role,
        labels=rbac_labels,
        queues=queue_names,
    )
    out.add(
        ORDER,
        "ClusterRoleBinding",
        "clusterrolebinding.yaml.j2",
        name=cluster_role,
        labels=rbac_labels,
        role=cluster_role,
        service_account=SERVICE_ACCOUNT,
        namespace=ns,
    )
    out.add(
        ORDER,
        "Role",
        "role.yaml.j2",
        name=RECONCILER,
        namespace=ns,
        labels=rbac_labels,
        comment=comment_lines(
            "Everything the reconciler (`xpool reconcile`) touches in this namespace, and "
            "nothing else: no create/delete of workloads, no secrets, no wildcards."
        ),
        rules=reconciler_rules(),
    )
    out.add(
        ORDER,
        "RoleBinding",
        "rolebinding.yaml.j2",
        name=RECONCILER,
        namespace=ns,
        labels=rbac_labels,
        role=RECONCILER,
        service_account=SERVICE_ACCOUNT,
    )


def _gateway_rbac(ctx: BuildContext, out: Built) -> None:
    ns = ctx.namespace
    gateway_rbac_labels = ctx.labels("gateway")
    out.add(
        ORDER,
        "ServiceAccount",
        "serviceaccount.yaml.j2",
        name=GATEWAY,
        namespace=ns,
        labels=gateway_rbac_labels,
        comment="The identity of the gateway replicas: they read the routes and report in Leases.",
    )
    out.add(
        ORDER,
        "Role",
        "role.yaml.j2",
        name=GATEWAY,
        namespace=ns,
        labels=gateway_rbac_labels,
        comment=comment_lines(
            "What each gateway replica (`xpool gateway`) touches: it reads the routes and "
            "reports, in a Lease of its own, what it routes. Nothing else, no secrets."
        ),
        rules=gateway_rules([gateway_report_lease(pod) for pod in gateway_pods()]),
    )
    out.add(
        ORDER,
        "RoleBinding",
        "rolebinding.yaml.j2",
        name=GATEWAY,
        namespace=ns,
        labels=gateway_rbac_labels,
        role=GATEWAY,
        service_account=GATEWAY,
    )


def _namespaced_identity(
    ctx: BuildContext,
    out: Built,
    name: str,
    component: str,
    why_account: str,
    why_role: str,
    rules: list[dict[str, Any]],
) -> None:
    """A ServiceAccount, a Role of `rules` and the binding between them, all named `name`."""
    ns, labels = ctx.namespace, ctx.labels(component)
    out.add(
        ORDER,
        "ServiceAccount",
        "serviceaccount.yaml.j2",
        name=name,
        namespace=ns,
        labels=labels,
        comment=why_account,
    )
    out.add(
        ORDER,
        "Role",
        "role.yaml.j2",
        name=name,
        namespace=ns,
        labels=labels,
        comment=comment_lines(why_role),
        rules=rules,
    )
    out.add(
        ORDER,
        "RoleBinding",
        "rolebinding.yaml.j2",
        name=name,
        namespace=ns,
        labels=labels,
        role=name,
        service_account=name,
    )


def comment_lines(text: str) -> list[str]:
    """`text` as the lines of a YAML comment."""
    return textwrap.wrap(text, 94, break_on_hyphens=False)


def rbac_rule(
    comment: str, api_group: str, resource: str, verbs: list[str], names: list[str] | None = None
) -> dict[str, Any]:
    """One Role rule, with the comment that says why it is needed (wrapped for the YAML)."""
    return {
        "comment": comment_lines(comment),
        "api_group": api_group,
        "resource": resource,
        "names": names or [],
        "verbs": verbs,
    }


def reconciler_rules() -> list[dict[str, Any]]:
    """Everything `xpool reconcile` touches in the platform namespace, and nothing else. The
    platform file and the launch specs are not among them: it reads the file where the pod
    mounts it, so a reconciler cannot change what it runs from."""
    return [
        rbac_rule(
            "Worker groups: observe them and scale a tier's workers (tasks[*].replicas is the "
            "only field Volcano lets a Job update besides minAvailable and priorityClassName).",
            "batch.volcano.sh",
            "jobs",
            ["get", "list", "watch", "patch"],
        ),
        rbac_rule(
            "PodGroups: read-only, to see whether a worker group is Pending/Inqueue/Running.",
            "scheduling.volcano.sh",
            "podgroups",
            ["get", "list", "watch"],
        ),
        rbac_rule(
            "Worker pods: which workers run where, and which were evicted or preempted.",
            "",
            "pods",
            ["get", "list", "watch"],
        ),
        rbac_rule(
            f"The routes every gateway follows ({ROUTES_CONFIGMAP}), the reconciler's memory "
            f"({STATE_CONFIGMAP}) and the rollouts ({ROLLOUTS_CONFIGMAP}), by name: read, and "
            "written by server-side apply, which "
            "creates them when absent. The API server authorizes that creation as `create` of "
            "the name in the request's URL (apiserver endpoints/handlers/patch.go), so unlike "
            "a POST it is restricted by resourceNames.",
            "",
            "configmaps",
            ["get", "patch", "create"],
            [ROUTES_CONFIGMAP, STATE_CONFIGMAP, ROLLOUTS_CONFIGMAP],
        ),
        rbac_rule(
            "The reconciler's leader lease: it is created by POST, whose name RBAC cannot see, "
            "so create is granted alone; reading and renewing is restricted to the lease xpool "
            "holds.",
            "coordination.k8s.io",
            "leases",
            ["create"],
        ),
        rbac_rule(
            "",
            "coordination.k8s.io",
            "leases",
            ["get", "update"],
            [LEASE],
        ),
        _reports_rule(),
    ]


def _reports_rule() -> dict[str, Any]:
    """Reading the gateway replicas' report Leases, as the reconciler and a worker drain do."""
    return rbac_rule(
        "The gateway replicas' drain reports (Leases xpool-gateway-<pod>, selected by "
        "label): list cannot be restricted by name or label, so this reads every Lease of "
        "the namespace; it changes none.",
        "coordination.k8s.io",
        "leases",
        ["list"],
    )


def gateway_rules(leases: list[str]) -> list[dict[str, Any]]:
    """What `xpool gateway` needs: its routes and its replicas' report `leases`."""
    return [
        rbac_rule(
            "The routes the reconciler writes, read-only, by name.",
            "",
            "configmaps",
            ["get"],
            [ROUTES_CONFIGMAP],
        ),
        rbac_rule(
            "Each replica's drain report, the Lease xpool-gateway-<pod name>: created and "
            "renewed by server-side apply (patch; create when absent, which the API server "
            "authorizes as `create` of the name in the URL, so resourceNames restricts it), "
            "deleted when the replica stops. The StatefulSet's pod names are fixed, so these "
            "are the only Leases it may touch: not the reconciler's, nor another platform's. "
            "The gateway never reads Leases (no get, list, update).",
            "coordination.k8s.io",
            "leases",
            ["create", "patch", "delete"],
            leases,
        ),
    ]


def worker_drain_rules() -> list[dict[str, Any]]:
    """What `xpool worker drain` needs on Kubernetes: the routes (by name) and the reports."""
    return [
        rbac_rule(
            f"The routes every gateway follows ({ROUTES_CONFIGMAP}), by name: read, and the "
            "worker's instances marked draining by server-side apply (patch). No create: a "
            "drain with no routes has nothing to drain, and a routes ConfigMap is the "
            "reconciler's to create.",
            "",
            "configmaps",
            ["get", "patch"],
            [ROUTES_CONFIGMAP],
        ),
        _reports_rule(),
    ]
