"""Byte sizes as users write them ("16Mi", "512Ki", "1Gi", or plain bytes), as in Kubernetes."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNIT_BYTES = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
SIZE_PATTERN = r"^([0-9]+)(Ki|Mi|Gi|k|M|G)?$"


def parse_size(value: Any) -> int:
    """Return bytes; raise ValueError with a hint a user can act on."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(SIZE_PATTERN, value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(
            f"{value!r} is not a size: use bytes or a number with Ki, Mi, Gi (k, M, G), e.g. 16Mi"
        )
    return int(match.group(1)) * _UNIT_BYTES[match.group(2) or ""]


def format_size(n: int) -> str:
    """The largest binary unit that divides `n` exactly: 16777216 -> 16Mi."""
    for unit in ("Gi", "Mi", "Ki"):
        if n and n % _UNIT_BYTES[unit] == 0:
            return f"{n // _UNIT_BYTES[unit]}{unit}"
    return str(n)


ByteSize = Annotated[
    int,
    BeforeValidator(parse_size),
    PlainSerializer(format_size, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": SIZE_PATTERN},
                {"type": "integer", "minimum": 0},
            ],
            "description": "A size: 16Mi, 512Ki, 1Gi, or bytes as a number.",
        }
    ),
]
