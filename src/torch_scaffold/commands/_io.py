"""Small file helpers shared by the commands: read a source file safely, write one atomically."""

from __future__ import annotations

import io
import os
import stat
import tempfile
import tokenize
from pathlib import Path

from torch_scaffold.errors import OutputError, ScriptError
from torch_scaffold.regular_file import FileTooLarge, NotRegularFile, read_regular

# A training script is a few hundred lines; anything this large is almost surely the wrong file,
# and parsing it would take minutes.
MAX_SCRIPT_BYTES = 10 * 1024 * 1024


def decode_source(data: bytes, where: str) -> tuple[str, str]:
    """Bytes of a Python file -> (text, encoding), honouring a PEP 263 coding cookie or a BOM.

    Raises ScriptError for binary data and for bytes that do not decode.
    """
    nul = data.find(b"\x00")
    if nul != -1:
        raise ScriptError(
            f"binary file (NUL byte at offset {nul}), not a Python script",
            where=where,
            hint="pass the .py training script itself",
        )
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as err:  # unknown codec named in the coding cookie
        raise ScriptError(str(err), where=where, hint="save the file as UTF-8") from None
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ScriptError(
            f"not valid {encoding} text (byte 0x{data[err.start]:02x} on line {line})",
            where=f"{where}:{line}",
            hint="save the file as UTF-8, or declare its encoding with a '# -*- coding: ... -*-' line",
        ) from None


def read_script(path: str) -> tuple[str, str]:
    """Read a script file -> (text, encoding). Every failure is a ScriptError naming the file."""
    try:
        if os.path.isdir(path):
            raise ScriptError("is a directory", where=path, hint="pass one .py training script")
        if not os.path.exists(path):
            raise ScriptError("no such file", where=path, hint="check the path")
        data = read_regular(path, MAX_SCRIPT_BYTES)
    except NotRegularFile as err:
        raise ScriptError(
            f"is {err.kind}, not a regular file",
            where=path,
            hint="pass the .py training script itself, or - to read it from stdin",
        ) from None
    except FileTooLarge as err:
        raise ScriptError(
            f"file too large ({err.size}; the limit is {MAX_SCRIPT_BYTES // 2**20} MiB)",
            where=path,
            hint="pass a single training script",
        ) from None
    except PermissionError:
        raise ScriptError("permission denied", where=path, hint="make the file readable") from None
    except OSError as err:
        raise ScriptError(f"cannot read: {err.strerror or err}", where=path) from None
    return decode_source(data, path)


def read_limited(stream, where: str) -> bytes:
    """At most MAX_SCRIPT_BYTES from a binary stream (stdin), so `- < /dev/zero` cannot fill memory."""
    data = stream.read(MAX_SCRIPT_BYTES + 1)
    if len(data) > MAX_SCRIPT_BYTES:
        raise ScriptError(
            f"input too large (over {MAX_SCRIPT_BYTES // 2**20} MiB)",
            where=where,
            hint="pass a single training script",
        )
    return data


def write_atomic(
    path: Path, text: str, *, encoding: str = "utf-8", mode: int | None = None
) -> None:
    """Write text to path all at once: a temp file in the same folder, then os.replace.

    A crash or a full disk leaves the old file (or no file) in place, never a truncated one.
    """
    folder = path.parent
    if not folder.is_dir():
        raise OutputError("folder does not exist", where=str(folder), hint="create it first")
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError as err:
        raise OutputError(
            f"the result cannot be encoded as {encoding} (the input's encoding): {err.reason}",
            where=str(path),
            hint="save the input as UTF-8 and convert again",
        ) from None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise OutputError(f"cannot write: {err.strerror or err}", where=str(folder)) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; give the file the permissions a normal open() would.
        os.chmod(tmp, mode if mode is not None else _default_mode())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise OutputError(f"cannot write: {err.strerror or err}", where=str(path)) from None
        raise


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def file_mode(path: Path) -> int | None:
    """Permission bits of an existing file, to give its converted copy the same ones."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
