"""A canary release as a state machine: launch the canary, shift weight step by step, judge
each step against the stable version, roll back on a breach.

Pure: the reconciler feeds it the canary's instances and the gate's signals (from Prometheus)
and persists the state it returns, so a restarted reconciler resumes the step it was in (the
step's start time is part of the state). Every transition appends an event with its reason
and the figures it was judged on; those events are the rollout's history and audit trail.

Phases: `launching` (the canary gets one instance at weight 0) -> `shifting` (step i: canary
weight steps[i]) -> `completed` (canary 100%, it is the stable version now). `rolled-back`
(a breach or a failed launch) and `aborted` (by an operator) put all weight back on the
stable version; the canary's instances then drain because their weight is 0.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Phase = Literal["launching", "shifting", "completed", "rolled-back", "aborted"]
ACTIVE: tuple[Phase, ...] = ("launching", "shifting")
_DIGITS = re.compile(r"[0-9.]+")


@dataclass(frozen=True)
class Gate:
    max_error_rate: float = 0.01  # canary error rate may exceed the stable's by this much
    max_ttft_ratio: float = 1.5  # canary p99 TTFT / stable p99 TTFT
    ttft_slack_ms: float = 50.0
    min_requests: int = 20  # canary requests a step needs before it is judged


@dataclass(frozen=True)
class VersionSignals:
    """One version's upstream attempts over the step window (from the gateway's metrics)."""

    requests: float
    errors: float
    ttft_p99: float | None = None  # seconds; None without requests

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests > 0 else 0.0


@dataclass(frozen=True)
class GateSignals:
    canary: VersionSignals | None
    stable: VersionSignals | None
    missing: tuple[str, ...] = ()  # why a signal could not be read (Prometheus down, ...)


@dataclass(frozen=True)
class CanaryObs:
    ready: int
    loading: int
    failed: str | None = None  # the error of a canary instance whose launch failed
    wanted: int = 1  # instances its current weight calls for (policy/versions.py)


@dataclass(frozen=True)
class Event:
    time: float
    event: str  # started, step, held, completed, rolled-back, aborted, promoted
    weight: float  # the canary's weight after the event
    reason: str
    signals: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rollout:
    model: str
    stable: str  # the version serving before the rollout
    canary: str
    steps: tuple[float, ...]
    interval: float
    gate: Gate
    phase: Phase
    step: int  # index into steps; -1 while launching
    step_started: float | None
    started: float
    reason: str
    history: tuple[Event, ...] = ()
    # The stable version's figures from the last step that had stable traffic: the 100% step
    # has none of its own to compare against.
    baseline: VersionSignals | None = None

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE

    @property
    def canary_weight(self) -> float:
        if self.phase == "completed":
            return 100.0
        if self.phase == "shifting":
            return self.steps[self.step]
        return 0.0

    def weights(self) -> dict[str, float]:
        w = self.canary_weight
        return {self.stable: 100.0 - w, self.canary: w}

    @property
    def serving(self) -> str:
        """The version that takes the traffic once this rollout is over."""
        return self.canary if self.phase == "completed" else self.stable


def start(
    model: str,
    stable: str,
    canary: str,
    steps: tuple[float, ...],
    interval: float,
    gate: Gate,
    now: float,
    reason: str,
) -> Rollout:
    return Rollout(
        model,
        stable,
        canary,
        steps,
        interval,
        gate,
        "launching",
        -1,
        None,
        now,
        reason,
        (Event(now, "started", 0.0, reason),),
    )


def _with(r: Rollout, now: float, event: str, reason: str, **changes: Any) -> Rollout:
    signals = changes.pop("signals", {})
    nxt = replace(r, reason=reason, **changes)
    return replace(nxt, history=(*r.history, Event(now, event, nxt.canary_weight, reason, signals)))


def _rollback(r: Rollout, now: float, reason: str, **signals: Any) -> Rollout:
    return _with(r, now, "rolled-back", reason, phase="rolled-back", **signals)


def _hold(r: Rollout, now: float, reason: str) -> Rollout:
    """Record a hold once per kind of reason (its figures aside), not every pass."""
    if _DIGITS.sub("#", r.reason) == _DIGITS.sub("#", reason):
        return r
    return _with(r, now, "held", reason)


def breach(gate: Gate, canary: VersionSignals, stable: VersionSignals | None) -> str | None:
    """Why the canary fails the gate, or None."""
    base_rate = stable.error_rate if stable and stable.requests > 0 else 0.0
    if canary.error_rate > base_rate + gate.max_error_rate:
        return (
            f"canary error rate {canary.error_rate:.1%} ({canary.errors:.0f} of "
            f"{canary.requests:.0f}) > stable {base_rate:.1%} + {gate.max_error_rate:.1%}"
        )
    if canary.ttft_p99 is not None and stable is not None and stable.ttft_p99 is not None:
        limit = stable.ttft_p99 * gate.max_ttft_ratio + gate.ttft_slack_ms / 1000
        if canary.ttft_p99 > limit:
            return (
                f"canary p99 TTFT {canary.ttft_p99 * 1000:.0f} ms > {gate.max_ttft_ratio:g} x "
                f"stable {stable.ttft_p99 * 1000:.0f} ms + {gate.ttft_slack_ms:g} ms"
            )
    return None


def _figures(signals: GateSignals) -> dict[str, Any]:
    return {
        "canary": asdict(signals.canary) if signals.canary else None,
        "stable": asdict(signals.stable) if signals.stable else None,
    }


def advance(r: Rollout, now: float, canary: CanaryObs, signals: GateSignals | None) -> Rollout:
    """The rollout after one reconciler pass. `signals` cover [step_started, now]."""
    if not r.active:
        return r
    if canary.failed and canary.ready == 0:
        return _rollback(r, now, f"canary {r.canary} failed to launch: {canary.failed}")
    if r.phase == "launching":
        if canary.ready == 0:
            return _hold(r, now, f"waiting for an instance of {r.canary} to load")
        return _with(
            r,
            now,
            "step",
            f"canary {r.canary} ready: step 1 of {len(r.steps)}",
            phase="shifting",
            step=0,
            step_started=now,
        )
    if canary.ready == 0 and canary.loading == 0:
        return _rollback(r, now, f"canary {r.canary} has no instance left")
    assert r.step_started is not None
    if signals is not None and signals.canary is not None:
        stable = signals.stable if signals.stable and signals.stable.requests > 0 else None
        judged = stable or r.baseline
        if signals.canary.requests >= r.gate.min_requests:
            why = breach(r.gate, signals.canary, judged)
            if why is not None:  # judged as soon as there is enough traffic: within the step
                return _rollback(r, now, f"step {r.step + 1}: {why}", signals=_figures(signals))
        if stable is not None:
            r = replace(r, baseline=stable)
    elapsed = now - r.step_started
    if elapsed < r.interval:
        return r
    if signals is None or signals.canary is None or signals.missing:
        missing = ", ".join(signals.missing) if signals and signals.missing else "no data"
        return _hold(r, now, f"step {r.step + 1}: gate signals missing ({missing}); holding")
    if canary.ready < canary.wanted:  # the next step's traffic needs this step's instances
        return _hold(
            r,
            now,
            f"step {r.step + 1}: {canary.ready} of {canary.wanted} canary instances ready; holding",
        )
    if signals.canary.requests < r.gate.min_requests:
        return _hold(
            r,
            now,
            f"step {r.step + 1}: {signals.canary.requests:.0f} canary requests of the "
            f"{r.gate.min_requests} the gate needs; holding",
        )
    figures = _figures(signals)
    if r.step + 1 >= len(r.steps):
        return _with(
            r,
            now,
            "completed",
            f"canary {r.canary} passed {len(r.steps)} steps; it serves 100%",
            phase="completed",
            signals=figures,
        )
    return _with(
        r,
        now,
        "step",
        f"step {r.step + 1} passed the gate: step {r.step + 2} of {len(r.steps)}",
        step=r.step + 1,
        step_started=now,
        signals=figures,
    )


def promote(r: Rollout, now: float) -> Rollout:
    return _with(
        r, now, "promoted", f"promoted by an operator at {r.canary_weight:g}%", phase="completed"
    )


def abort(r: Rollout, now: float, reason: str = "aborted by an operator") -> Rollout:
    return _with(r, now, "aborted", reason, phase="aborted")


def to_json(r: Rollout) -> dict[str, Any]:
    return asdict(r)


def from_json(data: dict[str, Any]) -> Rollout:
    baseline = data.get("baseline")
    return Rollout(
        model=str(data["model"]),
        stable=str(data["stable"]),
        canary=str(data["canary"]),
        steps=tuple(float(s) for s in data["steps"]),
        interval=float(data["interval"]),
        gate=Gate(**data.get("gate", {})),
        phase=data["phase"],
        step=int(data["step"]),
        step_started=None if data.get("step_started") is None else float(data["step_started"]),
        started=float(data["started"]),
        reason=str(data.get("reason", "")),
        history=tuple(Event(**e) for e in data.get("history", [])),
        baseline=VersionSignals(**baseline) if baseline else None,
    )
