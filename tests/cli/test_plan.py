"""`xpool plan` and `xpool validate` on the shipped examples, run as a subprocess."""

from __future__ import annotations

import json

from tests.conftest import EXAMPLES


def _row(plan, model, pool):
    return next(r for r in plan["models"] if r["model"] == model and r["pool"] == pool)


def test_plan_json_pins_the_article_model(xpool):
    result = xpool("plan", str(EXAMPLES / "platform.yaml"), "-o", "json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    qa = _row(plan, "qa-chat", "rtx5090")
    assert qa["kvBytesPerToken"] == 262_144
    assert qa["kvBytesForContext"] == 4_294_967_296
    # INT8 weights of 32.8 B parameters do not fit one 32 GB RTX 5090: TP 2, 4 per node.
    assert qa["tp"] == 2 and qa["instancesPerNode"] == 4
    # 100 QPS x 1.2 / 20 QPS per instance = 6 instances -> 2 servers of 8.
    assert qa["instancesNeeded"] == 6 and qa["nodesNeeded"] == 2
    # On a 64 GB Ascend 910B the same model fits one NPU.
    assert _row(plan, "qa-chat", "ascend910b")["tp"] == 1
    for row in plan["models"]:
        for key in ("weightBytes", "kvBytesPerToken", "kvTokenCapacity", "instancesNeeded"):
            assert isinstance(row[key], int)
    assert {t["tier"] for t in plan["tiers"]} == {"P0", "P1", "P2"}
    assert all(p["accelerators"] > 0 for p in plan["pools"])


def test_plan_table_goes_to_stdout_and_nothing_else(xpool):
    result = xpool("plan", str(EXAMPLES / "platform.yaml"))
    assert result.returncode == 0
    assert "qa-chat" in result.stdout and "HOLDS PEAK" in result.stdout
    assert all(line.startswith("warning: ") for line in result.stderr.splitlines())
    # The article's 18 QPS per 910B instance at batch 8 is beyond the roofline: said on stderr.
    assert "qa-chat 1.0.0 on ascend910b: perInstanceQps 18 exceeds" in result.stderr


def test_validate_ok_says_so_on_stderr(xpool):
    result = xpool("validate", str(EXAMPLES / "platform.yaml"))
    assert result.returncode == 0
    assert result.stdout == ""
    assert "valid" in result.stderr


def test_schema_is_json_schema_with_camel_case_fields(xpool):
    result = xpool("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    pool = schema["$defs"]["Pool"]["properties"]
    assert "acceleratorsPerNode" in pool and "memoryUtilization" in pool
    assert schema["$defs"]["Pool"]["additionalProperties"] is False


def test_committed_schema_is_fresh(xpool):
    committed = json.loads((EXAMPLES.parent / "docs" / "platform.schema.json").read_text())
    assert committed == json.loads(xpool("schema").stdout), (
        "docs/platform.schema.json is stale: run `xpool schema > docs/platform.schema.json`"
    )
