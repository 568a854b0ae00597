"""Waiting times of a G/G/c queue: Erlang C, scaled for variability.

`c` servers (batch slots), arrivals at rate `lam` with squared coefficient of variation
`ca2` of their gaps, service times of mean `service` and squared CV `cs2`; z = (ca2 + cs2)/2
(1 for M/M/c). P(W > t) = P(wait) exp(-t (c / service - lam) / z):
- the wait, given that there is one, is exponential with mean z / (c / service - lam): exact
  for M/M/c (z = 1), and Allen-Cunneen's G/G/c mean wait (Erlang C x z / (c mu - lam));
- P(wait) is Erlang C of c / z servers offered a / z erlangs (Hayward's scaling for peaked
  traffic): Allen-Cunneen keeps M/M/c's Erlang C, which for bursty arrivals (z of 10 and
  more, as production traces show) says almost nobody waits while whole bursts queue.
Both are exact for M/M/c. Why this model: docs/scheduling.md, "SLO-aware targets".
"""

from __future__ import annotations

import math

# Poisson terms further than this many standard deviations (plus as many terms, for small
# loads) from the load are below 1e-30 of the largest and cannot change a float sum.
_TAIL = 12.0


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c with `load` = lam x service erlangs: the Poisson(load)
    probability of `servers` over that of at most `servers`. Summed in log space over the
    terms that matter, so a thousand servers costs what a few dozen do."""
    if load <= 0:
        return 0.0
    spread = _TAIL * (math.sqrt(load) + 1)
    lo = max(0, math.floor(load - spread))
    hi = min(servers, math.ceil(load + spread))
    log_load = math.log(load)

    def log_term(k: int) -> float:
        return k * log_load - math.lgamma(k + 1)

    peak = log_term(max(lo, min(hi, math.floor(load))))
    total = math.fsum(math.exp(log_term(k) - peak) for k in range(lo, hi + 1))
    return math.exp(log_term(servers) - peak) / total


def erlang_c(servers: int, load: float) -> float:
    """Probability that an arrival waits in M/M/c (1 when the servers cannot keep up)."""
    if load >= servers:
        return 1.0
    blocking = erlang_b(servers, load)
    rho = load / servers
    return blocking / (1 - rho * (1 - blocking))


def waiting_probability(servers: float, load: float) -> float:
    """Erlang C at a fractional number of servers: linear between the whole numbers around
    it (1 where they cannot keep up), so it falls steadily as servers are added."""
    whole = math.floor(servers)
    share = servers - whole
    below = erlang_c(whole, load)
    return below if share == 0 else (1 - share) * below + share * erlang_c(whole + 1, load)


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
