"""Server-side apply, diff and ApplySet pruning of rendered Kubernetes objects.

- Every object is sent with server-side apply (field manager `xpool`), in the renderer's order.
- Before a real apply, a dry-run apply (`dryRun=All`) is compared with the live object, ignoring
  bookkeeping (managedFields, resourceVersion, generation, creationTimestamp, uid, status); when
  they are equal nothing is written, so a second `xpool apply` performs no writes at all.
- Pruning follows the ApplySet KEP (KEP-3659): every applied object carries the label
  `applyset.kubernetes.io/part-of: <id>`; the parent is the ConfigMap `xpool-applyset` in the
  platform namespace, listing the group-kinds (and other namespaces) its members may live in.
  Only objects carrying our id are ever listed for pruning, let alone deleted. A shared object
  (Volcano's scheduler configuration, `Item.shared`) is applied but never a member.
- Every target is read before the first write: one that exists and is not this platform's
  (another ApplySet's, Helm's, anyone's without our label; for a shared object, one `xpool`
  does not manage) stops the run, naming it and its managers, unless `--adopt` (exit 2,
  nothing written). The platform Namespace made by someone else is used as it is, not written.
- A field owned by another manager stops the run at that object (exit 1) unless
  --force-conflicts; everything before it stays applied and a re-run converges.
- Queue shares the reconciler owns (field manager `xpool-reconciler`) are left out of what is
  applied and diffed, so its values stay (see `queue_shares.without_reconciler_shares`); a live
  worker Job is applied and diffed with its tasks' live replicas, which the reconciler scales
  (`worker_jobs.with_live_replicas`).
"""

from __future__ import annotations

import base64
import copy
import difflib
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import yaml

from xpool.adapters.kube_client import (
    APPLY_PATCH,
    Connection,
    KubeClient,
    KubeConfigError,
    KubeStatusError,
    Log,
    Resource,
    RetryPolicy,
)
from xpool.adapters.ownership import PART_OF, field_managers, member_of, owners
from xpool.adapters.queue_shares import without_reconciler_shares
from xpool.adapters.worker_jobs import with_live_replicas
from xpool.errors import RemoteError, XpoolError

__all__ = [
    "FIELD_MANAGER",
    "PARENT_NAME",
    "AdoptionError",
    "Applier",
    "ConflictError",
    "Connection",
    "KubeClient",
    "KubeConfigError",
    "ObjectDiff",
    "Outcome",
    "RetryPolicy",
    "UnservedError",
    "applyset_id",
]

FIELD_MANAGER = "xpool"
PARENT_NAME = "xpool-applyset"
ID_LABEL = "applyset.kubernetes.io/id"
TOOLING = "applyset.kubernetes.io/tooling"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"
ADDITIONAL_NAMESPACES = "applyset.kubernetes.io/additional-namespaces"

IGNORED_METADATA = (
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
)

INSTALL_HINTS = {
    "scheduling.volcano.sh": "install Volcano first",
    "batch.volcano.sh": "install Volcano first",
    "bus.volcano.sh": "install Volcano first",
    "monitoring.coreos.com": "install the Prometheus Operator (its CRDs) first",
}


class ConflictError(XpoolError):
    """A field xpool wants to set is owned by another field manager: nothing was forced."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.outcomes: list[Outcome] = []


class AdoptionError(XpoolError):
    """Rendered objects exist that are not this platform's, and --adopt was not given:
    nothing was written."""

    exit_code = 2


class UnservedError(XpoolError):
    """The cluster does not serve a kind the platform needs: nothing was applied."""

    exit_code = 2


def tooling() -> str:
    try:
        return f"xpool/{metadata.version('xpool')}"
    except metadata.PackageNotFoundError:
        return "xpool/0.0.0"


def applyset_id(name: str, namespace: str, kind: str = "ConfigMap", group: str = "") -> str:
    """The ApplySet id of a parent (KEP-3659, as kubectl computes it)."""
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return f"applyset-{base64.urlsafe_b64encode(digest).decode().rstrip('=')}-v1"


def group_kind(group: str, kind: str) -> str:
    """`Kind.group` as kubectl's GroupKind.String(): core kinds are just `Kind`."""
    return f"{kind}.{group}" if group else kind


