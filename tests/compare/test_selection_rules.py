"""The rules of `xpool plan --compare` beyond its arithmetic: owned pools carry no purchase
cost, equal options are ordered by a stated rule, cold loads come through the storage NICs,
power supplies are checked with redundancy, FP8 is refused where the accelerator has none, and
each placement carries the memory figures that decide its fit. Every expected figure is worked
by hand in the comments; the comparison runs in-process (one CLI run checks the error line)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from tests.conftest import run_xpool
from xpool.capacity.hardware import HardwareComparison, Option
from xpool.capacity.hardware_selection import CompareError, compare
from xpool.config.loader import load_platform
from xpool.report.hardware_report import option_table, write_report

GIB = 1024**3
# DeepSeek-R1-Distill-Qwen-32B in INT8 (a GPTQ 8-bit, group-128 checkpoint): 31,205,621,760
# linear weights x 1 B + 746,323,968 B of scales, zero points and g_idx + 1,558,254,592
# embedding, LM head, norm and bias parameters kept 16-bit (tests/unit/test_memory.py works it).
W_INT8 = 35_068_454_912

# An owned pool that holds FP8, for the FP8 rules: validate refuses FP8 on a pool the model may
# use whose accelerator cannot hold it, as the default owned 910B cannot.
FP8_LAB = "- {name: lab, vendor: nvidia, accelerator: h100-sxm-80gb, nodes: 1}\n"

PRICES = """\
costs:
  acceleratorPrice: {rtx-5090: 2000, ascend-910b: 10000}
  serverPrice: {nvidia-8x-pcie: 10000, atlas-800i-a2: 20000}
  electricityPerKwh: 0.2
  pue: 1.5
  utilization: 0.5
  amortizationYears: 4
"""


def qa(qps: int = 20, weights: str = "int8") -> str:
    """DeepSeek-R1-Distill-Qwen-32B at peak 100 QPS + 20 %: 120 QPS / `qps` instances."""
    return f"""\
- name: qa-chat
  tier: P0
  architecture: deepseek-r1-distill-qwen-32b
  versions:
    - {{version: "1.0.0", source: "hf://x/y", weightPrecision: {weights}, kvPrecision: bf16}}
  context: {{batch: 8, seqLen: 2048, outputTokens: 32}}
  demand: {{peakQps: 100, headroom: 0.2}}
  perInstanceQps: {qps}
  instances: {{min: 1, max: 16}}
"""


TRANSLATION = """\
- name: translation
  tier: P1
  architecture: qwen2.5-7b-instruct
  versions:
    - {version: "1.0.0", source: "hf://x/z", weightPrecision: bf16}
  context: {batch: 8, seqLen: 2048, outputTokens: 32}
  demand: {peakQps: 25, headroom: 0.2}
  perInstanceQps: 10
