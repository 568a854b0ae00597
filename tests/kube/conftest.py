"""Fixtures for the apply/diff tests: the contract server (tests/contract), platform files,
and the CLI as a subprocess with short retry bounds."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.contract.conftest import kube_api, kubeconfig  # noqa: F401

NS = "npu-qa"  # spec.kubernetes.namespace of examples/ascend-only.yaml
VOLCANO_NS = "volcano-system"

# Fast, bounded retries for tests (production: 5 attempts within 30 s).
RETRY_ENV = {
    "XPOOL_KUBE_RETRY_ATTEMPTS": "4",
    "XPOOL_KUBE_RETRY_MAX_SECONDS": "10",
    "XPOOL_KUBE_RETRY_BASE_SECONDS": "0.05",
    "XPOOL_KUBE_TIMEOUT_SECONDS": "10",
}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m xpool.cli ARGS` with KUBECONFIG cleared (tests pass --kubeconfig)."""
    full = {
        k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
    }
    full.update(RETRY_ENV)
    full.update(env or {})
    full["NO_COLOR"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "xpool.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=full,
        timeout=180,
        check=False,
    )


@pytest.fixture
def cluster(kube_api):  # noqa: F811 (the imported fixture)
    """The contract server with Volcano's namespace present, as on a cluster running Volcano."""
    if kube_api.get("v1", "Namespace", VOLCANO_NS) is None:
        kube_api.seed({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": VOLCANO_NS}})
    kube_api.clear_log()
    return kube_api


ONE_POOL = (EXAMPLES / "ascend-only.yaml").read_text(encoding="utf-8")
SECOND_POOL = """    - name: rtx5090
      vendor: nvidia
      accelerator: rtx-5090
      nodes: 1
      acceleratorsPerNode: 8
  models:"""


def two_pools(text: str = ONE_POOL) -> str:
    """The same platform with a second (NVIDIA) pool: 4 more Queues and 4 more worker Jobs."""
    text = text.replace("  models:", SECOND_POOL, 1)
    return text.replace(
        "engines: {ascend: vllm-ascend}", "engines: {ascend: vllm-ascend, nvidia: vllm}"
    )


@pytest.fixture
def platform(tmp_path) -> Callable[[str], Path]:
    """Write a platform file; call again to change it in place (same path, as a user would)."""
    path = tmp_path / "platform.yaml"

    def write(text: str = ONE_POOL) -> Path:
        path.write_text(text, encoding="utf-8")
        return path

    return write
