"""Built-in checks of a rendered set of objects: ``render`` refuses to print a set that fails them.

``check_objects(objects)`` returns every problem found, each naming the object
(``Kind/namespace/name``), the field and what to do; ``[]`` means the set passes. It is pure: no
network, no subprocess (the Kubernetes schemas are package data of ``kubernetes-validate``).

What is checked, in this order for each object, then across the set:

1. Structure, for every object (``check_meta``): apiVersion, kind, metadata.name present; the
   name in the format the API server requires for the kind; namespace, labels, annotations well
   formed; ConfigMap keys and the 1 MiB size limit. Kinds served neither by Kubernetes nor by Volcano (e.g. ``PrometheusRule`` from
   monitoring.coreos.com) get this structural check only.
2. Core Kubernetes kinds (``check_kube``) against the OpenAPI schemas of ``kubernetes_version``
   shipped in ``kubernetes-validate``, strict: unknown fields are refused.
3. Volcano kinds (``check_volcano``): Volcano's admission rules (webhooks and validating
   admission policies), then the generated client's CRD schema, unknown fields refused.
4. Pod templates of every workload (``check_pods``): resource amounts parse as Kubernetes
   quantities, requests within limits, extended resources (GPUs, NPUs) not overcommitted.
5. Across the set (``check_intent``): borrowing needs ``reclaim``; ``capacity`` xor
   ``proportion``; P0 neither reclaimable nor preemptable; requested resources in the queue's
   deserved; queues, parent queues and priority classes referenced exist.
6. Access (``check_access``): no Role or ClusterRole grants more than its component needs
   (wildcards, Secrets, unnamed writes to Leases and ConfigMaps, cluster-wide rules naming
   nothing or another platform's objects, writes to the ConfigMaps a component mounts).
7. Network (``check_network``): every Xinference pod is behind a NetworkPolicy that admits
   only chosen pods of its namespace.
8. Eviction (``check_evict``): every worker pod drains its instances before its worker
   stops (a drain preStop, the worker's wait for it, a grace period covering drainTimeout).

Only the first problem per (object, field) is kept, so a field that breaks both a Volcano rule
and the CRD schema is reported once, with the rule's more specific message.
"""

from __future__ import annotations

from typing import Any

from xpool.render.check_access import check_access
from xpool.render.check_evict import check_evict
from xpool.render.check_intent import check_intent
from xpool.render.check_kube import (
    UnsupportedKubernetesVersion,
    check_core_schema,
    resolve_kubernetes_version,
    supported_kubernetes_versions,
)
from xpool.render.check_meta import check_configmap, check_structure
from xpool.render.check_network import check_network
from xpool.render.check_pods import check_pod_templates
from xpool.render.check_types import CheckProblem
from xpool.render.check_volcano import check_volcano_object, is_volcano

# The newest Kubernetes minor release kubernetes-validate 1.37 ships schemas for.
DEFAULT_K8S_VERSION = "1.37"

__all__ = [
    "DEFAULT_K8S_VERSION",
    "CheckProblem",
    "UnsupportedKubernetesVersion",
    "check_objects",
    "supported_kubernetes_versions",
]


def check_objects(
    objects: list[dict[str, Any]], *, kubernetes_version: str = DEFAULT_K8S_VERSION
) -> list[CheckProblem]:
    """Every problem of the rendered ``objects``; ``[]`` when the set is fit to apply.

    Raises UnsupportedKubernetesVersion when the installed kubernetes-validate has no schemas
    for ``kubernetes_version`` (a usage error, not a problem of the objects).
    """
    resolve_kubernetes_version(kubernetes_version)
    problems: list[CheckProblem] = []
    sound: list[dict[str, Any]] = []
    for obj in objects:
        found, ok = check_structure(obj)
        problems += found
        if not ok:
            continue
        sound.append(obj)
        if is_volcano(obj):
            problems += check_volcano_object(obj)
        else:
            problems += check_core_schema(obj, kubernetes_version)
        problems += check_pod_templates(obj)
        problems += check_configmap(obj)
    problems += check_intent(sound)
    problems += check_access(sound)
    problems += check_network(sound)
    problems += check_evict(sound)
    return _first_per_field(problems)


def _first_per_field(problems: list[CheckProblem]) -> list[CheckProblem]:
    seen: set[tuple[str, str]] = set()
    kept = []
    for problem in problems:
        key = (problem.where, problem.path)
        if key not in seen:
            seen.add(key)
            kept.append(problem)
    return kept
