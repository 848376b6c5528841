"""TrainingPlan: everything the emitter needs, decided by analysis and the rules."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from torch_scaffold.convert.result import ReportEntry

# Hook names, in the order they appear in the generated class.
TRAIN_STEP = "training_step"
BEFORE_OPT = "on_before_optimizer_step"
BATCH_END = "on_train_batch_end"
EPOCH_START = "on_train_epoch_start"
EPOCH_END = "on_train_epoch_end"
HOOKS = (EPOCH_START, TRAIN_STEP, BEFORE_OPT, BATCH_END, EPOCH_END)

HOST = "__host__"  # stands for the `self` of the user's class while code is moved


@dataclass
class Scheduler:
    expr: str  # expression in the moved code, e.g. "scheduler"
    interval: str  # "epoch" | "step"
    monitor: str | None = None
    line: int | None = None


@dataclass
class TrainingPlan:
    kind: str
    manual: bool = False
    sections: dict[str, list[cst.BaseStatement]] = field(default_factory=dict)
    optimizers: list[str] = field(default_factory=list)  # expressions in moved code
    schedulers: list[Scheduler] = field(default_factory=list)
    trainer_flags: dict[str, str] = field(default_factory=dict)  # flag -> driver expression
    callbacks: list[str] = field(default_factory=list)
    fit_kwargs: dict[str, str] = field(default_factory=dict)
    model: str | None = None  # expression of the main model in moved code
    model_class: str | None = None
    loss_expr: cst.BaseExpression | None = None
    batch_param: str = "batch"
    index_param: str = "batch_idx"
    ctor: dict[str, str] = field(default_factory=dict)  # attribute -> driver expression
    writebacks: list[str] = field(default_factory=list)
    state_init_none: list[str] = field(default_factory=list)
    hparams: str | None = None  # driver expression given to save_hyperparameters
    pre_fit: list[str] = field(default_factory=list)
    post_fit: list[str] = field(default_factory=list)
    helpers: list[str] = field(default_factory=list)  # module-level helper classes to add
    restore_train_mode: set[str] = field(default_factory=set)
    todos: list[str] = field(default_factory=list)  # `# TODO(scaffold): ...` above the Trainer


@dataclass
class Context:
    parsed: object
    ix: object
    facts: object
    raw: object
    plan: TrainingPlan
    entries: list[ReportEntry] = field(default_factory=list)
    partial: bool = False
    removed_counts: dict[str, int] = field(default_factory=dict)

    def note(
        self, kind: str, text: str, node: cst.CSTNode | None = None, end: bool = False
    ) -> None:
        line = self.parsed.line(node) if node is not None else None
        end_line = self.parsed.end_line(node) if (node is not None and end) else None
        self.entries.append(ReportEntry(kind, text, line, end_line))

    def count_removed(self, what: str, n: int = 1) -> None:
        self.removed_counts[what] = self.removed_counts.get(what, 0) + n

    def line(self, node) -> int | None:
        return self.parsed.line(node) if node is not None else None

    def lineof(self, node) -> int | None:
        try:
            return self.parsed.line(node)
        except Exception:  # noqa: BLE001 - a line number is nice to have, never required
            return None

    def driver_expr(self, node) -> str:
        """An expression of the moved code, spelled in the scope that builds the Trainer."""
        from torch_scaffold.convert.nodes import code

        text = node if isinstance(node, str) else code(node)
        return text.replace(HOST, "self")

    def literal_start(self, node) -> int | None:
        from torch_scaffold.convert.rules.checkpointing import resume_block

        found = resume_block(
            self.parsed, self.ix, self.facts.driver, self.facts.epoch_loop or self.facts.batch_loop
        )
        return literal_int(self.parsed, self.facts, node, found[0] if found else None)


def literal_int(parsed, facts, node, ignore=None) -> int | None:
    """The value of `1`, or of a name the driver binds exactly once, to a literal, outside
    `ignore` (the resume block, which the conversion removes): `start_epoch = 1`."""
    if node is None:
        return 0
    if isinstance(node, cst.Integer):
        return int(node.value, 0)
    if not (isinstance(node, cst.Name) and facts is not None and facts.driver is not None):
        return None
    from torch_scaffold.convert.nodes import walk
    from torch_scaffold.convert.scope import statement_usage

    skip = set()
    if ignore is not None:
        skip = {id(n) for n in walk(ignore)}
    values = []
    for n in walk(facts.driver):
        if id(n) in skip:
            continue
        if isinstance(n, (cst.SimpleStatementLine, cst.For, cst.With, cst.FunctionDef)):
            if isinstance(n, cst.SimpleStatementLine):
                binds = statement_usage([n]).binds
            elif isinstance(n, cst.For):
                binds = set(_names(n.target))
            elif isinstance(n, cst.With):
                binds = {x for i in n.items if i.asname for x in _names(i.asname.name)}
            else:
                binds = {n.name.value} if n is not facts.driver else set()
            if node.value in binds:
                values.append(_literal_value(n, node.value))
    if len(values) == 1 and values[0] is not None:
        return values[0]
    return None


def _names(target) -> list[str]:
    from torch_scaffold.convert.scope import _target_names

    return _target_names(target)


def _literal_value(st, name: str) -> int | None:
    if not (isinstance(st, cst.SimpleStatementLine) and len(st.body) == 1):
        return None
    a = st.body[0]
    if not (isinstance(a, cst.Assign) and len(a.targets) == 1):
        return None
    t, v = a.targets[0].target, a.value
    if isinstance(t, cst.Name) and t.value == name and isinstance(v, cst.Integer):
        return int(v.value, 0)
    if isinstance(t, cst.Tuple) and isinstance(v, cst.Tuple):
        for te, ve in zip(t.elements, v.elements):
            if (
                isinstance(te.value, cst.Name)
                and te.value.value == name
                and isinstance(ve.value, cst.Integer)
            ):
                return int(ve.value.value, 0)
    return None
