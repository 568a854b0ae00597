"""Xinference over its REST API: version check, custom models, one model UID per instance.

Why httpx and not `xinference-client`: the client is synchronous `requests` code that raises a
bare RuntimeError carrying only the response text, so 5xx (retry) cannot be told from 4xx
(do not), it has no per-call timeout, and its `launch_model` blocks without progress. The few
endpoints xpool needs are stable REST routes (read from xinference 4.1.0's
api/routers/models.py); httpx is already a core dependency.

Instances: each is one model UID `<model>--<version>--<n>` launched with `replica: 1`
(DESIGN.md fact 1: Xinference cannot drain a replica, so xpool never asks it to run two).
`ensure_instances` makes exactly the desired UIDs exist, adopting running ones, so it is
safe to re-run after any interruption. The API key is sent as a bearer token and never
printed or logged.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from xpool.config.models import Platform
from xpool.errors import InputError, Problem, RemoteError
from xpool.render.instances import Want

MIN_VERSION = (3, 2, 0)  # replica endpoints exist from 3.2.0 (DESIGN.md fact 2)

Progress = Callable[[str], None]
# Where one instance is launched: the worker's address and its device indices (None: let the
# worker choose; always None on a CPU worker, which refuses any gpu_idx)
Pin = tuple[str, list[int] | None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Instance:
    """One running model UID as Xinference reports it (GET /v1/models/instances)."""

    uid: str
    model_name: str
    status: str  # CREATING | LOADING | READY | UPDATING | TERMINATING | ERROR
    workers: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.status == "READY"

    @property
    def loading(self) -> bool:
        return self.status in ("CREATING", "LOADING", "UPDATING")


@dataclass(frozen=True)
class Worker:
    """One worker the supervisor lists (GET /v1/workers), with the instances it runs and the
    device indices each holds there (none on a CPU worker)."""

    address: str  # host:port: a launch's `worker_ip` takes it to name exactly this worker
    instances: dict[str, tuple[int, ...]]


def _instance_of(replica_uid: str) -> str:
    """`chat--1--2-rep0` -> `chat--1--2` (every xpool instance is replica 0 of its UID)."""
    return re.sub(r"-rep\d+$", "", replica_uid)


class _Retryable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", text)[:3]
    return tuple(int(p) for p in parts)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return str(detail)[:300]


class XinferenceClient:
    """A small synchronous client for the supervisor's REST API."""

    def __init__(
        self,
        endpoint: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        attempts: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.endpoint, headers=headers, timeout=timeout, transport=transport
        )
        self._attempts = attempts

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> XinferenceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ---------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """One call; connection errors and 5xx are retried (idempotent calls only), 4xx never.
        Returns the response of the last attempt (callers decide on 4xx); raises RemoteError
        when the server could not be reached or kept failing."""

        def once() -> httpx.Response:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                raise _Retryable(f"cannot reach Xinference at {self.endpoint}: {exc}") from None
            if response.status_code >= 500:
                raise _Retryable(
                    f"Xinference {method} {path}: HTTP {response.status_code}: {_detail(response)}"
                )
            return response

        if not idempotent:
            try:
                return once()
            except _Retryable as exc:
                raise RemoteError(str(exc)) from None
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=0.25, max=4),
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
            reraise=True,
        )
        try:
            return retrying(once)
        except (_Retryable, RetryError) as exc:
            raise RemoteError(f"{exc} (after {self._attempts} attempts)") from None

    def _ok(self, response: httpx.Response, what: str) -> httpx.Response:
        if response.status_code == 401 or response.status_code == 403:
            raise RemoteError(
                f"Xinference at {self.endpoint} refused {what} (HTTP {response.status_code}): "
                "check the API key named by spec.xinference.apiKeyEnv"
            )
        if response.status_code >= 400:
            raise RemoteError(
                f"Xinference {what}: HTTP {response.status_code}: {_detail(response)}"
            )
        return response

    # -- cluster -------------------------------------------------------------------------------

    def version(self) -> str:
        response = self._ok(self._request("GET", "/v1/cluster/version"), "version check")
        return str(response.json().get("version", ""))

    def check_version(self) -> str:
        version = self.version()
        if _version_tuple(version) < MIN_VERSION:
            need = ".".join(map(str, MIN_VERSION))
            raise RemoteError(
                f"Xinference at {self.endpoint} is {version or 'of unknown version'}; xpool "
                f"needs {need} or newer (replica endpoints); upgrade the supervisor"
            )
        return version

    def healthy(self) -> bool:
        try:
            return self._http.get("/v1/cluster/version", timeout=2).status_code < 500
        except httpx.TransportError:
            return False

    # -- registrations -----------------------------------------------------------------------

    def registration(self, model_type: str, name: str) -> dict[str, Any] | None:
        response = self._request("GET", f"/v1/model_registrations/{model_type}/{name}")
        if response.status_code == 400 and "not found" in _detail(response).lower():
            return None
        return self._ok(response, f"get registration {name}").json()

    def register(self, model_type: str, body: dict[str, Any]) -> None:
        payload = {"model": json.dumps(body), "persist": True, "worker_ip": None}
        response = self._request(
            "POST", f"/v1/model_registrations/{model_type}", json=payload, idempotent=False
        )
        self._ok(response, f"register {body['model_name']}")

    def unregister(self, model_type: str, name: str) -> None:
        response = self._request("DELETE", f"/v1/model_registrations/{model_type}/{name}")
        self._ok(response, f"unregister {name}")

    def ensure_registered(
        self, model_type: str, body: dict[str, Any], running: Iterable[Instance] = ()
    ) -> str:
        """Register `body` once: 'unchanged' when an identical registration exists,
        'registered' when there was none, 'replaced' when a different one was swapped (only
        while no instance of it runs; otherwise RemoteError says what to do)."""
        name = body["model_name"]
        current = self.registration(model_type, name)
        if current is None:
            self.register(model_type, body)
            return "registered"
        if same_registration(body, current):
            return "unchanged"
        busy = sorted(i.uid for i in running if i.model_name == name)
        if busy:
            raise RemoteError(
                f"custom model {name} is registered with a different spec and instances "
                f"{', '.join(busy)} run it; terminate them (or give the version a new number) "
                "and re-run"
            )
        self.unregister(model_type, name)
        self.register(model_type, body)
        return "replaced"

    # -- instances ---------------------------------------------------------------------------

    def instances(self) -> list[Instance]:
        response = self._ok(self._request("GET", "/v1/models/instances"), "list instances")
        out = []
        for info in response.json():
            replicas = info.get("replica_statuses") or []
            errors = [r.get("error_message") for r in replicas if r.get("error_message")]
            out.append(
                Instance(
                    uid=info["model_uid"],
                    model_name=info.get("model_name") or "",
                    status=str(info.get("status") or "UNKNOWN"),
                    workers=tuple(
                        sorted({r["worker_address"] for r in replicas if r.get("worker_address")})
                    ),
                    error=errors[0] if errors else None,
                )
            )
        return sorted(out, key=lambda i: i.uid)

    def workers(self) -> list[Worker]:
        """The workers registered with the supervisor, by address."""
        response = self._ok(self._request("GET", "/v1/workers"), "list workers")
        out = []
        for info in response.json():
            models = info.get("models") or {}
            out.append(
                Worker(
                    address=str(info.get("work-ip") or ""),
                    instances={
                        _instance_of(str(uid)): tuple(int(d) for d in m.get("accelerators") or ())
                        for uid, m in models.items()
                        if isinstance(m, dict)
                    },
                )
            )
        return sorted(out, key=lambda w: w.address)

    def instance(self, uid: str) -> Instance | None:
        return next((i for i in self.instances() if i.uid == uid), None)

    def submit(
        self,
        launch: dict[str, Any],
        uid: str,
        *,
        worker_ip: str | None = None,
        gpu_idx: list[int] | None = None,
        progress: Progress = _quiet,
    ) -> None:
        """Ask Xinference to start loading one instance (`replica: 1`) as `uid`; returns at
        once (`wait_ready=false`). A UID that already exists is not launched twice."""
        body = {k: v for k, v in launch.items() if k not in ("worker_ip", "gpu_idx")}
        body.update(model_uid=uid, replica=1)
        if worker_ip is not None:
            body["worker_ip"] = worker_ip
        if gpu_idx is not None:
            body["gpu_idx"] = gpu_idx
        progress(f"launching {uid} ({body.get('model_name')}, {body.get('model_engine')})")
        try:
            response = self._request(
                "POST", "/v1/models", params={"wait_ready": "false"}, json=body, idempotent=False
            )
            if response.status_code >= 400 and "already in the model list" not in _detail(response):
                self._ok(response, f"launch {uid}")
        except RemoteError:
            self.terminate(uid, quiet=True)
            raise

    def launch(
        self,
        launch: dict[str, Any],
        uid: str,
        *,
        worker_ip: str | None = None,
        gpu_idx: list[int] | None = None,
        timeout: float = 600.0,
        progress: Progress = _quiet,
    ) -> Instance:
        """Launch one instance and wait until it is ready. A launch that fails or times out
        is terminated, so a re-run starts clean."""
        self.submit(launch, uid, worker_ip=worker_ip, gpu_idx=gpu_idx, progress=progress)
        return self.wait_launched(uid, timeout=timeout, progress=progress)

    def wait_launched(self, uid: str, *, timeout: float, progress: Progress = _quiet) -> Instance:
        """wait_ready, terminating `uid` when it fails or times out."""
        try:
            return self.wait_ready(uid, timeout=timeout, progress=progress)
        except RemoteError:
            self.terminate(uid, quiet=True)
            raise

    def wait_ready(self, uid: str, *, timeout: float, progress: Progress = _quiet) -> Instance:
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            inst = self.instance(uid)
            if inst is None:
                raise RemoteError(f"instance {uid} disappeared while loading")
            if inst.ready:
                progress(f"{uid} ready on {', '.join(inst.workers) or 'a worker'}")
                return inst
            if inst.status in ("ERROR", "TERMINATED", "TERMINATING"):
                raise RemoteError(f"instance {uid} failed to load: {inst.error or inst.status}")
            if time.monotonic() > deadline:
                raise RemoteError(f"instance {uid} not ready after {timeout:.0f} s")
            state = f"{inst.status.lower()}{self._progress_suffix(uid)}"
            if state != last:
                progress(f"{uid}: {state}")
                last = state
            time.sleep(0.5)

    def _progress_suffix(self, uid: str) -> str:
        try:
            response = self._http.get(f"/v1/models/{uid}/progress", timeout=5)
            fraction = float(response.json().get("progress", 0.0))
        except (httpx.HTTPError, ValueError, AttributeError):
            return ""
        return f" {fraction:.0%}"

    def terminate(self, uid: str, *, quiet: bool = False) -> bool:
        """Terminate `uid`; False when it was not running. `quiet` swallows remote errors
        (cleanup after a failure that is already being reported)."""
        try:
            response = self._request("DELETE", f"/v1/models/{uid}")
            if response.status_code == 400 and "not found" in _detail(response).lower():
                return False
            self._ok(response, f"terminate {uid}")
            return True
        except RemoteError:
            if quiet:
                return False
            raise


