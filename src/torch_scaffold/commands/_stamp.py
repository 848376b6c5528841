"""The last line of every file `scaffold convert` writes: where it came from, and a checksum.

    # scaffold convert: from train.py; sha256 of the lines above: 3b0c...

Before replacing an existing output, the command reads it back: a file whose last line is such
a stamp and whose checksum still matches is an unedited earlier result, safe to replace. A file
without a stamp was not written by scaffold, and one whose checksum differs was edited since;
both are kept unless --force. The stamp is the last line, not the first, so that a shebang
and a PEP 263 coding line keep the places Python requires of them (lines 1 and 2).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from torch_scaffold.regular_file import read_regular

UNEDITED, EDITED, FOREIGN = "unedited", "edited", "foreign"
_STAMP = re.compile(
    rb"^# scaffold convert: from [^\n]*; sha256 of the lines above: ([0-9a-f]{64})[ \t\r]*$",
    re.MULTILINE,
)


def stamped(code: str, source_name: str, encoding: str) -> str:
    """code plus its stamp line. The checksum is of the bytes as written (in `encoding`)."""
    body = code if code.endswith("\n") else code + "\n"
    try:
        digest = hashlib.sha256(body.encode(encoding)).hexdigest()
    except UnicodeEncodeError:
        return code  # the write itself reports this, with the input's encoding named
    # ASCII, one line: the stamp must encode in whatever encoding the script declared
    name = Path(source_name).name.encode("ascii", "backslashreplace").decode("ascii")
    name = name.replace("\n", " ").replace("\r", " ")
    newline = "\r\n" if body.endswith("\r\n") else "\n"
    return f"{body}# scaffold convert: from {name}; sha256 of the lines above: {digest}{newline}"


def provenance(path: Path, limit: int) -> str:
    """UNEDITED, EDITED or FOREIGN for the existing regular file at path.

    A stamp that is no longer the last line means lines were added below it: EDITED.
    Raises the errors of read_regular (too large, unreadable) for the caller to report.
    """
    data = read_regular(path, limit)
    stamps = list(_STAMP.finditer(data))
    if not stamps:
        return FOREIGN
    last = stamps[-1]  # lines added below it (code appended by hand) are an edit too
    if data[last.end() :].strip():
        return EDITED
    digest = hashlib.sha256(data[: last.start()]).hexdigest().encode()
    return UNEDITED if digest == last.group(1) else EDITED
