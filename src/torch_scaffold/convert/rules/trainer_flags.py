"""Trainer(...) arguments: epochs or steps, the training data, the device, no logger.

The script's own seeding (torch.manual_seed, random.seed, ...) stays exactly as written:
pl.seed_everything would also reseed `random` and numpy, and so change what a script
that draws from them trains on."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.analyze import Refusal
from torch_scaffold.convert.nodes import code, dotted, method_call, walk
from torch_scaffold.convert.plan import HOST
from torch_scaffold.convert.result import MOVED

STEP_STREAM = '''class _StepStream:
    """One placeholder item per training step: the step builds its own batch.

    A plain iterable, not a DataLoader, so that it draws no random numbers.
    """

    def __iter__(self):
        while True:
            yield 0
'''

ONE_BATCH_PER_STEP = '''class _OneBatchPerStep:
    """The iterator the loop called next() on, fetched by Lightning as each step starts.

    Without a length Lightning fetches one batch ahead, so a fetch that draws random
    numbers (a shuffled DataLoader starting its next pass, a random transform) would draw
    them before the previous step's dropout. The length is no epoch: max_steps ends training.
    """

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return 2**62
'''

_LIST_CALLS = ("list", "tuple", "sorted")


def _is_list(ctx, data) -> bool:
    """`data` is a list or tuple: a literal, a comprehension, list(...), or a name that every
    assignment in the loop's function and at module level binds to one."""
    if isinstance(data, (cst.List, cst.ListComp, cst.Tuple)):
        return True
    if isinstance(data, cst.Call):
        return dotted(data.func) in _LIST_CALLS
    if not isinstance(data, cst.Name):
        return False
    scopes = [ctx.loop.driver, *ctx.parsed.module.body]
    values = []
    for node in {id(n): n for scope in scopes for n in walk(scope)}.values():
        if isinstance(node, cst.Assign):
            for t in node.targets:
                if any(isinstance(m, cst.Name) and m.value == data.value for m in walk(t)):
                    values.append(node.value if isinstance(t.target, cst.Name) else None)
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign, cst.For, cst.AsName, cst.NamedExpr)):
            target = getattr(node, "target", None) or getattr(node, "name", None)
            if any(isinstance(m, cst.Name) and m.value == data.value for m in walk(target)):
                values.append(None)  # bound otherwise: its type is not known
    return bool(values) and all(v is not None and _is_list(ctx, v) for v in values)


