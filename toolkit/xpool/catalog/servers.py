"""Server profiles (chassis, host power, price without accelerators) from `servers.yaml`."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from xpool.catalog.accelerators import PriceRange
from xpool.catalog.data import load_catalog_yaml


class Network(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )
    nics: str
    gbps_per_server: float
    rdma: bool


class ServerProfile(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )
    key: str
    display_name: str
    accelerators: int
    hosts: list[str]
    host_memory_gib: float = Field(alias="hostMemoryGiB")
    nvme_tb: float = Field(alias="nvmeTB")
    power_supply_w: float
    psu: str
    host_power_w: float
    price_usd: PriceRange
    network: Network
    intra_node: str
    sources: list[str]
    notes: str = ""


@cache
def servers() -> dict[str, ServerProfile]:
    """Every catalogued server profile by key; loaded once per process."""
    return {
        key: ServerProfile(key=key, **spec)
        for key, spec in load_catalog_yaml("servers.yaml").items()
    }


def default_server_for(accelerator: str) -> ServerProfile | None:
    """The first profile (in file order) that hosts `accelerator`."""
    return next((s for s in servers().values() if accelerator in s.hosts), None)
