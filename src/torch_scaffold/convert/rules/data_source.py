"""What fit() trains on, checked against how the loop read it.

The script evaluates the batch loop's iterable again at every epoch; Lightning reads the
`train_dataloaders` it is given once, when fit starts, and calls iter() on it each epoch.
Those are the same only when:

- nothing the epoch loop runs rebinds a name the iterable reads (a DataLoader rebuilt each
  epoch, an `epoch`-dependent source): refused, Lightning would train on the first one;
- the iterable is re-iterable: a name, an attribute, a DataLoader(...) call. Any other
  expression (`itertools.islice(loader, 4)`, a generator function's call) gives an iterator
  that the first epoch exhausts, so it is evaluated again each epoch (`_EachEpoch`), as the
  loop did; where a fetch from it may draw random numbers it is refused instead, because
  Lightning fetches one batch ahead from an iterable without a length.
"""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.analyze import Refusal
from torch_scaffold.convert.nodes import code, dotted, walk
from torch_scaffold.convert.result import MOVED
from torch_scaffold.convert.rules.optimizer_args import assignment_targets
from torch_scaffold.convert.scope import expr_reads, statement_usage

EACH_EPOCH = '''class _EachEpoch:
    """The batches of one epoch, made again for every epoch as the loop did.

    Made on the first fetch, not by iter(): Lightning calls iter() once more to check the
    data, and that must not start (and draw the random numbers of) another pass.
    """

    def __init__(self, make_batches):
        self.make_batches = make_batches

    def __iter__(self):
        yield from self.make_batches()
'''

BATCHES = '''class _Batches:
    """The script's list of batches as one iterable (Lightning reads a list as several)."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)
'''

EPOCH_LOADER = '''class _EpochLoader:
    """This epoch's loader, iterated from its first batch on: Lightning calls iter() twice on
    a reloaded loader, and each DataLoader iter() draws random numbers (its seeds)."""

    def __init__(self, loader):
        self.loader = loader

    def __iter__(self):
        yield from self.loader

    def __len__(self):
        return len(self.loader)
'''

# calls whose results draw random numbers while they are iterated or called
_RANDOM = (
    "torch.rand",
    "torch.randn",
    "torch.randint",
    "torch.randperm",
    "torch.normal",
    "torch.bernoulli",
    "torch.multinomial",
    "random.",
    "numpy.random.",
    "np.random.",
)


def run(ctx) -> None:
    data, raw = ctx.plan.train_data, ctx.raw
    if data is None or raw.fetched or raw.max_epochs is None:
        return
    if isinstance(data, cst.Call) and dotted(data.func) == "zip":
        return  # trainer_flags: a CombinedLoader restarts every epoch
    if _rebuilt_each_epoch(ctx, data):
        return
    _refuse_rebound(ctx, data)
    listed = isinstance(data, cst.Name) and _bound_to_a_list(ctx, data.value)
    source = _host_attribute_source(ctx, data)
    if listed or (source is not None and _bound_to_a_list(ctx, source)):
        what = code(data)
        ctx.plan.helpers.append(BATCHES)
        ctx.plan.train_data = cst.parse_expression(f"_Batches({what})")
        ctx.note(
            MOVED,
            f"`{ctx.driver_expr(what)}`, a list of batches -> _Batches(...), one iterable",
        )
        return
    if isinstance(data, (cst.Name, cst.Attribute)) or _is_dataloader(ctx, data):
        return
    fn = _random_source(ctx, data)
    if fn is not None:
        raise Refusal(
            f"the loop makes its batches with `{code(data)[:60]}` each epoch and {fn} draws "
            "random numbers: Lightning fetches a batch ahead, so they would be drawn in "
            "another order",
            ctx.lineof(ctx.loop.batch_loop),
        )
    ctx.plan.helpers.append(EACH_EPOCH)
    ctx.plan.train_data = cst.parse_expression(f"_EachEpoch(lambda: {code(data)})")
    ctx.note(
        MOVED,
        f"`{ctx.driver_expr(data)[:60]}` -> made again each epoch, as the loop did (_EachEpoch)",
    )


