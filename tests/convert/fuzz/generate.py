"""Generate small, seeded, self-contained manual PyTorch training scripts.

A script is drawn from a grammar of what real training scripts combine (Csmith-style): a loop
shape, a data source, a model, optimizers and param groups, a scheduler and where it steps,
accumulation and its scaling, clipping, autocast regions, evaluation and mode switches, frozen
layers, early stopping, counters, globals, checkpoints and logging. `script(seed)` is a pure
function of the seed, so a seed that found a bug reproduces it for ever.

Every script is tiny (CPU, 48 samples, batches of 8, 2-3 epochs) so that one run costs a few
milliseconds of compute; the harness that runs it is in fuzz/run.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SHAPES = ("top", "main", "epoch_fn", "trainer_class", "steps", "folds")
DATA = ("loader", "loader", "list", "generator", "islice", "iterable", "rebuilt", "dict", "sampler")
SCHEDULERS = ("none", "none", "epoch", "step", "plateau", "conditional", "with_arg", "onecycle")
OPTIMIZERS = ("sgd", "adam", "adamw", "groups", "closure", "two")
EVALS = ("none", "epoch", "every2", "in_loop", "after", "no_restore_mode")


@dataclass(frozen=True)
class Choices:
    shape: str
    data: str
    optimizer: str
    scheduler: str
    accum: int  # 1: none
    accum_divides: bool
    accum_cond: str  # "plus1" (i + 1) % K == 0, "minus1" i % K == K - 1, "counter" 1-based
    clip: str  # none | norm | value
    autocast: str  # none | disabled | bf16_model | scaler
    device: str  # none | auto | cpu
    evaluation: str
    dropout: bool
    frozen: bool
    early_stop: bool
    counter: str  # none | zero | one
    use_global: bool
    checkpoint: bool
    post_step_clamp: bool
    zero_grad_first: bool
    log_every: int  # 0: no step logging
    epochs: int
    classify: bool
    index_start: int  # enumerate(batches, start): 0 or 1


def choices(seed: int) -> Choices:
    r = random.Random(seed)
    pick = r.choice
    shape = pick(SHAPES)
    optimizer = pick(OPTIMIZERS)
    accum = pick((1, 1, 1, 2, 3))
    return Choices(
        shape=shape,
        data=pick(DATA),
        optimizer=optimizer,
        scheduler=pick(SCHEDULERS),
        accum=accum if optimizer not in ("closure", "two") else 1,
        accum_divides=r.random() < 0.6,
        accum_cond=pick(("plus1", "minus1", "counter")),
        clip=pick(("none", "none", "norm", "value")),
        autocast=pick(("none", "none", "disabled", "bf16_model", "scaler")),
        device=pick(("none", "auto", "cpu")),
        evaluation=pick(EVALS),
        dropout=r.random() < 0.4,
        frozen=r.random() < 0.25,
        early_stop=r.random() < 0.25,
        counter=pick(("none", "none", "zero", "one")),
        use_global=r.random() < 0.2,
        checkpoint=r.random() < 0.25,
        post_step_clamp=r.random() < 0.15,
        zero_grad_first=r.random() < 0.5,
        log_every=pick((0, 0, 2, 3)),
        epochs=pick((2, 3)),
        classify=r.random() < 0.3,
        index_start=pick((0, 0, 1)),  # drawn last: the fields above stay what they were per seed
    )


class _Code:
    """Lines with an indentation level, so that the grammar's pieces nest."""

    def __init__(self):
        self.lines: list[str] = []
        self.level = 0

    def __call__(self, *lines: str):
        for line in lines:
            self.lines.append(("    " * self.level + line) if line else "")

    def indent(self):
        self.level += 1

    def dedent(self):
        self.level -= 1

    def text(self):
        return "\n".join(self.lines) + "\n"


def script(seed: int) -> str:
    return render(choices(seed), seed)


