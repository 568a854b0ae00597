"""The two tests a canary step is judged with, on what the gateway exports: latency as
histogram buckets, errors as counts. Pure Python (the reconciler image carries no numpy).

- Latency: a one-sided Mann-Whitney U test that the canary's times are stochastically larger
  than the stable version's times *as tolerated* (each stable time t taken as
  `ratio * t + slack`). Rank-based, so a few slow outliers cannot fail a step on their own and
  no distribution is assumed; computed on bucket counts, each bucket a group of ties (the
  gateway's buckets are 25% wide, so a bucket's middle is within 12% of any time in it).
  Normal approximation with the tie correction and a continuity correction: sound from about
  20 samples per side, which is why a gate never judges fewer.
- Errors: an exact binomial test of the canary's error count against the stable version's
  rate plus a margin. Exact because errors are rare: with a handful of them the normal
  approximation of the usual score test of two rates overstates the evidence (3 errors in 50
  against 0% + 1 point: 0.02% instead of the exact 1.4%) and would roll back healthy canaries. The stable rate is taken as known: it is
  measured on as many requests as the canary's or more (the 100% step uses the last step's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# (upper bound in seconds, observations in (previous bound, upper bound]); math.inf last
Buckets = Sequence[tuple[float, float]]


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


def from_cumulative(cumulative: Sequence[tuple[float, float]]) -> tuple[tuple[float, int], ...]:
    """Prometheus `le` buckets (cumulative, possibly fractional from increase()) as whole
    counts per bucket, in bound order. Rounding the cumulative series keeps the total right."""
    ordered = sorted(cumulative)
    out: list[tuple[float, int]] = []
    previous = 0
    for bound, count in ordered:
        whole = max(previous, round(count))
        out.append((bound, whole - previous))
        previous = whole
    return tuple(out)


def total(buckets: Buckets) -> int:
    return int(sum(c for _, c in buckets))


def _middles(buckets: Buckets) -> list[tuple[float, float]]:
    """Each non-empty bucket as (a representative time, count): its middle; the last,
    unbounded bucket at 1.25 x its lower bound (the buckets' own growth)."""
    out = []
    lower = 0.0
    for upper, count in buckets:
        if count > 0:
            out.append((lower * 1.25 if math.isinf(upper) else (lower + upper) / 2, float(count)))
        lower = upper
    return out


def quantile(buckets: Buckets, q: float) -> float | None:
    """The q-quantile, interpolated within its bucket (as Prometheus' histogram_quantile)."""
    n = sum(c for _, c in buckets)
    if n <= 0:
        return None
    rank, seen, lower = q * n, 0.0, 0.0
    for upper, count in buckets:
        if count > 0 and seen + count >= rank:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper
    return lower


@dataclass(frozen=True)
class MannWhitney:
    u: float  # pairs (canary, tolerated stable) where the canary is slower, ties counting half
    n_canary: int
    n_stable: int
    z: float
    p: float  # one-sided: the canary is slower than the stable as tolerated

    @property
    def superiority(self) -> float:
        """P(a canary time > a tolerated stable time): 0.5 when alike, 1 when always slower."""
        pairs = self.n_canary * self.n_stable
        return self.u / pairs if pairs else 0.5


def mann_whitney_slower(
    canary: Buckets, stable: Buckets, *, ratio: float = 1.0, slack: float = 0.0
) -> MannWhitney:
    """Test whether the canary's times exceed the stable's times scaled by `ratio` plus
    `slack` seconds (the tolerance): U counts, over every pair, the canary being slower."""
    mine = _middles(canary)
    theirs = [(ratio * t + slack, c) for t, c in _middles(stable)]
    n1, n2 = sum(c for _, c in mine), sum(c for _, c in theirs)
    if n1 == 0 or n2 == 0:
        return MannWhitney(0.0, int(n1), int(n2), 0.0, 1.0)
    values = sorted({t for t, _ in mine} | {t for t, _ in theirs})
    at_canary = dict.fromkeys(values, 0.0)
    at_stable = dict.fromkeys(values, 0.0)
    for t, c in mine:
        at_canary[t] += c
    for t, c in theirs:
        at_stable[t] += c
    u, below, ties = 0.0, 0.0, 0.0
    for t in values:
        a, b = at_canary[t], at_stable[t]
        u += a * (below + b / 2)
        below += b
        tied = a + b
        ties += tied**3 - tied
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    mean = n1 * n2 / 2
    if variance <= 0:  # every time tied: no evidence either way
        return MannWhitney(u, int(n1), int(n2), 0.0, 0.5 if u >= mean else 1.0)
    z = (u - mean - 0.5) / math.sqrt(variance)
    return MannWhitney(u, int(n1), int(n2), z, normal_sf(z))


def binomial_tail(x: int, n: int, p: float) -> float:
    """P(X >= x) for X ~ Binomial(n, p), summed exactly from the side with fewer terms."""
    if x <= 0 or p >= 1:
        return 1.0
    if x > n or p <= 0:
        return 0.0

    def pmf(k: int) -> float:
        return math.exp(
            math.lgamma(n + 1)
            - math.lgamma(k + 1)
            - math.lgamma(n - k + 1)
            + k * math.log(p)
            + (n - k) * math.log1p(-p)
        )

    odds = p / (1 - p)
    if x > n * p:  # the upper tail, from x up: terms fall off past the mode
        term, k, tail = pmf(x), x, 0.0
        while k <= n and term > tail * 1e-17:
            tail += term
            term *= (n - k) / (k + 1) * odds
            k += 1
        return min(1.0, tail)
    term, k, below = pmf(x - 1), x - 1, 0.0  # 1 - the lower tail, from x - 1 down
    while k >= 0 and term > below * 1e-17:
        below += term
        term *= k / (n - k + 1) / odds
        k -= 1
    return max(0.0, 1.0 - below)


@dataclass(frozen=True)
class RateTest:
    canary_rate: float
    stable_rate: float
    margin: float
    p: float  # one-sided: the canary's errors are more than the stable rate + margin gives

    @property
    def excess(self) -> float:
        return self.canary_rate - self.stable_rate


def errors_exceed(
    canary_errors: float,
    canary_requests: float,
    stable_errors: float,
    stable_requests: float,
    margin: float,
) -> RateTest:
    """Exact binomial test of the canary's error count against the stable version's observed
    rate plus `margin`: the chance of that many errors or more if the canary were no worse."""
    n, x = round(canary_requests), round(canary_errors)
    p1 = x / n if n > 0 else 0.0
    p2 = stable_errors / stable_requests if stable_requests > 0 else 0.0
    p = binomial_tail(x, n, min(1.0, p2 + margin)) if n > 0 else 1.0
    return RateTest(p1, p2, margin, p)
