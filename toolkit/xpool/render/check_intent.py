"""Pre-flight of intent: checks across the rendered set that no single schema can make.

Each object can be valid on its own while the set does not do what xpool means: a tier that
borrows without the scheduler ever reclaiming, P0 pods that Volcano may preempt, a job asking for
a resource its queue has no share of, references to queues or priority classes that are not
there. Volcano's own admission checks that need the live cluster (queue exists, leaf queue,
parent queue, hierarchy sums in queues/validate/validate_queue.go and jobs/validate/admit_job.go)
are made here against the rendered set instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from fractions import Fraction
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from xpool.render.check_pods import containers, pod_templates, requested_resources
from xpool.render.check_quantity import format_quantity
from xpool.render.check_types import (
    CheckProblem,
    as_dict,
    as_list,
    dig,
    join_path,
    labels_of,
    object_ref,
)
from xpool.render.check_volcano import HIERARCHY_ANNOTATION, preemptable_annotation, queue_amounts

SCHEDULER_CONF_KEY = "volcano-scheduler.conf"
TIER_LABEL = "xpool.io/tier"
PROTECTED_TIER = "P0"
PREEMPTABLE_ANNOTATION = "volcano.sh/preemptable"
# Built into every cluster (k8s pkg/apis/scheduling): need not be in the set.
SYSTEM_PRIORITY_CLASSES = frozenset({"system-cluster-critical", "system-node-critical"})


@dataclass
class SchedulerConf:
    where: str
    actions: list[str] = dc_field(default_factory=list)
    plugins: set[str] = dc_field(default_factory=set)


def _is_volcano_job(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "Job" and str(obj.get("apiVersion", "")).startswith(
        "batch.volcano.sh/"
    )


def _is_queue(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "Queue" and str(obj.get("apiVersion", "")).startswith(
        "scheduling.volcano.sh/"
    )


def _is_podgroup(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "PodGroup" and str(obj.get("apiVersion", "")).startswith(
        "scheduling.volcano.sh/"
    )


def parse_scheduler_conf(obj: dict[str, Any]) -> tuple[SchedulerConf | None, list[CheckProblem]]:
    """The actions and enabled plugins of a Volcano scheduler ConfigMap."""
    where = object_ref(obj)
    path = join_path("data", SCHEDULER_CONF_KEY)
    text = dig(obj, "data", SCHEDULER_CONF_KEY)
    try:
        doc = YAML(typ="safe", pure=True).load(text) if isinstance(text, str) else None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        return None, [
            CheckProblem(
                where,
                path,
                f"is not YAML ({first}): fix the scheduler configuration",
                "intent.scheduler-conf",
            )
        ]
    if not isinstance(doc, dict):
        return None, [
            CheckProblem(
                where,
                path,
                "must be a YAML mapping with actions and tiers",
                "intent.scheduler-conf",
            )
        ]
    conf = SchedulerConf(where=where)
    actions = doc.get("actions")
    if not isinstance(actions, str) or not actions.strip():
        return None, [
            CheckProblem(
                where,
                join_path(path, "actions"),
                'actions is missing: set e.g. "enqueue, allocate, preempt, reclaim, backfill"',
                "intent.scheduler-conf",
            )
        ]
    conf.actions = [a.strip() for a in actions.split(",") if a.strip()]
    for tier in as_list(doc.get("tiers")):
        for plugin in as_list(dig(tier, "plugins")):
            if isinstance(dig(plugin, "name"), str):
                conf.plugins.add(plugin["name"])
    return conf, []


def check_intent(objects: list[dict[str, Any]]) -> list[CheckProblem]:
    problems: list[CheckProblem] = []
    problems += _duplicates(objects)
    queues = {dig(q, "metadata", "name"): q for q in objects if _is_queue(q)}
    priority_classes = {
        dig(o, "metadata", "name") for o in objects if o.get("kind") == "PriorityClass"
    } | SYSTEM_PRIORITY_CLASSES

    confs: list[SchedulerConf] = []
    for obj in objects:
        if obj.get("kind") == "ConfigMap" and isinstance(dig(obj, "data", SCHEDULER_CONF_KEY), str):
            conf, found = parse_scheduler_conf(obj)
            problems += found
            if conf is not None:
                confs.append(conf)

    problems += _scheduler_problems(confs, queues)
    problems += _protected_queue_problems(queues)
    problems += check_queue_hierarchy(queues)
    for obj in objects:
        if _is_volcano_job(obj):
            problems += _job_problems(obj, queues, priority_classes)
        elif _is_podgroup(obj):
            problems += _podgroup_problems(obj, queues, priority_classes)
        if not _is_volcano_job(obj):
            problems += _template_priority_class_problems(obj, priority_classes)
    return problems


def _duplicates(objects: list[dict[str, Any]]) -> list[CheckProblem]:
    seen: set[tuple[str, str]] = set()
    problems = []
    for obj in objects:
        group = (
            str(obj.get("apiVersion", "")).rsplit("/", 1)[0]
            if "/" in str(obj.get("apiVersion", ""))
            else ""
        )
        key = (group, object_ref(obj))
        if key in seen:
            problems.append(
                CheckProblem(
                    object_ref(obj),
                    "metadata.name",
                    "the set holds this object twice: apply would overwrite the first; render it once",
                    "intent.duplicate",
                )
            )
        seen.add(key)
    return problems


def _borrowing(queue: dict[str, Any]) -> list[str]:
    """Resources the queue may use beyond its deserved share (capability above deserved, or unbounded)."""
    spec = as_dict(queue.get("spec"))
    deserved = queue_amounts(spec, "deserved")
    if "capability" not in spec:
        return ["(no capability: unbounded)"] if deserved else []
    capability = queue_amounts(spec, "capability")
    return [
        f"{name} {format_quantity(deserved.get(name, Fraction(0)))} -> {format_quantity(cap)}"
        for name, cap in capability.items()
        if cap > deserved.get(name, Fraction(0))
    ]


def _scheduler_problems(
    confs: list[SchedulerConf], queues: dict[Any, dict[str, Any]]
) -> list[CheckProblem]:
    problems: list[CheckProblem] = []
    path = join_path("data", SCHEDULER_CONF_KEY)
    borrowers = {name: b for name, q in queues.items() if (b := _borrowing(q))}
    with_deserved = sorted(str(n) for n, q in queues.items() if as_dict(dig(q, "spec", "deserved")))
    for conf in confs:
        # Volcano docs and DESIGN fact 5: capacity and proportion cannot be enabled together.
        if {"capacity", "proportion"} <= conf.plugins:
            problems.append(
                CheckProblem(
                    conf.where,
                    join_path(path, "tiers"),
                    "plugins capacity and proportion are both enabled; Volcano supports one queue-share "
                    "plugin: keep capacity (xpool's queues use deserved) and remove proportion",
                    "intent.capacity-xor-proportion",
                )
            )
        elif with_deserved and "capacity" not in conf.plugins:
            # pkg/scheduler/plugins/proportion/proportion.go derives deserved from weight and never
            # reads spec.deserved; only the capacity plugin does.
            problems.append(
                CheckProblem(
                    conf.where,
                    join_path(path, "tiers"),
                    f"queues {', '.join(with_deserved)} set deserved shares but the capacity plugin is "
                    "not enabled, so Volcano ignores them: enable capacity",
                    "intent.capacity-plugin",
                )
            )
        if borrowers and "reclaim" not in conf.actions:
            names = ", ".join(f"{n} ({'; '.join(b)})" for n, b in sorted(borrowers.items()))
            problems.append(
                CheckProblem(
                    conf.where,
                    join_path(path, "actions"),
                    f"queues borrow beyond deserved ({names}) but actions {', '.join(conf.actions)!r} "
                    "lack reclaim, so lent capacity is never taken back: add reclaim",
                    "intent.borrow-needs-reclaim",
                )
            )
    if borrowers and not confs:
        for name, borrowed in sorted(borrowers.items()):
            problems.append(
                CheckProblem(
                    object_ref(queues[name]),
                    "spec.capability",
                    f"the queue borrows beyond deserved ({'; '.join(borrowed)}) but the set has no Volcano "
                    f"scheduler configuration (ConfigMap key {SCHEDULER_CONF_KEY}); Volcano's default runs "
                    "no reclaim: render one whose actions include reclaim",
                    "intent.borrow-needs-reclaim",
                )
            )
    return problems


def is_protected(queue: dict[str, Any]) -> bool:
    """A queue whose work must never be taken away: tier P0, or declared not reclaimable."""
    return (
        labels_of(queue).get(TIER_LABEL) == PROTECTED_TIER
        or dig(queue, "spec", "reclaimable") is False
    )


def _protected_queue_problems(queues: dict[Any, dict[str, Any]]) -> list[CheckProblem]:
    problems = []
    for queue in queues.values():
        # Queues are reclaimable unless told otherwise (queues/mutate/mutate_queue.go defaults true).
        if (
            labels_of(queue).get(TIER_LABEL) == PROTECTED_TIER
            and dig(queue, "spec", "reclaimable") is not False
        ):
            problems.append(
                CheckProblem(
                    object_ref(queue),
                    "spec.reclaimable",
                    f"tier {PROTECTED_TIER} must never be reclaimed but reclaimable is "
                    f"{dig(queue, 'spec', 'reclaimable')!r} (Volcano's default is true): set reclaimable: false",
                    "intent.p0-not-reclaimable",
                )
            )
    return problems


def check_queue_hierarchy(queues: dict[Any, dict[str, Any]]) -> list[CheckProblem]:
    """queues/validate/validate_queue.go hierarchy rules, against the rendered queues."""
    problems: list[CheckProblem] = []
    children: dict[str, list[dict[str, Any]]] = {}
    for name, queue in queues.items():
        parent = dig(queue, "spec", "parent")
        if isinstance(parent, str) and parent and parent not in ("root", name):
            if parent not in queues:
                # validateHierarchicalQueue: the parent queue must exist.
                problems.append(
                    CheckProblem(
                        object_ref(queue),
                        "spec.parent",
                        f"parent queue {parent!r} is not in the set: render it or use root",
                        "volcano.queue.parent",
                    )
                )
            else:
                children.setdefault(parent, []).append(queue)
    # validateHierarchicalAttributes: no queue's hierarchy path is a sub path of another's.
    paths = {
        name: dig(q, "metadata", "annotations", HIERARCHY_ANNOTATION)
        for name, q in queues.items()
        if isinstance(dig(q, "metadata", "annotations", HIERARCHY_ANNOTATION), str)
    }
    for name, path in sorted(paths.items()):
        for other, other_path in sorted(paths.items()):
            if other != name and path and other_path.startswith(path + "/"):
                problems.append(
                    CheckProblem(
                        object_ref(queues[name]),
                        join_path("metadata", "annotations", HIERARCHY_ANNOTATION),
                        f"{path!r} may not be a sub path of queue {other}'s {other_path!r}: "
                        "give leaf queues distinct paths",
                        "volcano.queue.hierarchy",
                    )
                )
                break
    # validateChildrenConstraints / validateSiblingsSum / validateChildAgainstAncestor.
    for parent_name, kids in sorted(children.items()):
        parent = queues[parent_name]
        parent_spec = as_dict(parent.get("spec"))
        for field, label in ((("guarantee", "resource"), "guarantee"), (("deserved",), "deserved")):
            limit = queue_amounts(parent_spec, *field)
            total: dict[str, Fraction] = {}
            for kid in kids:
                for res, amount in queue_amounts(as_dict(kid.get("spec")), *field).items():
                    total[res] = total.get(res, Fraction(0)) + amount
            over = [
                f"{res} {format_quantity(amount)} > {format_quantity(limit.get(res, Fraction(0)))}"
                for res, amount in sorted(total.items())
                if amount > limit.get(res, Fraction(0))
            ]
            if over:
                problems.append(
                    CheckProblem(
                        object_ref(parent),
                        join_path("spec", *field),
                        f"children's {label} add up to more than this queue's ({'; '.join(over)}): "
                        f"raise the parent's {label} or lower the children's",
                        "volcano.queue.hierarchy-sum",
                    )
                )
        parent_cap = queue_amounts(parent_spec, "capability")
        for kid in kids:
            for res, cap in queue_amounts(as_dict(kid.get("spec")), "capability").items():
                if res in parent_cap and cap > parent_cap[res]:
                    problems.append(
                        CheckProblem(
                            object_ref(kid),
                            join_path("spec", "capability", res),
                            f"capability[{res}]={format_quantity(cap)} exceeds parent {parent_name}'s "
                            f"capability {format_quantity(parent_cap[res])}: lower it",
                            "volcano.queue.hierarchy-capability",
                        )
                    )
    return problems


def _queue_reference(
    obj: dict[str, Any], queues: dict[Any, dict[str, Any]], kind: str
) -> tuple[dict[str, Any] | None, list[CheckProblem]]:
    where = object_ref(obj)
    name = dig(obj, "spec", "queue")
    if not isinstance(name, str) or not name:
        return None, []  # a missing queue is reported by the per-object rules
    queue = queues.get(name)
    if queue is None:
        return None, [
            CheckProblem(
                where,
                "spec.queue",
                f"queue {name!r} is not in the set: render the Queue or fix spec.queue",
                f"intent.{kind}-queue-exists",
            )
        ]
    problems: list[CheckProblem] = []
    # jobs/validate/admit_job.go validateJobCreate: only Open, leaf, non-root queues take jobs.
    state = dig(queue, "status", "state")
    if state not in (None, "", "Open"):
        problems.append(
            CheckProblem(
                where,
                "spec.queue",
                f"queue {name!r} is {state}, not Open",
                f"intent.{kind}-queue-open",
            )
        )
    kids = [q for q in queues.values() if dig(q, "spec", "parent") == name]
    if name == "root" or kids:
        problems.append(
            CheckProblem(
                where,
                "spec.queue",
                f"queue {name!r} has child queues: submit to a leaf queue",
                f"intent.{kind}-leaf-queue",
            )
        )
    return queue, problems


def _priority_class_problem(
    where: str, path: str, name: Any, priority_classes: set[Any]
) -> list[CheckProblem]:
    if isinstance(name, str) and name and name not in priority_classes:
        return [
            CheckProblem(
                where,
                path,
                f"priority class {name!r} is not in the set: render the PriorityClass or fix the name",
                "intent.priority-class-exists",
            )
        ]
    return []


def _job_problems(
    job: dict[str, Any], queues: dict[Any, dict[str, Any]], priority_classes: set[Any]
) -> list[CheckProblem]:
    where = object_ref(job)
    queue, problems = _queue_reference(job, queues, "job")
    problems += _priority_class_problem(
        where, "spec.priorityClassName", dig(job, "spec", "priorityClassName"), priority_classes
    )
    for at, template in pod_templates(job):
        problems += _priority_class_problem(
            where,
            join_path(*at, "spec", "priorityClassName"),
            dig(template, "spec", "priorityClassName"),
            priority_classes,
        )
    if queue is None:
        return problems
    queue_name = dig(queue, "metadata", "name")
    if is_protected(queue):
        # Pods are preemptable unless annotated (Volcano api/pod_info.go GetPodPreemptable).
        for path, value in preemptable_annotation(job):
            if value != "false":
                shown = "not set" if value is None else repr(value)
                problems.append(
                    CheckProblem(
                        where,
                        join_path(path, PREEMPTABLE_ANNOTATION),
                        f"queue {queue_name} is protected (tier {PROTECTED_TIER} / not reclaimable) but these pods "
                        f"are preemptable ({PREEMPTABLE_ANNOTATION} is {shown}): annotate them "
                        f'{PREEMPTABLE_ANNOTATION}: "false"',
                        "intent.p0-not-preemptable",
                    )
                )
    deserved = set(as_dict(dig(queue, "spec", "deserved")))
    for at, template in pod_templates(job):
        for rel, container in containers(template):
            for res, field in requested_resources(container).items():
                if res not in deserved:
                    problems.append(
                        CheckProblem(
                            where,
                            join_path(*at, *rel, "resources", field, res),
                            f"requests {res} but queue {queue_name} has no deserved {res}: "
                            f"add {res} to the queue's deserved share (the capacity plugin treats it as 0)",
                            "intent.request-in-deserved",
                        )
                    )
    return problems


def _podgroup_problems(
    group: dict[str, Any], queues: dict[Any, dict[str, Any]], priority_classes: set[Any]
) -> list[CheckProblem]:
    where = object_ref(group)
    queue, problems = _queue_reference(group, queues, "podgroup")
    problems += _priority_class_problem(
        where, "spec.priorityClassName", dig(group, "spec", "priorityClassName"), priority_classes
    )
    if queue is not None:
        deserved = set(as_dict(dig(queue, "spec", "deserved")))
        for res in as_dict(dig(group, "spec", "minResources")):
            if res not in deserved:
                problems.append(
                    CheckProblem(
                        where,
                        join_path("spec", "minResources", res),
                        f"needs {res} but queue {dig(queue, 'metadata', 'name')} has no deserved {res}: add it",
                        "intent.request-in-deserved",
                    )
                )
    return problems


def _template_priority_class_problems(
    obj: dict[str, Any], priority_classes: set[Any]
) -> list[CheckProblem]:
    where = object_ref(obj)
    problems: list[CheckProblem] = []
    for at, template in pod_templates(obj):
        problems += _priority_class_problem(
            where,
            join_path(*at, "spec", "priorityClassName"),
            dig(template, "spec", "priorityClassName"),
            priority_classes,
        )
    return problems