def render(c: Choices, seed: int) -> str:
    w = _Code()
    w(f'"""fuzz script, seed {seed}: {c}"""')
    imports = ["import copy", "import itertools", "", "import torch", "from torch import nn"]
    imports.append(
        "from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, TensorDataset"
    )
    w(*imports, "")
    w(f"torch.manual_seed({seed % 1000})", "")
    w(f"EPOCHS = {c.epochs}", "BATCH = 8", "LR = 0.05" if c.optimizer in ("sgd", "closure") else "LR = 0.01")
    if c.accum > 1:
        w(f"ACCUM = {c.accum}")
    if c.scheduler == "onecycle" or c.shape == "steps":
        w("MAX_STEPS = 14")
    if c.use_global:
        w("SEEN = 0")
    w("")
    _data_defs(w, c)
    _model_defs(w, c)
    _eval_def(w, c)
    if c.shape == "main":
        w("def main():")
        w.indent()
        _body(w, c)
        w.dedent()
        w("", "", 'if __name__ == "__main__":', "    main()")
    elif c.shape == "folds":
        w("for fold in range(2):")
        w.indent()
        w("torch.manual_seed(fold)")
        _body(w, c)
        w.dedent()
    elif c.shape == "epoch_fn":
        _epoch_fn(w, c)
    elif c.shape == "trainer_class":
        _trainer_class(w, c)
    else:
        _body(w, c)
    return w.text()


# -- definitions ---------------------------------------------------------------------------


def _data_defs(w, c):
    w("X = torch.randn(48, 4)")
    if c.classify:
        w("Y = (X.sum(dim=1) > 0).long()")
    else:
        w("Y = X @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(48, 1)")
    w("VX, VY = X[:16] + 0.05, Y[:16]", "")
    if c.data == "iterable":
        w("class Stream(IterableDataset):", "    def __iter__(self):")
        w("        for k in range(len(X)):", "            yield X[k], Y[k]", "", "")
    if c.data == "dict":
        w("class Pairs(Dataset):", "    def __len__(self):", "        return len(X)", "")
        w("    def __getitem__(self, k):", '        return {"x": X[k], "y": Y[k]}', "", "")
    if c.data == "sampler":
        w("class EveryOther(Sampler):", "    def __init__(self, n):", "        self.n = n", "")
        w("    def __iter__(self):", "        return iter(list(range(0, self.n, 2)) + list(range(1, self.n, 2)))", "")
        w("    def __len__(self):", "        return self.n", "", "")
    if c.data == "generator":
        w("def batches():", "    for k in range(0, len(X), BATCH):", "        yield X[k : k + BATCH], Y[k : k + BATCH]", "", "")


def _model_defs(w, c):
    out = 2 if c.classify else 1
    w("class Net(nn.Module):", "    def __init__(self):", "        super().__init__()")
    w("        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh())")
    if c.dropout:
        w("        self.drop = nn.Dropout(0.2)")
    w(f"        self.head = nn.Linear(8, {out})", "")
    w("    def forward(self, x):")
    w("        h = self.body(x)")
    if c.dropout:
        w("        h = self.drop(h)")
    w("        return self.head(h)", "", "")


def _eval_def(w, c):
    if c.evaluation == "none" and not c.early_stop and c.scheduler != "plateau":
        return
    w("def evaluate(model):")
    w("    model.eval()")
    w("    with torch.no_grad():")
    w("        out = model(VX)")
    w("        val = nn.functional.cross_entropy(out, VY) if out.shape[1] > 1 else nn.functional.mse_loss(out, VY)")
    if c.evaluation != "no_restore_mode":
        w("    model.train()")
    w("    return val.item()", "", "")


# -- the training run ----------------------------------------------------------------------


