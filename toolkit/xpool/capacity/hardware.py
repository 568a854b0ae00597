"""Hardware selection's value types: resolved hardware, sized models, purchase options.

`capacity/hardware_selection.py` computes them (`compare`), `capacity/storage.py` sizes their
storage and network, `report/hardware_report.py` lays them out. Each figure is a property, so
the JSON output (`as_dict`), the tables and the report read the same arithmetic; `FORMULAS`
states it in words and travels with the JSON output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from xpool.capacity.plan import ModelPlan
from xpool.catalog.accelerators import Accelerator
from xpool.catalog.servers import ServerProfile
from xpool.config.models import Pool

HOURS_PER_YEAR = 8760

# How options are ranked and how equal ones are ordered, so that a result never depends on
# the order of --compare or on the candidates' names unless everything else is equal.
RANKING = (
    "complete options within every limit, by cost per 1,000 requests at peak (options with an "
    "unknown price after priced ones); equal cost: lower energy per year, then fewer servers, "
    "then fewer purchased servers (owned before purchase), then the option's name"
)
MIXED_PLAN_ORDER = (
    "each model, highest tier first, on the allowed candidate whose cost per hour at peak grows "
    "least (unknown prices after known ones, compared on power); equal growth: the model's share "
    "of its servers' cost, then lower added power, then fewer added servers, then an owned pool "
    "before a purchase, then the candidate's name"
)

FORMULAS = {
    "targetQps": "peakQps x (1 + headroom)",
    "instances": "max(instances.min, ceil(targetQps / qpsPerInstance))",
    "servers": "instances (TP accelerators each) packed first-fit-decreasing into servers of "
    "acceleratorsPerNode; for one model: ceil(instances / floor(acceleratorsPerNode / TP))",
    "headroom": "instances x qpsPerInstance / targetQps - 1 (the option's figure: the smallest)",
    "boardKw": "servers x acceleratorsPerNode x boardPowerW / 1000",
    "serverKw": "servers x (acceleratorsPerNode x boardPowerW + hostPowerW) / 1000",
    "psuRedundantW": "(PSU units - redundant units) x PSU rating; a server whose draw "
    "(acceleratorsPerNode x boardPowerW + hostPowerW) exceeds it is warned about",
    "energyKwhPerYear": "serverKw x utilization x 8760 h x PUE  (owned servers included)",
    "ownedServers": "min(servers, nodes) for a pool of spec.pools (owned: no purchase cost); "
    "0 for spec.candidatePools",
    "capex": "(servers - ownedServers) x (serverPrice + acceleratorsPerNode x acceleratorPrice)",
    "costPer1kRequests": "(capex / (amortizationYears x 8760 h) + serverKw x PUE x pricePerKwh) "
    "/ (sum of peakQps x 3600) x 1000  [per hour at peak, full power]",
    "perInstanceBytes": "weights + modelFileAllowance + logsPerInstance + cachePerInstance",
    "localBytesPerServer": "sum over model versions on the server (weights + modelFileAllowance) "
    "+ instances on it x (logs + cache)",
    "storeUsableBytes": "sum over model versions (weights + modelFileAllowance) + instances x logs",
    "storeRawBytes": "storeUsableBytes x redundancyFactor",
    "tpAllReduceBytesPerSecond": "qpsPerInstance x seqLen x layers x 2 all-reduces x "
    "2(TP-1)/TP x hidden x 2 B  (per rank; ring all-reduce of 16-bit activations)",
    "coldLoadSeconds": "weights / storage NIC bandwidth of one server (storageGbps of its "
    "profile; not the compute fabric that TP uses)",
    "memory": "per placement: bytesPerAccelerator = weights / TP + KV of batch x seqLen on one "
    "rank + activations + runtime overhead, fits when <= budgetBytesPerAccelerator = "
    "accelerator memory x memoryUtilization (docs/capacity.md)",
}


def supports_fp8(accel: Accelerator) -> bool:
    """Whether FP8 weights and an FP8 KV cache can be held at all (`fp8Storage` in the
    catalog): natively, or as vLLM's weight-only W8A16 on GPUs without FP8 units (A100,
    RTX 3090). The Ascend 910B has no FP8 data type, so FP8 cannot be planned on it."""
    return accel.fp8_storage


@dataclass(frozen=True)
class Hardware:
    """A pool or candidate pool with its server profile, prices and power resolved."""

    name: str
    kind: str  # "pool" | "candidate"
    pool: Pool
    accel: Accelerator
    server: ServerProfile
    per_node: int
    declared_nodes: int | None
    board_w: float
    accel_price: float | None
    accel_price_source: str
    server_price: float | None
    server_price_source: str

    @property
    def owned(self) -> bool:
        """A pool of spec.pools is hardware the platform runs on today: already paid for."""
        return self.kind == "pool"

    @property
    def owned_servers(self) -> int:
        """Servers that cost nothing to use: an owned pool's nodes."""
        return (self.declared_nodes or 0) if self.owned else 0

    @property
    def server_w(self) -> float:
        """One fully populated server at full load: boards + host."""
        return self.per_node * self.board_w + self.server.host_power_w

    @property
    def server_kw(self) -> float:
        return self.server_w / 1000

    @property
    def exceeds_redundant_psu(self) -> bool:
        """Whether a server at full load draws more than its supplies give with redundancy."""
        return self.server_w > self.server.psu.redundant_capacity_w

    @property
    def server_capex(self) -> float | None:
        """The price of one more server, populated; None when a price is unknown."""
        if self.accel_price is None or self.server_price is None:
            return None
        return self.server_price + self.per_node * self.accel_price

    def as_dict(self) -> dict:
        psu = self.server.psu
        return {
            "name": self.name,
            "kind": self.kind,
            "owned": self.owned,
            "ownedServers": self.owned_servers,
            "vendor": self.pool.vendor,
            "accelerator": self.accel.key,
            "serverProfile": self.server.key,
            "acceleratorsPerNode": self.per_node,
            "declaredNodes": self.declared_nodes,
            "boardPowerW": self.board_w,
            "hostPowerW": self.server.host_power_w,
            "serverDrawW": self.server_w,
            "psu": {
                "units": psu.units,
                "ratingW": psu.rating_w,
                "redundantUnits": psu.redundant_units,
                "scheme": psu.scheme,
                "redundantCapacityW": psu.redundant_capacity_w,
                "exceeded": self.exceeds_redundant_psu,
            },
            "acceleratorPrice": self.accel_price,
            "acceleratorPriceSource": self.accel_price_source,
            "serverPrice": self.server_price,
            "serverPriceSource": self.server_price_source,
            "rdma": self.server.network.rdma,
            "storageGbpsPerServer": self.server.network.storage_gbps,
        }


