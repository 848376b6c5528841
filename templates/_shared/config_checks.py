"""Checking a config as `scaffold spec check` checks a spec: the same for every project.

config.py declares each field with `setting(default, **limits)`, the limits of the spec
schema this project was generated from, and holds the rules across fields (check_rules). This
module reads the YAML (recording where each value was written, refusing duplicate keys,
aliases, tags and the YAML 1.1 number forms that change a value), converts each value to its
field's type, and checks every value against its limits. A problem is a ConfigError whose
message starts with where the value was set (`config.yaml:12: optimizer.lr`, `--set
optimizer.lr`, `--seed (trainer.seed)`) and whose `hint` says what to do.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import os
import re
import stat
import types
import typing
from dataclasses import field
from typing import Any

import yaml

MAX_CONFIG_BYTES = 1_000_000  # a config is a few kilobytes; anything larger is the wrong file


class ConfigError(ValueError):
    """A config value that cannot be used. The message starts with where it was set
    (`config.yaml:12: optimizer.lr`, `--set optimizer.lr`, `--seed`); `hint` says what to do."""

    def __init__(self, message: str, where: str = "", hint: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.hint = hint


class DataError(ValueError):
    """Data that cannot be loaded (raised by the data modules, reported like a ConfigError):
    the message names the file and the problem, `hint` the fix."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def setting(default: Any, **limits: Any) -> Any:
    """A config field with the spec's limits on its value, checked by check_values(): min and
    max (exclusive_min/exclusive_max: the bound itself is out; for lists, of each item),
    choices, min_items/max_items (lists), min_length/max_length (text).

    `arguments=choices` makes a section's `args` field hold the arguments of the class its
    `name` field picks: choices() maps each name (matched case-insensitively) to a dataclass
    of that class's arguments (see signature_arguments), the section's other keys fill it,
    and `unknown` says what a name that is none of them is not."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=limits)
    return field(default=default, metadata=limits)


# -- reading: YAML values, and where each one was written ----------------------------------

# Where each value came from, by dotted key ("optimizer.lr", "optimizer.betas[0]"): (place,
# the text as written, quoted). place is "config.yaml:12", "--set" or a flag such as
# "--max-epochs"; a key that is not in it holds its default.
Origins = dict[str, tuple[str, str | None, bool]]

_CORE = "tag:yaml.org,2002:"
_TAGS = {
    _CORE + name for name in ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")
}
# PyYAML reads YAML 1.1: `3e-4` (no dot) is text there, read here as the number it means; a
# leading zero is octal (`010` is 8) and colons are base 60 (`1:30` is 90): both refused.
_EXPONENT = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+")
_OCTAL = re.compile(r"[-+]?0[0-7_]+")
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_RESOLVER = yaml.resolver.Resolver()


def where(origins: Origins, key: str) -> str:
    """`config.yaml:12: key`, `--set key`, `--seed (key)`, or the key alone for a default."""
    place = origins[key][0] if key in origins else ""
    if place == "--set":
        return f"--set {key}"
    if place.startswith("--"):
        return f"{place} ({key})"
    return f"{place}: {key}" if place else key


def describe(origins: Origins, key: str) -> str:
    """The key and where it was set, to name the other key of a conflict."""
    if key not in origins:
        return f"{key} (default)"
    place = origins[key][0]
    if place.startswith("--"):
        return f"{key} ({place})"
    return f"{key} (line {place.rpartition(':')[2]})"


def special_file(path: str | os.PathLike) -> str | None:
    """What `path` is, in words, when it is neither a regular file nor a folder (else None).
    Reading a FIFO waits for a writer and a device may never end, so such paths are refused
    before they are opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError:  # missing or unreadable: the open that follows says which
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kinds = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device"}
    return kinds.get(stat.S_IFMT(mode), "a special file (a device or socket)")


