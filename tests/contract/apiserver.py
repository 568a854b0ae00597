"""Contract test server: a real HTTP server speaking the parts of the Kubernetes API xpool uses.

No kube-apiserver can run here, so this server implements the documented semantics instead, over
plain HTTP on 127.0.0.1 with a required bearer token; the official ``kubernetes`` client and
Debian's ``kubectl`` talk to it through an ordinary kubeconfig (``write_kubeconfig``).

Implemented: discovery (``/version``, ``/api``, ``/apis``, group versions; legacy documents, which
clients asking for aggregated discovery accept as the fallback), CRUD with ``metav1.Status``
errors, label and field selectors, ``limit``/``continue``, server-side apply (field managers,
FieldsV1, conflicts, force, removal of fields a manager stops applying, no-op re-apply),
``Update`` entries in managedFields for POST/PUT/PATCH, ``dryRun=All`` on every write, schema
validation (core kinds: kubernetes-validate strict schemas; Volcano kinds: ``xpool.volcano``
models), ``fieldValidation`` (Strict: 400, Warn: drop + ``Warning`` header, Ignore: drop), the
``Table`` form kubectl asks for, fault injection, and a request log.

Simplified (deliberately; the full list is in ``tests/contract/README.md``): no watch (405), no protobuf (415),
``resourceVersion``/``resourceVersionMatch`` on reads ignored (always the latest), strategic merge
patch treated as JSON merge patch, namespace deletion immediate (no Terminating phase), no garbage
collection, no admission webhooks, status is kept from the live object on every write (as if every
kind had a status subresource; ``/status`` itself is not served), a subset of defaulting.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import itertools
import json
import re
import secrets
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.contract.semantics import (
    ApiError,
    Problem,
    all_paths,
    apply_defaults,
    bad_request,
    delete_path,
    drop_nulls,
    field_selector_matches,
    fields_from_v1,
    fields_to_v1,
    get_path,
    json_patch,
    leaf_paths,
    managed_view,
    merge_apply,
    merge_patch,
    parse_field_selector,
    parse_label_selector,
    path_string,
    remove_fields,
    validate_core,
    validate_labels,
    validate_name,
    validate_pydantic,
    validate_semantics,
)

KUBERNETES_VERSION = "1.37.0"
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update"]
APPLY_CT = "application/apply-patch+yaml"
PATCH_TYPES = (
    APPLY_CT,
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
)


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def tracks_generation(self) -> bool:
        """Deployment, StatefulSet, CronJob, NetworkPolicy and every custom resource set
        metadata.generation; ConfigMap etc. not."""
        return (
            self.kind in ("Deployment", "StatefulSet", "CronJob", "NetworkPolicy")
            or not self.builtin
        )

    @property
    def builtin(self) -> bool:
        return "." not in self.group or self.group.endswith(".k8s.io")

    def discovery(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": VERBS,
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", False, ("ns",)),
    ResourceType("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    ResourceType("", "v1", "Secret", "secrets", True),
    ResourceType("", "v1", "Service", "services", True, ("svc",), ("all",)),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    ResourceType("", "v1", "Pod", "pods", True, ("po",), ("all",)),
    ResourceType("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("all",)),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("all",)),
    ResourceType("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("all",)),
    ResourceType("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", "clusterrolebindings", False
    ),
    ResourceType("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", False, ("pc",)),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True),
    ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, ("netpol",)),
    ResourceType(
        "scheduling.volcano.sh", "v1beta1", "Queue", "queues", False, ("q", "queue-v1beta1")
    ),
    ResourceType(
        "scheduling.volcano.sh",
        "v1beta1",
        "PodGroup",
        "podgroups",
        True,
        ("pg", "podgroup-v1beta1"),
    ),
    ResourceType("batch.volcano.sh", "v1alpha1", "Job", "jobs", True, ("vcjob", "vj")),
    ResourceType(
        "monitoring.coreos.com", "v1", "PrometheusRule", "prometheusrules", True, ("promrule",)
    ),
)


_CERT_LOCK = threading.Lock()
_CERT: tuple[str, str] | None = None


def self_signed_certificate() -> tuple[str, str]:
    """(cert path, key path) of a throwaway self-signed certificate for 127.0.0.1 (openssl CLI).

    TLS is needed for credentials: client-go (kubectl) reads a kubeconfig's token only when the
    transport is TLS (``clientcmd/client_config.go``: "only try to read the auth information if
    we are secure"), so over plain http kubectl would arrive anonymous and get 401.
    """
    global _CERT
    with _CERT_LOCK:
        if _CERT is None:
            folder = Path(tempfile.mkdtemp(prefix="contract-apiserver-"))
            cert, key = folder / "tls.crt", folder / "tls.key"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                 "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
                 "-addext", "extendedKeyUsage=serverAuth"],
                check=True, capture_output=True,
            )  # fmt: skip
            _CERT = (str(cert), str(key))
        return _CERT


def _parse_bool(value: str, name: str) -> bool:
    """Go's strconv.ParseBool, which the API server uses for boolean query parameters."""
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if value in ("0", "f", "F", "false", "FALSE", "False", ""):
        return False
    raise bad_request(f"invalid value {value!r} for query parameter {name}: not a boolean")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _qualified(rt: ResourceType) -> str:
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


# --------------------------------------------------------------------------------------------
# Request log and fault injection


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes
    headers: dict[str, str]
    status: int = 0
    injected: bool = False

    @property
    def dry_run(self) -> bool:
        if "dryRun" in self.query:
            return True
        if self.method == "DELETE" and self.body:
            try:
                return bool(json.loads(self.body).get("dryRun"))
            except (ValueError, AttributeError):
                return False
        return False

    @property
    def is_read(self) -> bool:
        return self.method in ("GET", "HEAD", "OPTIONS")

    @property
    def is_apply(self) -> bool:
        return self.method == "PATCH" and self.content_type.startswith(APPLY_CT)

    def json(self) -> Any:
        """The body parsed (JSON, or YAML for apply patches); None when empty."""
        return yaml.safe_load(self.body) if self.body else None


@dataclass
class Fault:
    method: str
    path_regex: re.Pattern[str]
    status: int | None  # None: close the connection without answering
    times: int
    retry_after: float | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0 and self.method in ("*", method) and bool(self.path_regex.search(path))
        )


