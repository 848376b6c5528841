"""Each conversion rule, checked on a small script through the public entry point."""

import textwrap

import pytest

from torch_scaffold.convert import convert_source
from torch_scaffold.errors import ScriptError

HEAD = """
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
"""


def conv(body, **kw):
    res = convert_source(HEAD + textwrap.dedent(body), "t.py", **kw)
    return res


def ok(body):
    res = conv(body)
    assert res.code is not None, [e.render() for e in res.entries]
    compile(res.code, "out.py", "exec")
    return res.code, "\n".join(e.render() for e in res.entries)


LOOP = """
model = nn.Linear(2, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=4)
for epoch in range(3):
    for x, y in loader:
{inner}
"""


def loop(inner):
    return LOOP.format(inner=textwrap.indent(textwrap.dedent(inner), " " * 8))


def test_zero_grad_backward_step_dropped_and_loss_returned():
    code, report = ok(loop("""
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    """))
    step = code.split("def training_step")[1].split("def configure_optimizers")[0]
    assert "zero_grad" not in step and "backward" not in step and ".step()" not in step
    assert "return loss" in step and 'self.log("train_loss", loss' in step
    assert "max_epochs=3" in code
    assert "zero_grad()" in report and "backward()" in report


def test_comments_in_the_loop_survive():
    code, _ = ok(loop("""
        # squared error keeps the gradients smooth
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    """))
    assert "# squared error keeps the gradients smooth" in code


def test_to_device_removed_in_step_and_device_tensors_use_self_device():
    code, report = ok("""
        device = torch.device("cpu")
        model = nn.Linear(2, 1).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=4)
        for epoch in range(2):
            for x, y in loader:
                x, y = x.to(device), y.to(device)
                bias = torch.ones(1, device=device)
                loss = nn.functional.mse_loss(model(x) + bias, y)
                loss.backward()
                opt.step()
    """)
    step = code.split("def training_step")[1]
    assert "x.to(" not in step and "device=self.device" in step
    assert ".to(device)/.cuda() calls" in report


def test_clip_norm_becomes_trainer_flags():
    code, report = ok(loop("""
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
    """))
    assert "gradient_clip_val=0.25" in code and 'gradient_clip_algorithm="norm"' in code
    assert "clip_grad_norm_" not in code.split("def training_step")[1].split("lit_model")[0]
    assert "clip_grad_norm_(..., 0.25)" in report


def test_scheduler_stepped_per_epoch_and_per_batch():
    per_epoch, _ = ok("""
        model = nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
        loader = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=4)
        for epoch in range(2):
            for x, y in loader:
                model(x).sum().backward()
                opt.step()
            sched.step()
    """)
    assert '"interval": "epoch"' in per_epoch
    per_batch, report = ok("""
        model = nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1)
        loader = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=4)
        for epoch in range(2):
            for x, y in loader:
                model(x).sum().backward()
                opt.step()
                sched.step()
    """)
    assert '"interval": "step"' in per_batch and "interval='step'" in report


def test_accumulation_removes_division_and_sets_flag():
    code, _ = ok("""
        model = nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=2)
        for epoch in range(2):
            for i, (x, y) in enumerate(loader):
                loss = model(x).pow(2).mean() / 4
                loss.backward()
                if (i + 1) % 4 == 0:
                    opt.step()
                    opt.zero_grad()
    """)
    assert "accumulate_grad_batches=4" in code
    assert "/ 4" not in code.split("def training_step")[1].split("def configure")[0]


def test_two_optimizers_use_manual_optimization():
    code, report = ok("""
        g, d = nn.Linear(2, 2), nn.Linear(2, 1)
        opt_g = torch.optim.Adam(g.parameters())
        opt_d = torch.optim.Adam(d.parameters())
        loader = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
        for epoch in range(2):
            for (x,) in loader:
                opt_d.zero_grad()
                d(x).mean().backward()
                opt_d.step()
                opt_g.zero_grad()
                d(g(x)).mean().backward()
                opt_g.step()
    """)
    assert "self.automatic_optimization = False" in code
    assert "self.manual_backward(" in code and ".backward()" not in code
    assert "opt_d, opt_g = self.optimizers()" in code
    assert "manual optimization" in report


def test_state_shared_between_hooks_becomes_attributes():
    code, _ = ok(
        loop("""
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        total += loss.item()
    """).replace("for x, y in loader:", "total = 0.0\n    for x, y in loader:", 1)
        + "    print(total)\n"
    )
    assert "self.total = 0.0" in code and "self.total += loss.item()" in code


