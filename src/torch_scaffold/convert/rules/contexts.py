"""`with` blocks around the batch loop, and progress bars the loop iterates.

Lightning runs the batch loop, so a `with` around it cannot stay where it was:
- a progress bar (`with tqdm(loader) as pbar:` or `pbar = tqdm(loader)` in the epoch loop)
  goes; the loop's data is what the bar wrapped, and the calls on the bar inside the loop
  (`pbar.update()`, `pbar.set_postfix(...)`) go with it (`pbar.write(s)` becomes `print(s)`);
  Lightning shows its own progress bar. Any other use of the bar is refused;
- grad-mode blocks go; autocast becomes Trainer(precision=...) where that is the same;
- anything else (`with open(...) as f`, a profiler) is refused: dropping it would change
  what the script does.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.analyze import Refusal
from torch_scaffold.convert.nodes import code, dotted, walk
from torch_scaffold.convert.result import REMOVED
from torch_scaffold.convert.rules import amp

PROGRESS = ("tqdm", "trange", "track")


def is_progress(node) -> bool:
    """`tqdm(...)`, `tqdm.tqdm(...)`, `trange(...)`, `track(...)`."""
    if not isinstance(node, cst.Call):
        return False
    return (dotted(node.func) or "").rsplit(".", 1)[-1] in PROGRESS


def _wrapped(call: cst.Call):
    """The iterable a progress bar wraps (its first positional argument), if any."""
    if call.args and call.args[0].keyword is None and not call.args[0].star:
        return call.args[0].value
    return None


def strip(ctx, sections: dict) -> dict:
    """Handle the `with` blocks the loop was unwrapped from, and progress bars; returns the
    sections without the statements that used the bars."""
    raw = ctx.raw
    bars: dict[str, cst.Call] = {}
    for w in raw.stripped_withs:
        for item in w.items:
            call = item.item
            if is_progress(call):
                if item.asname is not None and isinstance(item.asname.name, cst.Name):
                    bars[item.asname.name.value] = call
                ctx.note(
                    REMOVED,
                    f"`with {code(call)[:60]}` around the batch loop (Lightning draws its "
                    "own progress bar)",
                    w,
                )
            elif amp.is_autocast(ctx, call):
                ctx.plan.outer_autocast.append((call, w))  # decided once roles are known
            elif not amp.is_grad_ctx(ctx, call):
                raise Refusal(
                    f"`with {code(call)[:60]}` around the training loop cannot be kept: "
                    "Lightning runs the loop (move the block inside the loop body or around "
                    "the whole training run)",
                    ctx.lineof(w),
                )
    # `pbar = tqdm(loader)` before the batch loop, in the epoch loop
    data = ctx.plan.train_data
    for hook, stmts in sections.items():
        kept = []
        for st in stmts:
            small = st.body[0] if isinstance(st, cst.SimpleStatementLine) else None
            if (
                isinstance(small, cst.Assign)
                and len(st.body) == 1
                and len(small.targets) == 1
                and isinstance(small.targets[0].target, cst.Name)
                and is_progress(small.value)
                and isinstance(data, cst.Name)
                and data.value == small.targets[0].target.value
            ):
                bars[data.value] = small.value
                ctx.note(REMOVED, f"progress bar `{code(st)[:60]}` (Lightning draws its own)", st)
                continue
            kept.append(st)
        sections[hook] = kept
    if not bars:
        return sections
    if isinstance(data, cst.Name) and data.value in bars:
        inner = _wrapped(bars[data.value])
        if inner is None:
            raise Refusal(f"the loop iterates `{data.value}`, a progress bar without an iterable")
        ctx.plan.train_data = inner
    calls = 0
    t = _DropBarCalls(set(bars))
    for hook, stmts in sections.items():
        out = []
        for st in stmts:
            new = st.visit(t)
            if not isinstance(new, cst.RemovalSentinel):
                out.append(new)
        sections[hook] = out
    calls = t.dropped
    for hook, stmts in sections.items():
        for st in stmts:
            for n in walk(st):
                if isinstance(n, cst.Name) and n.value in bars:
                    raise Refusal(
                        f"`{n.value}` (a progress bar around the batch loop) is used in a way "
                        f"that cannot be kept: {code(st)[:60]}",
                        ctx.lineof(st),
                    )
    if calls:
        ctx.count_removed("progress-bar calls", calls)
    return sections


class _DropBarCalls(cst.CSTTransformer):
    def __init__(self, names: set[str]):
        self.names = names
        self.dropped = 0

    def leave_SimpleStatementLine(self, original, updated):
        if len(updated.body) != 1 or not isinstance(updated.body[0], cst.Expr):
            return updated
        call = updated.body[0].value
        if not (
            isinstance(call, cst.Call)
            and isinstance(call.func, cst.Attribute)
            and isinstance(call.func.value, cst.Name)
            and call.func.value.value in self.names
        ):
            return updated
        self.dropped += 1
        if call.func.attr.value == "write" and call.args:
            # tqdm.write(message) prints the message: keep that
            return updated.with_changes(
                body=[cst.Expr(cst.Call(func=cst.Name("print"), args=[call.args[0]]))]
            )
        return cst.RemovalSentinel.REMOVE


def decide_outer_autocast(ctx) -> None:
    """An autocast block around the whole batch loop: Trainer(precision=...), or refused
    (Lightning runs the loop, so the block cannot stay where it was)."""
    for call, w in ctx.plan.outer_autocast:
        if not amp.becomes_precision(ctx, call, whole_step=True):
            raise Refusal(
                f"`with {code(call)[:60]}` around the training loop has no Trainer precision "
                "that casts the same code on the same device; move it inside the loop body",
                ctx.lineof(w),
            )
