"""Does every model version fit at least one pool it may use? If not, say what is closest."""

from __future__ import annotations

from collections import defaultdict

from xpool.capacity.memory import GIB
from xpool.capacity.plan import CapacityPlan, ModelPlan
from xpool.config.models import Platform
from xpool.config.positions import PathElem

Found = tuple[tuple[PathElem, ...], str]


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def rows_by_version(rows: list[ModelPlan]) -> dict[tuple[str, str], list[ModelPlan]]:
    """Plan rows by (model, version), in plan order: one pass, where scanning every row for
    each version made a large platform quadratic (1,000 models x 3 versions on 20 pools)."""
    grouped: dict[tuple[str, str], list[ModelPlan]] = defaultdict(list)
    for row in rows:
        grouped[(row.model, row.version)].append(row)
    return grouped


def fit_problems(platform: Platform, plan: CapacityPlan) -> list[Found]:
    found: list[Found] = []
    grouped = rows_by_version(plan.models)
    for i, model in enumerate(platform.spec.models):
        for j, version in enumerate(model.versions):
            rows = grouped.get((model.name, version.version), [])
            if any(r.fits for r in rows):
                continue
            closest = min(
                rows, key=lambda r: r.footprint.shortfall_bytes / r.footprint.budget_per_accelerator
            )
            found.append(
                (
                    (("spec", "models", i, "versions", j)),
                    _explain(closest, version.weight_precision),
                )
            )
    return found


def _explain(row: ModelPlan, precision: str) -> str:
    fp = row.footprint
    return (
        f"{row.model} {row.version} fits no pool it may use; closest: pool '{row.pool}' at TP {fp.tp} "
        f"needs {_gib(fp.bytes_per_accelerator)} per accelerator but has {_gib(fp.budget_per_accelerator)} "
        f"(short {_gib(fp.shortfall_bytes)}); use a lower weightPrecision than {precision}, "
        "a smaller context (batch x seqLen), or a pool with more memory per accelerator"
    )
