"""Does every model version fit at least one pool it may use? If not, say what is closest."""

from __future__ import annotations

from xpool.capacity.memory import GIB
from xpool.capacity.plan import CapacityPlan, ModelPlan
from xpool.config.models import Platform
from xpool.config.positions import PathElem

Found = tuple[tuple[PathElem, ...], str]


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def fit_problems(platform: Platform, plan: CapacityPlan) -> list[Found]:
    found: list[Found] = []
    for i, model in enumerate(platform.spec.models):
        for j, version in enumerate(model.versions):
            rows = [
                r for r in plan.models if r.model == model.name and r.version == version.version
            ]
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
