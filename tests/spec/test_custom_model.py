"""`model.type: custom`: the user's nn.Module is found by reading its file, never importing it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from torch_scaffold.errors import SpecError
from torch_scaffold.spec import load_spec
from torch_scaffold.spec.custom_model import GENERATED_NAMES, CustomModelError, read_custom_model

REPO = Path(__file__).resolve().parents[2]


def check(tmp_path: Path, code: str, source: str = "net.py:Net", args=None):
    (tmp_path / "net.py").write_text(textwrap.dedent(code), encoding="utf-8")
    return read_custom_model(source, tmp_path, args or {})


@pytest.mark.parametrize(
    "code",
    [
        "from torch import nn\nclass Net(nn.Module): pass\n",
        "import torch\nclass Net(torch.nn.Module): pass\n",
        "import torch.nn\nclass Net(torch.nn.Module): pass\n",
        "import torch.nn as tnn\nclass Net(tnn.Module): pass\n",
        "from torch.nn import Module\nclass Net(Module): pass\n",
        "from torch.nn import Module as Base\nclass Net(Base): pass\n",
        "from torch import nn as layers\nclass Net(layers.Sequential): pass\n",
        "import torch as t\nclass Net(t.nn.ModuleList): pass\n",
        # one level of local inheritance, with a second base that is not a module
        (
            "from torch import nn\nclass Base(nn.Module): pass\nclass Mixin: pass\n"
            "class Net(Mixin, Base): pass\n"
        ),
        # two levels, defined in any order
        (
            "from torch import nn\nclass Net(Mid): pass\nclass Mid(Low): pass\n"
            "class Low(nn.Module): pass\n"
        ),
    ],
)
def test_module_subclasses_are_recognised(tmp_path, code):
    model = check(tmp_path, code)
    assert model.class_name == "Net" and model.path == (tmp_path / "net.py").resolve()
    assert model.code == textwrap.dedent(code)


@pytest.mark.parametrize(
    "code, message",
    [
        ("class Net: pass\n", "not an nn.Module subclass (bases: none)"),
        ("class Net(object): pass\n", "(bases: object)"),
        ("import nn\nclass Net(nn.Module): pass\n", "not an nn.Module subclass"),
        ("from torch import nn\nclass Net(nn.Linear): pass\n", "bases: nn.Linear"),
        ("class Module: pass\nclass Net(Module): pass\n", "not an nn.Module"),
        ("class A(B): pass\nclass B(A): pass\nclass Net(A): pass\n", "not an nn.Module"),
        ("from torch import nn\nclass Other(nn.Module): pass\n", "no top-level class Net"),
        (
            "from torch import nn\ndef make():\n    class Net(nn.Module): pass\n",
            "no top-level class Net (classes: none)",
        ),
        ("class Net(:\n", "net.py:1: is not valid Python"),
        ("from .layers import Block\nclass Net(Block): pass\n", "net.py:1: relative import"),
    ],
)
def test_what_is_not_a_usable_module_is_refused(tmp_path, code, message):
    with pytest.raises(CustomModelError) as caught:
        check(tmp_path, code)
    assert message in caught.value.message


def test_constructor_arguments_are_checked(tmp_path):
    code = (
        "from torch import nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self, width, depth=2, *, act='relu'):\n"
        "        super().__init__()\n"
    )
    check(tmp_path, code, args={"width": 3, "act": "gelu"})
    with pytest.raises(CustomModelError, match="takes no argument 'height'"):
        check(tmp_path, code, args={"width": 3, "height": 2})
    with pytest.raises(CustomModelError, match="needs width"):
        check(tmp_path, code, args={"depth": 3})
    kwargs = "from torch import nn\nclass Net(nn.Module):\n    def __init__(self, **kw): ...\n"
    check(tmp_path, kwargs, args={"anything": 1})


@pytest.mark.parametrize(
    "source, message",
    [
        ("net.py", "is not `path/to/file.py:ClassName`"),
        ("net.py:9Net", "is not `path/to/file.py:ClassName`"),
        ("net.txt:Net", "not a Python file"),
        ("missing.py:Net", "does not exist"),
    ],
)
def test_bad_sources(tmp_path, source, message):
    with pytest.raises(CustomModelError, match=message):
        check(tmp_path, "class Net: pass\n", source=source)


def _spec(folder: Path, source: str, args: str = "{}") -> Path:
    spec = folder / "spec.yaml"
    spec.write_text(
        f"name: c\nmodel:\n  type: custom\n  source: {source}\n  args: {args}\n", encoding="utf-8"
    )
    return spec


def test_paths_are_relative_to_the_spec_file_and_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "specs").mkdir()
    (tmp_path / "models" / "net.py").write_text(
        "from torch import nn\nclass Net(nn.Module):\n    def __init__(self, width): ...\n"
    )
    monkeypatch.chdir(tmp_path / "models")  # not where the spec is
    spec = load_spec(_spec(tmp_path / "specs", "../models/net.py:Net", "{width: 4}"))
    assert spec.model.source == f"{(tmp_path / 'models' / 'net.py').resolve()}:Net"
    assert spec.model.args == {"width": 4}


def test_spec_errors_name_model_source_and_the_file_line(tmp_path):
    (tmp_path / "net.py").write_text("import torch\n\nclass Net:\n    pass\n")
    with pytest.raises(SpecError) as caught:
        load_spec(_spec(tmp_path, "net.py:Net"))
    assert caught.value.where.endswith("spec.yaml:4: model.source")
    assert "net.py:3: class Net is not an nn.Module subclass" in caught.value.message
    with pytest.raises(SpecError) as caught:
        load_spec(_spec(tmp_path, "nope.py:Net"))
    assert "does not exist" in caught.value.message
    (tmp_path / "net.py").write_text(
        "from torch import nn\nclass Net(nn.Module):\n    def __init__(self): ...\n"
    )
    with pytest.raises(SpecError) as caught:  # argument problems blame model.args
        load_spec(_spec(tmp_path, "net.py:Net", "{width: 3}"))
    assert caught.value.where.endswith("spec.yaml:5: model.args")
    (tmp_path / "spec.yaml").write_text("name: c\nmodel: {type: custom}\n")
    with pytest.raises(SpecError, match="custom needs model.source"):
        load_spec(tmp_path / "spec.yaml")


def test_checking_never_runs_the_file_or_imports_torch(tmp_path):
    """The file would fail when run; the check only reads it, and torch stays unloaded."""
    (tmp_path / "net.py").write_text(
        "import torch\nfrom torch import nn\nraise SystemExit('executed!')\n"
        "class Net(nn.Module):\n    pass\n"
    )
    spec = _spec(tmp_path, "net.py:Net")
    script = (
        "import sys\nfrom torch_scaffold.spec import load_spec\n"
        f"load_spec({str(spec)!r})\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\nprint('checked')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "src")},
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "checked", result.stderr


@pytest.mark.parametrize("style", ["pytorch", "lightning"])
def test_the_project_gets_a_copy_of_the_file_and_the_arguments(style):
    from torch_scaffold.generate import render_project

    spec = load_spec(REPO / "examples" / "specs" / "custom_model.yaml")
    files = render_project(spec, style, format_code=False)
    original = (REPO / "examples" / "models" / "my_net.py").read_text()
    assert files["custom_net/custom_model.py"].strip() == original.strip()
    assert "from .custom_model import GatedMLP" in files["custom_net/model.py"]
    assert "return GatedMLP(**config.args)" in files["custom_net/model.py"]
    assert '"in_features": 12' in files["custom_net/config.py"]


def test_a_byte_order_mark_is_accepted_as_python_accepts_it(tmp_path):
    code = "from torch import nn\nclass Net(nn.Module): pass\n"
    (tmp_path / "net.py").write_bytes(b"\xef\xbb\xbf" + code.encode())
    compile((tmp_path / "net.py").read_bytes(), "net.py", "exec")  # what Python does
    model = read_custom_model("net.py:Net", tmp_path, {})
    assert model.code == code  # the copy in the project starts at the code


@pytest.mark.parametrize(
    "code, message",
    [
        ("from torch import nn\nclass Net(nn.Module): pass\nreturn Net\n", "net.py:3:"),
        ("from torch import nn\nclass Net(nn.Module): pass\nbreak\n", "net.py:3:"),
        ("from torch import nn\nclass Net(nn.Module): pass\nawait Net\n", "net.py:3:"),
        ("from torch import nn\nnonlocal x\nclass Net(nn.Module): pass\n", "net.py:2:"),
    ],
)
def test_code_that_parses_but_does_not_compile_is_refused(tmp_path, code, message):
    """ast.parse accepts these; Python refuses to run them (compile() checks, runs nothing)."""
    with pytest.raises(CustomModelError) as caught:
        check(tmp_path, code)
    assert caught.value.message.startswith(message)
    assert "is not valid Python" in caught.value.message


@pytest.mark.parametrize("name", GENERATED_NAMES)
def test_class_names_the_generated_model_file_uses_are_refused(tmp_path, name):
    code = f"from torch import nn\nclass {name}(nn.Module): pass\n"
    with pytest.raises(CustomModelError, match=f"the class name {name} is taken"):
        check(tmp_path, code, source=f"net.py:{name}")


@pytest.mark.parametrize("style", ["pytorch", "lightning"])
@pytest.mark.parametrize("strategy", ["auto", "fsdp"])
def test_generated_names_list_every_name_of_the_generated_model_file(style, strategy):
    """GENERATED_NAMES holds every top-level name of model.py beside the user's class."""
    import ast

    from torch_scaffold.generate import render_project

    spec = load_spec(
        REPO / "examples" / "specs" / "custom_model.yaml",
        [f"trainer.strategy={strategy}", "trainer.accelerator=auto"],
    )
    files = render_project(spec, style, format_code=False)
    tree = ast.parse(files["custom_net/model.py"])
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    assert names - {"GatedMLP"} <= set(GENERATED_NAMES)
