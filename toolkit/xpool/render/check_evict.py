"""Eviction drains first: every Xinference worker pod a Volcano Job runs (each may be reclaimed,
preempted or drained off its node) lets the gateways drain its instances before the worker
stops.

For every pod template of a Volcano Job whose pods are workers (`app.kubernetes.io/name`):

- one container's preStop runs `xpool worker drain ... --done-file FILE`;
- every other container's preStop waits for FILE, on a volume both mount (without the wait,
  the kubelet's SIGTERM would stop the worker while its requests still run);
- `terminationGracePeriodSeconds` is at least the drainTimeout the template declares
  (annotation `xpool.io/drain-timeout-seconds`) plus the margin, or the kubelet kills the pod
  mid-drain.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from xpool.render.check_pods import containers, pod_templates
from xpool.render.check_types import CheckProblem, as_list, dig, join_path, object_ref
from xpool.render.object_names import DRAIN_MARGIN_SECONDS, DRAIN_TIMEOUT_ANNOTATION, WORKER

NAME_LABEL = "app.kubernetes.io/name"
DONE_FILE = re.compile(r"--done-file[= ]+(\S+)")


def _pre_stop(container: dict[str, Any]) -> str:
    return " ".join(
        str(a) for a in as_list(dig(container, "lifecycle", "preStop", "exec", "command"))
    )


def _mount_dirs(container: dict[str, Any]) -> dict[str, str]:
    """mountPath -> volume name."""
    return {
        str(dig(m, "mountPath")).rstrip("/"): str(dig(m, "name"))
        for m in as_list(container.get("volumeMounts"))
    }


def _volume_of(container: dict[str, Any], path: str) -> str | None:
    mounts = _mount_dirs(container)
    parent = path.rsplit("/", 1)[0]
    return mounts.get(parent)


def check_evict(objects: list[dict[str, Any]]) -> list[CheckProblem]:
    problems: list[CheckProblem] = []
    for obj in objects:
        if obj.get("kind") != "Job" or not str(obj.get("apiVersion", "")).startswith(
            "batch.volcano.sh/"
        ):
            continue
        for at, template in pod_templates(obj):
            if dig(template, "metadata", "labels", NAME_LABEL) == WORKER:
                problems += _template_problems(object_ref(obj), at, template)
    return problems


def _template_problems(
    where: str, at: tuple[str | int, ...], template: dict[str, Any]
) -> Iterator[CheckProblem]:
    found = list(containers(template))
    drains = [
        (rel, c, m[1])
        for rel, c in found
        if "worker drain" in (hook := _pre_stop(c)) and (m := DONE_FILE.search(hook))
    ]
    if len(drains) != 1:
        yield CheckProblem(
            where,
            join_path(*at, "spec", "containers"),
            "no container (or more than one) drains the worker before it stops: add one whose "
            "preStop runs `xpool worker drain ... --done-file FILE` (render/build_workers.py)",
            "evict.no-drain",
        )
        return
    drain_rel, drain, done = drains[0]
    shared = _volume_of(drain, done)
    for rel, container in found:
        if rel == drain_rel:
            continue
        if done not in _pre_stop(container) or _volume_of(container, done) != shared or not shared:
            yield CheckProblem(
                where,
                join_path(*at, *rel, "lifecycle", "preStop"),
                f"container {container.get('name')!r} may stop before the drain ends: give it a "
                f"preStop that waits for {done}, on a volume it shares with the drain container",
                "evict.no-wait",
            )
    yield from _grace_problems(where, at, template)


def _grace_problems(
    where: str, at: tuple[str | int, ...], template: dict[str, Any]
) -> Iterator[CheckProblem]:
    declared = dig(template, "metadata", "annotations", DRAIN_TIMEOUT_ANNOTATION)
    grace = dig(template, "spec", "terminationGracePeriodSeconds")
    if not (isinstance(declared, str) and declared.isdigit()):
        yield CheckProblem(
            where,
            join_path(*at, "metadata", "annotations", DRAIN_TIMEOUT_ANNOTATION),
            "missing or not whole seconds: declare the drainTimeout the grace period covers",
            "evict.grace",
        )
        return
    need = int(declared) + DRAIN_MARGIN_SECONDS
    if not isinstance(grace, int) or grace < need:
        yield CheckProblem(
            where,
            join_path(*at, "spec", "terminationGracePeriodSeconds"),
            f"is {grace if grace is not None else 'not set (30 s)'}; a drain of up to "
            f"{declared} s needs at least {need} s, or the kubelet kills the worker mid-drain",
            "evict.grace",
        )
