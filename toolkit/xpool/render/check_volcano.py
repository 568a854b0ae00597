"""Volcano kinds: the generated client's CRD schema (unknown fields refused) and the admission rules.

Schema: ``Queue`` / ``PodGroup`` (scheduling.volcano.sh/v1beta1) and ``Job``
(batch.volcano.sh/v1alpha1) are validated with ``Model.model_validate(obj, strict=True)``; strict,
because the API server does not turn ``"false"`` into a boolean or ``"3"`` into an integer.

Admission: Volcano checks these kinds in its webhooks (volcano-sh/volcano
pkg/webhooks/admission/{queues,jobs,podgroups}/validate/) and, since the move to
ValidatingAdmissionPolicies, in installer/helm/chart/volcano/policy/*-validating.yaml. The rules
below are re-implemented from reading those files; each names the file it mirrors. Rules that need
the live cluster (queue exists and is Open, parent queue found) are checked against the rendered
set instead, in ``check_intent`` and ``check_queue_hierarchy``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ValidationError

from xpool.config import kube_names as names
from xpool.config.derived_names import MAX_OBJECT_NAME, worker_pod_name
from xpool.render.check_pods import containers, pod_templates
from xpool.render.check_quantity import format_quantity, parse_quantity, quantity_value_problem
from xpool.render.check_types import CheckProblem, as_dict, as_list, dig, join_path, object_ref
from xpool.volcano import Job, PodGroup, Queue

VOLCANO_KINDS: dict[tuple[str, str], type[BaseModel]] = {
    ("scheduling.volcano.sh/v1beta1", "Queue"): Queue,
    ("scheduling.volcano.sh/v1beta1", "PodGroup"): PodGroup,
    ("batch.volcano.sh/v1alpha1", "Job"): Job,
}
VOLCANO_GROUPS = ("scheduling.volcano.sh", "batch.volcano.sh")

HIERARCHY_ANNOTATION = "volcano.sh/hierarchy"
HIERARCHY_WEIGHTS_ANNOTATION = "volcano.sh/hierarchy-weights"

# pkg/webhooks/admission/jobs/validate/util.go policyEventMap / policyActionMap (allowed ones).
VALID_POLICY_EVENTS = frozenset(
    {
        "*",
        "PodFailed",
        "PodEvicted",
        "PodPending",
        "Unknown",
        "TaskCompleted",
        "TaskFailed",
        "JobUpdated",
    }
)
VALID_POLICY_ACTIONS = frozenset(
    {
        "AbortJob",
        "RestartJob",
        "RestartTask",
        "RestartPod",
        "RestartPartition",
        "TerminateJob",
        "CompleteJob",
        "ResumeJob",
    }
)
# pkg/controllers/job/plugins/factory.go RegisterPluginBuilder.
JOB_PLUGINS = frozenset({"ssh", "env", "svc", "tensorflow", "mpi", "pytorch", "hcclrank", "ray"})


def is_volcano(obj: dict[str, Any]) -> bool:
    api_version = obj.get("apiVersion")
    return isinstance(api_version, str) and api_version.split("/", 1)[0] in VOLCANO_GROUPS


def check_volcano_object(obj: dict[str, Any]) -> list[CheckProblem]:
    """Admission rules, then the CRD schema (the caller keeps one problem per field)."""
    key = (obj["apiVersion"], obj["kind"])
    model = VOLCANO_KINDS.get(key)
    if model is None:
        known = [f"{k} {v}" for v, k in VOLCANO_KINDS if v.split("/")[0] == key[0].split("/")[0]]
        hint = f"xpool renders {', '.join(known)}" if known else "check kind and apiVersion"
        return [
            CheckProblem(
                object_ref(obj),
                "apiVersion",
                f"no Volcano {key[1]} in {key[0]} is known to xpool: {hint}",
                "volcano.schema.kind",
            )
        ]
    rules = {"Queue": check_queue, "PodGroup": check_podgroup, "Job": check_job}[key[1]]
    return rules(obj) + check_volcano_schema(obj, model)


class _Found:
    """The problems of one object, as the rules find them (in the order they are checked)."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.where = object_ref(obj)
        self.problems: list[CheckProblem] = []

    def add(self, path: str, message: str, rule: str) -> None:
        self.problems.append(CheckProblem(self.where, path, message, rule))


