"""Folder and package names derived from free-form project names."""

from __future__ import annotations

import keyword

import pytest

from torch_scaffold.spec import load_spec_text, project_names


@pytest.mark.parametrize(
    "name,slug,package",
    [
        ("tabular-classifier", "tabular-classifier", "tabular_classifier"),
        ("My  Cool__Model!!", "my-cool-model", "my_cool_model"),
        ("--edge--", "edge", "edge"),
        ("3d-net", "3d-net", "p_3d_net"),
        ("Café Réseau", "cafe-reseau", "cafe_reseau"),
        ("class", "class", "class_project"),
        ("import", "import", "import_project"),
        ("match", "match", "match_project"),
        ("torch", "torch", "torch_project"),
        ("Lightning", "lightning", "lightning_project"),
        ("pytorch_lightning", "pytorch-lightning", "pytorch_lightning_project"),
        ("numpy", "numpy", "numpy_project"),
        ("yaml", "yaml", "yaml_project"),
        ("tests", "tests", "tests_project"),
        ("typing", "typing", "typing_project"),
        ("json", "json", "json_project"),
        ("a/../b", "a-b", "a_b"),
        ("网络 net", "net", "net"),
        ("{{ cookiecutter.x }}", "cookiecutter-x", "cookiecutter_x"),
    ],
)
def test_names(name, slug, package):
    assert project_names(name) == (slug, package)


@pytest.mark.parametrize("name", ["a", "Z9", "x" * 100, "for", "os", "1", "__init__", "é"])
def test_package_is_always_an_importable_identifier_or_empty(name):
    slug, package = project_names(name)
    if slug:
        assert package.isidentifier() and not keyword.iskeyword(package)
        assert package.isascii() and package == package.lower()
    else:
        assert package == ""


def test_project_names_accepts_a_spec():
    assert project_names(load_spec_text("name: My Model\n")) == ("my-model", "my_model")


def test_name_without_letters_is_refused_by_the_loader():
    from torch_scaffold.errors import SpecError

    with pytest.raises(SpecError, match="no ASCII letters or digits"):
        load_spec_text("name: '网络'\n")


@pytest.mark.parametrize(
    "name,package",
    [
        ("x" * 100, "x" * 40),
        ("a very long project name for the experiment tracking of our team", None),
        ("1" * 60, "p_" + "1" * 40),
    ],
)
def test_long_names_give_short_packages(name, package):
    """Package names fit the generated code's lines; folders keep the whole slug."""
    slug, got = project_names(name)
    assert got.isidentifier() and len(got) <= 48 and not got.endswith("_")
    if package is not None:
        assert got == package
    else:
        assert got == "a_very_long_project_name_for_the"  # cut at a word boundary
    assert len(slug) == len(name.strip())
