"""Memory quantities as the platform file writes them (512Gi, 1T), in bytes."""

from __future__ import annotations

import re

SUFFIX_BYTES = {
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
MEMORY_PATTERN = r"^[1-9][0-9]*(Ki|Mi|Gi|Ti|k|M|G|T)?$"
# More than any server holds (the largest reach 32-48 TiB), and small enough that a pool of
# the most nodes a platform file allows stays below 2^63 bytes, the most a Kubernetes
# quantity holds: beyond that the API server would cap what xpool renders.
MAX_NODE_MEMORY = 64 * 2**40


def memory_bytes(quantity: str) -> int:
    m = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?", quantity)
    if not m:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(m.group(1)) * SUFFIX_BYTES[m.group(2) or ""]


def at_most_node_memory(quantity: str) -> str:
    if memory_bytes(quantity) > MAX_NODE_MEMORY:
        raise ValueError("more memory than a node can hold; give at most 64Ti")
    return quantity