_FAULT_REASONS = {
    429: "TooManyRequests",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "Timeout",
    409: "Conflict",
}


# --------------------------------------------------------------------------------------------
# The server


class ContractApiServer:
    """A Kubernetes API test server in a background thread; see the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        namespaces: tuple[str, ...] = ("default", "kube-system", "kube-public", "kube-node-lease"),
        kubernetes_version: str = KUBERNETES_VERSION,
        default_field_validation: str = "Warn",
        tls: bool = True,
    ) -> None:
        self.host, self.port = host, port
        self.tls = tls
        self.token = token or secrets.token_hex(16)
        self.kubernetes_version = kubernetes_version
        self.default_field_validation = default_field_validation
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._store: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._rv = itertools.count(1)
        self._last_rv = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._types = {(rt.group, rt.version, rt.plural): rt for rt in RESOURCES}
        for name in namespaces:
            self.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> ContractApiServer:
        handler = type("Handler", (_Handler,), {"api": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        if self.tls:
            cert, key = self_signed_certificate()
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            # Handshake in the handler thread, so one stalled client cannot block accept().
            self._httpd.socket = context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="contract-apiserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ContractApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_file(self) -> str | None:
        """The PEM file that verifies the server's certificate (None without TLS)."""
        return self_signed_certificate()[0] if self.tls else None

    def write_kubeconfig(
        self, path: str | Path, namespace: str = "default", context: str = "contract"
    ) -> Path:
        cluster: dict[str, Any] = {"server": self.url}
        if self.tls:
            pem = Path(self_signed_certificate()[0]).read_bytes()
            cluster["certificate-authority-data"] = base64.b64encode(pem).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": f"{context}-user", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {
                        "cluster": context,
                        "user": f"{context}-user",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    # -- log and faults -------------------------------------------------------------------------

    def writes(self) -> list[Recorded]:
        """Requests that could change state: not a read, not ``dryRun``."""
        with self._lock:
            return [r for r in self.requests if not r.is_read and not r.dry_run]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
    ) -> Fault:
        """Answer the next ``times`` requests matching (method or ``*``, regex on the path) with
        ``status`` and a Status body; 429/503 carry ``Retry-After`` when ``retry_after`` is set."""
        fault = Fault(method.upper(), re.compile(path_regex), status, times, retry_after)
        with self._lock:
            self.faults.append(fault)
        return fault

    def inject_disconnect(self, method: str, path_regex: str, times: int = 1) -> Fault:
        """Close the connection without any response for the next ``times`` matching requests."""
        fault = Fault(method.upper(), re.compile(path_regex), None, times)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    # -- direct store access for tests ----------------------------------------------------------

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        for rt in RESOURCES:
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        raise KeyError(f"{kind} {api_version} is not served")

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """A deep copy of a stored object, or None."""
        rt = self.resource_type(api_version, kind)
        with self._lock:
            obj = self._store.get(self._key(rt, namespace or "", name))
            return copy.deepcopy(obj)

    def objects(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        rt = self.resource_type(api_version, kind)
        with self._lock:
            return [
                copy.deepcopy(o)
                for (g, p, ns, _), o in sorted(self._store.items())
                if (g, p) == (rt.group, rt.plural) and (namespace is None or ns == namespace)
            ]

    def seed(self, obj: dict[str, Any], manager: str = "seed") -> dict[str, Any]:
        """Create an object directly (validated, recorded nowhere); returns the stored copy."""
        rt = self.resource_type(obj["apiVersion"], obj["kind"])
        ns = (obj.get("metadata") or {}).get("namespace", "") if rt.namespaced else ""
        body = json.dumps(obj).encode()
        return self.create(rt, ns, body, {"fieldManager": manager}, "application/json", "")[0]

    def kubelet_update(
        self,
        name: str,
        namespace: str,
        *,
        status: dict[str, Any] | None = None,
        terminating: bool = False,
    ) -> None:
        """What the kubelet and a graceful delete do to a stored Pod, which no client request
        can: set its status (phase, podIP), or mark it terminating (deletionTimestamp set, the
        object kept until its containers stop)."""
        rt = self.resource_type("v1", "Pod")
        with self._lock:
            obj = self._store[self._key(rt, namespace, name)]
            if status is not None:
                obj["status"] = copy.deepcopy(status)
            if terminating:
                obj["metadata"]["deletionTimestamp"] = time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime()
                )
            obj["metadata"]["resourceVersion"] = self._next_rv()

    @property
    def resource_version(self) -> str:
        return str(self._last_rv)

    # -- storage helpers ------------------------------------------------------------------------

    @staticmethod
    def _key(rt: ResourceType, ns: str, name: str) -> tuple[str, str, str, str]:
        return (rt.group, rt.plural, ns if rt.namespaced else "", name)

    def _next_rv(self) -> str:
        self._last_rv = next(self._rv)
        return str(self._last_rv)

    def _require_namespace(self, rt: ResourceType, ns: str) -> None:
        if rt.namespaced and ("", "namespaces", "", ns) not in self._store:
            raise ApiError(
                404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
            )

    def _not_found(self, rt: ResourceType, name: str) -> ApiError:
        details = {"name": name, "kind": rt.plural}
        if rt.group:
            details["group"] = rt.group
        return ApiError(404, "NotFound", f'{_qualified(rt)} "{name}" not found', details)

    def _check_dry_run(self, query: dict[str, str]) -> bool:
        if "dryRun" not in query:
            return False
        if query["dryRun"] != "All":
            raise bad_request(f"Invalid dry run value: {query['dryRun']!r}: supported value: All")
        return True

    def _manager(self, query: dict[str, str], user_agent: str, apply: bool = False) -> str:
        manager = query.get("fieldManager", "")
        if apply and not manager:
            raise bad_request("PATCH requests with the apply content type require fieldManager")
        if len(manager) > 128:
            raise ApiError(
                422, "Invalid", "fieldManager: Invalid value: must be at most 128 characters"
            )
        return manager or (user_agent.split("/", 1)[0][:128] if user_agent else "unknown")

    def _field_validation(self, query: dict[str, str]) -> str:
        value = query.get("fieldValidation", self.default_field_validation)
        if value not in ("Strict", "Warn", "Ignore"):
            raise bad_request(
                f'fieldValidation must be "Ignore", "Warn" or "Strict", not {value!r}'
            )
        return value

    # -- validation -----------------------------------------------------------------------------

    def _problems(self, rt: ResourceType, obj: dict[str, Any]) -> list[Problem]:
        if rt.builtin:
            problems = validate_core(obj, self.kubernetes_version)
        elif rt.group.endswith("volcano.sh"):
            from xpool.volcano import Job, PodGroup, Queue

            model = {"Queue": Queue, "PodGroup": PodGroup, "Job": Job}[rt.kind]
            problems = validate_pydantic(obj, model)
        else:
            problems = []
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        problems += validate_labels(meta)
        problems += validate_semantics(rt.kind, obj)
        return problems

    def _check_unknown(
        self, rt: ResourceType, obj: dict[str, Any], mode: str, warnings: list[str], apply: bool
    ) -> None:
        """Unknown fields: 400 (apply is always strict; Strict), or dropped with a warning."""
        unknown = [p for p in self._problems(rt, obj) if p.kind == "unknown"]
        if not unknown:
            return
        if apply:
            fields = "; ".join(f".{p.field}: field not declared in schema" for p in unknown)
            raise bad_request(
                f"failed to create typed patch object ({rt.api_version}, Kind={rt.kind}) {fields}"
            )
        if mode == "Strict":
            fields = ", ".join(f'unknown field "{p.field}"' for p in unknown)
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict decoding error: {fields}'
            )
        remove_fields(obj, [p.path for p in unknown])
        if mode == "Warn":
            warnings += [p.message for p in unknown]

    def _validate(self, rt: ResourceType, obj: dict[str, Any], name: str) -> None:
        problems = [p for p in self._problems(rt, obj) if p.kind != "unknown"]
        problems += validate_name(rt.kind, rt.group, name) if name else []
        if not problems:
            return
        if rt.builtin and any(p.kind == "type" for p in problems):
            first = next(p for p in problems if p.kind == "type")
            raise bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {first.field}: {first.message}'
            )
        reasons = {"required": "FieldValueRequired", "type": "FieldValueTypeInvalid"}
        causes = [
            {
                "reason": reasons.get(p.kind, "FieldValueInvalid"),
                "message": f"{p.message}",
                "field": p.field,
            }
            for p in problems
        ]
        summary = ", ".join(f"{p.field}: {p.message}" for p in problems)
        details = {"name": name, "kind": rt.kind, "causes": causes}
        if rt.group:
            details["group"] = rt.group
        raise ApiError(
            422,
            "Invalid",
            f'{rt.kind}.{rt.group or "core"} "{name}" is invalid: [{summary}]'.replace(".core", ""),
            details,
        )

    def _parse(self, body: bytes, content_type: str) -> Any:
        if content_type.startswith("application/vnd.kubernetes.protobuf"):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format: {content_type}",
            )
        try:
            if content_type.startswith(APPLY_CT) or "yaml" in content_type:
                return yaml.safe_load(body.decode() or "null")
            return json.loads(body or b"null")
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the body of the request could not be decoded: {exc}") from exc

    def _check_identity(
        self, rt: ResourceType, obj: Any, ns: str, name: str | None
    ) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON/YAML object")
        if (
            obj.get("apiVersion", rt.api_version) != rt.api_version
            or obj.get("kind", rt.kind) != rt.kind
        ):
            raise bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version ({rt.api_version})"
                if obj.get("apiVersion", rt.api_version) != rt.api_version
                else f"kind {obj.get('kind')!r} does not match the expected kind {rt.kind!r}"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if name is not None and meta.get("name", name) != name:
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if name is not None:
            meta["name"] = name
        if rt.namespaced:
            if meta.get("namespace", ns) != ns:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        return obj

    # -- managed fields -------------------------------------------------------------------------

    @staticmethod
    def _entries(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
        entries = []
        for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
            entries.append({**entry, "_set": fields_from_v1(entry.get("fieldsV1") or {})})
        return entries

    @staticmethod
    def _encode_entries(
        entries: list[dict[str, Any]], old: list[dict[str, Any]], present: set
    ) -> list[dict[str, Any]]:
        before = {(e["manager"], e["operation"]): e for e in old}
        out = []
        for entry in entries:
            fields = entry["_set"] & present
            if not fields:
                continue
            previous = before.get((entry["manager"], entry["operation"]))
            changed = (
                previous is None
                or previous["_set"] != fields
                or previous.get("apiVersion") != entry["apiVersion"]
            )
            out.append(
                {
                    "manager": entry["manager"],
                    "operation": entry["operation"],
                    "apiVersion": entry["apiVersion"],
                    "time": _now() if changed else previous.get("time", _now()),
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields_to_v1(fields),
                }
            )
        return out

    def _record_update(
        self, rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any], manager: str
    ) -> list[dict[str, Any]]:
        """managedFields after an Update operation by ``manager`` (POST, PUT, non-apply PATCH)."""
        old_view, new_view = managed_view(old), managed_view(new)
        old_leaves, new_leaves = leaf_paths(old_view), leaf_paths(new_view)
        changed = {
            p
            for p in new_leaves
            if p not in old_leaves or get_path(old_view, p) != get_path(new_view, p)
        }
        entries = self._entries(old)
        mine = next(
            (e for e in entries if (e["manager"], e["operation"]) == (manager, "Update")), None
        )
        for entry in entries:
            if entry is not mine:
                entry["_set"] -= changed
        if mine is None:
            mine = {
                "manager": manager,
                "operation": "Update",
                "apiVersion": rt.api_version,
                "_set": set(),
            }
            entries.append(mine)
        mine["_set"] |= changed
        mine["apiVersion"] = rt.api_version
        return self._encode_entries(entries, self._entries(old), all_paths(new_view))

    # -- operations (called with the lock held) -------------------------------------------------

    def _finish(
        self, rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any], dry_run: bool
    ) -> tuple[dict[str, Any], bool]:
        """Store ``new`` unless it equals ``old`` (a no-op keeps resourceVersion); bump generation."""
        meta = new["metadata"]
        for key in ("labels", "annotations"):  # Go's omitempty: empty maps are not stored
            if key in meta and not meta[key]:
                del meta[key]
        if old is not None:
            for key in ("uid", "creationTimestamp", "resourceVersion", "generation"):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
            if new == old:
                return copy.deepcopy(old), False
            spec_of = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status")}  # noqa: E731
            if rt.tracks_generation and spec_of(new) != spec_of(old):
                meta["generation"] = old["metadata"].get("generation", 1) + 1
        else:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            if rt.tracks_generation:
                meta["generation"] = 1
        if dry_run:
            if old is None:
                meta.pop("resourceVersion", None)
            return new, True
        meta["resourceVersion"] = self._next_rv()
        self._store[self._key(rt, meta.get("namespace", ""), meta["name"])] = new
        return copy.deepcopy(new), True

    def _order_meta(self, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")},
        }

    def create(
        self,
        rt: ResourceType,
        ns: str,
        body: bytes,
        query: dict[str, str],
        content_type: str,
        user_agent: str,
    ) -> tuple[dict[str, Any], list[str]]:
        with self._lock:
            dry_run = self._check_dry_run(query)
            manager = self._manager(query, user_agent)
            mode, warnings = self._field_validation(query), []
            obj = self._check_identity(rt, self._parse(body, content_type), ns, None)
            meta = obj["metadata"]
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            name = meta.get("name", "")
            if not name:
                raise ApiError(422, "Invalid", f"{rt.kind} \"\" is invalid: metadata.name: Required value: name or generateName is required",
                               {"kind": rt.kind, "causes": [{"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"}]})  # fmt: skip
            if meta.get("resourceVersion"):
                raise bad_request("resourceVersion should not be set on objects to be created")
            self._require_namespace(rt, ns)
            for key in ("uid", "creationTimestamp", "generation", "managedFields", "selfLink"):
                meta.pop(key, None)
            self._check_unknown(rt, obj, mode, warnings, apply=False)
            obj.pop("status", None)
            apply_defaults(rt.kind, obj)
            self._validate(rt, obj, name)
            if self._key(rt, ns, name) in self._store:
                details = {
                    "name": name,
                    "kind": rt.plural,
                    **({"group": rt.group} if rt.group else {}),
                }
                raise ApiError(
                    409, "AlreadyExists", f'{_qualified(rt)} "{name}" already exists', details
                )
            meta["managedFields"] = self._record_update(rt, None, obj, manager)
            stored, _ = self._finish(rt, None, self._order_meta(obj), dry_run)
            return stored, warnings

    def update(
        self, rt: ResourceType, ns: str, name: str, new: dict[str, Any], query: dict[str, str],
        user_agent: str, warnings: list[str], live: dict[str, Any],
    ) -> dict[str, Any]:  # fmt: skip
        dry_run = self._check_dry_run(query)
        manager = self._manager(query, user_agent)
        meta = new["metadata"]
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != live["metadata"]["resourceVersion"]:
            raise self._stale(rt, name)
        if meta.get("uid") and meta["uid"] != live["metadata"]["uid"]:
            raise ApiError(
                409,
                "Conflict",
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {live['metadata']['uid']}",
            )
        self._check_unknown(rt, new, self._field_validation(query), warnings, apply=False)
        if "status" in live:
            new["status"] = copy.deepcopy(live["status"])
        else:
            new.pop("status", None)
        apply_defaults(rt.kind, new)
        self._validate(rt, new, name)
        meta["managedFields"] = self._record_update(rt, live, new, manager)
        stored, _ = self._finish(rt, live, self._order_meta(new), dry_run)
        return stored

    def put(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: bytes,
        query: dict[str, str],
        content_type: str,
        user_agent: str,
    ) -> tuple[dict[str, Any], list[str]]:
        with self._lock:
            new = self._check_identity(rt, self._parse(body, content_type), ns, name)
            live = self._store.get(self._key(rt, ns, name))
            if live is None:
                raise self._not_found(rt, name)
            warnings: list[str] = []
            return self.update(rt, ns, name, new, query, user_agent, warnings, live), warnings

    def patch(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: bytes,
        query: dict[str, str],
        content_type: str,
        user_agent: str,
    ) -> tuple[dict[str, Any], list[str]]:
        ctype = content_type.split(";")[0].strip()
        if ctype not in PATCH_TYPES:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES)}",
            )
        if ctype == APPLY_CT:
            return self.apply(rt, ns, name, body, query, user_agent), []
        if _parse_bool(query.get("force", "false"), "force"):
            raise bad_request(
                "force is only allowed for apply patches (application/apply-patch+yaml)"
            )
        with self._lock:
            live = self._store.get(self._key(rt, ns, name))
            if live is None:
                raise self._not_found(rt, name)
            patch = self._parse(body, "application/json")
            if ctype == "application/json-patch+json":
                new = json_patch(live, patch)
            else:
                if not isinstance(patch, dict):
                    raise bad_request("a merge patch must be a JSON object")
                new = merge_patch(live, patch)
                # The live resourceVersion stays unless the patch names one (a precondition).
                if not (patch.get("metadata") or {}).get("resourceVersion"):
                    new["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            new = self._check_identity(rt, new, ns, name)
            new["metadata"].pop("managedFields", None)
            warnings: list[str] = []
            return self.update(rt, ns, name, new, query, user_agent, warnings, live), warnings

    def apply(
        self,
        rt: ResourceType,
        ns: str,
        name: str,
        body: bytes,
        query: dict[str, str],
        user_agent: str,
    ) -> dict[str, Any]:
        """Server-side apply: create-or-merge with field ownership and conflicts."""
        with self._lock:
            dry_run = self._check_dry_run(query)
            manager = self._manager(query, user_agent, apply=True)
            force = _parse_bool(query.get("force", "false"), "force")
            config = self._parse(body, APPLY_CT)
            if (
                not isinstance(config, dict)
                or not config.get("apiVersion")
                or not config.get("kind")
            ):
                raise bad_request("apply patches must declare apiVersion and kind")
            config = self._check_identity(rt, drop_nulls(config), ns, name)
            self._check_unknown(rt, config, "Strict", [], apply=True)
            self._require_namespace(rt, ns)
            live = self._store.get(self._key(rt, ns, name))
            wanted_rv = config["metadata"].get("resourceVersion")
            if wanted_rv and (live is None or wanted_rv != live["metadata"]["resourceVersion"]):
                raise self._stale(rt, name)  # a resourceVersion in an apply body is a precondition
            live_view, config_view = managed_view(live), managed_view(config)
            new_set = leaf_paths(config_view)
            entries = self._entries(live)
            old_entries = self._entries(live)
            mine = next(
                (e for e in entries if (e["manager"], e["operation"]) == (manager, "Apply")), None
            )
            conflicts = self._apply_conflicts(entries, manager, new_set, config_view, live_view)
            if conflicts and not force:
                raise self._conflict(rt, name, conflicts)
            for entry, path in conflicts:
                entry["_set"].discard(path)
            previous = mine["_set"] if mine else set()
            if mine is None:
                mine = {
                    "manager": manager,
                    "operation": "Apply",
                    "apiVersion": rt.api_version,
                    "_set": set(),
                }
                entries.append(mine)
            mine["_set"], mine["apiVersion"] = set(new_set), rt.api_version
            others = set().union(*(e["_set"] for e in entries if e is not mine))
            merged = merge_apply(live_view, config_view)
            for path in sorted(previous - new_set - others, key=len, reverse=True):
                if not any(o[: len(path)] == path for o in others | new_set):
                    delete_path(merged, path)
            new = {"apiVersion": rt.api_version, "kind": rt.kind, **merged}
            meta = new.setdefault("metadata", {})
            meta["name"] = name
            if rt.namespaced:
                meta["namespace"] = ns
            meta = {"name": name, **({"namespace": ns} if rt.namespaced else {}), **meta}
            new["metadata"] = meta
            if live is not None and "status" in live:
                new["status"] = copy.deepcopy(live["status"])
            apply_defaults(rt.kind, new)
            self._validate(rt, new, name)
            meta["managedFields"] = self._encode_entries(
                entries, old_entries, all_paths(managed_view(new))
            )
            if live is not None:
                meta["resourceVersion"] = live["metadata"]["resourceVersion"]
            stored, _ = self._finish(rt, live, self._order_meta(new), dry_run)
            return stored

    @staticmethod
    def _apply_conflicts(
        entries: list[dict[str, Any]],
        manager: str,
        new_set: set[Any],
        config_view: dict[str, Any],
        live_view: dict[str, Any],
    ) -> list[tuple[dict[str, Any], Any]]:
        """(entry, path) for each field another manager owns that the apply would change."""
        conflicts = []
        for entry in entries:
            if entry["manager"] == manager:
                continue
            for path in sorted(new_set & entry["_set"]):
                if path[-1].startswith("k:"):
                    continue
                if get_path(config_view, path) != get_path(live_view, path):
                    conflicts.append((entry, path))
        return conflicts

    @staticmethod
    def _stale(rt: ResourceType, name: str) -> ApiError:
        details = {"name": name, "kind": rt.plural, **({"group": rt.group} if rt.group else {})}
        return ApiError(
            409, "Conflict",
            f'Operation cannot be fulfilled on {_qualified(rt)} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            details,
        )  # fmt: skip

    @staticmethod
    def _conflict(
        rt: ResourceType, name: str, conflicts: list[tuple[dict[str, Any], Any]]
    ) -> ApiError:
        causes = []
        for entry, path in conflicts:
            who = f'conflict with "{entry["manager"]}"'
            if entry["operation"] == "Update":
                who += f" using {entry.get('apiVersion', rt.api_version)}"
            causes.append(
                {
                    "reason": "FieldManagerConflict",
                    "message": f"{who}: {path_string(path)}",
                    "field": path_string(path),
                }
            )
        count = len(causes)
        lines = (
            "\n".join(f"- {c['message']}" for c in causes) if count > 1 else causes[0]["message"]
        )
        message = f"Apply failed with {count} conflict{'s' if count > 1 else ''}: {lines}"
        details = {
            "name": name,
            "kind": rt.plural,
            "causes": causes,
            **({"group": rt.group} if rt.group else {}),
        }
        return ApiError(409, "Conflict", message, details)

    def delete(
        self, rt: ResourceType, ns: str, name: str, body: bytes, query: dict[str, str]
    ) -> dict[str, Any]:
        with self._lock:
            options = self._parse(body, "application/json") if body.strip() else {}
            options = options if isinstance(options, dict) else {}
            dry_run = self._check_dry_run(query) or options.get("dryRun") == ["All"]
            policy = query.get("propagationPolicy", options.get("propagationPolicy"))
            if policy not in (None, "Orphan", "Background", "Foreground"):
                raise bad_request(
                    f"propagationPolicy {policy!r} is not one of Orphan, Background, Foreground"
                )
            live = self._store.get(self._key(rt, ns, name))
            if live is None:
                raise self._not_found(rt, name)
            pre = options.get("preconditions") or {}
            for key in ("uid", "resourceVersion"):
                if pre.get(key) and pre[key] != live["metadata"].get(key):
                    raise ApiError(
                        409,
                        "Conflict",
                        f"Precondition failed: {key} in precondition: {pre[key]}, {key} in object meta: {live['metadata'].get(key)}",
                    )
            if not dry_run:
                del self._store[self._key(rt, ns, name)]
                if rt.kind == "Namespace":
                    for key in [k for k in self._store if k[2] == name]:
                        del self._store[key]
                self._next_rv()
            details = {
                "name": name,
                "kind": rt.plural,
                "uid": live["metadata"]["uid"],
                **({"group": rt.group} if rt.group else {}),
            }
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }

    def list(self, rt: ResourceType, ns: str | None, query: dict[str, str]) -> dict[str, Any]:
        labels = parse_label_selector(query.get("labelSelector", ""))
        fields = parse_field_selector(query.get("fieldSelector", ""))
        with self._lock:
            items = [
                copy.deepcopy(obj)
                for (g, p, ons, _), obj in sorted(self._store.items())
                if (g, p) == (rt.group, rt.plural) and (ns is None or ons == ns)
                and all(r.matches(obj["metadata"].get("labels") or {}) for r in labels)
                and field_selector_matches(fields, obj)
            ]  # fmt: skip
            rv = str(self._last_rv)
        meta: dict[str, Any] = {"resourceVersion": rv}
        start = 0
        if query.get("continue"):
            try:
                start = int(base64.urlsafe_b64decode(query["continue"]).decode())
            except ValueError as exc:
                raise ApiError(400, "BadRequest", "invalid continue token") from exc
        limit = int(query.get("limit") or 0)
        if start or limit:
            end = start + limit if limit else len(items)
            if end < len(items):
                meta["continue"] = base64.urlsafe_b64encode(str(end).encode()).decode()
                meta["remainingItemCount"] = len(items) - end
            items = items[start:end]
        if rt.builtin:  # built-in lists carry no apiVersion/kind on their items; CRD lists do
            for item in items:
                item.pop("apiVersion", None)
                item.pop("kind", None)
        return {
            "apiVersion": rt.api_version,
            "kind": f"{rt.kind}List",
            "metadata": meta,
            "items": items,
        }

    def delete_collection(
        self, rt: ResourceType, ns: str | None, query: dict[str, str]
    ) -> dict[str, Any]:
        listed = self.list(rt, ns, query)
        dry_run = self._check_dry_run(query)
        with self._lock:
            for item in listed["items"]:
                key = self._key(rt, item["metadata"].get("namespace", ""), item["metadata"]["name"])
                if not dry_run:
                    self._store.pop(key, None)
            if listed["items"] and not dry_run:
                self._next_rv()
        return listed

    # -- discovery ------------------------------------------------------------------------------

    def group_versions(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for rt in RESOURCES:
            if rt.group and rt.version not in out.setdefault(rt.group, []):
                out[rt.group].append(rt.version)
        return out

    def api_group(self, group: str) -> dict[str, Any]:
        versions = [
            {"groupVersion": f"{group}/{v}", "version": v} for v in self.group_versions()[group]
        ]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": versions,
            "preferredVersion": versions[0],
        }

    def openapi_v3_root(self) -> dict[str, Any]:
        paths = {}
        for group, version in dict.fromkeys((rt.group, rt.version) for rt in RESOURCES):
            prefix = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[prefix] = {
                "serverRelativeURL": f"/openapi/v3/{prefix}?hash=contract{KUBERNETES_VERSION}"
            }
        return {"paths": paths}

    def openapi_v3(self, group: str, version: str) -> dict[str, Any] | None:
        """A minimal OpenAPI v3 document for one group version: each kind's paths with the query
        parameters the server honours (kubectl looks for ``fieldValidation`` on PATCH to decide
        that the server validates), and an opaque schema per kind tagged with its GVK."""
        kinds = [rt for rt in RESOURCES if (rt.group, rt.version) == (group, version)]
        if not kinds:
            return None
        params = [
            {"name": n, "in": "query", "schema": {"type": "string"}, "description": d}
            for n, d in (
                ("dryRun", "All"),
                ("fieldManager", "manager"),
                ("fieldValidation", "Ignore|Warn|Strict"),
                ("force", "apply only"),
            )
        ]
        paths: dict[str, Any] = {}
        schemas: dict[str, Any] = {}
        for rt in kinds:
            gvk = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
            base = f"/apis/{group}/{version}" if group else f"/api/{version}"
            item = (
                f"{base}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
                if rt.namespaced
                else f"{base}/{rt.plural}/{{name}}"
            )
            operation = {
                "x-kubernetes-group-version-kind": gvk[0],
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            }
            paths[item] = {
                "get": {**operation, "parameters": []},
                "patch": operation,
                "put": operation,
                "delete": operation,
            }
            name = f"contract.{rt.group or 'core'}.{rt.version}.{rt.kind}"
            schemas[name] = {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "x-kubernetes-group-version-kind": gvk,
            }
        info = {"title": "Kubernetes (contract test server)", "version": f"v{KUBERNETES_VERSION}"}
        return {
            "openapi": "3.0.0",
            "info": info,
            "paths": paths,
            "components": {"schemas": schemas},
        }

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        resources = [
            rt.discovery() for rt in RESOURCES if (rt.group, rt.version) == (group, version)
        ]
        if not resources:
            return None
        gv = f"{group}/{version}" if group else version
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": resources,
        }


