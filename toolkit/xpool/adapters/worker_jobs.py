"""The tiers' worker Jobs (Volcano `batch.volcano.sh/v1alpha1` Job) as the reconciler scales them.

`xpool apply` creates each worker Job with its tasks' rendered replicas (field manager `xpool`);
from then on the reconciler owns `spec.tasks[*].replicas` (capacity/worker_groups.py):

- It reads them from the namespace's Jobs labelled `app.kubernetes.io/component=
  xinference-worker` (`read_replicas`).
- It sets one task's replicas with a JSON patch (`scale_task`): `spec.tasks` is an atomic list
  in Volcano's CRD (no x-kubernetes-list-type), so a server-side apply would have to send every
  task whole. The patch first tests the task's name and its replicas as read, so a concurrent
  change (or a reordered list) fails it with 422 and nothing is written; the next pass reads
  again. As a non-apply PATCH it is an Update by field manager `xpool-reconciler`, which takes
  the (atomic) task list over in managedFields.
- Volcano's admission (pkg/webhooks/admission/jobs/validate/admit_job.go, validateJobUpdate)
  refuses a Job whose `spec.minAvailable` exceeds its total replicas, or a task whose
  `minAvailable` exceeds its replicas. The rendered tasks have minAvailable 0, a tier's main Job
  1 (its gang needs one worker), a burst Job 0. The reconciler never lowers minAvailable (that
  would take the field from `xpool` and make the next apply conflict): scaling below it is
  refused before anything is written.
- `xpool apply` and `xpool diff` send a live worker Job with each task's replicas as they are
  live (`with_live_replicas`): the whole task list then equals the live one, so the apply
  neither reverts the reconciler nor conflicts with it. A Job being created gets the rendered
  replicas.
"""

from __future__ import annotations

import copy
from typing import Any

from xpool.adapters.kube_client import KubeClient, KubeStatusError
from xpool.errors import RemoteError
from xpool.render.object_names import WORKER

RECONCILER_MANAGER = "xpool-reconciler"
JOB_API_VERSION = "batch.volcano.sh/v1alpha1"
JOB_KIND = "Job"
COMPONENT = "app.kubernetes.io/component"
SELECTOR = f"{COMPONENT}={WORKER}"
JSON_PATCH = "application/json-patch+json"


def _collection(namespace: str) -> str:
    return f"/apis/{JOB_API_VERSION}/namespaces/{namespace}/jobs"


