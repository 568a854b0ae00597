"""NetworkPolicies: who may reach the Xinference pods.

Xinference's API launches, terminates and serves models without authentication of its own
(the API key, when set, is one shared secret), so only the pods that need it may connect:
the gateway and the reconciler to the supervisor's API, and the Xinference pods to each other
(the supervisor and the workers talk over actor RPC on ports Xinference picks at run time;
the drain container of a worker pod, which shares the pod's labels, asks the supervisor's API
which instances run on its worker).
Everything else, inside the namespace or out, is refused; a cluster whose network plugin does
not enforce NetworkPolicy ignores them (docs/operations.md, Network).
"""

from __future__ import annotations

from typing import Any

from xpool.render.build_context import BuildContext
from xpool.render.build_rbac import comment_lines
from xpool.render.items import Built
from xpool.render.object_names import (
    GATEWAY,
    RECONCILER,
    SUPERVISOR,
    SUPERVISOR_PORT,
    WORKER,
)

ORDER = 2  # with the RBAC: in place before any Xinference pod starts
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"


def build_network_policies(ctx: BuildContext, out: Built) -> None:
    xinference = _pods(ctx, SUPERVISOR, WORKER)
    _policy(
        ctx,
        out,
        SUPERVISOR,
        "The Xinference supervisor: its API only to the gateway (requests) and the reconciler "
        "(launch, terminate); any port to the Xinference pods (workers register and answer "
        "over RPC; a worker pod's drain container lists the instances before it stops).",
        [
            _rule(
                "The gateway and the reconciler: the API port only.",
                [_pods(ctx, GATEWAY), _pods(ctx, RECONCILER)],
                [SUPERVISOR_PORT],
            ),
            _rule("The supervisor and its workers.", [xinference]),
        ],
    )
    _policy(
        ctx,
        out,
        WORKER,
        "The Xinference workers: only the Xinference pods (the supervisor and the other "
        "workers, over RPC on ports Xinference picks). Their metrics port is closed too: "
        "admit your Prometheus with a NetworkPolicy of your own.",
        [_rule("The supervisor and the workers.", [xinference])],
    )


def _policy(
    ctx: BuildContext, out: Built, component: str, why: str, ingress: list[dict[str, Any]]
) -> None:
    out.add(
        ORDER,
        "NetworkPolicy",
        "networkpolicy.yaml.j2",
        name=component,
        namespace=ctx.namespace,
        labels=ctx.labels(component),
        comment=comment_lines(why),
        pod_selector={"matchLabels": ctx.selector(component)},
        ingress=ingress,
    )


def _pods(ctx: BuildContext, *components: str) -> dict[str, Any]:
    """A peer: this platform's pods of `components`, in the namespace."""
    if len(components) == 1:
        return {"podSelector": {"matchLabels": ctx.selector(components[0])}}
    return {
        "podSelector": {
            "matchLabels": {PART_OF_LABEL: ctx.part_of},
            "matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": list(components)}],
        }
    }


def _rule(
    why: str, sources: list[dict[str, Any]], ports: list[int] | None = None
) -> dict[str, Any]:
    return {"comment": comment_lines(why), "sources": sources, "ports": ports or []}