"""


def write(
    tmp_path: Path,
    *,
    candidates: str,
    models: str,
    pools: str = "- {name: lab, vendor: ascend, accelerator: ascend-910b, nodes: 1}\n",
    costs: str = PRICES,
) -> Path:
    def block(key: str, body: str) -> str:
        return f"  {key}:\n" + textwrap.indent(body, "    ")

    text = "apiVersion: xpool.io/v1alpha1\nkind: Platform\nmetadata: {name: t}\nspec:\n"
    text += block("pools", pools) + block("candidatePools", candidates)
    text += textwrap.indent(costs, "  ") + block("models", models)
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    return path


def run(path: Path, names: list[str]) -> HardwareComparison:
    loaded = load_platform(path)
    return compare(loaded.platform, loaded.architectures, names)


def option(c: HardwareComparison, name: str) -> Option:
    return next(o for o in c.options if o.name == name)


ASCEND = "- {name: ascend910b, vendor: ascend, accelerator: ascend-910b}\n"
RTX = "- {name: rtx5090, vendor: nvidia, accelerator: rtx-5090}\n"


# --- owned pools ------------------------------------------------------------------------------


def test_an_owned_pool_has_no_purchase_cost_but_its_energy_counts(tmp_path):
    c = run(write(tmp_path, candidates=ASCEND, models=qa()), ["lab", "ascend910b"])
    lab, bought = option(c, "lab"), option(c, "ascend910b")
    # qa-chat INT8 fits one 64 GB 910B: TP 1, 120 / 20 = 6 NPUs -> 1 server on either
    assert lab.servers == bought.servers == 1
    # lab is spec.pools (owned, nodes 1): 1 owned server, nothing bought
    assert (lab.owned_servers, lab.purchased_servers, lab.capex) == (1, 0, 0)
    # the candidate buys it: 1 x (20,000 + 8 x 10,000) = 100,000
    assert (bought.purchased_servers, bought.capex) == (1, 100_000)
    # energy counts for both: (8 x 400 + 1,600) W = 4.8 kW x 0.5 x 8,760 h x PUE 1.5 = 31,536 kWh
    assert lab.energy_kwh_per_year == pytest.approx(31_536) == bought.energy_kwh_per_year
    # per hour: lab 4.8 x 1.5 x 0.2 = 1.44; candidate + 100,000 / (4 x 8,760) = 2.853881
    # per 1,000 requests at 100 QPS: 1.44 / 360,000 x 1,000 = 0.004 and 4.293881 / 360 = 0.0119274
    assert lab.cost_per_1k_requests == pytest.approx(0.004)
    assert bought.cost_per_1k_requests == pytest.approx(0.0119274, abs=1e-7)
    assert c.recommended == "lab"
    _, headers, rows = option_table(c)
    capex = {row[0]: row[headers.index("CAPEX USD")] for row in rows}
    assert capex["lab (recommended)"] == "0 (1 owned: no purchase cost)"


def test_servers_beyond_an_owned_pool_are_bought(tmp_path):
    c = run(write(tmp_path, candidates=ASCEND, models=qa(qps=10)), ["lab", "ascend910b"])
    lab = option(c, "lab")
    # 120 / 10 = 12 instances at TP 1 = 12 NPUs -> 2 servers; lab owns 1, buys 1 = 100,000
    assert (lab.servers, lab.owned_servers, lab.purchased_servers) == (2, 1, 1)
    assert lab.capex == 100_000
    assert (
        "lab: owns 1 server(s) but the whole workload needs 2; the other 1 are charged as "
        "purchases" in c.warnings
    )


def test_the_report_says_owned_pools_cost_nothing_and_states_the_ranking(tmp_path):
    c = run(write(tmp_path, candidates=ASCEND, models=qa()), ["lab", "ascend910b"])
    md = write_report(c, tmp_path / "r", source="p.yaml", command="xpool plan")[0].read_text()
    assert "owned: no purchase cost" in md
    assert "then fewer purchased servers (owned before purchase), then the option's name" in md


# --- ties -------------------------------------------------------------------------------------


def test_equal_cost_is_broken_by_energy_not_by_name(tmp_path):
    candidates = """\
- {name: a5090, vendor: nvidia, accelerator: rtx-5090}
- {name: z4090, vendor: nvidia, accelerator: rtx-4090}
"""
    costs = """\
costs:
  acceleratorPrice: {rtx-5090: 2000, rtx-4090: 2000}
  serverPrice: {nvidia-8x-pcie: 10000}
  electricityPerKwh: 0
  pue: 1.5
  utilization: 0.5