def same_registration(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Every field we send equals Xinference's (it adds defaults; None matches missing)."""

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, dict):
            return isinstance(b, dict) and all(same(v, b.get(k)) for k, v in a.items())
        if isinstance(a, list):
            return (
                isinstance(b, list)
                and len(a) == len(b)
                and all(same(x, y) for x, y in zip(a, b, strict=True))
            )
        if a is None:
            return b is None
        return a == b or str(a) == str(b)

    return same(ours, theirs)


# -- convergence -------------------------------------------------------------------------------


@dataclass
class EnsureResult:
    registered: dict[str, str] = field(default_factory=dict)  # model name -> outcome
    adopted: list[str] = field(default_factory=list)
    launched: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # found broken, terminated, relaunched

    @property
    def uids(self) -> list[str]:
        return sorted({*self.adopted, *self.launched, *self.replaced})


def ensure_instances(
    client: XinferenceClient,
    wants: Iterable[Want],
    *,
    timeout: float = 600.0,
    progress: Progress = _quiet,
    on_ready: Callable[[Want, str], None] | None = None,
    place: Callable[[Want, str], Pin | None] | None = None,
) -> EnsureResult:
    """Make exactly the wanted UIDs exist and be ready: register each version's custom model
    (idempotent), adopt running UIDs, wait for ones still loading, relaunch failed ones,
    launch missing ones. Never launches a UID that exists, so a re-run after any interruption
    (xpool or Xinference killed mid-way) converges without duplicates.

    Only the UIDs named by `wants` are touched: extra UIDs of our scheme (n > count, or
    versions no longer wanted) are left for the reconciler, which drains before terminating.
    `on_ready(want, uid)` is called as each instance becomes ready (e.g. to route to it);
    `place(want, uid)` names the worker (and devices) a missing UID is launched on."""
    result = EnsureResult()
    wants = list(wants)
    running = {i.uid: i for i in client.instances()}
    for want in wants:
        name = want.registration["model_name"]
        result.registered[name] = client.ensure_registered(
            want.model_type, want.registration, running.values()
        )
    # Submit every missing launch first so that instances load side by side, then wait for
    # each in order. Each UID is launched only when Xinference does not list it.
    pending: list[tuple[Want, str, bool]] = []  # (want, uid, launched by this call)
    for want in wants:
        for uid in want.uids():
            inst = running.get(uid)
            if inst is not None and inst.status == "ERROR":
                progress(f"{uid} is in error ({inst.error or 'no detail'}): relaunching")
                client.terminate(uid, quiet=True)
                inst = None
                result.replaced.append(uid)
            if inst is None:
                pin = place(want, uid) if place is not None else None
                worker_ip, gpu_idx = pin if pin is not None else (None, None)
                client.submit(
                    want.launch, uid, worker_ip=worker_ip, gpu_idx=gpu_idx, progress=progress
                )
                pending.append((want, uid, True))
            else:
                if inst.ready:
                    progress(f"{uid} already running: adopted")
                else:
                    progress(f"{uid} is {inst.status.lower()}: waiting")
                pending.append((want, uid, False))
    for want, uid, launched in pending:
        if launched:
            client.wait_launched(uid, timeout=timeout, progress=progress)
            if uid not in result.replaced:
                result.launched.append(uid)
        else:
            client.wait_ready(uid, timeout=timeout, progress=progress)
            result.adopted.append(uid)
        if on_ready is not None:
            on_ready(want, uid)
    return result


def api_key_from_env(platform: Platform) -> str | None:
    """The API key named by spec.xinference.apiKeyEnv (never printed); exit 2 if unset."""
    name = platform.spec.xinference.api_key_env
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise InputError(
            [
                Problem(
                    "environment",
                    "spec.xinference.apiKeyEnv",
                    f"{name} is not set; export the Xinference API key as {name}",
                )
            ]
        )
    return value
