"""`xpool batch submit|list|status|cancel|results`: batch work through the gateway's
OpenAI-compatible Batch API.

The gateway is the running `xpool up`'s (found through its state directory) or the one
`--gateway` names (a cluster's, through its Service, an Ingress or a port-forward). When the
platform file sets `spec.gateway.apiKeysEnv`, the first key in that variable is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xpool.actions.batch_requests import BATCH_ENDPOINTS, default_endpoint, prepare_requests
from xpool.adapters.batch_api import BatchApi
from xpool.errors import InputError, Problem, XpoolError
from xpool.gateway.wiring import client_keys
from xpool.local.up_state import read_up_state, state_dir_for
from xpool.resolve import ResolvedPlatform, resolve_platform

FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
MAX_REQUEST_FILE = 512 * 1024 * 1024  # read no further: the gateway's own limit is lower


@dataclass(frozen=True)
class Connection:
    file: str
    gateway: str | None = None  # default: the running `xpool up`'s gateway
    state_dir: str | None = None


@dataclass(frozen=True)
class SubmitOptions:
    connection: Connection
    model: str
    requests: str  # the JSONL file
    endpoint: str | None = None  # default: from the model's type
    metadata: dict[str, str] = field(default_factory=dict)
    wait: bool = False
    poll: float = 2.0  # seconds between status reads while waiting

    def validate(self) -> None:
        if self.endpoint is not None and self.endpoint not in BATCH_ENDPOINTS:
            raise InputError(
                [
                    Problem(
                        "--endpoint",
                        "",
                        f"{self.endpoint}: give one of {', '.join(BATCH_ENDPOINTS)}",
                    )
                ]
            )
        if len(self.metadata) > 16:
            raise InputError([Problem("--metadata", "", "at most 16 pairs (as OpenAI allows)")])


class BatchEnded(XpoolError):
    """A waited-for batch ended without completing (exit 1, like a failed check)."""


def open_api(connection: Connection) -> BatchApi:
    return connect(resolve_platform(connection.file), connection)


def connect(resolved: ResolvedPlatform, connection: Connection) -> BatchApi:
    """A client of the platform's gateway; exit 2 saying how to name one when none runs."""
    gateway = connection.gateway
    if gateway is None:
        state_dir = state_dir_for(resolved.name, connection.state_dir)
        up = read_up_state(state_dir)
        if up is None:
            raise InputError(
                [
                    Problem(
                        connection.file,
                        "",
                        f"no running `xpool up` for platform {resolved.name} (state {state_dir}); "
                        "start it, or pass --gateway with the URL of the platform's gateway",
                    )
                ]
            )
        gateway = up.gateway
    keys = client_keys(resolved.platform)
    return BatchApi(gateway, keys[0] if keys else None)


def _endpoint(resolved: ResolvedPlatform, options: SubmitOptions) -> str:
    index, model = resolved.model(options.model)
    endpoint = options.endpoint or default_endpoint(model.type)
    if endpoint is None:
        raise InputError(
            [
                resolved.problem(
                    ("spec", "models", index, "type"),
                    f"{model.name} is a {model.type} model; the Batch API serves chat, "
                    "completion and embedding models",
                )
            ]
        )
    return endpoint


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_REQUEST_FILE + 1)
    except OSError as exc:
        raise InputError([Problem(path, "", f"cannot read it: {exc.strerror}")]) from None
    if len(data) > MAX_REQUEST_FILE:
        raise InputError([Problem(path, "", f"over {MAX_REQUEST_FILE >> 20} MiB; split it")])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            [
                Problem(
                    f"{path}:{line}:1",
                    "",
                    "not UTF-8; save it as UTF-8",
                )
            ]
        ) from None


def submit(
    options: SubmitOptions,
    *,
    on_note: Callable[[str], None],
    on_progress: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """The batch object: as created, or as it ended when waiting (BatchEnded unless completed)."""
    resolved = resolve_platform(options.connection.file)
    endpoint = _endpoint(resolved, options)
    prepared = prepare_requests(options.requests, _read(options.requests), options.model, endpoint)
    with connect(resolved, options.connection) as api:
        if prepared.unparsable:
            shown = ", ".join(str(n) for n in prepared.unparsable[:10])
            on_note(
                f"{options.requests}: line(s) {shown}{' ...' if len(prepared.unparsable) > 10 else ''} "
                "are not JSON objects; they will be in the batch's error file"
            )
        uploaded = api.upload(Path(options.requests).name, prepared.content)
        batch = api.create(uploaded["id"], endpoint, options.metadata)
        on_note(f"batch {batch['id']}: {prepared.lines} request(s) to {options.model} {endpoint}")
        if not options.wait:
            return batch
        return wait_for(api, batch, on_progress=on_progress, poll=options.poll)


def wait_for(
    api: BatchApi,
    batch: dict[str, Any],
    *,
    on_progress: Callable[[dict[str, Any]], None],
    poll: float,
) -> dict[str, Any]:
    while True:
        on_progress(batch)
        if batch["status"] in FINAL:
            break
        time.sleep(poll)
        batch = api.get(batch["id"])
    if batch["status"] != "completed":
        counts = batch.get("request_counts") or {}
        raise BatchEnded(
            f"batch {batch['id']} ended {batch['status']} "
            f"({counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed of "
            f"{counts.get('total', 0)}); `xpool batch results --errors` shows why"
        )
    return batch


def status(connection: Connection, batch_id: str) -> dict[str, Any]:
    with open_api(connection) as api:
        return api.get(batch_id)


def cancel(connection: Connection, batch_id: str) -> dict[str, Any]:
    with open_api(connection) as api:
        return api.cancel(batch_id)


def list_batches(connection: Connection, limit: int, after: str | None) -> dict[str, Any]:
    with open_api(connection) as api:
        return api.page(limit, after)


def results(connection: Connection, batch_id: str, *, errors: bool) -> bytes:
    """The batch's output file (or, with `errors`, its error file); empty when it has none."""
    with open_api(connection) as api:
        batch = api.get(batch_id)
        if batch["status"] not in FINAL:
            raise InputError(
                [
                    Problem(
                        batch_id,
                        "",
                        f"the batch is {batch['status']}; its results exist once it has ended "
                        "(`xpool batch status`, or submit with --wait)",
                    )
                ]
            )
        file_id = batch.get("error_file_id" if errors else "output_file_id")
        return api.content(file_id) if file_id else b""
