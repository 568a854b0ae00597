"""`xpool plan FILE --compare ...`: arithmetic pinned on hand-checked cases, constraint errors,
the report. Every figure below is computed by hand in the comments."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_xpool

GIB = 1024**3
# DeepSeek-R1-Distill-Qwen-32B in INT8 (a GPTQ 8-bit, group-128 checkpoint): 31,205,621,760
# linear weights x 1 B + 746,323,968 B of scales, zero points and g_idx + 1,558,254,592
# embedding, LM head, norm and bias parameters kept 16-bit (tests/unit/test_memory.py works it).
W_INT8 = 35_068_454_912

QA = """
    - name: qa-chat
      tier: P0
      architecture: deepseek-r1-distill-qwen-32b
      versions:
        - {version: "1.0.0", source: "hf://x/y", weightPrecision: int8, kvPrecision: bf16}
      context: {batch: 8, seqLen: 2048, outputTokens: 32}
      demand: {peakQps: 100, headroom: 0.2}
      perInstanceQps: 20
      instances: {min: 1, max: 16}
"""
TRANSLATION = """
    - name: translation
      tier: P1
      architecture: qwen2.5-7b-instruct
      versions:
        - {version: "1.0.0", source: "hf://x/z", weightPrecision: bf16}
      context: {batch: 8, seqLen: 2048, outputTokens: 32}
      demand: {peakQps: 25, headroom: 0.2}
      perInstanceQps: 10
