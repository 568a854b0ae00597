"""Kubernetes transport: configuration, requests with bounded retries, discovery.

Built on the official `kubernetes` client, but only its configuration loaders and its
`ApiClient` (authentication, TLS, connection pooling) are used; every request goes through
`KubeClient.request`, which owns retries and turns failures into xpool errors. The
configuration is always passed explicitly: nothing here touches the client's process-global
default configuration.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
)

from xpool.errors import RemoteError, XpoolError

Log = Callable[[str], None]

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
APPLY_PATCH = "application/apply-patch+yaml"


class KubeConfigError(XpoolError):
    """The connection settings are unusable (missing file, unknown context): exit 2."""

    exit_code = 2


class KubeStatusError(Exception):
    """A non-2xx answer that is not retried (or no longer): callers decide what it means."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.reason = str(body.get("reason") or "")
        self.message = str(body.get("message") or "").strip()
        super().__init__(f"{status} {self.reason}: {self.message}".strip())

    def summary(self) -> str:
        text = f"HTTP {self.status}"
        if self.reason:
            text += f" {self.reason}"
        if self.message:
            text += f": {self.message}"
        return text


class _Transient(Exception):
    """Wraps a retryable failure (status or connection) so tenacity can see it."""

    def __init__(self, status: KubeStatusError | None, connection: Exception | None = None) -> None:
        self.status = status
        self.connection = connection
        super().__init__(str(status or connection))

    @property
    def retry_after(self) -> float | None:
        if self.status is None or self.status.status != 429:
            return None
        value = self.status.headers.get("retry-after") or self.status.headers.get("Retry-After")
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: `attempts` tries within `max_seconds`, exponential backoff with jitter.

    Tests shorten it through XPOOL_KUBE_RETRY_ATTEMPTS, XPOOL_KUBE_RETRY_MAX_SECONDS,
    XPOOL_KUBE_RETRY_BASE_SECONDS and XPOOL_KUBE_TIMEOUT_SECONDS.
    """

    attempts: int = 5
    max_seconds: float = 30.0
    base_seconds: float = 0.5
    cap_seconds: float = 8.0
    timeout_seconds: float = 30.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        def num(name: str, default: float) -> float:
            raw = os.environ.get(name)
            if raw is None or raw == "":
                return default
            try:
                return float(raw)
            except ValueError:
                raise KubeConfigError(f"{name}={raw!r} is not a number") from None

        return cls(
            attempts=max(1, int(num("XPOOL_KUBE_RETRY_ATTEMPTS", cls.attempts))),
            max_seconds=num("XPOOL_KUBE_RETRY_MAX_SECONDS", cls.max_seconds),
            base_seconds=num("XPOOL_KUBE_RETRY_BASE_SECONDS", cls.base_seconds),
            timeout_seconds=num("XPOOL_KUBE_TIMEOUT_SECONDS", cls.timeout_seconds),
        )


@dataclass(frozen=True)
class Connection:
    """Where to connect: explicit flags first, then KUBECONFIG, in-cluster, ~/.kube/config."""

    kubeconfig: str | None = None
    context: str | None = None


def load_configuration(conn: Connection) -> tuple[k8s_client.Configuration, str]:
    """A fresh `Configuration` and a description of its source (for messages)."""
    cfg = k8s_client.Configuration()
    env_paths = os.environ.get("KUBECONFIG", "")
    if conn.kubeconfig:
        paths, source = conn.kubeconfig, f"--kubeconfig {conn.kubeconfig}"
    elif env_paths.strip(os.pathsep):
        paths, source = env_paths, f"KUBECONFIG={env_paths}"
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        if conn.context:
            raise KubeConfigError(
                "--context needs a kubeconfig (pass --kubeconfig or set KUBECONFIG); "
                "inside a cluster xpool uses the pod's service account"
            )
        try:
            k8s_config.load_incluster_config(client_configuration=cfg)
        except ConfigException as exc:
            raise KubeConfigError(f"in-cluster configuration: {exc}") from None
        _harden(cfg)
        return cfg, "in-cluster service account"
    else:
        default = Path("~/.kube/config").expanduser()
        if not default.is_file():
            raise KubeConfigError(
                "no Kubernetes configuration: pass --kubeconfig FILE, set KUBECONFIG, "
                "or run inside a cluster"
            )
        paths, source = str(default), str(default)

    # KUBECONFIG semantics (kubernetes.config.kube_config.KubeConfigMerger): files separated by
    # os.pathsep, merged in order, the first definition of a cluster/context/user name wins;
    # missing files are skipped, so say which ones are missing when none exists.
    listed = [p for p in paths.split(os.pathsep) if p]
    existing = [p for p in listed if Path(p).expanduser().is_file()]
    if not existing:
        raise KubeConfigError(f"{source}: no such kubeconfig file: {', '.join(listed)}")
    try:
        k8s_config.load_kube_config(
            config_file=os.pathsep.join(existing),
            context=conn.context,
            client_configuration=cfg,
            persist_config=False,
        )
    except ConfigException as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if conn.context and f"name {conn.context} in" in message and "contexts" in message:
            message = f"no context named {conn.context!r}"
        raise KubeConfigError(f"{source}: {message}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KubeConfigError(f"{source}: cannot load the kubeconfig: {exc}") from None
    _harden(cfg)
    return cfg, source


def _harden(cfg: k8s_client.Configuration) -> None:
    # Retries are ours (tenacity, visible in logs); urllib3's silent ones are switched off.
    cfg.retries = False
    # TLS verification is never switched off here; a kubeconfig that asks for
    # insecure-skip-tls-verify gets what it asked for, as with kubectl.


@dataclass(frozen=True)
class Resource:
    """A served resource: how to reach objects of one apiVersion/kind."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0] if "/" in self.api_version else ""

    def base(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    def collection(self, namespace: str | None) -> str:
        if self.namespaced and namespace:
            return f"{self.base()}/namespaces/{namespace}/{self.plural}"
        return f"{self.base()}/{self.plural}"

    def path(self, name: str, namespace: str | None) -> str:
        return f"{self.collection(namespace)}/{name}"


@dataclass
class KubeClient:
    """One cluster endpoint: explicit configuration, retries, discovery cache."""

    configuration: k8s_client.Configuration
    source: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    log: Log = field(default=lambda _msg: None)
    _api: k8s_client.ApiClient | None = None
    _discovered: dict[str, dict[str, Resource] | None] = field(default_factory=dict)

    @classmethod
    def connect(
        cls, conn: Connection, policy: RetryPolicy | None = None, log: Log | None = None
    ) -> KubeClient:
        cfg, source = load_configuration(conn)
        return cls(cfg, source, policy or RetryPolicy.from_env(), log or (lambda _m: None))

    @property
    def host(self) -> str:
        return str(self.configuration.host)

    @property
    def api(self) -> k8s_client.ApiClient:
        if self._api is None:
            self._api = k8s_client.ApiClient(configuration=self.configuration)
            self._api.user_agent = "xpool"
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- requests ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One API call with bounded retries; raise KubeStatusError for a final non-2xx
        answer that the caller may interpret, RemoteError when retries ran out."""
        url_path = path + ("?" + urlencode(query) if query else "")
        # The REST client JSON-encodes bodies of any JSON content type itself; other types
        # (apply-patch+yaml) go through as the text given: JSON (which is YAML) with every
        # character as itself, since YAML parsers do not pair JSON's surrogate escapes of
        # characters beyond U+FFFF (an emoji in a note would be stored broken or refused).
        payload: Any = None
        if body is not None and "json" in content_type:
            payload = body
        elif body is not None:
            payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False)

        def once() -> dict[str, Any]:
            return self._once(method, url_path, payload, content_type)

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.policy.attempts)
            | stop_after_delay(self.policy.max_seconds),
            wait=self._wait,
            before_sleep=lambda state: self._log_retry(state, method, what),
            reraise=True,
        )
        try:
            return retrying(once)
        except _Transient as exc:
            attempts = retrying.statistics.get("attempt_number", self.policy.attempts)
            if exc.connection is not None:
                raise RemoteError(
                    f"cannot reach the Kubernetes API at {self.host}: {_reason(exc.connection)}; "
                    f"check --kubeconfig/--context (after {attempts} attempts, {what})"
                ) from None
            assert exc.status is not None
            raise RemoteError(
                f"{what}: {method} failed after {attempts} attempts: {exc.status.summary()}"
            ) from None

    def _once(self, method: str, url_path: str, payload: Any, ctype: str) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = ctype
        _, url, headers, body, _ = self.api.param_serialize(
            method, url_path, header_params=headers, body=payload, auth_settings=["BearerToken"]
        )
        try:
            response = self.api.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=(
                    min(10.0, self.policy.timeout_seconds),
                    self.policy.timeout_seconds,
                ),
            )
            raw = response.read()
        except urllib3.exceptions.HTTPError as exc:
            # Connection refused/reset and timeouts. Server-side apply is idempotent; a DELETE
            # that did happen answers 404 on retry, which the pruner accepts.
            raise _Transient(None, exc) from None
        except ApiException as exc:  # TLS failures surface as status 0
            raise RemoteError(
                f"cannot talk to the Kubernetes API at {self.host}: "
                f"{str(exc.reason).splitlines()[-1]}; check --kubeconfig/--context"
            ) from None
        status = int(response.status)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"message": raw[:200].decode("utf-8", "replace")}
        if not isinstance(data, dict):
            data = {"items": data}
        if 200 <= status < 300:
            return data
        err = KubeStatusError(status, data, dict(response.headers))
        if status in RETRYABLE_STATUS:
            raise _Transient(err)
        raise err

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return min(exc.retry_after, self.policy.max_seconds)
        # exponential from base_seconds, capped, plus up to base_seconds of jitter (computed
        # here: tenacity renamed the parameters of its own version between 8.x and 9.x)
        base, attempt = self.policy.base_seconds, max(1, state.attempt_number)
        return min(self.policy.cap_seconds, base * 2 ** (attempt - 1) + random.uniform(0, base))

    def _log_retry(self, state: RetryCallState, method: str, what: str) -> None:
        exc = state.outcome.exception() if state.outcome else None
        cause = (
            exc.status.summary()
            if isinstance(exc, _Transient) and exc.status is not None
            else _reason(exc.connection if isinstance(exc, _Transient) else exc)
        )
        delay = state.next_action.sleep if state.next_action else 0.0
        self.log(
            f"retry: {method} {what}: {cause}; waiting {delay:.1f} s "
            f"(attempt {state.attempt_number + 1} of {self.policy.attempts})"
        )

    # -- discovery --------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource | None:
        """The served resource for apiVersion/kind, or None when the cluster does not serve it."""
        if api_version not in self._discovered:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                listing = self.request("GET", path, what=f"discovery of {api_version}")
            except KubeStatusError as exc:
                if exc.status == 404:
                    self._discovered[api_version] = None
                    return None
                raise RemoteError(f"discovery of {api_version}: {exc.summary()}") from None
            found: dict[str, Resource] = {}
            for item in listing.get("resources") or []:
                name = str(item.get("name", ""))
                if not name or "/" in name:  # subresources (status, scale, ...)
                    continue
                found.setdefault(
                    str(item.get("kind")),
                    Resource(
                        api_version, str(item.get("kind")), name, bool(item.get("namespaced"))
                    ),
                )
            self._discovered[api_version] = found
        served = self._discovered[api_version]
        return None if served is None else served.get(kind)


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    inner = getattr(exc, "reason", None)
    if isinstance(inner, BaseException):
        exc = inner
    text = str(exc) or type(exc).__name__
    text = re.sub(r"<[^>]* object at 0x[0-9a-f]+>:?\s*", "", text)
    text = re.sub(r"^HTTPS?Connection(Pool)?\([^)]*\):\s*", "", text)
    text = re.sub(r"^\(|\)$", "", text.strip())
    return text.splitlines()[0] if text else type(exc).__name__
