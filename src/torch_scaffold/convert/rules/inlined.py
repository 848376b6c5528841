"""Functions the loop calls and the conversion inlined into the hooks: removed when nothing
else calls them, kept (and said so) when something does."""

from __future__ import annotations

from torch_scaffold.convert.result import KEPT, REMOVED


def run(ctx) -> None:
    parsed, loop = ctx.parsed, ctx.loop
    sites = {id(i.call) for i in (loop.step_inline, loop.epoch_inline) if i is not None}
    for fn in ctx.raw.inlined:
        others = [c for c in ctx.ix.calls_to(fn) if id(c) not in sites]
        if not others:
            ctx.plan.removed_functions.append(fn)
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
