"""The loop's variables that Lightning passes or counts: the batch (a hook parameter), the
batch index (batch_idx, plus the loop's offset) and the epoch (self.current_epoch)."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.literals import literal_start
from torch_scaffold.convert.nodes import code, stmt
from torch_scaffold.convert.plan import BATCH_END, HOOKS, HOST, TRAIN_STEP
from torch_scaffold.convert.scope import rename, statement_usage


def run(ctx) -> None:
    raw, plan = ctx.raw, ctx.plan
    head = []
    if raw.batch_target is not None:
        tgt = rename(raw.batch_target, {"self": cst.Name(HOST)})
        if isinstance(tgt, cst.Name):
            plan.batch_param = tgt.value
        else:
            head.append(stmt(f"{code(tgt)} = batch"))
    if raw.index_var:
        if raw.index_offset is not None:
            from torch_scaffold.convert.precedence import fix

            plan.index_param = "batch_idx"
            off = fix(
                cst.BinaryOperation(
                    left=cst.Name("batch_idx"),
                    operator=cst.Add(),
                    right=rename(raw.index_offset, host_names()),
                )
            )
            for hook in (TRAIN_STEP, BATCH_END):
                if raw.index_var in statement_usage(plan.sections.get(hook) or []).reads:
                    assign = cst.SimpleStatementLine(
                        [cst.Assign([cst.AssignTarget(cst.Name(raw.index_var))], off)]
                    )
                    plan.sections[hook] = [assign] + plan.sections[hook]
        else:
            plan.index_param = raw.index_var
    plan.sections[TRAIN_STEP] = head + plan.sections[TRAIN_STEP]
    if raw.epoch_var:
        from torch_scaffold.convert.precedence import fix

        start = raw.epoch_start
        lit = literal_start(ctx.parsed, ctx.ix, ctx.loop, start)
        value = cst.parse_expression("self.current_epoch")
        if lit != 0:
            # the start is spelled in the moved code's names (`self.start_epoch` of a
            # Trainer class is the host's attribute, not the LightningModule's)
            offset = cst.Integer(str(lit)) if lit is not None else rename(start, host_names())
            value = fix(cst.BinaryOperation(left=value, operator=cst.Add(), right=offset))
        for hook in HOOKS:
            stmts = plan.sections.get(hook) or []
            if raw.epoch_var in statement_usage(stmts).reads:
                assign = cst.SimpleStatementLine(
                    [cst.Assign([cst.AssignTarget(cst.Name(raw.epoch_var))], value)]
                )
                plan.sections[hook] = [assign] + stmts


def host_names() -> dict:
    return {"self": cst.Name(HOST)}