"""


def platform(tmp_path: Path, *, models: str = QA, extra: str = "", candidates: str = "") -> Path:
    text = textwrap.dedent(
        """\
        apiVersion: xpool.io/v1alpha1
        kind: Platform
        metadata: {name: t}
        spec:
          pools:
            - {name: lab, vendor: ascend, accelerator: ascend-910b, nodes: 1}
          candidatePools:
            - {name: rtx5090, vendor: nvidia, accelerator: rtx-5090}
            - {name: ascend910b, vendor: ascend, accelerator: ascend-910b}
        """
    )
    text += textwrap.indent(textwrap.dedent(candidates), "    ")
    text += textwrap.indent(
        textwrap.dedent(
            """\
            costs:
              acceleratorPrice: {rtx-5090: 2000, ascend-910b: 10000}
              serverPrice: {nvidia-8x-pcie: 10000, atlas-800i-a2: 20000}
              electricityPerKwh: 0.2
              pue: 1.5
              utilization: 0.5
              amortizationYears: 4
            """
        ),
        "  ",
    )
    text += textwrap.indent(textwrap.dedent(extra), "  ")
    text += "  models:" + models.rstrip() + "\n"  # model snippets are indented for spec.models
    path = tmp_path / "platform.yaml"
    path.write_text(text)
    return path


def compare_json(path: Path, pools: str) -> dict:
    result = run_xpool("plan", str(path), "--compare", pools, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def option(data: dict, name: str) -> dict:
    return next(o for o in data["options"] if o["option"] == name)


def test_one_model_on_rtx5090_hand_checked(tmp_path):
    data = compare_json(platform(tmp_path), "rtx5090")
    o = option(data, "rtx5090")
    m = o["parts"][0]["models"][0]
    # INT8 32.8 GB does not fit one 32 GB card (28.7 GiB budget): TP 2, 8 // 2 = 4 per server.
    assert (m["tp"], m["instancesPerServer"]) == (2, 4)
    # target 100 x 1.2 = 120 QPS; 120 / 20 = 6 instances = 12 GPUs -> ceil(6 / 4) = 2 servers.
    assert (m["instances"], m["accelerators"], o["servers"], o["accelerators"]) == (6, 12, 2, 16)
    # headroom 6 x 20 / 120 - 1 = 0
    assert m["headroom"] == 0 and o["headroom"] == 0
    # board 2 x 8 x 575 W = 9.2 kW; server 2 x (8 x 575 + 1,200 host) W = 11.6 kW
    assert o["boardKw"] == 9.2 and o["serverKw"] == 11.6
    # energy 11.6 kW x 0.5 x 8,760 h x PUE 1.5 = 76,212 kWh; x 0.2 = 15,242.4 per year
    assert o["energyKwhPerYear"] == 76_212.0 and o["energyCostPerYear"] == 15_242.4
    # capex 2 x (10,000 + 8 x 2,000) = 52,000
    assert o["capex"] == 52_000
    # per hour at peak: 52,000 / (4 x 8,760) = 1.484018 + 11.6 x 1.5 x 0.2 = 3.48 -> 4.964018;
    # per 1,000 requests: 4.964018 / (100 x 3,600) x 1,000 = 0.0137889
    assert o["costPerHourAtPeak"] == pytest.approx(4.964018, abs=1e-4)
    assert o["costPer1kRequests"] == pytest.approx(0.01379, abs=1e-5)


def test_storage_and_network_hand_checked(tmp_path):
    s = option(compare_json(platform(tmp_path), "rtx5090"), "rtx5090")["parts"][0]["storage"]
    # per instance: weights + 1 GiB files + 10 GiB logs + 20 GiB cache
    assert s["perInstanceBytes"]["qa-chat"] == W_INT8 + 31 * GIB
    assert s["localBytesAllInstances"] == 6 * (W_INT8 + 31 * GIB)
    # fullest server: 4 instances share one copy of the files: W + 1 GiB + 4 x 30 GiB
    assert s["localBytesFullestServer"] == W_INT8 + 121 * GIB
    # store: one copy per version + 6 instances x 10 GiB logs; raw x 1.5
    assert s["storeUsableBytes"] == W_INT8 + 61 * GIB
    assert s["storeRawBytes"] == int((W_INT8 + 61 * GIB) * 1.5)
    # all-reduce per rank at TP 2: 20 QPS x 2,048 tokens x 64 layers x 2 x (2 x 1/2) x 5,120 x 2 B
    assert s["maxTpAllReduceBytesPerSecond"] == 20 * 2048 * 64 * 2 * 1 * 5120 * 2
    assert s["rdma"] is False  # GeForce: no GPUDirect RDMA


def test_two_models_are_packed_not_rounded_per_model(tmp_path):
    data = compare_json(platform(tmp_path, models=QA + TRANSLATION), "rtx5090")
    o = option(data, "rtx5090")
    tr = next(m for m in o["parts"][0]["models"] if m["model"] == "translation")
    # translation: 25 x 1.2 = 30 QPS / 10 = 3 instances at TP 1
    assert (tr["tp"], tr["instances"]) == (1, 3)
    # 12 + 3 = 15 GPUs -> 2 servers of 8 (rounding per model would say 2 + 1 = 3)
    assert o["servers"] == 2
    # peak for cost: 100 + 25 requests/s
    assert o["peakQps"] == 125


def test_domestic_constraint_gives_a_mixed_plan(tmp_path):
    extra = """\
        constraints:
          placement:
            - {tier: P0, vendor: ascend, reason: domestic only}
        """
    data = compare_json(
        platform(tmp_path, models=QA + TRANSLATION, extra=extra), "rtx5090,ascend910b"
    )
    rtx = option(data, "rtx5090")
    assert not rtx["complete"] and "qa-chat" in rtx["excludedModels"]
    # qa-chat may only use Ascend; translation goes where it is cheapest: its 3 GPUs fit one
    # RTX server (10,000 + 8 x 2,000 = 26,000) rather than adding to the 910B server.
    assert data["mixedAssignments"] == {"qa-chat": "ascend910b", "translation": "rtx5090"}
    mixed = option(data, "mixed")
    # qa-chat on 910B: INT8 fits one 64 GB NPU -> TP 1, 120 / 20 = 6 NPUs -> 1 server;
    # translation: 1 RTX server. 2 servers; capex 1 x (20,000 + 8 x 10,000) + 26,000 = 126,000
    assert mixed["servers"] == 2 and mixed["capex"] == 126_000
    # power: (8 x 400 + 1,600) + (8 x 575 + 1,200) W = 4.8 + 5.8 = 10.6 kW
    assert mixed["serverKw"] == 10.6
    assert data["recommended"] in {"mixed", "ascend910b"}


def test_max_power_met_by_one_option_marks_the_others(tmp_path):
    extra = """\
        constraints:
          maxPowerKw: 5
        """
    data = compare_json(platform(tmp_path, extra=extra), "rtx5090,ascend910b")
    # rtx5090: 11.6 kW (above); 910B: 1 server x (8 x 400 + 1,600) W = 4.8 kW (within)
    assert option(data, "rtx5090")["violations"] == ["11.6 kW > maxPowerKw 5"]
    assert option(data, "ascend910b")["violations"] == []
    assert data["recommended"] == "ascend910b"


def test_max_power_error_names_nearest_feasible_option(tmp_path):
    extra = """\
        constraints:
          maxPowerKw: 4
        """
    result = run_xpool(
        "plan", str(platform(tmp_path, extra=extra)), "--compare", "rtx5090,ascend910b"
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    # the lowest-power option is the 910B at 1 x (8 x 400 + 1,600) W = 4.8 kW
    assert (
        "maxPowerKw 4 cannot be met: the lowest-power feasible option is 'ascend910b' at 4.8 kW"
        in line
    )
    assert line.startswith(f"error: {tmp_path / 'platform.yaml'}:")  # FILE:LINE:COL
    assert "spec.constraints.maxPowerKw" in line


def test_max_servers_error(tmp_path):
    extra = """\
        constraints:
          maxServers: 1
        """
    result = run_xpool("plan", str(platform(tmp_path, extra=extra)), "--compare", "rtx5090")
    assert result.returncode == 2
    assert "maxServers 1 cannot be met" in result.stderr and "'rtx5090' with 2" in result.stderr


def test_vendor_constraint_with_no_matching_candidate_names_one(tmp_path):
    extra = """\
        constraints:
          placement:
            - {tier: P0, vendor: ascend, reason: domestic only}
        """
    result = run_xpool("plan", str(platform(tmp_path, extra=extra)), "--compare", "rtx5090")
    assert result.returncode == 2
    assert "tier P0: vendor ascend (domestic only) cannot be met" in result.stderr
    assert "add 'lab' (ascend-910b) to --compare" in result.stderr


def test_cross_server_tp_without_rdma_is_refused_then_warned(tmp_path):
    big = """
    - name: big
      tier: P2
      architecture: llama-3.1-70b-instruct
      versions:
        - {version: "1.0.0", source: "hf://x/big", weightPrecision: bf16, kvPrecision: bf16}
      context: {batch: 8, seqLen: 2048, outputTokens: 32}
      demand: {peakQps: 1, headroom: 0}
      perInstanceQps: 1
    """
    cands = """\
        - {name: half, vendor: nvidia, accelerator: rtx-5090, acceleratorsPerNode: 4}
        """
    path = platform(tmp_path, models=big, candidates=cands)
    result = run_xpool("plan", str(path), "--compare", "half")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    # 141 GB of BF16 weights: TP 4 needs > 28.7 GiB per card; TP 8 spans 2 servers of 4
    assert "needs TP 8 > 4 accelerators per server" in line and "RDMA" in line
    extra = """\
        constraints:
          requireRdmaForCrossServerTp: false
        """
    path = platform(tmp_path, models=big, candidates=cands, extra=extra)
    data = json.loads(run_xpool("plan", str(path), "--compare", "half", "-o", "json").stdout)
    m = option(data, "half")["parts"][0]["models"][0]
    assert m["crossServerTp"] and m["tp"] == 8 and m["serversPerInstance"] == 2
    assert option(data, "half")["servers"] == 2
    assert any("across 2 servers" in w for w in data["warnings"])


def test_unknown_candidate_and_report_without_compare(tmp_path):
    path = platform(tmp_path)
    result = run_xpool("plan", str(path), "--compare", "rtx5090,nope")
    assert result.returncode == 2 and "unknown pool 'nope'" in result.stderr
    assert "rtx5090" in result.stderr  # lists what is known
    result = run_xpool("plan", str(path), "--report", str(tmp_path / "r"))
    assert result.returncode == 2 and "--report needs --compare" in result.stderr


def test_bad_fields_are_located(tmp_path):
    cands = """\
        - {name: lab, vendor: nvidia, accelerator: rtx-5090, server: hgx-8x}
        """
    extra = """\
        constraints:
          placement:
            - {tier: P9, vendor: ascend}
        """
    result = run_xpool(
        "plan", str(platform(tmp_path, candidates=cands, extra=extra)), "--compare", "lab"
    )
    assert result.returncode == 2
    err = result.stderr
    assert "has the name of a pool in spec.pools" in err
    assert "server profile 'hgx-8x' does not host rtx-5090" in err
    assert "unknown tier 'P9'" in err
    assert all(line.startswith("error: ") and ".yaml:" in line for line in err.splitlines())


def test_report_renders(tmp_path):
    out = tmp_path / "report"
    result = run_xpool(
        "plan",
        str(EXAMPLES / "hardware-selection.yaml"),
        "--compare",
        "rtx5090,h100,l40s,ascend910b",
        "--report",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    md = (out / "report.md").read_text()
    assert "# Hardware selection report" in md and "servers-cost.png" in md
    assert "| mixed" in md and "costPer1kRequests =" in md
    png = (out / "servers-cost.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    # the table still goes to stdout, the "wrote" note and warnings to stderr
    assert "recommended:" in result.stdout and "wrote" in result.stderr


def test_example_domestic_p0_mixed_plan(xpool):
    data = json.loads(
        xpool(
            "plan",
            str(EXAMPLES / "hardware-selection.yaml"),
            "--compare",
            "all",
            "-o",
            "json",
        ).stdout
    )
    # ascend-lab is owned (spec.pools, 1 server): qa-chat's 7 NPUs fit it at no purchase cost,
    # so the mixed plan takes it over the identical ascend910b purchase (not by name)
    assert data["mixedAssignments"]["qa-chat"] == "ascend-lab"
    mixed = next(o for o in data["options"] if o["option"] == "mixed")
    # 3 purchased: the summary model's roofline estimate now includes prefill (2 x 13.2e9
    # compute parameters x 1,920 prompt tokens per request at the BF16 peak), 4.1 QPS per
    # RTX 5090 pair instead of 10.6, which was more than the cards can compute
    assert (mixed["ownedServers"], mixed["purchasedServers"]) == (1, 3)
    for o in data["options"]:
        if o["kind"] == "candidate" and o["option"] in {"rtx5090", "h100", "l40s"}:
            assert "qa-chat" in o["excludedModels"]
    assert data["recommended"] is not None


@pytest.mark.parametrize(
    ("precision", "servers_rtx", "servers_910b"), [("int8", 2, 1), ("fp16", 4, 3)]
)
def test_article_scenario(xpool, precision, servers_rtx, servers_910b):
    data = json.loads(
        xpool(
            "plan",
            str(EXAMPLES / f"hardware-selection-article-{precision}.yaml"),
            "--compare",
            "rtx5090,ascend910b",
            "-o",
            "json",
        ).stdout
    )
    assert option(data, "rtx5090")["servers"] == servers_rtx
    assert option(data, "ascend910b")["servers"] == servers_910b