def _rebuilt_each_epoch(ctx, data) -> bool:
    """`loader = DataLoader(...)` as the epoch's first statement, the loop then iterating
    `loader`: Lightning builds it in train_dataloader(), called again at the start of every
    epoch (reload_dataloaders_every_n_epochs=1), before on_train_epoch_start, where the
    script built it before the rest of its epoch. The same only where the facts say so:
    the one assignment of the loop's data in the epoch loop, nothing but `global` before it,
    its value reading no name that the epoch loop binds (but the epoch), no model,
    optimizer or scheduler (their state at that point could differ), and no random draws.
    False where these do not hold (then _refuse_rebound says why)."""
    from torch_scaffold.convert.plan import EPOCH_START

    raw, plan = ctx.raw, ctx.plan
    if not isinstance(data, (cst.Name, cst.Attribute)):
        return False
    target = code(data)
    stmts = raw.epoch_pre + raw.loop_body + raw.epoch_post
    writes = [(st, t) for st in stmts for node in walk(st) for t in assignment_targets(node)]
    if [code(t) for _, t in writes].count(target) != 1:
        return False
    rebuild = next(st for st, t in writes if code(t) == target)
    lead = (
        [st for st in raw.epoch_pre[: raw.epoch_pre.index(rebuild)]]
        if rebuild in raw.epoch_pre
        else None
    )
    if lead is None or any(
        not (
            isinstance(st, cst.SimpleStatementLine)
            and all(isinstance(x, cst.Global) for x in st.body)
        )
        for st in lead
    ):
        return False
    if not (
        isinstance(rebuild, cst.SimpleStatementLine)
        and len(rebuild.body) == 1
        and isinstance(rebuild.body[0], cst.Assign)
        and len(rebuild.body[0].targets) == 1
        and isinstance(rebuild.body[0].value, cst.Call)
    ):
        return False
    value = rebuild.body[0].value
    if not (_is_dataloader(ctx, value) and _map_style(ctx, value)):
        return False
    bound = {code(t) for _, t in writes} - {raw.epoch_var}
    roles = plan.roles
    held = set(roles.models) | set(roles.optimizers) | set(roles.schedulers)
    reads = set(expr_reads(value)) | {code(n) for n in walk(value) if isinstance(n, cst.Attribute)}
    if reads & (bound | held) or _random_source(ctx, value) is not None:
        return False
    # the statement as the passes left it in on_train_epoch_start (renamed)
    hook = plan.sections.get(EPOCH_START) or []
    func, last = code(value.func), target.rsplit(".", 1)[-1]
    found = [
        st
        for st in hook
        if isinstance(st, cst.SimpleStatementLine)
        and len(st.body) == 1
        and isinstance(st.body[0], cst.Assign)
        and len(st.body[0].targets) == 1
        and code(st.body[0].targets[0].target).rsplit(".", 1)[-1] == last
        and isinstance(st.body[0].value, cst.Call)
        and code(st.body[0].value.func) == func
    ]
    if len(found) != 1:
        return False
    moved = found[0]
    rest = [st for st in hook if st is not moved]
    body = []
    epoch = raw.epoch_var
    if epoch and epoch in expr_reads(value):
        first = rest[0] if rest else None
        if not (
            first is not None
            and isinstance(first, cst.SimpleStatementLine)
            and isinstance(first.body[0], cst.Assign)
            and code(first.body[0].targets[0].target) == epoch
        ):
            return False
        body.append(first)
        if epoch not in statement_usage(rest[1:]).reads:
            rest = rest[1:]  # nothing else in the hook reads the epoch now
    built = code(moved.body[0].targets[0].target)
    body += [moved, cst.parse_statement(f"return _EpochLoader({built})")]
    plan.helpers.append(EPOCH_LOADER)
    plan.sections[EPOCH_START] = rest
    plan.train_dataloader = body
    plan.train_data = None
    plan.trainer_flags["reload_dataloaders_every_n_epochs"] = "1"
    ctx.note(
        MOVED,
        f"`{ctx.driver_expr(target)} = {ctx.driver_expr(value)[:50]}...`, built again at "
        "each epoch's start -> train_dataloader() with "
        "Trainer(reload_dataloaders_every_n_epochs=1)",
        rebuild,
    )
    return True


def _map_style(ctx, loader: cst.Call) -> bool:
    """Whether the DataLoader(...) call's dataset has a length: a TensorDataset, or a class
    of the script's that defines __len__ and __getitem__ (an iterable without a length would
    have Lightning fetch a batch ahead, and from a fresh iter() each reload)."""
    arg = next((a for a in loader.args if a.keyword and a.keyword.value == "dataset"), None)
    arg = arg or (loader.args[0] if loader.args and loader.args[0].keyword is None else None)
    if arg is None or not isinstance(arg.value, cst.Call):
        return False
    q = ctx.parsed.qname(arg.value.func) or dotted(arg.value.func) or ""
    if q == "torch.utils.data.TensorDataset" or q.endswith("data.TensorDataset"):
        return True
    cls = ctx.ix.classes.get(dotted(arg.value.func) or "")
    return cls is not None and {"__len__", "__getitem__"} <= {
        n.name.value for n in walk(cls) if isinstance(n, cst.FunctionDef)
    }


