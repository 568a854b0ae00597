"""The queueing function against hand-computed and textbook Erlang C values, M/M/c's exact
wait distribution, and the directions a sizing relies on."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from xpool.policy.queueing import erlang_c, wait_quantile, waiting_probability


def _erlang_c_exact(servers: int, load: int | Fraction) -> float:
    """The textbook closed form, in exact rationals: (a^c / c!) (c / (c - a)) over
    sum_{k<c} a^k / k! + (a^c / c!) (c / (c - a))."""
    a = Fraction(load)
    terms = [Fraction(1)]
    for k in range(1, servers + 1):
        terms.append(terms[-1] * a / k)
    top = terms[servers] * servers / (servers - a)
    return float(top / (sum(terms[:servers]) + top))


@pytest.mark.parametrize(
    ("servers", "load", "expected"),
    [
        (1, 0.5, 0.5),  # M/M/1: an arrival waits with probability rho
        (2, 1.0, 1 / 3),  # (1/2 / (1/2)) / (1 + 1 + 1)
        (12, 10.0, 0.4494),  # the textbook call centre: 10 erlangs on 12 agents
        (11, 10.0, 0.6821),
        (20, 15.0, 0.1604),
    ],
)
def test_erlang_c_matches_table_values(servers: int, load: float, expected: float) -> None:
    assert erlang_c(servers, load) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize(
    ("servers", "load"),
    [(3, Fraction(1, 2)), (8, 7), (64, 37), (256, 240), (1000, 950), (40, Fraction(1, 100))],
)
def test_erlang_c_matches_the_exact_closed_form(servers: int, load: int | Fraction) -> None:
    """Including a thousand servers, where only the terms near the load are summed."""
    assert erlang_c(servers, float(load)) == pytest.approx(_erlang_c_exact(servers, load), rel=1e-9)


def test_erlang_c_is_one_when_the_servers_cannot_keep_up() -> None:
    assert erlang_c(4, 4.0) == 1.0 and erlang_c(4, 9.5) == 1.0


def test_mm1_wait_quantile_is_the_closed_form() -> None:
    """M/M/1: P(W > t) = rho exp(-(mu - lam) t), so t_q = ln(rho / (1 - q)) / (mu - lam)."""
    lam, service = 0.8, 1.0
    expected = math.log(0.8 / 0.01) / (1.0 - 0.8)
    assert wait_quantile(1, lam, service, 1.0, 1.0, 0.99) == pytest.approx(expected)


def test_mmc_wait_quantile_is_exact() -> None:
    """M/M/c (both CVs 1): P(W > t) = C(c, a) exp(-(c mu - lam) t)."""
    servers, lam, service = 12, 5.0, 2.0  # 10 erlangs
    t = wait_quantile(servers, lam, service, 1.0, 1.0, 0.95)
    assert erlang_c(12, 10.0) * math.exp(-(servers / service - lam) * t) == pytest.approx(0.05)


def test_no_wait_when_few_arrivals_wait_at_all() -> None:
    """C(40, 1/100) is far below 1%: the 99th percentile arrival starts at once."""
    assert wait_quantile(40, 0.01, 1.0, 1.0, 1.0, 0.99) == 0.0
    assert wait_quantile(8, 0.0, 1.0, 5.0, 1.0, 0.99) == 0.0


def test_overloaded_or_without_servers_the_wait_is_unbounded() -> None:
    assert wait_quantile(8, 8.0, 1.0, 1.0, 1.0, 0.5) == math.inf
    assert wait_quantile(0, 0.1, 1.0, 1.0, 1.0, 0.5) == math.inf


def test_evenly_spaced_arrivals_of_constant_service_never_wait() -> None:
    assert wait_quantile(8, 7.9, 1.0, 0.0, 0.0, 0.999) == 0.0


def test_fractional_servers_interpolate_between_whole_ones() -> None:
    assert waiting_probability(3.0, 2.0) == erlang_c(3, 2.0)
    assert waiting_probability(3.25, 2.0) == pytest.approx(
        0.75 * erlang_c(3, 2.0) + 0.25 * erlang_c(4, 2.0)
    )


GRID = [(c, lam) for c in (1, 4, 16, 64, 256) for lam in (0.1, 0.5, 0.9)]


@pytest.mark.parametrize(("servers", "utilisation"), GRID)
def test_wait_grows_with_load_and_variability(servers: int, utilisation: float) -> None:
    service = 2.0
    lam = utilisation * servers / service
    base = wait_quantile(servers, lam, service, 1.0, 1.0, 0.99)
    assert wait_quantile(servers, lam * 1.05, service, 1.0, 1.0, 0.99) >= base
    assert wait_quantile(servers, lam, service, 4.0, 1.0, 0.99) >= base
    assert wait_quantile(servers, lam, service, 1.0, 1.0, 0.999) >= base
    assert wait_quantile(servers + 1, lam, service, 1.0, 1.0, 0.99) <= base


def test_bursty_arrivals_wait_where_erlang_c_says_nobody_does() -> None:
    """64 slots at 37 erlangs: Erlang C says 1 in 100,000 waits; arrivals in bursts (gap CV2
    58, as a production trace showed) wait, which is what the sizing has to see."""
    assert erlang_c(64, 37.0) < 1e-4
    assert wait_quantile(64, 3.26, 11.35, 1.0, 1.0, 0.99) == 0.0
    assert wait_quantile(64, 3.26, 11.35, 58.0, 1.0, 0.99) > 1.0