def run(ctx) -> None:
    plan, raw, parsed = ctx.plan, ctx.raw, ctx.parsed
    flags = plan.trainer_flags
    if raw.max_epochs is not None:
        flags["max_epochs"] = code(raw.max_epochs)
        ctx.note(
            MOVED,
            f"epoch loop (lines {parsed.line(raw.replaced)}-{parsed.end_line(raw.replaced)}) "
            f"-> Trainer(max_epochs={flags['max_epochs']})",
            None,
        )
        _epochs_after_resume(ctx, raw.max_epochs)
    if raw.max_steps is not None:
        flags["max_steps"] = _max_steps(ctx, raw.max_steps)
        ctx.note(
            MOVED,
            f"step loop (lines {parsed.line(raw.replaced)}-{parsed.end_line(raw.replaced)}) "
            f"-> Trainer(max_steps={flags['max_steps']})"
            + (
                f" ({plan.manual_steps[0]} optimizer steps per iteration, each a Lightning step)"
                if plan.manual and plan.manual_steps[0] != 1
                else ""
            ),
            None,
        )
    loop = ctx.loop.batch_loop
    owner = ctx.loop.epoch_inline or ctx.loop.step_inline
    what = f"{owner.fn.name.value}() loop" if owner is not None else "training loop"
    if ctx.loop.closure_fn is None:
        ctx.note(
            MOVED,
            f"{what} (lines {parsed.line(loop)}-{parsed.end_line(loop)}) -> training_step",
            None,
        )
    _report_optimizers(ctx)
    data = plan.train_data
    if isinstance(data, cst.Call) and dotted(data.func) == "zip" and data.args:
        # zip() is exhausted after one epoch; Lightning's CombinedLoader restarts every epoch
        from torch_scaffold.convert.analyze import _unwrap_progress

        loaders = ", ".join(ctx.driver_expr(_unwrap_progress(a.value)) for a in data.args)
        plan.fit_kwargs["train_dataloaders"] = (
            f'pl.utilities.CombinedLoader([{loaders}], mode="min_size")'
        )
        ctx.note(MOVED, f'zip({loaders}) -> CombinedLoader(mode="min_size")')
    elif data is not None and raw.fetched:
        # `x, y = next(it)` fetched each batch as its step began; Lightning prefetches from
        # an iterable without a length: one batch ahead, so what the fetch draws (a new
        # pass's shuffle) would come before the previous step's dropout
        plan.helpers.append(ONE_BATCH_PER_STEP)
        plan.fit_kwargs["train_dataloaders"] = f"_OneBatchPerStep({ctx.driver_expr(data)})"
        ctx.note(
            MOVED,
            f"next({ctx.driver_expr(data)}) -> Lightning fetches from it, one batch as each "
            "step starts (_OneBatchPerStep: with a length, no batch fetched ahead)",
        )
    elif data is not None and _is_list(ctx, data):
        # Lightning reads a list or tuple as several dataloaders: hand it the same items
        from torch_scaffold.convert.rules.data_source import BATCHES

        plan.helpers.append(BATCHES)
        plan.fit_kwargs["train_dataloaders"] = f"_Batches({ctx.driver_expr(data)})"
        ctx.note(
            MOVED,
            f"the loop iterates the list `{ctx.driver_expr(data)}` -> _Batches(...): the same "
            "items in the same order each epoch (Lightning reads a plain list as several "
            "dataloaders)",
        )
    elif data is not None:
        plan.fit_kwargs["train_dataloaders"] = ctx.driver_expr(data)
    elif plan.train_dataloader:
        pass  # the LightningModule's train_dataloader() builds it (rules/data_source.py)
    else:
        plan.helpers.append(STEP_STREAM)
        plan.fit_kwargs["train_dataloaders"] = "_StepStream()"
        ctx.note(
            MOVED,
            "the loop fetches its own batches: Trainer iterates a placeholder stream, one item per step",
        )
    _environment(ctx)
    # model class for the LightningModule's name
    for m in ctx.plan.roles.models:
        cls = _constructed_class(ctx, m)
        if cls:
            plan.model_class = cls
            break
    # argparse namespace -> save_hyperparameters
    for attr, expr in plan.ctor.items():
        if _is_parse_args(ctx, expr):
            plan.hparams = f"vars({attr})"
            break
    _model_back_on_device(ctx)
    _evaluation_report(ctx)


def _environment(ctx) -> None:
    """The Trainer runs where the script ran and writes nothing the script did not: its
    device (never "auto": on several GPUs that is DDP, another batch size and data split),
    no logger, no checkpoints."""
    from torch_scaffold.convert.result import KEPT
    from torch_scaffold.convert.rules.device import placement

    plan = ctx.plan
    where = placement(ctx)
    strategy = plan.trainer_flags.get("strategy")
    devices = where.devices
    if strategy == '"ddp"':
        devices = '"auto"'  # the processes torchrun started: Lightning checks the count
    elif strategy:  # "ddp" if <condition> else "auto"
        devices = f'"auto" if {strategy.split(" if ", 1)[1].rsplit(" else ", 1)[0]} else {devices}'
    plan.trainer_flags = {
        "accelerator": where.accelerator,
        "devices": devices,
        **plan.trainer_flags,
    }
    ctx.note(
        MOVED,
        f"{where.why} -> Trainer(accelerator={where.accelerator}, devices={devices})",
    )
    plan.trainer_flags["logger"] = "False"
    off = "logger=False"
    if not any("ModelCheckpoint" in c for c in plan.callbacks):
        plan.trainer_flags["enable_checkpointing"] = "False"
        off += ", enable_checkpointing=False"
    ctx.note(
        KEPT,
        f"no logger, checkpoint or output folder the script did not write: Trainer({off}); "
        "remove them to get Lightning's lightning_logs/ and checkpoints",
    )