# --------------------------------------------------------------------------------------------
# HTTP


def _age(timestamp: str) -> str:
    try:
        then = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return "<unknown>"
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _table(objects: list[dict[str, Any]], rv: str, include: str) -> dict[str, Any]:
    rows = []
    for obj in objects:
        row: dict[str, Any] = {
            "cells": [obj["metadata"]["name"], _age(obj["metadata"].get("creationTimestamp", ""))]
        }
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    columns = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": "Name of the object",
            "priority": 0,
        },
        {
            "name": "Age",
            "type": "string",
            "format": "",
            "description": "Time since creation",
            "priority": 0,
        },
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": rv},
        "columnDefinitions": columns,
        "rows": rows,
    }


class _Handler(BaseHTTPRequestHandler):
    api: ContractApiServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: avoid 40 ms stalls
    server_version = "contract-apiserver"

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _handle(self) -> None:
        split = urlsplit(self.path)
        split = split._replace(path=split.path.rstrip("/") or "/")  # /version/ and /apis/ as well
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = Recorded(
            self.command,
            split.path,
            query,
            self.headers.get("Content-Type", ""),
            body,
            dict(self.headers.items()),
        )
        with self.api._lock:
            self.api.requests.append(record)
        fault = self.api._take_fault(self.command, split.path)
        if fault is not None:
            record.injected = True
            if fault.status is None:
                record.status = -1
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            reason = _FAULT_REASONS.get(fault.status, "InternalError")
            error = ApiError(fault.status, reason, f"injected fault: {fault.status} {reason}")
            if fault.retry_after is not None:
                error.headers["Retry-After"] = str(
                    int(fault.retry_after)
                    if float(fault.retry_after).is_integer()
                    else fault.retry_after
                )
                error.details = {"retryAfterSeconds": int(fault.retry_after)}
            self._send_error(record, error)
            return
        try:
            if split.path not in ("/healthz", "/livez", "/readyz") and not self._authorized():
                raise ApiError(401, "Unauthorized", "Unauthorized")
            status, payload, headers = self._route(split.path, query, body, record)
        except ApiError as error:
            self._send_error(record, error)
            return
        except Exception as exc:  # a bug in the contract server must surface as a 500, not a hang
            self._send_error(
                record, ApiError(500, "InternalError", f"contract server error: {exc!r}")
            )
            return
        self._send(record, status, payload, headers)

    def _authorized(self) -> bool:
        # The scheme is case-insensitive (apiserver/pkg/authentication/request/bearertoken);
        # the official client's in-cluster loader sends "bearer".
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token == self.api.token

    def _send_error(self, record: Recorded, error: ApiError) -> None:
        self._send(record, error.code, error.status(), error.headers)

    def _send(
        self, record: Recorded, status: int, payload: Any, headers: dict[str, Any] | None = None
    ) -> None:
        record.status = status
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for key, value in (headers or {}).items():
            for item in value if isinstance(value, list) else [value]:
                self.send_header(key, item)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _route(
        self, path: str, query: dict[str, str], body: bytes, record: Recorded
    ) -> tuple[int, Any, dict[str, Any]]:
        api = self.api
        parts = [p for p in path.split("/") if p]
        if path in ("/healthz", "/livez", "/readyz"):
            return 200, b"ok", {}
        if path == "/version":
            major, minor, _ = api.kubernetes_version.split(".")
            return 200, {"major": major, "minor": minor, "gitVersion": f"v{api.kubernetes_version}", "gitCommit": "contract",
                         "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25",
                         "compiler": "gc", "platform": "linux/amd64"}, {}  # fmt: skip
        if parts == ["openapi", "v3"]:
            return 200, api.openapi_v3_root(), {}
        if parts[:2] == ["openapi", "v3"] and len(parts) in (4, 5):
            group, version = (
                (parts[3], parts[4]) if parts[2] == "apis" and len(parts) == 5 else ("", parts[3])
            )
            document = api.openapi_v3(group, version)
            if document is not None:
                return 200, document, {}
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"{api.host}:{api.port}"}]}, {}  # fmt: skip
        if parts == ["apis"]:
            groups = [api.api_group(g) for g in api.group_versions()]
            for group in groups:
                group.pop("kind")
                group.pop("apiVersion")
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}, {}
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in api.group_versions():
            return 200, api.api_group(parts[1]), {}
        if parts and parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts and parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            listing = api.resource_list(group, version)
            if listing is None or self.command != "GET":
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return 200, listing, {}
        return self._resource(group, version, rest, query, body, record)

    def _resource(
        self,
        group: str,
        version: str,
        rest: list[str],
        query: dict[str, str],
        body: bytes,
        record: Recorded,
    ) -> tuple[int, Any, dict[str, Any]]:
        api = self.api
        types = api._types
        ns: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and (group, version, rest[2]) in types:
            ns, rest = rest[1], rest[2:]
        rt = types.get((group, version, rest[0]))
        if rt is None or len(rest) > 3 or (ns is not None and not rt.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if len(rest) == 3:
            raise ApiError(
                404,
                "NotFound",
                f"the server could not find the requested resource (subresource {rest[2]!r} is not served by the contract server)",
            )
        name = rest[1] if len(rest) == 2 else None
        if name is not None and rt.namespaced and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        method = self.command
        if _parse_bool(query.get("watch", "false"), "watch"):
            raise ApiError(405, "MethodNotAllowed", "watch is not supported by the contract server")
        ua = self.headers.get("User-Agent", "")
        ctype = self.headers.get("Content-Type", "")
        warnings: list[str] = []
        if name is None:
            return self._collection(rt, ns, query, body)
        ns = ns or ""
        if method in ("GET", "HEAD"):
            with api._lock:
                obj = api._store.get(api._key(rt, ns, name))
                obj = copy.deepcopy(obj)
            if obj is None:
                raise api._not_found(rt, name)
            accept = self.headers.get("Accept", "")
            if "as=Table" in accept:
                return (
                    200,
                    _table(
                        [obj],
                        obj["metadata"]["resourceVersion"],
                        query.get("includeObject", "Metadata"),
                    ),
                    {},
                )
            return 200, obj, {}
        if method == "PUT":
            obj, warnings = api.put(rt, ns, name, body, query, ctype, ua)
            return 200, obj, self._warn(warnings)
        if method == "PATCH":
            existed = api._key(rt, ns, name) in api._store
            obj, warnings = api.patch(rt, ns, name, body, query, ctype, ua)
            created = not existed and "dryRun" not in query
            return (201 if created else 200), obj, self._warn(warnings)
        if method == "DELETE":
            return 200, api.delete(rt, ns, name, body, query), {}
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed")

    def _collection(
        self, rt: ResourceType, ns: str | None, query: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, Any]]:
        """GET/HEAD (list), POST (create) or DELETE on a collection of `rt`."""
        api = self.api
        method = self.command
        if method in ("GET", "HEAD"):
            listing = api.list(rt, ns, query)
            if "as=Table" in self.headers.get("Accept", ""):
                rv = listing["metadata"]["resourceVersion"]
                return (
                    200,
                    _table(listing["items"], rv, query.get("includeObject", "Metadata")),
                    {},
                )
            return 200, listing, {}
        if method == "POST":
            if rt.namespaced and ns is None:
                raise ApiError(405, "MethodNotAllowed", f"POST on {rt.plural} requires a namespace")
            ua = self.headers.get("User-Agent", "")
            ctype = self.headers.get("Content-Type", "")
            obj, warnings = api.create(rt, ns or "", body, query, ctype, ua)
            return (201 if "dryRun" not in query else 200), obj, self._warn(warnings)
        if method == "DELETE":
            return 200, api.delete_collection(rt, ns, query), {}
        raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on a collection")

    @staticmethod
    def _warn(warnings: list[str]) -> dict[str, Any]:
        return (
            {"Warning": [f'299 - "{w.replace(chr(34), chr(92) + chr(34))}"' for w in warnings]}
            if warnings
            else {}
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Kubernetes contract test server.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", default="contract-kubeconfig.yaml")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--token", default=None)
    parser.add_argument(
        "--plain-http", action="store_true", help="no TLS (kubectl then sends no token)"
    )
    args = parser.parse_args(argv)
    server = ContractApiServer(port=args.port, token=args.token, tls=not args.plain_http).start()
    path = server.write_kubeconfig(args.kubeconfig, namespace=args.namespace)
    print(path.resolve(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
