"""source -> parse -> analyze -> plan (rules) -> emit (formats only new code) -> compile
-> Conversion."""

from __future__ import annotations

import gc

import libcst as cst

from torch_scaffold.convert import analyze, emit, report, sections, state
from torch_scaffold.convert.limits import check_size
from torch_scaffold.convert.nodes import set_index, walk
from torch_scaffold.convert.parse import parse
from torch_scaffold.convert.plan import Context, Facts, Pass, Plan
from torch_scaffold.convert.result import (
    INTERNAL,
    KEPT,
    REFUSED,
    Conversion,
    ReportEntry,
)
from torch_scaffold.convert.rules import (
    accumulation,
    amp,
    checkpointing,
    cleanup,
    counters,
    data_source,
    distributed,
    flags,
    inlined,
    logging,
    loop_control,
    loss,
    moved,
    optimizer_build,
    refusals,
    resume,
    roles,
    scheduler,
    step,
    train_mode,
    trainer_flags,
)

# The passes, in the order they run; each is `run(ctx)` on the one Context. A new pattern is a
# module in rules/ with a `run` and an entry here. The order is the one the output is pinned
# to (fixtures, the report's order); the dependencies it carries:
PASSES: tuple[Pass, ...] = (
    # the module as written: what the emitter removes from it (DDP wrappers, the resume
    # block, functions inlined into the hooks)
    distributed,
    resume,  # plan.resume_names: loop_control and trainer_flags read them
    inlined,
    # the hook bodies
    moved,  # the loop's pieces, in the host's names
    roles,  # plan.roles (optimizers, schedulers, scalers...): every later pass reads them
    step,  # splits the iteration at backward()/step(): the five hooks exist from here on
    accumulation,  # needs step's loss and the N of `if (i + 1) % N == 0: step()`
    scheduler,  # scheduler.step() in the epoch hooks
    checkpointing,  # checkpoint saves in the epoch hooks
    cleanup,  # device moves, then what they and the passes above left empty, per hook
    loop_control,
    logging,  # reads the monitors the scheduler passes recorded
    flags,  # reads what every other hook still reads
    train_mode,
    counters,  # batch/index/epoch variables, prepended once the bodies are final
    loss,  # appends `return loss`: the last statement of training_step
    # names: shared locals become attributes once every hook body is final
    state,
    # the optimizer's construction moves into configure_optimizers where that is faithful:
    # needs state's renaming (nothing but the removed calls may still use it)
    optimizer_build,
    data_source,  # what fit() trains on, checked against how the loop read it: before trainer_flags
    trainer_flags,  # reads the roles, the resume names, state's renaming, optimizer_build
    amp,  # last: a GradScaler goes only once nothing, moved or renamed, uses it
)


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
    lightning = refusals.uses_lightning(parsed)
    if lightning:
        return Conversion(
            None,
            [ReportEntry(KEPT, f"already uses Lightning ({lightning}); nothing to do")],
            already_lightning=True,
        )
    ix = analyze.Index(parsed)
    refused = refusals.find(parsed, ix)
    if refused:
        entries = [ReportEntry(REFUSED, why, line) for why, line in refused]
        return Conversion(report.partial_code(source, entries) if partial else None, entries)
    try:
        facts = _facts(parsed, ix, style, partial)
        try:
            ctx = _plan(facts, None)
        except analyze.Refusal as r:
            if not r.manual_ok:
                raise
            # what Lightning's automatic steps cannot express, the script's own steps can
            ctx = _plan(facts, f"{r.message} (line {r.line})" if r.line else r.message)
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


def _plan(facts: Facts, manual_because: str | None) -> Context:
    """Run every pass on a fresh plan; `manual_because`: with manual optimization."""
    plan = Plan(kind=facts.loop.kind, train_data=facts.raw.train_data)
    plan.manual_because = manual_because
    ctx = Context(facts, plan)
    for rule in PASSES:
        rule.run(ctx)
    return ctx


def _facts(parsed, ix, style, partial: bool) -> Facts:
    """Analysis: the loop, its pieces, and where the new code goes. Read-only from here on."""
    loop = analyze.find_loop(parsed, ix)
    raw = sections.build(parsed, ix, loop)
    # the module-level statement that holds the driver: the new class goes right before it
    anchor = raw.replaced
    while parsed.parent(anchor) is not None and not isinstance(parsed.parent(anchor), cst.Module):
        anchor = parsed.parent(anchor)
    taken = set(ix.functions) | set(ix.classes)
    taken |= {n.value for n in walk(loop.driver) if isinstance(n, cst.Name)}
    return Facts(parsed, ix, loop, raw, anchor, frozenset(taken), style, partial)
