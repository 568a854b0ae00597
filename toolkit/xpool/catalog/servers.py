"""Server profiles (chassis, host power, power supplies, NICs, price without accelerators)
from `servers.yaml`."""

from __future__ import annotations

from functools import cache
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from xpool.catalog.accelerators import PriceRange
from xpool.catalog.data import load_catalog_yaml


class Network(BaseModel):
    """The compute (scale-out) network that TP collectives use, and the NICs to storage."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )
    nics: str
    gbps_per_server: float
    rdma: bool
    storage_nics: str
    storage_gbps: float = Field(gt=0)


class PowerSupplies(BaseModel):
    """Installed power supply units; `redundant_units` of them may fail without the server
    losing power, so what the server may draw with redundancy kept is the other units' rating."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )
    units: int = Field(ge=1)
    rating_w: float = Field(gt=0)
    redundant_units: int = Field(ge=0)
    note: str

    @model_validator(mode="after")
    def _some_units_carry_the_load(self) -> Self:
        if self.redundant_units >= self.units:
            raise ValueError("redundantUnits must be fewer than units")
        return self

    @property
    def installed_w(self) -> float:
        return self.units * self.rating_w

    @property
    def redundant_capacity_w(self) -> float:
        """What the units left after `redundant_units` fail deliver."""
        return (self.units - self.redundant_units) * self.rating_w

    @property
    def scheme(self) -> str:
        """e.g. '2+2 (N+N)', '4+2 (N+2)', '3+1 (N+1)'."""
        carrying = self.units - self.redundant_units
        kind = "N+N" if carrying == self.redundant_units else f"N+{self.redundant_units}"
        return f"{carrying}+{self.redundant_units} ({kind})"


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
    psu: PowerSupplies
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