def split_group_kind(text: str) -> tuple[str, str]:
    kind, _, group = text.partition(".")
    return group, kind


@dataclass(frozen=True, order=True)
class Key:
    group: str
    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind} {self.name}"
        )

    def path(self) -> str:
        """`Kind/ns/name` (or `Kind/name`), as used in diff headers."""
        parts = [self.kind, *([self.namespace] if self.namespace else []), self.name]
        return "/".join(parts)


@dataclass
class Target:
    obj: dict[str, Any]
    resource: Resource
    key: Key
    shared: bool = False  # the cluster's, not a member of this ApplySet (render Item.shared)

    @property
    def is_namespace(self) -> bool:
        return self.key.group == "" and self.key.kind == "Namespace"

    @property
    def path(self) -> str:
        return self.resource.path(self.key.name, self.key.namespace)


@dataclass(frozen=True)
class Outcome:
    api_version: str
    kind: str
    namespace: str | None
    name: str
    action: str  # created | configured | unchanged | adopted | exists | pruned

    def as_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "action": self.action,
        }


@dataclass
class ObjectDiff:
    key: Key
    change: str  # create | update | delete | none | conflict | adopt
    text: str  # unified diff (empty when nothing changes)
    conflict: str | None = None
    refused: str | None = None  # why `apply` would refuse it without --adopt


def members_record(targets: Iterable[Target]) -> tuple[set[str], set[str]]:
    """The group-kinds and namespaces the ApplySet parent records for `targets`: those of its
    members, so not of a shared object."""
    members = [t for t in targets if not t.shared]
    kinds = {group_kind(t.key.group, t.key.kind) for t in members}
    return kinds, {t.key.namespace for t in members if t.key.namespace}


