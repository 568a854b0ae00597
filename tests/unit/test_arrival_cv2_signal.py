"""The reconciler reads arrival variability only in mode slo, and a model with requests and
no variability series has it missing (no scale-down), as for its other signals."""

from __future__ import annotations

from dataclasses import replace

from tests.unit.policy_world import model, spec_of
from xpool.adapters.prometheus import Sample
from xpool.policy.spec import ScalingSpec
from xpool.reconcile.signals import Queries, read_loads

QUERIES = Queries("qps", "up", "prompt", "completion", "cv2", "batch", "batch tokens", {})


class _Prometheus:
    """Answers each of the reconciler's queries with fixed samples; counts what was asked."""

    def __init__(self, answers: dict[str, dict[str, float]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def query(self, expr: str) -> list[Sample]:
        self.asked.append(expr)
        if expr == "up":
            return [Sample({}, 1.0, 0.0)]
        return [Sample({"model": m}, v, 0.0) for m, v in self.answers.get(expr, {}).items()]


ANSWERS = {"qps": {"chat": 4.0, "embed": 2.0, "idle": 0.0}, "cv2": {"chat": 3.5}}


def _read(mode: str) -> tuple[dict, list[str]]:
    spec = spec_of(
        [model("chat", "P0"), model("embed", "P1"), model("idle", "P1")],
        scaling=replace(ScalingSpec(), mode=mode),
    )
    prom = _Prometheus(ANSWERS)
    loads = read_loads(prom, QUERIES, spec, {"p": "nvidia"})  # type: ignore[arg-type]
    return loads, prom.asked


def test_mode_slo_reads_arrival_variability() -> None:
    loads, asked = _read("slo")
    assert "cv2" in asked
    assert loads["chat"].arrival_cv2 == 3.5 and loads["chat"].missing == ()
    assert loads["embed"].arrival_cv2 is None
    assert loads["embed"].missing == ("arrival cv2 (no series while requests are served)",)
    assert loads["idle"].arrival_cv2 is None and loads["idle"].missing == ()


def test_the_band_does_not_ask_for_it() -> None:
    loads, asked = _read("band")
    assert "cv2" not in asked
    assert all(load.arrival_cv2 is None and load.missing == () for load in loads.values())
