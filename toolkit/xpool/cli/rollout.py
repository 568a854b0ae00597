"""`xpool rollout start|status|promote|abort`: canary releases of a model version.

The commands only write the rollout's state (the state directory locally, the ConfigMap
`xpool-rollouts` on Kubernetes); the reconciler launches the canary, shifts the weights step
by step and judges each step. `promote` and `abort` also push the new weights to a local
gateway at once, so an abort takes effect without waiting for the next pass.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from xpool.adapters.kube_client import Connection, KubeClient
from xpool.adapters.sources import check_source
from xpool.cli.apply import connection_options
from xpool.cli.output import emit_data, emit_table, note, output_option
from xpool.cli.up import read_up_file, state_dir_for
from xpool.config.durations import parse_duration
from xpool.errors import InputError, Problem, RemoteError
from xpool.policy import rollout as rollouts
from xpool.policy.spec import policy_spec
from xpool.reconcile.audit import AuditLog
from xpool.reconcile.local_target import LocalTarget
from xpool.reconcile.rollout_store import (
    ConfigMapRolloutStore,
    FileRolloutStore,
    Rollouts,
    RolloutStore,
)
from xpool.reconcile.rollouts import gate_of, stable_of
from xpool.reconcile.wiring import AUDIT_FILE
from xpool.validate import load_and_plan


class _Context:
    """The platform and where its rollouts live (state directory or ConfigMap)."""

    def __init__(
        self,
        file: str,
        state_dir: str | None,
        kubeconfig: str | None,
        context: str | None,
        namespace: str | None,
    ) -> None:
        self.loaded, self.plan = load_and_plan(file)
        platform = self.loaded.platform
        self.local = platform.spec.xinference.endpoint == "embedded"
        self.state: Path | None = None
        self.store: RolloutStore
        if self.local:
            self.state = state_dir_for(platform, state_dir)
            self.store = FileRolloutStore(self.state)
        else:
            kube = KubeClient.connect(Connection(kubeconfig, context), log=note)
            ns = namespace or (
                platform.spec.kubernetes.namespace if platform.spec.kubernetes else "xpool"
            )
            self.store = ConfigMapRolloutStore(kube, ns)

    def model(self, name: str) -> Any:
        models = self.loaded.platform.spec.models
        found = next((m for m in models if m.name == name), None)
        if found is None:
            known = ", ".join(m.name for m in models)
            raise InputError(
                [Problem(self.loaded.path, "", f"unknown model '{name}' (models: {known})")]
            )
        return found

    def audit(self, r: rollouts.Rollout) -> None:
        """Locally, the CLI's changes go to the same audit log as the reconciler's."""
        if self.state is None:
            return
        event = r.history[-1]
        log = AuditLog(self.state / AUDIT_FILE)
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
        log.close()

    def push_weights(self, r: rollouts.Rollout) -> None:
        """Locally, set the gateway's weights now; on Kubernetes the reconciler's next pass
        writes them to the routes every gateway replica reads."""
        up = read_up_file(self.state) if self.state else None
        if not up or not up.get("adminTokenFile"):
            note("no local gateway is running: the weights apply when it and the reconciler run")
            return
        token = Path(up["adminTokenFile"]).read_text().strip()
        target = LocalTarget(str(up["gateway"]), token)
        try:
            target.set_weights(r.model, r.weights())
        finally:
            target.close()


def _refused(model: str, message: str) -> InputError:
    return InputError([Problem(f"model {model}", "", message)])


def _steps(text: str) -> tuple[float, ...]:
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


def _interval(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise InputError([Problem("--interval", "", str(exc))]) from None
    if seconds < 1:
        raise InputError([Problem("--interval", "", "use at least 1s")])
    return seconds


def _row(r: rollouts.Rollout, now: float) -> tuple[Any, ...]:
    step = f"{r.step + 1}/{len(r.steps)}" if r.step >= 0 else f"-/{len(r.steps)}"
    age = f"{now - r.step_started:.0f}s of {r.interval:g}s" if r.active and r.step_started else "-"
    return (
        r.model,
        f"{r.stable} -> {r.canary}",
        r.phase,
        step,
        f"{r.canary_weight:g}%",
        age,
        r.reason,
    )


def _state_options(func: Any) -> Any:
    func = click.option(
        "--state-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="State directory of the running `xpool up` (embedded endpoint only).",
    )(func)
    return connection_options(func)


@click.group("rollout")
def rollout_group() -> None:
    """Canary releases: shift traffic to a new version step by step, gated on its SLOs."""


@rollout_group.command("start")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("model")
@click.option("--to", "to", required=True, help="The version to release.")
@click.option(
    "--steps",
    default=None,
    help="Canary weights in percent [default: the file's rollout, else 5,25,50,100].",
)
@click.option(
    "--interval", default=None, help="Time per step [default: the file's rollout, else 10m]."
)
@_state_options
@output_option()
def start_command(
    file: str,
    model: str,
    to: str,
    steps: str | None,
    interval: str | None,
    state_dir: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    output: str,
) -> None:
    """Start releasing version TO of MODEL; the reconciler carries it out."""
    ctx = _Context(file, state_dir, kubeconfig, context, namespace)
    found = ctx.model(model)
    versions = [v.version for v in found.versions]
    if to not in versions:
        raise InputError(
            [
                Problem(
                    ctx.loaded.path,
                    "",
                    f"model '{model}' has no version '{to}' (versions: {', '.join(versions)})",
                )
            ]
        )
    canary = next(v for v in found.versions if v.version == to)
    if ctx.local or canary.source.startswith("s3://"):
        # a missing or corrupt source fails here, before anything changes (on Kubernetes,
        # file:// paths are on the workers: Xinference reports them when the launch fails)
        check_source(model, canary, base_dir=ctx.loaded.path.parent)
    declared = found.rollout
    chosen_steps = (
        _steps(steps) if steps else tuple(declared.steps if declared else (5.0, 25.0, 50.0, 100.0))
    )
    seconds = _interval(interval) if interval else (declared.interval if declared else 600.0)
    spec = policy_spec(ctx.loaded.platform, ctx.plan).model(model)
    if spec is None:
        raise InputError(
            [
                Problem(
                    ctx.loaded.path,
                    "",
                    f"model '{model}' has no placement (see `xpool plan`); nothing to roll out",
                )
            ]
        )
    now = time.time()
    started: list[rollouts.Rollout] = []

    def change(doc: Rollouts) -> None:
        current = doc.current.get(model)
        if current is not None and current.active:
            raise _refused(
                model,
                f"rollout {current.stable} -> {current.canary} is {current.phase} ({current.reason}); promote or abort it first",
            )
        stable = current.serving if current is not None else stable_of(spec)
        if stable == to:
            raise _refused(model, f"version {to} already serves all traffic")
        r = rollouts.start(
            model,
            stable,
            to,
            chosen_steps,
            seconds,
            gate_of(ctx.loaded.platform, model),
            now,
            "started with `xpool rollout start`",
        )
        doc.replace(r)
        started.append(r)

    ctx.store.update(change)
    r = started[0]
    ctx.audit(r)
    _emit([r], output, now)
    note(
        f"{model}: rollout {r.stable} -> {r.canary} recorded; `xpool reconcile` launches the canary and shifts {', '.join(f'{s:g}%' for s in r.steps)} every {r.interval:g} s"
    )


def _emit(items: list[rollouts.Rollout], output: str, now: float) -> None:
    if output != "table":
        emit_data({"rollouts": [asdict(r) for r in items]}, output)
        return
    emit_table(
        "Rollouts",
        ["MODEL", "VERSIONS", "PHASE", "STEP", "CANARY", "IN STEP", "REASON"],
        [_row(r, now) for r in items],
    )


@rollout_group.command("status")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("model", required=False)
@_state_options
@output_option()
def status_command(
    file: str,
    model: str | None,
    state_dir: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    output: str,
) -> None:
    """Where each rollout is (with its history in -o json|yaml)."""
    ctx = _Context(file, state_dir, kubeconfig, context, namespace)
    if model is not None:
        ctx.model(model)
    doc = ctx.store.load()
    items = [r for m, r in sorted(doc.current.items()) if model in (None, m)]
    _emit(items, output, time.time())
    if not items:
        note("no rollouts recorded" + (f" for {model}" if model else ""))


def _finish(
    file: str, model: str, state_dir: str | None, kube: tuple[Any, ...], output: str, how: str
) -> None:
    ctx = _Context(file, state_dir, *kube)
    ctx.model(model)
    now = time.time()
    done: list[rollouts.Rollout] = []

    def change(doc: Rollouts) -> None:
        current = doc.current.get(model)
        if current is None or not current.active:
            phase = f"its last rollout is {current.phase}" if current else "it has no rollout"
            raise _refused(model, f"nothing to {how}: {phase}")
        if how == "promote" and current.phase != "shifting":
            raise _refused(
                model,
                f"the canary {current.canary} is not ready yet ({current.reason}); wait or abort",
            )
        nxt = rollouts.promote(current, now) if how == "promote" else rollouts.abort(current, now)
        doc.current[model] = nxt
        done.append(nxt)

    ctx.store.update(change)
    r = done[0]
    ctx.audit(r)
    try:
        ctx.push_weights(r)
    except RemoteError as exc:
        note(
            f"the gateway did not take the weights now ({exc}); the reconciler sets them on its next pass"
        )
    _emit([r], output, now)


def _ending(how: str, doc: str) -> None:
    """Register `xpool rollout promote|abort FILE MODEL` (the same flags, one verb apart)."""

    @rollout_group.command(how, help=doc)
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.argument("model")
    @_state_options
    @output_option()
    def command(
        file: str,
        model: str,
        state_dir: str | None,
        kubeconfig: str | None,
        context: str | None,
        namespace: str | None,
        output: str,
    ) -> None:
        _finish(file, model, state_dir, (kubeconfig, context, namespace), output, how)


_ending("promote", "Send all traffic to the canary now (skipping the remaining steps).")
_ending("abort", "Send all traffic back to the stable version; the canary's instances drain.")
