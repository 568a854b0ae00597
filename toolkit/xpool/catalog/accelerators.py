"""Accelerator specifications (memory, bandwidth, throughput, power, price) from `accelerators.yaml`."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from xpool.catalog.data import load_catalog_yaml

GIB = 1024**3


class PriceRange(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)
    low: float | None
    high: float | None
    as_of: str
    note: str = ""


class Accelerator(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )
    key: str
    vendor: str
    display_name: str
    architecture: str
    memory_gib: float = Field(alias="memoryGiB")
    memory_nominal: str
    memory_type: str
    bandwidth_gbps: float = Field(alias="bandwidthGBps")
    bf16_dense_tflops: float
    int8_dense_tops: float | None
    fp8_dense_tflops: float | None = None
    fp8_storage: bool  # FP8 weights and KV cache can be held (natively or dequantized to BF16)
    typical_power_w: float
    form_factor: str
    interconnect: str
    list_price_usd: PriceRange | None = None
    sources: list[str]
    notes: str = ""

    @property
    def memory_bytes(self) -> int:
        return int(self.memory_gib * GIB)

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.bandwidth_gbps * 1e9


@cache
def accelerators() -> dict[str, Accelerator]:
    """Every catalogued accelerator by key; loaded once per process."""
    return {
        key: Accelerator(key=key, **spec)
        for key, spec in load_catalog_yaml("accelerators.yaml").items()
    }