"""
    path = write(tmp_path, candidates=candidates, models=TRANSLATION, costs=costs)
    c = run(path, ["a5090", "z4090"])
    a, z = option(c, "a5090"), option(c, "z4090")
    # 25 x 1.2 / 10 = 3 instances at TP 1 -> 1 server each, 10,000 + 8 x 2,000 = 26,000; with
    # free electricity: 26,000 / 35,040 h / (25 x 3,600) x 1,000 = 0.0082445 on both
    assert a.cost_per_1k_requests == z.cost_per_1k_requests == pytest.approx(0.0082445, abs=1e-7)
    # energy: (8 x 575 + 1,200) W = 5.8 kW vs (8 x 450 + 1,200) W = 4.8 kW, x 0.5 x 8,760 x 1.5
    assert (a.energy_kwh_per_year, z.energy_kwh_per_year) == pytest.approx((38_106, 31_536))
    assert c.recommended == "z4090"


def test_equal_cost_and_energy_puts_an_owned_pool_before_a_purchase(tmp_path):
    costs = PRICES.replace("ascend-910b: 10000", "ascend-910b: 0").replace(
        "atlas-800i-a2: 20000", "atlas-800i-a2: 0"
    )
    pools = "- {name: zlab, vendor: ascend, accelerator: ascend-910b, nodes: 1}\n"
    candidates = "- {name: alab, vendor: ascend, accelerator: ascend-910b}\n"
    path = write(tmp_path, pools=pools, candidates=candidates, models=qa(), costs=costs)
    c = run(path, ["alab", "zlab"])
    # free hardware: both 1 server, capex 0, 4.8 kW: same cost (0.004), energy and servers;
    # zlab buys 0 servers, alab 1
    assert option(c, "alab").ranking_key()[:4] == option(c, "zlab").ranking_key()[:4]
    assert (option(c, "zlab").purchased_servers, option(c, "alab").purchased_servers) == (0, 1)
    assert c.recommended == "zlab"


def test_identical_options_fall_back_to_the_name_whatever_the_compare_order(tmp_path):
    candidates = """\
