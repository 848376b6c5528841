"""The converter's declared state, in one place.

Facts: what analysis found, read-only for the passes. Plan: what the passes decide, every
field typed and defaulted here (the emitter reads it). Context: the two, plus the report so
far; it has slots, so a pass cannot bolt an undeclared attribute on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import libcst as cst

from torch_scaffold.convert.result import ReportEntry

if TYPE_CHECKING:
    from torch_scaffold.convert.analyze import Index, LoopFacts
    from torch_scaffold.convert.parse import Parsed
    from torch_scaffold.convert.rules.device import Placement
    from torch_scaffold.convert.rules.roles import Roles
    from torch_scaffold.convert.sections import RawSections
    from torch_scaffold.convert.style import Style

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
    cls: str = "scheduler"  # its torch.optim.lr_scheduler class, for the report


@dataclass(frozen=True, slots=True)
class Facts:
    """What analysis found, before any pass runs. Passes read it and never change it."""

    parsed: Parsed  # the one parse of the source (tree, positions, qualified names)
    ix: Index  # functions, classes, optimizer/scheduler constructions, call sites
    loop: LoopFacts  # the training loop: kind, batch/epoch loops, the driver scope
    raw: RawSections  # the loop cut into the pieces that become hooks
    anchor: cst.CSTNode  # the module-level statement holding the driver: the class goes before
    taken_names: frozenset[str]  # names the script uses: new names must differ
    style: Style | None = None  # how to format emitted code (None: black's defaults)
    partial: bool = False  # --partial: keep what cannot convert, with TODO markers


@dataclass(slots=True)
class Plan:
    """Everything the passes decide. The emitter builds the module from it."""

    kind: str  # the loop's kind: "loader" | "steps" | "closure"
    # --- the LightningModule
    manual: bool = False  # two or more optimizers: manual optimization
    # why manual optimization with one optimizer: automatic optimization refused this
    # (a Refusal with manual_ok), so the passes run again keeping the script's own steps
    manual_because: str | None = None
    # manual optimization: optimizer.step() calls per iteration (each is a global step), or
    # None with the node and the reason that number varies (rules/step.py)
    manual_steps: tuple[int | None, cst.CSTNode | None, str] = (1, None, "")
    sections: dict[str, list[cst.BaseStatement]] = field(default_factory=dict)  # hook -> body
    closure_tail: list[cst.BaseStatement] = field(default_factory=list)  # after step(closure)
    optimizers: list[str] = field(default_factory=list)  # expressions in moved code
    schedulers: list[Scheduler] = field(default_factory=list)
    model_class: str | None = None
    loss_expr: cst.BaseExpression | None = None
    batch_param: str = "batch"
    index_param: str = "batch_idx"
    ctor: dict[str, str] = field(default_factory=dict)  # attribute -> driver expression
    state_init_none: list[str] = field(default_factory=list)  # attributes set to None first
    hparams: str | None = None  # driver expression given to save_hyperparameters
    helpers: list[str] = field(default_factory=list)  # module-level helper classes to add
    first_closure_loss: bool = False  # training_step keeps the closure's first loss
    # --- the Trainer call and the code around it
    trainer_flags: dict[str, str] = field(default_factory=dict)  # flag -> driver expression
    callbacks: list[str] = field(default_factory=list)
    fit_kwargs: dict[str, str] = field(default_factory=dict)
    train_data: cst.BaseExpression | None = None  # what fit() trains on (driver scope)
    # the body of train_dataloader(), where the loop built its loader at each epoch's start
    train_dataloader: list[cst.BaseStatement] = field(default_factory=list)
    writebacks: list[str] = field(default_factory=list)  # `name = {lit}.attr` after fit
    post_fit: list[str] = field(default_factory=list)  # statements after fit()
    todos: list[str] = field(default_factory=list)  # `# TODO(scaffold): ...` above the Trainer
    # --- the rest of the module: nodes of the parsed tree the emitter removes or rewrites
    removed_functions: list[cst.CSTNode] = field(default_factory=list)  # and the resume block
    drop_stmts: list[cst.CSTNode] = field(default_factory=list)
    unwrap_calls: list[cst.Call] = field(default_factory=list)  # DDP(model) -> model
    sampler_calls: dict[cst.Call, str] = field(default_factory=dict)  # call -> replacement
    emitted_names: set[str] = field(default_factory=set)  # new names the emitter chose
    # --- what one pass learns for the passes after it
    roles: Roles | None = None  # optimizers, schedulers, scalers... of the moved code
    name_map: dict[str, cst.BaseExpression] = field(default_factory=dict)  # local -> self.attr
    resume_names: set[str] = field(default_factory=set)  # names the resume block assigned
    used_scaler: bool = False  # a GradScaler scaled the loss (removed: Lightning scales)
    # autocast regions kept as written in the hooks, and whether each can run fp16 on CUDA
    # (then a GradScaler's scaling has no faithful equivalent: rules/amp.py refuses)
    kept_autocast: list[tuple[cst.Call, bool]] = field(default_factory=list)
    outer_autocast: list[tuple[cst.Call, cst.With]] = field(default_factory=list)  # around the loop
    placement: Placement | None = None  # where the script trains (rules/device.py)
    accum_factor: str | None = None  # `if (i + 1) % N == 0: step` -> N
    # the script steps only on full windows: Lightning also steps on an epoch's last batch,
    # so the converted module checks that every epoch's batches fill whole windows
    accum_full_windows_only: bool = False
    # --- the optimizer built in configure_optimizers (rules/optimizer_build.py)
    built_optimizer: str | None = None  # `torch.optim.SGD(self.model.parameters(), ...)`
    built_optimizer_stmt: cst.CSTNode | None = None  # the script's assignment, now removed
    built_optimizer_comments: list[str] = field(default_factory=list)  # its comments go along
    # the scheduler built on it goes along: both are then locals of configure_optimizers
    built_optimizer_name: str | None = None  # the local the scheduler is built on
    built_scheduler: str | None = None  # `torch.optim.lr_scheduler.StepLR(opt, ...)`
    built_scheduler_stmt: cst.CSTNode | None = None
    built_scheduler_comments: list[str] = field(default_factory=list)
    built_accessors: list[str] = field(default_factory=list)  # what the hooks read them with
    optimizer_kept: str | None = None  # why it stays where the script built it


@dataclass(slots=True)
class Context:
    """What every pass receives: the facts, the plan, and the report so far."""

    facts: Facts
    plan: Plan
    entries: list[ReportEntry] = field(default_factory=list)
    removed_counts: dict[str, int] = field(default_factory=dict)  # summed up in the report

    # read-only shortcuts to the facts most passes use
    @property
    def parsed(self) -> Parsed:
        return self.facts.parsed

    @property
    def ix(self) -> Index:
        return self.facts.ix

    @property
    def loop(self) -> LoopFacts:
        return self.facts.loop

    @property
    def raw(self) -> RawSections:
        return self.facts.raw

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

    def line_of_moved(self, node) -> int | None:
        """The line of `node`, or, for code already moved (renamed, so without a position),
        the first line of the script that spells it as the script did."""
        line = self.lineof(node)
        if line is not None:
            return line
        from torch_scaffold.convert.nodes import code

        text = code(node).strip().splitlines()[0].replace(HOST, "self")
        for k, source_line in enumerate(self.parsed.module.code.splitlines(), 1):
            if text in source_line:
                return k
        return None

    def driver_expr(self, node) -> str:
        """An expression of the moved code, spelled in the scope that builds the Trainer."""
        from torch_scaffold.convert.nodes import code

        text = node if isinstance(node, str) else code(node)
        return text.replace(HOST, "self")


class Pass(Protocol):
    """A rule: reads ctx.facts, fills ctx.plan, notes its decisions. The pipeline runs the
    passes in the order of pipeline.PASSES; a module with a `run` function is one."""

    def run(self, ctx: Context) -> None: ...
