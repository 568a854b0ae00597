"""Pure pieces of the contract server: selectors, patches, field sets, defaulting, validation.

No I/O here; ``apiserver.py`` wires these into HTTP. Behaviour follows the Kubernetes documentation
("Server-Side Apply", "API Concepts", "Labels and Selectors", "Field validation"); simplifications
are listed in ``apiserver.py``'s module docstring.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

MISSING: Any = object()

# --------------------------------------------------------------------------------------------
# Errors


@dataclass
class ApiError(Exception):
    """An error the server answers with a ``metav1.Status`` body."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


# --------------------------------------------------------------------------------------------
# Label and field selectors (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/)

_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")  # fmt: skip
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # =, !=, in, notin, exists, !, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        try:
            number, bound = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.op == "gt" else number < bound


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts]


_SET_REQ = re.compile(r"^(?P<key>[^\s!=(),<>]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ_REQ = re.compile(r"^(?P<key>[^\s!=(),<>]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<value>[^\s!=(),<>]*)$")


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse ``labelSelector`` (equality- and set-based); raise 400 like the API server."""
    if not text.strip():
        return []
    requirements = []
    for part in _split_top_level(text):
        req = _parse_requirement(part)
        if req is None:
            raise bad_request(f"unable to parse requirement: {part!r}: invalid label selector")
        if not _LABEL_KEY.match(req.key) or any(not _LABEL_VALUE.match(v) for v in req.values):
            raise bad_request(f"unable to parse requirement: {part!r}: invalid label key or value")
        requirements.append(req)
    return requirements


def _parse_requirement(part: str) -> Requirement | None:
    if match := _SET_REQ.match(part):
        values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
        return Requirement(match["key"], match["op"], values) if values else None
    if match := _EQ_REQ.match(part):
        op = {"==": "=", ">": "gt", "<": "lt"}.get(match["op"], match["op"])
        if op in ("gt", "lt") and not match["value"].lstrip("-").isdigit():
            return None
        return Requirement(match["key"], op, (match["value"],))
    if part.startswith("!") and " " not in part[1:].strip():
        return Requirement(part[1:].strip(), "!")
    if part and not re.search(r"[\s!=(),<>]", part):
        return Requirement(part, "exists")
    return None


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    """``metadata.name`` / ``metadata.namespace`` with =, ==, != (other fields: 400)."""
    out = []
    for part in [p for p in text.split(",") if p.strip()]:
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(\S*)\s*$", part)
        if match is None:
            raise bad_request(f"invalid selector: {text!r}; can't understand {part!r}")
        key, op, value = match.groups()
        if key not in ("metadata.name", "metadata.namespace"):
            raise bad_request(f'field label not supported: "{key}"')
        out.append((key, "=" if op == "==" else op, value))
    return out


def field_selector_matches(selector: list[tuple[str, str, str]], obj: dict[str, Any]) -> bool:
    meta = obj.get("metadata", {})
    for key, op, value in selector:
        actual = meta.get(key.split(".", 1)[1], "")
        if (actual == value) != (op == "="):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(doc, list):
            doc = doc[int(token)]
        elif isinstance(doc, dict):
            doc = doc[token]
        else:
            raise KeyError(token)
    return doc


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for op in ops:
        try:
            doc = _json_patch_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(
                422,
                "Invalid",
                f"the server rejected our request due to an error in our request: {exc}",
            ) from exc
    return doc


def _json_patch_op(doc: Any, op: dict[str, Any]) -> Any:
    kind, tokens = op["op"], _pointer(op["path"])
    if kind == "test":
        if _walk(doc, tokens) != op["value"]:
            raise ValueError(f"testing value {op['path']} failed")
        return doc
    if kind in ("move", "copy"):
        value = copy.deepcopy(_walk(doc, _pointer(op["from"])))
        if kind == "move":
            doc = _json_patch_op(doc, {"op": "remove", "path": op["from"]})
        return _json_patch_op(doc, {"op": "add", "path": op["path"], "value": value})
    if not tokens:
        if kind == "remove":
            raise ValueError("cannot remove the document root")
        return copy.deepcopy(op["value"])
    parent, last = _walk(doc, tokens[:-1]), tokens[-1]
    if isinstance(parent, list):
        _json_patch_list(parent, last, kind, op)
    elif isinstance(parent, dict):
        _json_patch_object(parent, last, kind, op)
    else:
        raise TypeError(f"cannot apply {kind} at {op['path']}")
    if kind not in ("add", "remove", "replace"):
        raise ValueError(f"unknown json patch op {kind!r}")
    return doc


def _json_patch_list(parent: list[Any], last: str, kind: str, op: dict[str, Any]) -> None:
    """add, remove or replace at index `last` ("-" is the end) of a list, in place."""
    index = len(parent) if last == "-" else int(last)
    if kind == "add":
        parent.insert(index, copy.deepcopy(op["value"]))
    elif kind == "remove":
        del parent[index]
    elif kind == "replace":
        parent[index] = copy.deepcopy(op["value"])


def _json_patch_object(parent: dict[str, Any], last: str, kind: str, op: dict[str, Any]) -> None:
    """add, remove or replace member `last` of an object, in place."""
    if kind in ("remove", "replace") and last not in parent:
        raise KeyError(f"{op['path']} does not exist")
    if kind == "remove":
        del parent[last]
    elif kind in ("add", "replace"):
        parent[last] = copy.deepcopy(op["value"])


# --------------------------------------------------------------------------------------------
# Field sets (FieldsV1) for server-side apply

# Lists merged by key ("x-kubernetes-list-type: map" in the Kubernetes OpenAPI); every other list
# is atomic (owned and replaced as one value), which is also the default for CRDs.
_KEYED_LISTS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "imagePullSecrets": ("name",),
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "ownerReferences": ("uid",),
    "hostAliases": ("ip",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}
_KEY_DEFAULTS = {"protocol": "TCP"}

Path = tuple[str, ...]

# Server-owned metadata, never part of a field set (as in the API server's field manager).
SERVER_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def list_keys(path: Path, items: list[Any]) -> tuple[str, ...] | None:
    """Key fields of the list at ``path`` if it is merged by key and its items carry the keys."""
    if not path or not path[-1].startswith("f:"):
        return None
    name = path[-1][2:]
    keys = _KEYED_LISTS.get(name)
    if name == "ports":
        keys = (
            ("containerPort", "protocol")
            if len(path) >= 2 and path[-2].startswith("k:")
            else ("port", "protocol")
        )
    if keys is None:
        return None
    for item in items:
        if not isinstance(item, dict) or any(
            k not in item and k not in _KEY_DEFAULTS for k in keys
        ):
            return None
    return keys


def item_key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    key = {k: item.get(k, _KEY_DEFAULTS.get(k)) for k in keys}
    return "k:" + json.dumps(key, sort_keys=True, separators=(",", ":"))


def managed_view(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The part of an object field management is about: no apiVersion/kind/status/server metadata."""
    if not obj:
        return {}
    view = {
        k: copy.deepcopy(v) for k, v in obj.items() if k not in ("apiVersion", "kind", "status")
    }
    meta = {k: v for k, v in (view.pop("metadata", None) or {}).items() if k not in SERVER_METADATA}
    if meta:
        view["metadata"] = meta
    return view


def drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def leaf_paths(value: Any, path: Path = ()) -> set[Path]:
    """Leaf fields: scalars, atomic lists, empty maps; keyed list items are members themselves."""
    if isinstance(value, dict):
        if not value:
            return {path} if path else set()
        out: set[Path] = set()
        for key, sub in value.items():
            out |= leaf_paths(sub, (*path, f"f:{key}"))
        return out
    if isinstance(value, list) and value and (keys := list_keys(path, value)):
        out = set()
        for item in value:
            item_path = (*path, item_key(item, keys))
            out.add(item_path)
            out |= leaf_paths(item, item_path) - {item_path}
        return out
    return {path}


def all_paths(value: Any) -> set[Path]:
    """Every path present in ``value`` (leaves and the maps/items above them)."""
    out: set[Path] = set()
    for leaf in leaf_paths(value):
        out.update(leaf[:i] for i in range(1, len(leaf) + 1))
    return out


def get_path(obj: Any, path: Path) -> Any:
    cur = obj
    for element in path:
        if element.startswith("f:"):
            if not isinstance(cur, dict) or element[2:] not in cur:
                return MISSING
            cur = cur[element[2:]]
        elif element.startswith("k:"):
            want = json.loads(element[2:])
            if not isinstance(cur, list):
                return MISSING
            found = [
                i
                for i in cur
                if isinstance(i, dict)
                and all(i.get(k, _KEY_DEFAULTS.get(k)) == v for k, v in want.items())
            ]
            if not found:
                return MISSING
            cur = found[0]
        else:
            return MISSING
    return cur


def delete_path(obj: Any, path: Path) -> None:
    """Remove the field at ``path``, then maps left empty by the removal."""
    if not path:
        return
    parent = get_path(obj, path[:-1])
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        item = get_path(obj, path)
        if item is not MISSING:
            parent.remove(item)
    if isinstance(parent, dict | list) and not parent and len(path) > 1:
        delete_path(obj, path[:-1])


def merge_apply(live: Any, config: Any, path: Path = ()) -> Any:
    """Structured merge of an applied configuration into the live value."""
    if isinstance(config, dict) and isinstance(live, dict):
        out = copy.deepcopy(live)
        for key, value in config.items():
            sub = (*path, f"f:{key}")
            out[key] = merge_apply(live[key], value, sub) if key in live else copy.deepcopy(value)
        return out
    if isinstance(config, list) and isinstance(live, list):
        keys = list_keys(path, config)
        if keys and list_keys(path, live) == keys:
            wanted = {item_key(i, keys): i for i in config}
            out = []
            for item in live:
                k = item_key(item, keys)
                out.append(merge_apply(item, wanted.pop(k), (*path, k)) if k in wanted else item)
            out += [copy.deepcopy(i) for i in config if item_key(i, keys) in wanted]
            return out
    return copy.deepcopy(config)


def path_string(path: Path) -> str:
    """``.spec.template.spec.containers[name="app"].image`` as in conflict messages."""
    out = ""
    for element in path:
        if element.startswith("f:"):
            out += "." + element[2:]
        elif element.startswith("k:"):
            key = json.loads(element[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in key.items()) + "]"
    return out


def fields_to_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return _sorted_tree(root)


def _sorted_tree(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted_tree(node[k]) for k in sorted(node)}


def fields_from_v1(tree: dict[str, Any], path: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, sub in (tree or {}).items():
        if key == ".":
            out.add(path)
        elif sub:
            out |= fields_from_v1(sub, (*path, key))
        else:
            out.add((*path, key))
    return out


# --------------------------------------------------------------------------------------------
# Defaulting (the subset of the API server's defaulters that shows in objects xpool renders)


def _set_default(obj: dict[str, Any], key: str, value: Any) -> None:
    if key not in obj:
        obj[key] = copy.deepcopy(value)


def _default_pod_spec(spec: dict[str, Any]) -> None:
    for key, value in (
        ("restartPolicy", "Always"),
        ("dnsPolicy", "ClusterFirst"),
        ("schedulerName", "default-scheduler"),
        ("terminationGracePeriodSeconds", 30),
        ("securityContext", {}),
    ):
        _set_default(spec, key, value)
    for name in ("containers", "initContainers"):
        for container in spec.get(name) or []:
            if not isinstance(container, dict):
                continue
            image = str(container.get("image", ""))
            latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
            _set_default(container, "imagePullPolicy", "Always" if latest else "IfNotPresent")
            _set_default(container, "terminationMessagePath", "/dev/termination-log")
            _set_default(container, "terminationMessagePolicy", "File")
            _set_default(container, "resources", {})
            for port in container.get("ports") or []:
                if isinstance(port, dict):
                    _set_default(port, "protocol", "TCP")


def _default_template(spec: dict[str, Any]) -> None:
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        _default_pod_spec(template["spec"])


def _default_network_policy(spec: dict[str, Any]) -> None:
    """policyTypes: Ingress, plus Egress when egress rules are given; ports default to TCP."""
    egress = spec.get("egress")
    _set_default(spec, "policyTypes", ["Ingress", *(["Egress"] if egress else [])])
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule.get("ports") or []) if isinstance(rule, dict) else []:
                if isinstance(port, dict):
                    _set_default(port, "protocol", "TCP")


def apply_defaults(kind: str, obj: dict[str, Any]) -> None:
    """Defaults for Deployment, StatefulSet, CronJob, Service, NetworkPolicy, Namespace and pod
    templates (as the API server)."""
    spec = obj.get("spec")
    if kind == "Namespace":
        obj.setdefault("metadata", {}).setdefault("labels", {})["kubernetes.io/metadata.name"] = (
            obj["metadata"]["name"]
        )
        obj["spec"] = {"finalizers": ["kubernetes"], **(spec or {})}
        obj["status"] = {"phase": "Active"}
        return
    if not isinstance(spec, dict):
        return
    if kind == "Deployment":
        _set_default(spec, "replicas", 1)
        _set_default(spec, "revisionHistoryLimit", 10)
        _set_default(spec, "progressDeadlineSeconds", 600)
        _set_default(
            spec,
            "strategy",
            {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
        )
        _default_template(spec)
    elif kind == "StatefulSet":
        _set_default(spec, "replicas", 1)
        _set_default(spec, "revisionHistoryLimit", 10)
        _set_default(spec, "podManagementPolicy", "OrderedReady")
        _set_default(
            spec, "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        )
        _set_default(
            spec,
            "persistentVolumeClaimRetentionPolicy",
            {"whenDeleted": "Retain", "whenScaled": "Retain"},
        )
        _default_template(spec)
    elif kind == "NetworkPolicy":
        _default_network_policy(spec)
    elif kind == "CronJob":
        for key, value in (
            ("concurrencyPolicy", "Allow"),
            ("suspend", False),
            ("successfulJobsHistoryLimit", 3),
            ("failedJobsHistoryLimit", 1),
        ):
            _set_default(spec, key, value)
        pod = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        if isinstance(pod.get("spec"), dict):
            _default_pod_spec(pod["spec"])
    elif kind == "Service":
        _set_default(spec, "type", "ClusterIP")
        _set_default(spec, "sessionAffinity", "None")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                _set_default(port, "protocol", "TCP")
                _set_default(port, "targetPort", port.get("port"))


# --------------------------------------------------------------------------------------------
# Validation


@dataclass
class Problem:
    """One validation problem: ``kind`` is unknown (an unknown field), type, or invalid."""

    field: str
    message: str
    kind: str  # "unknown" | "type" | "required" | "invalid"
    path: tuple[Any, ...] = ()


def _join(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@functools.cache
def _core_validator(schema_version: str, kind: str, api_version: str) -> Any:
    import jsonschema
    import kubernetes_validate.utils as kv
    from referencing import Registry, Resource

    slug = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    base = f"kubernetes-json-schema/v{schema_version}-local-strict"
    schema = kv.schema_contents(f"{base}/{kind.lower()}-{slug}.json", schema_version)
    definitions = Resource.from_contents(
        kv.schema_contents(f"{base}/_definitions.json", schema_version)
    )
    registry = Resource.from_contents(schema) @ (definitions @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate_core(obj: dict[str, Any], schema_version: str) -> list[Problem]:
    validator = _core_validator(schema_version, obj["kind"], obj["apiVersion"])
    problems = []
    for error in validator.iter_errors(obj):
        at = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            for extra in sorted(k for k in error.instance if k not in allowed):
                problems.append(
                    Problem(
                        _join((*at, extra)),
                        f'unknown field "{_join((*at, extra))}"',
                        "unknown",
                        (*at, extra),
                    )
                )
        elif error.validator == "required" and isinstance(error.instance, dict):
            for name in [f for f in error.validator_value if f not in error.instance]:
                problems.append(
                    Problem(_join((*at, name)), "Required value", "required", (*at, name))
                )
        elif error.validator == "type":
            problems.append(Problem(_join(at), f"Invalid value: {error.message}", "type", at))
        elif error.validator == "enum":
            choices = ", ".join(json.dumps(c) for c in error.validator_value if c is not None)
            problems.append(
                Problem(
                    _join(at),
                    f"Unsupported value: {json.dumps(error.instance)}: supported values: {choices}",
                    "invalid",
                    at,
                )
            )
        else:
            problems.append(Problem(_join(at), f"Invalid value: {error.message}", "invalid", at))
    return problems


def validate_pydantic(obj: dict[str, Any], model: Any) -> list[Problem]:
    from pydantic import ValidationError

    try:
        model.model_validate(obj, strict=True)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            at = tuple(
                p
                for p in error["loc"]
                if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))
            )
            if error["type"] == "extra_forbidden":
                problems.append(Problem(_join(at), f'unknown field "{_join(at)}"', "unknown", at))
            elif error["type"] == "missing":
                problems.append(Problem(_join(at), "Required value", "required", at))
            else:
                problems.append(
                    Problem(
                        _join(at),
                        f"Invalid value: {json.dumps(error.get('input'), default=str)}: {error['msg']}",
                        "invalid",
                        at,
                    )
                )
        return _dedupe(problems)
    return []


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for problem in problems:
        if (problem.field, problem.message) not in seen:
            seen.add((problem.field, problem.message))
            out.append(problem)
    return out


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def validate_name(kind: str, group: str, name: str) -> list[Problem]:
    if group == "rbac.authorization.k8s.io":
        bad = name in (".", "..") or "/" in name or "%" in name
        return (
            [
                Problem(
                    "metadata.name",
                    f"Invalid value: {json.dumps(name)}: may not contain '/' or '%'",
                    "invalid",
                )
            ]
            if bad
            else []
        )
    if kind in ("Namespace",):
        ok, limit, what = _DNS_LABEL.match(name), 63, "RFC 1123 label"
    elif kind == "Service":
        ok, limit, what = _DNS_1035.match(name), 63, "RFC 1035 label"
    else:
        ok, limit, what = _DNS_SUBDOMAIN.match(name), 253, "RFC 1123 subdomain"
    if ok and len(name) <= limit:
        return []
    return [
        Problem(
            "metadata.name",
            f"Invalid value: {json.dumps(name)}: a lowercase {what} must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (at most {limit} characters)",
            "invalid",
        )
    ]


def validate_labels(meta: dict[str, Any]) -> list[Problem]:
    problems = []
    for key, value in (meta.get("labels") or {}).items():
        if not _LABEL_KEY.match(str(key)):
            problems.append(
                Problem(
                    "metadata.labels",
                    f"Invalid value: {json.dumps(key)}: name part must consist of alphanumeric characters, '-', '_' or '.'",
                    "invalid",
                )
            )
        if not isinstance(value, str) or not _LABEL_VALUE.match(value):
            problems.append(
                Problem(
                    "metadata.labels",
                    f"Invalid value: {json.dumps(value)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.' (at most 63)",
                    "invalid",
                )
            )
    return problems


def validate_semantics(kind: str, obj: dict[str, Any]) -> list[Problem]:
    """A few rules of the API server's Go validation beyond the OpenAPI schema."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    problems = []
    if kind in ("Deployment", "StatefulSet"):
        selector = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if selector and any(labels.get(k) != v for k, v in selector.items()):
            problems.append(
                Problem(
                    "spec.template.metadata.labels",
                    f"Invalid value: {json.dumps(labels)}: `selector` does not match template `labels`",
                    "invalid",
                )
            )
        if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
            problems.append(
                Problem(
                    "spec.replicas",
                    f"Invalid value: {spec['replicas']}: must be greater than or equal to 0",
                    "invalid",
                )
            )
    if (
        kind == "Lease"
        and isinstance(spec.get("leaseDurationSeconds"), int)
        and spec["leaseDurationSeconds"] <= 0
    ):
        problems.append(
            Problem("spec.leaseDurationSeconds", "Invalid value: must be greater than 0", "invalid")
        )
    if kind == "PrometheusRule":
        groups = spec.get("groups")
        if not isinstance(groups, list):
            problems.append(Problem("spec.groups", "Required value", "required"))
        else:
            for i, group in enumerate(groups):
                if not isinstance(group, dict) or not group.get("name"):
                    problems.append(Problem(f"spec.groups[{i}].name", "Required value", "required"))
    return problems


def remove_fields(obj: dict[str, Any], paths: list[tuple[Any, ...]]) -> None:
    """Drop unknown fields (``fieldValidation=Ignore|Warn``)."""
    for path in sorted(paths, key=len, reverse=True):
        parent: Any = obj
        for part in path[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