def is_worker_job(obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (
        obj.get("apiVersion") == JOB_API_VERSION
        and obj.get("kind") == JOB_KIND
        and labels.get(COMPONENT) == WORKER
    )


def _tasks(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list(((obj or {}).get("spec") or {}).get("tasks") or [])


def _replicas(task: dict[str, Any]) -> int:
    """A task's replicas; Volcano's Go types omit a 0 (`json:"replicas,omitempty"`), so a Job
    its webhook rewrote may hold none."""
    return int(task.get("replicas") or 0)


def with_live_replicas(obj: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """The body `xpool apply` sends for `obj`: a worker Job whose tasks take from the live task
    of the same name its replicas, and the task fields the rendering leaves out that Volcano's
    mutating admission set at creation (`maxRetry`, pkg/webhooks/admission/jobs/mutate/
    mutate_job.go, mutateSpec). The atomic task list then equals the live one unless the
    platform file changed a task, so the apply neither reverts the reconciler, nor conflicts
    with it, nor asks Volcano for an update it refuses. `obj` itself when it is no worker Job,
    does not exist yet, or needs nothing from `live`."""
    if live is None or not is_worker_job(obj):
        return obj
    now = {str(t.get("name")): t for t in _tasks(live)}
    body = copy.deepcopy(obj)
    for task in body["spec"]["tasks"]:
        was = now.get(str(task.get("name")))
        if was is not None:
            task.update({k: copy.deepcopy(v) for k, v in was.items() if k not in task})
            task["replicas"] = _replicas(was)
    return obj if body == obj else body


def read_replicas(kube: KubeClient, namespace: str) -> dict[tuple[str, str], int]:
    """Every worker Job task's replicas, by (Job, task)."""
    try:
        listing = kube.request(
            "GET",
            _collection(namespace),
            query={"labelSelector": SELECTOR},
            what=f"worker Jobs in {namespace}",
        )
    except KubeStatusError as exc:
        hint = (
            f"; grant list on jobs.batch.volcano.sh in {namespace}"
            if exc.status in (401, 403)
            else ""
        )
        raise RemoteError(
            f"worker Jobs in {namespace}: cannot list them: {exc.summary()}{hint}"
        ) from None
    return {
        (str(job["metadata"]["name"]), str(task.get("name"))): _replicas(task)
        for job in listing.get("items") or []
        for task in _tasks(job)
    }


def scale_task(kube: KubeClient, namespace: str, job: str, task: str, replicas: int) -> bool:
    """Set task `task` of worker Job `job` to `replicas`. True when it has them (also when it
    already had: nothing is written); False when the Job changed between the read and the
    patch (re-read next pass). Raises RemoteError when the Job or task is missing, Volcano
    would refuse the replicas (below minAvailable), or the API refuses the patch."""
    path = f"{_collection(namespace)}/{job}"
    what = f"worker Job {namespace}/{job}"
    live = _get(kube, path, what)
    tasks = _tasks(live)
    index = next((i for i, t in enumerate(tasks) if t.get("name") == task), None)
    if index is None:
        raise RemoteError(f"{what} has no task {task!r}: run `xpool apply FILE` to recreate it")
    current = tasks[index]
    if _replicas(current) == replicas:
        return True
    others = sum(_replicas(t) for i, t in enumerate(tasks) if i != index)
    floor = int((live.get("spec") or {}).get("minAvailable") or 0)
    task_floor = int(current.get("minAvailable") or 0)
    if replicas < 0 or replicas < task_floor or others + replicas < floor:
        raise RemoteError(
            f"{what}: task {task} cannot have {replicas} replicas: Volcano requires the task's "
            f"minAvailable ({task_floor}) <= its replicas and the Job's minAvailable ({floor}) "
            f"<= its total replicas ({others} in its other tasks)"
        )
    at = f"/spec/tasks/{index}"
    ops: list[dict[str, Any]] = [{"op": "test", "path": f"{at}/name", "value": task}]
    if "replicas" in current:
        ops.append({"op": "test", "path": f"{at}/replicas", "value": current["replicas"]})
    else:  # a missing field cannot be tested: the resourceVersion read guards it instead
        rv = live["metadata"]["resourceVersion"]
        ops.append({"op": "test", "path": "/metadata/resourceVersion", "value": rv})
    ops.append({"op": "add", "path": f"{at}/replicas", "value": replicas})  # add = set
    try:
        kube.request(
            "PATCH",
            path,
            what=what,
            query={"fieldManager": RECONCILER_MANAGER},
            body=ops,
            content_type=JSON_PATCH,
        )
    except KubeStatusError as exc:
        if exc.status == 409 or (exc.status == 422 and _changed(kube, path, what, live)):
            return False
        hint = "; grant patch on jobs.batch.volcano.sh" if exc.status in (401, 403) else ""
        raise RemoteError(f"{what}: scaling task {task} refused: {exc.summary()}{hint}") from None
    return True


def _get(kube: KubeClient, path: str, what: str) -> dict[str, Any]:
    try:
        return kube.request("GET", path, what=what)
    except KubeStatusError as exc:
        if exc.status == 404:
            raise RemoteError(f"{what} does not exist: run `xpool apply FILE`") from None
        hint = "; grant get on jobs.batch.volcano.sh" if exc.status in (401, 403) else ""
        raise RemoteError(f"{what}: GET refused: {exc.summary()}{hint}") from None


def _changed(kube: KubeClient, path: str, what: str, read: dict[str, Any]) -> bool:
    """Whether the Job changed since `read` (a failed test op), rather than the patch being
    invalid in itself."""
    now = _get(kube, path, what)
    return bool(now["metadata"].get("resourceVersion") != read["metadata"].get("resourceVersion"))
