"""`xpool scale FILE MODEL --instances N`: change a model's instance count on the running
`xpool up`, through its gateway's loopback admin endpoint.

Scale up launches the next free UIDs and routes to them once ready; scale down drains the
highest-numbered instances (no new requests; in-flight ones and streams finish, up to
`autoscaling.drainTimeout`) and then terminates them. Returns when that is done.
"""

from __future__ import annotations

import click
import httpx

from xpool.cli.output import emit_data, note, output_option
from xpool.cli.up import read_up_file, state_dir_for
from xpool.config.loader import load_platform
from xpool.errors import InputError, Problem, RemoteError


def admin_target(file: str, state_dir: str | None) -> tuple[str, str, str]:
    """(platform name, gateway URL, admin token) of the `xpool up` running for FILE."""
    platform = load_platform(file).platform
    state = state_dir_for(platform, state_dir)
    info = read_up_file(state)
    if info is None or not info.get("adminTokenFile"):
        raise RemoteError(
            f"no `xpool up` is running for {platform.metadata.name} (state dir {state}); "
            "start one with `xpool up FILE` or pass --state-dir"
        )
    try:
        token = open(info["adminTokenFile"]).read().strip()  # noqa: SIM115
    except OSError as exc:
        raise RemoteError(f"cannot read the admin token {info['adminTokenFile']}: {exc}") from None
    return platform.metadata.name, str(info["gateway"]), token


def admin_post(gateway: str, token: str, path: str, body: dict, timeout: float) -> dict:
    try:
        response = httpx.post(
            f"{gateway}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise RemoteError(f"cannot reach the gateway at {gateway}: {exc}") from None
    try:
        data = response.json()
    except ValueError:
        data = {"error": {"message": response.text[:300]}}
    if response.status_code in (400, 404, 422):
        raise InputError([Problem("request", path, data.get("error", {}).get("message", ""))])
    if response.status_code >= 300:
        message = data.get("error", {}).get("message", response.text[:300])
        raise RemoteError(f"gateway {path}: HTTP {response.status_code}: {message}")
    return data


@click.command("scale")
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("model")
@click.option("--instances", type=click.IntRange(min=0), required=True, help="Instances wanted.")
@click.option("--version", "version", default=None, help="Model version [default: the first].")
@click.option("--force", is_flag=True, help="Allow a count outside instances.min..max.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="State directory of the running `xpool up`.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=1800.0,
    show_default=True,
    help="Seconds to wait for launches and drains.",
)
@output_option()
def scale_command(
    file: str,
    model: str,
    instances: int,
    version: str | None,
    force: bool,
    state_dir: str | None,
    timeout: float,
    output: str,
) -> None:
    """Scale MODEL to N instances on the running `xpool up` (drain before terminate)."""
    loaded = load_platform(file)
    index, spec = next(
        ((i, m) for i, m in enumerate(loaded.platform.spec.models) if m.name == model),
        (None, None),
    )
    if spec is None or index is None:
        known = ", ".join(m.name for m in loaded.platform.spec.models)
        raise InputError([Problem(file, "spec.models", f"no model '{model}' (models: {known})")])
    if not force and not spec.instances.min <= instances <= spec.instances.max:
        raise InputError(
            [
                loaded.problem(
                    ("spec", "models", index, "instances"),
                    f"{model}: {instances} is outside min..max "
                    f"({spec.instances.min}..{spec.instances.max}); pass --force to go beyond",
                )
            ]
        )
    _, gateway, token = admin_target(file, state_dir)
    body = {"model": model, "instances": instances, "force": force}
    if version is not None:
        body["version"] = version
    result = admin_post(gateway, token, "/-/admin/scale", body, timeout)
    if output == "table":
        note(
            f"{model}: {instances} instance(s); launched {', '.join(result['launched']) or '-'}; "
            f"terminated {', '.join(result['terminated']) or '-'}"
            + (
                f"; drain timed out for {', '.join(result['drainTimeouts'])}"
                if result["drainTimeouts"]
                else ""
            )
            + f" ({result['seconds']} s)"
        )
        click.echo(f"{model} scaled to {instances}")
    else:
        emit_data(result, output)
