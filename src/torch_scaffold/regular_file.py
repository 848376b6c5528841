"""Read a regular file with a size limit; anything else (a FIFO, a device, a socket) is refused.

Opening a FIFO blocks until a writer appears, and /dev/zero never ends, so inputs are checked
to be regular files before a byte is read. The check is made on the open descriptor (fstat),
and the open itself is non-blocking, so a file swapped for a FIFO after a first stat() cannot
hang either. Only the standard library: the spec loader imports this on `scaffold spec check`.
"""

from __future__ import annotations

import os
import stat

# O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer. O_NOCTTY: a
# terminal device never becomes our controlling terminal. Both are 0 where they do not exist.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)


class NotRegularFile(Exception):
    """The path is not a regular file; `kind` says what it is ("a FIFO (named pipe)")."""

    def __init__(self, kind: str):
        super().__init__(f"is {kind}, not a regular file")
        self.kind = kind


class FileTooLarge(Exception):
    """The file has more than `limit` bytes; `size` says how many, in words."""

    def __init__(self, size: str, limit: int):
        super().__init__(f"file too large ({size}, the limit is {limit:,} bytes)")
        self.size = size
        self.limit = limit


def kind_of(mode: int) -> str:
    """What a file is, in words, from its st_mode."""
    for test, kind in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def read_regular(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of the regular file at path (symbolic links followed), at most `limit`.

    Raises NotRegularFile, FileTooLarge, or the OSError of open/read.
    """
    fd = os.open(path, _OPEN_FLAGS)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(kind_of(info.st_mode))
        if info.st_size > limit:
            raise FileTooLarge(f"{info.st_size:,} bytes", limit)
        data = handle.read(limit + 1)  # one byte past the limit: it may have grown since
    if len(data) > limit:
        raise FileTooLarge(f"over {limit:,} bytes", limit)  # it grew after fstat
    return data
