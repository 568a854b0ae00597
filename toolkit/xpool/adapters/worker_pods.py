"""The running Xinference worker pods of a platform, read from the API server.

A worker pod carries what an Xinference worker does not know of itself: the tier and pool of
its worker Job (labels `xpool.io/tier`, `xpool.io/pool`), its node, and how many
accelerators it was given (the container's limit of the pool's accelerator resource). The
reconciler joins them to the supervisor's workers by pod IP (`xinference-worker -H
$POD_IP`). Its worker group and index come from what Volcano's job controller puts on every
pod it creates (pkg/controllers/job/job_controller_util.go, createJobPod; keys in
staging/src/volcano.sh/apis/pkg/apis/batch/v1alpha1/labels.go): `volcano.sh/job-name`,
`volcano.sh/task-spec` and `volcano.sh/task-index`, as labels and as annotations. The pod name
(`<job>-<task>-<index>`) is not parsed: job and task names may hold dashes. A pod without them
has no group (job ""), so the policy does not count it towards any. A pod being deleted (deletionTimestamp set: evicted, preempted, drained) is kept
out, so nothing is placed on a worker that is about to stop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xpool.adapters.kube_client import KubeClient, KubeStatusError
from xpool.errors import RemoteError
from xpool.render.object_names import WORKER

SELECTOR = f"app.kubernetes.io/component={WORKER}"
JOB_NAME, TASK_SPEC, TASK_INDEX = (
    "volcano.sh/job-name",
    "volcano.sh/task-spec",
    "volcano.sh/task-index",
)


@dataclass(frozen=True)
class WorkerPod:
    name: str
    ip: str
    tier: str
    pool: str
    node: str
    accelerators: int
    job: str = ""  # its Volcano Job, task and index there; "" when Volcano did not say
    task: str = ""
    index: int = 0


def volcano_task(meta: Mapping[str, Any]) -> tuple[str, str, int]:
    """(Job, task, index) Volcano recorded on a pod (labels first, then annotations);
    ("", "", 0) when any is missing or the index is not a number."""
    found = []
    for key in (JOB_NAME, TASK_SPEC, TASK_INDEX):
        value = (meta.get("labels") or {}).get(key) or (meta.get("annotations") or {}).get(key)
        found.append(str(value or ""))
    job, task, index = found
    if not (job and task and index.isdigit()):
        return "", "", 0
    return job, task, int(index)


def worker_pod(obj: Mapping[str, Any], resources: Mapping[str, str]) -> WorkerPod | None:
    """The pod as a worker, or None when it cannot serve as one (not running, no IP yet,
    terminating, or of a pool `resources` (pool -> accelerator resource name) does not know)."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    labels = meta.get("labels") or {}
    pool, tier = labels.get("xpool.io/pool"), labels.get("xpool.io/tier")
    ip = status.get("podIP")
    if meta.get("deletionTimestamp") or status.get("phase") != "Running" or not ip:
        return None
    if pool not in resources or not tier:
        return None
    containers = (obj.get("spec") or {}).get("containers") or []
    count = sum(
        int((c.get("resources") or {}).get("limits", {}).get(resources[pool], 0))
        for c in containers
    )
    node = str((obj.get("spec") or {}).get("nodeName") or "")
    job, task, index = volcano_task(meta)
    return WorkerPod(
        str(meta.get("name")), str(ip), str(tier), str(pool), node, count, job, task, index
    )


def list_worker_pods(
    kube: KubeClient, namespace: str, resources: Mapping[str, str]
) -> list[WorkerPod]:
    """Every worker pod of `namespace` that can serve (see `worker_pod`), by name."""
    try:
        listing = kube.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods",
            query={"labelSelector": SELECTOR},
            what=f"worker pods in {namespace}",
        )
    except KubeStatusError as exc:
        hint = f"; grant list on pods in {namespace}" if exc.status in (401, 403) else ""
        raise RemoteError(
            f"worker pods in {namespace}: cannot list them: {exc.summary()}{hint}"
        ) from None
    pods = (worker_pod(item, resources) for item in listing.get("items") or [])
    return sorted((p for p in pods if p is not None), key=lambda p: p.name)
