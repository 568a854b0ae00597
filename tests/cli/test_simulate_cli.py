"""`xpool simulate` as a subprocess, on excerpts of the Azure conversation trace and ServeGen.

The excerpts are committed under tests/data/traces (its README.md names their sources).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import EXAMPLES, ROOT

TRACES = ROOT / "tests" / "data" / "traces"
CONV = TRACES / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv"
CONV_REQUESTS = 1_000  # the rows of the excerpt, below its header
SERVEGEN = TRACES / "servegen-language" / "m-large"
PLATFORM = str(EXAMPLES / "platform.yaml")
AZURE = ("--trace", f"azure:{CONV}=summary")


def test_azure_conv_json_compares_all_policies(xpool):
    result = xpool("simulate", PLATFORM, "--trace", f"azure:{CONV}=summary", "-o", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["mode"] == "requests"
    by = {p["policy"]: p for p in data["policies"]}
    assert list(by) == ["static", "hpa", "siloed", "pooled", "oracle", "oracle-bound"]
    for name in ("static", "hpa", "siloed", "pooled"):
        p = by[name]
        # Every request of the trace is accounted for: started, shed or too long.
        assert p["requests"] == {"P1": float(CONV_REQUESTS)}
        # summary's seqLen is 2,048: the excerpt's longer prompts are refused alike
        assert p["tooLong"]["P1"] > 0 and p["tooLong"] == by["static"]["tooLong"]
        assert 0 < p["poolUtilisation"] < p["utilisation"]
        assert 0 < p["utilisation"] <= 1
        assert 0 < p["sloAttainment"]["P1"] <= p["sloAttainable"]["P1"] <= 1
        assert p["acceleratorHours"] >= by["oracle-bound"]["acceleratorHours"]
    assert set(data["goals"]) and all(v in (True, False, None) for v in data["goals"].values())


def test_servegen_report_writes_markdown_and_plots(xpool, tmp_path):
    out = tmp_path / "report"
    result = xpool(
        "simulate",
        PLATFORM,
        "--trace",
        f"servegen:{SERVEGEN}=qa-chat*0.25",
        "--duration",
        "6h",
        "--report",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "Policies (fluid mode)" in result.stdout and "pooled" in result.stdout
    assert "goal pooled" in result.stderr
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| pooled |" in report
    for name in ("capacity", "utilisation", "ttft"):
        assert f"({name}.png)" in report
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_batch_backlog_fills_idle_capacity_and_reports_goodput(xpool):
    result = xpool(
        "simulate",
        PLATFORM,
        "--trace",
        f"servegen:{SERVEGEN}=qa-chat*0.25@6h",
        "--batch",
        "batch-eval=2000:1024:256@1h",
        "--duration",
        "6h",
        "--policies",
        "static,pooled",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    by = {p["policy"]: p for p in json.loads(result.stdout)["policies"]}
    pooled, static = by["pooled"], by["static"]
    # static holds batch-eval's instances.min (0): it never serves the batch
    assert static["batch"]["completed"] == 0 and static["batch"]["completionSeconds"] is None
    batch = pooled["batch"]
    assert batch["completed"] == 2000 and batch["jobs"][0]["submitted"] == 3600
    assert batch["tokensCompleted"] == 2000 * (1024 + 256)
    assert 0 < batch["completionSeconds"] < 5 * 3600
    assert 0 < pooled["ownedUtilisation"] < pooled["utilisation"] <= 1


def test_a_batch_trace_is_served_as_jobs_of_the_requests_submitted_together(xpool, tmp_path):
    trace = tmp_path / "batch.csv"
    lines = ["timestamp,model,input_tokens,output_tokens"]
    lines += ["100,batch-eval,1000,200"] * 3 + ["700,batch-eval,500,100"] * 2
    trace.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = xpool(
        "simulate",
        PLATFORM,
        *AZURE,
        "--batch-trace",
        f"csv:{trace}",
        "--duration",
        "2h",
        "--policies",
        "pooled",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    batch = json.loads(result.stdout)["policies"][0]["batch"]
    # timestamps count from the trace's first line: submitted at 0 s and 600 s
    assert [(j["submitted"], j["requests"]) for j in batch["jobs"]] == [(0.0, 3), (600.0, 2)]
    assert batch["completed"] == 5 and batch["tokensCompleted"] == 3 * 1200 + 2 * 600


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*AZURE, "--batch", "batch-eval"], "--batch: 'batch-eval': write MODEL=N"),
        (
            [*AZURE, "--batch", "batch-eval=ten"],
            "--batch: 'batch-eval=ten': N 'ten' must be a whole",
        ),
        ([*AZURE, "--batch", "nope=10"], "--batch: model nope is not a placed model"),
        (
            [*AZURE, "--batch", "batch-eval=10", "--requests"],
            "--requests: a batch backlog is simulated",
        ),
        ([*AZURE, "--batch-trace", f"servegen:{SERVEGEN}=batch-eval"], "--batch-trace:"),
        (["--trace", f"servegen:{SERVEGEN}=qa-chat@7m"], "shifts by whole 600-second windows"),
        (["--trace", f"azure:{CONV}=summary@later"], "--trace: "),
        (["--trace", "parquet:x.parquet"], "--trace: 'parquet:x.parquet': write KIND:PATH"),
        (["--trace", f"azure:{CONV}"], "append =MODEL"),
        (["--trace", f"azure:{CONV}=no-such-model"], "not a placed model of the platform"),
        (["--trace", f"azure:{CONV}=summary", "--policies", "pooled,magic"], "unknown magic"),
        (["--trace", f"azure:{CONV}=summary", "--cold-start", "soon"], "--cold-start:"),
        (["--trace", f"servegen:{SERVEGEN}=qa-chat", "--requests"], "use --fluid"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(xpool, args, message):
    result = xpool("simulate", PLATFORM, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


AZURE_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens"
ROW = "2023-11-16 18:15:46.6805900"


@pytest.mark.parametrize(
    ("name", "lines", "where"),
    [
        ("short.csv", [AZURE_HEADER, f"{ROW},374"], "short.csv:2:"),
        ("negative.csv", [AZURE_HEADER, f"{ROW},374,44", f"{ROW},-5,44"], "negative.csv:3:"),
        ("words.csv", [AZURE_HEADER, f"{ROW},many,44"], "words.csv:2:"),
        (
            "order.csv",
            [AZURE_HEADER, f"{ROW},374,44", "2023-11-16 18:15:40.0000000,1,1"],
            "order.csv:3:",
        ),
        ("noheader.csv", ["TIMESTAMP,ContextTokens", f"{ROW},374"], "noheader.csv:1:"),
    ],
)
def test_a_bad_azure_trace_is_located_and_exits_2(xpool, tmp_path, name, lines, where):
    trace = tmp_path / name
    trace.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = xpool("simulate", PLATFORM, "--trace", f"azure:{trace}=summary")
    assert result.returncode == 2, result.stderr
    assert where in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("lines", "where"),
    [
        (["timestamp,model,input_tokens", "0,summary,10"], "trace.csv:1: output_tokens"),
        (["timestamp,model,input_tokens,output_tokens", "0,summary,10,-1"], "trace.csv:2:"),
        (["timestamp,model,input_tokens,output_tokens", "soon,summary,10,1"], "trace.csv:2:"),
        (
            ["timestamp,model,input_tokens,output_tokens", "5,summary,10,1", "4,summary,1,1"],
            "trace.csv:3:",
        ),
    ],
)
def test_a_bad_generic_trace_is_located_and_exits_2(xpool, tmp_path, lines, where):
    trace = tmp_path / "trace.csv"
    trace.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = xpool("simulate", PLATFORM, "--trace", f"csv:{trace}")
    assert result.returncode == 2, result.stderr
    assert where in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_servegen_row_is_located_and_exits_2(xpool, tmp_path):
    good = "0.0,1.5,1.2,Gamma,0.7,1.0"
    (tmp_path / "chunk-7-trace.csv").write_text(
        f"{good}\n600.0,-2,1.2,Gamma,0.7,1.0\n", encoding="utf-8"
    )
    result = xpool("simulate", PLATFORM, "--trace", f"servegen:{tmp_path}=qa-chat")
    assert result.returncode == 2, result.stderr
    assert "chunk-7-trace.csv:2:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
