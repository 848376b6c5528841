"""The templates are real cookiecutter templates: cookiecutter renders what we render."""

import pytest

from torch_scaffold.generate import render_project
from torch_scaffold.generate.render import templates_root
from torch_scaffold.spec.schema import Spec


def _read_tree(root):
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_cookiecutter_no_input_gives_the_same_project(style, tmp_path):
    from cookiecutter.main import cookiecutter

    out = cookiecutter(str(templates_root() / style), no_input=True, output_dir=str(tmp_path))
    assert _read_tree(tmp_path / "tabular-classifier") == render_project(Spec(), style)
    assert out == str(tmp_path / "tabular-classifier")
