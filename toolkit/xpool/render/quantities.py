"""Kubernetes resource quantities for CPU and memory shares (integers only, no floats)."""

from __future__ import annotations

import re

_SUFFIX = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def memory_bytes(quantity: str) -> int:
    m = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?", quantity)
    if not m:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(m.group(1)) * _SUFFIX[m.group(2) or ""]


def format_memory(n: int) -> str:
    """The largest binary suffix that divides `n` exactly: 68719476736 -> 64Gi."""
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        if n and n % _SUFFIX[suffix] == 0:
            return f"{n // _SUFFIX[suffix]}{suffix}"
    return str(n)


def format_cpu(millicores: int) -> str:
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"