def read_config_file(path: str, origins: Origins) -> dict[str, Any]:
    """The values in a YAML config file (any subset of config.yaml's keys)."""
    kind = special_file(path)
    if kind:
        raise ConfigError(
            f"is {kind}, not a regular file",
            path,
            "pass a YAML file like the project's config.yaml",
        )
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)  # bounded: /dev/zero is no config either
    except OSError as err:
        raise ConfigError(
            f"cannot read ({err.strerror})", path, "check the --config path"
        ) from None
    if b"\x00" in data:
        raise ConfigError(
            "is binary (contains NUL bytes), not a YAML config",
            path,
            "pass a YAML file like the project's config.yaml",
        )
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"is over {MAX_CONFIG_BYTES:,} bytes, too large for a config",
            path,
            "pass a YAML file like the project's config.yaml",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError("is not valid UTF-8 text", f"{path}:{line}", "save it as UTF-8") from None
    tree = parse_yaml(text, path, "", origins)
    if tree is None:  # empty, or only comments: the defaults
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(
            f"a config is a mapping of sections such as `trainer:`, got {_got(tree, '', {})}",
            path,
            "the project's config.yaml shows the layout",
        )
    return tree


def parse_yaml(text: str, place: str, key: str, origins: Origins) -> Any:
    """YAML text (a file, or the value of `--set key=...`) -> plain values, or None when it
    holds none; records in `origins` where each key and list item was written."""
    spot = f"--set {key}" if place == "--set" else place
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        if mark is not None and place != "--set":
            spot = f"{place}:{mark.line + 1}"
        problem = err.problem or err.context or "invalid YAML"
        hint = "check the indentation, quotes and brackets near this line"
        if "expected a single document" in (err.context or ""):
            problem = "holds more than one YAML document"
            hint = "a config is one YAML document; remove the extra '---' separator"
        elif "'\\t'" in problem:
            problem = "found a tab character where YAML expects spaces"
            hint = "YAML does not allow tabs for indentation; indent with spaces"
        elif "mapping values are not allowed" in problem:
            hint = "a value holding ': ' must be quoted, and nested keys must be indented"
        elif "expected ',' or" in problem:
            hint = "close the bracket that was opened, and separate its items with commas"
        raise ConfigError(f"not valid YAML: {problem}", spot, hint) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML: {str(err).splitlines()[0]}", spot) from None
    except RecursionError:
        raise ConfigError("nested too deeply", spot, "check the indentation") from None
    return None if node is None else _value(node, key, place, None, origins, set())


def _spot(place: str, line: int | None) -> str:
    """Where a value was written, without its key: `config.yaml:12`, or `--set`."""
    return place if place == "--set" or line is None else f"{place}:{line + 1}"


def _at(place: str, key: str, line: int | None) -> str:
    """where() for a key that is not in origins yet."""
    return where({key: (_spot(place, line), None, False)}, key)


def _value(
    node: yaml.Node, key: str, place: str, line: int | None, origins: Origins, seen: set[int]
) -> Any:
    """One composed YAML node -> a plain value. `line` is where its key was written."""
    if id(node) in seen:  # the composer gives an alias the node of its anchor
        raise ConfigError(
            "YAML aliases are not supported in a config",
            _at(place, key, line),
            "write the value out in full",
        )
    seen.add(id(node))
    if node.tag not in _TAGS:
        shown = "!!" + node.tag[len(_CORE) :] if node.tag.startswith(_CORE) else node.tag
        raise ConfigError(
            f"YAML tag {shown} is not allowed in a config",
            _at(place, key, line) if key else _spot(place, node.start_mark.line),
            "remove the tag; a config holds plain text, numbers, booleans and lists",
        )
    if key:
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        quoted = isinstance(node, yaml.ScalarNode) and bool(node.style)
        origins[key] = (_spot(place, line), text, quoted)
    if isinstance(node, yaml.MappingNode):
        tree: dict[str, Any] = {}
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "..."
            child = f"{key}.{name}" if key else name
            key_line = key_node.start_mark.line
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _CORE + "str":
                raise ConfigError(
                    f"keys must be names, got {quote(name)}",
                    _at(place, child, key_line),
                    "keys are names such as `lr` or `max_epochs`",
                )
            if name in tree:
                first = origins[child][0].rpartition(":")[2]
                raise ConfigError(
                    f"duplicate key {quote(name)} (first written on line {first})",
                    _at(place, child, key_line),
                    "remove one of them; YAML would silently keep only the last",
                )
            tree[name] = _value(value_node, child, place, key_line, origins, seen)
        return tree
    if isinstance(node, yaml.SequenceNode):
        return [
            _value(item, f"{key}[{index}]", place, item.start_mark.line, origins, seen)
            for index, item in enumerate(node.value)
        ]
    return _scalar(node, key, origins)


