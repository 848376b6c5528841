"""Parse a script with libcst and resolve the metadata the analysis needs, once."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import (
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
)

from torch_scaffold.errors import ScriptError


@dataclass
class Parsed:
    module: cst.Module
    positions: dict
    parents: dict
    qnames: dict
    filename: str

    def line(self, node: cst.CSTNode) -> int | None:
        pos = _value(self.positions.get(node))
        return pos.start.line if pos else None

    def end_line(self, node: cst.CSTNode) -> int | None:
        pos = _value(self.positions.get(node))
        return pos.end.line if pos else None

    def qname(self, node: cst.CSTNode) -> str | None:
        """The fully qualified name of an expression (`optim.Adam` -> `torch.optim.Adam`)."""
        names = _value(self.qnames.get(node))
        if names:
            return sorted(q.name for q in names)[0]
        return None

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return _value(self.parents.get(node))


def _value(v):
    """Metadata values can be lazy (computed on first access)."""
    return v() if callable(v) and not isinstance(v, cst.CSTNode) else v


def parse(source: str, filename: str) -> Parsed:
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise ScriptError(
            f"not valid Python 3 ({exc.message.splitlines()[0] if exc.message else 'syntax error'})",
            where=f"{filename}:{exc.raw_line}",
            hint="fix the syntax error (the script must run with Python 3) and try again",
        ) from None
    except (RecursionError, MemoryError):
        raise ScriptError(
            "too deeply nested to parse", where=filename, hint="simplify the script"
        ) from None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    meta = wrapper.resolve_many([PositionProvider, ParentNodeProvider, QualifiedNameProvider])
    return Parsed(
        module=wrapper.module,
        positions=meta[PositionProvider],
        parents=meta[ParentNodeProvider],
        qnames=meta[QualifiedNameProvider],
        filename=filename,
    )