def _setup(w, c):
    """Model, loss, optimizer(s), scheduler, data source and state, in the scope of the loop."""
    if c.device == "auto":
        w('device = torch.device("cuda" if torch.cuda.is_available() else "cpu")')
        w("model = Net().to(device)")
    elif c.device == "cpu":
        w('device = "cpu"', "model = Net().to(device)")
    else:
        w("model = Net()")
    if c.frozen:
        w("for p in model.body.parameters():", "    p.requires_grad = False")
    w("loss_fn = nn.CrossEntropyLoss()" if c.classify else "loss_fn = nn.MSELoss()")
    params = "filter(lambda p: p.requires_grad, model.parameters())" if c.frozen else "model.parameters()"
    if c.optimizer == "sgd" or c.optimizer == "closure":
        w(f"optimizer = torch.optim.SGD({params}, lr=LR, momentum=0.9)")
    elif c.optimizer == "adam":
        w(f"optimizer = torch.optim.Adam({params}, lr=LR)")
    elif c.optimizer == "adamw":
        w(f"optimizer = torch.optim.AdamW({params}, lr=LR, weight_decay=0.01)")
    elif c.optimizer == "groups":
        if c.frozen:
            w("optimizer = torch.optim.SGD([{\"params\": model.head.parameters(), \"lr\": LR}], lr=LR * 2)")
        else:
            w("optimizer = torch.optim.SGD(")
            w('    [{"params": model.body.parameters(), "lr": LR / 2}, {"params": model.head.parameters()}],')
            w("    lr=LR,", "    momentum=0.5,", ")")
    elif c.optimizer == "two":
        w("optimizer = torch.optim.Adam(model.head.parameters(), lr=LR)")
        w("optimizer_body = torch.optim.SGD(model.body.parameters(), lr=LR)")
    sched = {
        "epoch": "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)",
        "step": "scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)",
        "plateau": "scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)",
        "conditional": "scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)",
        "with_arg": "scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.7)",
        "onecycle": "scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.05, total_steps=MAX_STEPS * 4)",
    }.get(c.scheduler)
    if sched:
        w(sched)
    if c.autocast == "scaler":
        w('scaler = torch.amp.GradScaler("cuda", enabled=torch.cuda.is_available())')
    if c.data in ("loader", "islice", "steps"):
        w("loader = DataLoader(TensorDataset(X, Y), batch_size=BATCH, shuffle=True)")
    elif c.data == "list":
        w("loader = [(X[k : k + BATCH], Y[k : k + BATCH]) for k in range(0, len(X), BATCH)]")
    elif c.data == "iterable":
        w("loader = DataLoader(Stream(), batch_size=BATCH)")
    elif c.data == "dict":
        w("loader = DataLoader(Pairs(), batch_size=BATCH, shuffle=True)")
    elif c.data == "sampler":
        w("loader = DataLoader(TensorDataset(X, Y), batch_size=BATCH, sampler=EveryOther(len(X)))")
    if c.counter != "none":
        w("global_step = 0" if c.counter == "zero" else "global_step = 1")
    if c.early_stop:
        w('best = float("inf")', "best_state = None", "bad_epochs = 0")
    w("history = []")


def _source(c):
    return {
        "loader": "loader",
        "list": "loader",
        "iterable": "loader",
        "dict": "loader",
        "sampler": "loader",
        "generator": "batches()",
        "islice": "itertools.islice(loader, 4)",
        "rebuilt": "loader",
    }[c.data]


def _epoch_start(w, c, model="model"):
    if c.data == "rebuilt":
        w("loader = DataLoader(TensorDataset(X * (1.0 + 0.1 * epoch), Y), batch_size=BATCH, shuffle=True)")
    w(f"{model}.train()")
    w("running = 0.0")