- {name: b, vendor: ascend, accelerator: ascend-910b}
- {name: a, vendor: ascend, accelerator: ascend-910b}
"""
    path = write(tmp_path, candidates=candidates, models=qa())
    assert run(path, ["b", "a"]).recommended == "a"
    assert run(path, ["a", "b"]).recommended == "a"


# --- cold load, power supplies ----------------------------------------------------------------


def test_cold_load_comes_through_the_storage_nics_not_the_compute_fabric(tmp_path):
    c = run(write(tmp_path, candidates=ASCEND + RTX, models=qa()), ["ascend910b", "rtx5090"])
    ascend = option(c, "ascend910b").parts[0].storage
    rtx = option(c, "rtx5090").parts[0].storage
    # Atlas 800 A2: 2 x 25 GbE data plane = 50 Gb/s, not the NPUs' 8 x 200 GbE (1,600 Gb/s):
    # 35,068,454,912 B x 8 / 50e9 b/s = 5.6110 s (at 1,600 Gb/s it would be 0.18 s)
    assert (ascend.storage_gbps_per_server, ascend.scale_out_gbps_per_server) == (50, 1600)
    assert ascend.cold_load_seconds["qa-chat"] == pytest.approx(W_INT8 * 8 / 50e9)
    assert ascend.as_dict()["coldLoadSeconds"]["qa-chat"] == 5.6
    # PCIe server: one converged 2 x 100 GbE network: W x 8 / 200e9 = 1.4027 s
    assert rtx.as_dict()["coldLoadSeconds"]["qa-chat"] == 1.4


def test_a_server_above_its_redundant_psu_capacity_is_warned_with_both_figures(tmp_path):
    c = run(write(tmp_path, candidates=ASCEND + RTX, models=qa()), ["ascend910b", "rtx5090"])
    hw = {h.name: h.as_dict() for h in c.hardware}
    # RTX server: 8 x 575 + 1,200 = 5,800 W > (4 - 2) x 2,700 = 5,400 W (2+2, N+N)
    assert hw["rtx5090"]["serverDrawW"] == 5800
    assert hw["rtx5090"]["psu"]["redundantCapacityW"] == 5400
    assert hw["rtx5090"]["psu"]["scheme"] == "2+2 (N+N)" and hw["rtx5090"]["psu"]["exceeded"]
    (warning,) = [w for w in c.warnings if "supplies" in w]
    assert "5,800 W" in warning and "5,400 W" in warning and "acceleratorPowerW" in warning
    # Atlas: 8 x 400 + 1,600 = 4,800 W <= (4 - 2) x 2,600 = 5,200 W
    assert not hw["ascend910b"]["psu"]["exceeded"]


def test_power_limited_cards_keep_psu_redundancy(tmp_path):
    costs = PRICES + "  acceleratorPowerW: {rtx-5090: 450}\n"
    c = run(write(tmp_path, candidates=RTX, models=qa(), costs=costs), ["rtx5090"])
    # 8 x 450 + 1,200 = 4,800 W <= 5,400 W: no warning
    assert c.hardware[0].server_w == 4800
    assert not any("supplies" in w for w in c.warnings)


# --- FP8 --------------------------------------------------------------------------------------


def test_fp8_is_refused_on_an_accelerator_without_fp8_with_the_reason(tmp_path):
    # the owned pool holds FP8 (validate refuses FP8 on a 910B pool the model may use)
    path = write(tmp_path, candidates=ASCEND + RTX, models=qa(weights="fp8"), pools=FP8_LAB)
    c = run(path, ["ascend910b", "rtx5090"])
    # 910B: fp8DenseTflops null -> qa-chat left out, reason in the comparison
    assert option(c, "ascend910b").excluded == {
        "qa-chat": "1.0.0 weightPrecision fp8: ascend-910b has no FP8 (catalog fp8DenseTflops: "
        "null); use bf16 or int8 there"
    }
    # RTX 5090 has FP8 (419 TFLOPS dense): it carries the model and is the only complete option
    assert option(c, "rtx5090").complete and c.recommended == "rtx5090"


def test_fp8_kv_cache_is_refused_too(tmp_path):
    models = qa().replace("kvPrecision: bf16", "kvPrecision: fp8")
    path = write(tmp_path, candidates=ASCEND + RTX, models=models, pools=FP8_LAB)
    c = run(path, ["ascend910b", "rtx5090"])
    assert "kvPrecision fp8" in option(c, "ascend910b").excluded["qa-chat"]


def test_fp8_with_no_fp8_pool_compared_is_one_located_error(tmp_path):
    path = write(tmp_path, candidates=ASCEND, models=qa(weights="fp8"), pools=FP8_LAB)
    with pytest.raises(CompareError) as raised:
        run(path, ["ascend910b"])
    (problem,) = raised.value.problems
    assert problem.path == ("spec", "models", 0, "versions", 0, "weightPrecision")
    result = run_xpool("plan", str(path), "--compare", "ascend910b")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}:") and "versions[0].weightPrecision" in line
    assert (
        "set weightPrecision to int8 or bf16, or compare a pool whose accelerator has FP8" in line
    )


# --- memory figures ---------------------------------------------------------------------------


def test_each_placement_carries_its_memory_figures(tmp_path):
    c = run(write(tmp_path, candidates=RTX, models=qa()), ["rtx5090"])
    memory = option(c, "rtx5090").placements[0].as_dict()["memory"]
    assert all(isinstance(v, int) for v in memory.values())
    # 32.8 GB of INT8 weights do not fit one 32 GB card: TP 2
    assert memory["tp"] == 2
    # K and V x 64 layers x 8 KV heads x 128 x 2 B (BF16) = 262,144 B per token (DESIGN fact 7)
    assert memory["kvBytesPerToken"] == 2 * 64 * 8 * 128 * 2 == 262_144
    # budget: 31.84 GiB (nvidia-smi 32,607 MiB) x memoryUtilization 0.9 = 28.66 GiB
    assert memory["budgetBytesPerAccelerator"] == int(int(31.84 * GIB) * 0.9)
    # at least half the weights + half the KV heads' cache for 8 x 2,048 tokens:
    # ceil(W / 2) + 2 x 64 x 4 x 128 x 2 B x 16,384 = 17,534,227,456 + 2 GiB; and it fits
    floor = math.ceil(W_INT8 / 2) + 131_072 * 16_384
    assert floor < memory["bytesPerAccelerator"] <= memory["budgetBytesPerAccelerator"]
