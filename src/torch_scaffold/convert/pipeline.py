"""source -> parse -> analyze -> plan (rules) -> emit (formats only new code) -> compile
-> Conversion."""

from __future__ import annotations

import gc

import libcst as cst

from torch_scaffold.convert import analyze, emit, hooks, report, sections, state
from torch_scaffold.convert.limits import check_size
from torch_scaffold.convert.nodes import code, dotted, set_index, walk
from torch_scaffold.convert.parse import parse
from torch_scaffold.convert.plan import Context, TrainingPlan
from torch_scaffold.convert.result import (
    INTERNAL,
    KEPT,
    REFUSED,
    REMOVED,
    Conversion,
    ReportEntry,
)
from torch_scaffold.convert.rules import amp, checkpointing, distributed, refusals, trainer_flags


def _already_lightning(parsed) -> bool:
    imports = has_module = False
    for node in parsed.of_type(cst.Import, cst.ImportFrom):
        if "lightning" in code(node):
            imports = True
            break
    for node in parsed.of_type(cst.ClassDef):
        for base in node.bases:
            q = parsed.qname(base.value) or dotted(base.value) or ""
            if q.endswith("LightningModule"):
                has_module = True
    return imports and has_module


def convert(
    source: str, filename: str = "<stdin>", *, partial: bool = False, style=None
) -> Conversion:
    # Python's cyclic garbage collector would walk the whole tree again and again while it
    # is built and analysed (a third of the time), and finds nothing: libcst trees and the
    # index hold no cycles. It runs again (and collects) as soon as the conversion returns.
    check_size(source, filename)
    collecting = gc.isenabled()
    gc.disable()
    try:
        parsed = parse(source, filename)
        try:
            return _guarded(parsed, source, filename, partial, style)
        finally:
            set_index(None)  # the tree's index holds every node: free it with the tree
    finally:
        if collecting:
            gc.enable()


def _guarded(parsed, source: str, filename: str, partial: bool, style) -> Conversion:
    try:
        return _convert(parsed, source, filename, partial, style)
    except RecursionError:
        entries = [ReportEntry(REFUSED, "the script is too deeply nested to analyse")]
        return Conversion(report.partial_code(source, entries) if partial else None, entries)
    except Exception as exc:  # noqa: BLE001 - never a traceback, and never posing as a refusal
        where = _where(exc)
        return Conversion(
            None,
            [
                ReportEntry(
                    INTERNAL,
                    f"{type(exc).__name__}: {exc}".rstrip(": ")
                    + (f" (at {where})" if where else ""),
                )
            ],
        )


def _where(exc: BaseException) -> str:
    """The converter's own frame that raised, for the bug report: `module.py:line`."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "torch_scaffold" in f.filename]
    if not frames:
        return ""
    f = frames[-1]
    return f"{f.filename.rsplit('torch_scaffold/', 1)[-1]}:{f.lineno}"


def _convert(parsed, source: str, filename: str, partial: bool, style) -> Conversion:
    if _already_lightning(parsed):
        return Conversion(
            None,
            [
                ReportEntry(
                    KEPT, "already a Lightning script (defines a LightningModule); nothing to do"
                )
            ],
            already_lightning=True,
        )
    ix = analyze.Index(parsed)
    refused = refusals.find(parsed, ix)
    if refused:
        entries = [ReportEntry(REFUSED, why, line) for why, line in refused]
        return Conversion(report.partial_code(source, entries) if partial else None, entries)
    try:
        facts = analyze.find_loop(parsed, ix)
        ctx = Context(parsed, ix, facts, None, TrainingPlan(kind=facts.kind), partial=partial)
        ctx.style = style
        ctx.raw = sections.build(parsed, ix, facts, ctx.literal_start)
        _setup(ctx)
        hooks.build(ctx)
        state.assign(ctx)
        trainer_flags.decide(ctx)
        amp.drop_unused_scalers(ctx)
        out = emit.emit(ctx)
    except analyze.Refusal as r:
        entries = [ReportEntry(REFUSED, r.message, r.line)]
        return Conversion(report.partial_code(source, entries) if partial else None, entries)
    try:
        compile(out, filename, "exec")
    except SyntaxError as exc:  # a bug of ours: never write broken code
        entries = [
            ReportEntry(
                INTERNAL,
                f"the converted code does not compile ({exc.msg}, line {exc.lineno})",
            )
        ]
        import os

        if os.environ.get("SCAFFOLD_DEBUG"):
            print(out)
        return Conversion(None, entries)
    return Conversion(out, report.finish(ctx))


def _setup(ctx) -> None:
    ctx.removed_counts = {}
    ctx.used_scaler = False
    ctx.accum_factor = None
    ctx.name_map = {}
    ctx.removed_functions = []
    ctx.removed_resume = None
    ctx.resume_names = set()
    distributed.find(ctx)
    checkpointing.resume(ctx)
    parsed, facts, raw = ctx.parsed, ctx.facts, ctx.raw
    # the module-level statement that holds the driver: the new class goes right before it
    node = raw.replaced
    while parsed.parent(node) is not None and not isinstance(parsed.parent(node), cst.Module):
        node = parsed.parent(node)
    ctx.anchor = node
    if ctx.removed_resume is not None:
        ctx.removed_functions.append(ctx.removed_resume)
    ctx.taken_names = (
        set(ctx.ix.functions)
        | set(ctx.ix.classes)
        | {n.value for n in walk(facts.driver) if isinstance(n, cst.Name)}
    )
    # inlined functions disappear when nothing else calls them
    sites = {id(i.call) for i in (facts.step_inline, facts.epoch_inline) if i is not None}
    for fn in raw.inlined:
        others = [c for c in ctx.ix.calls_to(fn) if id(c) not in sites]
        if not others:
            ctx.removed_functions.append(fn)
            ctx.note(
                REMOVED,
                f"{fn.name.value}() (lines {parsed.line(fn)}-{parsed.end_line(fn)}) "
                "moved into the LightningModule hooks",
                None,
            )
        else:
            ctx.note(
                KEPT,
                f"{fn.name.value}() kept: it is also called outside the training loop "
                f"(line {parsed.line(others[0])})",
                None,
            )