def test_early_stopping_break_stops_the_trainer():
    code, _ = ok(loop("""
        model(x).sum().backward()
        opt.step()
    """) + "    if epoch > 1:\n        break\n")
    assert "self.trainer.should_stop = True" in code and "break" not in code


def test_seeding_is_kept_exactly_as_written():
    # seed_everything would also reseed `random` and numpy: a script drawing from them
    # would train on other numbers
    code, report = ok("import random\ntorch.manual_seed(3)\nrandom.seed(5)\n" + loop("""
        model(x).sum().backward()
        opt.step()
    """))
    assert "torch.manual_seed(3)\nrandom.seed(5)\n" in code
    assert "seed_everything" not in code and "seed_everything" not in report


def test_already_lightning_is_left_alone():
    res = convert_source(
        "import pytorch_lightning as pl\nclass M(pl.LightningModule):\n    pass\n", "t.py"
    )
    assert res.already_lightning and res.code is None


@pytest.mark.parametrize(
    "script",
    [
        "import lightning as L\nfrom models import Net\nL.Trainer(max_epochs=1).fit(Net())\n",
        (
            "import torch\nfrom lightning.fabric import Fabric\nfabric = Fabric()\n"
            "model = torch.nn.Linear(2, 1)\nfabric.backward(model(torch.randn(1, 2)).sum())\n"
        ),
    ],
    ids=["trainer", "fabric"],
)
def test_scripts_that_train_with_lightning_are_left_alone(script):
    res = convert_source(script, "t.py")
    assert res.already_lightning and res.code is None
    assert "already uses Lightning" in res.entries[0].text


def test_lightning_imported_only_for_seeding_still_converts():
    code, _ = ok("import pytorch_lightning\npytorch_lightning.seed_everything(0)\n" + loop("""
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    """))
    assert "training_step" in code


def test_syntax_error_is_a_script_error_with_line():
    with pytest.raises(ScriptError) as err:
        convert_source("def f(:\n", "bad.py")
    assert "bad.py:1" in err.value.render()


def test_refusal_with_partial_keeps_code_with_todo_marker():
    src = (
        "import torch\nw = torch.zeros(2, requires_grad=True)\nfor i in range(3):\n"
        "    (w * 2).sum().backward()\n    w.data -= 0.1 * w.grad\n"
    )
    res = convert_source(src, "t.py")
    assert res.refused and res.code is None and res.refusals[0].line == 5
    res = convert_source(src, "t.py", partial=True)
    assert res.code is not None and "# TODO(scaffold): manual parameter update" in res.code
    compile(res.code, "t.py", "exec")


def test_emitted_class_is_black_formatted():
    import black

    code, _ = ok(loop("""
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    """))
    cls = code[code.index("class Lit") : code.index("lit_model = ")].rstrip() + "\n"
    assert black.format_str(cls, mode=black.Mode()) == cls


def test_module_level_model_used_by_a_train_function_is_registered():
    code, _ = ok("""
        model = nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loader = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=4)

        def train(epoch):
            for x, y in loader:
                opt.zero_grad()
                model(x).sum().backward()
                opt.step()

        def main():
            for epoch in range(2):
                train(epoch)

        main()
    """)
    assert "self.model = model" in code and "self.model(x)" in code
    assert "def train(" not in code


def test_while_true_loop_runs_until_break():
    code, _ = ok("""
        model = nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        step = 0
        while True:
            loss = model(torch.randn(4, 2)).pow(2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad()
            step += 1
            if step == 5:
                break
    """)
    assert "max_steps=-1" in code and "self.trainer.should_stop = True" in code
    assert "_StepStream()" in code


def test_report_names_the_loop_function_and_line_numbers():
    res = conv("""
        def train(model, loader, opt):
            for x, y in loader:
                opt.zero_grad()
                model(x).sum().backward()
                opt.step()

        def main():
            model = nn.Linear(2, 1)
            opt = torch.optim.SGD(model.parameters(), lr=0.1)
            loader = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=4)
            for epoch in range(2):
                train(model, loader, opt)
    """)
    texts = [e.text for e in res.entries]
    # HEAD is 4 lines, so the loop sits on lines 7-10 of the input
    assert "train() loop (lines 7-10) -> training_step" in texts
    assert any(t.startswith("optimizer `opt` (torch.optim.SGD, line 14)") for t in texts)
    assert "epoch loop (lines 16-17) -> Trainer(max_epochs=2)" in texts


