"""Parse a script with libcst and compute, in one pass each, what the analysis needs:
line numbers, parent links, and import aliases for qualified names."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from torch_scaffold.convert import chunks, lines, nodes
from torch_scaffold.errors import ScriptError


@dataclass
class Parsed:
    module: cst.Module
    positions: dict  # id(statement) -> (first line, last line)
    index: nodes.TreeIndex  # every node in depth-first order, parent links
    aliases: dict  # local name -> qualified module path (`optim` -> `torch.optim`)
    filename: str

    def of_type(self, *kinds: type, within: cst.CSTNode | None = None) -> list[cst.CSTNode]:
        """Nodes of exactly these libcst types, depth first (inside `within` if given)."""
        return self.index.of_type(*kinds, within=within)

    def _span(self, node: cst.CSTNode):
        index = self.index
        i = index.pos.get(id(node))
        if i is None:
            return None
        while i >= 0:
            span = self.positions.get(id(index.nodes[i]))
            if span is not None:
                return span
            i = index.parent_of[i]
        return None

    def line(self, node: cst.CSTNode) -> int | None:
        span = self._span(node)
        return span[0] if span else None

    def end_line(self, node: cst.CSTNode) -> int | None:
        span = self._span(node)
        return span[1] if span else None

    def qname(self, node: cst.CSTNode) -> str | None:
        """The qualified name of `optim.Adam`, `torch.optim.Adam` or `Adam` (imported): one string."""
        d = nodes.dotted(node)
        if d is None:
            return None
        head, _, rest = d.partition(".")
        base = self.aliases.get(head)
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.index.parent(node)


def _value(v):
    """Metadata values can be lazy (computed on first access)."""
    return v() if callable(v) and not isinstance(v, cst.CSTNode) else v


def _aliases(index: nodes.TreeIndex) -> dict[str, str]:
    """Import aliases (`optim` -> `torch.optim`), from every import in the script, in order."""
    aliases: dict[str, str] = {}
    for node in index.of_type(cst.Import, cst.ImportFrom):
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = nodes.dotted(alias.name)
                if full is None:
                    continue
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    aliases[alias.asname.name.value] = full
                else:
                    head = full.split(".")[0]
                    aliases.setdefault(head, head)
        elif isinstance(node, cst.ImportFrom) and not node.relative and node.module is not None:
            mod = nodes.dotted(node.module)
            if mod and not isinstance(node.names, cst.ImportStar):
                for alias in node.names:
                    name = nodes.dotted(alias.name)
                    local = (
                        alias.asname.name.value
                        if alias.asname is not None and isinstance(alias.asname.name, cst.Name)
                        else name
                    )
                    if name and local:
                        aliases[local] = f"{mod}.{name}"
    return aliases


def parse(source: str, filename: str) -> Parsed:
    module, pieces = _parse_module(source, filename)
    positions = lines.statement_lines(module, source, pieces)
    if positions is None:  # `ast` disagrees with libcst: ask libcst for every position
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        raw = wrapper.resolve(PositionProvider)
        positions = {id(n): (_value(p).start.line, _value(p).end.line) for n, p in raw.items()}
    index = nodes.TreeIndex(module)
    nodes.set_index(index)
    return Parsed(
        module=module,
        positions=positions,
        index=index,
        aliases=_aliases(index),
        filename=filename,
    )


def _parse_module(source: str, filename: str):
    """The module (and its pieces when it was parsed in pieces: chunks.py)."""
    chunked = chunks.parse_in_pieces(source)
    if chunked is not None:
        return chunked
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        first = exc.message.splitlines()[0] if exc.message else "syntax error"
        raise ScriptError(
            f"not valid Python 3 ({first})",
            where=f"{filename}:{exc.raw_line}",
            hint="fix the syntax error (the script must run with Python 3) and try again",
        ) from None
    except (RecursionError, MemoryError):
        raise ScriptError(
            "too deeply nested to parse", where=filename, hint="simplify the script"
        ) from None
    return module, None
