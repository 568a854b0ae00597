"""`xpool rollout start|status|promote|abort`: record a canary release's intent.

The actions only change the rollout's record (the state directory locally, the ConfigMap
`xpool-rollouts` on Kubernetes); the reconciler launches the canary, shifts the weights step
by step and judges each step. `promote` and `abort` also push the new weights to a local
gateway at once, so an abort takes effect without waiting for the next pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xpool.actions.flag_values import flag_seconds
from xpool.actions.reconciler_wiring import AUDIT_FILE
from xpool.actions.runtime import Runtime
from xpool.adapters.kube_client import KubeClient
from xpool.adapters.sources import check_source
from xpool.config.checks import gate_sample_shortfall
from xpool.config.models import Model, ModelVersion
from xpool.errors import InputError, Problem, RemoteError
from xpool.local.admin import AdminClient
from xpool.local.up_state import read_up_state, state_dir_for, supervised_locally
from xpool.policy import rollout as rollouts
from xpool.policy.spec import ModelSpec, policy_spec
from xpool.reconcile.audit import AuditLog
from xpool.reconcile.local_target import LocalTarget
from xpool.reconcile.rollout_store import (
    ConfigMapRolloutStore,
    FileRolloutStore,
    Rollouts,
    RolloutStore,
)
from xpool.reconcile.rollouts import gate_of, stable_of
from xpool.resolve import ResolvedPlatform, resolve_platform

DEFAULT_STEPS = (5.0, 25.0, 50.0, 100.0)
DEFAULT_INTERVAL = 600.0


@dataclass(frozen=True)
class RolloutScope:
    """Which platform's rollouts: the file, and the flags that say where they live."""

    file: str
    state_dir: str | None = None  # local: the running `xpool up`'s state directory
    namespace: str | None = None  # Kubernetes: overrides spec.kubernetes.namespace


@dataclass(frozen=True)
class StartOptions:
    scope: RolloutScope
    model: str
    to: str
    steps: str | None = None  # default: the file's rollout, else 5,25,50,100
    interval: str | None = None  # default: the file's rollout, else 10m

    def validate(self) -> None:
        """--steps and --interval are checked before anything is read or connected to."""
        if self.steps is not None:
            parse_steps(self.steps)
        if self.interval is not None:
            flag_seconds("--interval", self.interval)


@dataclass(frozen=True)
class StatusOptions:
    scope: RolloutScope
    model: str | None = None  # None: every model's rollout


@dataclass(frozen=True)
class FinishOptions:
    scope: RolloutScope
    model: str
    how: Literal["promote", "abort"]

    def validate(self) -> None:
        if self.how not in ("promote", "abort"):
            raise InputError([Problem("rollout", "", f"unknown ending '{self.how}'")])


def parse_steps(text: str) -> tuple[float, ...]:
    """--steps "5,25,50,100": increasing percentages in (0, 100] that end at 100."""
    try:
        steps = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InputError(
            [Problem("--steps", "", f"'{text}' is not a list of percentages like 5,25,50,100")]
        ) from None
    if not steps or any(not 0 < s <= 100 for s in steps):
        raise InputError([Problem("--steps", "", "each step must be a percentage in (0, 100]")])
    if any(b <= a for a, b in itertools.pairwise(steps)) or steps[-1] != 100:
        raise InputError([Problem("--steps", "", f"{text}: steps must increase and end at 100")])
    return steps


class RolloutRecords:
    """A platform's rollouts where they live: the state directory locally (with the audit log
    the reconciler writes too), the `xpool-rollouts` ConfigMap on Kubernetes."""

    def __init__(self, scope: RolloutScope, runtime: Runtime) -> None:
        self.resolved: ResolvedPlatform = resolve_platform(scope.file, namespace=scope.namespace)
        endpoint = self.resolved.platform.spec.xinference.endpoint
        self.local = supervised_locally(endpoint, scope.state_dir)
        self.state: Path | None = None
        self._kube: KubeClient | None = None
        self.store: RolloutStore
        if self.local:
            self.state = state_dir_for(self.resolved.name, scope.state_dir)
            self.store = FileRolloutStore(self.state)
        else:
            self._kube = runtime.kube()
            self.store = ConfigMapRolloutStore(self._kube, self.resolved.namespace)

    def close(self) -> None:
        if self._kube is not None:
            self._kube.close()

    def audit(self, r: rollouts.Rollout) -> None:
        """Locally, the CLI's changes go to the same audit log as the reconciler's (on
        Kubernetes the reconciler's log records the rollout's events as it acts on them)."""
        if self.state is None:
            return
        event = r.history[-1]
        log = AuditLog(self.state / AUDIT_FILE)
        try:
            log.write(
                {
                    "time": event.time,
                    "action": f"rollout-{event.event}",
                    "subject": f"{r.model} {r.stable}->{r.canary}",
                    "reason": event.reason,
                    "planned": False,
                    "fields": {"phase": r.phase, "step": r.step, "steps": list(r.steps)},
                    "inputs": {},
                    "before": {},
                    "after": {"weights": r.weights()},
                }
            )
        finally:
            log.close()

    def push_weights(self, r: rollouts.Rollout, log: Callable[[str], None]) -> None:
        """Locally, set the gateway's weights now; on Kubernetes the reconciler's next pass
        writes them to the routes every gateway replica reads."""
        up = read_up_state(self.state) if self.state else None
        if up is None:
            log("no local gateway is running: the weights apply when it and the reconciler run")
            return
        with AdminClient.of(up) as admin:
            LocalTarget(admin).set_weights(r.model, r.weights())


