"""Build the hook bodies of the plan from the raw sections (rules applied in order)."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.analyze import Refusal
from torch_scaffold.convert.literals import literal_start
from torch_scaffold.convert.nodes import code, dotted, stmt, walk
from torch_scaffold.convert.plan import (
    BATCH_END,
    BEFORE_OPT,
    EPOCH_END,
    EPOCH_START,
    HOOKS,
    HOST,
    TRAIN_STEP,
)
from torch_scaffold.convert.result import MOVED, REMOVED
from torch_scaffold.convert.rules import cleanup, contexts, device, loop_control, scheduler, step
from torch_scaffold.convert.rules import roles as roles_mod
from torch_scaffold.convert.scope import rename, statement_usage

CLOSURE_LOSS = "__closure_loss__"


def run(ctx) -> None:
    raw, plan, facts = ctx.raw, ctx.plan, ctx.loop
    host = {"self": cst.Name(HOST)}
    sec = {
        TRAIN_STEP: [rename(s, host) for s in raw.loop_body],
        EPOCH_START: [rename(s, host) for s in raw.epoch_pre],
        EPOCH_END: [rename(s, host) for s in raw.epoch_post],
    }
    tail = [rename(s, host) for s in raw.closure_tail]
    sec["tail"] = tail
    sec = contexts.strip(ctx, sec)
    tail = sec.pop("tail")
    everything = sec[TRAIN_STEP] + sec[EPOCH_START] + sec[EPOCH_END] + tail
    if facts.closure_step_stmt is not None:
        everything.append(rename(facts.closure_step_stmt, host))
    closure_names = {facts.closure_fn.name.value} if facts.closure_fn is not None else set()
    roles = roles_mod.find(everything, ctx.ix, closure_names)
    ctx.plan.roles = roles
    if not roles.optimizers:
        raise Refusal(
            "backward() runs but no optimizer steps: manual parameter updates are not supported"
        )

    # ---------------------------------------------------------------- the step
    body = sec[TRAIN_STEP]
    if facts.kind == "closure":
        last = body[-1] if body else None
        if (
            last is not None
            and isinstance(last, cst.SimpleStatementLine)
            and code(last).startswith(CLOSURE_LOSS)
        ):
            body = body[:-1]
    if len(roles.optimizers) >= 2 and facts.kind != "closure":
        step.manual(ctx, body, roles)
    else:
        step.split(ctx, body, roles)
        if facts.kind == "closure":
            ctx.note(
                MOVED,
                f"{facts.closure_fn.name.value}() closure (lines {ctx.line(facts.closure_fn)}-"
                f"{ctx.parsed.end_line(facts.closure_fn)}) -> training_step (Lightning passes the "
                "closure to the optimizer)",
                None,
            )
            if tail or raw.closure_target is not None:
                pre = []
                if raw.closure_target is not None:
                    # optimizer.step(closure) returns the loss of the closure's first call
                    # (LBFGS calls it several times); Lightning's outputs hold the last one
                    pre = [stmt(f"{code(raw.closure_target)} = self._step_loss")]
                    ctx.plan.first_closure_loss = True
                plan.sections[BATCH_END] = pre + tail
    from torch_scaffold.convert.rules import accumulation

    plan.sections[TRAIN_STEP] = accumulation.undo_division(ctx, plan.sections[TRAIN_STEP])
    plan.sections[EPOCH_START] = sec[EPOCH_START]
    plan.sections[EPOCH_END] = sec[EPOCH_END]

    # ---------------------------------------------------------------- per-hook rules
    from torch_scaffold.convert.rules import checkpointing
    from torch_scaffold.convert.rules import logging as metrics

    for hook in (EPOCH_START, EPOCH_END):
        plan.sections[hook] = scheduler.epoch_steps(ctx, plan.sections[hook], roles)
        plan.sections[hook] = checkpointing.saves(ctx, plan.sections[hook], roles)
        plan.sections[hook] = [
            s for s in plan.sections[hook] if not step.drop_optimizer_stmt(ctx, s, roles)
        ]
    for hook in HOOKS:
        stmts = plan.sections.get(hook, [])
        in_step = hook in (TRAIN_STEP, BEFORE_OPT, EPOCH_START)
        if hook in (TRAIN_STEP, BEFORE_OPT):
            stmts = [s.visit(device.DropMoves(ctx, roles)) for s in stmts]
        else:
            stmts = [s.visit(device.CudaToDevice()) for s in stmts]
        stmts = cleanup.clean(ctx, stmts, roles, in_step=in_step and not plan.manual)
        if hook == TRAIN_STEP:
            if plan.manual:
                stmts = loop_control.rewrite(
                    ctx, stmts, [loop_control.STOP, "return None"], ["return None"], "batch loop"
                )
        elif hook in (BATCH_END, BEFORE_OPT):
            stmts = loop_control.rewrite(
                ctx, stmts, [loop_control.STOP, "return"], ["return"], "batch loop"
            )
        elif hook == EPOCH_START:
            stmts = _epoch_start_control(ctx, stmts)
        else:
            stmts = loop_control.rewrite(
                ctx, stmts, [loop_control.STOP, "return"], ["return"], "epoch loop"
            )
        plan.sections[hook] = stmts
    plan.sections[BATCH_END] = accumulation.undo_division(ctx, plan.sections.get(BATCH_END) or [])
    monitors = {s.monitor for s in plan.schedulers if s.monitor}
    plan.sections[EPOCH_END] = metrics.epoch_metrics(ctx, plan.sections[EPOCH_END], monitors)
    reads = set()
    for hook in (TRAIN_STEP, BEFORE_OPT, BATCH_END, EPOCH_END):
        reads |= statement_usage(plan.sections.get(hook) or []).reads
    plan.sections[EPOCH_START] = cleanup.drop_dead_flags(plan.sections[EPOCH_START], reads)
    _restore_train_mode(ctx, roles)
    _batch_and_counters(ctx)
    _loss_return(ctx)


def _epoch_start_control(ctx, stmts: list) -> list:
    """`continue`/`break` before the batch loop of an epoch.

    `continue` there skips the epoch's training, which on_train_epoch_start cannot do: it is
    refused, unless its test reads what the removed resume block restored (skipping the
    epochs a checkpoint already covers: fit(ckpt_path=...) resumes at the saved epoch
    itself, so the test goes). `break` stops the Trainer before the epoch's batches, and
    on_train_epoch_end, which the original skipped too, returns at once.
    """
    out = []
    breaks = False
    for st in stmts:
        kinds = loop_control.exits(st)
        if "continue" in kinds:
            test_names = set()
            if isinstance(st, cst.If):
                from torch_scaffold.convert.scope import expr_reads

                test_names = set(expr_reads(st.test))
            resumed = test_names & ctx.plan.resume_names
            if resumed and kinds == {"continue"} and isinstance(st, cst.If) and st.orelse is None:
                ctx.note(
                    REMOVED,
                    f"`if {code(st.test)}: ... continue` (skipping epochs a checkpoint covers): "
                    "trainer.fit(ckpt_path=...) resumes at the saved epoch",
                    st,
                )
                continue
            raise Refusal(
                "`continue` before the batch loop skips an epoch's training; Lightning cannot "
                "skip an epoch from on_train_epoch_start (filter the epochs in the range, or "
                "move the test into the batch loop)",
                ctx.lineof(st),
            )
        breaks = breaks or "break" in kinds
        out.append(st)
    if breaks:
        flag = "self._stopped_before_epoch"
        out = loop_control.rewrite(
            ctx, out, [loop_control.STOP, f"{flag} = True", "return"], ["return"], "epoch loop"
        )
        ctx.plan.state_init_none.append(flag.split(".", 1)[1])
        if ctx.plan.sections.get(EPOCH_END):
            ctx.plan.sections[EPOCH_END] = [
                stmt(f"if {flag}:  # the loop stopped before this epoch's batches\n    return\n")
            ] + ctx.plan.sections[EPOCH_END]
    return out


def _restore_train_mode(ctx, roles) -> None:
    """Evaluation code in a hook leaves the model in eval mode: switch back afterwards.

    Only where the hook (or a function of the script it calls, followed a few calls deep)
    calls `.eval()`: an EMA update or a print does not change the mode."""
    for hook in (EPOCH_END, BATCH_END):
        stmts = ctx.plan.sections.get(hook) or []
        if stmts and calls_eval(ctx, stmts):
            ctx.plan.sections[hook] = stmts + [
                stmt("self.train()  # the evaluation above switched to eval mode")
            ]


def called_functions(ctx, nodes) -> list:
    """The script's own functions (and methods of its classes) the nodes call, resolved by
    name: `evaluate(...)`, `self.evaluate(...)` in a class; not `model.train()`."""
    out = []
    for st in nodes:
        for n in walk(st):
            if not isinstance(n, cst.Call):
                continue
            f = n.func
            name = None
            if isinstance(f, cst.Name):
                name = f.value
            elif isinstance(f, cst.Attribute) and dotted(f.value) in (HOST, "self.host"):
                name = f.attr.value
            for fn in ctx.ix.functions.get(name or "", []):
                if fn not in out:
                    out.append(fn)
    return out


def calls_eval(ctx, nodes, depth: int = 3) -> bool:
    for st in nodes:
        for n in walk(st):
            if not (isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute)):
                continue
            if n.func.attr.value == "eval" and not n.args:
                return True
            if n.func.attr.value == "train" and n.args and code(n.args[0].value) != "True":
                return True  # model.train(False), model.train(training)
    if depth == 0:
        return False
    return any(calls_eval(ctx, [fn], depth - 1) for fn in called_functions(ctx, nodes))


def _batch_and_counters(ctx) -> None:
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


def _loss_return(ctx) -> None:
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
