"""Which names a list of statements reads and binds, and renaming them.

The moved code lives in methods of the new LightningModule, so a name it shares
with another hook or with the code around the loop has to become an attribute
(`running` -> `self.running`). These helpers give the facts for that decision.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import libcst as cst

from torch_scaffold.convert.nodes import current_index, mentions, unchanged, visit

_STATEMENTS = (cst.BaseStatement, cst.BaseSmallStatement)
_SCOPED = (cst.FunctionDef, cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


@dataclass
class Usage:
    reads: set[str] = field(default_factory=set)
    binds: set[str] = field(default_factory=set)
    read_first: set[str] = field(default_factory=set)  # read before any binding here


def _target_names(target: cst.CSTNode) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        out = []
        for el in target.elements:
            out += _target_names(el.value)
        return out
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


class _Scopes:
    """The one scope bookkeeping of the converter, shared by every visitor that needs it: the
    names bound by the nested scopes around the node being visited (a def's parameters and
    locals, minus what it declares nonlocal; a lambda's parameters; a comprehension's targets),
    and the Name nodes that are no variables (attribute names, keywords, parameters)."""

    def __init__(self) -> None:
        self._skip: set[int] = set()
        self._bound: list[set[str]] = []

    def enter(self, node: cst.CSTNode) -> None:
        if isinstance(node, cst.Attribute):
            self._skip.add(id(node.attr))
        elif isinstance(node, cst.Arg):
            if node.keyword is not None:
                self._skip.add(id(node.keyword))
        elif isinstance(node, cst.Param):
            self._skip.add(id(node.name))
        elif isinstance(node, cst.FunctionDef):
            self._skip.add(id(node.name))
            # a nested def shares the names it declares nonlocal with the scope around it
            self._bound.append(function_locals(node))
        elif isinstance(node, cst.Lambda):
            self._bound.append({p.name.value for p in node.params.params})
        elif isinstance(node, _SCOPED):
            names: set[str] = set()
            f = node.for_in
            while f is not None:
                names.update(_target_names(f.target))
                f = f.inner_for_in
            self._bound.append(names)

    def leave(self, node: cst.CSTNode) -> None:
        if isinstance(node, _SCOPED):
            self._bound.pop()

    def free(self, node: cst.Name) -> bool:
        """Whether `node` names a variable of the scope the walk started in."""
        return id(node) not in self._skip and not any(node.value in b for b in self._bound)


def param_names(params: cst.Parameters) -> set[str]:
    """Every name a function's parameters bind, `*args` and `**kw` included."""
    names = {p.name.value for p in [*params.params, *params.kwonly_params, *params.posonly_params]}
    for star in (params.star_arg, params.star_kwarg):
        if isinstance(star, cst.Param):
            names.add(star.name.value)
    return names


