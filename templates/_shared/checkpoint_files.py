"""Checkpoint files, the same in every project: written atomically, sealed with their SHA-256,
and that seal verified before a file is read.

The seal is the zip archive's comment (torch.save writes a zip archive, whose last record may
carry a comment): `torch-scaffold sha256 ` and the hex digest of every byte before it. The
file stays a plain torch.save file that torch.load and any zip tool read as before; a file
changed after it was written (one flipped bit, a partial copy) no longer matches.
checkpoint.py reads the contents and checks them against this project.
"""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import stat
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch

SEAL = b"torch-scaffold sha256 "
SEAL_BYTES = len(SEAL) + 64  # and the digest in hex
# A zip archive ends with this record: signature, four counts, the central directory's size
# and offset, and the length of the comment that follows it.
END_RECORD = struct.Struct("<4s4H2LH")
END_SIGNATURE = b"PK\x05\x06"
NOT_REGULAR = "is not a regular file (a device, pipe or socket), so it cannot be a checkpoint"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used (or saved); the message names the file."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def _file_mode() -> int:
    umask = os.umask(0)  # the only way to read it; done once, at import
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


class _SealingWriter:
    """The file object torch.save writes to: passes the bytes on and hashes them, holding the
    last END_RECORD.size back (the end record, whose comment length the seal changes)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.tail = b""

    def write(self, data: Any) -> int:
        data = memoryview(data).cast("B")
        self.stream.write(data)
        if len(data) >= END_RECORD.size:
            self.digest.update(self.tail)
            self.digest.update(data[: -END_RECORD.size])
            self.tail = bytes(data[-END_RECORD.size :])
        else:
            joined = self.tail + bytes(data)
            self.digest.update(joined[: -END_RECORD.size])
            self.tail = joined[-END_RECORD.size :]
        return len(data)

    def flush(self) -> None:
        self.stream.flush()

    def seal(self) -> None:
        """Give the archive its comment: the SHA-256 of everything before it."""
        fields = list(END_RECORD.unpack(self.tail))
        if fields[0] != END_SIGNATURE or fields[-1] != 0:
            raise CheckpointError("torch.save wrote an archive without the usual end record")
        fields[-1] = SEAL_BYTES
        end = END_RECORD.pack(*fields)
        self.digest.update(end)
        self.stream.seek(-END_RECORD.size, os.SEEK_END)
        self.stream.write(end + SEAL + self.digest.hexdigest().encode())


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """torch.save to `path`, sealed with its SHA-256, written atomically (write_atomically)."""

    def write(stream: Any) -> None:
        writer = _SealingWriter(stream)
        torch.save(state, writer)
        writer.seal()

    write_atomically(path, write)


def write_atomically(path: str | Path, write: Callable[[Any], None]) -> None:
    """write(stream) to a temporary file in the same folder, fsync, then a rename over `path`.

    A run killed mid-save leaves the previous checkpoint intact, never a torn file; so does a
    full disk, reported as one CheckpointError. The temporary file a killed save leaves
    behind is removed by the next successful save.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, FILE_MODE)  # mkstemp makes 0600; give a normal file's mode
        os.replace(temporary, path)
    except BaseException as err:
        Path(temporary).unlink(missing_ok=True)
        cause = _os_error(err)
        if cause is None:
            raise
        raise CheckpointError(
            f"{path}: cannot save the checkpoint: {cause.strerror or cause}",
            f"{_space_hint(cause)}; the checkpoints saved before are kept (--resume last)",
        ) from None
    for stale in glob.glob(
        os.path.join(glob.escape(str(path.parent)), f".{glob.escape(path.name)}.*.tmp")
    ):
        Path(stale).unlink(missing_ok=True)


def _os_error(err: BaseException) -> OSError | None:
    """The OSError behind `err` (torch.save turns a failed write into a RuntimeError)."""
    while err is not None:
        if isinstance(err, OSError):
            return err
        err = err.__cause__ or err.__context__
    return None


def _space_hint(err: OSError) -> str:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free some disk space (or use --output-dir on another disk)"
    if err.errno == errno.EFBIG:
        return "raise the file size limit (ulimit -f) or use another file system"
    return "check that the output folder can be written"


def verify_seal(path: str | Path) -> bool:
    """True when the file ends with a seal that matches it, False when it has none; a seal
    that does not match is a CheckpointError. Reads the file once (in 1 MiB pieces)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    if not stat.S_ISREG(info.st_mode):  # /dev/zero would never end
        raise CheckpointError(f"{path}: {NOT_REGULAR}")
    if info.st_size == 0:
        raise CheckpointError(f"{path}: not a readable checkpoint: the file is empty (0 bytes)")
    if info.st_size < END_RECORD.size + SEAL_BYTES:
        return False
    try:
        with open(path, "rb") as handle:
            handle.seek(info.st_size - END_RECORD.size - SEAL_BYTES)
            end = handle.read(END_RECORD.size + SEAL_BYTES)
            fields = END_RECORD.unpack(end[: END_RECORD.size])
            seal = end[END_RECORD.size :]
            if fields[0] != END_SIGNATURE or fields[-1] != SEAL_BYTES or not seal.startswith(SEAL):
                return False
            handle.seek(0)
            digest = sha256(handle, info.st_size - SEAL_BYTES)
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror})") from None
    if digest.encode() != seal[len(SEAL) :]:
        raise changed(path)
    return True


def sha256(handle: BinaryIO, length: int) -> str:
    """The hex SHA-256 of the next `length` bytes of `handle` (fewer at its end), read in
    1 MiB pieces."""
    digest = hashlib.sha256()
    while length > 0:
        piece = handle.read(min(length, 1 << 20))
        if not piece:
            break
        digest.update(piece)
        length -= len(piece)
    return digest.hexdigest()


def changed(path: str | Path) -> CheckpointError:
    """The error for a file whose SHA-256 is not the one it was saved with."""
    return CheckpointError(
        f"{path}: does not match the SHA-256 checksum it was saved with: the file changed"
        " after it was written (a flipped bit, a partial copy or an edit), so it is not used",
        "use another checkpoint (last.ckpt or best.ckpt), or train again",
    )