@dataclass(frozen=True)
class Placement:
    """One model (its most demanding version) sized on one candidate."""

    model: str
    version: str
    tier: str
    candidate: str
    tp: int
    servers_per_instance: int  # > 1 only when TP spans servers
    instances_per_server: int  # 0 when TP spans servers
    instances: int
    qps_per_instance: float
    qps_source: str
    peak_qps: float
    target_qps: float
    weight_bytes: int
    allreduce_bytes_per_s: float
    plan: ModelPlan

    @property
    def accelerators(self) -> int:
        return self.instances * self.tp

    @property
    def capacity_qps(self) -> float:
        return self.instances * self.qps_per_instance

    @property
    def headroom(self) -> float:
        return self.capacity_qps / self.target_qps - 1 if self.target_qps else math.inf

    @property
    def cross_server(self) -> bool:
        return self.servers_per_instance > 1

    @property
    def bytes_per_accelerator(self) -> int:
        """What must fit on each of the instance's TP accelerators."""
        return self.plan.footprint.bytes_per_accelerator

    @property
    def budget_per_accelerator(self) -> int:
        """Accelerator memory x the pool's memoryUtilization."""
        return self.plan.footprint.budget_per_accelerator

    @property
    def kv_bytes_per_token(self) -> int:
        """KV cache of one token for the whole instance (all layers and KV heads)."""
        return self.plan.footprint.kv_bytes_per_token

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "version": self.version,
            "tier": self.tier,
            "candidate": self.candidate,
            "tp": self.tp,
            "crossServerTp": self.cross_server,
            "serversPerInstance": self.servers_per_instance,
            "instancesPerServer": self.instances_per_server,
            "instances": self.instances,
            "accelerators": self.accelerators,
            "qpsPerInstance": round(self.qps_per_instance, 3),
            "qpsSource": self.qps_source,
            "peakQps": self.peak_qps,
            "targetQps": round(self.target_qps, 3),
            "capacityQps": round(self.capacity_qps, 3),
            "headroom": _rounded(self.headroom, 4),
            "weightBytes": self.weight_bytes,
            "memory": {
                "tp": self.tp,
                "bytesPerAccelerator": self.bytes_per_accelerator,
                "budgetBytesPerAccelerator": self.budget_per_accelerator,
                "kvBytesPerToken": self.kv_bytes_per_token,
                "kvBytesForContext": self.plan.footprint.kv_bytes_for_context,
                "activationBytes": self.plan.footprint.activation_bytes,
                "overheadBytesPerAccelerator": self.plan.footprint.overhead_bytes,
            },
            "tpAllReduceBytesPerSecond": round(self.allreduce_bytes_per_s),
        }


