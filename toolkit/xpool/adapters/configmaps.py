"""xpool's own state ConfigMaps (routes, reconciler memory, rollouts): read one, and write it
by server-side apply, optionally with the resourceVersion read as a precondition so that a
concurrent change makes the write fail (409) instead of being overwritten."""

from __future__ import annotations

from typing import Any

from xpool.adapters.kube_client import APPLY_PATCH, KubeClient, KubeStatusError
from xpool.errors import RemoteError


def _path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"


def read_configmap(kube: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The ConfigMap, or None when it does not exist."""
    try:
        return kube.request("GET", _path(namespace, name), what=f"read ConfigMap {name}")
    except KubeStatusError as exc:
        if exc.status == 404:
            return None
        raise RemoteError(f"read ConfigMap {namespace}/{name}: {exc.summary()}") from None


def write_configmap(
    kube: KubeClient,
    namespace: str,
    name: str,
    data: dict[str, str],
    *,
    manager: str,
    based_on: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
) -> bool:
    """Apply `data`; with `based_on` (the object read before), only if it is unchanged since.
    False on that conflict (read again and retry); other failures raise RemoteError. Creation
    has no such guard (apply has no "must not exist"): one writer of a new ConfigMap is assumed.
    """
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    if based_on is not None:
        meta["resourceVersion"] = based_on["metadata"]["resourceVersion"]
    try:
        kube.request(
            "PATCH",
            _path(namespace, name),
            query={"fieldManager": manager, "force": "true"},
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data},
            content_type=APPLY_PATCH,
            what=f"write ConfigMap {name}",
        )
    except KubeStatusError as exc:
        if exc.status == 409 and based_on is not None:
            return False
        raise RemoteError(f"write ConfigMap {namespace}/{name}: {exc.summary()}") from None
    return True
