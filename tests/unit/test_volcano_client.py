"""The typed Volcano client generated from the Volcano CRDs (xpool.volcano)."""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from xpool.volcano import Job, PodGroup, Queue, to_manifest
from xpool.volcano.queue import QueueSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "gen_volcano.py"
CRDS = REPO_ROOT / "vendor" / "volcano-crds"

QUEUE: dict[str, Any] = {
    "apiVersion": "scheduling.volcano.sh/v1beta1",
    "kind": "Queue",
    "metadata": {"name": "p0"},
    "spec": {
        "reclaimable": False,
        "deserved": {"nvidia.com/gpu": 8, "cpu": "64", "memory": "512Gi"},
        "guarantee": {"resource": {"nvidia.com/gpu": 4}},
        "capability": {"nvidia.com/gpu": 8},
    },
}

JOB: dict[str, Any] = {
    "apiVersion": "batch.volcano.sh/v1alpha1",
    "kind": "Job",
    "metadata": {"name": "workers", "namespace": "xpool"},
    "spec": {
        "schedulerName": "volcano",
        "queue": "q",
        "minAvailable": 1,
        "tasks": [
            {
                "name": "worker",
                "replicas": 2,
                "template": {"spec": {"containers": [{"name": "w", "image": "x"}]}},
            }
        ],
    },
}

PODGROUP: dict[str, Any] = {
    "apiVersion": "scheduling.volcano.sh/v1beta1",
    "kind": "PodGroup",
    "metadata": {"name": "pg", "namespace": "xpool"},
    "spec": {"minMember": 2, "queue": "q", "minResources": {"cpu": "4", "nvidia.com/gpu": 2}},
}