@dataclass(frozen=True)
class StorageNetwork:
    """What one part's servers need in local disk, shared store and network (`size_storage`)."""

    per_instance_bytes: dict[str, int]  # model -> weights + allowance + logs + cache
    local_bytes_total: int  # sum over instances of per_instance_bytes (the article's method)
    local_bytes_max_server: int  # the fullest server, with model files shared on a server
    nvme_bytes_per_server: int
    store_usable_bytes: int
    store_raw_bytes: int
    redundancy_factor: float
    max_allreduce_bytes_per_s: float
    intra_node: str
    scale_out_gbps_per_server: float
    rdma: bool
    storage_gbps_per_server: float
    cold_load_seconds: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "perInstanceBytes": self.per_instance_bytes,
            "localBytesAllInstances": self.local_bytes_total,
            "localBytesFullestServer": self.local_bytes_max_server,
            "nvmeBytesPerServer": self.nvme_bytes_per_server,
            "storeUsableBytes": self.store_usable_bytes,
            "storeRawBytes": self.store_raw_bytes,
            "redundancyFactor": self.redundancy_factor,
            "maxTpAllReduceBytesPerSecond": round(self.max_allreduce_bytes_per_s),
            "intraNode": self.intra_node,
            "scaleOutGbpsPerServer": self.scale_out_gbps_per_server,
            "rdma": self.rdma,
            "storageGbpsPerServer": self.storage_gbps_per_server,
            "coldLoadSeconds": {k: round(v, 1) for k, v in self.cold_load_seconds.items()},
        }


@dataclass(frozen=True)
class Part:
    """Some models' demand on one candidate, packed into whole servers."""

    hw: Hardware
    placements: list[Placement]
    servers: int
    storage: StorageNetwork

    @property
    def accelerators(self) -> int:
        return self.servers * self.hw.per_node

    @property
    def accelerators_used(self) -> int:
        return sum(p.accelerators for p in self.placements)

    @property
    def board_kw(self) -> float:
        return self.accelerators * self.hw.board_w / 1000

    @property
    def server_kw(self) -> float:
        return self.servers * self.hw.server_kw

    @property
    def owned_servers(self) -> int:
        return min(self.servers, self.hw.owned_servers)

    @property
    def purchased_servers(self) -> int:
        return self.servers - self.owned_servers

    @property
    def capex(self) -> float | None:
        """Purchased servers only: owned ones were paid for. Unknown when a server must be
        bought and its price is unknown."""
        if self.purchased_servers == 0:
            return 0.0
        unit = self.hw.server_capex
        return None if unit is None else self.purchased_servers * unit

    def as_dict(self) -> dict:
        return {
            "candidate": self.hw.name,
            "servers": self.servers,
            "ownedServers": self.owned_servers,
            "purchasedServers": self.purchased_servers,
            "accelerators": self.accelerators,
            "acceleratorsUsed": self.accelerators_used,
            "boardKw": round(self.board_kw, 3),
            "serverKw": round(self.server_kw, 3),
            "capex": _rounded(self.capex, 2),
            "models": [p.as_dict() for p in self.placements],
            "storage": self.storage.as_dict(),
        }