def _scalar(node: yaml.ScalarNode, key: str, origins: Origins) -> Any:
    spot = where(origins, key) if key else ""
    kind = node.tag[len(_CORE) :]
    if not node.style and kind in ("int", "float"):
        problem = yaml11_number_problem(node.value, kind)
        if problem is not None:
            raise ConfigError(problem[0], spot, problem[1])
    if kind == "timestamp":
        return node.value  # a date stays the text it is written as
    if kind == "str" and not node.style and _EXPONENT.fullmatch(node.value):
        return float(node.value)  # `3e-4` is the number the user meant
    try:
        return _CONSTRUCTOR.yaml_constructors[node.tag](_CONSTRUCTOR, node)
    except (ValueError, OverflowError, yaml.YAMLError):  # e.g. an integer of 5000 digits
        raise ConfigError(
            f"cannot read {quote(node.value)}", spot, "write a number of sensible size"
        ) from None


def yaml11_number_problem(text: str, kind: str) -> tuple[str, str] | None:
    """(message, hint) when YAML 1.1 reads `text` as another number than the one written."""
    if kind == "int" and _OCTAL.fullmatch(text):
        digits = text.replace("_", "")
        return (
            f"{text} would be read as {int(digits, 8)}: YAML 1.1 reads a number with a leading"
            " zero as octal",
            f"write {int(digits, 10)} without the leading zero, or quote it if it is text",
        )
    if ":" in text:
        value = _CONSTRUCTOR.yaml_constructors[_CORE + kind](
            _CONSTRUCTOR, yaml.ScalarNode("", text)
        )
        return (
            f"{text} would be read as {value}: YAML 1.1 reads numbers with colons as base 60",
            "write the number itself, or quote it if it is text (a time, say)",
        )
    return None