def _refuse_rebound(ctx, data) -> None:
    """The iterable must read nothing that the epoch loop binds."""
    raw = ctx.raw
    reads = set(expr_reads(data))
    chains = {code(n) for n in walk(data) if isinstance(n, cst.Attribute)}
    if raw.epoch_var in reads:
        raise Refusal(
            f"the loop's data `{ctx.driver_expr(data)[:60]}` depends on the epoch "
            f"`{raw.epoch_var}`: Lightning reads the training data once, when fit starts",
            ctx.lineof(ctx.loop.batch_loop),
        )
    for st in raw.epoch_pre + raw.loop_body + raw.epoch_post:
        for node in walk(st):
            for target in assignment_targets(node):
                written = code(target)
                if (isinstance(target, cst.Name) and target.value in reads) or written in chains:
                    raise Refusal(
                        f"the loop's data `{ctx.driver_expr(data)[:60]}` is rebuilt in the "
                        f"epoch loop (`{ctx.driver_expr(written)}` is assigned there): Lightning "
                        "reads the training data once, when fit starts",
                        ctx.lineof(st),
                    )


def _is_dataloader(ctx, data) -> bool:
    if not isinstance(data, cst.Call):
        return False
    q = ctx.parsed.qname(data.func) or dotted(data.func) or ""
    return q.split(".")[-1] == "DataLoader" and q.startswith("torch.utils.data")


def _random_source(ctx, data) -> str | None:
    """The call in `data`, or in a module-level function it calls, that draws random
    numbers; None when there is none."""
    seen: set[str] = set()
    todo = [data]
    while todo:
        node = todo.pop()
        for n in walk(node):
            if not isinstance(n, cst.Call):
                continue
            q = ctx.parsed.qname(n.func) or dotted(n.func) or ""
            if q.startswith(_RANDOM) or q.endswith(
                (".random_", ".shuffle", ".normal_", ".uniform_")
            ):
                return f"`{q}`"
            name = dotted(n.func)
            if name and name not in seen:
                seen.add(name)
                todo.extend(ctx.ix.functions.get(name, []))
    return None


def _bound_to_a_list(ctx, name: str) -> bool:
    """Whether every binding of `name` in the loop's scope (or, where it binds none, the
    module) is a list or tuple display, a comprehension, or list(...)/tuple(...)."""
    for scope in (ctx.loop.driver, ctx.parsed.module):
        values = [
            node.value
            for node in walk(scope)
            if isinstance(node, cst.Assign)
            and any(isinstance(t.target, cst.Name) and t.target.value == name for t in node.targets)
        ]
        if values:
            return all(
                isinstance(v, (cst.List, cst.ListComp, cst.Tuple))
                or (isinstance(v, cst.Call) and dotted(v.func) in ("list", "tuple"))
                for v in values
            )
    return False


def _host_attribute_source(ctx, data) -> str | None:
    """For `self.loader` of the user's trainer class: the name the script passes to the
    class's constructor for the __init__ parameter stored as `self.loader`; None otherwise."""
    from torch_scaffold.convert.plan import HOST

    if not (
        isinstance(data, cst.Attribute)
        and isinstance(data.value, cst.Name)
        and data.value.value in (HOST, "self")
    ):
        return None
    cls = ctx.parsed.parent(ctx.loop.driver)
    while cls is not None and not isinstance(cls, cst.ClassDef):
        cls = ctx.parsed.parent(cls)
    if cls is None:
        return None
    init = next(
        (f for f in walk(cls) if isinstance(f, cst.FunctionDef) and f.name.value == "__init__"),
        None,
    )
    if init is None:
        return None
    params = [p.name.value for p in init.params.params][1:]
    param = None
    for node in walk(init):
        if (
            isinstance(node, cst.Assign)
            and isinstance(node.value, cst.Name)
            and any(code(t.target) == f"self.{data.attr.value}" for t in node.targets)
        ):
            param = node.value.value
    if param not in params:
        return None
    k = params.index(param)
    names = set()
    for call in walk(ctx.parsed.module):
        if isinstance(call, cst.Call) and dotted(call.func) == cls.name.value:
            positional = [a for a in call.args if a.keyword is None]
            arg = next((a for a in call.args if a.keyword and a.keyword.value == param), None)
            if arg is None and k < len(positional):
                arg = positional[k]
            if arg is None or not isinstance(arg.value, cst.Name):
                return None
            names.add(arg.value.value)
    return names.pop() if len(names) == 1 else None
