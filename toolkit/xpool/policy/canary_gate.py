"""Judge a canary step: two checks (latency, errors), each pass, fail or inconclusive.

A check fails only on evidence: its one-sided test's p-value below the look's significance
(policy/canary_stats.py). It passes once it has its minimum sample and the canary is within
the tolerance on balance (latency: no more often slower than faster than the tolerated stable
times; errors: the observed excess at most the margin). Anything else is inconclusive: too
few samples, or a canary that looks worse than the tolerance without the evidence to say so.
The step passes when both checks pass and fails when either fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from xpool.policy.canary_stats import (
    Buckets,
    errors_exceed,
    mann_whitney_slower,
    quantile,
    total,
)

Outcome = Literal["pass", "fail", "inconclusive"]
# Fewer samples than this and the tests' normal approximations are not to be trusted.
MIN_SAMPLE_FLOOR = 20


@dataclass(frozen=True)
class Gate:
    max_error_rate: float = 0.01  # margin: canary error rate - stable error rate
    max_ttft_ratio: float = 1.25  # tolerance: canary TTFT vs this x stable TTFT + slack
    ttft_slack_ms: float = 50.0
    min_requests: int = 50  # per version and step, for each check (see docs/scheduling.md)
    significance: float = 0.01  # chance a step of an identical canary is rolled back
    extensions: int = 2  # inconclusive at the end of a step: run it again, this many times

    @property
    def final_alpha(self) -> float:
        """The significance of each end-of-step look: the step and its extensions share it."""
        return self.significance / (1 + self.extensions)

    @property
    def interim_alpha(self) -> float:
        """Within a step only overwhelming evidence fails it (Haybittle-Peto's 0.001)."""
        return min(0.001, self.significance / 10)


@dataclass(frozen=True)
class VersionSignals:
    """One version's figures over the step, from the gateway's metrics: upstream attempts and
    failed ones, and time to first token of its warm, successful attempts as buckets."""

    requests: float
    errors: float
    ttft: tuple[tuple[float, int], ...] = ()

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests > 0 else 0.0

    @property
    def samples(self) -> int:
        return total(self.ttft)

    def summary(self) -> dict[str, Any]:
        """What an operator reads: counts and TTFT quantiles in milliseconds."""

        def ms(q: float) -> float | None:
            v = quantile(self.ttft, q)
            return None if v is None else round(v * 1000, 1)

        return {
            "requests": round(self.requests, 3),
            "errors": round(self.errors, 3),
            "errorRate": round(self.error_rate, 5),
            "ttftSamples": self.samples,
            "ttftMs": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99)},
        }


@dataclass(frozen=True)
class Check:
    name: str  # latency | errors
    outcome: Outcome
    reason: str
    statistic: dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    checks: tuple[Check, ...]
    alpha: float

    @property
    def reason(self) -> str:
        order = {"fail": 0, "inconclusive": 1, "pass": 2}
        worst = min(self.checks, key=lambda c: order[c.outcome])
        if self.outcome == "pass":
            return "; ".join(c.reason for c in self.checks)
        return worst.reason

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "alpha": self.alpha,
            "checks": [
                {"name": c.name, "outcome": c.outcome, "reason": c.reason, **c.statistic}
                for c in self.checks
            ],
        }


def _latency(gate: Gate, canary: Buckets, stable: Buckets, alpha: float) -> Check:
    n_c, n_s = total(canary), total(stable)
    tolerance = f"{gate.max_ttft_ratio:g} x stable + {gate.ttft_slack_ms:g} ms"
    if min(n_c, n_s) < gate.min_requests:
        return Check(
            "latency",
            "inconclusive",
            f"TTFT: {n_c} canary and {n_s} stable samples of the {gate.min_requests} each needs",
            {"canarySamples": n_c, "stableSamples": n_s},
        )
    mw = mann_whitney_slower(
        canary, stable, ratio=gate.max_ttft_ratio, slack=gate.ttft_slack_ms / 1000
    )
    figures = {
        "test": "mann-whitney-u",
        "canarySamples": n_c,
        "stableSamples": n_s,
        "u": round(mw.u, 1),
        "z": round(mw.z, 3),
        "p": mw.p,
        "superiority": round(mw.superiority, 4),
    }
    share = f"slower than {tolerance} in {mw.superiority:.0%} of pairs"
    if mw.p < alpha:
        return Check(
            "latency", "fail", f"canary TTFT {share} (p={mw.p:.2g} < {alpha:.2g})", figures
        )
    if mw.superiority <= 0.5:
        return Check("latency", "pass", f"TTFT within {tolerance} (p={mw.p:.2g})", figures)
    return Check(
        "latency",
        "inconclusive",
        f"canary TTFT {share}, not significant (p={mw.p:.2g} >= {alpha:.2g})",
        figures,
    )


def _errors(gate: Gate, canary: VersionSignals, stable: VersionSignals, alpha: float) -> Check:
    if canary.requests < gate.min_requests:
        return Check(
            "errors",
            "inconclusive",
            f"{canary.requests:.0f} canary requests of the {gate.min_requests} the gate needs",
            {"canaryRequests": canary.requests},
        )
    t = errors_exceed(
        canary.errors, canary.requests, stable.errors, stable.requests, gate.max_error_rate
    )
    figures = {
        "test": "exact-binomial",
        "canaryRate": round(t.canary_rate, 5),
        "stableRate": round(t.stable_rate, 5),
        "margin": gate.max_error_rate,
        "p": t.p,
    }
    rates = (
        f"canary error rate {t.canary_rate:.1%} ({canary.errors:.0f} of "
        f"{canary.requests:.0f}) vs stable {t.stable_rate:.1%} + {gate.max_error_rate:.1%}"
    )
    if t.p < alpha:
        return Check("errors", "fail", f"{rates} (p={t.p:.2g} < {alpha:.2g})", figures)
    if t.excess <= gate.max_error_rate:
        return Check("errors", "pass", f"{rates}: within", figures)
    return Check("errors", "inconclusive", f"{rates}, not significant (p={t.p:.2g})", figures)


def judge(
    gate: Gate,
    canary: VersionSignals,
    stable: VersionSignals,
    alpha: float,
    *,
    concurrent: bool = True,
) -> Verdict:
    """Both checks at significance `alpha` (the look's share: interim or end of step).

    Latency is compared only with `concurrent` stable figures (the same minutes): against an
    earlier step's, load that changes over time (other tenants, bursts) would pass for a
    regression. Errors are compared either way: a failing canary must not get through the
    last step, and error rates drift far less with load than latency does."""
    if concurrent:
        latency = _latency(gate, canary.ttft, stable.ttft, alpha)
    else:
        latency = Check(
            "latency",
            "pass",
            "TTFT not compared: the stable version takes no traffic in this step (compared "
            "at every earlier step, at the same load per instance)",
            {"test": "none"},
        )
    checks = (_errors(gate, canary, stable, alpha), latency)
    outcomes = {c.outcome for c in checks}
    if "fail" in outcomes:
        outcome: Outcome = "fail"
    elif outcomes == {"pass"}:
        outcome = "pass"
    else:
        outcome = "inconclusive"
    return Verdict(outcome, checks, alpha)
