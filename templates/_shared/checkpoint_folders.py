"""Sharded checkpoint folders (torch.distributed.checkpoint), sealed as a whole and read
without running code.

MANIFEST lists every file of the folder with its size and SHA-256. It is written last, once
every process has written its shards, and is verified before any file of the folder is read:
a file changed, added or removed after the save is refused, as is a folder without it.

The folder's .metadata is a pickle, which DCP's own reader loads with pickle.load (and a
pickle can run any code). SealedReader reads it with an unpickler that builds only DCP's
metadata classes, so a planted .metadata is refused even with a manifest forged to match.
"""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint import FileSystemReader
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta

from .checkpoint_files import NOT_OURS, NOT_REGULAR, OURS, CheckpointError, atomic_path
from .checkpoint_files import changed, sha256

MANIFEST = "sha256sums.txt"
HEADER = "torch-scaffold sha256 manifest"  # then a line per file: digest, size, name
# What a .metadata pickle may build: DCP's metadata and the few torch and Python types in it.
METADATA_CLASSES = {
    "torch.distributed.checkpoint.metadata": {
        "BytesStorageMetadata",
        "ChunkStorageMetadata",
        "Metadata",
        "MetadataIndex",
        "StorageMeta",
        "TensorProperties",
        "TensorStorageMetadata",
        "_MEM_FORMAT_ENCODING",
    },
    "torch.distributed.checkpoint.filesystem": {"_StorageInfo"},
    "torch.serialization": {"_get_layout"},
    "torch": {"Size"},  # and the dtypes, below
    "pathlib": {"PosixPath", "PurePosixPath", "WindowsPath", "PureWindowsPath"},
    "collections": {"OrderedDict"},
}


def seal_folder(folder: Path) -> None:
    """Write MANIFEST for every file in `folder` (call it once all of them are written)."""
    lines = [HEADER]
    for entry in sorted(os.scandir(folder), key=lambda entry: entry.name):
        if entry.name == MANIFEST:
            continue  # a folder sealed again
        if not entry.is_file(follow_symlinks=False):
            raise CheckpointError(f"{entry.path}: {NOT_REGULAR}")
        with open(entry.path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            lines.append(f"{sha256(handle, size)} {size} {entry.name}")
    with atomic_path(folder / MANIFEST) as temporary:
        temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")


def verify_folder(folder: Path) -> set[str]:
    """The names of the files in `folder`; a CheckpointError unless MANIFEST lists exactly
    them, each with its size and SHA-256."""
    expected = _read_manifest(folder)
    try:
        present = {entry.name for entry in os.scandir(folder)} - {MANIFEST}
    except OSError as err:
        raise CheckpointError(f"{folder}: cannot read ({err.strerror})") from None
    removed, added = sorted(expected.keys() - present), sorted(present - expected.keys())
    if removed or added:
        what = f"{removed[0]} was removed" if removed else f"{added[0]} was added"
        raise CheckpointError(
            f"{folder}: does not match the SHA-256 checksums it was saved with: {what} after it"
            " was written, so it is not used",
            "use another checkpoint (last.ckpt or best.ckpt), or train again",
        )
    for name, (size, digest) in sorted(expected.items()):
        path = folder / name
        try:
            with open(path, "rb", opener=_no_follow) as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise CheckpointError(f"{path}: {NOT_REGULAR}")
                if info.st_size != size or sha256(handle, size) != digest:
                    raise changed(path)
        except OSError as err:
            raise CheckpointError(f"{path}: cannot read ({err.strerror})") from None
    return present


def _no_follow(path: str, flags: int) -> int:
    """open() that refuses a symlink (ELOOP): a shard must be a file of the folder itself;
    O_NONBLOCK so that a FIFO planted in its place does not block the open."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


def _read_manifest(folder: Path) -> dict[str, tuple[int, str]]:
    """{file name: (size, SHA-256)} from the folder's MANIFEST."""
    path = folder / MANIFEST
    if not os.path.lexists(path):
        raise CheckpointError(
            f"{folder}: has no {MANIFEST}, so its integrity cannot be checked: it was not saved by"
            " this project's training",
            OURS,
        )
    try:
        with open(path, "rb", opener=_no_follow) as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise CheckpointError(f"{path}: {NOT_REGULAR}")
            lines = handle.read(1 << 20).decode().splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    entries: dict[str, tuple[int, str]] = {}
    for line in lines[1:]:
        digest, size, name = (line.split(" ", 2) + ["", ""])[:3]
        if len(digest) != 64 or not size.isdigit() or not name or name in entries:
            break
        entries[name] = (int(size), digest)
    else:
        if lines and lines[0] == HEADER:
            return entries
    raise CheckpointError(f"{path}: {NOT_OURS}: not a checksum manifest of this project", OURS)


class _Refused(pickle.UnpicklingError):
    """A class the metadata may not build; the message names it."""


class _MetadataUnpickler(pickle.Unpickler):
    """pickle.Unpickler that builds only METADATA_CLASSES (and torch's dtypes)."""

    def find_class(self, module: str, name: str) -> Any:
        if name in METADATA_CLASSES.get(module, ()) or (
            module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)
        ):
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")


def read_metadata(path: Path) -> Metadata:
    """A folder's .metadata, unpickled by _MetadataUnpickler."""
    try:
        with open(path, "rb", opener=_no_follow) as handle:
            metadata = _MetadataUnpickler(handle).load()
    except _Refused as err:
        raise CheckpointError(
            f"{path}: {NOT_OURS}: it holds Python objects other than a sharded checkpoint's"
            f" metadata ({err}); not loaded, as unpickling them could run code",
            OURS,
        ) from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror})") from None
    except Exception as err:  # a torn pickle raises many types
        raise CheckpointError(
            f"{path}: not a readable checkpoint: truncated or corrupt ({type(err).__name__})"
        ) from None
    if not isinstance(metadata, Metadata):
        raise CheckpointError(f"{path}: {NOT_OURS}: not a sharded checkpoint's metadata", OURS)
    return metadata


class SealedReader(FileSystemReader):
    """DCP's reader for a sealed folder: the folder is verified and its .metadata read (by the
    restricted unpickler) when the reader is made, before DCP reads anything."""

    def __init__(self, folder: str | Path) -> None:
        folder = Path(folder)
        if not (folder / ".metadata").is_file():
            raise CheckpointError(f"{folder}: not a sharded checkpoint (no .metadata inside)")
        files = verify_folder(folder)
        self.metadata = read_metadata(folder / ".metadata")
        # every shard it names must be a sealed file of this folder (not "../elsewhere")
        shards = self.metadata.storage_data
        if not isinstance(shards, dict) or any(
            getattr(shard, "relative_path", None) not in files for shard in shards.values()
        ):
            raise CheckpointError(
                f"{folder / '.metadata'}: {NOT_OURS}: its shards are not files of this folder",
                OURS,
            )
        super().__init__(folder)

    def read_metadata(self) -> Metadata:
        if self.metadata.storage_meta is None:  # as DCP's own reader does
            self.metadata.storage_meta = StorageMeta()
        self.metadata.storage_meta.load_id = self.load_id
        return self.metadata
