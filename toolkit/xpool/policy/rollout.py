"""A canary release as a state machine: launch the canary, shift weight step by step, judge
each step against the stable version (policy/canary_gate.py), roll back on evidence.

Pure: the reconciler feeds it the canary's instances and the gate's signals (from Prometheus)
and persists the state it returns, so a restarted reconciler resumes the step it was in (the
step's start time is part of the state). Every transition appends an event with its reason
and the figures it was judged on; those events are the rollout's history and audit trail.

Phases: `launching` (the canary gets the instances its first step calls for, at weight 0) ->
`shifting` (step i: canary weight steps[i]) -> `completed` (canary 100%, it is the stable
version now). `rolled-back` (a failed gate or launch) and `aborted` (by an operator) put all
weight back on the stable version; the canary's instances then drain because their weight is 0.

Looks: a step is judged at the end of its interval (and of each extension, when the previous
look was inconclusive) at `gate.final_alpha`; within the step, each time the canary's sample
doubles, at `gate.interim_alpha`, which only a failure can cross. Only a look at the end of a
step can pass it, and only once the canary has the ready instances the next weight calls for.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from xpool.policy.canary_gate import Gate, Verdict, VersionSignals, judge

Phase = Literal["launching", "shifting", "completed", "rolled-back", "aborted"]
ACTIVE: tuple[Phase, ...] = ("launching", "shifting")
_DIGITS = re.compile(r"[0-9.]+")


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
    # Ready instances the next weight calls for (the policy's last apportioning, less what
    # the pool has no room for); None before the policy has sized it (a first pass).
    wanted: int | None = 1
    # Instances the current weight calls for: a step is judged from when they are ready.
    needed: int | None = None


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
    extended: int = 0  # end-of-step looks that were inconclusive in this step
    looked: float = 0.0  # the canary's requests at this step's last interim look
    # The step's clock runs (and its figures count) once the canary has the instances its
    # weight calls for: a shift into a full pool is judged at the load the stable version had.
    armed: bool = False

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

    def next_weights(self) -> dict[str, float] | None:
        """The weights of the next step, which the canary is sized for ahead of the shift."""
        if self.phase == "launching":
            w = self.steps[0]
        elif self.phase == "shifting" and self.step + 1 < len(self.steps):
            w = self.steps[self.step + 1]
        else:
            return None
        return {self.stable: 100.0 - w, self.canary: w}

    @property
    def exhausted(self) -> bool:
        """Every end-of-step look was inconclusive: held for an operator."""
        return self.extended > self.gate.extensions

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


def _figures(
    signals: GateSignals, judged: VersionSignals | None, verdict: Verdict | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "canary": signals.canary.summary() if signals.canary else None,
        "stable": judged.summary() if judged else None,
    }
    if verdict is not None:
        out["gate"] = verdict.to_json()
    return out


def _concurrent(r: Rollout) -> bool:
    """Whether the stable version serves in this step (its figures are of the same minutes)."""
    return r.weights()[r.stable] > 0


def _interim(r: Rollout, now: float, signals: GateSignals, judged: VersionSignals) -> Rollout:
    """A look within the step each time the canary's sample doubles: fail on overwhelming
    evidence, else carry on (a step never passes early)."""
    assert signals.canary is not None
    n = signals.canary.requests
    if n < r.gate.min_requests or n < 2 * r.looked:
        return r
    verdict = judge(r.gate, signals.canary, judged, r.gate.interim_alpha, concurrent=_concurrent(r))
    if verdict.outcome == "fail":
        return _rollback(
            r,
            now,
            f"step {r.step + 1}: {verdict.reason}",
            signals=_figures(signals, judged, verdict),
        )
    return replace(r, looked=n)


def _end_of_step(r: Rollout, now: float, signals: GateSignals, judged: VersionSignals) -> Rollout:
    """The look at the end of the step (or of an extension): next step, rollback, extension,
    or a hold for an operator once the extensions are spent."""
    assert signals.canary is not None
    verdict = judge(r.gate, signals.canary, judged, r.gate.final_alpha, concurrent=_concurrent(r))
    figures = _figures(signals, judged, verdict)
    where = f"step {r.step + 1}"
    if verdict.outcome == "fail":
        return _rollback(r, now, f"{where}: {verdict.reason}", signals=figures)
    if verdict.outcome == "inconclusive":
        if r.extended < r.gate.extensions:
            return _with(
                r,
                now,
                "extended",
                f"{where} inconclusive: {verdict.reason}; extended "
                f"({r.extended + 1} of {r.gate.extensions})",
                extended=r.extended + 1,
                signals=figures,
            )
        return _with(
            r,
            now,
            "held",
            f"{where} inconclusive after {r.gate.extensions} extension(s): {verdict.reason}; "
            "held: `xpool rollout promote` or `abort`",
            extended=r.extended + 1,
            signals=figures,
        )
    if r.step + 1 >= len(r.steps):
        return _with(
            r,
            now,
            "completed",
            f"canary {r.canary} passed {len(r.steps)} steps ({verdict.reason}); it serves 100%",
            phase="completed",
            signals=figures,
        )
    return _with(
        r,
        now,
        "step",
        f"{where} passed ({verdict.reason}): step {r.step + 2} of {len(r.steps)}",
        step=r.step + 1,
        step_started=now,
        extended=0,
        looked=0.0,
        armed=False,
        signals=figures,
    )


def _stable_figures(r: Rollout, signals: GateSignals) -> tuple[Rollout, VersionSignals]:
    """What the canary is judged against: the stable version's figures of this step while it
    has weight (kept as the baseline); at 100% (a few stray requests of the step's first
    seconds aside) the baseline, those of the last step where it had."""
    stable = signals.stable if signals.stable and signals.stable.requests > 0 else None
    if stable is not None and _concurrent(r):
        return replace(r, baseline=stable), stable
    return r, r.baseline or VersionSignals(0.0, 0.0)


def _capacity_hold(r: Rollout, now: float, canary: CanaryObs) -> Rollout | None:
    """Hold while the canary lacks the ready instances its next weight calls for."""
    if r.next_weights() is None:  # the last step: the canary already takes every request
        return None
    if canary.wanted is None:
        return _hold(r, now, f"step {r.step + 1}: sizing the canary for the next step; holding")
    if canary.ready < canary.wanted:
        return _hold(
            r,
            now,
            f"step {r.step + 1}: {canary.ready} of the {canary.wanted} canary instances the "
            "next step needs are ready; holding",
        )
    return None


def advance(r: Rollout, now: float, canary: CanaryObs, signals: GateSignals | None) -> Rollout:
    """The rollout after one reconciler pass. `signals` cover [step_started, now]."""
    if not r.active:
        return r
    if canary.failed and canary.ready == 0:
        return _rollback(r, now, f"canary {r.canary} failed to launch: {canary.failed}")
    if r.phase == "launching":
        if canary.ready == 0:
            return _hold(r, now, f"waiting for an instance of {r.canary} to load")
        if canary.wanted is None or canary.ready < canary.wanted:
            wanted = "its first step's" if canary.wanted is None else str(canary.wanted)
            return _hold(r, now, f"waiting for {wanted} instance(s) of {r.canary} to load")
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
    if not r.armed:
        if canary.needed is not None and canary.ready < canary.needed:
            return _hold(
                replace(r, step_started=now),
                now,
                f"step {r.step + 1}: judging starts once the {canary.needed} canary instances "
                f"{r.canary_weight:g}% calls for are ready ({canary.ready} are)",
            )
        r = replace(r, armed=True)
    assert r.step_started is not None
    if signals is None or signals.canary is None or signals.missing:
        if now - r.step_started < r.interval * (1 + r.extended):
            return r
        missing = ", ".join(signals.missing) if signals and signals.missing else "no data"
        return _hold(r, now, f"step {r.step + 1}: gate signals missing ({missing}); holding")
    r, judged = _stable_figures(r, signals)
    r = _interim(r, now, signals, judged)
    if not r.active or r.exhausted:
        return r
    if now - r.step_started < r.interval * (1 + r.extended):
        return r
    held = _capacity_hold(r, now, canary)
    if held is not None:
        return held
    return _end_of_step(r, now, signals, judged)


def promote(r: Rollout, now: float) -> Rollout:
    return _with(
        r, now, "promoted", f"promoted by an operator at {r.canary_weight:g}%", phase="completed"
    )


def abort(r: Rollout, now: float, reason: str = "aborted by an operator") -> Rollout:
    return _with(r, now, "aborted", reason, phase="aborted")


def _signals_to_json(v: VersionSignals) -> dict[str, Any]:
    """JSON has no infinity: the open-ended bucket's bound is written as Prometheus does."""
    ttft = [["+Inf" if math.isinf(b) else b, c] for b, c in v.ttft]
    return {"requests": v.requests, "errors": v.errors, "ttft": ttft}


