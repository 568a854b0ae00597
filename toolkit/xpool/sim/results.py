"""What one simulated policy achieved: accelerator-hours, utilisation, SLO attainment, events.

Latencies are kept as log-spaced histograms (20 bins per decade from 1 ms to 10,000 s), so
memory does not grow with the number of requests and fluid ticks can add weighted counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from xpool.sim.backlog import BatchResult

BINS_PER_DECADE = 20
LOWEST = -3  # 10^-3 s
BINS = 7 * BINS_PER_DECADE


def bin_of(seconds: float) -> int:
    if seconds <= 10.0**LOWEST:
        return 0
    return min(BINS - 1, int((math.log10(seconds) - LOWEST) * BINS_PER_DECADE))


def bin_upper(index: int) -> float:
    return 10.0 ** (LOWEST + (index + 1) / BINS_PER_DECADE)


@dataclass
class TierResult:
    requests: float = 0.0  # started, shed, rejected, too long or still waiting past the SLO
    within_slo: float = 0.0  # TTFT <= slo.ttftMs
    shed: float = 0.0  # answered 429 on every attempt (or waited past the fluid retry span)
    attainable: float = 0.0  # whose prefill alone is within the SLO (no policy does better)
    ttft: list[float] = field(default_factory=lambda: [0.0] * BINS)
    too_long: float = 0.0  # prompts longer than the model's seqLen: refused by the engine
    requeued: float = 0.0  # killed on a terminated instance and served again from the start

    @property
    def attainment(self) -> float | None:
        return self.within_slo / self.requests if self.requests else None

    @property
    def attainable_share(self) -> float | None:
        return self.attainable / self.requests if self.requests else None

    def quantile(self, q: float) -> float | None:
        """Upper edge of the histogram bin holding the q-quantile of TTFT (started requests)."""
        total = sum(self.ttft)
        if not total:
            return None
        seen = 0.0
        for i, n in enumerate(self.ttft):
            seen += n
            if seen >= q * total:
                return bin_upper(i)
        return bin_upper(BINS - 1)


@dataclass(frozen=True)
class Sample:
    """One point of the time series behind the plots, per tier (accelerators)."""

    t: float
    demand: dict[str, float]  # accelerators the arrivals since the last sample kept busy
    held: dict[str, float]  # accelerators held (loading, ready, draining)
    utilisation: float | None  # busy / held accelerator-time since the last sample


@dataclass
class PolicyResult:
    policy: str
    seconds: float  # simulated span
    accelerator_seconds: float = 0.0
    busy_accelerator_seconds: float = 0.0
    # the accelerators of the pools the simulated models run on x the simulated span
    owned_accelerator_seconds: float = 0.0
    tiers: dict[str, TierResult] = field(default_factory=dict)
    scale_ups: int = 0  # instances launched
    scale_downs: int = 0  # instances drained by autoscaling
    preemptions: int = 0  # instances drained to reclaim capacity for another tier
    # of those, by the tier that gave them up, then the tier they were reclaimed for
    reclaimed: dict[str, dict[str, int]] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    wall_seconds: float = 0.0
    batch: BatchResult | None = None  # the backlog's outcome, when one was submitted
    # What the accelerator exporters report, over the pools the models run on (their
    # accelerators x duration: `owned_accelerator_seconds`): an accelerator is busy while its
    # instance has a request in flight (kernels run).
    pool_busy_seconds: float = 0.0

    @property
    def accelerator_hours(self) -> float:
        return self.accelerator_seconds / 3600

    @property
    def utilisation(self) -> float | None:
        if not self.accelerator_seconds:
            return None
        return self.busy_accelerator_seconds / self.accelerator_seconds

    @property
    def owned_utilisation(self) -> float | None:
        """Busy accelerator-time over the pool's: what the owner paid for, held or not."""
        if not self.owned_accelerator_seconds:
            return None
        return self.busy_accelerator_seconds / self.owned_accelerator_seconds

    @property
    def pool_utilisation(self) -> float | None:
        """The exporters' view over the same pools: accelerators with a request in flight
        (None for the oracles, which serve no requests)."""
        if not self.owned_accelerator_seconds or not self.pool_busy_seconds:
            return None
        return self.pool_busy_seconds / self.owned_accelerator_seconds

    @property
    def shed(self) -> float:
        return sum(t.shed for t in self.tiers.values())

    def as_dict(self, oracle_hours: float | None) -> dict[str, Any]:
        util, owned = self.utilisation, self.owned_utilisation
        return {
            "policy": self.policy,
            "acceleratorHours": round(self.accelerator_hours, 3),
            "utilisation": None if util is None else round(util, 4),
            "ownedUtilisation": None if owned is None else round(owned, 4),
            "ratioToOracle": (
                round(self.accelerator_hours / oracle_hours, 3) if oracle_hours else None
            ),
            "sloAttainment": {
                name: None if t.attainment is None else round(t.attainment, 5)
                for name, t in self.tiers.items()
            },
            "sloAttainable": {
                name: None if t.attainable_share is None else round(t.attainable_share, 5)
                for name, t in self.tiers.items()
            },
            "ttftP50Seconds": {name: _round(t.quantile(0.5)) for name, t in self.tiers.items()},
            "ttftP99Seconds": {name: _round(t.quantile(0.99)) for name, t in self.tiers.items()},
            "requests": {name: round(t.requests, 1) for name, t in self.tiers.items()},
            "shed": round(self.shed, 1),
            "tooLong": {name: round(t.too_long, 1) for name, t in self.tiers.items()},
            "requeued": {name: round(t.requeued, 1) for name, t in self.tiers.items()},
            "poolUtilisation": _round(self.pool_utilisation),
            "scaleUps": self.scale_ups,
            "scaleDowns": self.scale_downs,
            "preemptions": self.preemptions,
            "reclaimed": {
                tier: dict(sorted(by.items())) for tier, by in sorted(self.reclaimed.items())
            },
            "batch": None if self.batch is None else self.batch.as_dict(),
            "wallSeconds": round(self.wall_seconds, 3),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
