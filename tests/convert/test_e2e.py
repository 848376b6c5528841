"""End to end: convert each examples/scripts/*.py and check the Lightning version trains the same.

Both versions run under ../shared/tools/losstrace.py, which records the first 20
back-propagated losses and stops the process. The traces must agree within
|a - b| <= 1e-5 + 1e-4 * |a|. The two runs of one script go in parallel (one per core).
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

from .conftest import EXAMPLES, SHARED

STEPS = 20
LOSSTRACE = SHARED / "tools" / "losstrace.py"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not LOSSTRACE.exists(),
        reason=f"{LOSSTRACE} not found: check out ../shared beside the repo or set SCAFFOLD_SHARED",
    ),
]


def start_trace(script, folder, out):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, str(LOSSTRACE), "run", "--steps", str(STEPS), "--out", out, "--"]
    return subprocess.Popen(
        [*command, script],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_trace(process, folder, out):
    log, _ = process.communicate(timeout=300)
    path = folder / out
    assert path.exists(), f"{out}: the script failed (exit {process.returncode}):\n{log[-3000:]}"
    return json.loads(path.read_text())["losses"]


@pytest.mark.parametrize("source", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_converted_example_trains_loss_for_loss(source, tmp_path):
    original_dir, converted_dir = tmp_path / "original", tmp_path / "converted"
    original_dir.mkdir()
    converted_dir.mkdir()
    shutil.copy(source, original_dir)
    shutil.copy(source, converted_dir)
    converted = converted_dir / f"{source.stem}_lightning.py"

    result = CliRunner().invoke(main, ["convert", str(converted_dir / source.name)])
    assert result.exit_code == 0, result.output
    assert converted.exists()

    original_run = start_trace(source.name, original_dir, "trace.json")
    converted_run = start_trace(converted.name, converted_dir, "trace.json")
    want = finish_trace(original_run, original_dir, "trace.json")
    got = finish_trace(converted_run, converted_dir, "trace.json")

    assert len(want) == STEPS, f"the original recorded only {len(want)} losses"
    assert len(got) == STEPS, f"the converted script recorded {len(got)} losses, not {STEPS}"
    for step, (a, b) in enumerate(zip(want, got)):
        assert abs(a - b) <= 1e-5 + 1e-4 * abs(a), f"loss {step}: original {a}, converted {b}"
