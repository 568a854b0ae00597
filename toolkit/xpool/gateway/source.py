"""Routing tables from Kubernetes: a ConfigMap the reconciler writes, polled by every gateway
replica so that they all agree (the contract test server, like some proxies, has no watch;
polling every few seconds bounds the lag without one).

The ConfigMap (default `xpool-routes`) holds `routes.json`:

    {"generation": 7,
     "models": [{"model": "chat", "type": "LLM", "tier": "P0", "weights": {"1": 95, "2": 5},
                 "instances": [{"uid": "chat--1--1", "version": "1", "limit": 4,
                                "state": "ready", "since": 1767225600.0,
                                "generation": 3}, ...]}]}

`generation` grows by one on every change the reconciler writes; an instance's `generation` is
the one at which it entered its `state`, and `since` the unix time it did. `state: ready` routes
to it; `loading` (launched, not ready yet) does not; `draining` stops new requests to it. Every
replica reports the generation it has applied and its in-flight counts (`replica_report.py`),
so the reconciler terminates a draining instance only once every replica has stopped routing
to it and finished its requests. An instance that disappears from the ConfigMap is drained
first and forgotten once idle. `tier`, `weights`, `limit` and the generations are optional.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from xpool.adapters.configmaps import read_configmap
from xpool.adapters.kube_client import KubeClient
from xpool.errors import RemoteError
from xpool.gateway.routing import RoutingTable

DATA_KEY = "routes.json"


def apply_routes(table: RoutingTable, doc: dict[str, Any]) -> None:
    """Make `table` follow `doc` (the ConfigMap's routes.json)."""
    listed: set[str] = set()
    for model in doc.get("models", []):
        name = str(model["model"])
        model_type = str(model.get("type", "LLM"))
        tier = str(model.get("tier", ""))
        weights = {str(k): float(v) for k, v in (model.get("weights") or {}).items()}
        table.declare(name, model_type, tier, weights or table.weights(name))
        for inst in model.get("instances", []):
            uid = str(inst["uid"])
            listed.add(uid)
            state = inst.get("state", "ready")
            if state == "ready":
                table.add(
                    name,
                    model_type,
                    uid,
                    version=str(inst.get("version", "")),
                    tier=tier,
                    limit=inst.get("limit"),
                )
            elif state == "draining":
                table.mark_draining(uid)
    for slot in table.slots():
        if slot.uid not in listed:
            table.mark_draining(slot.uid)
            if slot.inflight == 0:
                table.remove(slot.uid)


def routes_generation(doc: dict[str, Any]) -> int:
    """The document's generation; 0 for one written before generations existed."""
    value = doc.get("generation", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class ConfigMapRoutingSource:
    """Makes `table` follow the routes ConfigMap, read every `interval` seconds."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        table: RoutingTable,
        *,
        name: str = "xpool-routes",
        interval: float = 3.0,
        log: Callable[[str], None] = lambda _m: None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.table = table
        self.interval = interval
        self.log = log
        self.version: str | None = None  # resourceVersion last applied
        self.generation: int | None = None  # routes.json `generation` last applied
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> bool:
        """Read the ConfigMap and apply it when it changed; False when it does not exist."""
        obj = read_configmap(self.kube, self.namespace, self.name)
        if obj is None:
            return False
        version = obj.get("metadata", {}).get("resourceVersion")
        if version is not None and version == self.version:
            # unchanged; still forget drained instances that left the ConfigMap
            for slot in self.table.slots():
                if slot.draining and slot.inflight == 0 and not self._listed(obj, slot.uid):
                    self.table.remove(slot.uid)
            return True
        raw = (obj.get("data") or {}).get(DATA_KEY, "{}")
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            self.log(f"ConfigMap {self.name}: {DATA_KEY} is not JSON ({exc}); keeping the routes")
            return True
        apply_routes(self.table, doc)
        # Set only once the table follows `doc`: a report of this generation then promises
        # that its draining instances get no new requests (replica_report.py relies on it).
        self.generation = routes_generation(doc)
        self.version = version
        return True

    @staticmethod
    def _listed(obj: dict[str, Any], uid: str) -> bool:
        return f'"{uid}"' in (obj.get("data") or {}).get(DATA_KEY, "")

    def start(self) -> ConfigMapRoutingSource:
        self._thread = threading.Thread(target=self._run, name="routes", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.interval + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.poll_once():
                    self.log(f"ConfigMap {self.namespace}/{self.name} not found; no routes yet")
            except RemoteError as exc:
                self.log(f"routes: {exc}; keeping the last table")
            self._stop.wait(self.interval)