def set_override(tree: dict, assignment: str, origins: Origins) -> None:
    """--set KEY=VALUE into `tree`: the value is read as YAML (load_config lays it over the
    config read so far with merge(), so a section's value merges key by key)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key or not all(part.isidentifier() for part in key.split(".")):
        raise ConfigError(
            "expected KEY=VALUE",
            f"--set {assignment!r}",
            "write the dotted key, e.g. --set optimizer.lr=3e-4",
        )
    *parents, leaf = key.split(".")
    node = tree
    for index, part in enumerate(parents):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            section = ".".join(parents[: index + 1])
            raise ConfigError(f"{section} is not a section", f"--set {key}")
    for known in [k for k in origins if k == key or k.startswith((key + ".", key + "["))]:
        del origins[known]  # replaced whole
    origins[key] = ("--set", raw, False)
    node[leaf] = parse_yaml(raw, "--set", key, origins)


# -- building: types -------------------------------------------------------------------------

_KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
_PLURALS = {bool: "booleans", int: "whole numbers", float: "numbers", str: "strings"}


def build(cls: type, tree: Any, origins: Origins) -> Any:
    """The dataclass `cls` from plain values, each converted to its field's type; a value
    of the wrong type, or an unknown key, is a ConfigError that says where it was set."""
    return _build(cls, tree, "", origins, cls)


def _default(spec: dataclasses.Field) -> Any:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default


def _build(cls: type, data: Any, key: str, origins: Origins, root: type) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of keys, got {_got(data, key, origins)}",
            where(origins, key),
            f"indent the keys of {key} under it, e.g. `{key}:` then"
            f" `  {dataclasses.fields(cls)[0].name}: ...`",
        )
    fields = {spec.name: spec for spec in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    chosen = (
        fields.get("args") if "arguments" in getattr(fields.get("args"), "metadata", {}) else None
    )
    values, extra = {}, {}
    for name, value in data.items():
        child = f"{key}.{name}" if key else name
        if name not in fields and chosen is not None:
            extra[name] = value  # an argument of the chosen class
            continue
        if name not in fields:
            raise ConfigError(
                f"unknown key {quote(name)}" + (f" in {key}" if key else ""),
                where(origins, child),
                _unknown_key_hint(name, list(fields), key, root),
            )
        spec = fields[name]
        default = _default(spec)
        values[name] = _coerce(value, hints[name], child, origins, spec.metadata, default, root)
    if chosen is not None:
        values["args"] = _arguments(fields, values, extra, key, origins, root)
    return dataclasses.replace(cls(), **values)


def _arguments(
    fields: dict, values: dict, extra: dict, key: str, origins: Origins, root: type
) -> dict[str, Any]:
    """The arguments of the class a section's `name` picks (optimizer.name: sgd -> SGD's
    momentum, nesterov, ...), checked against that class; only those given are kept."""
    default_name = _default(fields["name"])
    name = values.get("name", default_name)
    choices = fields["args"].metadata["arguments"]()
    names = {choice.lower(): choice for choice in choices}
    if name.lower() not in names:
        options = sorted(choices, key=str.lower)
        close = did_you_mean(name, options)
        raise ConfigError(
            f"{quote(name)} {fields['args'].metadata['unknown']}",
            where(origins, f"{key}.name"),
            f"did you mean `{close}`?" if close else f"choose one of: {', '.join(options)}",
        )
    arguments = choices[names[name.lower()]]
    # the defaults belong to the default choice: another name starts from its class's own
    given = _default(fields["args"]) if name.lower() == default_name.lower() else {}
    given = {**given, **values.get("args", {}), **extra}
    known = [spec.name for spec in dataclasses.fields(arguments)]
    for arg in given:
        if arg not in known:
            close = did_you_mean(arg, known)
            raise ConfigError(
                f"unknown key {quote(arg)}: {key} {name} takes "
                + (", ".join(known) if known else "no arguments"),
                where(origins, f"{key}.{arg}"),
                f"did you mean `{close}`?" if close else f"remove {arg}, or choose another {key}",
            )
    built = _build(arguments, given, key, origins, root)
    check_values(built, origins, key)
    return {arg: getattr(built, arg) for arg in given}


def merge(tree: dict, layer: dict, cls: type) -> None:
    """Lay the plain values `layer` over `tree` (both read for the dataclass `cls`): sections
    merge key by key, any other value replaces the one below. A layer that switches a chosen
    section's `name` (optimizer.name: sgd) drops the arguments written for the old choice."""
    fields = {spec.name: spec for spec in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    args = fields.get("args")
    if args is not None and "arguments" in args.metadata and isinstance(layer.get("name"), str):
        before = tree.get("name", _default(fields["name"]))
        if not isinstance(before, str) or before.lower() != layer["name"].lower():
            for name in [name for name in tree if name not in fields or name == "args"]:
                del tree[name]
    for name, value in layer.items():
        hint = hints.get(name)
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        below = tree.get(name)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict) and isinstance(below, dict):
            merge(below, value, hint)
        else:
            tree[name] = value


