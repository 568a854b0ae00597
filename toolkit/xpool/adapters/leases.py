"""`coordination.k8s.io/v1` Leases: the reconciler's leader election record and each gateway
replica's report.

Outcomes that callers decide on are values, not exceptions: an absent Lease reads as None; a
create that finds the Lease already there (409 AlreadyExists) and an update computed from a
stale resourceVersion (409 Conflict, or 404 when it was deleted since the read) return None,
because another writer got there first; deleting an absent Lease returns False. Every other
failure raises RemoteError naming the Lease, with a hint when the API server refused (RBAC, a
missing namespace).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from xpool.adapters.kube_client import APPLY_PATCH, KubeClient, KubeStatusError
from xpool.errors import RemoteError

API_VERSION = "coordination.k8s.io/v1"
# what each operation needs granted, named as in RBAC rules
_RBAC_VERBS = {
    "read": "get",
    "create": "create",
    "update": "update",
    "apply": "patch",
    "delete": "delete",
    "list": "list",
}


def micro_time(when: float) -> str:
    """Kubernetes MicroTime (RFC 3339, microseconds, UTC) of unix seconds `when`."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Any) -> float | None:
    """Unix seconds of a Time or MicroTime string; None when absent or malformed."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class LeaseSpec:
    """A Lease's `spec`. Times stay the strings stored (MicroTime), so that a record read and
    written back is unchanged and can be compared as read; None means absent."""

    holder: str = ""  # holderIdentity; "" when the Lease is free
    duration: int | None = None  # leaseDurationSeconds
    acquire_time: str | None = None
    renew_time: str | None = None
    transitions: int | None = None  # leaseTransitions

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> LeaseSpec:
        """Tolerant: a field of the wrong type reads as absent."""
        acquire, renew = spec.get("acquireTime"), spec.get("renewTime")
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            duration=_int(spec.get("leaseDurationSeconds")),
            acquire_time=acquire if isinstance(acquire, str) and acquire else None,
            renew_time=renew if isinstance(renew, str) and renew else None,
            transitions=_int(spec.get("leaseTransitions")),
        )

    def to_json(self) -> dict[str, Any]:
        fields = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class Lease:
    """A Lease as stored. `writes` holds (field manager, unix seconds) of its managedFields
    entries: the API server's clock, whole seconds. `stored` is the object as read, so that
    an update keeps the fields xpool does not model."""

    name: str
    namespace: str
    spec: LeaseSpec
    resource_version: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    writes: tuple[tuple[str, float], ...] = ()
    stored: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Lease:
        meta = obj.get("metadata") or {}
        writes = [
            (str(entry.get("manager") or ""), parse_time(entry.get("time")))
            for entry in meta.get("managedFields") or []
        ]
        return cls(
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            spec=LeaseSpec.from_json(obj.get("spec") or {}),
            resource_version=str(meta.get("resourceVersion") or ""),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            writes=tuple((m, t) for m, t in writes if t is not None),
            stored=obj,
        )

    def written_by(self, manager: str) -> list[float]:
        """When field manager `manager` wrote this Lease, as the API server recorded it."""
        return [when for who, when in self.writes if who == manager]


def _collection(namespace: str) -> str:
    return f"/apis/{API_VERSION}/namespaces/{namespace}/leases"


def _path(namespace: str, name: str) -> str:
    return f"{_collection(namespace)}/{name}"


def _subject(namespace: str, name: str) -> str:
    return f"Lease {namespace}/{name}"


def _refused(action: str, namespace: str, subject: str, exc: KubeStatusError) -> RemoteError:
    hint = ""
    if exc.status in (401, 403):
        hint = f"; grant {_RBAC_VERBS[action]} on leases.coordination.k8s.io in {namespace}"
    elif exc.status == 404:  # reads and updates handle 404 themselves: the namespace is missing
        hint = f"; create the namespace {namespace} or choose another"
    return RemoteError(f"{subject}: cannot {action} it: {exc.summary()}{hint}")


def read_lease(kube: KubeClient, namespace: str, name: str) -> Lease | None:
    """The Lease, or None when it does not exist."""
    subject = _subject(namespace, name)
    try:
        return Lease.from_json(kube.request("GET", _path(namespace, name), what=subject))
    except KubeStatusError as exc:
        if exc.status == 404:
            return None
        raise _refused("read", namespace, subject, exc) from None


def create_lease(kube: KubeClient, namespace: str, name: str, spec: LeaseSpec) -> Lease | None:
    """Create the Lease; None when it already exists (409 AlreadyExists: another writer)."""
    subject = _subject(namespace, name)
    body = {
        "apiVersion": API_VERSION,
        "kind": "Lease",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec.to_json(),
    }
    try:
        stored = kube.request("POST", _collection(namespace), body=body, what=subject)
    except KubeStatusError as exc:
        if exc.status == 409:
            return None
        raise _refused("create", namespace, subject, exc) from None
    return Lease.from_json(stored)


def update_lease(kube: KubeClient, lease: Lease, spec: LeaseSpec) -> Lease | None:
    """Replace `lease`'s spec fields with those `spec` sets (PUT), on condition that it is
    still at the resourceVersion it was read at. None when another writer changed it since
    (409 Conflict) or deleted it (404): read again before deciding anything."""
    subject = _subject(lease.namespace, lease.name)
    meta = {
        **(lease.stored.get("metadata") or {}),
        "name": lease.name,
        "namespace": lease.namespace,
        "resourceVersion": lease.resource_version,
    }
    body = {
        **lease.stored,
        "apiVersion": API_VERSION,
        "kind": "Lease",
        "metadata": meta,
        "spec": {**(lease.stored.get("spec") or {}), **spec.to_json()},
    }
    try:
        stored = kube.request("PUT", _path(lease.namespace, lease.name), body=body, what=subject)
    except KubeStatusError as exc:
        if exc.status in (404, 409):
            return None
        raise _refused("update", lease.namespace, subject, exc) from None
    return Lease.from_json(stored)


def apply_lease(
    kube: KubeClient,
    namespace: str,
    name: str,
    spec: LeaseSpec,
    *,
    manager: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
) -> Lease:
    """Create or overwrite the fields `manager` owns (server-side apply, forced: one
    idempotent call, for a Lease only its own writer changes)."""
    subject = _subject(namespace, name)
    body = {
        "apiVersion": API_VERSION,
        "kind": "Lease",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": dict(annotations),
        },
        "spec": spec.to_json(),
    }
    try:
        stored = kube.request(
            "PATCH",
            _path(namespace, name),
            query={"fieldManager": manager, "force": "true"},
            body=body,
            content_type=APPLY_PATCH,
            what=subject,
        )
    except KubeStatusError as exc:
        raise _refused("apply", namespace, subject, exc) from None
    return Lease.from_json(stored)


def delete_lease(kube: KubeClient, namespace: str, name: str) -> bool:
    """Delete the Lease; False when it did not exist."""
    subject = _subject(namespace, name)
    try:
        kube.request("DELETE", _path(namespace, name), what=subject)
    except KubeStatusError as exc:
        if exc.status == 404:
            return False
        raise _refused("delete", namespace, subject, exc) from None
    return True


def list_leases(kube: KubeClient, namespace: str, labels: Mapping[str, str]) -> list[Lease]:
    """The Leases of `namespace` carrying every label of `labels` (an equality selector)."""
    selector = ",".join(f"{key}={value}" for key, value in labels.items())
    subject = f"Leases {namespace}/{selector}"
    try:
        listing = kube.request(
            "GET", _collection(namespace), query={"labelSelector": selector}, what=subject
        )
    except KubeStatusError as exc:
        raise _refused("list", namespace, subject, exc) from None
    return [Lease.from_json(item) for item in listing.get("items") or []]
