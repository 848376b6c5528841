"""Files written atomically, and checkpoint files sealed with their SHA-256.

The seal is the zip archive's comment (torch.save writes a zip archive): `torch-scaffold
sha256 ` and the hex digest of every byte before it. torch.load and zip tools read the file as
before; a file changed after it was written (a flipped bit, a partial copy) no longer matches.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from secrets import token_hex
from typing import Any, BinaryIO

import torch

SEAL = b"torch-scaffold sha256 "
SEAL_BYTES = len(SEAL) + 64
END_RECORD = struct.Struct("<4s4H2LH")  # a zip's last record; its last field: comment length
NOT_REGULAR = "is not a regular file (a device, pipe or socket), so it cannot be a checkpoint"
NOT_OURS = "not a checkpoint this project wrote"
OURS = "use a checkpoint this project saved, such as outputs/RUN/checkpoints/last.ckpt"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (or saved); the message names the file."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A new file beside `path`, renamed over it once the block succeeds and removed otherwise:
    a failed or killed write keeps the previous file whole. It is named for this process and
    ends in path's suffix (torch.export.save and numpy check it); one a killed process left is
    removed by the next write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}-{token_hex(4)}.tmp{path.suffix}")
    os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # mode: the umask's
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    for stale in path.parent.glob(f".{glob.escape(path.stem)}.*-*.tmp{glob.escape(path.suffix)}"):
        pid = stale.name[len(path.stem) + 2 :].partition("-")[0]
        if pid.isdigit() and (int(pid) == os.getpid() or not _alive(int(pid))):  # ours is done
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """torch.save to `path` atomically, sealed with its SHA-256. A full disk is one error, and
    the checkpoints saved before are kept."""
    try:
        with atomic_path(path) as temporary, open(temporary, "r+b") as stream:
            torch.save(state, stream)
            stream.seek(-END_RECORD.size, os.SEEK_END)
            fields = list(END_RECORD.unpack(stream.read(END_RECORD.size)))
            fields[-1] = SEAL_BYTES  # the comment's length (torch.save writes none)
            stream.seek(-END_RECORD.size, os.SEEK_END)
            stream.write(END_RECORD.pack(*fields))
            stream.seek(0)
            stream.write(SEAL + sha256(stream).encode())  # sha256 read up to the end
    except BaseException as err:
        cause = err  # torch.save turns a failed write into a RuntimeError
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__cause__ or cause.__context__
        if cause is None:
            raise
        hint = "check that the output folder can be written"
        if cause.errno in (errno.ENOSPC, errno.EDQUOT):
            hint = "free some disk space (or use --output-dir on another disk)"
        elif cause.errno == errno.EFBIG:
            hint = "raise the file size limit (ulimit -f) or use another file system"
        raise CheckpointError(
            f"{path}: cannot save the checkpoint: {cause.strerror or cause}",
            f"{hint}; the checkpoints saved before are kept (--resume last)",
        ) from None


def verify_seal(path: str | Path) -> bool:
    """True when the file ends with a seal that matches it, False when it has none; a seal
    that does not match is a CheckpointError."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
        if not stat.S_ISREG(info.st_mode):  # /dev/zero would never end
            raise CheckpointError(f"{path}: {NOT_REGULAR}")
        if info.st_size == 0:
            raise CheckpointError(f"{path}: not a readable checkpoint: the file is empty (0 bytes)")
        if info.st_size < END_RECORD.size + SEAL_BYTES:
            return False
        with open(path, "rb") as handle:
            handle.seek(-SEAL_BYTES, os.SEEK_END)
            seal = handle.read()
            if not seal.startswith(SEAL):
                return False
            handle.seek(0)
            digest = sha256(handle, info.st_size - SEAL_BYTES)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror})") from None
    if digest.encode() != seal[len(SEAL) :]:
        raise changed(path)
    return True


def sha256(handle: BinaryIO, length: int = -1) -> str:
    """The hex SHA-256 of the next `length` bytes of `handle` (-1: up to its end)."""
    digest = hashlib.sha256()
    while length and (piece := handle.read(1 << 20 if length < 0 else min(length, 1 << 20))):
        digest.update(piece)
        length -= len(piece) if length > 0 else 0
    return digest.hexdigest()


def changed(path: str | Path) -> CheckpointError:
    return CheckpointError(
        f"{path}: does not match the SHA-256 checksum it was saved with: the file changed"
        " after it was written (a flipped bit, a partial copy or an edit), so it is not used",
        "use another checkpoint (last.ckpt or best.ckpt), or train again",
    )