def _signals_from_json(data: dict[str, Any]) -> VersionSignals:
    """Tolerant of records written before the gate kept buckets (their TTFT is dropped)."""
    ttft = tuple((float(b), int(c)) for b, c in data.get("ttft") or ())
    return VersionSignals(float(data["requests"]), float(data["errors"]), ttft)


def to_json(r: Rollout) -> dict[str, Any]:
    out = asdict(r)
    out["baseline"] = _signals_to_json(r.baseline) if r.baseline else None
    return out


def from_json(data: dict[str, Any]) -> Rollout:
    baseline = data.get("baseline")
    known = {f.name for f in fields(Gate)}
    return Rollout(
        model=str(data["model"]),
        stable=str(data["stable"]),
        canary=str(data["canary"]),
        steps=tuple(float(s) for s in data["steps"]),
        interval=float(data["interval"]),
        gate=Gate(**{k: v for k, v in data.get("gate", {}).items() if k in known}),
        phase=data["phase"],
        step=int(data["step"]),
        step_started=None if data.get("step_started") is None else float(data["step_started"]),
        started=float(data["started"]),
        reason=str(data.get("reason", "")),
        history=tuple(Event(**e) for e in data.get("history", [])),
        baseline=_signals_from_json(baseline) if baseline else None,
        extended=int(data.get("extended", 0)),
        looked=float(data.get("looked", 0.0)),
        armed=bool(data.get("armed", True)),
    )
