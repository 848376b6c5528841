"""The converter never crashes: odd files and mutated scripts either convert to code that
compiles, or are refused (exit 3) / rejected (exit 2) with reasons, never with a traceback.

The mutation tests call the pure core directly, because the command turns any exception into
an "internal converter error" line: here such an exception is a failing test. The number of
mutated inputs tried is printed in pytest's terminal summary (see conftest.py).
"""

from __future__ import annotations

import random

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import torch_scaffold.convert as convert_pkg
from torch_scaffold.cli import main
from torch_scaffold.errors import ScriptError

from . import conftest
from .conftest import EXAMPLES, SHARED
from .mutations import MUTATIONS, mutate

SEEDS = sorted(EXAMPLES.glob("*.py")) + sorted((SHARED / "corpus").glob("*.py"))
SEED_TEXT = {path.name: path.read_text() for path in SEEDS}

TWO_LOOPS = """\
import torch
from torch import nn

model = nn.Linear(4, 1)
other = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
opt2 = torch.optim.Adam(other.parameters(), lr=0.01)
x, y = torch.randn(32, 4), torch.randn(32, 1)

for epoch in range(3):
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()

# a second, unrelated model trained afterwards
for epoch in range(3):
    opt2.zero_grad()
    loss2 = nn.functional.l1_loss(other(x), y)
    loss2.backward()
    opt2.step()
"""

NO_LOOP = """\
import torch
from torch import nn

model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
print(sum(p.numel() for p in model.parameters()))
"""


def run_cli(tmp_path, content: bytes | str, *args: str):
    path = tmp_path / "script.py"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    result = CliRunner().invoke(main, ["convert", str(path), *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result, tmp_path / "script_lightning.py"


def assert_clean_outcome(result, output):
    """Exit 0 with an output that compiles, or exit 2/3 with an error line and nothing written."""
    assert result.exit_code in (0, 2, 3), result.output
    if result.exit_code == 0:
        if output.exists():
            compile(output.read_text(), str(output), "exec")
        else:  # nothing to do, e.g. the script already uses Lightning
            assert "nothing" in result.output
    else:
        assert result.stderr.startswith("error: "), result.stderr
        assert not output.exists()


# --- files that are not scripts to convert: rejected before the core is reached -----------


@pytest.fixture
def core_must_not_run(monkeypatch):
    def unreachable(*args, **kwargs):
        raise AssertionError("bad input must be rejected before the converter core runs")

    monkeypatch.setattr(convert_pkg, "convert_source", unreachable)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\n\n   \n",
        b"import torch\nfor x in range(3)\n    pass\n",
        b"def f(:\n",
        b"x = (1,\n",
        b"if True:\n\tx = 1\n        y = 2\n",
        b'print "epoch", 1\n',
        b"exec 'x = 1'\n",
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00",
        bytes(range(256)),
        b"x = '\xff\xfe'\n",
        b"\xef\xbb\xbf\xff = 1\n",
    ],
    ids=[
        "empty",
        "blank",
        "missing-colon",
        "bad-def",
        "unclosed-paren",
        "tabs-and-spaces",
        "python2-print",
        "python2-exec",
        "elf-binary",
        "all-bytes",
        "latin1-bytes",
        "bom-then-garbage",
    ],
)
def test_bad_files_are_rejected_with_exit_2(tmp_path, core_must_not_run, content):
    result, output = run_cli(tmp_path, content)
    assert result.exit_code == 2, result.output
    assert_clean_outcome(result, output)
    assert "hint: " in result.stderr


SNIPPETS = [
    "import torch",
    "for i in range(3):",
    "    loss.backward()",
    "x = (",
    "pass",
    "print 'x'",
    "def f():",
    "\tpass",
    "# comment",
    "opt.step()",
    '"""',
]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.lists(st.sampled_from(SNIPPETS), max_size=8).map(lambda ls: "\n".join(ls).encode()),
    )
)
def test_arbitrary_input_never_gives_a_traceback(tmp_path_factory, content):
    result, output = run_cli(tmp_path_factory.mktemp("any"), content)
    assert_clean_outcome(result, output)


