"""Where rollouts live between passes and across restarts: `rollouts.json` in the state
directory locally, the ConfigMap `xpool-rollouts` on Kubernetes.

Both the CLI (`xpool rollout start|promote|abort`) and the reconciler change rollouts, so every
change is a read-modify-write that cannot lose the other's: under a file lock locally, and
with the ConfigMap's resourceVersion as a precondition on Kubernetes (a conflict re-reads and
re-applies the change). The document keeps each model's current rollout and the last few
finished ones (its history for `xpool models show`).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from xpool.adapters.configmaps import read_configmap, write_configmap
from xpool.adapters.kube_client import KubeClient
from xpool.errors import RemoteError
from xpool.policy.rollout import Rollout, from_json, to_json

DATA_KEY = "rollouts.json"
CONFIGMAP = "xpool-rollouts"  # render/build_rbac.py grants the reconciler this name
FILE = "rollouts.json"
KEEP_PAST = 10


@dataclass
class Rollouts:
    current: dict[str, Rollout] = field(default_factory=dict)  # model -> its latest rollout
    past: dict[str, list[Rollout]] = field(default_factory=dict)  # model -> finished, newest last

    def replace(self, rollout: Rollout) -> None:
        """Make `rollout` the model's current one, keeping the one it replaces as history."""
        old = self.current.get(rollout.model)
        if old is not None and old.started != rollout.started:
            self.past[rollout.model] = [*self.past.get(rollout.model, []), old][-KEEP_PAST:]
        self.current[rollout.model] = rollout

    def to_json(self) -> dict[str, Any]:
        return {
            "rollouts": {m: to_json(r) for m, r in sorted(self.current.items())},
            "past": {m: [to_json(r) for r in rs] for m, rs in sorted(self.past.items())},
        }


def parse(text: str, where: str) -> Rollouts:
    try:
        data = json.loads(text) if text.strip() else {}
        return Rollouts(
            {m: from_json(r) for m, r in (data.get("rollouts") or {}).items()},
            {m: [from_json(r) for r in rs] for m, rs in (data.get("past") or {}).items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RemoteError(
            f"{where} is not a rollouts document ({exc}); fix it or move it away "
            "(rollouts in it would restart from the platform file)"
        ) from None


class RolloutStore(Protocol):
    def load(self) -> Rollouts: ...

    def update(self, change: Callable[[Rollouts], None]) -> Rollouts:
        """Apply `change` to the current document and write it, atomically."""
        ...


class FileRolloutStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE
        self._lock = state_dir / (FILE + ".lock")

    def load(self) -> Rollouts:
        try:
            return parse(self.path.read_text(encoding="utf-8"), str(self.path))
        except FileNotFoundError:
            return Rollouts()
        except OSError as exc:
            raise RemoteError(f"cannot read {self.path}: {exc}") from None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def update(self, change: Callable[[Rollouts], None]) -> Rollouts:
        with self._locked():
            doc = self.load()
            change(doc)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc.to_json(), indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
            return doc


class ConfigMapRolloutStore:
    def __init__(self, kube: KubeClient, namespace: str, *, attempts: int = 5) -> None:
        self.kube = kube
        self.namespace = namespace
        self.attempts = attempts

    def _parse(self, obj: dict[str, Any] | None) -> Rollouts:
        if obj is None:
            return Rollouts()
        text = (obj.get("data") or {}).get(DATA_KEY, "")
        return parse(text, f"ConfigMap {self.namespace}/{CONFIGMAP} key {DATA_KEY}")

    def load(self) -> Rollouts:
        return self._parse(read_configmap(self.kube, self.namespace, CONFIGMAP))

    def update(self, change: Callable[[Rollouts], None]) -> Rollouts:
        for _ in range(self.attempts):
            obj = read_configmap(self.kube, self.namespace, CONFIGMAP)
            doc = self._parse(obj)
            change(doc)
            text = json.dumps(doc.to_json(), sort_keys=True)
            if write_configmap(
                self.kube,
                self.namespace,
                CONFIGMAP,
                {DATA_KEY: text},
                manager="xpool-rollout",
                based_on=obj,  # 409 when someone wrote it since the read: read again
            ):
                return doc
        raise RemoteError(
            f"ConfigMap {self.namespace}/{CONFIGMAP} changed under each of {self.attempts} "
            "writes; retry"
        )