def test_loop_inside_main_guard_keeps_per_epoch_state_on_the_module():
    code, _ = ok("""
        if __name__ == "__main__":
            net = nn.Linear(2, 1)
            optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
            loader = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=4)
            for epoch in range(2):
                running_loss = 0.0
                for i, data in enumerate(loader, 0):
                    inputs, labels = data
                    optimizer.zero_grad()
                    loss = nn.functional.mse_loss(net(inputs), labels)
                    loss.backward()
                    optimizer.step()
                    running_loss += loss.item()
    """)
    assert "running_loss=" not in code  # set each epoch, not passed in
    assert "self.running_loss = 0.0" in code and "def training_step(self, data, i)" in code


def test_cuda_autocast_without_a_scaler_stays_as_written():
    # precision="16-mixed" would add loss scaling the script does not have
    code, report = ok(loop("""
        with torch.cuda.amp.autocast():
            loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    """).replace("nn.Linear(2, 1)", "nn.Linear(2, 1).cuda()"))
    assert "precision" not in code
    step = code.split("def training_step")[1].split("def configure")[0]
    assert "with torch.cuda.amp.autocast():" in step
    assert "kept as written" in report and "add loss scaling" in report


def test_whole_step_cuda_amp_with_a_scaler_becomes_16_mixed_on_the_gpu():
    code, _ = ok(loop("""
        with torch.autocast("cuda"):
            loss = nn.functional.mse_loss(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    """).replace("nn.Linear(2, 1)", "nn.Linear(2, 1).cuda()\nscaler = torch.cuda.amp.GradScaler()"))
    assert 'accelerator="gpu"' in code and 'precision="16-mixed"' in code
    assert "autocast" not in code.split("def training_step")[1].split("def configure")[0]


def test_autocast_around_the_model_only_stays_a_region():
    code, report = ok(loop("""
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
        loss = nn.functional.mse_loss(out, y)
        loss.backward()
        opt.step()
    """))
    assert "precision" not in code
    assert 'with torch.autocast("cpu", dtype=torch.bfloat16):' in code
    assert "covers only part of the step" in report


def test_cpu_script_trains_on_one_cpu_and_writes_nothing_of_lightnings():
    code, report = ok(loop("""
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    """))
    trainer = code.split("pl.Trainer(")[1]
    for flag in ('accelerator="cpu"', "devices=1", "logger=False", "enable_checkpointing=False"):
        assert flag in trainer
    assert "remove them to get Lightning's lightning_logs/ and checkpoints" in report


def test_model_moved_to_cuda_under_a_helpers_condition_is_refused():
    res = conv("""
        def build(use_gpu):
            net = nn.Linear(2, 1)
            if use_gpu:
                net = net.cuda()
            return net

        model = build(False)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for x in torch.randn(3, 4, 2):
            loss = model(x).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    """)
    assert res.code is None
    assert any("cannot evaluate" in e.text for e in res.refusals), res.entries


def test_dataparallel_trains_on_one_device():
    code, report = ok(loop("""
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    """).replace("nn.Linear(2, 1)", "nn.DataParallel(nn.Linear(2, 1))"))
    assert "devices=1" in code and 'devices="auto"' not in code
    assert "DataParallel" in report and "one device" in report


def test_train_function_also_used_for_evaluation_is_kept():
    code, report = ok("""
        def run(model, loader, optimizer=None):
            for x, y in loader:
                loss = nn.functional.mse_loss(model(x), y)
                if optimizer is not None:
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
            return loss.item()

        def main():
            model = nn.Linear(2, 1)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            loader = DataLoader(TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=4)
            for epoch in range(2):
                run(model, loader, optimizer)
                print(run(model, loader))
    """)
    assert "def run(model, loader, optimizer=None):" in code
    assert "print(run(self.model, self.loader))" in code
    assert "run() kept: it is also called outside the training loop" in report


def test_zip_of_loaders_becomes_combined_loader_that_restarts_each_epoch():
    code, _ = ok("""
        a = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
        b = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
        model = nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for epoch in range(2):
            for (xa,), (xb,) in zip(a, iter(b)):
                (model(xa) - model(xb)).pow(2).mean().backward()
                opt.step()
                opt.zero_grad()
    """)
    assert 'pl.utilities.CombinedLoader([a, b], mode="min_size")' in code
    assert "(xa,), (xb,) = batch" in code