def torch_optimizers() -> dict[str, type]:
    """The optimizers in torch.optim by lower-case class name (sgd, adamw, rmsprop, ...)."""
    import torch  # here, not at the top: only a config that trains needs it

    return {
        name.lower(): value
        for name, value in vars(torch.optim).items()
        if isinstance(value, type)
        and issubclass(value, torch.optim.Optimizer)
        and value not in (torch.optim.Optimizer, torch.optim.LBFGS)  # LBFGS steps need a closure
    }


def optimizer_arguments(limits: dict[str, dict]) -> dict[str, type]:
    """optimizer.name -> the dataclass of that optimizer's arguments (lr and weight_decay are
    the section's own fields), with the spec's `limits` for the names it has them for."""
    return {
        cls.__name__: signature_arguments(cls, limits, skip=("params", "lr", "weight_decay"))
        for cls in torch_optimizers().values()
    }


def loss_arguments(losses: dict[str, str]) -> dict[str, type]:
    """loss.name -> the dataclass of its torch.nn class's arguments, for `losses` (name ->
    class name). reduction stays "mean" (the loops average over batches), and tensor weights
    are not config values."""
    from torch import nn

    skip = ("weight", "pos_weight", "size_average", "reduce", "reduction")
    return {name: signature_arguments(getattr(nn, cls), {}, skip) for name, cls in losses.items()}


def check_optimizer(section: Any, origins: Origins) -> None:
    """The optimizer's own checks (torch refuses e.g. a negative eps), run on a stand-in
    parameter so that a bad argument stops the run before anything is built."""
    import torch

    optimizer_class = torch_optimizers()[section.name.lower()]
    arguments = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in section.args.items()
    }

    def refused(keys: list[str]) -> Exception | None:
        try:
            optimizer_class(
                [torch.zeros(2, 2, requires_grad=True)],
                lr=section.lr,
                **{key: arguments[key] for key in keys},
            )
        except (ValueError, TypeError, RuntimeError) as err:
            return err
        return None

    problem = refused(list(arguments))
    if problem is not None:
        # blame the argument torch refuses on its own, if one is
        alone = [key for key in arguments if refused([key]) is not None]
        given = [f"optimizer.{key}" for key in alone or arguments]
        name = optimizer_class.__name__
        fail(
            origins,
            first_set(origins, *given, "optimizer.name"),
            f"torch.optim.{name} refuses it: {problem}",
            f"check the arguments of torch.optim.{name}",
        )


def signature_arguments(cls: type, limits: dict[str, dict], skip: tuple[str, ...]) -> type:
    """A dataclass of the keyword arguments of `cls` (all but `skip`): each with its default,
    the type its annotation or default says, and the `limits` known for its name."""
    fields = []
    for param in inspect.signature(cls).parameters.values():
        if param.name in skip or param.default is inspect.Parameter.empty:
            continue
        default = list(param.default) if isinstance(param.default, tuple) else param.default
        hint = _argument_type(param.annotation, default)
        fields.append((param.name, hint, setting(default, **limits.get(param.name, {}))))
    return dataclasses.make_dataclass(f"{cls.__name__}Arguments", fields)


def _argument_type(annotation: Any, default: Any) -> Any:
    scalars = (bool, int, float, str)
    if annotation in scalars:
        return float if annotation is int and isinstance(default, float) else annotation
    if isinstance(default, list) and default and all(type(v) in (int, float) for v in default):
        return list[float]
    options = typing.get_args(annotation)
    if type(None) in options and len(options) == 2:
        (inner,) = [arg for arg in options if arg is not type(None)]
        if inner in scalars:
            return inner | None
    return Any  # taken as written


