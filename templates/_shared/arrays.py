"""Reading .npy and .npz arrays without trusting them: each header is checked before its data
is read, since numpy allocates whatever shape a header claims. Only arrays of numbers, one row
per example, are accepted, in this machine's byte order (torch reads no other).
"""

from __future__ import annotations

import math
import os
import zipfile
from typing import IO

import numpy as np

KIND_NAMES = {"U": "text", "S": "bytes", "M": "dates", "m": "time spans", "O": "Python objects"}
KIND_NAMES["V"] = "records (a structured array)"


class ArrayError(ValueError):
    """An array that is not numbers, one row per example; the message does not name the file."""


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """The array in an .npy file, its header checked first."""
    with open(path, "rb") as handle:
        check_header(handle, os.fstat(handle.fileno()).st_size)
        handle.seek(0)
        return native(np.load(handle, allow_pickle=False))


def check_npz(path: str | os.PathLike) -> None:
    """Check the header of every array in an .npz file (a zip of .npy files)."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    try:
                        check_header(member, info.file_size)
                    except ArrayError as err:
                        name = info.filename.removesuffix(".npy")
                        raise ArrayError(f"array {name!r}: {err}") from None
    except zipfile.BadZipFile as err:
        raise ArrayError(f"not an .npz file ({err})") from None


def check_header(handle: IO[bytes], size: int) -> None:
    """The .npy header at the handle's position: numbers (complex is refused by the readers, by
    name), at least one dimension, and no more data than the file's `size` bytes hold."""
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    except (ValueError, EOFError) as err:
        raise ArrayError(f"cannot read as .npy ({err})") from None
    if dtype.kind not in "biufc":
        raise ArrayError(f"holds {KIND_NAMES.get(dtype.kind, 'values')} ({dtype}), not numbers")
    if len(shape) == 0:
        raise ArrayError("holds a single value (a 0-d array), not one row per example")
    claimed, available = math.prod(shape) * dtype.itemsize, size - handle.tell()
    if claimed > available:
        raise ArrayError(
            f"its header claims shape {list(shape)} ({claimed:,} bytes), but the file holds"
            f" {available:,} bytes: truncated or corrupt"
        )


def native(values: np.ndarray) -> np.ndarray:
    """The array in this machine's byte order."""
    return values if values.dtype.isnative else values.astype(values.dtype.newbyteorder("="))
