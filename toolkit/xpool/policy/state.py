"""What one pass observes, and the little the policy remembers between passes.

Observations are plain values, so the live reconciler (Xinference, gateways, Prometheus) and
the simulator (its own event state) build them alike. The memory is what makes step limits
and stabilization windows work across passes, including one-shot passes from a CronJob, so it
is small and serialisable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal

InstanceState = Literal["loading", "ready", "draining", "failed"]
HOLDING: tuple[InstanceState, ...] = ("loading", "ready", "draining")


@dataclass(frozen=True)
class InstanceObs:
    uid: str
    model: str
    version: str
    state: InstanceState
    since: float  # when it entered `state` (clock of the observation)
    inflight: int = 0  # summed over every gateway
    error: str | None = None
    worker: str | None = None  # the Xinference worker address it runs on, when known
    devices: tuple[int, ...] = ()  # its accelerators on that worker, when reported


@dataclass(frozen=True)
class WorkerObs:
    """An Xinference worker joined with what it stands for: its tier's worker group on a pool
    (pod labels on Kubernetes, the `xpool up` bookkeeping locally)."""

    address: str  # host:port, what a launch's `worker_ip` names
    pool: str
    tier: str
    node: str
    accelerators: int
    # Its worker group (Volcano Job and task; the same names locally) and its index there:
    # lowering a task's replicas ends its highest-index workers first. "" when unknown.
    job: str = ""
    task: str = ""
    index: int = 0


@dataclass(frozen=True)
class LoadObs:
    """Demand signals of one model. None = not measured; `missing` names the signals that
    should have been measured and were not (stale or absent series): they block scale-down."""

    qps: float | None = None
    utilization: float | None = None  # 0..1, accelerators of the model's pool
    missing: tuple[str, ...] = ()
    # Tokens/s of the answers over the same window as `qps` (the gateway's usage counters)
    prompt_tokens_per_s: float | None = None
    completion_tokens_per_s: float | None = None
    # Squared coefficient of variation of the gaps between arrivals, estimated as the index
    # of dispersion of arrival counts (variance / mean of counts in 30 s bins over 10 min):
    # 1 for Poisson arrivals, more for bursts. Read for `autoscaling.mode: slo` only.
    arrival_cv2: float | None = None
    # Batch work queued for the model, not yet dispatched (the gateway's gauges
    # xpool_gateway_batch_queued_requests / _tokens): demand that waits, so the
    # autoscaler adds it to the load (autoscale.py, "backlog").
    batch_queued_requests: float | None = None
    batch_queued_tokens: float | None = None  # prompt + completion


@dataclass(frozen=True)
class Observation:
    now: float
    instances: tuple[InstanceObs, ...]
    load: Mapping[str, LoadObs] = field(default_factory=dict)
    # Empty: nothing is known of workers, and launches name none (Xinference places them).
    workers: tuple[WorkerObs, ...] = ()
    # Each worker group's replicas now, by (job, task): what it asked for, started or not.
    # Empty: the groups cannot be scaled from here, and the policy leaves them alone.
    replicas: Mapping[tuple[str, str], int] = field(default_factory=dict)

    @cached_property
    def _by_model(self) -> dict[str, list[InstanceObs]]:
        out: dict[str, list[InstanceObs]] = {}
        for inst in self.instances:
            out.setdefault(inst.model, []).append(inst)
        return out

    def of(self, model: str) -> list[InstanceObs]:
        return list(self._by_model.get(model, ()))


@dataclass(frozen=True)
class ModelMemory:
    last_up: float | None = None  # last scale-up (launch) decision
    last_down: float | None = None  # last scale-down (drain) decision
    low_since: float | None = None  # start of the current run of low-load passes
    # mode slo: the largest SLO target seen during that run; a scale-down goes to it, not to
    # the last pass's target (the HPA's rule: the highest recommendation of the window)
    low_need: float | None = None


Memory = Mapping[str, ModelMemory]


def memory_to_json(memory: Memory) -> dict[str, Any]:
    return {name: asdict(m) for name, m in sorted(memory.items())}


def memory_from_json(data: Mapping[str, Any]) -> dict[str, ModelMemory]:
    """Tolerant of a missing or foreign document: the worst case is one extra wait."""
    out: dict[str, ModelMemory] = {}
    for name, entry in data.items():
        if not isinstance(entry, Mapping):
            continue
        values = {
            k: float(v)
            for k, v in entry.items()
            if k in ModelMemory.__dataclass_fields__ and isinstance(v, int | float)
        }
        out[str(name)] = ModelMemory(**values)
    return out
