"""Read an input file only if it is a regular file of a sensible size.

A path to `/dev/zero` would be read until memory runs out and a FIFO would block forever,
so the file is opened without blocking and checked (fstat on the open descriptor, so the
check and the read see the same file) before a byte is read, and no more than a cap is read.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MIB = 1024 * 1024
PLATFORM_FILE_LIMIT = 16 * MIB
CONFIG_JSON_LIMIT = 4 * MIB

_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class FileRefused(ValueError):
    """The path names something that is not a regular file, or a file larger than the cap."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """The file's bytes; FileRefused for a special or oversized file, IsADirectoryError and
    FileNotFoundError as `open` raises them, so callers keep their own advice for those."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise FileRefused(f"is {kind}, not a regular file; give the path of a file")
        data = file.read(limit + 1)
    if len(data) > limit:
        size = max(info.st_size, len(data))
        raise FileRefused(f"is {size} bytes; at most {limit} bytes ({limit // MIB} MiB) are read")
    return data