def _coerce(
    value: Any,
    hint: Any,
    key: str,
    origins: Origins,
    limits: typing.Mapping,
    default: Any,
    root: type,
) -> Any:
    """`value` as the field's type, or a ConfigError that names the key."""
    if hint is Any:
        return value
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)
    if optional:
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if dataclasses.is_dataclass(hint):
        return _build(hint, {} if value is None else value, key, origins, root)  # empty: defaults
    if value is None:
        if optional:
            return None
        raise ConfigError(
            f"expected {_expected(hint)}, got nothing (null)",
            where(origins, key),
            f"give a value, or delete the line to use the default {_show(default)}",
        )
    origin = typing.get_origin(hint)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(
                f"expected {_expected(hint)}, got {_got(value, key, origins)}",
                where(origins, key),
                f"write a list in brackets, e.g. {_show(default)}",
            )
        (item,) = typing.get_args(hint)
        return [
            _coerce(one, item, f"{key}[{index}]", origins, limits, default, root)
            for index, one in enumerate(value)
        ]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(
                f"expected a mapping of names to values, got {_got(value, key, origins)}",
                where(origins, key),
                "write a mapping of argument names to values, e.g. `args: {width: 64}`",
            )
        return dict(value)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and number and isinstance(value, int):
        return value
    if hint is float and number:
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float: kept, the range check says so
            return value
    if hint is str and isinstance(value, str):
        return value
    if hint is str and number and limits.get("choices"):
        _check_text(str(value), limits, key, origins)  # `precision: 32` is the choice "32"
        return str(value)
    raise ConfigError(
        f"expected {_KINDS[hint]}, got {_got(value, key, origins)}",
        where(origins, key),
        _type_hint(hint, value, key, origins, limits, default),
    )


def _type_hint(
    hint: type, value: Any, key: str, origins: Origins, limits: typing.Mapping, default: Any
) -> str:
    quoted = key in origins and origins[key][2]
    if quoted and isinstance(value, str) and hint is not str:
        unquoted = "float" if _EXPONENT.fullmatch(value) else _unquoted_kind(value)
        if unquoted in {bool: ("bool",), int: ("int",), float: ("int", "float")}[hint]:
            if yaml11_number_problem(value, unquoted) is not None:
                if ":" in value:  # without quotes `1:30` would be base-60 90
                    return "write the number itself, without quotes"
                return f"write {int(value.replace('_', ''), 10)} without quotes or the leading zero"
            return "remove the quotes around the value"
    if hint is str:
        if limits.get("choices"):
            return f"choose one of: {', '.join(map(str, limits['choices']))}"
        text = origins[key][1] if key in origins else None
        short = text if text and text.isprintable() and len(text) <= 20 else "..."
        return f'put the text in quotes, e.g. "{short}"'
    if hint is bool:
        return "write true or false"
    if hint is int:
        return (
            "write a whole number without a decimal point or exponent, such as"
            f" {_example(limits, default)}"
        )
    return f"write a number such as {_example(limits, default)}"


def _unquoted_kind(text: str) -> str:
    """What YAML would read `text` as without quotes: 'int', 'float', 'bool', 'str', ..."""
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)).rsplit(":", 1)[-1]


def _unknown_key_hint(name: str, known: list[str], section: str, root: type) -> str:
    close = did_you_mean(name, known)
    if close:
        return f"did you mean `{close}`?"
    leaves = _leaf_keys(root)
    elsewhere = [path for path in leaves if path.rpartition(".")[2] == name]
    if not elsewhere:
        near = did_you_mean(name, [path.rpartition(".")[2] for path in leaves])
        elsewhere = [path for path in leaves if near and path.rpartition(".")[2] == near]
    if elsewhere:
        return f"did you mean `{elsewhere[0]}`? (it belongs in another section)"
    return f"keys{' of ' + section if section else ''}: {', '.join(known)}"


def _leaf_keys(cls: type, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    keys = []
    for spec in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[spec.name]):
            keys += _leaf_keys(hints[spec.name], f"{prefix}{spec.name}.")
        else:
            keys.append(prefix + spec.name)
    return keys


def did_you_mean(word: str, options: list[str]) -> str | None:
    """The closest option to `word` (case-insensitive), or None."""
    lowered = {option.lower(): option for option in map(str, options)}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        return lowered[close[0]]
    # `cosine_annealing` -> `cosine`, `16` -> `16-mixed`: one is the start of the other
    starts = [o for o in lowered if word.lower().startswith(o) or o.startswith(word.lower())]
    return lowered[max(starts, key=len)] if word and starts else None


