"""check_objects: a valid hand-written set passes; each single mutation yields exactly one problem."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.render_checks.fixtures import NS, find, valid_set
from xpool.errors import Problem
from xpool.render.checks import (
    DEFAULT_K8S_VERSION,
    CheckProblem,
    UnsupportedKubernetesVersion,
    check_objects,
    supported_kubernetes_versions,
)

Objects = list[dict[str, Any]]

P0 = "Queue/qa-p0-a100"
P2 = "Queue/qa-p2-a100"
JOB = f"Job/{NS}/qa-workers-p0-a100"
DEPLOY = f"Deployment/{NS}/xinference-supervisor"
CONF = f"ConfigMap/{NS}/volcano-scheduler-configmap"
CONF_PATH = "data.volcano-scheduler.conf"
CONTAINER = "spec.tasks[0].template.spec.containers[0]"


def queue(objs: Objects, tier: str) -> dict[str, Any]:
    return find(objs, "Queue", f"qa-{tier}-a100")


def job(objs: Objects) -> dict[str, Any]:
    return find(objs, "Job", "qa-workers-p0-a100")


def task(objs: Objects) -> dict[str, Any]:
    return job(objs)["spec"]["tasks"][0]


def container(objs: Objects) -> dict[str, Any]:
    return task(objs)["template"]["spec"]["containers"][0]


def conf_replace(old: str, new: str) -> Callable[[Objects], None]:
    def mutate(objs: Objects) -> None:
        data = find(objs, "ConfigMap", "volcano-scheduler-configmap")["data"]
        assert old in data["volcano-scheduler.conf"]
        data["volcano-scheduler.conf"] = data["volcano-scheduler.conf"].replace(old, new)

    return mutate


def _duplicate_task(objs: Objects) -> None:
    tasks = job(objs)["spec"]["tasks"]
    tasks.append({**tasks[0]})


def _no_gpu_share(objs: Objects) -> None:
    spec = queue(objs, "p0")["spec"]
    for amounts in (spec["deserved"], spec["guarantee"]["resource"], spec["capability"]):
        del amounts["nvidia.com/gpu"]


def _rename(kind: str, name: str, new: str) -> Callable[[Objects], None]:
    def mutate(objs: Objects) -> None:
        find(objs, kind, name)["metadata"]["name"] = new

    return mutate


# (id, mutation, expected object, expected path, message fragment)
MUTATIONS: list[tuple[str, Callable[[Objects], None], str, str, str]] = [
    (
        "unknown field in Deployment spec",
        lambda o: find(o, "Deployment", "xinference-supervisor")["spec"].update(replicass=2),
        DEPLOY,
        "spec.replicass",
        "unknown field 'replicass'",
    ),
    (
        "unknown field deep in a Queue",
        lambda o: queue(o, "p2")["spec"].update(
            affinity={"nodeGroupAffinity": {"requiredDuringScheduling": ["a100"]}}
        ),
        P2,
        "spec.affinity.nodeGroupAffinity.requiredDuringScheduling",
        "unknown field",
    ),
    (
        "unknown field deep in a Job container",
        lambda o: container(o).update(resource={}),
        JOB,
        f"{CONTAINER}.resource",
        "unknown field 'resource'",
    ),
    (
        "deserved below guarantee",
        lambda o: queue(o, "p0")["spec"]["deserved"].update({"nvidia.com/gpu": 2}),
        P0,
        "spec.deserved.nvidia.com/gpu",
        "must be >= guarantee[nvidia.com/gpu]=4",
    ),
    (
        "guarantee of a resource without deserved",
        lambda o: queue(o, "p0")["spec"]["guarantee"]["resource"].update(
            {"ephemeral-storage": "1Ti"}
        ),
        P0,
        "spec.deserved.ephemeral-storage",
        "deserved has no ephemeral-storage",
    ),
    (
        "capability below deserved",
        lambda o: queue(o, "p2")["spec"]["capability"].update({"nvidia.com/gpu": 4}),
        P2,
        "spec.capability.nvidia.com/gpu",
        "capability must be >= deserved",
    ),
    (
        "weight 0",
        lambda o: queue(o, "p2")["spec"].update(weight=0),
        P2,
        "spec.weight",
        "from 1 to 65535",
    ),
    (
        "weight above 65535",
        lambda o: queue(o, "p2")["spec"].update(weight=70000),
        P2,
        "spec.weight",
        "from 1 to 65535",
    ),
    (
        "bad quantity 8x in deserved",
        lambda o: queue(o, "p0")["spec"]["deserved"].update(cpu="8x"),
        P0,
        "spec.deserved.cpu",
        "'8x' is not a quantity",
    ),
    (
        "fractional GPU in a queue",
        lambda o: queue(o, "p2")["spec"]["deserved"].update({"nvidia.com/gpu": "1.5"}),
        P2,
        "spec.deserved.nvidia.com/gpu",
        "not a whole number",
    ),
    (
        "float quantity in a Volcano int-or-string",
        lambda o: queue(o, "p2")["spec"]["deserved"].update(cpu=4.5),
        P2,
        "spec.deserved.cpu",
        'int-or-string, e.g. 8 or "500m"), got 4.5; quote it',
    ),
    (
        "bad quantity in a Deployment",
        lambda o: find(o, "Deployment", "xinference-supervisor")["spec"]["template"]["spec"][
            "containers"
        ][0]["resources"]["requests"].update(cpu="1.5.0"),
        DEPLOY,
        "spec.template.spec.containers[0].resources.requests.cpu",
        "'1.5.0' is not a quantity",
    ),
    (
        "job minAvailable above replicas",
        lambda o: job(o)["spec"].update(minAvailable=3),
        JOB,
        "spec.minAvailable",
        "greater than the 2 replicas",
    ),
    (
        "task minAvailable above replicas",
        lambda o: task(o).update(minAvailable=5),
        JOB,
        "spec.tasks[0].minAvailable",
        "greater than replicas 2",
    ),
    (
        "duplicate task names",
        _duplicate_task,
        JOB,
        "spec.tasks[1].name",
        "duplicated task name 'worker'",
    ),
    (
        "task name with uppercase",
        lambda o: task(o).update(name="Worker"),
        JOB,
        "spec.tasks[0].name",
        "not a DNS-1123 label",
    ),
    (
        "duplicate policy event",
        lambda o: job(o)["spec"]["policies"].append(
            {"event": "PodEvicted", "action": "RestartTask"}
        ),
        JOB,
        "spec.policies[1].event",
        "duplicate event 'PodEvicted'",
    ),
    (
        "internal policy event",
        lambda o: job(o)["spec"]["policies"][0].update(event="PodRunning"),
        JOB,
        "spec.policies[0].event",
        "invalid policy event 'PodRunning'",
    ),
    (
        "invalid policy action",
        lambda o: job(o)["spec"]["policies"][0].update(action="SyncJob"),
        JOB,
        "spec.policies[0].action",
        "invalid policy action 'SyncJob'",
    ),
    (
        "job queue missing",
        lambda o: job(o)["spec"].pop("queue"),
        JOB,
        "spec.queue",
        "spec.queue is not set",
    ),
    (
        "job queue not in the set",
        lambda o: job(o)["spec"].update(queue="qa-p1-a100"),
        JOB,
        "spec.queue",
        "queue 'qa-p1-a100' is not in the set",
    ),
    (
        "P0 queue reclaimable",
        lambda o: queue(o, "p0")["spec"].update(reclaimable=True),
        P0,
        "spec.reclaimable",
        "set reclaimable: false",
    ),
    (
        "P0 queue reclaimable by default",
        lambda o: queue(o, "p0")["spec"].pop("reclaimable"),
        P0,
        "spec.reclaimable",
        "Volcano's default is true",
    ),
    (
        "reclaimable as a string",
        lambda o: queue(o, "p0")["spec"].update(reclaimable="false"),
        P0,
        "spec.reclaimable",
        "must be a boolean",
    ),
    (
        "P0 job without preemptable annotation",
        lambda o: task(o)["template"]["metadata"].pop("annotations"),
        JOB,
        "spec.tasks[0].template.metadata.annotations.volcano.sh/preemptable",
        'annotate them volcano.sh/preemptable: "false"',
    ),
    (
        "proportion and capacity both",
        conf_replace("  - name: capacity\n", "  - name: capacity\n  - name: proportion\n"),
        CONF,
        f"{CONF_PATH}.tiers",
        "capacity and proportion are both enabled",
    ),
    (
        "proportion instead of capacity",
        conf_replace("name: capacity", "name: proportion"),
        CONF,
        f"{CONF_PATH}.tiers",
        "capacity plugin is not enabled",
    ),
    (
        "borrowing without reclaim",
        conf_replace(
            "enqueue, allocate, preempt, reclaim, backfill", "enqueue, allocate, backfill"
        ),
        CONF,
        f"{CONF_PATH}.actions",
        "qa-p2-a100 (nvidia.com/gpu 6 -> 20",
    ),
    (
        "GPU requested but absent from deserved",
        _no_gpu_share,
        JOB,
        f"{CONTAINER}.resources.requests.nvidia.com/gpu",
        "queue qa-p0-a100 has no deserved nvidia.com/gpu",
    ),
    (
        "GPU request differs from limit",
        lambda o: container(o)["resources"]["limits"].update({"nvidia.com/gpu": 2}),
        JOB,
        f"{CONTAINER}.resources.requests.nvidia.com/gpu",
        "cannot be overcommitted",
    ),
    (
        "queue name with uppercase",
        _rename("Queue", "qa-p2-a100", "QA-P2-a100"),
        "Queue/QA-P2-a100",
        "metadata.name",
        "not a DNS-1123 subdomain",
    ),
    (
        "namespace name with a dot",
        _rename("Namespace", "xpool", "xpool.io"),
        "Namespace/xpool.io",
        "metadata.name",
        "not a DNS-1123 label",
    ),
    (
        "pod names longer than 63",
        _rename("Job", "qa-workers-p0-a100", "w" * 58),
        f"Job/{NS}/{'w' * 58}",
        "spec.tasks[0].name",
        "-worker-1' exceed 63 characters",
    ),
    (
        "priorityClassName missing",
        lambda o: job(o)["spec"].update(priorityClassName="xpool-p1"),
        JOB,
        "spec.priorityClassName",
        "priority class 'xpool-p1' is not in the set",
    ),
    (
        "cluster-scoped kind with a namespace",
        lambda o: find(o, "PriorityClass", "xpool-p0")["metadata"].update(namespace=NS),
        f"PriorityClass/{NS}/xpool-p0",
        "metadata.namespace",
        "cluster-scoped",
    ),
    (
        "label value too long",
        lambda o: find(o, "Namespace", "xpool")["metadata"]["labels"].update(
            {"xpool.io/pool": "p" * 64}
        ),
        "Namespace/xpool",
        "metadata.labels.xpool.io/pool",
        "longer than 63 characters",
    ),
    (
        "hierarchy annotations of unequal length",
        lambda o: queue(o, "p2")["metadata"].update(
            annotations={
                "volcano.sh/hierarchy": "root/qa/p2",
                "volcano.sh/hierarchy-weights": "1/2",
            }
        ),
        P2,
        "metadata.annotations.volcano.sh/hierarchy-weights",
        "give one weight per part",
    ),
    (
        "wrong apiVersion for a core kind",
        lambda o: find(o, "Deployment", "xinference-supervisor").update(apiVersion="apps/v1beta1"),
        DEPLOY,
        "apiVersion",
        "use apiVersion apps/v1",
    ),
    (
        "wrong type in a core kind",
        lambda o: find(o, "PriorityClass", "xpool-p0").update(value="high"),
        "PriorityClass/xpool-p0",
        "value",
        "must be of type integer, got 'high'",
    ),
]


def test_valid_set_passes() -> None:
    assert check_objects(valid_set()) == []


@pytest.mark.parametrize("version", ["1.30", "v1.33.4", DEFAULT_K8S_VERSION])
def test_valid_set_passes_on_other_versions(version: str) -> None:
    assert check_objects(valid_set(), kubernetes_version=version) == []


@pytest.mark.parametrize(
    ("mutate", "where", "path", "fragment"),
    [m[1:] for m in MUTATIONS],
    ids=[m[0] for m in MUTATIONS],
)
def test_mutation_gives_exactly_one_problem(
    mutate: Callable[[Objects], None], where: str, path: str, fragment: str
) -> None:
    objs = valid_set()
    mutate(objs)
    problems = check_objects(objs)
    assert [(p.where, p.path) for p in problems] == [(where, path)], problems
    assert fragment in problems[0].message, problems[0].message
    assert "\n" not in problems[0].message


def test_at_least_fifteen_mutations() -> None:
    assert len(MUTATIONS) >= 15


def test_problem_is_a_problem_and_prints_on_one_line() -> None:
    objs = valid_set()
    queue(objs, "p2")["spec"]["weight"] = 0
    (problem,) = check_objects(objs)
    assert isinstance(problem, CheckProblem) and isinstance(problem, Problem)
    assert problem.object == P2
    assert problem.rule == "volcano.queue.weight"
    assert str(problem).startswith(f"{P2}: spec.weight: weight must be")


def test_unknown_kind_gets_a_structural_check_only() -> None:
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "xpool-alerts", "namespace": NS},
        "spec": {"anything": ["goes", {"here": 1}]},
    }
    assert check_objects([*valid_set(), rule]) == []
    bad = {**rule, "metadata": {"name": "Xpool_Alerts", "namespace": NS}}
    problems = check_objects([*valid_set(), bad])
    assert [(p.where, p.path) for p in problems] == [
        (f"PrometheusRule/{NS}/Xpool_Alerts", "metadata.name")
    ]
    nameless = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {}}
    problems = check_objects([*valid_set(), nameless])
    assert [(p.path, p.rule) for p in problems] == [("metadata.name", "structure.required")]


def test_job_name_longer_than_63() -> None:
    objs = valid_set()
    job(objs)["metadata"]["name"] = "w" * 64
    problems = check_objects(objs)
    assert [(p.path, p.rule) for p in problems] == [
        ("metadata.name", "volcano.job.name"),
        ("spec.tasks[0].name", "volcano.job.pod-name"),
    ]


def test_configmap_keys_and_size() -> None:
    objs = valid_set()
    data = find(objs, "ConfigMap", "volcano-scheduler-configmap")["data"]
    data["bad key"] = "x"
    data["big.json"] = "x" * (1024 * 1024)
    problems = check_objects(objs)
    assert [(p.path, p.rule) for p in problems] == [
        ("data.bad key", "structure.configmap-key"),
        ("data", "structure.configmap-size"),
    ]


def test_duplicate_object() -> None:
    objs = valid_set()
    objs.append(find(objs, "Deployment", "xinference-supervisor"))
    problems = check_objects(objs)
    assert [(p.where, p.rule) for p in problems] == [(DEPLOY, "intent.duplicate")]


def test_every_problem_of_one_object_is_reported() -> None:
    objs = valid_set()
    queue(objs, "p2")["spec"].update(weight=0, bogus=True)
    queue(objs, "p0")["spec"]["deserved"]["cpu"] = "8x"
    paths = {(p.where, p.path) for p in check_objects(objs)}
    assert paths == {(P2, "spec.weight"), (P2, "spec.bogus"), (P0, "spec.deserved.cpu")}


def test_job_in_a_parent_queue_and_hierarchy_sums() -> None:
    objs = valid_set()
    parent = {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "Queue",
        "metadata": {"name": "qa-a100"},
        "spec": {
            "reclaimable": False,
            "deserved": {"nvidia.com/gpu": 12, "cpu": "112", "memory": "896Gi"},
            "guarantee": {"resource": {"nvidia.com/gpu": 4, "cpu": "32", "memory": "256Gi"}},
            "capability": {"nvidia.com/gpu": 32, "cpu": "256", "memory": "2048Gi"},
        },
    }
    objs.append(parent)
    for tier in ("p0", "p2"):
        queue(objs, tier)["spec"]["parent"] = "qa-a100"
    problems = check_objects(objs)
    # children's deserved gpu 8 + 6 = 14 > 12
    assert [(p.where, p.path, p.rule) for p in problems] == [
        ("Queue/qa-a100", "spec.deserved", "volcano.queue.hierarchy-sum")
    ]
    assert "nvidia.com/gpu 14 > 12" in problems[0].message
    job(objs)["spec"]["queue"] = "qa-a100"
    rules = {p.rule for p in check_objects(objs)}
    assert "intent.job-leaf-queue" in rules


def test_borrowing_without_any_scheduler_configuration() -> None:
    objs = [o for o in valid_set() if o["kind"] != "ConfigMap"]
    problems = check_objects(objs)
    assert [(p.where, p.path) for p in problems] == [(P2, "spec.capability")]
    assert "no reclaim" in problems[0].message


def test_unsupported_kubernetes_version_is_a_usage_error() -> None:
    with pytest.raises(UnsupportedKubernetesVersion, match="choose one of"):
        check_objects(valid_set(), kubernetes_version="1.99")
    with pytest.raises(UnsupportedKubernetesVersion, match="not of the form"):
        check_objects(valid_set(), kubernetes_version="latest")
    assert DEFAULT_K8S_VERSION in supported_kubernetes_versions()


def test_input_is_not_modified() -> None:
    objs = valid_set()
    queue(objs, "p2")["spec"]["weight"] = 0
    before = repr(objs)
    check_objects(objs)
    assert repr(objs) == before
