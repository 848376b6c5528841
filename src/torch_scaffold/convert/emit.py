"""The Plan + the original module -> the converted module (only the new code formatted)."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert import nodes
from torch_scaffold.convert.nodes import code, stmt, walk
from torch_scaffold.convert.plan import (
    BATCH_END,
    BEFORE_OPT,
    EPOCH_END,
    EPOCH_START,
    HOOKS,
    HOST,
    TRAIN_STEP,
)
from torch_scaffold.convert.result import KEPT, REMOVED
from torch_scaffold.convert.state import attr_name

PL = "pl"

_SIGNATURES = {
    EPOCH_START: "def on_train_epoch_start(self):",
    TRAIN_STEP: "def training_step(self, {batch}, {index}):",
    BEFORE_OPT: "def on_before_optimizer_step(self, optimizer):",
    BATCH_END: "def on_train_batch_end(self, outputs, {batch_end}, {index}):",
    EPOCH_END: "def on_train_epoch_end(self):",
}

STEP_STREAM = '''
class _StepStream(torch.utils.data.IterableDataset):
    """One placeholder item per training step: the step fetches its own data."""

    def __iter__(self):
        while True:
            yield 0
'''


def _method(header: str, stmts: list, doc: str | None = None) -> cst.FunctionDef:
    fn = cst.parse_statement(header + "\n    pass\n")
    body = list(stmts)
    if body and hasattr(body[0], "leading_lines"):
        # a blank line that separated it from the code before it in the script; a method's
        # body starts right below its `def` (its comments stay)
        leading = list(body[0].leading_lines)
        while leading and leading[0].comment is None:
            leading.pop(0)
        body[0] = body[0].with_changes(leading_lines=leading)
    if doc:
        body = [stmt(f'"""{doc}"""')] + body
    return fn.with_changes(
        body=cst.IndentedBlock(body=body or [stmt("pass")]), leading_lines=[cst.EmptyLine()]
    )


def _role_attr(ctx, role: str) -> str:
    """`optimizer` / `__host__.optimizer` -> its attribute on the LightningModule."""
    plan = ctx.plan
    node = ctx.plan.name_map.get(role) if "." not in role else None
    if node is not None:
        return code(node)
    last = role.rsplit(".", 1)[-1]
    attr = attr_name(last)
    driver = role.replace(HOST, "self")
    if plan.ctor.get(attr, driver) != driver:
        attr = attr + "_"
    plan.ctor.setdefault(attr, driver)
    return f"self.{attr}"


def class_name(ctx) -> str:
    base = ctx.plan.model_class or "Model"
    name = f"Lit{base[0].upper()}{base[1:]}"
    taken = set(ctx.ix.classes) | set(ctx.ix.functions)
    while name in taken:
        name += "_"
    return name


def build_class(ctx) -> cst.ClassDef:
    plan = ctx.plan
    # rules/optimizer_build.py: built in configure_optimizers, the scheduler as a local there
    if plan.built_scheduler is not None:
        opts = [plan.built_optimizer_name]
        scheds = [(s, s.expr) for s in plan.schedulers]
    elif plan.built_optimizer is not None:
        opts = [plan.built_optimizer]
        scheds = []
    else:
        opts = [_role_attr(ctx, r) for r in ctx.plan.roles.optimizers]
        scheds = [(s, _role_attr(ctx, s.expr)) for s in plan.schedulers]
    model_attr = None
    for m in ctx.plan.roles.models:
        node = ctx.plan.name_map.get(m) if "." not in m else None
        if node is not None and code(node).startswith("self."):
            model_attr = code(node)
            break
        if m.startswith(HOST + "."):
            model_attr = _role_attr(ctx, m)
            break
    init = [stmt("super().__init__()")]
    if plan.hparams:
        init.append(stmt(f"self.save_hyperparameters({plan.hparams})"))
    if plan.manual:
        init.append(stmt("self.automatic_optimization = False"))
    params = []
    for attr in plan.ctor:
        params.append(attr)
        init.append(stmt(f"self.{attr} = {attr}"))
    for attr in plan.state_init_none:
        if attr not in plan.ctor:
            init.append(stmt(f"self.{attr} = None"))
    methods = [
        _method(
            f"def __init__(self, {', '.join(params)}):" if params else "def __init__(self):", init
        )
    ]
    if model_attr:
        methods.append(
            _method(
                "def forward(self, *args, **kwargs):",
                [stmt(f"return {model_attr}(*args, **kwargs)")],
            )
        )
    fmt = {"batch": plan.batch_param, "index": plan.index_param, "batch_end": "batch"}
    for hook in HOOKS:
        stmts = plan.sections.get(hook)
        if not stmts and hook != TRAIN_STEP:
            continue
        methods.append(_method(_SIGNATURES[hook].format(**fmt), stmts or []))
    if plan.train_dataloader:
        methods.append(_method("def train_dataloader(self):", plan.train_dataloader))
    methods.append(_method("def configure_optimizers(self):", _configure_body(ctx, opts, scheds)))
    cls = cst.parse_statement(f"class {class_name(ctx)}({PL}.LightningModule):\n    pass\n")
    doc = stmt('"""LightningModule made by `scaffold convert` from the training loop below."""')
    return cls.with_changes(
        body=cst.IndentedBlock(body=[doc] + methods),
        leading_lines=[cst.EmptyLine(), cst.EmptyLine()],
    )


def _configure_body(ctx, opts: list[str], scheds) -> list:
    """configure_optimizers' statements: what rules/optimizer_build.py moved there comes
    first, each statement under the comments it had in the script."""
    plan = ctx.plan
    body = _configure(ctx, opts, scheds)
    if plan.built_scheduler is not None:
        built = [
            (stmt(f"{opts[0]} = {plan.built_optimizer}"), plan.built_optimizer_comments),
            (stmt(f"{scheds[0][1]} = {plan.built_scheduler}"), plan.built_scheduler_comments),
        ]
    elif plan.built_optimizer is not None:
        built = [(body.pop(0), plan.built_optimizer_comments)]
    else:
        return body
    return [
        one.with_changes(leading_lines=[cst.EmptyLine(comment=cst.Comment(c)) for c in comments])
        for one, comments in built
    ] + body


def _configure(ctx, opts: list[str], scheds) -> list:
    if ctx.plan.manual or not scheds:
        if len(opts) == 1 and not scheds:
            return [stmt(f"return {opts[0]}")]
        if not scheds:
            return [stmt(f"return [{', '.join(opts)}]")]
    if len(opts) == 1 and len(scheds) == 1:
        s, attr = scheds[0]
        cfg = f'"scheduler": {attr}, "interval": "{s.interval}"'
        if s.monitor:
            cfg += f', "monitor": "{s.monitor}"'
        return [stmt(f'return {{"optimizer": {opts[0]}, "lr_scheduler": {{{cfg}}}}}')]
    lines = ", ".join(f'{{"scheduler": {a}, "interval": "{s.interval}"}}' for s, a in scheds)
    return [stmt(f"return [{', '.join(opts)}], [{lines}]")]


def fit_statements(ctx, lit: str, trainer: str) -> list:
    plan = ctx.plan
    args = ", ".join(f"{k}={v}" for k, v in plan.ctor.items())
    flags = dict(plan.trainer_flags)
    flags.setdefault("num_sanity_val_steps", "0")
    flags.setdefault("enable_progress_bar", "False")
    flag_text = ", ".join(f"{k}={v}" for k, v in flags.items())
    if plan.callbacks:
        flag_text += f", callbacks=[{', '.join(plan.callbacks)}]"
    out = [
        stmt(f"{lit} = {class_name(ctx)}({args})"),
        stmt(f"{trainer} = {PL}.Trainer({flag_text})"),
    ]
    fit_args = [lit] + [f"{k}={v}" for k, v in plan.fit_kwargs.items()]
    out.append(stmt(f"{trainer}.fit({', '.join(fit_args)})"))
    out += [stmt(w.format(lit=lit)) for w in plan.writebacks]
    out += [stmt(x) for x in plan.post_fit]
    return out


class _Rewrite(cst.CSTTransformer):
    """Put the new class and the Trainer call into the module; touch nothing else.

    Only nodes on the path to an edit are visited, so every other node (and so every
    line of the script that is not converted) comes out exactly as it was parsed.
    """

    def __init__(self, ctx, top: list, fit: list):
        self.ctx = ctx
        self.top, self.fit = top, fit
        self.replaced = ctx.raw.replaced
        self.remove = {id(f) for f in ctx.plan.removed_functions}
        self.remove |= {id(s) for s in ctx.plan.drop_stmts}
        self.anchor = ctx.facts.anchor
        self.unwrap = {id(c) for c in ctx.plan.unwrap_calls}
        self.module_level = {id(s) for s in ctx.parsed.module.body}
        self.emptied: set[int] = set()  # blocks left with nothing
        self.stashed: dict[int, list] = {}  # comments of removed `if` bodies
        targets = [
            self.replaced,
            *ctx.plan.removed_functions,
            *ctx.plan.unwrap_calls,
            *ctx.plan.sampler_calls,
            *ctx.plan.drop_stmts,
        ]
        self.paths: set[int] = set()
        for t in targets:
            cur = t
            while cur is not None and id(cur) not in self.paths:
                self.paths.add(id(cur))
                cur = ctx.parsed.parent(cur)

    def on_visit(self, node) -> bool:
        return id(node) in self.paths and super().on_visit(node)

    def on_leave(self, original, updated):
        module_level = id(original) in self.module_level
        if original is self.replaced and not module_level:
            return cst.FlattenSentinel(_with_leading(self.fit, _leading(self.fit, original)))
        result = super().on_leave(original, updated)
        if id(original) in self.remove and not module_level:  # leave_Module drops its own
            return cst.RemovalSentinel.REMOVE
        return result

    def leave_IndentedBlock(self, original, updated):
        body, comments = _keep_comments(
            original.body,
            updated.body,
            self.remove,
            self.replaced,
            len(self.fit),
            self.stashed,
            self.ctx.plan,
        )
        if not body:
            self.emptied.add(id(original))
            body = [cst.SimpleStatementLine([cst.Pass()])]
        return updated.with_changes(body=body, footer=comments + list(updated.footer))

    def leave_SimpleStatementLine(self, original, updated):
        # `model = DDP(model)` unwrapped is `model = model`: nothing left to do
        if (
            len(updated.body) == 1
            and isinstance(updated.body[0], cst.Assign)
            and len(updated.body[0].targets) == 1
            and code(updated.body[0].targets[0].target) == code(updated.body[0].value)
            and not updated.deep_equals(original)
        ):
            self.remove.add(id(original))
            self.ctx.note(REMOVED, f"`{code(original)}`: Lightning wraps the model", original)
        return updated

    def leave_If(self, original, updated):
        # an `if` whose whole body was distributed set-up goes with it
        if (
            id(original.body) in self.emptied
            and original.orelse is None
            and all(_pure_call(self.ctx, n) for n in walk(original.test) if isinstance(n, cst.Call))
        ):
            self.remove.add(id(original))
            self.stashed[id(original)] = _comment_lines(updated.body.footer)
        return updated

    def leave_Call(self, original, updated):
        if original in self.ctx.plan.sampler_calls:
            return cst.parse_expression(self.ctx.plan.sampler_calls[original])
        if id(original) in self.unwrap:
            return updated.args[0].value
        return updated

    def leave_Module(self, original, updated):
        out = []
        # after the script's imports, but before the new class that uses it (a notebook may
        # import more after its training loop)
        first_use = next(
            (i for i, s in enumerate(original.body) if s is self.anchor), len(original.body)
        )
        last_import = max(
            (i for i, s in enumerate(original.body[:first_use]) if _is_import(s)), default=-1
        )
        if last_import < 0:
            out.append(stmt(f"import pytorch_lightning as {PL}"))
        carried: list = []  # comment lines of removed statements, for the next statement
        for i, (orig, new) in enumerate(zip(original.body, updated.body)):
            if orig is self.anchor:
                out += self.top
                carried = [cst.EmptyLine(), cst.EmptyLine()] + carried
            if orig is self.replaced:
                leading = _blank_then(carried, _leading(self.fit, orig))
                out += _with_leading(self.fit, leading)
                carried = []
            elif id(orig) in self.remove:
                carried += _carried_comments(orig, self.ctx.plan) + self.stashed.get(id(orig), [])
            else:
                if carried:
                    new = new.with_changes(leading_lines=_blank_then(carried, new.leading_lines))
                    carried = []
                out.append(new)
            if i == last_import:
                out.append(stmt(f"import pytorch_lightning as {PL}"))
        footer = list(updated.footer)
        if carried:
            footer = _comment_lines(carried) + footer
        return updated.with_changes(body=out, footer=footer)


_PURE = ("torch.cuda.", "torch.distributed.is_", "torch.distributed.get_", "os.environ.")
_PURE_BUILTINS = ("len", "int", "str", "bool", "float")


def _pure_call(ctx, call) -> bool:
    """A call without side effects worth keeping (`torch.cuda.device_count()`, `len(x)`)."""
    from torch_scaffold.convert.nodes import dotted

    q = ctx.parsed.qname(call.func) or dotted(call.func) or ""
    return q.startswith(_PURE) or q in _PURE_BUILTINS


def _leading(fit: list, replaced) -> list:
    """The replaced statement's own leading lines, then any the first new statement brings."""
    return list(replaced.leading_lines) + list(fit[0].leading_lines if fit else [])


