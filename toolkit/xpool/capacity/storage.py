"""Storage and network sizing for hardware selection (formulas in hardware.FORMULAS).

The design article counts "100 GB per instance (model files, logs, cache)" and multiplies by
instances for the distributed store. Model files are stored once per model version, not per
instance; each server keeps a local copy of the versions it runs.

Two networks, two questions: TP all-reduce traffic runs over the compute fabric (NVLink,
HCCS, PCIe inside a server; RoCE/InfiniBand between servers), while model weights come from
the store through the server's storage NICs (the north-south or data plane). A cold load is
bounded by the latter: an Atlas 800 A2's 8 x 200 GbE NPU ports are HCCL's parameter plane,
and its weights arrive over a 2 x 25 GbE data-plane NIC.
"""

from __future__ import annotations

from xpool.capacity.hardware import Hardware, Placement, StorageNetwork
from xpool.capacity.memory import GIB, weight_bytes
from xpool.catalog.architectures import Architecture
from xpool.config.models import Platform

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


def cold_load_seconds(weight_bytes: int, storage_gbps: float) -> float:
    """Seconds to read one copy of the weights from the store into a server: bytes over the
    storage NICs' line rate (an upper bound on speed: a store slower than the NICs, or
    several servers loading at once from one store, take longer)."""
    return weight_bytes / (storage_gbps / 8 * 1e9)


def size_storage(
    platform: Platform,
    archs: dict[str, Architecture],
    hw: Hardware,
    placements: list[Placement],
    layout: list[list[tuple[Placement, int]]],
) -> StorageNetwork:
    """Local disk, shared store and network of one part: `layout` is its servers as packed,
    each a list of (placement, instances on that server)."""
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
    network = hw.server.network
    gbps = network.gbps_per_server
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
        rdma=network.rdma,
        storage_gbps_per_server=network.storage_gbps,
        cold_load_seconds={
            p.model: cold_load_seconds(p.weight_bytes, network.storage_gbps) for p in placements
        },
        warnings=warnings,
    )
