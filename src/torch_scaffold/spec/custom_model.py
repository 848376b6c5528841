"""`model.source: path/to/file.py:ClassName`: find the user's nn.Module by reading its code.

The file is parsed with `ast`, never imported, so checking a spec needs no torch and runs
none of the user's code. The class must be defined at the top level of the file and
subclass nn.Module: written as `nn.Module`, `torch.nn.Module`, `Module` imported from
torch.nn (under any alias), one of nn.Sequential/ModuleList/ModuleDict, or another class
of the same file that does. Its constructor must accept the arguments in `model.args`.
The file is copied alone into the project, so relative imports are refused. It must compile
(compile() checks what the parser lets through, such as a top-level `return`; nothing runs), and
the class must not take a name that the generated model.py defines or imports. A UTF-8 byte
order mark is accepted, as Python accepts it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_SOURCE_BYTES = 1_000_000
# torch.nn classes a model may subclass directly
MODULE_BASES = {f"torch.nn.{name}" for name in ("Module", "Sequential", "ModuleList", "ModuleDict")}
MODULE_BASES.add("torch.nn.modules.module.Module")
# The names the generated model.py defines or imports next to `from .custom_model import
# ClassName`: a class of one of these names would replace them (tests check the list against
# the rendered file).
GENERATED_NAMES = ("annotations", "nn", "torch", "ModelConfig", "build_model", "BLOCKS")


class CustomModelError(Exception):
    """`field` is the spec field to blame: source (the file or class) or args."""

    def __init__(self, message: str, hint: str, field: str = "source"):
        super().__init__(message)
        self.message, self.hint, self.field = message, hint, field


@dataclass(frozen=True)
class CustomModel:
    path: Path  # absolute
    class_name: str
    code: str


def split_source(source: str) -> tuple[str, str]:
    """'path/to/file.py:ClassName' -> ('path/to/file.py', 'ClassName')."""
    path, sep, class_name = source.rpartition(":")
    if not sep or not path or not class_name.isidentifier():
        raise CustomModelError(
            f"{source!r} is not `path/to/file.py:ClassName`",
            "write the file, a colon and the class name, e.g. models/my_net.py:MyNet",
        )
    if not path.endswith(".py"):
        raise CustomModelError(
            f"{path!r} is not a Python file (.py)", "point model.source at the module's .py file"
        )
    return path, class_name


def resolve_source(source: str, base_dir: Path) -> tuple[Path, str]:
    """The absolute file path (relative paths start at `base_dir`) and the class name."""
    path_text, class_name = split_source(source)
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    return path.resolve(), class_name


def read_custom_model(source: str, base_dir: Path, args: dict[str, Any]) -> CustomModel:
    """Read and check the module named by `source`; raises CustomModelError."""
    path, class_name = resolve_source(source, base_dir)
    code = _read(path)
    try:
        tree = ast.parse(code, filename=str(path))
        # The parser accepts what the compiler refuses (a top-level `return`, `break` outside
        # a loop, `nonlocal` at module level); compiling runs nothing.
        compile(tree, str(path), "exec", dont_inherit=True)
    except SyntaxError as err:
        raise CustomModelError(
            f"{path.name}:{err.lineno}: is not valid Python ({err.msg})",
            "fix the syntax error; the file must run as a module on its own",
        ) from None
    except ValueError as err:  # Python 3.10: NUL bytes in the source
        raise CustomModelError(
            f"{path.name}: is not valid Python ({err})",
            "fix the file; the file must run as a module on its own",
        ) from None
    _refuse_relative_imports(tree, path)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    if class_name not in classes:
        found = ", ".join(sorted(classes)) or "none"
        raise CustomModelError(
            f"{path.name} defines no top-level class {class_name} (classes: {found})",
            "name a class defined at the top level of the file",
        )
    if class_name in GENERATED_NAMES:
        raise CustomModelError(
            f"{path.name}:{classes[class_name].lineno}: the class name {class_name} is taken:"
            " the generated model.py defines or imports that name itself",
            "rename the class, in the file and in model.source (any other name will do)",
        )
    names = _imported_names(tree)
    if not _is_module(classes[class_name], classes, names, set()):
        bases = ", ".join(ast.unparse(b) for b in classes[class_name].bases) or "none"
        raise CustomModelError(
            f"{path.name}:{classes[class_name].lineno}: class {class_name} is not an"
            f" nn.Module subclass (bases: {bases})",
            "subclass torch.nn.Module, e.g. `class MyNet(nn.Module):` after"
            " `from torch import nn`",
        )
    _check_arguments(classes[class_name], path, args)
    return CustomModel(path, class_name, code)


def _read(path: Path) -> str:
    if not path.is_file():
        raise CustomModelError(
            f"{path} does not exist" if not path.exists() else f"{path} is not a file",
            "relative paths start at the spec file's folder",
        )
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise CustomModelError(
            f"{path.name} is over {MAX_SOURCE_BYTES:,} bytes",
            "point at the module that defines the model, not a data file",
        )
    try:
        return path.read_text(encoding="utf-8-sig")  # without the byte order mark, if any
    except UnicodeDecodeError:
        raise CustomModelError(f"{path.name} is not UTF-8 text", "save it as UTF-8") from None
    except OSError as err:
        raise CustomModelError(f"{path}: cannot read ({err.strerror})", "check the path") from None


def _refuse_relative_imports(tree: ast.Module, path: Path) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            raise CustomModelError(
                f"{path.name}:{node.lineno}: relative import"
                f" `from {'.' * node.level}{node.module or ''} import ...`; the file is copied"
                " into the project alone",
                "import only installed packages, or put what it imports into the same file",
            )


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> qualified name for the file's top-level imports."""
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:  # `import torch.nn` binds `torch`
                    top = alias.name.split(".")[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _is_module(
    cls: ast.ClassDef, classes: dict[str, ast.ClassDef], names: dict[str, str], seen: set[str]
) -> bool:
    seen.add(cls.name)
    for base in cls.bases:
        dotted = _dotted(base)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        if head in classes and not rest and head not in seen and head not in names:
            if _is_module(classes[head], classes, names, seen):  # a local base class
                return True
            continue
        qualified = names.get(head, head) + (f".{rest}" if rest else "")
        if qualified in MODULE_BASES:
            return True
    return False


def _check_arguments(cls: ast.ClassDef, path: Path, args: dict[str, Any]) -> None:
    """model.args against the class's own __init__ (when it defines one)."""
    init = next(
        (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None
    )
    if init is None:
        return
    params = init.args
    positional = [a.arg for a in params.posonlyargs + params.args][1:]  # without self
    # names that can be passed as keywords (positional-only ones cannot)
    keyword = positional[max(len(params.posonlyargs) - 1, 0) :]
    keyword = [*keyword, *(a.arg for a in params.kwonlyargs)]
    if params.kwarg is None:
        unknown = [name for name in args if name not in keyword]
        if unknown:
            raise CustomModelError(
                f"{path.name}:{init.lineno}: {cls.name}.__init__ takes no argument"
                f" {unknown[0]!r} (it takes: {', '.join(keyword) or 'none'})",
                "rename or remove it in model.args",
                field="args",
            )
    required = positional[: len(positional) - len(params.defaults)]
    required += [
        a.arg for a, default in zip(params.kwonlyargs, params.kw_defaults) if default is None
    ]
    missing = [name for name in required if name not in args]
    if missing:
        raise CustomModelError(
            f"{path.name}:{init.lineno}: {cls.name}.__init__ needs {', '.join(missing)},"
            " which model.args does not give",
            f"add them under model.args, e.g. `args: {{{missing[0]}: ...}}`",
            field="args",
        )
