"""`scaffold convert notebook.ipynb`: code cells converted, everything else kept, IPython kept.

The notebooks are our own small ones in tests/fixtures/notebooks. The fast tests check the
notebook's structure around the real converter; the slow one runs the converted code.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from torch_scaffold.cli import main
from torch_scaffold.convert import notebook as nb

from .conftest import REPO

NOTEBOOKS = REPO / "tests" / "fixtures" / "notebooks"


def invoke(*args):
    return CliRunner().invoke(main, ["convert", *map(str, args)])


def copy(name, folder):
    shutil.copy(NOTEBOOKS / name, folder / name)
    return folder / name


def text(cell):
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def converted(tmp_path, name="plane.ipynb"):
    path = copy(name, tmp_path)
    result = invoke(path)
    assert result.exit_code == 0, result.output
    out = tmp_path / name.replace(".ipynb", "_lightning.ipynb")
    return json.loads(path.read_text()), json.loads(out.read_text()), result


def test_cells_markdown_outputs_and_metadata_are_kept(tmp_path):
    before, after, _ = converted(tmp_path)
    assert len(after["cells"]) == len(before["cells"])
    for old, new in zip(before["cells"], after["cells"]):
        assert new["cell_type"] == old["cell_type"]
        assert new.get("outputs") == old.get("outputs")
        assert new.get("execution_count") == old.get("execution_count")
        assert new["metadata"] == old["metadata"]
        if old["cell_type"] != "code":
            assert new == old  # markdown (with its unicode) and raw cells, byte for byte
        assert type(new["source"]) is type(old["source"])  # a list stays a list
    stamp = after["metadata"].pop(nb.STAMP_KEY)
    assert stamp["from"] == "plane.ipynb" and len(stamp["sha256"]) == 64
    assert after["metadata"] == before["metadata"]
    assert (after["nbformat"], after["nbformat_minor"]) == (4, 5)


def test_only_the_cells_the_conversion_touches_change(tmp_path):
    before, after, _ = converted(tmp_path)
    changed = [i for i, (a, b) in enumerate(zip(before["cells"], after["cells"])) if a != b]
    # the imports cell (+ lightning), the optimizer's cell and the training cell
    assert changed == [1, 3, 5]
    # the optimizer is built in configure_optimizers now: only its line left the cell
    setup_before, setup_after = text(before["cells"][3]), text(after["cells"][3])
    optimizer_line = "optimizer = torch.optim.SGD(model.parameters(), lr=0.05)\n"
    assert setup_after == setup_before.replace(optimizer_line, "")
    imports = text(after["cells"][1])
    assert imports.startswith("%matplotlib inline\n%load_ext autoreload\nimport torch\n")
    assert "import pytorch_lightning as pl\n" in imports
    training = text(after["cells"][5])
    assert training.startswith("history = []\n\n\nclass LitModel(pl.LightningModule):")
    assert "trainer.fit(lit_model, train_dataloaders=loader)" in training
    assert "for epoch in range(3)" not in training
    assert not training.endswith("\n")  # as the original cell: no trailing newline
    # IPython lines come back as written, in their cells
    assert text(after["cells"][3]).startswith("!echo preparing\nfiles = !ls\n")
    assert text(after["cells"][6]) == "%%bash\necho done > /dev/null\n"
    assert text(after["cells"][7]).startswith("model.weight?\n")


def test_the_written_notebook_is_nbformat_json(tmp_path):
    _, _, _ = converted(tmp_path)
    raw = (tmp_path / "plane_lightning.ipynb").read_text(encoding="utf-8")
    assert raw.endswith("}\n") and "ünïcödé ✓" in raw  # UTF-8, not \u escapes
    assert raw.startswith('{\n "cells": [\n  {\n')  # indent 1, sorted keys, as Jupyter writes


def test_report_names_cells_not_lines_of_the_joined_code(tmp_path):
    _, _, result = converted(tmp_path)
    assert "epoch loop (cell 6, lines 2-9) -> Trainer(max_epochs=3)" in result.output
    assert "(torch.optim.SGD, cell 4, line 9)" in result.output
    assert "scaffold convert: cell" not in result.output


def test_loop_in_the_first_cell_gets_the_class_in_that_cell(tmp_path):
    before, after, _ = converted(tmp_path, "loop_first.ipynb")
    first = text(after["cells"][0])
    assert first.startswith("%%time\nimport torch\nfrom torch import nn\n")
    assert first.index("class LitModel") < first.index("trainer.fit(")
    assert after["cells"][1:] == before["cells"][1:]  # `%` lines inside a string stay code


def test_rerun_replaces_an_unedited_result_and_keeps_an_edited_one(tmp_path):
    path = copy("plane.ipynb", tmp_path)
    assert invoke(path).exit_code == 0
    assert invoke(path).exit_code == 0  # our own, unedited: replaced
    out = tmp_path / "plane_lightning.ipynb"
    data = json.loads(out.read_text())
    data["cells"][0]["source"] = ["# edited\n"]
    out.write_text(json.dumps(data))
    result = invoke(path)
    assert result.exit_code == 2
    assert "was edited since scaffold convert wrote it" in result.stderr
    assert json.loads(out.read_text())["cells"][0]["source"] == ["# edited\n"]
    assert invoke(path, "--force").exit_code == 0


def test_diff_shows_the_code_cells_with_their_ipython_lines(tmp_path):
    path = copy("plane.ipynb", tmp_path)
    result = invoke(path, "--diff")
    assert result.exit_code == 0
    assert "+import pytorch_lightning as pl\n" in result.stdout
    assert " !echo preparing\n" in result.stdout and "IPython line" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plane.ipynb"]


def test_ipython_lines_inside_a_block_and_with_continuations():
    cell = "for i in range(2):\n    %time f(i)\n    !ls \\\n      -l\nx = 1\n"
    magics = []
    hidden = nb._hide_ipython(cell, magics)
    assert magics == ["    %time f(i)", "    !ls \\\n      -l"]
    compile(hidden, "cell", "exec")  # the placeholders are valid Python
    assert nb.restore(hidden, magics) == (cell, [])


def test_magic_like_lines_in_strings_and_brackets_are_code():
    cell = 'x = (1\n% 2)\ns = """\n!not shell\n"""\n'
    magics = []
    assert nb._hide_ipython(cell, magics) == cell and magics == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.ipynb", "{not json", "not a valid notebook: JSON error on line 1"),
        ("cfg.ipynb", '{"a": 1}', "JSON without a 'cells' list"),
        ("old.ipynb", '{"cells": [], "nbformat": 3}', "nbformat 3 notebooks are not supported"),
        ("config.json", '{"lr": 0.1, "epochs": 3}', "is JSON, not a Python script"),
        ("list.py", "[1, 2, 3]", "is JSON, not a Python script"),
        (
            "nb.py",
            '{"cells": [], "nbformat": 4}',
            "is a Jupyter notebook without the .ipynb suffix",
        ),
    ],
)
def test_json_that_is_not_a_notebook_is_exit_2(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    result = invoke(path)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {path}: {message}")
    assert "\nhint: " in result.stderr and "Traceback" not in result.output
    assert [p.name for p in tmp_path.iterdir()] == [name]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "deep.ipynb",
            '{"cells": [], "nbformat": 4, "metadata": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001,
            "not a valid notebook: its JSON is nested more than 100 levels deep",
        ),
        (  # deep enough to break copying it, not json.loads
            "deep.ipynb",
            '{"cells": [], "nbformat": 4, "metadata": ' + '{"a": ' * 400 + "1" + "}" * 401,
            "not a valid notebook: its JSON is nested more than 100 levels deep",
        ),
        ("deep.py", "[" * 100_000, "syntax error: too many nested parentheses"),
    ],
)
def test_deeply_nested_json_is_one_error_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    result = invoke(path)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {path}") and f": {message}\nhint: " in result.stderr
    assert len(result.stderr.splitlines()) == 2
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_nbformat_as_a_string_says_it_must_be_the_integer_4(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(
        '{\n "cells": [],\n "metadata": {},\n "nbformat": "4",\n "nbformat_minor": 5\n}\n'
    )
    result = invoke(path)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {path}:4: nbformat: must be the integer 4, not the string '4'\n"
        'hint: write "nbformat": 4 without quotes, or open and save the notebook in Jupyter\n'
    )


def test_syntax_error_names_the_cell(tmp_path):
    data = json.loads((NOTEBOOKS / "plane.ipynb").read_text())
    data["cells"][3]["source"] = ["x = 1\n", "def broken(:\n"]
    path = tmp_path / "broken.ipynb"
    path.write_text(json.dumps(data))
    result = invoke(path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:cell 4:2: syntax error")


def test_a_notebook_output_must_be_a_notebook(tmp_path):
    path = copy("plane.ipynb", tmp_path)
    result = invoke(path, "-o", tmp_path / "out.py")
    assert result.exit_code == 2
    assert "the output must end in .ipynb" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["plane.ipynb"]


@pytest.mark.slow
def test_converted_notebook_code_runs_to_the_end(tmp_path):
    """The converted notebook's code cells, run in order (IPython lines left out), train."""
    _, after, _ = converted(tmp_path)
    magics: list[str] = []
    code = "".join(
        nb._hide_ipython(text(c), magics) + "\n" for c in after["cells"] if c["cell_type"] == "code"
    )
    script = tmp_path / "run_notebook.py"
    script.write_text(code)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch 2:" in done.stdout  # the third epoch's print, from on_train_epoch_end
    history = done.stdout.strip().splitlines()[-1]
    assert history.startswith("[") and len(json.loads(history)) == 3


def test_an_ipython_line_lost_with_converted_code_is_a_warning(tmp_path, monkeypatch):
    import torch_scaffold.convert as convert_pkg
    from torch_scaffold.convert.result import Conversion, ReportEntry

    def fake(source, filename="<stdin>", **kwargs):  # drops the `files = !ls` placeholder
        kept = [line for line in source.split("\n") if "IPython line 3" not in line]
        code = "\n".join(kept).replace("lr=0.05", "lr=0.1")
        return Conversion(code=code, entries=[ReportEntry("moved", "lr", 1)])

    monkeypatch.setattr(convert_pkg, "convert_source", fake)
    path = copy("plane.ipynb", tmp_path)
    result = invoke(path)
    assert result.exit_code == 0, result.output
    assert "warning: IPython line(s) dropped with the code they were in: `files = !ls`" in (
        result.stderr
    )
    cell = text(json.loads((tmp_path / "plane_lightning.ipynb").read_text())["cells"][3])
    assert cell.startswith("!echo preparing\ntorch.manual_seed(0)\n") and "lr=0.1" in cell
