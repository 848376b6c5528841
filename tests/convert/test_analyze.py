"""Loop finding: which loop trains, which loop counts epochs, which scope drives them."""

import textwrap

import libcst as cst
import pytest

from torch_scaffold.convert import analyze
from torch_scaffold.convert.parse import parse


def facts_of(src):
    parsed = parse(textwrap.dedent(src), "t.py")
    ix = analyze.Index(parsed)
    return parsed, ix, analyze.find_loop(parsed, ix)


def test_qualified_names_resolve_import_aliases():
    parsed = parse(
        "import torch.optim as optim\nfrom torch.optim import Adam as A\nimport torch\n"
        "a = optim.SGD\nb = A\nc = torch.optim.AdamW\n",
        "t.py",
    )
    values = [n.body[0].value for n in parsed.module.body[3:]]
    assert [parsed.qname(v) for v in values] == [
        "torch.optim.SGD",
        "torch.optim.Adam",
        "torch.optim.AdamW",
    ]


def test_optimizer_targets_found_through_any_spelling():
    _, ix, _ = facts_of("""
        import torch.optim as optim
        from torch.optim import Adam
        opt_a = optim.SGD(m.parameters(), lr=1)
        self.opt_b = Adam(m.parameters())
        for x in loader:
            opt_a.zero_grad(); loss = m(x); loss.backward(); opt_a.step()
    """)
    assert ix.optim_targets == {"opt_a": "torch.optim.SGD", "opt_b": "torch.optim.Adam"}
    assert ix.optimized_models == ["m"]


def test_inline_loop_nested_in_epoch_loop():
    _, _, f = facts_of("""
        for epoch in range(3):
            for x, y in loader:
                loss = model(x)
                loss.backward()
                opt.step()
    """)
    assert f.kind == "loader"
    assert isinstance(f.epoch_loop, cst.For) and isinstance(f.driver, cst.Module)
    assert f.epoch_inline is None and f.step_inline is None


def test_train_function_called_from_epoch_loop_in_main():
    _, _, f = facts_of("""
        def train(model, loader, opt):
            for x in loader:
                opt.zero_grad()
                model(x).backward()
                opt.step()

        def main():
            for epoch in range(2):
                train(model, loader, opt)
    """)
    assert f.epoch_inline.fn.name.value == "train"
    assert f.driver.name.value == "main"
    assert set(f.epoch_inline.bindings) == {"model", "loader", "opt"}


def test_step_function_without_loop_is_followed_to_its_caller():
    _, _, f = facts_of("""
        class Exp:
            def train_step(self, batch):
                self.opt.zero_grad()
                self.model(batch).backward()
                self.opt.step()

            def run(self):
                for epoch in range(2):
                    for batch in self.loader:
                        self.train_step(batch)
    """)
    assert f.step_inline.fn.name.value == "train_step"
    assert f.driver.name.value == "run"
    assert f.epoch_loop is not None


def test_shared_train_eval_function_picks_the_call_with_optimizer():
    _, _, f = facts_of("""
        def run_epoch(model, loader, optimizer=None):
            for x in loader:
                loss = model(x)
                if optimizer is not None:
                    loss.backward()
                    optimizer.step()

        def main():
            for epoch in range(5):
                run_epoch(model, train_loader, optimizer)
                run_epoch(model, val_loader)
    """)
    call = f.epoch_inline.call
    assert any(a.value.value == "optimizer" for a in call.args if isinstance(a.value, cst.Name))


def test_closure_loop_is_recognised():
    _, _, f = facts_of("""
        for i in range(10):
            def closure():
                opt.zero_grad()
                loss = model(x)
                loss.backward()
                return loss
            opt.step(closure)
    """)
    assert f.kind == "closure" and f.closure_fn.name.value == "closure"


def test_while_step_loop_is_a_step_loop():
    _, _, f = facts_of("""
        step = 0
        while step < 100:
            x = next(it)
            model(x).backward()
            opt.step()
            step += 1
    """)
    assert f.kind == "steps" and f.epoch_loop is None


def test_two_independent_loops_are_refused_with_lines():
    with pytest.raises(analyze.Refusal) as err:
        facts_of("""
            for a in range(3):
                model(a).backward()
                opt.step()
            for b in range(3):
                model(b).backward()
                opt.step()
        """)
    assert "two training loops" in err.value.message and "lines 3 and 6" in err.value.message


def test_no_backward_is_refused():
    with pytest.raises(analyze.Refusal, match="no training loop"):
        facts_of("print('hello')\n")


def test_bind_call_maps_positional_keyword_and_default_arguments():
    parsed = parse("def f(a, b, c=3, *, d=4): pass\nf(1, c=5)\n", "t.py")
    fn = parsed.module.body[0]
    call = parsed.module.body[1].body[0].value
    with pytest.raises(analyze.Refusal, match="misses argument 'b'"):
        analyze.bind_call(fn, call, 2)
    call2 = cst.parse_expression("f(1, 2, c=5)")
    got = {k: cst.Module([]).code_for_node(v) for k, v in analyze.bind_call(fn, call2, 2).items()}
    assert got == {"a": "1", "b": "2", "c": "5", "d": "4"}
