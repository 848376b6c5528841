"""Parse a script with libcst and compute, in one pass each, what the analysis needs:
line numbers, parent links, and import aliases for qualified names."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from torch_scaffold.convert import lines, nodes
from torch_scaffold.errors import ScriptError


@dataclass
class Parsed:
    module: cst.Module
    positions: dict  # id(statement) -> (first line, last line)
    parents: dict  # id(node) -> parent node
    aliases: dict  # local name -> qualified module path (`optim` -> `torch.optim`)
    filename: str
    all_nodes: list = field(default_factory=list)  # depth-first order

    def _span(self, node: cst.CSTNode):
        cur = node
        while cur is not None:
            span = self.positions.get(id(cur))
            if span is not None:
                return span
            cur = self.parents.get(id(cur))
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
        return self.parents.get(id(node))


def _value(v):
    """Metadata values can be lazy (computed on first access)."""
    return v() if callable(v) and not isinstance(v, cst.CSTNode) else v


class _Links(cst.CSTVisitor):
    """Parent links, children lists and module-level import aliases in one traversal."""

    def __init__(self) -> None:
        self.stack: list[cst.CSTNode] = []
        self.parents: dict[int, cst.CSTNode] = {}
        self.children: dict[int, list[cst.CSTNode]] = {}
        self.order: list[cst.CSTNode] = []
        self.aliases: dict[str, str] = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.stack:
            parent = self.stack[-1]
            self.parents[id(node)] = parent
            self.children.setdefault(id(parent), []).append(node)
        self.children.setdefault(id(node), [])
        self.order.append(node)
        self.stack.append(node)
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = nodes.dotted(alias.name)
                if full is None:
                    continue
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self.aliases[alias.asname.name.value] = full
                else:
                    head = full.split(".")[0]
                    self.aliases.setdefault(head, head)
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
                        self.aliases[local] = f"{mod}.{name}"
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()


def parse(source: str, filename: str) -> Parsed:
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
    positions = lines.statement_lines(module, source)
    if positions is None:  # `ast` disagrees with libcst: ask libcst for every position
        wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        raw = wrapper.resolve(PositionProvider)
        positions = {id(n): (_value(p).start.line, _value(p).end.line) for n, p in raw.items()}
    links = _Links()
    module.visit(links)
    nodes.set_children_cache(links.children)
    return Parsed(
        module=module,
        positions=positions,
        parents=links.parents,
        aliases=links.aliases,
        filename=filename,
        all_nodes=links.order,
    )