# -- checking: the spec's limits on each value -----------------------------------------------


def check_values(section: Any, origins: Origins, key: str = "") -> None:
    """Every value within the limits its field carries (see setting())."""
    for spec in dataclasses.fields(section):
        child = f"{key}.{spec.name}" if key else spec.name
        value = getattr(section, spec.name)
        if dataclasses.is_dataclass(value):
            check_values(value, origins, child)
            continue
        if value is None or not spec.metadata:
            continue
        limits, default = spec.metadata, _default(spec)
        if isinstance(value, (list, dict)):
            _check_count(value, limits, child, origins, default)
        if isinstance(value, dict):
            continue  # model.args: the module's own arguments
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            item_key = child if index is None else f"{child}[{index}]"
            if isinstance(item, str):
                _check_text(item, limits, item_key, origins)
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                _check_number(item, limits, item_key, origins, default)


def _check_number(
    value: float, limits: typing.Mapping, key: str, origins: Origins, default: Any
) -> None:
    shown = _shown(value, key, origins)
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"must be a finite number, got {shown}",
            where(origins, key),
            _range_hint(limits, default),
        )
    low, high = limits.get("min"), limits.get("max")
    if low is not None and (value <= low if limits.get("exclusive_min") else value < low):
        op = ">" if limits.get("exclusive_min") else ">="
        raise ConfigError(
            f"must be {op} {_number(low)}, got {shown}",
            where(origins, key),
            _range_hint(limits, default),
        )
    if high is not None and (value >= high if limits.get("exclusive_max") else value > high):
        op = "<" if limits.get("exclusive_max") else "<="
        raise ConfigError(
            f"must be {op} {_number(high)}, got {shown}",
            where(origins, key),
            _range_hint(limits, default),
        )


def _check_text(value: str, limits: typing.Mapping, key: str, origins: Origins) -> None:
    choices = limits.get("choices")
    if choices and value not in choices:
        close = did_you_mean(value, choices)
        raise ConfigError(
            f"must be one of {', '.join(choices)}, got {quote(value)}",
            where(origins, key),
            f"did you mean `{close}`?" if close else f"choose one of: {', '.join(choices)}",
        )
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ConfigError(
            "must be a single line without control characters",
            where(origins, key),
            "remove line breaks, tabs and other control characters",
        )
    if limits.get("min_length") and not value.strip():
        raise ConfigError(
            "must not be empty", where(origins, key), "write a value or delete the line"
        )
    if limits.get("max_length") is not None and len(value) > limits["max_length"]:
        raise ConfigError(
            f"is too long ({len(value)} characters; at most {limits['max_length']})",
            where(origins, key),
            "shorten it",
        )


def _check_count(
    value: list | dict, limits: typing.Mapping, key: str, origins: Origins, default: Any
) -> None:
    count, low, high = len(value), limits.get("min_items"), limits.get("max_items")
    exactly = low is not None and low == high
    if isinstance(value, dict):
        if high is not None and count > high:
            raise ConfigError(
                f"has {count} entries; at most {high} allowed",
                where(origins, key),
                "pass fewer arguments",
            )
        return
    if low is not None and count < low:
        message = f"needs {'exactly' if exactly else 'at least'} {_items(low)}, got {count}"
    elif high is not None and count > high:
        message = (
            f"needs exactly {_items(high)}, got {count}"
            if exactly
            else f"has {count} items; at most {high} allowed"
        )
    else:
        return
    if default:
        hint = f"write a list such as {_show(default)}"
    else:
        size = f"{low or 0} to {high} items" if high is not None else f"at least {_items(low or 0)}"
        hint = f"write a list of {size}, or delete the line to use the default"
    raise ConfigError(message, where(origins, key), hint)


