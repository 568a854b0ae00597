"""Load a platform file and check everything a run needs, before anything is touched."""

from __future__ import annotations

from pathlib import Path

from xpool.capacity.feasibility import fit_problems
from xpool.capacity.plan import CapacityPlan, plan_platform
from xpool.config.loader import LoadedPlatform, load_platform
from xpool.errors import InputError


def load_and_plan(path: str | Path) -> tuple[LoadedPlatform, CapacityPlan]:
    """Raise InputError listing every problem (schema, references, fit); else the plan."""
    loaded = load_platform(path)
    plan = plan_platform(loaded.platform, loaded.architectures)
    problems = [loaded.problem(p, msg) for p, msg in fit_problems(loaded.platform, plan)]
    if problems:
        raise InputError(problems)
    return loaded, plan
