"""JSON Schema of the platform file, generated from the pydantic models (never hand-written)."""

from __future__ import annotations

from typing import Any

from xpool.config.models import Platform

SCHEMA_ID = "https://xpool.io/schemas/platform-v1alpha1.json"


def platform_json_schema() -> dict[str, Any]:
    schema = Platform.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "xpool Platform (xpool.io/v1alpha1)"
    return schema