def normalize(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The object without server bookkeeping, for comparisons and diffs."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in IGNORED_METADATA:
        meta.pop(key, None)
    for key in ("labels", "annotations"):
        if key in meta and not meta[key]:
            del meta[key]
    return out


class _DiffDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Multi-line strings (ConfigMap data) as literal blocks, so diffs show changed lines."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_DiffDumper.add_representer(str, _str)


def to_yaml(obj: dict[str, Any] | None) -> str:
    if obj is None:
        return ""
    return yaml.dump(
        obj, Dumper=_DiffDumper, sort_keys=True, default_flow_style=False, allow_unicode=True
    )


def conflict_message(what: str, err: KubeStatusError) -> str:
    causes = (err.body.get("details") or {}).get("causes") or []
    owners: dict[str, list[str]] = {}
    for cause in causes:
        if cause.get("reason") not in (None, "FieldManagerConflict"):
            continue
        found = re.search(r'conflict with "([^"]*)"', str(cause.get("message", "")))
        manager = found.group(1) if found else "another field manager"
        owners.setdefault(manager, []).append(str(cause.get("field") or "?"))
    if owners:
        detail = "; ".join(
            f'{", ".join(fields)} owned by field manager "{manager}"'
            for manager, fields in owners.items()
        )
    else:
        detail = err.message or "conflict"
    return (
        f"{what}: conflict: {detail}; re-run with --force-conflicts to take ownership, "
        "or remove the field from the other manager"
    )


@dataclass
class Applier:
    """Applies, diffs and prunes one platform's objects in one namespace."""

    client: KubeClient
    namespace: str  # the platform namespace: the ApplySet parent lives here
    log: Log = field(default=lambda _m: None)
    _pending: set[str] = field(default_factory=set)  # namespaces a server dry run "created"
    _by_version: dict[str, str] = field(default_factory=dict)  # group -> served version

    @property
    def applyset(self) -> str:
        return applyset_id(PARENT_NAME, self.namespace)

    # -- discovery --------------------------------------------------------------------------

    def resolve(self, objects: Iterable[tuple[dict[str, Any], bool]]) -> list[Target]:
        """Targets for every (object, shared), labelled as ApplySet members unless shared;
        refuse (exit 2) when any kind is not served, before anything is written."""
        parent: tuple[dict[str, Any], bool] = (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
            False,
        )
        missing: dict[tuple[str, str], list[str]] = {}
        resolved: list[tuple[dict[str, Any], Resource, bool]] = []
        for obj, shared in [*objects, parent]:
            api_version, kind = str(obj["apiVersion"]), str(obj["kind"])
            res = self.client.resource(api_version, kind)
            if res is None:
                missing.setdefault((api_version, kind), []).append(obj["metadata"].get("name", ""))
            elif obj["metadata"]:
                resolved.append((obj, res, shared))
        if missing:
            lines = []
            for (api_version, kind), names in missing.items():
                group = api_version.rpartition("/")[0]
                hint = INSTALL_HINTS.get(group, "install the API (its CRD) first")
                lines.append(
                    f"{api_version} {kind} is not served by the cluster at {self.client.host}: "
                    f"{hint} (needed by {len(names)} object(s), e.g. {kind} {names[0]}); "
                    "nothing was applied"
                )
            raise UnservedError("\n".join(lines))
        targets = []
        for obj, res, shared in resolved:
            self._by_version.setdefault(res.group, res.api_version)
            targets.append(self._target(obj, res, shared))
        return targets

    def _target(self, obj: dict[str, Any], res: Resource, shared: bool) -> Target:
        body = copy.deepcopy(obj)
        meta = body.setdefault("metadata", {})
        if res.namespaced:
            meta["namespace"] = meta.get("namespace") or self.namespace
        else:
            meta.pop("namespace", None)
        labels = meta.get("labels") or {}
        if not shared:
            labels[PART_OF] = self.applyset
        meta["labels"] = labels
        key = Key(res.group, res.kind, meta.get("namespace"), str(meta["name"]))
        return Target(body, res, key, shared)

    def _resource_for(self, gk: str) -> Resource | None:
        group, kind = split_group_kind(gk)
        if group == "":
            return self.client.resource("v1", kind)
        version = self._by_version.get(group)
        if version is None:
            version = self._preferred_version(group)
            if version is None:
                return None
        return self.client.resource(version, kind)

    def _preferred_version(self, group: str) -> str | None:
        try:
            groups = self.client.request("GET", "/apis", what="discovery of API groups")
        except KubeStatusError as exc:
            raise RemoteError(f"discovery of API groups: {exc.summary()}") from None
        for item in groups.get("groups") or []:
            if item.get("name") == group:
                preferred = (item.get("preferredVersion") or {}).get("groupVersion")
                if preferred:
                    self._by_version[group] = preferred
                    return str(preferred)
        return None

    # -- single-object operations -----------------------------------------------------------

    def get(self, target: Target) -> dict[str, Any] | None:
        try:
            return self.client.request("GET", target.path, what=str(target.key))
        except KubeStatusError as exc:
            if exc.status == 404:
                return None
            raise RemoteError(f"{target.key}: GET refused: {exc.summary()}") from None

    @staticmethod
    def yield_to_reconciler(target: Target, live: dict[str, Any] | None) -> Target:
        """`target` without the Queue shares the reconciler owns on `live`, and with the worker
        replicas it set there."""
        body = with_live_replicas(without_reconciler_shares(target.obj, live), live)
        return target if body is target.obj else Target(body, target.resource, target.key)

    def ssa(self, target: Target, *, dry_run: bool, force: bool) -> dict[str, Any]:
        query = {"fieldManager": FIELD_MANAGER}
        if force:
            query["force"] = "true"
        if dry_run:
            query["dryRun"] = "All"
        try:
            return self.client.request(
                "PATCH",
                target.path,
                what=str(target.key),
                query=query,
                body=target.obj,
                content_type=APPLY_PATCH,
            )
        except KubeStatusError as exc:
            if exc.status == 409:
                raise ConflictError(conflict_message(str(target.key), exc)) from None
            verb = "server-side apply (dry run)" if dry_run else "server-side apply"
            hint = "; check the RBAC of this user (docs/operations.md)" if exc.status == 403 else ""
            raise RemoteError(f"{target.key}: {verb} refused: {exc.summary()}{hint}") from None

    def apply_one(
        self, target: Target, live: dict[str, Any] | None, *, dry_run: bool, force: bool
    ) -> str:
        """created | configured | unchanged, given the `live` object read before; writes only
        when the dry run shows a change."""
        if target.key.namespace in self._pending:
            return "created"  # its namespace does not exist yet: a dry run cannot ask
        if live is None:
            if dry_run and target.is_namespace:
                self._pending.add(target.key.name)
                return "created"
            self.ssa(target, dry_run=dry_run, force=force)
            return "created"
        target = self.yield_to_reconciler(target, live)
        result = self.ssa(target, dry_run=True, force=force)
        if normalize(result) == normalize(live):
            return "unchanged"
        if not dry_run:
            self.ssa(target, dry_run=False, force=force)
        return "configured"

    # -- the ApplySet parent ----------------------------------------------------------------

    def read_parent(self) -> tuple[set[str], set[str]]:
        """(group-kinds, additional namespaces) the parent records; refuse a foreign parent."""
        res = self.client.resource("v1", "ConfigMap")
        assert res is not None
        try:
            live = self.client.request(
                "GET", res.path(PARENT_NAME, self.namespace), what=self._parent_what
            )
        except KubeStatusError as exc:
            if exc.status == 404:
                return set(), set()
            raise RemoteError(f"{self._parent_what}: GET refused: {exc.summary()}") from None
        meta = live.get("metadata") or {}
        labels = meta.get("labels") or {}
        notes = meta.get("annotations") or {}
        owner = str(notes.get(TOOLING, ""))
        if labels.get(ID_LABEL) != self.applyset or (owner and not owner.startswith("xpool/")):
            raise KubeConfigError(
                f"{self._parent_what} exists but is not xpool's ApplySet parent "
                f"(id {labels.get(ID_LABEL)!r}, tooling {owner!r}): "
                "remove or rename it, or use another namespace (-n)"
            )

        def items(name: str) -> set[str]:
            return {s.strip() for s in str(notes.get(name, "")).split(",") if s.strip()}

        return items(GROUP_KINDS), items(ADDITIONAL_NAMESPACES)

    @property
    def _parent_what(self) -> str:
        return f"ConfigMap {self.namespace}/{PARENT_NAME} (ApplySet parent)"

    def parent_target(self, group_kinds: set[str], namespaces: set[str]) -> Target:
        res = self.client.resource("v1", "ConfigMap")
        assert res is not None
        annotations = {
            TOOLING: tooling(),
            GROUP_KINDS: ",".join(sorted(group_kinds)),
        }
        others = sorted(namespaces - {self.namespace})
        if others:
            annotations[ADDITIONAL_NAMESPACES] = ",".join(others)
        obj = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": PARENT_NAME,
                "namespace": self.namespace,
                "labels": {ID_LABEL: self.applyset},
                "annotations": annotations,
            },
        }
        return Target(obj, res, Key("", "ConfigMap", self.namespace, PARENT_NAME))

    def ensure_parent(
        self, group_kinds: set[str], namespaces: set[str], *, dry_run: bool, force: bool
    ) -> None:
        target = self.parent_target(group_kinds, namespaces)
        action = self.apply_one(target, self.get(target), dry_run=dry_run, force=force)
        if action != "unchanged":
            self.log(f"applyset: {target.key} {action}")

    # -- ownership -------------------------------------------------------------------------

    def owned(self, target: Target, live: dict[str, Any]) -> bool:
        """`live` is this platform's: a member of its ApplySet; a shared object, one xpool
        manages (whichever platform applied it)."""
        if target.shared:
            return FIELD_MANAGER in field_managers(live)
        return member_of(live, self.applyset)

    def refusal(self, target: Target, live: dict[str, Any] | None) -> str | None:
        """Why `target` may not be applied without --adopt; None when it may."""
        if live is None or target.is_namespace or self.owned(target, live):
            return None
        return (
            f"{target.key} exists and is not this platform's ({owners(live)}): re-run with "
            "--adopt to take it over, or delete or rename it"
        )

    def survey(self, targets: list[Target], *, adopt: bool) -> dict[Key, dict[str, Any] | None]:
        """Every target's live object (None: absent), read before anything is written.
        AdoptionError names every one that is not this platform's, unless `adopt`."""
        lives = {t.key: self.get(t) for t in targets}
        refused = [r for t in targets if (r := self.refusal(t, lives[t.key])) is not None]
        if refused and not adopt:
            raise AdoptionError("\n".join(f"{line}; nothing was applied" for line in refused))
        return lives

    # -- apply, prune, diff -----------------------------------------------------------------

    def apply(
        self, targets: list[Target], *, dry_run: bool, force: bool, prune: bool, adopt: bool
    ) -> list[Outcome]:
        old_kinds, old_namespaces = self.read_parent()
        lives = self.survey(targets, adopt=adopt)
        new_kinds, new_namespaces = members_record(targets)
        union = (old_kinds | new_kinds, old_namespaces | new_namespaces)
        outcomes: list[Outcome] = []
        parent_ready = False
        try:
            for target in targets:
                if not parent_ready and not target.is_namespace:
                    # union of old and new until pruning is done (KEP-3659)
                    self.ensure_parent(*union, dry_run=dry_run, force=force)
                    parent_ready = True
                action = self._apply_target(target, lives[target.key], dry_run, force)
                outcomes.append(self._outcome(target.resource, target.key, action))
                self.log(f"{target.key}: {action}{' (server dry run)' if dry_run else ''}")
            if not parent_ready:
                self.ensure_parent(*union, dry_run=dry_run, force=force)
            if prune:
                outcomes += self._prune(*union, {t.key for t in targets}, dry_run=dry_run)
                self.ensure_parent(new_kinds, new_namespaces, dry_run=dry_run, force=force)
        except ConflictError as exc:
            exc.outcomes = outcomes
            raise
        return outcomes

    def _apply_target(
        self, target: Target, live: dict[str, Any] | None, dry_run: bool, force: bool
    ) -> str:
        """apply_one, but for what is not this platform's (survey let it through): a Namespace
        is used as it is (`exists`), anything else taken over (`adopted`)."""
        if live is None or self.owned(target, live):
            return self.apply_one(target, live, dry_run=dry_run, force=force)
        if target.is_namespace:
            return "exists"
        self.log(f"{target.key}: adopting it ({owners(live)})")
        self.apply_one(target, live, dry_run=dry_run, force=force)
        return "adopted"

    def _prune(
        self, group_kinds: set[str], namespaces: set[str], keep: set[Key], *, dry_run: bool
    ) -> list[Outcome]:
        pruned = []
        for res, key, item in self.prune_candidates(group_kinds, namespaces, keep):
            uid = str((item.get("metadata") or {}).get("uid") or "")
            if self.delete(res, key, uid, dry_run=dry_run):
                pruned.append(self._outcome(res, key, "pruned"))
                self.log(f"{key}: pruned{' (server dry run)' if dry_run else ''}")
        return pruned

    @staticmethod
    def _outcome(res: Resource, key: Key, action: str) -> Outcome:
        return Outcome(res.api_version, key.kind, key.namespace, key.name, action)

    def prune_candidates(
        self, group_kinds: set[str], namespaces: set[str], keep: set[Key]
    ) -> list[tuple[Resource, Key, dict[str, Any]]]:
        """Members of our ApplySet (by label) that are not rendered any more, in deletion
        order: namespaced objects first, Namespaces last."""
        selector = f"{PART_OF}={self.applyset}"
        found: list[tuple[Resource, Key, dict[str, Any]]] = []
        for gk in sorted(group_kinds):
            res = self._resource_for(gk)
            if res is None:
                self.log(f"prune: {gk} is no longer served by the cluster; skipped")
                continue
            scopes: list[str | None] = (
                sorted(namespaces | {self.namespace}) if res.namespaced else [None]
            )
            for ns in scopes:
                where = f"{gk} in {ns}" if ns else gk
                try:
                    listing = self.client.request(
                        "GET",
                        res.collection(ns),
                        what=f"list of {where}",
                        query={"labelSelector": selector},
                    )
                except KubeStatusError as exc:
                    raise RemoteError(f"list of {where}: {exc.summary()}") from None
                for item in listing.get("items") or []:
                    meta = item.get("metadata") or {}
                    if (meta.get("labels") or {}).get(PART_OF) != self.applyset:
                        continue  # never trust a selector we cannot see applied
                    key = Key(res.group, res.kind, meta.get("namespace") or ns, str(meta["name"]))
                    if key not in keep:
                        item = {"apiVersion": res.api_version, "kind": res.kind, **item}
                        found.append((res, key, item))
        found.sort(key=lambda f: (f[1].kind == "Namespace", f[1].namespace is None, f[1]))
        return found

    def delete(self, res: Resource, key: Key, uid: str, *, dry_run: bool) -> bool:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
        }
        if uid:
            body["preconditions"] = {"uid": uid}
        query = {"dryRun": "All"} if dry_run else None
        try:
            self.client.request(
                "DELETE", res.path(key.name, key.namespace), what=str(key), query=query, body=body
            )
        except KubeStatusError as exc:
            if exc.status == 404:
                return True  # gone already (or a retried delete that had succeeded)
            if exc.status == 409:
                self.log(f"prune: {key} was replaced meanwhile (uid changed); left alone")
                return False
            raise RemoteError(f"{key}: DELETE refused: {exc.summary()}") from None
        return True

    def diff(self, targets: list[Target], *, prune: bool) -> list[ObjectDiff]:
        """What `apply` would change, computed with dry runs only (no writes)."""
        old_kinds, old_namespaces = self.read_parent()
        out = [self._diff_one(target) for target in targets]
        if prune:
            new_kinds, new_namespaces = members_record(targets)
            keep = {t.key for t in targets}
            for _res, key, item in self.prune_candidates(
                old_kinds | new_kinds, old_namespaces | new_namespaces, keep
            ):
                out.append(ObjectDiff(key, "delete", unified(key, normalize(item), None)))
        return out

    def _diff_one(self, target: Target) -> ObjectDiff:
        live = self.get(target)
        if live is not None and target.is_namespace and not self.owned(target, live):
            return ObjectDiff(target.key, "none", "")  # used as it is: apply writes nothing
        refused = self.refusal(target, live)
        if target.key.namespace in self._pending:
            after: dict[str, Any] | None = target.obj
        elif live is None and target.is_namespace:
            self._pending.add(target.key.name)
            after = target.obj
        else:
            try:
                after = self.ssa(self.yield_to_reconciler(target, live), dry_run=True, force=False)
            except ConflictError as exc:
                if refused is None:
                    return ObjectDiff(target.key, "conflict", "", str(exc))
                after = None
        text = unified(target.key, normalize(live), normalize(after)) if after else ""
        if refused is not None:
            return ObjectDiff(target.key, "adopt", text, refused=refused)
        change = "none" if not text else ("create" if live is None else "update")
        return ObjectDiff(target.key, change, text)


def unified(key: Key, live: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    before_text, after_text = to_yaml(live), to_yaml(after)
    if before_text == after_text:
        return ""
    lines = difflib.unified_diff(
        before_text.splitlines(keepends=True),
        after_text.splitlines(keepends=True),
        fromfile=f"live/{key.path()}",
        tofile=f"rendered/{key.path()}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def iter_changes(diffs: Iterable[ObjectDiff]) -> Iterator[ObjectDiff]:
    return (d for d in diffs if d.change != "none")
