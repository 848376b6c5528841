"""The templates are real cookiecutter templates: cookiecutter renders what we render."""

import pytest

from torch_scaffold.generate import render_project
from torch_scaffold.generate.render import templates_root
from torch_scaffold.spec.schema import Spec

from .helpers import REPO

SLOW = pytest.mark.slow


def _read_tree(root):
    """The generated files (.scaffold/, the record for `scaffold update`, is tested apart)."""
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in root.rglob("*")
        if p.is_file() and ".scaffold" not in p.relative_to(root).parts
    }


@SLOW  # renders a whole project through cookiecutter and black
@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_cookiecutter_no_input_gives_the_same_project(style, tmp_path):
    from cookiecutter.main import cookiecutter

    out = cookiecutter(str(templates_root() / style), no_input=True, output_dir=str(tmp_path))
    assert _read_tree(tmp_path / "tabular-classifier") == render_project(Spec(), style)
    assert out == str(tmp_path / "tabular-classifier")


def _cookiecutter(style, tmp_path, **answers):
    from cookiecutter.main import cookiecutter

    return cookiecutter(
        str(templates_root() / style),
        no_input=True,
        output_dir=str(tmp_path),
        extra_context=answers,
    )


@SLOW  # renders a whole project through cookiecutter and black
@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_cookiecutter_honours_the_names_typed(style, tmp_path):
    """The slug and package name answered are the project's: folders, imports, commands."""
    out = _cookiecutter(style, tmp_path, project_slug="my-proj")
    project = tmp_path / "my-proj"
    assert out == str(project)
    assert (project / "my_proj" / "train.py").is_file()  # package_name followed the slug
    assert not list(project.rglob("tabular_classifier*"))
    texts = "\n".join(p.read_text() for p in project.rglob("*") if p.is_file())
    assert "tabular_classifier" not in texts
    assert "from my_proj.train import main" in (project / "tests" / "test_smoke.py").read_text()
    # the same project scaffold renders for that name, but for the name itself
    expected = render_project(Spec(), style)
    got = _read_tree(project)
    assert sorted(got) == sorted(p.replace("tabular_classifier", "my_proj") for p in expected)


@SLOW  # renders a whole project through cookiecutter and black
@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_cookiecutter_derives_the_project_from_a_given_spec(style, tmp_path):
    """A public `spec` (as cruft records it) is the project's spec, not the default's."""
    from torch_scaffold.generate.context import cookiecutter_context
    from torch_scaffold.spec import load_spec

    spec = load_spec(str(REPO / "examples" / "specs" / "cnn_classification.yaml"))
    context = cookiecutter_context(spec, style)
    _cookiecutter(
        style,
        tmp_path,
        spec=context["spec"],
        project_slug=context["project_slug"],
        package_name=context["package_name"],
    )
    assert _read_tree(tmp_path / context["project_slug"]) == render_project(spec, style)


@SLOW  # renders a whole project through cookiecutter and black
def test_a_spec_with_jinja_syntax_in_its_text_passes_through_cookiecutter(tmp_path):
    from torch_scaffold.generate.context import cookiecutter_context
    from torch_scaffold.spec import load_spec_text

    spec = load_spec_text("name: braces\ndescription: 'uses {{ x }} and {% raw %} as text'\n")
    context = cookiecutter_context(spec, "pytorch")
    _cookiecutter("pytorch", tmp_path, spec=context["spec"], project_slug="braces")
    readme = (tmp_path / "braces" / "README.md").read_text()
    assert readme == render_project(spec, "pytorch")["README.md"]


@pytest.mark.parametrize(
    ("answers", "needle"),
    [
        ({"project_slug": "my proj"}, "project_slug 'my proj' is not a folder name"),
        ({"package_name": "class"}, "package_name 'class' is not a Python package name"),
        ({"package_name": "2fast"}, "is not a Python package name"),
        ({"package_name": "yaml"}, "package_name 'yaml' is the name of an installed module"),
    ],
)
def test_cookiecutter_refuses_unusable_names_before_writing(answers, needle, tmp_path, capfd):
    from cookiecutter.exceptions import FailedHookException

    with pytest.raises(FailedHookException):
        _cookiecutter("pytorch", tmp_path, **answers)
    assert needle in capfd.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_a_bad_spec_is_scaffolds_one_error_line_and_nothing_is_written(style, tmp_path, capfd):
    import json

    from cookiecutter.exceptions import FailedHookException

    from torch_scaffold.generate.context import cookiecutter_context

    spec = json.loads(cookiecutter_context(Spec(), style)["spec"])
    spec["optimizer"]["lr"] = -1
    with pytest.raises(FailedHookException):
        _cookiecutter(style, tmp_path, spec=json.dumps(spec))
    err = capfd.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(("error:", "hint:"))]
    assert len(lines) == 2, err
    assert lines[0].startswith("error: the cookiecutter `spec` variable")
    assert "optimizer.lr" in lines[0] and lines[1].startswith("hint: ")
    assert list(tmp_path.iterdir()) == []


@SLOW  # renders a whole project through cookiecutter and black
@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_a_cookiecutter_project_is_titled_by_its_slug_and_scaffold_update_updates_it(
    style, tmp_path
):
    from click.testing import CliRunner

    from torch_scaffold.cli import main

    _cookiecutter(style, tmp_path, project_slug="my-proj")
    project = tmp_path / "my-proj"
    assert (project / "README.md").read_text().startswith("# my\\-proj\n")  # Markdown-escaped
    update = CliRunner().invoke(main, ["update", str(project)])
    assert update.exit_code == 0 and "up to date" in update.output, update.output
    update = CliRunner().invoke(main, ["update", str(project), "--set", "optimizer.name=sgd"])
    assert update.exit_code == 0, update.output
    assert '"sgd"' in (project / "config.yaml").read_text()