def _comment_lines(lines) -> list:
    return [ln for ln in lines if ln.comment is not None]


def _blank_then(carried: list, leading) -> list:
    """Carried lines (blank lines, then comments of removed statements) before `leading`:
    never fewer blank lines than the statement had, and the comments keep their order."""
    leading = list(leading)
    blanks = sum(1 for ln in carried if ln.comment is None)
    comments = _comment_lines(carried)
    own_blanks = 0
    for ln in leading:
        if ln.comment is not None:
            break
        own_blanks += 1
    extra = max(0, blanks - own_blanks)
    return [cst.EmptyLine()] * extra + comments + leading


def _with_leading(stmts: list, leading) -> list:
    if not stmts:
        return []
    return [stmts[0].with_changes(leading_lines=list(leading))] + list(stmts[1:])


def _carried_comments(orig, plan) -> list:
    """The comment lines above a removed statement, less those that went with the optimizer
    into configure_optimizers."""
    lines = _comment_lines(orig.leading_lines)
    if plan is not None and orig is plan.built_optimizer_stmt:
        lines = [ln for ln in lines if ln.comment.value not in plan.built_optimizer_comments]
    if plan is not None and orig is plan.built_scheduler_stmt:
        lines = [ln for ln in lines if ln.comment.value not in plan.built_scheduler_comments]
    return lines


