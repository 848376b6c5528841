"""The size limit of the converter (convert/limits.py): a script over MAX_LINES lines or
MAX_BYTES bytes is refused with exit 2 before it is parsed, nothing written.

The speed and memory behind the limit are measured by benchmarks/run.py, not here.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from torch_scaffold.cli import main
from torch_scaffold.convert import convert_source
from torch_scaffold.convert.limits import MAX_BYTES, MAX_LINES, check_size
from torch_scaffold.errors import ScriptError

# a training loop, so that only the size can be the reason for a refusal
LOOP = """\
import torch

model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(3):
    optimizer.zero_grad()
    loss = model(torch.ones(2)).sum()
    loss.backward()
    optimizer.step()
"""


def padded_to(lines: int) -> str:
    filler = lines - LOOP.count("\n")
    return LOOP + "x = 1\n" * filler


def test_too_many_lines_exit_2_with_error_and_hint(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(padded_to(MAX_LINES + 1))
    result = CliRunner().invoke(main, ["convert", str(script)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    error = (
        f"error: {script}: too large to convert ({MAX_LINES + 1:,} lines; the limit is"
        f" {MAX_LINES:,} lines and {MAX_BYTES // 2**20} MiB)"
    )
    hint = (
        "hint: convert the file that holds the training loop on its own, without generated"
        " code or data literals"
    )
    assert result.stderr.splitlines() == [error, hint]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]  # nothing written


def test_too_many_bytes_on_few_lines(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(LOOP + "DATA = [" + "1.0, " * (MAX_BYTES // 5) + "]\n")
    result = CliRunner().invoke(main, ["convert", str(script)])
    assert result.exit_code == 2, result.output
    assert "too large to convert (4.0 MiB;" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.py"]


def test_the_core_refuses_too():
    with pytest.raises(ScriptError, match="too large to convert"):
        convert_source(padded_to(MAX_LINES + 1), "train.py")


def test_the_limit_itself_is_allowed():
    check_size(padded_to(MAX_LINES), "train.py")  # no error
    check_size("é" * (MAX_BYTES // 2), "train.py")  # two bytes each in UTF-8: at the limit
    with pytest.raises(ScriptError, match=r"\(4\.0 MiB;"):
        check_size("é" * (MAX_BYTES // 2 + 1), "train.py")