def _step(w, c, m="model", opt="optimizer", idx="i", state=""):
    """One batch: forward, backward, (accumulated) step. `state` prefixes self. in a class."""
    s = state
    if c.data == "dict":
        w('x, y = batch["x"], batch["y"]')
    if c.device != "none":
        w(f"x, y = x.to({s}device), y.to({s}device)")
    if c.zero_grad_first and c.accum == 1 and c.optimizer != "closure":
        w(f"{opt}.zero_grad()")
        if c.optimizer == "two":
            w(f"{s}optimizer_body.zero_grad()")
    if c.optimizer == "closure":
        w("def closure():")
        w(f"    {opt}.zero_grad()")
        w(f"    out = {m}(x)")
        w(f"    loss = {s}loss_fn(out, y)")
        w("    loss.backward()")
        w("    return loss", "")
        w(f"loss = {opt}.step(closure)")
    else:
        if c.autocast == "disabled":
            w('with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=False):')
            w(f"    loss = {s}loss_fn({m}(x), y)")
        elif c.autocast == "bf16_model":
            w('with torch.autocast(device_type="cpu", dtype=torch.bfloat16):')
            w(f"    out = {m}(x)")
            w(f"loss = {s}loss_fn(out.float(), y)")
        else:
            w(f"loss = {s}loss_fn({m}(x), y)")
        if c.accum > 1 and c.accum_divides:
            w("loss = loss / ACCUM")
        if c.autocast == "scaler":
            w(f"{s}scaler.scale(loss).backward()")
        else:
            w("loss.backward()")
        if c.counter == "one" or (c.accum > 1 and c.accum_cond == "counter"):
            pass
        cond = None
        if c.accum > 1:
            one_based = c.index_start and idx == "i"
            cond = {
                "plus1": f"{idx} % ACCUM == 0" if one_based else f"({idx} + 1) % ACCUM == 0",
                "minus1": f"{idx} % ACCUM == ACCUM - 1",
                "counter": f"{s}global_step % ACCUM == 0",
            }[c.accum_cond if (c.accum_cond != "counter" or c.counter != "none") else "plus1"]
        if cond:
            w(f"if {cond}:")
            w.indent()
        if c.clip != "none":
            if c.autocast == "scaler":
                w(f"{s}scaler.unscale_({opt})")
            if c.clip == "norm":
                w(f"torch.nn.utils.clip_grad_norm_({m}.parameters(), 1.0)")
            else:
                w(f"torch.nn.utils.clip_grad_value_({m}.parameters(), 0.5)")
        if c.autocast == "scaler":
            w(f"{s}scaler.step({opt})", f"{s}scaler.update()")
        else:
            w(f"{opt}.step()")
        if c.optimizer == "two":
            w(f"{s}optimizer_body.step()")
        if not (c.zero_grad_first and c.accum == 1):
            w(f"{opt}.zero_grad()")
            if c.optimizer == "two":
                w(f"{s}optimizer_body.zero_grad()")
        if c.scheduler in ("step", "onecycle"):
            w(f"{s}scheduler.step()")
        if c.post_step_clamp:
            w("with torch.no_grad():", f"    for p in {m}.parameters():", "        p.clamp_(-0.5, 0.5)")
        if cond:
            w.dedent()
    w("running += loss.item()")
    if c.counter != "none":
        w(f"{s}global_step += 1")
        if c.log_every:
            w(f"if {s}global_step % {c.log_every} == 0:")
            w(f'    print("step", {s}global_step, loss.item())')
    elif c.log_every:
        w(f"if {idx} % {c.log_every} == 0:", f'    print("batch", {idx}, loss.item())')
    if c.use_global:
        w("SEEN += len(x)")
    if c.evaluation == "in_loop":
        w(f"if {idx} % 3 == 2:", f"    print('val', evaluate({m}))")


def _epoch_end(w, c, m="model", s=""):
    """After the batch loop: evaluation, scheduler, early stopping, checkpoint, logging."""
    needs_val = c.evaluation in ("epoch", "no_restore_mode") or c.early_stop or c.scheduler == "plateau"
    if c.evaluation == "every2" and not needs_val:
        w("if epoch % 2 == 1:", f"    print('val', evaluate({m}))")
    if needs_val:
        w(f"val = evaluate({m})")
    if c.scheduler == "epoch":
        w(f"{s}scheduler.step()")
    elif c.scheduler == "plateau":
        w(f"{s}scheduler.step(val)")
    elif c.scheduler == "conditional":
        w("if epoch >= 1:", f"    {s}scheduler.step()")
    elif c.scheduler == "with_arg":
        w(f"{s}scheduler.step(epoch + 1)")
    w(f"{s}history.append(running)")
    w('print(f"epoch {epoch} loss {running:.4f}")')
    if c.checkpoint:
        w(f'torch.save({{"model": {m}.state_dict(), "epoch": epoch}}, "checkpoint.pt")')
    if c.early_stop:
        w(f"if val < {s}best:")
        w(f"    {s}best = val", f"    {s}best_state = copy.deepcopy({m}.state_dict())", f"    {s}bad_epochs = 0")
        w("else:", f"    {s}bad_epochs += 1", f"    if {s}bad_epochs >= 1:", "        break")


def _after(w, c, m="model", s=""):
    if c.early_stop:
        w(f"if {s}best_state is not None:", f"    {m}.load_state_dict({s}best_state)")
    if c.evaluation == "after":
        w(f"print('final val', evaluate({m}))")
    if c.use_global:
        w('print("samples seen", SEEN)')


def _batch_loop_header(w, c, src):
    start = ", 1" if c.index_start else ""
    if c.data == "dict":
        w(f"for i, batch in enumerate({src}{start}):")
    else:
        w(f"for i, (x, y) in enumerate({src}{start}):")