def _keep_comments(original, updated, removed: set, replaced, n_fit: int, stashed=None, plan=None):
    """A block's statements after removals: the comment lines above a removed statement
    move to the next statement, or to the block's footer when none follows."""
    stashed = stashed or {}
    if len(original) == len(updated) and all(id(o) not in removed for o in original):
        return list(updated), []
    out, carried = [], []
    kept = list(updated)
    k = dropped = 0
    for orig in original:
        if id(orig) in removed and orig is not replaced:
            carried += _carried_comments(orig, plan) + stashed.get(id(orig), [])
            dropped += 1
            continue
        take = n_fit if orig is replaced else 1
        group = kept[k : k + take]
        k += take
        if group and not out and dropped:  # now first in its block: no blank line after the header
            lines = list(group[0].leading_lines)
            while lines and lines[0].comment is None:
                lines.pop(0)
            group[0] = group[0].with_changes(leading_lines=lines)
        if group and carried:
            group[0] = group[0].with_changes(leading_lines=carried + list(group[0].leading_lines))
            carried = []
        out += group
    out += kept[k:]
    return out, carried


def _is_import(s) -> bool:
    return isinstance(s, cst.SimpleStatementLine) and all(
        isinstance(x, (cst.Import, cst.ImportFrom)) for x in s.body
    )