# ---------------------------------------------------------------------------------------- schema

_UNION_TAGS = frozenset({"int", "str", "bool", "float", "list", "dict", "none"})
_PATTERN_NAMES = {
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$": "a DNS-1123 label (lower-case letters, digits, '-')",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$": (
        "a DNS-1123 subdomain (lower-case letters, digits, '-', '.')"
    ),
}
_TYPE_WORDS = {
    "bool_type": "a boolean (true/false, unquoted)",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _path_of(loc: tuple[Any, ...]) -> str:
    parts = [
        p
        for p in loc
        if not (
            isinstance(p, str)
            and (p in _UNION_TAGS or "[" in p or p.startswith(("constrained-", "function-")))
        )
    ]
    return join_path(*parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_volcano_schema(obj: dict[str, Any], model: type[BaseModel]) -> list[CheckProblem]:
    try:
        model.model_validate(obj, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    else:
        return []
    where = object_ref(obj)
    kind = obj["kind"]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for error in errors:
        grouped.setdefault(_path_of(tuple(error["loc"])), []).append(error)
    problems = []
    for path, group in grouped.items():
        problems.append(
            CheckProblem(
                where,
                path,
                f"{_schema_message(group)} (Volcano {kind} CRD schema)",
                _schema_rule(group),
            )
        )
    return problems


def _schema_rule(group: list[dict[str, Any]]) -> str:
    return (
        "volcano.schema.unknown-field"
        if group[0]["type"] == "extra_forbidden"
        else "volcano.schema"
    )


def _schema_message(group: list[dict[str, Any]]) -> str:
    types = {e["type"] for e in group}
    first = group[0]
    value = first.get("input")
    if len(group) > 1 and types <= {"int_type", "int_from_float", "string_type"}:
        hint = f'; quote it: "{value}"' if isinstance(value, float) else ""
        return f'must be an integer or a string (int-or-string, e.g. 8 or "500m"), got {_short(value)}{hint}'
    kind = first["type"]
    ctx = first.get("ctx") or {}
    field = str(first["loc"][-1]) if first["loc"] else ""
    if kind == "extra_forbidden":
        return f"unknown field {field!r}: the schema has no such field here; remove it or fix its spelling"
    if kind == "missing":
        return f"required field {field!r} is missing: set it"
    for key, word in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
        if key in ctx and kind.endswith(("_equal", "_than")):
            return f"must be {word} {ctx[key]}, got {_short(value)}: fix the value"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        what = _PATTERN_NAMES.get(pattern, f"a string matching {pattern}")
        return f"{_short(value)} is not {what}: rename it"
    if kind == "string_too_long":
        return f"{_short(value)} is longer than {ctx.get('max_length')} characters: shorten it"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s): add them"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {_short(value)}"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, got {_short(value)}"
    return f"{first['msg']}, got {_short(value)}"


# ------------------------------------------------------------------------------------------ Queue


def queue_amounts(spec: dict[str, Any], *field: str) -> dict[str, Fraction]:
    """Parsable amounts of one resource list of a queue spec (bad ones are reported elsewhere)."""
    out: dict[str, Fraction] = {}
    for name, value in as_dict(dig(spec, *field)).items():
        if quantity_value_problem(name, value) is None:
            out[name] = parse_quantity(value)
    return out


def check_queue(obj: dict[str, Any]) -> list[CheckProblem]:
    spec = as_dict(obj.get("spec"))
    found = _Found(obj)
    _queue_weight(found, spec)
    _queue_shares(found, spec)

    # validate_queue.go validateStateOfQueue: state is Open or Closed when set.
    state = dig(obj, "status", "state")
    if state not in (None, "", "Open", "Closed"):
        found.add(
            "status.state",
            f"queue state must be Open or Closed, got {_short(state)}",
            "volcano.queue.state",
        )

    _queue_hierarchy(found, as_dict(dig(obj, "metadata", "annotations")))

    # validate_queue.go validateHierarchicalQueue: a queue cannot be its own parent.
    parent = spec.get("parent")
    name = dig(obj, "metadata", "name")
    if isinstance(parent, str) and parent and parent == name:
        found.add(
            "spec.parent",
            f"queue {name} cannot use itself as parent: fix spec.parent",
            "volcano.queue.parent",
        )
    return found.problems


def _queue_weight(found: _Found, spec: dict[str, Any]) -> None:
    """CRD schema config/crd/volcano/bases/scheduling.volcano.sh_queues.yaml: weight 1..65535
    (queues/mutate/mutate_queue.go turns an unset or 0 weight into 1)."""
    weight = spec.get("weight")
    if "weight" in spec and (
        isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 65535
    ):
        found.add(
            "spec.weight",
            f"weight must be an integer from 1 to 65535, got {_short(weight)}: fix it or omit it "
            "(the capacity plugin ignores weight; proportion reads it)",
            "volcano.queue.weight",
        )


def _queue_shares(found: _Found, spec: dict[str, Any]) -> None:
    """queues/validate/validate_queue.go validateResourceQuantityOfQueue: every amount valid
    (ValidateResourceQuantityValue; policy/queues-validating.yaml "resource values must not
    be empty"), guarantee <= deserved and deserved <= capability, per resource."""
    for field in (("capability",), ("deserved",), ("guarantee", "resource")):
        for name, value in as_dict(dig(spec, *field)).items():
            bad = quantity_value_problem(name, value)
            if bad:
                found.add(
                    join_path("spec", *field, name),
                    f"{bad}; fix this amount",
                    "volcano.queue.quantity",
                )
    capability = queue_amounts(spec, "capability")
    deserved = queue_amounts(spec, "deserved")
    guarantee = queue_amounts(spec, "guarantee", "resource")
    deserved_names = set(as_dict(spec.get("deserved")))

    # guarantee <= deserved, per resource.
    for name, floor in guarantee.items():
        if name not in deserved_names:
            found.add(
                join_path("spec", "deserved", name),
                f"guarantee[{name}]={format_quantity(floor)} but deserved has no {name}: "
                f"add deserved[{name}] >= {format_quantity(floor)}",
                "volcano.queue.deserved-ge-guarantee",
            )
        elif name in deserved and deserved[name] < floor:
            found.add(
                join_path("spec", "deserved", name),
                f"deserved[{name}]={format_quantity(deserved[name])} must be >= "
                f"guarantee[{name}]={format_quantity(floor)}: raise deserved or lower the guarantee",
                "volcano.queue.deserved-ge-guarantee",
            )
    # deserved <= capability where both are set.
    for name, share in deserved.items():
        if name in capability and share > capability[name]:
            found.add(
                join_path("spec", "capability", name),
                f"capability[{name}]={format_quantity(capability[name])} is below "
                f"deserved[{name}]={format_quantity(share)}: capability must be >= deserved; "
                "raise capability or lower deserved",
                "volcano.queue.capability-ge-deserved",
            )


def _queue_hierarchy(found: _Found, annotations: dict[str, Any]) -> None:
    r"""validate_queue.go validateHierarchicalAttributes: path and weights of equal length,
    weights positive numbers (policy/queues-validating.yaml: ^[0-9]+(\.[0-9]+)?$ and > 0)."""
    hierarchy = annotations.get(HIERARCHY_ANNOTATION, "")
    weights = annotations.get(HIERARCHY_WEIGHTS_ANNOTATION, "")
    if not (hierarchy or weights):
        return
    path = join_path("metadata", "annotations", HIERARCHY_WEIGHTS_ANNOTATION)
    paths_list = str(hierarchy).split("/") if hierarchy else []
    weights_list = str(weights).split("/") if weights else []
    if len(paths_list) != len(weights_list):
        found.add(
            path,
            f"{HIERARCHY_ANNOTATION}={hierarchy!r} has {len(paths_list)} parts but "
            f"{HIERARCHY_WEIGHTS_ANNOTATION}={weights!r} has {len(weights_list)}: give one weight per part",
            "volcano.queue.hierarchy",
        )
        return
    for part in weights_list:
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", part) or float(part) <= 0:
            found.add(
                path,
                f"weight {part!r} in {weights!r} must be a number larger than 0",
                "volcano.queue.hierarchy",
            )
            break


# -------------------------------------------------------------------------------------- PodGroup


def check_podgroup(obj: dict[str, Any]) -> list[CheckProblem]:
    where = object_ref(obj)
    spec = as_dict(obj.get("spec"))
    problems: list[CheckProblem] = []
    for name, value in as_dict(spec.get("minResources")).items():
        bad = quantity_value_problem(name, value)
        if bad:
            problems.append(
                CheckProblem(
                    where,
                    join_path("spec", "minResources", name),
                    f"{bad}; fix this amount",
                    "volcano.podgroup.quantity",
                )
            )
    min_member = spec.get("minMember")
    task_members = as_dict(spec.get("minTaskMember"))
    counts = [v for v in task_members.values() if isinstance(v, int) and not isinstance(v, bool)]
    if isinstance(min_member, int) and counts and sum(counts) > min_member:
        problems.append(
            CheckProblem(
                where,
                "spec.minTaskMember",
                f"minTaskMember adds up to {sum(counts)}, more than minMember={min_member}: "
                "the gang could never be satisfied as declared; raise minMember",
                "volcano.podgroup.min-member",
            )
        )
    # podgroups/validate/validate_podgroup.go validateNetworkTopology.
    topology = as_dict(spec.get("networkTopology"))
    if topology.get("highestTierAllowed") is not None and topology.get("highestTierName"):
        problems.append(
            CheckProblem(
                where,
                "spec.networkTopology",
                "must not specify highestTierAllowed and highestTierName together: keep one",
                "volcano.podgroup.network-topology",
            )
        )
    return problems


# ------------------------------------------------------------------------------------------- Job


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_job(obj: dict[str, Any]) -> list[CheckProblem]:
    spec = as_dict(obj.get("spec"))
    name = dig(obj, "metadata", "name")
    found = _Found(obj)
    _job_basics(found, name, spec)
    tasks = as_list(spec.get("tasks"))
    total = 0
    seen: set[str] = set()
    task_names: list[str] = []
    for i, task in enumerate(tasks):
        total += _task(found, name, ("spec", "tasks", i), as_dict(task), seen, task_names)
    _job_counts(found, spec, bool(tasks), total)
    found.problems.extend(
        CheckProblem(found.where, path, message, "volcano.job.policies")
        for path, message in _policy_problems(spec.get("policies"), ("spec",))
    )
    # admit_job.go validateJobCreate: plugins must be known to the job controller.
    for plugin in as_dict(spec.get("plugins")):
        if plugin not in JOB_PLUGINS:
            found.add(
                join_path("spec", "plugins", plugin),
                f"unknown job plugin {plugin!r}: use one of {', '.join(sorted(JOB_PLUGINS))}",
                "volcano.job.plugins",
            )
    _job_volumes(found, as_list(spec.get("volumes")))
    # admit_job.go validateJobCreate: task dependencies form a DAG (topoSort).
    found.problems += _dependency_problems(found.where, tasks, task_names)
    # jobs/validate/admit_job.go validateNetworkTopology.
    topology = as_dict(spec.get("networkTopology"))
    if topology.get("highestTierAllowed") is not None and topology.get("highestTierName"):
        found.add(
            "spec.networkTopology",
            "must not specify highestTierAllowed and highestTierName together: keep one",
            "volcano.job.network-topology",
        )
    return found.problems


def _job_basics(found: _Found, name: Any, spec: dict[str, Any]) -> None:
    """The job's name, queue and tasks are there and usable."""
    # policy/jobs-validating.yaml "job name must be a valid qualified name" (admit_job.go
    # validateJobName): at most 63 characters, on top of the API server's DNS-1123 subdomain.
    if isinstance(name, str) and len(name) > 63:
        found.add(
            "metadata.name",
            f"{name!r} is longer than 63 characters: shorten the job name",
            "volcano.job.name",
        )

    # jobs/mutate/mutate_job.go puts a job without a queue into `default`; xpool never means that.
    queue = spec.get("queue")
    if not isinstance(queue, str) or not queue:
        found.add(
            "spec.queue",
            "spec.queue is not set: Volcano would put the job in the `default` queue; "
            "set it to the tier's queue",
            "volcano.job.queue-set",
        )

    # policy/jobs-validating.yaml "No task specified in job spec" (admit_job.go validateJobCreate).
    if not as_list(spec.get("tasks")):
        found.add(
            "spec.tasks",
            "no task specified: a Volcano Job needs at least one task",
            "volcano.job.tasks",
        )


def _task(
    found: _Found,
    job: Any,
    at: tuple[str | int, ...],
    task: dict[str, Any],
    seen: set[str],
    task_names: list[str],
) -> int:
    """One task of job `job` at path `at`; adds its name to `seen` and `task_names`. Returns
    its replicas as they count towards the job's minAvailable (negative ones count 0)."""
    task_name = task.get("name")
    # jobs-validating.yaml: task names unique and DNS-1123 labels.
    if isinstance(task_name, str):
        task_names.append(task_name)
        bad = names.dns1123_label(task_name)
        if bad:
            found.add(
                join_path(*at, "name"),
                f"task name {bad}; rename the task",
                "volcano.job.task-name",
            )
        if task_name in seen:
            found.add(
                join_path(*at, "name"),
                f"duplicated task name {task_name!r}: task names must be unique in a job",
                "volcano.job.task-name-unique",
            )
        seen.add(task_name)
    replicas = _int(task.get("replicas"))
    _task_counts(found, at, task_name, replicas, _int(task.get("minAvailable")))
    found.problems.extend(
        CheckProblem(found.where, path, message, "volcano.job.policies")
        for path, message in _policy_problems(task.get("policies"), at)
    )
    # admit_job.go validateK8sPodNameLength: pod names <job>-<task>-<index> are qualified names.
    if isinstance(job, str) and isinstance(task_name, str):
        pod_name = worker_pod_name(job, task_name, max((replicas or 1) - 1, 0))
        if len(pod_name) > MAX_OBJECT_NAME:
            found.add(
                join_path(*at, "name"),
                f"pod names such as {pod_name!r} exceed {MAX_OBJECT_NAME} characters: "
                "shorten the job or task name",
                "volcano.job.pod-name",
            )
    _task_topology(found, at, task)
    _task_partition(found, at, replicas, as_dict(task.get("partitionPolicy")))
    return max(replicas or 0, 0)


def _task_counts(
    found: _Found,
    at: tuple[str | int, ...],
    task_name: Any,
    replicas: int | None,
    task_min: int | None,
) -> None:
    """jobs-validating.yaml "'replicas' < 0 in task", "'minAvailable' < 0 in task" and
    "greater than 'replicas' in task"."""
    if replicas is not None and replicas < 0:
        found.add(
            join_path(*at, "replicas"),
            f"replicas must be >= 0, got {replicas}",
            "volcano.job.task-replicas",
        )
    if task_min is not None and task_min < 0:
        found.add(
            join_path(*at, "minAvailable"),
            f"minAvailable must be >= 0, got {task_min}",
            "volcano.job.task-min-available",
        )
    elif task_min is not None and replicas is not None and task_min > replicas:
        found.add(
            join_path(*at, "minAvailable"),
            f"minAvailable {task_min} is greater than replicas {replicas} in task "
            f"{task_name!r}: lower minAvailable or add replicas",
            "volcano.job.task-min-available",
        )


def _task_topology(found: _Found, at: tuple[str | int, ...], task: dict[str, Any]) -> None:
    """admit_job.go validateTaskTopoPolicy: a topology policy needs whole-CPU requests."""
    topology = task.get("topologyPolicy")
    if topology in (None, "", "none"):
        return
    for rel, container in containers(as_dict(task.get("template"))):
        cpu = dig(container, "resources", "requests", "cpu")
        if cpu is None:
            cpu = dig(container, "resources", "limits", "cpu")
        if quantity_value_problem("cpu", cpu) is None and parse_quantity(cpu).denominator != 1:
            found.add(
                join_path(*at, "template", *rel, "resources", "requests", "cpu"),
                f"topologyPolicy {topology} needs a whole number of CPUs, got {cpu!r}",
                "volcano.job.topology-cpu",
            )


def _task_partition(
    found: _Found, at: tuple[str | int, ...], replicas: int | None, partition: dict[str, Any]
) -> None:
    """admit_job.go validatePartitionPolicy: positive sizes whose product is the replicas."""
    if not partition:
        return
    total_p, size = (
        _int(partition.get("totalPartitions")),
        _int(partition.get("partitionSize")),
    )
    if not total_p or total_p <= 0 or not size or size <= 0:
        found.add(
            join_path(*at, "partitionPolicy"),
            "totalPartitions and partitionSize must be greater than 0",
            "volcano.job.partition",
        )
    elif replicas is not None and replicas != total_p * size:
        found.add(
            join_path(*at, "replicas"),
            f"replicas {replicas} must equal totalPartitions*partitionSize = {total_p * size}",
            "volcano.job.partition",
        )


def _job_counts(found: _Found, spec: dict[str, Any], has_tasks: bool, total: int) -> None:
    """jobs-validating.yaml "job 'minAvailable' must be >= 0" and "should not be greater than
    total replicas in tasks"; maxRetry and ttlSecondsAfterFinished >= 0."""
    min_available = _int(spec.get("minAvailable"))
    if min_available is not None and min_available < 0:
        found.add(
            "spec.minAvailable",
            f"minAvailable must be >= 0, got {min_available}",
            "volcano.job.min-available",
        )
    elif min_available is not None and has_tasks and min_available > total:
        found.add(
            "spec.minAvailable",
            f"minAvailable {min_available} is greater than the {total} replicas of all tasks: "
            "lower minAvailable or add replicas",
            "volcano.job.min-available",
        )
    for field in ("maxRetry", "ttlSecondsAfterFinished"):
        value = _int(spec.get(field))
        if value is not None and value < 0:
            found.add(
                f"spec.{field}",
                f"{field} cannot be less than zero, got {value}",
                "volcano.job.non-negative",
            )


def _job_volumes(found: _Found, volumes: list[Any]) -> None:
    """jobs/validate/util.go validateIO and jobs-validating.yaml volume rules."""
    mount_paths: set[str] = set()
    for i, volume in enumerate(volumes):
        volume = as_dict(volume)
        mount = volume.get("mountPath")
        at = join_path("spec", "volumes", i)
        if not mount:
            found.add(join_path(at, "mountPath"), "mountPath is required", "volcano.job.volumes")
        elif mount in mount_paths:
            found.add(
                join_path(at, "mountPath"), f"duplicated mountPath {mount!r}", "volcano.job.volumes"
            )
        mount_paths.add(str(mount))
        if not volume.get("volumeClaim") and not volume.get("volumeClaimName"):
            found.add(
                at, "either volumeClaim or volumeClaimName must be specified", "volcano.job.volumes"
            )


def _policy_problems(policies: Any, at: tuple[str | int, ...]) -> list[tuple[str, str]]:
    """jobs/validate/util.go validatePolicies and the policy rules of jobs-validating.yaml."""
    out: list[tuple[str, str]] = []
    events_seen: set[str] = set()
    exit_codes: set[int] = set()
    for k, policy in enumerate(as_list(policies)):
        policy = as_dict(policy)
        path = join_path(*at, "policies", k)
        events = [policy["event"]] if policy.get("event") else []
        events += [e for e in as_list(policy.get("events")) if e not in events]
        exit_code = policy.get("exitCode")
        if events and exit_code is not None:
            out.append((path, "must not specify event and exitCode together: keep one"))
            continue
        if not events and exit_code is None:
            out.append((path, "either event(s) or exitCode must be specified"))
            continue
        if events:
            action = policy.get("action")
            if action not in VALID_POLICY_ACTIONS:
                out.append(
                    (
                        join_path(path, "action"),
                        f"invalid policy action {action!r}: use one of {', '.join(sorted(VALID_POLICY_ACTIONS))}",
                    )
                )
            for event in events:
                if event not in VALID_POLICY_EVENTS:
                    out.append(
                        (
                            join_path(path, "event"),
                            f"invalid policy event {event!r}: use one of {', '.join(sorted(VALID_POLICY_EVENTS))}",
                        )
                    )
                elif event in events_seen:
                    out.append(
                        (
                            join_path(path, "event"),
                            f"duplicate event {event!r} across policies: keep one",
                        )
                    )
                events_seen.add(str(event))
        elif exit_code == 0:
            out.append((join_path(path, "exitCode"), "0 is not a valid exit code"))
        elif exit_code in exit_codes:
            out.append((join_path(path, "exitCode"), f"duplicate exitCode {exit_code}"))
        else:
            exit_codes.add(exit_code)
    if "*" in events_seen and len(events_seen) > 1:
        out.append((join_path(*at, "policies"), "a '*' event policy must be the only event policy"))
    return out


def _dependency_problems(where: str, tasks: list[Any], task_names: list[str]) -> list[CheckProblem]:
    edges: dict[str, list[str]] = {}
    problems: list[CheckProblem] = []
    for i, task in enumerate(tasks):
        deps = as_list(dig(task, "dependsOn", "name"))
        for dep in deps:
            if dep not in task_names:
                problems.append(
                    CheckProblem(
                        where,
                        join_path("spec", "tasks", i, "dependsOn", "name"),
                        f"depends on task {dep!r}, which the job does not have",
                        "volcano.job.depends-on",
                    )
                )
        if isinstance(dig(task, "name"), str):
            edges[task["name"]] = [d for d in deps if d in task_names]
    indegree = {n: len(d) for n, d in edges.items()}
    ready = [n for n, d in indegree.items() if d == 0]
    done = 0
    while ready:
        node = ready.pop()
        done += 1
        for other, deps in edges.items():
            if node in deps:
                indegree[other] -= 1
                if indegree[other] == 0:
                    ready.append(other)
    if done < len(edges):
        problems.append(
            CheckProblem(
                where,
                "spec.tasks",
                "task dependencies form a cycle: dependsOn must make a directed acyclic graph",
                "volcano.job.depends-on",
            )
        )
    return problems


def preemptable_annotation(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    """(path, value) of ``volcano.sh/preemptable`` on every pod template of a Volcano Job."""
    return [
        (
            join_path(*at, "metadata", "annotations"),
            dig(template, "metadata", "annotations", "volcano.sh/preemptable"),
        )
        for at, template in pod_templates(obj)
    ]
