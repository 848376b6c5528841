"""The real-corpus benchmark's own machinery (benchmarks/real_corpus.py): prep, shims, comparison.

The benchmark itself (public scripts, whole runs) is far too slow for the suite; these check the
parts that decide its verdicts.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import real_corpus  # noqa: E402


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def mirror(tmp_path):
    """A mirror laid out like /work/.mirror: <owner>+<name>/repo with one commit."""
    repo = tmp_path / "mirrors" / "someone+tutorials" / "repo"
    (repo / "lessons").mkdir(parents=True)
    (repo / "lessons" / "train.py").write_text("EPOCHS = 100\nprint(EPOCHS)\n")
    (repo / "lessons" / "helper.py").write_text("X = 1\n")
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["# title"]},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "import math\n"]},
        {"cell_type": "code", "source": "%%bash\necho hi"},
        {"cell_type": "code", "source": ["!pip install x\n", "y = math.pi"]},
        {"cell_type": "code", "source": ["print('%d'\n", "      % 3)"]},
    ]}
    (repo / "nb.ipynb").write_text(json.dumps(nb))
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    return tmp_path / "mirrors", commit


def _entry(commit, **kw):
    base = dict(id="t", repo="someone/tutorials", commit=commit, path="lessons/train.py")
    return real_corpus.Entry(**{**base, **kw})


def test_prepare_applies_substitutions_and_extracts_files(mirror, tmp_path):
    mirror_dir, commit = mirror
    e = _entry(commit, sub=[["EPOCHS = 100", "EPOCHS = 2"]], files=["lessons/helper.py"])
    script = real_corpus.prepare(e, mirror_dir, tmp_path / "work")
    assert script == tmp_path / "work" / "lessons" / "train.py"
    assert script.read_text() == "EPOCHS = 2\nprint(EPOCHS)\n"
    assert (tmp_path / "work" / "lessons" / "helper.py").read_text() == "X = 1\n"


def test_prepare_refuses_a_substitution_that_does_not_occur(mirror, tmp_path):
    mirror_dir, commit = mirror
    e = _entry(commit, sub=[["EPOCHS = 50", "EPOCHS = 2"]])
    with pytest.raises(real_corpus.PrepError, match="substitution not found"):
        real_corpus.prepare(e, mirror_dir, tmp_path / "work")


def test_a_notebook_becomes_its_code_cells_without_ipython_lines(mirror, tmp_path):
    mirror_dir, commit = mirror
    script = real_corpus.prepare(_entry(commit, path="nb.ipynb"), mirror_dir, tmp_path / "work")
    assert script.name == "nb.py"
    assert script.read_text() == (
        "# %matplotlib inline\nimport math\n\n# !pip install x\ny = math.pi\n\nprint('%d'\n      % 3)\n")


def test_weights_compare_as_a_multiset_by_shape():
    a = [[[2, 3], 1.0, 2.0, 3.0], [[2, 3], 5.0, 6.0, 7.0], [[3], 0.5, 0.5, 0.25]]
    assert real_corpus.compare_weights(a, [a[2], a[1], a[0]]) is None
    changed = [a[0], [[2, 3], 5.0, 6.1, 7.0], a[2]]
    assert "final weights differ" in real_corpus.compare_weights(a, changed)
    assert "different parameter sets" in real_corpus.compare_weights(a, a[:2])


def test_losses_must_match_in_number_and_value():
    assert real_corpus.compare_losses([1.0, 0.5], [1.0, 0.5 + 1e-7]) is None
    assert real_corpus.compare_losses([1.0, 0.5], [1.0]) == "2 vs 1 losses back-propagated"
    assert real_corpus.compare_losses([1.0, 0.5], [1.0, 0.6]).startswith("loss 2 of 2")


@pytest.mark.slow  # a fresh interpreter importing torch
def test_the_hook_records_live_modules_at_exit(tmp_path):
    out = tmp_path / "w.json"
    code = "import torch\nkeep = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))\n"
    env = dict(os.environ, PYTHONPATH=str(real_corpus.HOOK), REAL_CORPUS_WEIGHTS=str(out), OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    shapes = sorted(str(row[0]) for row in json.loads(out.read_text()))
    # weight, bias, BN weight, bias, running mean and var (its int counter is not a weight)
    assert shapes == ["[3, 2]", "[3]", "[3]", "[3]", "[3]", "[3]"]


@pytest.mark.slow  # two fresh interpreters importing torch
def test_the_torchvision_shim_is_deterministic_and_leaves_the_rng_alone():
    code = (
        "import torch\n"
        "from torchvision import datasets, transforms\n"
        "before = torch.get_rng_state()\n"
        "t = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),"
        " transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])\n"
        "d = datasets.CIFAR10('data', train=True, download=True, transform=t)\n"
        "x, y = d[3]\n"
        "assert torch.equal(torch.get_rng_state(), before)\n"
        "m = datasets.MNIST('data', train=False, transform=transforms.ToTensor())\n"
        "print(tuple(x.shape), len(d), tuple(m[0][0].shape), len(m), float(x.sum()), y)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(real_corpus.SHIMS), OMP_NUM_THREADS="1")
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
            for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    assert runs[0].stdout.startswith("(3, 32, 32) 256 (1, 28, 28) 128 ")