# --- odd but valid scripts: the real core decides -----------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        "# just a comment\n# and another\n",
        '"""Only a docstring."""\n',
        NO_LOOP,
        TWO_LOOPS,
        "import pytorch_lightning as pl\n\ntrainer = pl.Trainer(max_epochs=1)\n",
        "import lightning as L\n\n\nclass M(L.LightningModule):\n    pass\n",
    ],
    ids=["only-comments", "only-docstring", "no-loop", "two-loops", "lightning", "lightning-2"],
)
def test_odd_scripts_never_crash(tmp_path, content):
    result, output = run_cli(tmp_path, content)
    assert_clean_outcome(result, output)


def test_no_training_loop_is_refused_with_a_reason(tmp_path):
    result, output = run_cli(tmp_path, NO_LOOP)
    assert result.exit_code == 3, result.output
    assert "refused" in result.stderr
    assert not output.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "lines", [10_000, pytest.param(30_000, marks=pytest.mark.full)], ids=["10k", "30k"]
)
def test_huge_script_converts_or_refuses_cleanly(tmp_path, lines):
    """Many helper functions (6 lines each) around one real training script."""
    base = (EXAMPLES / "inline_regression_accum.py").read_text()
    helpers = "".join(
        f"\n\ndef feature_{i}(x):\n    # helper {i}\n    y = x * {i} + 1\n    return y.clamp(min=0)\n"
        for i in range(lines // 6)
    )
    head, sep, rest = base.partition("SEED = ")
    result, output = run_cli(tmp_path, head + helpers + "\n\n" + sep + rest)
    assert_clean_outcome(result, output)


# --- mutations of real scripts --------------------------------------------------------------


def check_never_crashes(source: str) -> str:
    """Convert one input; return its outcome. Fails on any exception but ScriptError."""
    try:
        conversion = convert_pkg.convert_source(source, "mutant.py")
    except ScriptError as err:
        assert err.where and err.where.startswith("mutant.py"), err.render()
        return "rejected"
    if conversion.already_lightning:
        return "already-lightning"
    assert not conversion.internal_errors, [e.text for e in conversion.internal_errors]
    if conversion.refused:
        assert conversion.code is None
        assert all(e.text.strip() for e in conversion.refusals)
        partial = convert_pkg.convert_source(source, "mutant.py", partial=True)
        if partial.code is not None:
            compile(partial.code, "mutant_partial.py", "exec")
        return "refused"
    assert conversion.code is not None
    compile(conversion.code, "mutant_converted.py", "exec")
    return "converted"


mutation_plan = st.tuples(
    st.sampled_from(sorted(SEED_TEXT) or ["<none>"]),
    st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3),
    st.randoms(use_true_random=False),
)


def _mutation_test(max_examples: int):
    @pytest.mark.slow
    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(plan=mutation_plan)
    def test(plan):
        seed_name, kinds, rnd = plan
        assume(seed_name in SEED_TEXT)
        source, applied = mutate(SEED_TEXT[seed_name], rnd, kinds)
        assume(applied)
        outcome = check_never_crashes(source)
        conftest.MUTATION_STATS[outcome] += 1
        for kind in applied:
            conftest.MUTATION_STATS[f"mutation:{kind}"] += 1

    return test


test_mutated_scripts_convert_or_refuse = _mutation_test(100)
test_mutated_scripts_convert_or_refuse_full = pytest.mark.full(_mutation_test(1000))


@pytest.mark.parametrize("name", sorted(SEED_TEXT))
def test_seed_scripts_themselves_never_crash(name):
    check_never_crashes(SEED_TEXT[name])


@pytest.mark.parametrize("name", sorted(SEED_TEXT))
@pytest.mark.parametrize("kind", sorted(MUTATIONS))
def test_mutations_mostly_keep_scripts_valid(name, kind):
    """The mutator itself: its edits keep a script valid Python, so the core gets exercised."""
    source = SEED_TEXT[name]
    valid = changed = 0
    for k in range(20):
        mutated = MUTATIONS[kind](source, random.Random(k))
        if mutated is None:
            continue
        changed += mutated != source
        try:
            compile(mutated, name, "exec")
            valid += 1
        except SyntaxError:
            pass
    if kind in ("delete_statement", "rename_variable"):
        assert changed >= 15
    assert valid >= changed - 2
