"""The planner's shortcuts give what sizing every row and scanning every row gave.

`model_rows` sizes each kind of version and pool once and copies the row to alike ones;
`rows_by_version` groups the rows the feasibility check reads in one pass. Both replaced
work that grew with models x versions x pools (squared, for the feasibility check).
"""

from __future__ import annotations

from xpool.capacity.feasibility import fit_problems, rows_by_version
from xpool.capacity.plan import plan_platform, plan_version
from xpool.catalog.architectures import architectures
from xpool.config.models import Platform


def _pool(name: str, accelerator: str = "rtx-5090", **extra: object) -> dict:
    vendor = "ascend" if accelerator.startswith("ascend") else "nvidia"
    return {"name": name, "vendor": vendor, "accelerator": accelerator, "nodes": 2, **extra}


def _model(name: str, architecture: str, **extra: object) -> dict:
    return {
        "name": name,
        "tier": "P1",
        "architecture": architecture,
        "versions": [
            {"version": "1.0.0", "source": "hf://o/m"},
            {"version": "1.1.0", "source": "hf://o/m"},  # alike 1.0.0 but for its name
            {"version": "2.0.0", "source": "hf://o/m", "weightPrecision": "int4"},
            {"version": "2.1.0", "source": "hf://o/m", "kvPrecision": "int8"},
        ],
        "demand": {"peakQps": 3},
        "instances": {"min": 0, "max": 8},
        **extra,
    }


PLATFORM = Platform.model_validate(
    {
        "apiVersion": "xpool.io/v1alpha1",
        "kind": "Platform",
        "metadata": {"name": "p"},
        "spec": {
            "pools": [
                _pool("a"),
                _pool("b", nodes=5, nodeLabels={"rack": "2"}),  # alike a but for name, size
                _pool("c", memoryUtilization=0.6),
                _pool("d", acceleratorsPerNode=2),
                _pool("e", "ascend-910b"),
                _pool("f"),
            ],
            "models": [
                _model("small", "qwen2.5-7b-instruct"),
                _model("measured", "qwen2.5-7b-instruct", perInstanceQps={"a": 2.5, "f": 4}),
                _model("large", "qwen2.5-72b-instruct", pools=["f", "d", "a", "e"]),
            ],
        },
    }
)
ARCHS = {m.name: architectures()[str(m.architecture)] for m in PLATFORM.spec.models}


def test_rows_equal_sizing_every_version_on_every_pool():
    plan = plan_platform(PLATFORM, ARCHS)
    assert plan.models == [
        plan_version(PLATFORM, model, version, ARCHS[model.name], pool)
        for model in PLATFORM.spec.models
        for version in model.versions
        for pool in PLATFORM.model_pools(model)
    ]
    assert {r.fits for r in plan.models} == {True, False}  # both kinds of row are compared


def test_rows_by_version_equal_scanning_every_row():
    rows = plan_platform(PLATFORM, ARCHS).models
    grouped = rows_by_version(rows)
    for model in PLATFORM.spec.models:
        for version in model.versions:
            key = (model.name, version.version)
            assert grouped[key] == [r for r in rows if (r.model, r.version) == key]
    assert sum(len(g) for g in grouped.values()) == len(rows)


def test_a_version_that_fits_nowhere_is_explained_at_its_closest_pool():
    spec = PLATFORM.spec
    large = spec.models[2].model_copy(update={"pools": ["d", "c"]})
    platform = PLATFORM.model_copy(
        update={"spec": spec.model_copy(update={"models": [spec.models[0], large]})}
    )
    found = fit_problems(platform, plan_platform(platform, ARCHS))
    # 72B in BF16 fits neither 2 x 32 GB nor 8 x 32 GB at 60%; INT4 weights or an INT8 cache fit
    assert [path for path, _ in found] == [
        ("spec", "models", 1, "versions", 0),
        ("spec", "models", 1, "versions", 1),
    ]
    assert "large 1.0.0 fits no pool it may use; closest: pool 'c' at TP 8" in found[0][1]
    assert "large 1.1.0 fits no pool it may use; closest: pool 'c' at TP 8" in found[1][1]
