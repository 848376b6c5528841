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
from torch_scaffold.convert.scope import expr_reads

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