def unique(ctx, base: str) -> str:
    taken, chosen = ctx.facts.taken_names, ctx.plan.emitted_names
    name = base
    while name in taken or name in chosen:
        name = "pl_" + name if not name.startswith("pl_") else name + "_"
    chosen.add(name)
    return name


def indent_width(ctx, node) -> int:
    """How many columns the statement `node` is indented by."""
    width, cur = 0, ctx.parsed.parent(node)
    default = ctx.parsed.module.default_indent
    while cur is not None:
        if isinstance(cur, cst.IndentedBlock):
            width += len((cur.indent if cur.indent is not None else default).expandtabs(8))
        cur = ctx.parsed.parent(cur)
    return width


def formatted(stmts: list, style, indent: int = 0) -> list:
    """New statements, with operator precedence made explicit and formatted by black for
    `style` (minus the columns of the block they go into); parsed back into nodes."""
    from torch_scaffold.convert import precedence
    from torch_scaffold.convert.style import black_format

    stmts = [precedence.fix(s) for s in stmts]
    text = black_format(cst.Module(body=stmts).code, style, indent)
    if text is None:  # black refuses some valid code (rare): keep it as is
        return stmts
    return list(cst.parse_module(text).body)


def emit(ctx) -> str:
    from torch_scaffold.convert.style import DEFAULT

    style = ctx.facts.style or DEFAULT
    cls = build_class(ctx)
    lit = unique(ctx, "lit_model")
    trainer = unique(ctx, "trainer")
    fit = fit_statements(ctx, lit, trainer)
    helpers = [cst.parse_statement(h) for h in ctx.plan.helpers]
    top = formatted(helpers + [cls], style)
    top = [s.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()]) for s in top]
    fit = formatted(fit, style, indent_width(ctx, ctx.raw.replaced))
    if ctx.plan.todos:
        marks = [
            cst.EmptyLine(comment=cst.Comment(f"# TODO(scaffold): {t}")) for t in ctx.plan.todos
        ]
        fit = [fit[0].with_changes(leading_lines=marks + list(fit[0].leading_lines)), *fit[1:]]
    module = ctx.parsed.module.visit(_Rewrite(ctx, top, fit))
    lost = lost_comments(ctx.parsed.of_type(cst.Comment), comment_nodes(module))
    if lost:
        # comments whose code went (zero_grad(), the loop headers...): kept above the Trainer
        # call, so that no comment of the user's is dropped
        heading = "# scaffold convert: comments of the code it replaced:"
        lines = [cst.EmptyLine(comment=cst.Comment(c)) for c in [heading, *lost]]
        fit = [fit[0].with_changes(leading_lines=lines + list(fit[0].leading_lines)), *fit[1:]]
        module = ctx.parsed.module.visit(_Rewrite(ctx, top, fit))
        ctx.note(
            KEPT,
            f"{len(lost)} comment(s) of removed code kept above the Trainer call",
        )
    return module.code


def comment_nodes(node: cst.CSTNode) -> list[cst.Comment]:
    """Every comment in `node`, in the order of the code; the parts of the parsed tree it
    still holds are looked up in the tree's index, not walked."""
    index = nodes.current_index()
    out: list[cst.Comment] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if index is not None and id(current) in index.pos:
            out += index.of_type(cst.Comment, within=current)
        elif type(current) is cst.Comment:
            out.append(current)
        else:
            stack.extend(reversed(nodes.children_of(current)))
    return out


def lost_comments(before: list[cst.Comment], after: list[cst.Comment]) -> list[str]:
    """Comments of `before` that `after` no longer has (each as often as it went), in order."""
    import collections

    left = collections.Counter(c.value for c in after)
    out = []
    for c in before:
        if left[c.value]:
            left[c.value] -= 1
        else:
            out.append(c.value)
    return out
