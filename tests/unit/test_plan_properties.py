"""Properties of the planner over generated platforms (hypothesis)."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from xpool.capacity.plan import plan_platform, plan_version
from xpool.catalog.accelerators import accelerators
from xpool.catalog.architectures import architectures
from xpool.config.loader import load_platform
from xpool.config.models import Platform
from xpool.errors import InputError
from xpool.resolve import resolve_platform

ACCELS = sorted(accelerators())
LLMS = sorted(k for k, a in architectures().items() if a.model_type == "llm")


@st.composite
def platforms(draw) -> dict:
    n_pools = draw(st.integers(1, 3))
    pools = []
    for i in range(n_pools):
        key = draw(st.sampled_from(ACCELS))
        pools.append(
            {
                "name": f"pool{i}",
                "vendor": accelerators()[key].vendor,
                "accelerator": key,
                "nodes": draw(st.integers(1, 8)),
                "acceleratorsPerNode": draw(st.sampled_from([1, 2, 4, 8])),
                "memoryUtilization": draw(st.floats(0.5, 0.95)),
            }
        )
    # FP8 only where every pool can hold it (the catalog's fp8Storage; not the Ascend 910B).
    fp8 = ["fp8"] if all(accelerators()[p["accelerator"]].fp8_storage for p in pools) else []
    models = []
    for i in range(draw(st.integers(1, 4))):
        peak = draw(st.floats(0, 500, allow_nan=False))
        models.append(
            {
                "name": f"m{i}",
                "tier": draw(st.sampled_from(["P0", "P1", "P2"])),
                "architecture": draw(st.sampled_from(LLMS)),
                "versions": [
                    {
                        "version": "1.0.0",
                        "source": "hf://org/model",
                        "weightPrecision": draw(st.sampled_from(["bf16", "int8", "int4", *fp8])),
                        "kvPrecision": draw(st.sampled_from(["bf16", *fp8])),
                    }
                ],
                "context": {
                    "batch": draw(st.integers(1, 64)),
                    "seqLen": draw(st.sampled_from([256, 2048, 8192, 32768])),
                    "outputTokens": draw(st.sampled_from([16, 128])),  # below seqLen
                },
                "demand": {"peakQps": peak, "headroom": draw(st.floats(0, 1))},
                "instances": {"min": 0, "max": 64},
            }
        )
    return {
        "apiVersion": "xpool.io/v1alpha1",
        "kind": "Platform",
        "metadata": {"name": "gen"},
        "spec": {"pools": pools, "models": models},
    }


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(doc=platforms())
def test_any_valid_file_plans_without_error(tmp_path, doc):
    path = tmp_path / "platform.yaml"
    buf = io.StringIO()
    YAML().dump(doc, buf)
    path.write_text(buf.getvalue())
    loaded = load_platform(path)  # generated files are schema-valid by construction
    plan = plan_platform(loaded.platform, loaded.architectures)
    assert len(plan.models) == sum(
        len(m.versions) * len(loaded.platform.model_pools(m)) for m in loaded.platform.spec.models
    )
    for row in plan.models:
        assert (row.tp is not None) == row.fits
        if row.fits:
            assert row.footprint.bytes_per_accelerator <= row.footprint.budget_per_accelerator


def _base(peak: float, accel: str = "h100-sxm-80gb", util: float = 0.9, arch: str = LLMS[0]):
    return Platform.model_validate(
        {
            "apiVersion": "xpool.io/v1alpha1",
            "kind": "Platform",
            "metadata": {"name": "p"},
            "spec": {
                "pools": [
                    {
                        "name": "a",
                        "vendor": accelerators()[accel].vendor,
                        "accelerator": accel,
                        "nodes": 2,
                        "memoryUtilization": util,
                    }
                ],
                "models": [
                    {
                        "name": "m",
                        "tier": "P0",
                        "architecture": arch,
                        "versions": [{"version": "1", "source": "hf://o/m"}],
                        "demand": {"peakQps": peak},
                        "instances": {"min": 0, "max": 10},
                    }
                ],
            },
        }
    )


def _size(platform: Platform, arch: str):
    model = platform.spec.models[0]
    return plan_version(
        platform, model, model.versions[0], architectures()[arch], platform.spec.pools[0]
    )


@settings(max_examples=80, deadline=None)
@given(
    arch=st.sampled_from(LLMS),
    accel=st.sampled_from(ACCELS),
    low=st.floats(0, 1000, allow_nan=False),
    extra=st.floats(0, 1000, allow_nan=False),
)
def test_more_qps_never_needs_fewer_instances(arch, accel, low, extra):
    fewer = _size(_base(low, accel, arch=arch), arch)
    more = _size(_base(low + extra, accel, arch=arch), arch)
    assert more.instances_needed >= fewer.instances_needed
    assert more.nodes_needed >= fewer.nodes_needed


@settings(max_examples=80, deadline=None)
@given(
    arch=st.sampled_from(LLMS),
    accel=st.sampled_from(ACCELS),
    util=st.floats(0.3, 0.9),
    more=st.floats(0, 0.1),
)
def test_more_memory_never_needs_a_higher_tp(arch, accel, util, more):
    tight = _size(_base(10, accel, util=util, arch=arch), arch)
    roomy = _size(_base(10, accel, util=util + more, arch=arch), arch)
    if tight.fits:
        assert roomy.fits and roomy.tp <= tight.tp


def test_generated_file_that_fits_nowhere_is_an_input_error_not_a_crash(tmp_path):
    doc = {
        "apiVersion": "xpool.io/v1alpha1",
        "kind": "Platform",
        "metadata": {"name": "gen"},
        "spec": {
            "pools": [
                {
                    "name": "p",
                    "vendor": "nvidia",
                    "accelerator": "rtx-4090",
                    "nodes": 1,
                    "acceleratorsPerNode": 1,
                }
            ],
            "models": [
                {
                    "name": "m",
                    "tier": "P0",
                    "architecture": "llama-3.1-70b-instruct",
                    "versions": [{"version": "1", "source": "hf://o/m", "weightPrecision": "fp32"}],
                    "demand": {"peakQps": 1},
                }
            ],
        },
    }
    path = tmp_path / "p.yaml"
    buf = io.StringIO()
    YAML().dump(doc, buf)
    path.write_text(buf.getvalue())
    with pytest.raises(InputError, match=r"fits no pool.*closest"):
        resolve_platform(path)
