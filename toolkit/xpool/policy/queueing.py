"""Waiting times of a G/G/c queue: Erlang C, scaled for variability.

`c` servers (batch slots), arrivals at rate `lam` with squared coefficient of variation
`ca2` of their gaps, service times of mean `service` and squared CV `cs2`; z = (ca2 + cs2)/2
(1 for M/M/c). P(W > t) = P(wait) exp(-t (c / service - lam) / z):
- the wait, given that there is one, is exponential with mean z / (c / service - lam): exact
  for M/M/c (z = 1), and for G/G/c the mean of a wait in the Allen-Cunneen approximation
  (whose mean wait is Erlang C x z / (c / service - lam));
- P(wait) is Erlang C of c / z servers offered a / z erlangs (Hayward's scaling for peaked
  traffic): Allen-Cunneen keeps M/M/c's Erlang C, which for bursty arrivals (z of 10 and
  more, as production traces show) says almost nobody waits while whole bursts queue.
Both are exact for M/M/c. Why this model: docs/scheduling.md, "SLO-aware targets".
"""

from __future__ import annotations

import math

# Poisson terms below this share of the largest cannot change a float sum; a blocking
# probability below it is 0 here (no percentile a platform file can ask for comes close).
_NEGLIGIBLE = 1e-18


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c with `load` = lam x service erlangs: the Poisson(load)
    probability of `servers` over that of at most `servers`. The terms are summed relative
    to the largest, outwards from it, and only while they matter, so a thousand servers cost
    what a few dozen do and nothing overflows."""
    if load <= 0:
        return 0.0
    top = min(servers, math.floor(load))  # the largest term at or below `servers`
    total = term = 1.0
    k = top
    while k > 0 and term > _NEGLIGIBLE * total:  # downwards: term(k - 1) = term(k) k / a
        term *= k / load
        total += term
        k -= 1
    term = 1.0
    for k in range(top + 1, servers + 1):  # upwards to `servers`: term(k) = term(k - 1) a / k
        term *= load / k
        if term < _NEGLIGIBLE * total:
            return 0.0
        total += term
    return term / total


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c (1 when the servers cannot keep up)."""
    if load >= servers:
        return 1.0
    return _waiting(servers, load, erlang_b(servers, load))


def _waiting(servers: int, load: float, blocking: float) -> float:
    """Erlang C from Erlang B of the same servers and load."""
    rho = load / servers
    return blocking / (1 - rho * (1 - blocking))


def waiting_probability(servers: float, load: float) -> float:
    """Erlang C at a fractional number of servers: linear between the whole numbers around
    it (1 where they cannot keep up), so it falls steadily as servers are added."""
    whole = math.floor(servers)
    share = servers - whole
    if load >= whole + (share > 0):
        return 1.0
    blocking = erlang_b(whole, load)
    below = _waiting(whole, load, blocking) if load < whole else 1.0
    if share == 0:
        return below
    above = load * blocking / (whole + 1 + load * blocking)  # Erlang B's own recursion
    return (1 - share) * below + share * _waiting(whole + 1, load, above)


def wait_quantile(
    servers: int, lam: float, service: float, ca2: float, cs2: float, q: float
) -> float:
    """Seconds within which a share `q` of arrivals starts service (inf when overloaded)."""
    if lam <= 0:
        return 0.0
    load = lam * service
    if load >= servers:
        return math.inf
    z = (ca2 + cs2) / 2
    if z <= 0:  # evenly spaced arrivals, constant service, spare slots: nobody waits
        return 0.0
    waits = waiting_probability(servers / z, load / z)
    if waits <= 1 - q:
        return 0.0
    return z / (servers / service - lam) * math.log(waits / (1 - q))
