"""What an action touches outside itself, passed in (as Helm's action.Configuration is):
the Kubernetes connection, clients for Xinference and Prometheus, the clock and the log.

Production code builds one from the command's flags; a test builds one that points at the
contract server or a local Xinference, and so runs the same wiring the CLI runs.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xpool.logs import get_logger

if TYPE_CHECKING:  # imported where used: commands that never connect skip ~0.5 s of imports
    from xpool.adapters.kube_client import KubeClient
    from xpool.adapters.prometheus import PrometheusClient
    from xpool.adapters.xinference import XinferenceClient

Log = Callable[[str], None]


def _default_log() -> Log:
    return get_logger("xpool.actions").info


@dataclass
class Runtime:
    kubeconfig: str | None = None
    context: str | None = None
    clock: Callable[[], float] = time.time
    log: Log = field(default_factory=_default_log)

    def kube(self) -> KubeClient:
        """A new client for the flags' cluster (callers close it)."""
        from xpool.adapters.kube_client import Connection, KubeClient

        return KubeClient.connect(Connection(self.kubeconfig, self.context), log=self.log)

    def xinference(self, endpoint: str, api_key: str | None) -> XinferenceClient:
        from xpool.adapters.xinference import XinferenceClient

        return XinferenceClient(endpoint, api_key)

    def prometheus(self, url: str, bearer_token: str | None = None) -> PrometheusClient:
        from xpool.adapters.prometheus import PrometheusClient

        return PrometheusClient(url, bearer_token=bearer_token)


def stop_on_signals() -> threading.Event:
    """An event SIGINT and SIGTERM set (call from the main thread), so a long-running action
    leaves its loop and cleans up (releases leadership, withdraws its Lease) instead of dying
    mid-way; tests pass their own event instead."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop
