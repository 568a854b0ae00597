"""`autoscaling.mode: slo` from the platform file through the CLI: `xpool validate` accepts it,
and `xpool simulate` runs the pooled policy sized by the queue on the committed Azure excerpt.
(A bad mode is a located error with exit 2: tests/cli/malformed/104-*.yaml.)"""

from __future__ import annotations

import json

from tests.conftest import EXAMPLES, ROOT

CONV = ROOT / "tests" / "data" / "traces" / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv"


def _slo_platform(tmp_path, mode: str = "slo"):
    text = (EXAMPLES / "platform.yaml").read_text()
    marker = "  autoscaling:\n"
    assert marker in text
    path = tmp_path / "platform.yaml"
    path.write_text(text.replace(marker, f"{marker}    mode: {mode}\n    slo: {{headroom: 0.2}}\n"))
    return path


def test_validate_accepts_mode_slo(xpool, tmp_path):
    result = xpool("validate", str(_slo_platform(tmp_path)))
    assert result.returncode == 0, result.stderr


def test_simulate_runs_mode_slo(xpool, tmp_path):
    runs = {}
    for mode in ("band", "slo"):
        result = xpool(
            "simulate",
            str(_slo_platform(tmp_path, mode)),
            "--trace",
            f"azure:{CONV}=summary",
            "--policies",
            "pooled",
            "-o",
            "json",
        )
        assert result.returncode == 0, result.stderr
        (pooled,) = json.loads(result.stdout)["policies"]
        assert pooled["requests"] == {"P1": 1000.0}
        runs[mode] = pooled
    # summary's 4.6 requests/s of long prompts: the band and the queue size it differently
    assert runs["slo"]["acceleratorHours"] != runs["band"]["acceleratorHours"]
