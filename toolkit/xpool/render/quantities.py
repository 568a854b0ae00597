"""Kubernetes resource quantities for CPU and memory shares (integers only, no floats)."""

from __future__ import annotations

from xpool.config.quantities import SUFFIX_BYTES


def format_memory(n: int) -> str:
    """The largest binary suffix that divides `n` exactly: 68719476736 -> 64Gi."""
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        if n and n % SUFFIX_BYTES[suffix] == 0:
            return f"{n // SUFFIX_BYTES[suffix]}{suffix}"
    return str(n)


def format_cpu(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"