def _with(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A deep copy of doc with value set at path."""
    out = copy.deepcopy(doc)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


# --------------------------------------------------------------------------- Queue


def test_queue_validates_and_round_trips_without_defaults() -> None:
    queue = Queue.model_validate(QUEUE)
    assert queue.spec is not None
    assert queue.spec.deserved == {"nvidia.com/gpu": 8, "cpu": "64", "memory": "512Gi"}
    assert queue.spec.reclaimable is False
    # schema defaults exist on the model but are never claimed in the manifest
    assert queue.spec.weight == 1
    assert queue.spec.dequeue_strategy == "traverse"
    manifest = to_manifest(queue)
    assert manifest == QUEUE
    assert "weight" not in manifest["spec"]
    assert "dequeueStrategy" not in manifest["spec"]


def test_queue_refuses_unknown_spec_field() -> None:
    with pytest.raises(ValidationError) as info:
        Queue.model_validate(_with(QUEUE, ("spec", "bogus"), 1))
    assert info.value.errors()[0]["type"] == "extra_forbidden"
    assert info.value.errors()[0]["loc"] == ("spec", "bogus")


@pytest.mark.parametrize("path", [("bogus",), ("spec", "guarantee", "bogus")])
def test_queue_refuses_unknown_fields_at_every_level(path: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Queue.model_validate(_with(QUEUE, path, 1))


@pytest.mark.parametrize("quantity", [4, "4", "500m", "512Gi"])
def test_int_or_string_accepts_int_and_str(quantity: int | str) -> None:
    queue = Queue.model_validate(_with(QUEUE, ("spec", "deserved", "cpu"), quantity))
    assert queue.spec is not None and queue.spec.deserved is not None
    assert queue.spec.deserved["cpu"] == quantity
    assert type(queue.spec.deserved["cpu"]) is type(quantity)


@pytest.mark.parametrize("quantity", [0.5, None, ["1"], {"v": 1}])
def test_int_or_string_refuses_other_types(quantity: Any) -> None:
    with pytest.raises(ValidationError):
        Queue.model_validate(_with(QUEUE, ("spec", "deserved", "cpu"), quantity))


@pytest.mark.parametrize(
    ("field", "value"),
    [("weight", 0), ("weight", 65536), ("parent", "Not_A_DNS_Name"), ("type", "x" * 254)],
)
def test_queue_schema_constraints_are_enforced(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Queue.model_validate(_with(QUEUE, ("spec", field), value))


def test_queue_refuses_value_outside_enum() -> None:
    with pytest.raises(ValidationError):
        Queue.model_validate(_with(QUEUE, ("spec", "dequeueStrategy"), "lifo"))


def test_python_names_and_aliases_both_populate() -> None:
    by_alias = QueueSpec.model_validate({"dequeueStrategy": "fifo"})
    by_name = QueueSpec(dequeue_strategy="fifo")
    assert by_alias == by_name
    assert to_manifest(by_name) == {"dequeueStrategy": "fifo"}


def test_to_manifest_emits_only_fields_set_in_python() -> None:
    queue = Queue(
        api_version="scheduling.volcano.sh/v1beta1",
        kind="Queue",
        metadata={"name": "p1"},
        spec=QueueSpec(reclaimable=True, capability={"cpu": "8", "nvidia.com/gpu": 2}),
    )
    assert to_manifest(queue) == {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "Queue",
        "metadata": {"name": "p1"},
        "spec": {"reclaimable": True, "capability": {"cpu": "8", "nvidia.com/gpu": 2}},
    }


# --------------------------------------------------------------------------- metadata


@pytest.mark.parametrize(
    ("model", "doc"),
    [(Queue, QUEUE), (PodGroup, PODGROUP), (Job, JOB)],
    ids=["Queue", "PodGroup", "Job"],
)
def test_metadata_is_free_form_for_every_kind(model: Any, doc: dict[str, Any]) -> None:
    metadata = {
        "name": "x",
        "namespace": "xpool",
        "labels": {"xpool.io/tier": "p0"},
        "annotations": {"xpool.io/reason": "test"},
        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "1"}],
    }
    obj = model.model_validate(_with(doc, ("metadata",), metadata))
    assert to_manifest(obj)["metadata"] == metadata


# --------------------------------------------------------------------------- Job


def test_minimal_job_validates_and_round_trips() -> None:
    job = Job.model_validate(JOB)
    assert job.spec is not None and job.spec.tasks is not None
    task = job.spec.tasks[0]
    assert task.replicas == 2
    assert task.template is not None and task.template.spec is not None
    assert task.template.spec.containers[0].image == "x"
    assert to_manifest(job) == JOB


def test_job_container_resources_accept_int_and_str_quantities() -> None:
    resources = {"limits": {"nvidia.com/gpu": 1, "memory": "8Gi"}, "requests": {"cpu": "500m"}}
    path = ("spec", "tasks", 0, "template", "spec", "containers", 0, "resources")
    job = Job.model_validate(_with(JOB, path, resources))
    assert to_manifest(job) == _with(JOB, path, resources)


@pytest.mark.parametrize(
    "path",
    [
        ("spec", "bogus"),
        ("spec", "tasks", 0, "bogus"),
        ("spec", "tasks", 0, "template", "bogus"),
        ("spec", "tasks", 0, "template", "spec", "bogus"),
        ("spec", "tasks", 0, "template", "spec", "containers", 0, "bogus"),
    ],
)
def test_job_refuses_unknown_fields_at_nested_levels(path: tuple[str | int, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        Job.model_validate(_with(JOB, path, 1))
    assert [e["loc"] for e in info.value.errors()] == [path]


def test_job_pod_spec_requires_containers() -> None:
    with pytest.raises(ValidationError):
        Job.model_validate(_with(JOB, ("spec", "tasks", 0, "template", "spec"), {}))


# --------------------------------------------------------------------------- PodGroup


def test_minimal_podgroup_validates_and_round_trips() -> None:
    podgroup = PodGroup.model_validate(PODGROUP)
    assert podgroup.spec is not None
    assert podgroup.spec.min_member == 2
    assert to_manifest(podgroup) == PODGROUP


def test_podgroup_refuses_unknown_spec_field() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PodGroup.model_validate(_with(PODGROUP, ("spec", "minMembers"), 2))


# --------------------------------------------------------------------------- generator


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("gen_volcano", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_volcano"] = module
    spec.loader.exec_module(module)
    return module


def test_preprocessing_of_kubernetes_extensions() -> None:
    gen = _load_script()
    stats = gen.Stats()
    node = {
        "type": "object",
        "properties": {
            "port": {
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "x-kubernetes-int-or-string": True,
                "description": "a port",
            },
            "config": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"a": {"type": "string"}},
            },
            "anything": {"x-kubernetes-preserve-unknown-fields": True},
            "empty": {"type": "object"},
            "list": {
                "type": "array",
                "items": {"type": "string"},
                "x-kubernetes-list-type": "set",
            },
        },
    }
    out = gen.preprocess_node(node, stats)
    props = out["properties"]
    assert props["port"] == {"$ref": "#/$defs/IntOrString", "description": "a port"}
    assert props["config"] == {"type": "object", "additionalProperties": True}
    assert props["anything"] == {}
    assert props["empty"] == {"type": "object", "additionalProperties": True}
    assert props["list"] == {"type": "array", "items": {"type": "string"}}
    assert (stats.int_or_string, stats.preserve_unknown, stats.free_form_objects) == (1, 2, 1)


def test_generated_modules_are_up_to_date() -> None:
    # The generator reads the CRDs vendored in the repository, with their licence.
    assert _load_script().DEFAULT_CRDS == CRDS
    assert (CRDS / "LICENSE").is_file()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