@dataclass(frozen=True)
class Option:
    """A way to buy for the workload: one candidate alone, or the mixed plan."""

    name: str
    kind: str  # "candidate" | "mixed"
    parts: list[Part]
    excluded: dict[str, str]  # model -> why it is not placed here
    peak_qps: float
    energy_price: float
    pue: float
    utilization: float
    amortization_years: float
    violations: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.excluded

    @property
    def placements(self) -> list[Placement]:
        return [p for part in self.parts for p in part.placements]

    @property
    def servers(self) -> int:
        return sum(p.servers for p in self.parts)

    @property
    def owned_servers(self) -> int:
        return sum(p.owned_servers for p in self.parts)

    @property
    def purchased_servers(self) -> int:
        return sum(p.purchased_servers for p in self.parts)

    @property
    def accelerators(self) -> int:
        return sum(p.accelerators for p in self.parts)

    @property
    def board_kw(self) -> float:
        return sum(p.board_kw for p in self.parts)

    @property
    def server_kw(self) -> float:
        return sum(p.server_kw for p in self.parts)

    @property
    def energy_kwh_per_year(self) -> float:
        return self.server_kw * self.utilization * HOURS_PER_YEAR * self.pue

    @property
    def energy_cost_per_year(self) -> float:
        return self.energy_kwh_per_year * self.energy_price

    @property
    def capex(self) -> float | None:
        parts = [p.capex for p in self.parts]
        return None if any(c is None for c in parts) else sum(parts)  # type: ignore[arg-type]

    @property
    def cost_per_hour_at_peak(self) -> float | None:
        capex = self.capex
        if capex is None:
            return None
        amortised = capex / (self.amortization_years * HOURS_PER_YEAR)
        return amortised + self.server_kw * self.pue * self.energy_price

    @property
    def cost_per_1k_requests(self) -> float | None:
        per_hour = self.cost_per_hour_at_peak
        if per_hour is None or self.peak_qps <= 0:
            return None
        return per_hour / (self.peak_qps * 3600) * 1000

    @property
    def headroom(self) -> float | None:
        rooms = [p.headroom for p in self.placements]
        return min(rooms) if rooms else None

    def ranking_key(self) -> tuple:
        """`RANKING` as a sort key: the lowest is recommended. Figures are compared to nine
        significant digits, so that two options equal on paper are not told apart by float
        rounding in the order their costs were summed."""
        cost = self.cost_per_1k_requests
        return (
            cost is None,
            significant(cost or 0.0),
            significant(self.energy_kwh_per_year),
            self.servers,
            self.purchased_servers,
            self.name,
        )

    def as_dict(self) -> dict:
        return {
            "option": self.name,
            "kind": self.kind,
            "complete": self.complete,
            "excludedModels": self.excluded,
            "servers": self.servers,
            "ownedServers": self.owned_servers,
            "purchasedServers": self.purchased_servers,
            "accelerators": self.accelerators,
            "headroom": _rounded(self.headroom, 4),
            "boardKw": round(self.board_kw, 3),
            "serverKw": round(self.server_kw, 3),
            "energyKwhPerYear": round(self.energy_kwh_per_year, 1),
            "energyCostPerYear": round(self.energy_cost_per_year, 2),
            "capex": _rounded(self.capex, 2),
            "costPerHourAtPeak": _rounded(self.cost_per_hour_at_peak, 4),
            "costPer1kRequests": _rounded(self.cost_per_1k_requests, 5),
            "peakQps": self.peak_qps,
            "violations": self.violations,
            "parts": [p.as_dict() for p in self.parts],
        }


@dataclass(frozen=True)
class HardwareComparison:
    """The answer of `xpool plan --compare`: the hardware, every option, the recommendation."""

    hardware: list[Hardware]
    options: list[Option]  # one per candidate, then the mixed plan when it uses >= 2 of them
    assignments: dict[str, str]  # mixed plan: model -> candidate
    recommended: str | None
    currency: str
    assumptions: dict
    warnings: list[str]

    def as_dict(self) -> dict:
        return {
            "currency": self.currency,
            "assumptions": self.assumptions,
            "hardware": [h.as_dict() for h in self.hardware],
            "options": [o.as_dict() for o in self.options],
            "mixedAssignments": self.assignments,
            "recommended": self.recommended,
            "ranking": RANKING,
            "mixedPlanOrder": MIXED_PLAN_ORDER,
            "formulas": FORMULAS,
            "warnings": self.warnings,
        }


def significant(x: float, digits: int = 9) -> float:
    """`x` to `digits` significant digits: equal figures compare equal whatever the float
    noise of the arithmetic that produced them."""
    return float(f"{x:.{digits}g}")


def _rounded(x: float | None, digits: int) -> float | None:
    """`x` rounded for the JSON output; None (unknown, or infinite headroom) stays None."""
    return None if x is None or math.isinf(x) else round(x, digits)