def _report_optimizers(ctx) -> None:
    """Where the optimizers (and their schedulers) went: optimizer_build.py built them in
    configure_optimizers, or they stay where the script built them, and why."""
    plan, parsed = ctx.plan, ctx.parsed
    built = plan.built_optimizer is not None
    for i, opt in enumerate(plan.roles.optimizers):
        last = opt.rsplit(".", 1)[-1]
        what = (
            f"optimizer `{opt.replace(HOST, 'self')}` "
            f"({ctx.ix.optim_targets.get(last, 'optimizer')}, line {ctx.ix.construct_lines.get(last)})"
        )
        schedulers = plan.schedulers if i == 0 else []
        for s in schedulers:
            what += f" and its {s.cls} `{s.expr.replace(HOST, 'self')}`"
            if built:  # the span of its statement: those lines are converted code now
                stmt_line = plan.built_scheduler_stmt
                what += f" (lines {parsed.line(stmt_line)}-{parsed.end_line(stmt_line)})"
            config = f"interval={s.interval!r}"
            if s.monitor:
                config += f", monitor={s.monitor!r} + matching self.log"
            what += f", stepped per {_PER[s.interval]} ({config})"
        if built:
            where = f"{'both built' if schedulers else 'built'} in configure_optimizers"
            if plan.built_accessors:
                where += f"; the hooks read {' and '.join(plan.built_accessors)}"
            ctx.note(
                MOVED,
                f"{what} -> {where}",
                plan.built_optimizer_stmt,
                end=True,  # all its lines are converted code now
            )
            continue
        why = f": {plan.optimizer_kept}" if plan.optimizer_kept else ""
        kept = (
            "both built where they were"
            if schedulers
            else "built where it was (its arguments and param groups as written)"
        )
        ctx.note(MOVED, f"{what} -> returned by configure_optimizers, {kept}{why}", None)


_PER = {"step": "batch", "epoch": "epoch"}


def _epochs_after_resume(ctx, max_epochs) -> None:
    """`range(start_epoch, start_epoch + N)` trains N more epochs after a resume; Lightning's
    max_epochs counts from epoch 0 and the resume block that set start_epoch is gone, so a
    resumed run would stop at N. Say so in the code and the report."""
    from torch_scaffold.convert.result import TODO
    from torch_scaffold.convert.scope import expr_reads

    resumed = sorted(set(expr_reads(max_epochs)) & ctx.plan.resume_names)
    if not resumed:
        return
    text = (
        f"max_epochs={code(max_epochs)} counts from epoch 0, and `{', '.join(resumed)}` "
        "keeps its default now that Lightning resumes: a resumed run stops at that total "
        "instead of training that many more epochs"
    )
    ctx.plan.todos.append(text)
    ctx.note(TODO, text, None)


