"""The reconciler's `modelArrivalCv2` PromQL, evaluated by Prometheus's own rule engine
(`promtool test rules`) on request counters of known arrival counts: variance / mean of the
30 s counts, summed over gateway replicas, a counter reset dropped, no series without traffic."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from xpool.render.environment import policy_yaml

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt-get install -y prometheus)"
)


def _values(per_15s: list[int], reset_at: int | None = None) -> str:
    """A counter scraped every 15 s that grows by `per_15s` (cycled) for 20 minutes."""
    value, out = 0, []
    for k in range(81):
        if k == reset_at:
            value = 0
        out.append(str(value))
        value += per_15s[k % len(per_15s)]
    return " ".join(out)


def test_query_gives_the_index_of_dispersion(tmp_path: Path) -> None:
    expr = policy_yaml("promql.yaml")["reconciler"]["modelArrivalCv2"]
    (tmp_path / "rules.yaml").write_text(
        f"groups:\n- name: slo\n  rules:\n  - record: model:arrival_cv2\n    expr: '{expr}'\n"
    )
    # chat: 30 s counts alternate 10 and 30 (split over two gateways): variance 100, mean 20
    # (21 points in 10 minutes: 4.87); steady: 4 every 30 s, with a gateway restart (counter
    # reset) at minute 14; idle: 0 / 0 is NaN, which the reader skips (here `>= 0` drops it)
    series = {
        'xpool_gateway_requests_total{model="chat",gateway="a",code="200"}': _values([2, 2, 7, 7]),
        'xpool_gateway_requests_total{model="chat",gateway="b",code="200"}': _values([3, 3, 8, 8]),
        'xpool_gateway_requests_total{model="steady",gateway="a",code="200"}': _values([2], 56),
        'xpool_gateway_requests_total{model="idle",gateway="a",code="200"}': _values([0]),
    }
    inputs = "".join(f"  - series: '{name}'\n    values: '{v}'\n" for name, v in series.items())
    (tmp_path / "test.yaml").write_text(
        "rule_files: [rules.yaml]\nevaluation_interval: 15s\ntests:\n- interval: 15s\n"
        f"  input_series:\n{inputs}"
        "  promql_expr_test:\n  - expr: round(model:arrival_cv2 >= 0, 0.5)\n    eval_time: 20m\n"
        "    exp_samples:\n"
        "    - labels: '{model=\"chat\"}'\n      value: 5\n"
        "    - labels: '{model=\"steady\"}'\n      value: 0\n"
    )
    assert PROMTOOL is not None
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
