"""Where the policy's memory (last scale-up, low-load windows) lives between passes, so that
one-shot passes from a CronJob keep step limits and stabilization windows: a file in the
state directory locally, a ConfigMap on Kubernetes. Losing it is safe (one extra wait)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Protocol

from xpool.adapters.configmaps import read_configmap, write_configmap
from xpool.adapters.kube_client import KubeClient
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

    def load(self) -> dict[str, ModelMemory]:
        obj = read_configmap(self.kube, self.namespace, self.name)
        if obj is None:
            return {}
        try:
            return memory_from_json(json.loads((obj.get("data") or {}).get(DATA_KEY, "{}")))
        except (ValueError, AttributeError):
            return {}

    def save(self, memory: Memory) -> None:
        text = json.dumps(memory_to_json(memory), sort_keys=True)
        write_configmap(
            self.kube, self.namespace, self.name, {DATA_KEY: text}, manager="xpool-reconciler"
        )