def _evaluation_report(ctx) -> None:
    """Say where evaluation went: during training (validation) or after it (test)."""
    from torch_scaffold.convert.nodes import body_of
    from torch_scaffold.convert.plan import BATCH_END, EPOCH_END
    from torch_scaffold.convert.result import KEPT
    from torch_scaffold.convert.rules.train_mode import called_functions

    user_fns = set(ctx.ix.functions)
    for hook in (EPOCH_END, BATCH_END):
        stmts = ctx.plan.sections.get(hook) or []
        names = [fn.name.value for fn in called_functions(ctx, stmts)]
        names = [n for i, n in enumerate(names) if n not in names[:i]]
        loops = any(isinstance(n, cst.For) for st in stmts for n in walk(st))
        if not names and loops:
            names = ["inline loop"]
        if names:
            when = "each epoch" if hook == EPOCH_END else "every few steps"
            shown = ", ".join(n if n == "inline loop" else n + "()" for n in names)
            logged = any(
                isinstance(n, cst.Call) and dotted(n.func) in ("self.log", "self.log_dict")
                for st in stmts
                for n in walk(st)
            )
            tail = "metrics logged with self.log" if logged else "nothing logged (its prints stay)"
            # why not validation_step: Lightning would average the batches itself (weighted by
            # batch size) and run them before on_train_epoch_end; the script's code keeps its numbers
            ctx.note(
                MOVED,
                f"evaluation during training ({shown}, {when}) -> {hook}, {tail};"
                " not a validation_step, so its averaging and decisions stay as written",
            )
    seen = False
    for st in body_of(ctx.loop.driver):
        if st is ctx.raw.replaced or any(n is ctx.raw.replaced for n in walk(st)):
            seen = True
            continue
        if seen and any(
            isinstance(n, (cst.For, cst.Call))
            and "no_grad" in code(n)[:200]
            or (isinstance(n, cst.Call) and (dotted(n.func) or "").rsplit(".", 1)[-1] in user_fns)
            for n in walk(st)
        ):
            ctx.note(
                KEPT,
                f"evaluation after training (line {ctx.parsed.line(st)}) kept after trainer.fit: "
                "it runs on the trained model (the test step)",
                st,
            )
            break


def _model_back_on_device(ctx) -> None:
    """Lightning hands the model back on the CPU; code after fit that uses the
    script's device needs the model there again."""
    from torch_scaffold.convert.state import after_reads

    after = after_reads(ctx.loop.driver, ctx.raw.replaced)
    devices = [d for d in ctx.plan.roles.devices if "." not in d and d in after]
    models = [m for m in ctx.plan.roles.models if "." not in m and m in after]
    if devices and models:
        ctx.plan.post_fit.append(
            f"{models[0]}.to({devices[0]})  # Lightning returns the model on the CPU"
        )


def _max_steps(ctx, limit: cst.BaseExpression) -> str:
    """The loop's iteration count as Lightning's max_steps: with manual optimization every
    optimizer.step() is a global step, so n steps per iteration need n times the limit."""
    if not ctx.plan.manual:
        return code(limit)
    n, node, why = ctx.plan.manual_steps
    if n is None:
        raise Refusal(
            f"{why}: with manual optimization (several optimizers, or a step of the "
            "script's own) Lightning counts every optimizer.step() as a step, so "
            "Trainer(max_steps=...) cannot stop after the loop's own number of iterations",
            ctx.lineof(node),
        )
    text = code(limit)
    if n == 1:
        return text
    atomic = (cst.Name, cst.Attribute, cst.Integer, cst.Call, cst.Subscript)
    return f"{text if isinstance(limit, atomic) else f'({text})'} * {n}"


def _constructed_class(ctx, role: str) -> str | None:
    last = role.rsplit(".", 1)[-1]
    for node in walk(ctx.loop.driver if ctx.loop.driver is not None else ctx.parsed.module):
        if isinstance(node, cst.Assign) and len(node.targets) == 1:
            t = dotted(node.targets[0].target)
            if t and t.rsplit(".", 1)[-1] == last:
                v = node.value
                while (
                    isinstance(v, cst.Call)
                    and isinstance(v.func, cst.Attribute)
                    and v.func.attr.value in ("to", "cuda")
                ):
                    v = v.func.value
                if isinstance(v, cst.Call):
                    name = dotted(v.func)
                    if name and name.rsplit(".", 1)[-1] in ctx.ix.classes:
                        return name.rsplit(".", 1)[-1]
    return None


def _is_parse_args(ctx, expr: str) -> bool:
    for node in walk(ctx.loop.driver):
        if (
            isinstance(node, cst.Assign)
            and len(node.targets) == 1
            and dotted(node.targets[0].target) == expr
        ):
            mc = method_call(node.value) if isinstance(node.value, cst.Call) else None
            if mc and mc[1] in ("parse_args", "parse_known_args"):
                return mc[1] == "parse_args"
    return False
