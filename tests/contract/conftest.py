"""Fixtures: a started contract API server and a kubeconfig pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.contract.apiserver import ContractApiServer


@pytest.fixture
def kube_api() -> Iterator[ContractApiServer]:
    """A started server (TLS, bearer token required; namespaces default and kube-*); its request
    log is empty when the test starts; stopped at teardown."""
    server = ContractApiServer().start()
    server.clear_log()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(kube_api: ContractApiServer, tmp_path: Path) -> Path:
    """A kubeconfig for ``kube_api``: context ``contract``, namespace ``xpool`` (not created)."""
    return kube_api.write_kubeconfig(tmp_path / "kubeconfig", namespace="xpool", context="contract")
