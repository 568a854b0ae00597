"""Serialization of the generated Volcano models to Kubernetes manifests (hand-written)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def to_manifest(model: BaseModel) -> dict[str, Any]:
    """Return the manifest of ``model``: JSON-compatible, camelCase keys, only the fields set.

    ``exclude_unset`` keeps the schema defaults (``weight: 1``, ``dequeueStrategy: traverse``,
    ...) out of the manifest, so xpool never claims a field it did not set and server-side apply
    leaves those fields to the API server's defaulting.
    """
    return model.model_dump(mode="json", by_alias=True, exclude_unset=True)
