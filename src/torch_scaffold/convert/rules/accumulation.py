"""Manual gradient accumulation: Lightning divides the loss by accumulate_grad_batches
itself, so the user's `loss = ... / K` division goes, and so does `loss.item() * K`."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import code
from torch_scaffold.convert.result import REMOVED


class _Undivide(cst.CSTTransformer):
    def __init__(self, loss: str, factor: str):
        self.loss, self.factor = loss, factor
        self.divisions = 0

    def leave_Assign(self, original, updated):
        if (
            len(updated.targets) == 1
            and code(updated.targets[0].target) == self.loss
            and isinstance(updated.value, cst.BinaryOperation)
            and isinstance(updated.value.operator, cst.Divide)
            and code(updated.value.right) == self.factor
        ):
            self.divisions += 1
            return updated.with_changes(value=updated.value.left)
        return updated

    def leave_BinaryOperation(self, original, updated):
        # `loss.item() * K` printed the undivided loss: it is undivided already
        if (
            isinstance(updated.operator, cst.Multiply)
            and code(updated.right) == self.factor
            and code(updated.left).startswith(self.loss)
        ):
            return updated.left
        return updated


def undo_division(ctx, stmts: list) -> list:
    factor, loss = ctx.plan.accum_factor, ctx.plan.loss_expr
    if not factor or loss is None:
        return stmts
    t = _Undivide(code(loss), factor)
    out = [s.visit(t) for s in stmts]
    if t.divisions:
        ctx.note(
            REMOVED,
            f"`{code(loss)} / {factor}` division (Lightning divides by accumulate_grad_batches)",
        )
    return out


def run(ctx) -> None:
    from torch_scaffold.convert.analyze import Refusal
    from torch_scaffold.convert.plan import BATCH_END, TRAIN_STEP

    sections = ctx.plan.sections
    before = len(ctx.entries)
    for hook in (TRAIN_STEP, BATCH_END):
        sections[hook] = undo_division(ctx, sections[hook])
    factor = ctx.plan.accum_factor
    if factor and len(ctx.entries) == before:
        # the script sums the undivided losses of the window; Lightning would divide them
        raise Refusal(
            f"gradient accumulation over {factor} batches without `loss = loss / {factor}`: "
            f"Lightning divides the loss by accumulate_grad_batches, the script does not",
            ctx.line_of_moved(ctx.loop.batch_loop),
            manual_ok=True,
        )
    if factor and ctx.plan.accum_full_windows_only:
        _check_full_windows(ctx, factor)


def _check_full_windows(ctx, factor: str) -> None:
    """The script steps on full windows only; Lightning also on each epoch's last batch.
    The same only when every epoch's batches fill whole windows, which the length of the
    data tells at run time (an iterable without one cannot be checked: it stops too)."""
    from torch_scaffold.convert.plan import EPOCH_START
    from torch_scaffold.convert.result import MOVED

    guard = cst.parse_statement(
        f"if self.trainer.num_training_batches % {factor}:\n"
        f"    raise RuntimeError(\n"
        f'        "an epoch\'s batches do not fill whole windows of {factor}: Lightning would "\n'
        f'        "step on the last, incomplete one, and the script did not"\n'
        f"    )\n"
    )
    ctx.plan.sections[EPOCH_START] = [guard] + list(ctx.plan.sections.get(EPOCH_START) or [])
    ctx.note(
        MOVED,
        f"the script steps on full windows of {factor} only: on_train_epoch_start checks that "
        "the epoch's batches fill whole windows (Lightning steps on the last batch too)",
    )