def _range_hint(limits: typing.Mapping, default: Any) -> str:
    parts = []
    if limits.get("min") is not None:
        parts.append(f"{'>' if limits.get('exclusive_min') else '>='} {_number(limits['min'])}")
    if limits.get("max") is not None:
        parts.append(f"{'<' if limits.get('exclusive_max') else '<='} {_number(limits['max'])}")
    text = "use a value " + " and ".join(parts) if parts else "use a number"
    return f"{text}, such as {_example(limits, default)}"


def _example(limits: typing.Mapping, default: Any) -> str:
    """One valid value: the default (or its first item)."""
    value = default
    if isinstance(value, list) and value:
        value = value[0]
    if value is None or isinstance(value, list):
        if limits.get("choices"):
            return str(limits["choices"][0])
        value = 1 if limits.get("min") is None else max(1, limits["min"])
    return _number(value) if not isinstance(value, str) else value


def _number(value: float) -> str:
    """Numbers as people write them: 0.001, 0 (not 0.0), 1000000."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    return str(value)


def _shown(value: Any, key: str, origins: Origins) -> str:
    """A number as written (shortened), else as Python writes it."""
    text = origins[key][1] if key in origins and origins[key][1] is not None else None
    if text is None:
        text = _number(value) if isinstance(value, (int, float)) else repr(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"


def _got(value: Any, key: str, origins: Origins) -> str:
    """A value for 'expected X, got Y' messages."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {quote(value)}"
    return _shown(value, key, origins)


def quote(text: str, limit: int = 40) -> str:
    """A string as a one-line quoted literal, shortened."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _expected(hint: Any) -> str:
    if typing.get_origin(hint) is list:
        return f"a list of {_PLURALS[typing.get_args(hint)[0]]}"
    return _KINDS.get(hint, "a value")


def _items(count: int) -> str:
    return f"{count} item" + ("" if count == 1 else "s")


def _show(default: Any) -> str:
    if isinstance(default, list):
        return "[" + ", ".join(_show(item) for item in default) + "]"
    if default is None:
        return "null"
    if isinstance(default, bool):
        return str(default).lower()
    return _number(default) if isinstance(default, float) else str(default)


# -- for the rules across keys (config.check_rules) ---------------------------------------


def fail(origins: Origins, key: str, message: str, hint: str) -> typing.NoReturn:
    """Blame `key`; a message that opens with the key's own description drops it."""
    raise ConfigError(message.removeprefix(describe(origins, key) + " "), where(origins, key), hint)


def first_set(origins: Origins, *keys: str) -> str:
    """Of two conflicting keys, blame one that was set (a default is rarely the mistake)."""
    return next((key for key in keys if key in origins), keys[0])


# -- writing: a Config as YAML that reads back to an equal Config ---------------------------


def to_yaml(config: Any) -> str:
    """`config` in config.yaml's layout; a chosen section's arguments sit beside its name."""
    return "".join(_yaml_lines(config, ""))


def _yaml_lines(section: Any, indent: str) -> typing.Iterator[str]:
    for spec in dataclasses.fields(section):
        value = getattr(section, spec.name)
        if dataclasses.is_dataclass(value):
            yield f"{indent}{spec.name}:\n"
            yield from _yaml_lines(value, indent + "  ")
        elif "arguments" in spec.metadata:
            for name, argument in value.items():
                yield f"{indent}{name}: {_yaml_value(argument)}\n"
        else:
            yield f"{indent}{spec.name}: {_yaml_value(value)}\n"


def _yaml_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_yaml_value, value)) + "]"
    if isinstance(value, dict):
        items = (f"{_yaml_string(str(k))}: {_yaml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return _yaml_string(str(value))


def _yaml_string(text: str) -> str:
    """A double-quoted YAML string in ASCII: every other character as a \\u or \\U escape."""
    out = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= code < 127:
            out.append(char)
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'
