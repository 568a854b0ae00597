"""`xpool rollout start|status|promote|abort`: canary releases of a model version.

The commands only write the rollout's state (the state directory locally, the ConfigMap
`xpool-rollouts` on Kubernetes); the reconciler launches the canary, shifts the weights step
by step and judges each step. `promote` and `abort` also push the new weights to a local
gateway at once, so an abort takes effect without waiting for the next pass.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import click

from xpool.actions.rollout import (
    FinishOptions,
    RolloutScope,
    StartOptions,
    StatusOptions,
    finish_rollout,
    rollout_status,
    start_rollout,
)
from xpool.actions.runtime import Runtime
from xpool.cli.options import connection_options
from xpool.cli.output import emit_data, emit_table, note, output_option
from xpool.policy.rollout import Rollout, to_json


def _row(r: Rollout, now: float) -> tuple[Any, ...]:
    step = f"{r.step + 1}/{len(r.steps)}" if r.step >= 0 else f"-/{len(r.steps)}"
    age = "-"
    if r.active and r.step_started:
        extended = f" (extended {r.extended}x)" if r.extended else ""
        age = f"{now - r.step_started:.0f}s of {r.interval:g}s{extended}"
    return (
        r.model,
        f"{r.stable} -> {r.canary}",
        r.phase,
        step,
        f"{r.canary_weight:g}%",
        age,
        r.reason,
    )


def _emit(items: list[Rollout], output: str, now: float) -> None:
    if output != "table":
        emit_data({"rollouts": [to_json(r) for r in items]}, output)
        return
    emit_table(
        "Rollouts",
        ["MODEL", "VERSIONS", "PHASE", "STEP", "CANARY", "IN STEP", "REASON"],
        [_row(r, now) for r in items],
    )


def _state_options(func: Any) -> Any:
    func = click.option(
        "--state-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="State directory of the running `xpool up` (embedded endpoint only).",
    )(func)
    return connection_options(func)


def _runtime(kubeconfig: str | None, context: str | None) -> Runtime:
    """Remarks (no gateway running, weights left to the reconciler) are printed as notes."""
    return Runtime(kubeconfig, context, log=note)


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
    options = StartOptions(RolloutScope(file, state_dir, namespace), model, to, steps, interval)
    options.validate()
    r = start_rollout(options, _runtime(kubeconfig, context))
    _emit([r], output, time.time())
    shifts = ", ".join(f"{s:g}%" for s in r.steps)
    note(
        f"{model}: rollout {r.stable} -> {r.canary} recorded; `xpool reconcile` launches the "
        f"canary and shifts {shifts} every {r.interval:g} s"
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
    """Where each rollout is (with its history in -o json|yaml: every step's gate verdict,
    its tests' statistics and the figures they were computed on)."""
    options = StatusOptions(RolloutScope(file, state_dir, namespace), model)
    items = rollout_status(options, _runtime(kubeconfig, context))
    _emit(items, output, time.time())
    if not items:
        note("no rollouts recorded" + (f" for {model}" if model else ""))


def _ending(how: Literal["promote", "abort"], doc: str) -> None:
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
        options = FinishOptions(RolloutScope(file, state_dir, namespace), model, how)
        options.validate()
        r = finish_rollout(options, _runtime(kubeconfig, context))
        _emit([r], output, time.time())


_ending("promote", "Send all traffic to the canary now (skipping the remaining steps).")
_ending("abort", "Send all traffic back to the stable version; the canary's instances drain.")