def _body(w, c):
    """The setup and the loop, at the current indentation (module level or inside a function)."""
    if c.use_global and c.shape == "main":
        w("global SEEN")
    _setup(w, c)
    if c.shape == "steps" and c.data not in ("generator", "islice", "rebuilt"):
        w("data_iter = iter(loader)", "step = 0", "epoch = 0", "running = 0.0", "model.train()")
        w("while step < MAX_STEPS:")
        w.indent()
        w("try:")
        w("    batch = next(data_iter)")
        w("except StopIteration:")
        w("    data_iter = iter(loader)", "    batch = next(data_iter)", "    epoch += 1")
        if c.data != "dict":
            w("x, y = batch")
        _step(w, c, idx="step")
        w("step += 1")
        w.dedent()
        w("history.append(running)")
        _after(w, c)
        return
    w("for epoch in range(EPOCHS):")
    w.indent()
    _epoch_start(w, c)
    _batch_loop_header(w, c, _source(c))
    w.indent()
    _step(w, c)
    w.dedent()
    _epoch_end(w, c)
    w.dedent()
    _after(w, c)


def _epoch_fn(w, c):
    """A train_one_epoch(model, loader, optimizer, ...) function called from an epoch loop."""
    args = "model, optimizer, loss_fn, epoch" if c.data == "generator" else "model, loader, optimizer, loss_fn, epoch"
    extra = []
    if c.optimizer == "two":
        extra.append("optimizer_body")
    if c.scheduler in ("step", "onecycle"):
        extra.append("scheduler")
    if c.autocast == "scaler":
        extra.append("scaler")
    if c.device != "none":
        extra.append("device")
    sig = ", ".join([args] + extra)
    w(f"def train_one_epoch({sig}):")
    w.indent()
    if c.use_global:
        w("global SEEN")
    if c.counter != "none":
        w("global global_step")
    w("model.train()", "running = 0.0")
    _batch_loop_header(w, c, _source(c) if c.data != "generator" else "batches()")
    w.indent()
    _step(w, c)
    w.dedent()
    w("return running", "")
    w.dedent()
    w("")
    _setup(w, c)
    w("for epoch in range(EPOCHS):")
    w.indent()
    if c.data == "rebuilt":
        w("loader = DataLoader(TensorDataset(X * (1.0 + 0.1 * epoch), Y), batch_size=BATCH, shuffle=True)")
    w(f"running = train_one_epoch({sig})")
    _epoch_end(w, c)
    w.dedent()
    _after(w, c)


def _trainer_class(w, c):
    """A hand-written Trainer class holding model, optimizer and state on self."""
    w("class Trainer:")
    w.indent()
    w("def __init__(self, model, optimizer, loss_fn, loader):")
    w("    self.model = model", "    self.optimizer = optimizer", "    self.loss_fn = loss_fn", "    self.loader = loader")
    w("    self.history = []")
    if c.counter != "none":
        w("    self.global_step = 0" if c.counter == "zero" else "    self.global_step = 1")
    if c.early_stop:
        w('    self.best = float("inf")', "    self.best_state = None", "    self.bad_epochs = 0")
    if c.device != "none":
        w('    self.device = "cpu"')
    w("")
    w("def train_epoch(self, epoch):")
    w.indent()
    if c.use_global:
        w("global SEEN")
    if c.data == "rebuilt":
        w("self.loader = DataLoader(TensorDataset(X * (1.0 + 0.1 * epoch), Y), batch_size=BATCH, shuffle=True)")
    w("self.model.train()", "running = 0.0")
    src = {"generator": "batches()", "islice": "itertools.islice(self.loader, 4)"}.get(c.data, "self.loader")
    _batch_loop_header(w, c, src)
    w.indent()
    _step(w, c, m="self.model", opt="self.optimizer", state="self.")
    w.dedent()
    w("return running", "")
    w.dedent()
    w("def fit(self, epochs):")
    w.indent()
    w("for epoch in range(epochs):")
    w.indent()
    w("running = self.train_epoch(epoch)")
    _epoch_end(w, c, m="self.model", s="self.")
    w.dedent()
    _after(w, c, m="self.model", s="self.")
    w.dedent()
    w.dedent()
    w("", "")
    # module-level setup, then the trainer
    plain = Choices(**{**c.__dict__, "counter": "none", "early_stop": False})
    _setup(w, plain)
    loader = "None" if c.data in ("generator", "rebuilt") else "loader"
    w(f"trainer = Trainer(model, optimizer, loss_fn, {loader})")
    extras = []
    if c.optimizer == "two":
        extras.append("trainer.optimizer_body = optimizer_body")
    if c.scheduler != "none":
        extras.append("trainer.scheduler = scheduler")
    if c.autocast == "scaler":
        extras.append("trainer.scaler = scaler")
    w(*extras)
    w("trainer.fit(EPOCHS)")
