"""Source-level mutations of training scripts, for the converter's robustness tests.

Each mutation takes (source, rnd: random.Random) and returns new source, or None when it
does not apply to this script. They edit text by line spans taken from `ast`, so comments
and layout elsewhere stay as they were.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import random
import textwrap
import tokenize

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LOOPS = (ast.For, ast.While)
_PLAUSIBLE_NAMES = ["net", "opt", "data", "x", "step", "model", "loader", "loss", "batch", "lr"]


def _span(node: ast.stmt) -> tuple[int, int]:
    """0-based [start, end) line span of a statement, decorators included."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return first - 1, node.end_lineno


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def delete_statement(source: str, rnd: random.Random) -> str | None:
    """Remove one statement anywhere; an emptied block gets `pass`."""
    tree = ast.parse(source)
    candidates = []
    for parent in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(parent, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                candidates += [(stmt, len(block) == 1) for stmt in block]
    if not candidates:
        return None
    stmt, only_child = rnd.choice(candidates)
    lines = source.splitlines(keepends=True)
    start, end = _span(stmt)
    filler = [f"{_indent_of(lines[start])}pass\n"] if only_child else []
    return "".join(lines[:start] + filler + lines[end:])


def _bound_names(tree: ast.Module) -> set[str]:
    imported = set()
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, _DEFS):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
    return {n for n in bound - imported if n not in ("self", "cls") and not hasattr(builtins, n)}


def rename_variable(source: str, rnd: random.Random) -> str | None:
    """Rename one user-bound name everywhere it is a plain name (not attributes or keywords)."""
    names = sorted(_bound_names(ast.parse(source)))
    if not names:
        return None
    old = rnd.choice(names)
    new = rnd.choice([f"{old}_{rnd.randint(1, 99)}", rnd.choice(_PLAUSIBLE_NAMES)])
    if new == old or keyword.iskeyword(new):
        new = f"{old}_renamed"
    return _rename_tokens(source, old, new)


def _rename_tokens(source: str, old: str, new: str) -> str:
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    significant = [t for t in tokens if t.type not in (tokenize.NL, tokenize.COMMENT)]
    parens: list[str] = []  # "def" for a def's parameter list, "call" for any other bracket
    hits = []
    for i, tok in enumerate(significant):
        prev = significant[i - 1].string if i else ""
        nxt = significant[i + 1].string if i + 1 < len(significant) else ""
        if tok.type == tokenize.OP and tok.string in "([{":
            is_def = tok.string == "(" and i >= 2 and significant[i - 2].string == "def"
            parens.append("def" if is_def else "call")
        elif tok.type == tokenize.OP and tok.string in ")]}" and parens:
            parens.pop()
        elif tok.type == tokenize.NAME and tok.string == old and prev != ".":
            keyword_arg = nxt == "=" and prev in ("(", ",") and parens and parens[-1] == "call"
            if not keyword_arg:
                hits.append(tok.start)
    lines = source.splitlines(keepends=True)
    for row, col in sorted(hits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + new + line[col + len(old) :]
    return "".join(lines)


def reorder_definitions(source: str, rnd: random.Random) -> str | None:
    """Swap two top-level function/class definitions."""
    defs = [node for node in ast.parse(source).body if isinstance(node, _DEFS)]
    if len(defs) < 2:
        return None
    first, second = sorted(rnd.sample(defs, 2), key=lambda n: n.lineno)
    (a0, a1), (b0, b1) = _span(first), _span(second)
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return "".join(lines[:a0] + lines[b0:b1] + lines[a1:b0] + lines[a0:a1] + lines[b1:])


def wrap_loop_in_function(source: str, rnd: random.Random) -> str | None:
    """Move a module-level loop (also one under `if __name__ == ...`) into a function called
    where the loop was."""
    tree = ast.parse(source)
    loops = [node for node in tree.body if isinstance(node, _LOOPS)]
    for node in tree.body:
        if isinstance(node, ast.If):
            loops += [child for child in node.body if isinstance(child, _LOOPS)]
    if not loops:
        return None
    loop = rnd.choice(loops)
    start, end = _span(loop)
    lines = source.splitlines(keepends=True)
    indent = _indent_of(lines[start])
    body = textwrap.indent("".join(lines[start:end]), "    ")
    if not body.endswith("\n"):
        body += "\n"
    header = f"{indent}def run_training_loop():\n"
    if rnd.random() < 0.5:  # keep module-level state shared, as a quick refactor would
        stored = sorted(
            {
                n.id
                for n in ast.walk(loop)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
            }
        )
        if stored:
            header += f"{indent}    global {', '.join(stored)}\n"
    wrapped = f"{header}{body}\n{indent}run_training_loop()\n"
    return "".join(lines[:start]) + wrapped + "".join(lines[end:])


MUTATIONS = {
    "delete_statement": delete_statement,
    "rename_variable": rename_variable,
    "reorder_definitions": reorder_definitions,
    "wrap_loop_in_function": wrap_loop_in_function,
}


def mutate(source: str, rnd: random.Random, kinds: list[str]) -> tuple[str, list[str]]:
    """Apply the named mutations in order; return the new source and those that applied."""
    applied = []
    for kind in kinds:
        try:
            changed = MUTATIONS[kind](source, rnd)
        except SyntaxError:  # an earlier mutation broke the syntax: stop mutating
            break
        if changed is not None and changed != source:
            source = changed
            applied.append(kind)
    return source, applied