class _Reads(cst.CSTVisitor):
    """Names loaded in an expression tree, minus names bound inside nested scopes."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._scopes = _Scopes()

    def on_visit(self, node: cst.CSTNode) -> bool:
        self._scopes.enter(node)
        if isinstance(node, cst.Name) and self._scopes.free(node):
            self.names.append(node.value)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self._scopes.leave(original_node)


def function_locals(fn: cst.FunctionDef) -> set[str]:
    """A function's own variables: its parameters and what its body binds, less the names it
    declares global or nonlocal (those belong to a scope around it)."""
    return (param_names(fn.params) | bound_names(body_of_block(fn.body))) - _nonlocals(fn)


def expr_reads(node: cst.CSTNode) -> list[str]:
    index = current_index()
    if index is not None and id(node) in index.pos:
        names = index.reads.get(id(node))
        if names is None:
            names = index.reads[id(node)] = _reads(node)
        return list(names)
    return _reads(node)


def _reads(node: cst.CSTNode) -> list[str]:
    v = _Reads()
    visit(node, v)
    return v.names


def statement_usage(stmts: list[cst.CSTNode]) -> Usage:
    """Reads/binds of statements in order (reads of a statement count before its binds)."""
    u = Usage()
    for st in stmts:
        _stmt_usage(st, u)
    return u


def _note_reads(names, u: Usage) -> None:
    for n in names:
        u.reads.add(n)
        if n not in u.binds:
            u.read_first.add(n)


def _stmt_usage(st: cst.CSTNode, u: Usage) -> None:
    if isinstance(st, cst.SimpleStatementLine):
        for small in st.body:
            _small_usage(small, u)
        return
    if isinstance(st, (cst.FunctionDef, cst.ClassDef)):
        _note_reads(
            (
                expr_reads(st.with_changes(name=cst.Name("_")))
                if isinstance(st, cst.ClassDef)
                else expr_reads(st)
            ),
            u,
        )
        u.binds.add(st.name.value)
        return
    if isinstance(st, (cst.For,)):
        _note_reads(expr_reads(st.iter), u)
        u.binds.update(_target_names(st.target))
        for s in _children_stmts(st):
            _stmt_usage(s, u)
        return
    if isinstance(st, cst.With):
        for item in st.items:
            _note_reads(expr_reads(item.item), u)
            if item.asname is not None:
                u.binds.update(_target_names(item.asname.name))
        for s in _children_stmts(st):
            _stmt_usage(s, u)
        return
    if isinstance(st, cst.If):
        # each branch starts from what was bound before the `if`
        _note_reads(expr_reads(st.test), u)
        before = set(u.binds)
        bound = set()
        for s in body_of_block(st.body):
            _stmt_usage(s, u)
        bound |= u.binds
        if st.orelse is not None:
            u.binds = set(before)
            branch = [st.orelse] if isinstance(st.orelse, cst.If) else body_of_block(st.orelse.body)
            for s in branch:
                _stmt_usage(s, u)
            bound |= u.binds
        u.binds = bound
        return
    if isinstance(st, cst.While):
        _note_reads(expr_reads(st.test), u)
        for s in _children_stmts(st):
            _stmt_usage(s, u)
        return
    if isinstance(st, cst.Try):
        for s in _children_stmts(st):
            _stmt_usage(s, u)
        return
    # anything else: count every name as a read
    _note_reads(expr_reads(st), u)


def bound_names(stmts: list[cst.CSTNode]) -> set[str]:
    """statement_usage(stmts).binds, without the reads: a def counts by its name alone, so
    this costs little on a big module or loop body."""
    out: set[str] = set()
    for st in stmts:
        _binds(st, out)
    return out


def _binds(st: cst.CSTNode, out: set[str]) -> None:
    if isinstance(st, cst.SimpleStatementLine):
        for small in st.body:
            u = Usage()
            if isinstance(small, (cst.Import, cst.ImportFrom)):
                _small_usage(small, u)  # no reads in an import: cheap
            elif isinstance(small, cst.Assign):
                for t in small.targets:
                    u.binds.update(_target_names(t.target))
            elif isinstance(small, (cst.AugAssign, cst.AnnAssign)):
                u.binds.update(_target_names(small.target))
            out |= u.binds
    elif isinstance(st, (cst.FunctionDef, cst.ClassDef)):
        out.add(st.name.value)
    else:
        if isinstance(st, cst.For):
            out.update(_target_names(st.target))
        elif isinstance(st, cst.With):
            for item in st.items:
                if item.asname is not None:
                    out.update(_target_names(item.asname.name))
        if isinstance(st, (cst.For, cst.With, cst.If, cst.While, cst.Try)):
            for child in _children_stmts(st):
                _binds(child, out)


def body_of_block(block) -> list[cst.CSTNode]:
    return (
        list(block.body) if isinstance(block, (cst.IndentedBlock, cst.SimpleStatementSuite)) else []
    )


def _children_stmts(st: cst.CSTNode) -> list[cst.CSTNode]:
    out: list[cst.CSTNode] = []
    body = getattr(st, "body", None)
    if isinstance(body, (cst.IndentedBlock, cst.SimpleStatementSuite)):
        out += list(body.body)
    orelse = getattr(st, "orelse", None)
    while orelse is not None:
        if isinstance(orelse, cst.If):
            out.append(orelse)
            break
        out += list(orelse.body.body) if hasattr(orelse.body, "body") else []
        break
    for handler in getattr(st, "handlers", ()) or ():
        out += list(handler.body.body)
    final = getattr(st, "finalbody", None)
    if final is not None:
        out += list(final.body.body)
    return out


def _small_usage(small: cst.CSTNode, u: Usage) -> None:
    if isinstance(small, cst.Assign):
        _note_reads(expr_reads(small.value), u)
        for t in small.targets:
            _target_usage(t.target, u)
    elif isinstance(small, cst.AugAssign):
        _note_reads(expr_reads(small.value), u)
        _note_reads(expr_reads(small.target), u)
        u.binds.update(_target_names(small.target))
    elif isinstance(small, cst.AnnAssign):
        if small.value is not None:
            _note_reads(expr_reads(small.value), u)
        _target_usage(small.target, u)
    elif isinstance(small, (cst.Import, cst.ImportFrom)):
        names = small.names if not isinstance(small.names, cst.ImportStar) else []
        for alias in names:
            bound = alias.asname.name if alias.asname else alias.name
            if isinstance(bound, cst.Name):
                u.binds.add(bound.value)
            elif isinstance(bound, cst.Attribute):
                root = bound
                while isinstance(root, cst.Attribute):
                    root = root.value
                if isinstance(root, cst.Name):
                    u.binds.add(root.value)
    elif isinstance(small, (cst.Global, cst.Nonlocal)):
        pass
    else:
        _note_reads(expr_reads(small), u)


def _target_usage(target: cst.CSTNode, u: Usage) -> None:
    names = _target_names(target)
    if names:
        u.binds.update(names)
    else:  # x.attr = ..., x[i] = ...: reads x
        _note_reads(expr_reads(target), u)


class Renamer(cst.CSTTransformer):
    """Replace free occurrences of names with expressions (`running` -> `self.running`)."""

    def __init__(self, mapping: dict[str, cst.BaseExpression]) -> None:
        self.mapping = mapping
        self._scopes = _Scopes()

    def on_visit(self, node: cst.CSTNode) -> bool:
        self._scopes.enter(node)
        # a statement of the parsed tree without a mapped name stays as it is, unrebuilt
        return not (isinstance(node, _STATEMENTS) and unchanged(node)) or mentions(
            node, self.mapping
        )

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode):
        self._scopes.leave(original_node)
        if (
            isinstance(original_node, cst.Name)
            and original_node.value in self.mapping
            and self._scopes.free(original_node)
        ):
            return self.mapping[original_node.value]
        return updated_node


def _nonlocals(fn: cst.FunctionDef) -> set[str]:
    out: set[str] = set()
    for st in fn.body.body if isinstance(fn.body, cst.IndentedBlock) else []:
        if isinstance(st, cst.SimpleStatementLine):
            for small in st.body:
                if isinstance(small, (cst.Nonlocal, cst.Global)):
                    out.update(n.name.value for n in small.names)
    return out


def rename(node: cst.CSTNode, mapping: dict[str, cst.BaseExpression]) -> cst.CSTNode:
    if not mapping or not mentions(node, mapping):
        return node
    return node.visit(Renamer(mapping))


# ---------------------------------------------------------------- definite assignment

_ANY = None  # "every name": what a block that never falls through binds, for intersections


def _terminates(stmts) -> bool:
    """The block never falls through to the next statement (return/raise/continue/break)."""
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, cst.SimpleStatementLine):
        return any(
            isinstance(s, (cst.Return, cst.Raise, cst.Continue, cst.Break)) for s in last.body
        )
    return False


def _meet(a, b):
    if a is _ANY:
        return b
    if b is _ANY:
        return a
    return a & b


def definitely_bound(stmts) -> set[str] | None:
    """Names bound on every path through `stmts` that falls through (None: no path does)."""
    out: set[str] = set()
    for st in stmts:
        got = _definite_stmt(st)
        if got is _ANY:
            return _ANY
        out |= got
    if _terminates(list(stmts)):
        return _ANY
    return out


def _definite_stmt(st) -> set[str] | None:
    if isinstance(st, cst.SimpleStatementLine):
        u = Usage()
        for small in st.body:
            if isinstance(small, (cst.Assign, cst.AnnAssign, cst.Import, cst.ImportFrom)):
                _small_usage(small, u)
            elif isinstance(small, cst.AugAssign):
                u.binds.update(_target_names(small.target))
            elif isinstance(small, (cst.Return, cst.Raise, cst.Continue, cst.Break)):
                return _ANY
        return u.binds
    if isinstance(st, (cst.FunctionDef, cst.ClassDef)):
        return {st.name.value}
    if isinstance(st, cst.If):
        body = definitely_bound(body_of_block(st.body))
        if st.orelse is None:
            other: set[str] | None = set()
        elif isinstance(st.orelse, cst.If):
            other = _definite_stmt(st.orelse)
        else:
            other = definitely_bound(body_of_block(st.orelse.body))
        return _meet(body, other)
    if isinstance(st, cst.With):
        names = set()
        for item in st.items:
            if item.asname is not None:
                names.update(_target_names(item.asname.name))
        inner = definitely_bound(body_of_block(st.body))
        return _ANY if inner is _ANY else names | inner
    if isinstance(st, cst.Try):
        body = definitely_bound(body_of_block(st.body))
        if st.orelse is not None and body is not _ANY:
            more = definitely_bound(body_of_block(st.orelse.body))
            body = _ANY if more is _ANY else body | more
        for h in st.handlers:
            body = _meet(body, definitely_bound(body_of_block(h.body)))
        final = (
            definitely_bound(body_of_block(st.finalbody.body))
            if st.finalbody is not None
            else set()
        )
        if final is _ANY or body is _ANY:
            return _ANY
        return body | final
    return set()  # loops may run zero times; match, etc.: nothing for sure


def bound_before(scope: cst.CSTNode, target: cst.CSTNode, parent_of) -> set[str]:
    """Names surely bound when `target` (a statement inside `scope`) starts to run."""
    path = []
    cur = target
    while cur is not None and cur is not scope:
        path.append(cur)
        cur = parent_of(cur)
    path.append(scope)
    path.reverse()
    out: set[str] = set()
    if isinstance(scope, cst.FunctionDef):
        out |= param_names(scope.params)
    for node, child in itertools.pairwise(path):
        stmts = (
            list(node.body)
            if isinstance(node, (cst.Module, cst.IndentedBlock, cst.SimpleStatementSuite))
            else None
        )
        if stmts is not None:
            for s in stmts:
                if s is child:
                    break
                got = _definite_stmt(s)
                if got is not _ANY:
                    out |= got
        elif isinstance(node, cst.With):
            for item in node.items:
                if item.asname is not None:
                    out.update(_target_names(item.asname.name))
        elif isinstance(node, cst.For) and child is node.body:
            out.update(_target_names(node.target))
    return out