def _refused(model: str, message: str) -> InputError:
    return InputError([Problem(f"model {model}", "", message)])


def _canary(records: RolloutRecords, model: Model, to: str) -> ModelVersion:
    """Version `to` of `model`, its source checked where this machine can see it."""
    canary = next((v for v in model.versions if v.version == to), None)
    if canary is None:
        versions = ", ".join(v.version for v in model.versions)
        raise InputError(
            [
                Problem(
                    str(records.resolved.path),
                    "",
                    f"model '{model.name}' has no version '{to}' (versions: {versions})",
                )
            ]
        )
    if records.local or canary.source.startswith("s3://"):
        # a missing or corrupt source fails here, before anything changes (on Kubernetes,
        # file:// paths are on the workers: Xinference reports them when the launch fails)
        check_source(model.name, canary)
    return canary


def _placed(records: RolloutRecords, model: str) -> ModelSpec:
    spec = policy_spec(records.resolved.platform, records.resolved.plan).model(model)
    if spec is None:
        raise InputError(
            [
                Problem(
                    str(records.resolved.path),
                    "",
                    f"model '{model}' has no placement (see `xpool plan`); nothing to roll out",
                )
            ]
        )
    return spec


def start_rollout(options: StartOptions, runtime: Runtime) -> rollouts.Rollout:
    """Record a rollout of version `to` (refused while another one of the model is active)."""
    records = RolloutRecords(options.scope, runtime)
    try:
        _, model = records.resolved.model(options.model)
        _canary(records, model, options.to)
        declared = model.rollout
        if options.steps:
            steps = parse_steps(options.steps)
        else:
            steps = tuple(declared.steps) if declared else DEFAULT_STEPS
        if options.interval:
            seconds = flag_seconds("--interval", options.interval)
        else:
            seconds = declared.interval if declared else DEFAULT_INTERVAL
        gate = gate_of(records.resolved.platform, model.name)
        short = gate_sample_shortfall(model.demand.peak_qps, steps[0], seconds, gate.min_requests)
        if short is not None:
            raise InputError([Problem("--steps/--interval", "", short)])
        spec = _placed(records, model.name)
        now = runtime.clock()
        started: list[rollouts.Rollout] = []

        def change(doc: Rollouts) -> None:
            current = doc.current.get(model.name)
            if current is not None and current.active:
                raise _refused(
                    model.name,
                    f"rollout {current.stable} -> {current.canary} is {current.phase} "
                    f"({current.reason}); promote or abort it first",
                )
            stable = current.serving if current is not None else stable_of(spec)
            if stable == options.to:
                raise _refused(model.name, f"version {options.to} already serves all traffic")
            r = rollouts.start(
                model.name,
                stable,
                options.to,
                steps,
                seconds,
                gate,
                now,
                "started with `xpool rollout start`",
            )
            doc.replace(r)
            started.append(r)

        records.store.update(change)
        records.audit(started[0])
        return started[0]
    finally:
        records.close()


def rollout_status(options: StatusOptions, runtime: Runtime) -> list[rollouts.Rollout]:
    """The current rollout of each model (or of `options.model`), by model name."""
    records = RolloutRecords(options.scope, runtime)
    try:
        if options.model is not None:
            records.resolved.model(options.model)
        doc = records.store.load()
        return [r for m, r in sorted(doc.current.items()) if options.model in (None, m)]
    finally:
        records.close()


def finish_rollout(options: FinishOptions, runtime: Runtime) -> rollouts.Rollout:
    """Promote or abort the model's active rollout; locally, push the weights to the gateway
    now (a gateway that does not take them gets them from the reconciler's next pass)."""
    records = RolloutRecords(options.scope, runtime)
    try:
        records.resolved.model(options.model)
        now = runtime.clock()
        done: list[rollouts.Rollout] = []

        def change(doc: Rollouts) -> None:
            current = doc.current.get(options.model)
            if current is None or not current.active:
                phase = f"its last rollout is {current.phase}" if current else "it has no rollout"
                raise _refused(options.model, f"nothing to {options.how}: {phase}")
            if options.how == "promote" and current.phase != "shifting":
                raise _refused(
                    options.model,
                    f"the canary {current.canary} is not ready yet ({current.reason}); "
                    "wait or abort",
                )
            ending = rollouts.promote if options.how == "promote" else rollouts.abort
            doc.current[options.model] = ending(current, now)
            done.append(doc.current[options.model])

        records.store.update(change)
        r = done[0]
        records.audit(r)
        try:
            records.push_weights(r, runtime.log)
        except RemoteError as exc:
            runtime.log(
                f"the gateway did not take the weights now ({exc}); "
                "the reconciler sets them on its next pass"
            )
        return r
    finally:
        records.close()
