"""Fixtures of the gateway tests: the contract API server, and a real upstream per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.conftest import kube_api, kubeconfig  # noqa: F401
from tests.gateway.serving import TokenUpstream


@pytest.fixture(scope="module")
def up() -> Iterator[TokenUpstream]:
    """One real upstream per module (a module may override it with another kind)."""
    running = TokenUpstream()
    running.server.start()
    try:
        yield running
    finally:
        running.server.stop()
