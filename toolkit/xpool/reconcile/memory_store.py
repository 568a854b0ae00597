"""Where the policy's memory (last scale-up, low-load windows) lives between passes, so that
one-shot passes from a CronJob keep step limits and stabilization windows: a file in the
state directory locally, a ConfigMap on Kubernetes. Losing it is safe (one extra wait)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from xpool.adapters.kube_client import KubeClient, KubeStatusError
from xpool.errors import RemoteError
from xpool.policy.state import Memory, ModelMemory, memory_from_json, memory_to_json

DATA_KEY = "memory.json"


class MemoryStore(Protocol):
    def load(self) -> dict[str, ModelMemory]: ...
    def save(self, memory: Memory) -> None: ...


class FileMemoryStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, ModelMemory]:
        try:
            return memory_from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError, AttributeError):
            return {}

    def save(self, memory: Memory) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(memory_to_json(memory), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


class ConfigMapMemoryStore:
    def __init__(self, kube: KubeClient, namespace: str, name: str = "xpool-reconciler-state"):
        self.kube = kube
        self.namespace = namespace
        self.name = name

    @property
    def _path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/configmaps/{self.name}"

    def load(self) -> dict[str, ModelMemory]:
        try:
            obj = self.kube.request("GET", self._path, what=f"read ConfigMap {self.name}")
        except KubeStatusError as exc:
            if exc.status == 404:
                return {}
            raise RemoteError(
                f"read ConfigMap {self.namespace}/{self.name}: {exc.summary()}"
            ) from None
        try:
            return memory_from_json(json.loads((obj.get("data") or {}).get(DATA_KEY, "{}")))
        except (ValueError, AttributeError):
            return {}

    def save(self, memory: Memory) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "data": {DATA_KEY: json.dumps(memory_to_json(memory), sort_keys=True)},
        }
        try:
            self.kube.request(
                "PATCH",
                self._path,
                query={"fieldManager": "xpool-reconciler", "force": "true"},
                body=body,
                content_type="application/apply-patch+yaml",
                what=f"write ConfigMap {self.name}",
            )
        except KubeStatusError as exc:
            raise RemoteError(
                f"write ConfigMap {self.namespace}/{self.name}: {exc.summary()}"
            ) from None
