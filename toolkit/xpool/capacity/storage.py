"""Storage and network sizing for hardware selection (formulas in compare.FORMULAS).

The design article counts "100 GB per instance (model files, logs, cache)" and multiplies by
instances for the distributed store. Model files are stored once per model version, not per
instance; each server keeps a local copy of the versions it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xpool.capacity.memory import GIB, weight_bytes
from xpool.catalog.architectures import Architecture
from xpool.config.models import Platform

if TYPE_CHECKING:
    from xpool.capacity.compare import Hardware, Placement

ACTIVATION_BYTES = 2  # all-reduced activations are 16-bit
ALLREDUCES_PER_LAYER = 2  # attention output and MLP output (Megatron-style TP)


def allreduce_bytes_per_second(arch: Architecture, tp: int, qps: float, seq_len: int) -> float:
    """Bytes each TP rank sends per second: every token of every request (worst case seqLen)
    passes every layer, whose two all-reduces move 2(TP-1)/TP x hidden x 2 B per rank (ring)."""
    if tp <= 1:
        return 0.0
    per_token = (
        arch.num_layers
        * ALLREDUCES_PER_LAYER
        * 2
        * (tp - 1)
        / tp
        * arch.hidden_size
        * ACTIVATION_BYTES
    )
    return qps * seq_len * per_token


@dataclass(frozen=True)
class StorageNetwork:
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
            "coldLoadSeconds": {k: round(v, 1) for k, v in self.cold_load_seconds.items()},
        }


def size_storage(
    platform: Platform,
    archs: dict[str, Architecture],
    hw: Hardware,
    placements: list[Placement],
    layout: list[list[tuple[Placement, int]]],
) -> StorageNetwork:
    s = platform.spec.costs.storage
    allowance = int(s.model_file_allowance_gib * GIB)
    logs = int(s.logs_gib_per_instance * GIB)
    cache = int(s.cache_gib_per_instance * GIB)
    per_instance = {p.model: p.weight_bytes + allowance + logs + cache for p in placements}
    local_total = sum(per_instance[p.model] * p.instances for p in placements)
    per_server = [
        sum(p.weight_bytes + allowance + n * (logs + cache) for p, n in server) for server in layout
    ]
    # Every version of every placed model is kept in the store (versions roll out side by side).
    models = {m.name: m for m in platform.spec.models}
    store_files = sum(
        weight_bytes(archs[p.model], v.weight_precision) + allowance
        for p in placements
        for v in models[p.model].versions
    )
    usable = store_files + sum(p.instances * logs for p in placements)
    nvme = int(hw.server.nvme_tb * 1e12)
    warnings = []
    fullest = max(per_server, default=0)
    if fullest > nvme:
        warnings.append(
            f"{hw.name}: the fullest server needs {fullest / GIB:.0f} GiB of local storage, more "
            f"than the {hw.server.nvme_tb:g} TB NVMe of '{hw.server.key}'"
        )
    gbps = hw.server.network.gbps_per_server
    max_ar = max((p.allreduce_bytes_per_s for p in placements), default=0.0)
    for p in placements:
        if p.cross_server and p.allreduce_bytes_per_s > gbps / 8 * 1e9:
            warnings.append(
                f"{hw.name}: {p.model} at TP {p.tp} across servers needs about "
                f"{p.allreduce_bytes_per_s / 1e9:.1f} GB/s per rank of all-reduce traffic, more "
                f"than the {gbps:g} Gb/s scale-out network of '{hw.server.key}'"
            )
    return StorageNetwork(
        per_instance_bytes=per_instance,
        local_bytes_total=local_total,
        local_bytes_max_server=fullest,
        nvme_bytes_per_server=nvme,
        store_usable_bytes=usable,
        store_raw_bytes=int(usable * s.redundancy_factor),
        redundancy_factor=s.redundancy_factor,
        max_allreduce_bytes_per_s=max_ar,
        intra_node=hw.server.intra_node,
        scale_out_gbps_per_server=gbps,
        rdma=hw.server.network.rdma,
        cold_load_seconds={p.model: p.weight_bytes / (gbps / 8 * 1e9) for p in placements},
        warnings=warnings,
    )
