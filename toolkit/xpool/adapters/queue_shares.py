"""Volcano Queue shares (`spec.deserved`, `spec.capability`) owned by the reconciler.

`xpool apply` creates every Queue from the platform file (field manager `xpool`). The reconciler
lends and reclaims capacity between tiers at run time, so Volcano's own reclaim must see the same
shares: it sets them with server-side apply under a second field manager, `xpool-reconciler`,
forcing ownership away from `xpool`. From then on `xpool apply` and `xpool diff` leave out the
share entries that manager owns (`without_reconciler_shares`), so neither writer reverts the
other and no apply meets a 409 conflict.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from xpool.adapters.kube_client import APPLY_PATCH, KubeClient, KubeStatusError, Resource
from xpool.errors import InputError, Problem, RemoteError
from xpool.render.check_quantity import QuantityError, parse_quantity
from xpool.render.check_volcano import check_queue

RECONCILER_MANAGER = "xpool-reconciler"
SHARE_FIELDS = ("deserved", "capability")
QUEUE_API_VERSION = "scheduling.volcano.sh/v1beta1"
QUEUE_KIND = "Queue"
WHOLE = "*"  # stands for the whole map when a manager owns it without naming keys (atomic)

Shares = dict[str, dict[str, str]]  # {"deserved": {resource: quantity}, "capability": {...}}
Owners = dict[str, dict[str, set[str]]]  # share field -> resource (or WHOLE) -> managers


@dataclass(frozen=True)
class QueueShare:
    """The wanted shares of one Queue: resource name -> quantity, e.g. {"nvidia.com/gpu": "12"};
    give cpu and memory too when the rendered Queue has them."""

    name: str
    deserved: dict[str, str]
    capability: dict[str, str]


@dataclass(frozen=True)
class QueueShareChange:
    """One Queue whose shares changed: as read live, and as the server answered the apply."""

    name: str
    before: Shares
    after: Shares


def is_queue(obj: dict[str, Any]) -> bool:
    return obj.get("apiVersion") == QUEUE_API_VERSION and obj.get("kind") == QUEUE_KIND


def share_owners(live: dict[str, Any] | None) -> Owners:
    """Who owns each share entry of a live Queue, read from its managedFields (FieldsV1)."""
    owners: Owners = {name: {} for name in SHARE_FIELDS}
    for entry in ((live or {}).get("metadata") or {}).get("managedFields") or []:
        spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        for name in SHARE_FIELDS:
            node = spec.get(f"f:{name}")
            if node is None:
                continue
            keys = [k[2:] for k in node if k.startswith("f:")] or [WHOLE]
            for key in keys:
                owners[name].setdefault(key, set()).add(str(entry.get("manager", "")))
    return owners


def without_reconciler_shares(obj: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """The body `xpool apply` sends for `obj`: without the share entries `xpool-reconciler` owns
    on `live` (`obj` itself when it owns none, e.g. on the first apply or before it ever ran).

    Leaving them out is safe under server-side apply: a field the applier stops sending is
    removed only when no other manager owns it, and here the reconciler does, so its value stays
    and only xpool's claim (if it still co-owned the value) is released. Sending them instead
    would conflict (409) with the reconciler's values, or revert them with --force-conflicts.
    Entries the reconciler does not own (say it sets only the accelerator) are still sent, so
    xpool keeps owning them. The dry run behind `xpool diff` sends the same body, so the
    reconciler's values never show up as changes.
    """
    if live is None or not is_queue(obj):
        return obj
    owners = share_owners(live)
    spec = obj.get("spec") or {}
    drop = {
        name: {key for key, who in owners[name].items() if RECONCILER_MANAGER in who}
        for name in SHARE_FIELDS
        if name in spec
    }
    if not any(drop.values()):
        return obj
    body = copy.deepcopy(obj)
    for name, keys in drop.items():
        kept = {k: v for k, v in (body["spec"][name] or {}).items() if k not in keys}
        if kept and WHOLE not in keys:
            body["spec"][name] = kept
        else:
            del body["spec"][name]
    return body


def set_queue_shares(
    kube: KubeClient, shares: list[QueueShare], *, dry_run: bool = False
) -> list[QueueShareChange]:
    """Set each Queue's `deserved` and `capability` as field manager `xpool-reconciler`.

    Every Queue is read and every share checked (quantities, deserved <= capability,
    guarantee <= deserved, as Volcano's admission does) before anything is written; a Queue whose
    shares already have the wanted amounts (compared as quantities: "12" == "12.0",
    "1Gi" == "1024Mi") is not written at all. Each other Queue gets one forced server-side apply
    holding only its name and the two shares. `dry_run` sends them with `dryRun=All`: nothing
    is persisted, the changes are still returned. Returns the Queues that changed.
    """
    res = kube.resource(QUEUE_API_VERSION, QUEUE_KIND)
    if res is None:
        raise InputError(
            f"{QUEUE_API_VERSION} {QUEUE_KIND} is not served by the cluster at {kube.host}: "
            "install Volcano, then run `xpool apply FILE`"
        )
    names = [s.name for s in shares]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"Queue {twice[0]} is given more than once: give each Queue's shares once")
    pending: list[tuple[QueueShare, Shares]] = []
    for share in shares:
        live = _get(kube, res, share.name)
        wanted = {"deserved": share.deserved, "capability": share.capability}
        outcome = _outcome(live, wanted)
        _check(share.name, live, outcome)
        before = _shares(live)
        if not _same(before, outcome):
            pending.append((share, before))
    return [
        QueueShareChange(share.name, before, _shares(_apply(kube, res, share, dry_run=dry_run)))
        for share, before in pending
    ]


def _get(kube: KubeClient, res: Resource, name: str) -> dict[str, Any]:
    try:
        return kube.request("GET", res.path(name, None), what=f"Queue {name}")
    except KubeStatusError as exc:
        if exc.status == 404:
            raise _missing(name) from None
        raise RemoteError(f"Queue {name}: GET refused: {exc.summary()}") from None


def _missing(name: str) -> InputError:
    return InputError(f"Queue {name} does not exist: run `xpool apply FILE` first")


def _apply(kube: KubeClient, res: Resource, share: QueueShare, *, dry_run: bool) -> dict[str, Any]:
    query = {"fieldManager": RECONCILER_MANAGER, "force": "true"}
    if dry_run:
        query["dryRun"] = "All"
    body = {
        "apiVersion": QUEUE_API_VERSION,
        "kind": QUEUE_KIND,
        "metadata": {"name": share.name},
        "spec": {"deserved": dict(share.deserved), "capability": dict(share.capability)},
    }
    try:
        return kube.request(
            "PATCH",
            res.path(share.name, None),
            what=f"Queue {share.name}",
            query=query,
            body=body,
            content_type=APPLY_PATCH,
        )
    except KubeStatusError as exc:
        if exc.status == 404:
            raise _missing(share.name) from None
        hint = "; check the reconciler's RBAC (patch on queues)" if exc.status == 403 else ""
        raise RemoteError(
            f"Queue {share.name}: server-side apply of its shares refused: {exc.summary()}{hint}"
        ) from None


def _shares(obj: dict[str, Any]) -> Shares:
    spec = obj.get("spec") or {}
    return {
        name: {str(k): str(v) for k, v in (spec.get(name) or {}).items()} for name in SHARE_FIELDS
    }


def _outcome(live: dict[str, Any], wanted: Shares) -> Shares:
    """The shares the forced apply would leave: the wanted entries, plus the live ones it does
    not send that some other manager keeps (one only the reconciler owned is removed)."""
    owners = share_owners(live)
    current = _shares(live)
    out: Shares = {}
    for name in SHARE_FIELDS:
        whole = owners[name].get(WHOLE, set())
        kept = {
            key: value
            for key, value in current[name].items()
            if key not in wanted[name]
            and (owners[name].get(key, set()) | whole) - {RECONCILER_MANAGER}
        }
        out[name] = {**kept, **{str(k): str(v) for k, v in wanted[name].items()}}
    return out


def _check(name: str, live: dict[str, Any], outcome: Shares) -> None:
    """Refuse shares Volcano's queue admission would refuse, naming the entry."""
    for field_name in SHARE_FIELDS:
        if not outcome[field_name]:
            raise InputError(
                [
                    Problem(
                        f"Queue {name}",
                        f"spec.{field_name}",
                        "is empty: give at least one resource",
                    )
                ]
            )
    spec = {**(live.get("spec") or {}), **outcome}
    queue = {"apiVersion": QUEUE_API_VERSION, "kind": QUEUE_KIND, "metadata": {"name": name}}
    problems = [
        p
        for p in check_queue({**queue, "spec": spec})
        if p.path.startswith(("spec.deserved.", "spec.capability."))
    ]
    if problems:
        raise InputError([Problem(f"Queue {name}", p.path, p.message) for p in problems])


def _same(before: Shares, after: Shares) -> bool:
    return all(_same_amounts(before[name], after[name]) for name in SHARE_FIELDS)


def _same_amounts(a: dict[str, str], b: dict[str, str]) -> bool:
    if a.keys() != b.keys():
        return False
    try:
        return all(parse_quantity(a[k]) == parse_quantity(b[k]) for k in a)
    except QuantityError:
        return False  # an unreadable live amount: the apply replaces it
