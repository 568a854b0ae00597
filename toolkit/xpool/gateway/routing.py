"""The routing table: public model name -> ready instance UIDs, round-robin.

An in-process object that `xpool up` updates as instances become ready; the gateway issue
extends it (drain, canary weights, least-outstanding-requests).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    model: str  # public name: the `model` field clients send
    model_type: str  # LLM | embedding | rerank
    uids: tuple[str, ...]


class RoutingTable:
    """Thread-safe: `up` writes from its thread, the gateway reads from its event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._counters: dict[str, itertools.count] = {}

    def add(self, model: str, model_type: str, uid: str) -> None:
        with self._lock:
            route = self._routes.get(model)
            uids = route.uids if route else ()
            if uid not in uids:
                self._routes[model] = Route(model, model_type, (*uids, uid))
                self._counters.setdefault(model, itertools.count())

    def remove(self, uid: str) -> None:
        with self._lock:
            for name, route in list(self._routes.items()):
                if uid in route.uids:
                    self._routes[name] = Route(
                        name, route.model_type, tuple(u for u in route.uids if u != uid)
                    )

    def pick(self, model: str) -> str | None:
        """The next ready UID of `model` (round-robin), or None when it has none."""
        with self._lock:
            route = self._routes.get(model)
            if route is None or not route.uids:
                return None
            return route.uids[next(self._counters[model]) % len(route.uids)]

    def routes(self) -> list[Route]:
        with self._lock:
            return sorted(self._routes.values(), key=lambda r: r.model)
