"""`xpool up FILE`: run a platform here — Xinference (embedded or remote), its models, a gateway.

validate -> start the embedded Xinference (`xinference.endpoint: embedded`) or connect to the
remote one -> start the gateway on `gateway.listen` -> register each model version and ensure
its instances (the first version of each model; at least one instance) -> print where to send
requests -> run until SIGINT/SIGTERM -> stop the gateway, terminate the instances this run
launched, stop the embedded Xinference. A second Ctrl-C while stopping gives up at once (130).
`--smoke` sends one request per model through the gateway instead of waiting, then stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import click
import httpx

from xpool.adapters.xinference import (
    Want,
    XinferenceClient,
    api_key_from_env,
    ensure_instances,
    wants_for,
)
from xpool.cli.output import note
from xpool.config.models import Platform
from xpool.errors import RemoteError
from xpool.gateway.app import create_app
from xpool.gateway.control import (
    TOKEN_FILE,
    Scaler,
    gateway_wants,
    model_limits,
    table_for,
    write_token,
)
from xpool.gateway.metrics import GatewayMetrics
from xpool.gateway.server import GatewayServer
from xpool.local.prometheus import LocalPrometheus
from xpool.local.runtime import UP_FILE, EmbeddedXinference, default_state_dir, read_json
from xpool.render.launch import launch_specs
from xpool.validate import load_and_plan


class Stop(Exception):
    """Raised in the main thread by the first SIGINT/SIGTERM."""


def state_dir_for(platform: Platform, override: str | None) -> Path:
    return Path(override) if override else default_state_dir(platform.metadata.name)


@dataclass
class Session:
    """What this run started, so that stopping undoes exactly that."""

    xinference: EmbeddedXinference | None = None
    client: XinferenceClient | None = None
    gateway: GatewayServer | None = None
    prometheus: LocalPrometheus | None = None
    launched: list[str] = field(default_factory=list)
    up_file: Path | None = None

    def stop(self) -> None:
        """Undo what this run started. Every step runs even if an earlier one fails (e.g. the
        terminal or parent process is gone, so writing progress raises BrokenPipeError):
        the embedded Xinference must never outlive `xpool up`."""
        steps: list[tuple[str, Callable[[], None]]] = []
        if self.gateway is not None:
            steps.append(("stopping the gateway", self.gateway.stop))
        if self.client is not None:
            client = self.client
            for uid in self.launched:
                steps.append((f"terminating {uid}", partial(client.terminate, uid, quiet=True)))
            steps.append(("", client.close))
        if self.prometheus is not None and self.prometheus.process is not None:
            steps.append((f"stopping Prometheus (pid {self.prometheus.pid})", self.prometheus.stop))
        if self.xinference is not None and self.xinference.process is not None:
            steps.append((f"stopping Xinference (pid {self.xinference.pid})", self.xinference.stop))
        if self.up_file is not None:
            up_file = self.up_file
            steps.append(("", partial(up_file.unlink, missing_ok=True)))
            steps.append(("", partial((up_file.parent / TOKEN_FILE).unlink, missing_ok=True)))
        for message, step in steps:
            with contextlib.suppress(Exception):
                if message:
                    note(message)
            try:
                step()
            except Exception as exc:  # go on: the remaining steps still free resources
                with contextlib.suppress(Exception):
                    note(f"warning: {message or 'cleanup'} failed: {exc}")


def _install_signals(session: Session) -> None:
    def first(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGINT, second)
        signal.signal(signal.SIGTERM, second)
        raise Stop(signal.Signals(signum).name)

    def second(_signum: int, _frame: Any) -> None:
        proc = session.xinference.process if session.xinference else None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        click.echo("interrupted", err=True)
        os._exit(130)

    signal.signal(signal.SIGINT, first)
    signal.signal(signal.SIGTERM, first)


def _examples(gateway: str, wants: list[Want]) -> list[str]:
    lines = []
    for w in wants:
        if w.model_type == "embedding":
            body: dict[str, Any] = {"model": w.model, "input": "hello"}
            path = "embeddings"
        elif w.model_type == "rerank":
            body = {"model": w.model, "query": "hello", "documents": ["hi", "bye"]}
            path = "rerank"
        else:
            body = {
                "model": w.model,
                "messages": [{"role": "user", "content": "hello"}],
                "max_tokens": 16,
            }
            path = "chat/completions"
        lines.append(
            f"curl {gateway}/v1/{path} -H 'content-type: application/json' "
            f"-d '{json.dumps(body, separators=(',', ':'))}'"
        )
    return lines


def smoke_requests(gateway: str, wants: list[Want]) -> list[str]:
    """One request per model through the gateway; a line per answer, RemoteError if any fails."""
    out = []
    with httpx.Client(base_url=gateway, timeout=120) as http:
        for w in wants:
            if w.model_type == "embedding":
                r = http.post("/v1/embeddings", json={"model": w.model, "input": "hello world"})
                if r.status_code != 200:
                    raise RemoteError(
                        f"smoke: embedding {w.model}: HTTP {r.status_code} {r.text[:200]}"
                    )
                vector = r.json()["data"][0]["embedding"]
                head = ", ".join(f"{x:.4f}" for x in vector[:4])
                out.append(
                    f"{w.model}: embedding of 'hello world' = {len(vector)} floats [{head}, ...] "
                    f"(instance {r.headers.get('x-xpool-instance')})"
                )
            elif w.model_type == "LLM":
                r = http.post(
                    "/v1/chat/completions",
                    json={
                        "model": w.model,
                        "messages": [{"role": "user", "content": "Say hello."}],
                        "max_tokens": 16,
                    },
                )
                if r.status_code != 200:
                    raise RemoteError(f"smoke: chat {w.model}: HTTP {r.status_code} {r.text[:200]}")
                choice = r.json()["choices"][0]
                out.append(
                    f"{w.model}: chat answer to 'Say hello.' = {choice['message']['content']!r} "
                    f"(finish_reason {choice.get('finish_reason')}, "
                    f"instance {r.headers.get('x-xpool-instance')})"
                )
    return out


@click.command("up")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Embedded Xinference home, log and pid file [default: $XDG_STATE_HOME/xpool/<platform>].",
)
@click.option(
    "--smoke",
    is_flag=True,
    help="Bring everything up, send one request per model through the gateway, print the "
    "answers, and stop.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Seconds to wait for each instance to become ready.",
)
@click.option(
    "--prometheus/--no-prometheus",
    "with_prometheus",
    default=True,
    show_default=True,
    help="Start a local Prometheus scraping the gateway (when the `prometheus` binary is "
    "installed), for `xpool reconcile` to read load from.",
)
def up_command(
    file: str, state_dir: str | None, smoke: bool, timeout: float, with_prometheus: bool
) -> None:
    """Run the platform here: Xinference, the models' instances and the gateway, until Ctrl-C."""
    loaded, plan = load_and_plan(file)
    platform = loaded.platform
    api_key = api_key_from_env(platform)
    specs = launch_specs(platform, plan, loaded.architectures)
    wants = wants_for(platform, specs, at_least=1)
    by_version, canaries = gateway_wants(platform, specs, wants)
    state = state_dir_for(platform, state_dir)
    embedded = platform.spec.xinference.endpoint == "embedded"

    session = Session()
    _install_signals(session)
    stopped_by = None
    try:
        if embedded:
            from xpool.local.models import resolve_local_sources

            state.mkdir(parents=True, exist_ok=True)
            wants = resolve_local_sources(wants, state, platform)
            canaries = resolve_local_sources(canaries, state, platform)
            by_version = dict(
                zip(
                    by_version,
                    resolve_local_sources(list(by_version.values()), state, platform),
                    strict=True,
                )
            )
            session.xinference = EmbeddedXinference(state)
            endpoint = session.xinference.start(note)
        else:
            endpoint = platform.spec.xinference.endpoint
        session.client = XinferenceClient(endpoint, api_key)
        version = session.client.check_version()
        note(f"Xinference {version} at {endpoint}")

        table = table_for(platform)
        metrics = GatewayMetrics(table)
        limits = model_limits(platform)
        state.mkdir(parents=True, exist_ok=True)
        token_file = write_token(state)
        scaler = Scaler(
            session.client,
            table,
            metrics,
            by_version,
            limits,
            drain_timeout=platform.spec.autoscaling.drain_timeout,
            launch_timeout=timeout,
            log=note,
            on_launched=lambda uid: session.launched.append(uid),
            on_terminated=lambda uid: uid in session.launched and session.launched.remove(uid),
        )
        gw = platform.spec.gateway
        session.gateway = GatewayServer(
            create_app(
                table,
                endpoint,
                api_key=api_key,
                timeout=gw.request_timeout,
                client_id_header=gw.client_id_header,
                metrics=metrics,
                admin=scaler,
                admin_token=token_file.read_text().strip(),
            ),
            gw.listen,
        )
        session.gateway.start()
        gateway = session.gateway.url
        note(f"gateway listening on {gateway}")
        prometheus = None
        if with_prometheus and shutil.which("prometheus"):
            session.prometheus = LocalPrometheus(state / "prometheus").start()
            session.prometheus.set_targets("xpool-gateway", [gw_hostport(gateway)])
            prometheus = session.prometheus.url
            note(f"Prometheus at {prometheus} scraping the gateway")
        elif with_prometheus:
            note(
                "Prometheus is not installed (apt-get install -y prometheus): the reconciler "
                "will not see load"
            )
        session.up_file = state / UP_FILE
        session.up_file.write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "platform": platform.metadata.name,
                    "endpoint": endpoint,
                    "gateway": gateway,
                    "adminTokenFile": str(token_file),
                    "prometheus": prometheus,
                    "xinferencePid": session.xinference.pid if session.xinference else None,
                }
            )
            + "\n"
        )

        before = {i.uid for i in session.client.instances()}

        def ready(want: Want, uid: str) -> None:
            lim = limits[want.model]
            table.add(
                want.model,
                want.model_type,
                uid,
                version=want.version,
                tier=lim.tier,
                limit=lim.request_limit,
            )
            if uid not in before:
                session.launched.append(uid)

        result = ensure_instances(
            session.client, [*wants, *canaries], timeout=timeout, progress=note, on_ready=ready
        )
        note(
            f"instances: {len(result.launched) + len(result.replaced)} launched, "
            f"{len(result.adopted)} adopted"
        )
        if smoke:
            for line in smoke_requests(gateway, wants):
                click.echo(line)
            return
        click.echo(f"{platform.metadata.name} is serving on {gateway}; try (Ctrl-C stops):")
        for line in _examples(gateway, wants):
            click.echo(f"  {line}")
        sys.stdout.flush()
        while True:
            proc = session.xinference.process if session.xinference else None
            if proc is not None and proc.poll() is not None:
                raise RemoteError(
                    f"the embedded Xinference exited (code {proc.returncode}); see "
                    f"{session.xinference.log_file}"  # type: ignore[union-attr]
                )
            time.sleep(1)
    except Stop as exc:
        stopped_by = str(exc)
    finally:
        if stopped_by:
            note(f"{stopped_by}: stopping")
        session.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        note("stopped")


def gw_hostport(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


def gateway_instances(platform: Platform, state_dir: str | None) -> tuple[str | None, list[dict]]:
    """(gateway URL, its /-/admin/instances rows) of the `xpool up` running for this platform,
    or (None, []) when none answered: read-only views show what they can without it."""
    import httpx

    info = read_up_file(state_dir_for(platform, state_dir))
    if not info or not info.get("adminTokenFile"):
        return None, []
    try:
        token = Path(info["adminTokenFile"]).read_text().strip()
        r = httpx.get(
            f"{info['gateway']}/-/admin/instances",
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        r.raise_for_status()
        return str(info["gateway"]), list(r.json()["instances"])
    except (OSError, httpx.HTTPError, ValueError, KeyError, TypeError):
        return None, []


def read_up_file(state: Path) -> dict | None:
    info = read_json(state / UP_FILE)
    if info is None:
        return None
    from xpool.local.runtime import pid_alive

    return info if pid_alive(int(info.get("pid", 0))) else None
