"""Token lengths for traces that have none (ServeGen records arrival rates only).

A `TokenSampler` returns one (input_tokens, output_tokens) pair per call from its own seeded
`random.Random`, so the same seed and the same number of calls give the same lengths.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import Protocol

from xpool.errors import InputError
from xpool.sim.requests import Request

# Standard deviations of ln(tokens) in the Azure LLM inference trace 2023, conversation file
# (19,366 requests; means 1,155 input and 211 output tokens).
AZURE_CONV_SIGMA_IN = 0.99
AZURE_CONV_SIGMA_OUT = 0.86


class TokenSampler(Protocol):
    """Draws the token lengths of the next request."""

    def sample(self) -> tuple[int, int]: ...


class EmpiricalTokens:
    """Resamples observed (input, output) pairs uniformly, keeping their correlation."""

    def __init__(self, pairs: Sequence[tuple[int, int]], seed: int) -> None:
        if not pairs:
            raise InputError("token lengths: no requests to resample; give a non-empty trace")
        self._pairs = list(pairs)
        self._random = random.Random(seed).random

    @classmethod
    def from_requests(cls, reqs: Iterable[Request], seed: int) -> EmpiricalTokens:
        return cls([(r.input_tokens, r.output_tokens) for r in reqs], seed)

    def sample(self) -> tuple[int, int]:
        return self._pairs[int(self._random() * len(self._pairs))]


class LognormalTokens:
    """Independent lognormal input and output lengths with the given means, at least 1 token.

    The spreads default to those of the Azure conversation trace. Real lengths are correlated
    and not quite lognormal (a lognormal with that trace's input mean and spread has median 707,
    the trace's is 1,020): prefer `EmpiricalTokens` when a trace with lengths is at hand.
    """

    def __init__(
        self,
        mean_in: float,
        mean_out: float,
        seed: int,
        sigma_in: float = AZURE_CONV_SIGMA_IN,
        sigma_out: float = AZURE_CONV_SIGMA_OUT,
    ) -> None:
        for name, value in (("mean_in", mean_in), ("mean_out", mean_out)):
            if not (value >= 1 and math.isfinite(value)):
                raise InputError(f"token lengths: {name} {value!r} must be a number >= 1")
        for name, value in (("sigma_in", sigma_in), ("sigma_out", sigma_out)):
            if not (value >= 0 and math.isfinite(value)):
                raise InputError(f"token lengths: {name} {value!r} must be a number >= 0")
        # E[exp(N(mu, s^2))] = exp(mu + s^2 / 2): choose mu so the mean is the one asked for.
        self._in = (math.log(mean_in) - sigma_in**2 / 2, sigma_in)
        self._out = (math.log(mean_out) - sigma_out**2 / 2, sigma_out)
        self._lognormal = random.Random(seed).lognormvariate

    def sample(self) -> tuple[int, int]:
        return (
            max(1, round(self._lognormal(*self._in))),
            max(1, round(self._lognormal(*self._out))),
        )
