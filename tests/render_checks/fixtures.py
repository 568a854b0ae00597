"""A small, valid rendered set written by hand, and a helper to mutate one field of it."""

from __future__ import annotations

import copy
from typing import Any

NS = "xpool"

SCHEDULER_CONF = """\
actions: "enqueue, allocate, preempt, reclaim, backfill"
tiers:
- plugins:
  - name: priority
  - name: gang
    enablePreemptable: false
  - name: conformance
- plugins:
  - name: drf
    enablePreemptable: false
  - name: predicates
  - name: capacity
  - name: nodeorder
  - name: binpack
"""

_LABELS = {"app.kubernetes.io/managed-by": "xpool", "app.kubernetes.io/part-of": "qa"}


def _labels(**extra: str) -> dict[str, str]:
    out = dict(_LABELS)
    out.update({f"xpool.io/{k}": v for k, v in extra.items()})
    return out


_OBJECTS: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NS, "labels": _labels()},
    },
    {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "xpool-p0", "labels": _labels(tier="P0")},
        "value": 1000000,
        "preemptionPolicy": "Never",
        "description": "P0: core customer QA",
    },
    {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "Queue",
        "metadata": {"name": "qa-p0-a100", "labels": _labels(tier="P0", pool="a100")},
        "spec": {
            "reclaimable": False,
            "deserved": {"nvidia.com/gpu": 8, "cpu": "64", "memory": "512Gi"},
            "guarantee": {"resource": {"nvidia.com/gpu": 4, "cpu": "32", "memory": "256Gi"}},
            "capability": {"nvidia.com/gpu": 8, "cpu": "64", "memory": "512Gi"},
        },
    },
    {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "Queue",
        "metadata": {"name": "qa-p2-a100", "labels": _labels(tier="P2", pool="a100")},
        "spec": {
            "reclaimable": True,
            "deserved": {"nvidia.com/gpu": 6, "cpu": "48", "memory": "384Gi"},
            "capability": {"nvidia.com/gpu": 20, "cpu": "160", "memory": "1280Gi"},
        },
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "volcano-scheduler-configmap", "namespace": NS, "labels": _labels()},
        "data": {"volcano-scheduler.conf": SCHEDULER_CONF},
    },
    {
        "apiVersion": "batch.volcano.sh/v1alpha1",
        "kind": "Job",
        "metadata": {
            "name": "qa-workers-p0-a100",
            "namespace": NS,
            "labels": _labels(tier="P0", pool="a100"),
        },
        "spec": {
            "schedulerName": "volcano",
            "queue": "qa-p0-a100",
            "priorityClassName": "xpool-p0",
            "minAvailable": 1,
            "policies": [{"event": "PodEvicted", "action": "RestartPod"}],
            "tasks": [
                {
                    "name": "worker",
                    "replicas": 2,
                    "minAvailable": 1,
                    "template": {
                        "metadata": {
                            "labels": _labels(tier="P0", pool="a100"),
                            "annotations": {"volcano.sh/preemptable": "false"},
                        },
                        "spec": {
                            "nodeSelector": {"gpu-type": "nvidia"},
                            "containers": [
                                {
                                    "name": "xinference-worker",
                                    "image": "xprobe/xinference:v1.4.1",
                                    "resources": {
                                        "requests": {
                                            "cpu": "30",
                                            "memory": "240Gi",
                                            "nvidia.com/gpu": 4,
                                        },
                                        "limits": {"memory": "240Gi", "nvidia.com/gpu": 4},
                                    },
                                }
                            ],
                        },
                    },
                }
            ],
        },
    },
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "xinference-supervisor", "namespace": NS, "labels": _labels()},
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "xinference-supervisor"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gw"}}}],
                    "ports": [{"protocol": "TCP", "port": 9997}],
                }
            ],
        },
    },
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "xinference-supervisor", "namespace": NS, "labels": _labels()},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "xinference-supervisor"}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "xinference-supervisor"}},
                "spec": {
                    "containers": [
                        {
                            "name": "supervisor",
                            "image": "xprobe/xinference:v1.4.1",
                            "args": ["xinference-supervisor", "-H", "0.0.0.0"],
                            "ports": [{"containerPort": 9997, "name": "http"}],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "1Gi"},
                                "limits": {"memory": "2Gi"},
                            },
                        }
                    ]
                },
            },
        },
    },
]


def valid_set() -> list[dict[str, Any]]:
    """A fresh deep copy of the valid set (tests may mutate it)."""
    return copy.deepcopy(_OBJECTS)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise KeyError(f"{kind}/{name}")
