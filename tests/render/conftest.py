"""Golden files for `xpool render`: `pytest --update-golden` (option registered in
tests/conftest.py, where pytest reads options) rewrites them from the current code."""

from __future__ import annotations

import pytest


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))
