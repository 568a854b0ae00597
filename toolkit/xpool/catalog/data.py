"""Reads the catalog's YAML files shipped inside the package."""

from __future__ import annotations

from importlib import resources
from typing import Any

from ruamel.yaml import YAML


def load_catalog_yaml(name: str) -> dict[str, Any]:
    text = resources.files("xpool.catalog").joinpath(name).read_text(encoding="utf-8")
    return YAML(typ="safe").load(text)
