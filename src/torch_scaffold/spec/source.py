"""Read a spec file into text, refusing what is not a small UTF-8 text file.

Everything here happens before YAML sees a byte: a 50 MB file is refused from its size
alone, and binary or mis-encoded files get a message about the file, not a parser error.
"""

from __future__ import annotations

import codecs
import os
import stat

from torch_scaffold.errors import SpecError
from torch_scaffold.regular_file import FileTooLarge, NotRegularFile, read_regular

MAX_SPEC_BYTES = 1_000_000  # a real spec is a few hundred bytes; this leaves room for comments
_START_HINT = "`scaffold spec example > spec.yaml` writes a valid spec to start from"


def read_spec_file(path: str | os.PathLike) -> str:
    """Return the text of the spec at `path`, or raise SpecError naming the file."""
    where = os.fspath(path)
    try:
        info = os.stat(path)  # os, not pathlib: keeps `scaffold spec check` start-up short
    except FileNotFoundError:
        raise SpecError(
            "no such file", where=where, hint=f"check the path; {_START_HINT}"
        ) from None
    except OSError as err:
        raise SpecError(f"cannot read the file: {err.strerror}", where=where) from None
    if stat.S_ISDIR(info.st_mode):
        raise SpecError("is a directory, not a spec file", where=where, hint="pass a .yaml file")
    try:
        # a FIFO or a device is refused before it is read: it could block or never end
        data = read_regular(path, MAX_SPEC_BYTES)
    except NotRegularFile as err:
        raise SpecError(
            f"is {err.kind}, not a regular file",
            where=where,
            hint="save the spec to a file and pass that file",
        ) from None
    except FileTooLarge as err:
        raise SpecError(
            f"file is too large ({err.size}; a spec may be at most {MAX_SPEC_BYTES:,})",
            where=where,
            hint="a spec is a short YAML file; check that you passed the right file",
        ) from None
    except OSError as err:
        raise SpecError(f"cannot read the file: {err.strerror}", where=where) from None
    return decode_spec_bytes(data, where)


def decode_spec_bytes(data: bytes, where: str) -> str:
    """Decode UTF-8 (a BOM is fine); refuse binary, UTF-16/32 and invalid bytes."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SpecError(
            "file is UTF-16 text; specs must be UTF-8",
            where=where,
            hint="save the file as UTF-8",
        )
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise SpecError(
            "file is binary (contains NUL bytes), not a YAML spec",
            where=f"{where}:{line}",
            hint="pass the YAML spec file; `scaffold spec example` shows what one looks like",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise SpecError(
            f"file is not valid UTF-8 (byte 0x{data[err.start]:02x} at column {column})",
            where=f"{where}:{line}",
            hint="save the file as UTF-8",
        ) from None
