"""The loss: returned by training_step and logged as train_loss."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import code, stmt
from torch_scaffold.convert.plan import HOST, TRAIN_STEP
from torch_scaffold.convert.result import MOVED


def run(ctx) -> None:
    plan = ctx.plan
    if plan.manual:
        return
    loss = code(plan.loss_expr)
    if plan.first_closure_loss:
        plan.sections[TRAIN_STEP].append(
            cst.parse_statement(
                "if self._step_loss_at != self.global_step:  # the closure's first call\n"
                f"    self._step_loss_at, self._step_loss = self.global_step, {loss}\n"
            )
        )
        plan.state_init_none += ["_step_loss_at", "_step_loss"]
    plan.sections[TRAIN_STEP] = plan.sections[TRAIN_STEP] + [
        stmt(f'self.log("train_loss", {loss}, prog_bar=True)'),
        stmt(f"return {loss}"),
    ]
    ctx.note(
        MOVED,
        f"loss `{loss.replace(HOST, 'self')}` -> returned by training_step, "
        'logged as self.log("train_loss")',
    )
