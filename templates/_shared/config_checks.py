"""Reading config files and turning jsonargparse's errors into the project's error lines.

jsonargparse checks every value against its field's type (config.py); this module reads the
YAML files a run is configured with (each value with the line it was written on), and says
where a value that jsonargparse refused was set: `config.yaml:12: optimizer.lr`, `--set
optimizer.lr`, `--max-epochs (trainer.max_epochs)`.
"""

from __future__ import annotations

import difflib
import inspect
import json
import os
import re
import stat
import types
import typing
from typing import Any

import yaml
from jsonargparse.typing import restricted_number_type

MAX_CONFIG_BYTES = 1_000_000  # a config is a few kilobytes; anything larger is the wrong file

# Where each value was set, by dotted key: "config.yaml:12", "--set", "--max-epochs", ...
Origins = dict[str, str]


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


def number(
    base: type,
    low: float | None = None,
    high: float | None = None,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> type:
    """A number type that jsonargparse checks: within [low, high], an open end excluding it."""
    bounds = []
    if low is not None:
        bounds.append((">" if open_low else ">=", low))
    if high is not None:
        bounds.append(("<" if open_high else "<=", high))
    return restricted_number_type(None, base, bounds)


def where(origins: Origins, key: str) -> str:
    """`config.yaml:12: key`, `--set key`, `--seed (key)`, or the key alone for a default."""
    place = origins.get(key, "")
    if place in ("--set", f"--{key}"):
        return f"{place} {key}" if place == "--set" else place
    if place.startswith("--"):
        return f"{place} ({key})"
    return f"{place}: {key}" if place else key


def did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), options, n=1, cutoff=0.6)
    # `cosine_annealing` -> `cosine`: one is the start of the other
    close = close or sorted((o for o in options if word.lower().startswith(o)), key=len)[-1:]
    # `lr` -> `optimizer.lr`: the same name in another section
    close = close or [o for o in options if o.rpartition(".")[2] == word.rpartition(".")[2]]
    if close:
        return f"did you mean `{close[0]}`?"
    return f"use one of: {', '.join(options)}" if len(options) <= 12 else "see --help for the keys"


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


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `3e-4` (no dot) as text; here it is the number it means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def read_config_file(path: str) -> dict[str, tuple[Any, int]]:
    """The values of a YAML config file by dotted key ("trainer.max_epochs"), each with the
    line it was written on; lists are values, mappings are sections."""
    hint = "pass a YAML file like the project's config.yaml"
    kind = special_file(path)
    if kind:
        raise ConfigError(f"is {kind}, not a regular file", path, hint)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)  # bounded: /dev/zero is no config either
    except OSError as err:
        raise ConfigError(
            f"cannot read ({err.strerror})", path, "check the --config path"
        ) from None
    if b"\x00" in data or len(data) > MAX_CONFIG_BYTES:
        raise ConfigError("is not a YAML config (binary, or over 1 MB)", path, hint)
    values: dict[str, tuple[Any, int]] = {}
    try:
        loader = _Loader(data.decode("utf-8"))
        node = loader.get_single_node()
        if node is not None and not isinstance(node, yaml.MappingNode):
            raise ConfigError("a config is a mapping of sections such as `trainer:`", path, hint)
        if node is not None:  # None: empty, or only comments (the defaults)
            _flatten(loader, node, "", path, values)
    except UnicodeDecodeError:
        raise ConfigError("is not valid UTF-8 text", path, "save it as UTF-8") from None
    except yaml.MarkedYAMLError as err:  # a syntax error, or a tag such as !!python/object
        mark = err.problem_mark or err.context_mark
        line = f"{path}:{mark.line + 1}" if mark else path
        problem = err.problem or err.context or "invalid YAML"
        raise ConfigError(
            f"not valid YAML: {problem}", line, "check the indentation and quotes"
        ) from None
    return values


def _flatten(
    loader: yaml.Loader, node: yaml.MappingNode, prefix: str, path: str, out: dict
) -> None:
    for key_node, value_node in node.value:
        key = f"{prefix}{key_node.value}"
        line = key_node.start_mark.line + 1
        if key in out or any(known.startswith(key + ".") for known in out):
            raise ConfigError(
                "is written twice", f"{path}:{line}: {key}", "remove one; YAML keeps only the last"
            )
        if isinstance(value_node, yaml.MappingNode) and value_node.value:
            _flatten(loader, value_node, key + ".", path, out)
        else:
            value = loader.construct_object(value_node, deep=True)
            text = value_node.value if isinstance(value_node, yaml.ScalarNode) else ""
            if isinstance(value, int) and not value_node.style and re.match(r"[-+]?0\d|.*:", text):
                # YAML 1.1: a leading zero is octal (010 is 8), colons are base 60 (1:30 is 90)
                raise ConfigError(
                    f"{text} would be read as {value} (YAML 1.1 octal or base 60)",
                    f"{path}:{line}: {key}",
                    "write the number without a leading zero or colons, or quote it if it is text",
                )
            out[key] = (value, line)


def expected(annotation: Any) -> str:
    """What a field of this type takes, in words: `> 0 and <= 10`, `one of: min, max`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of: " + ", ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return ", or ".join(expected(arg) for arg in args if arg is not type(None)) + ", or null"
    if origin in (list, tuple):
        size = f"{len(args)} " if origin is tuple else ""
        return f"a list of {size}values, each {expected(args[0])}"
    bounds = _bounds(getattr(annotation, "_expression", ""))
    kind = {bool: "true or false", int: "a whole number", float: "a number"}
    for base, words in kind.items():
        if isinstance(annotation, type) and issubclass(annotation, base):
            return f"{words} {bounds}".strip()
    return "text" if annotation is str else "text that is not empty"


def _bounds(expression: str) -> str:
    """jsonargparse's restriction `v>0 and v<=10` as `> 0 and <= 10`."""
    return re.sub(r"v([<>]=?)", r"\1 ", expression)


def explain(message: str, origins: Origins, fields: dict[str, Any]) -> ConfigError:
    """jsonargparse's error ('Parser key "trainer.max_epochs": Not of type PositiveInt: 0
    does not conform to restriction v>0') as a ConfigError that names where the key was set,
    with the value its field takes (`fields`: dotted key -> type) as the hint."""
    found = re.search(r'Parser key "([^"]+)":\s*(.*)', message, re.S)
    if found is None:
        return ConfigError(" ".join(message.split()), hint="see --help")
    key, problem = found.group(1), " ".join(found.group(2).split())
    takes = expected(fields[key]) if key in fields else "another value"
    patterns = (
        r"Given value: (\S+)",
        r"Got value: (.+)",
        r"base 10: (.+)",
        r"(\S+) does not conform",
    )
    given = next((found.group(1) for p in patterns if (found := re.search(p, problem))), None)
    given = "null" if given is None and "NoneType" in problem else given
    bounds = re.search(r"restriction (v\S+( and v\S+)*)", problem)
    if bounds and given:
        problem = f"must be {_bounds(bounds.group(1))}, got {given}"
    elif "regular expression" in problem:
        problem = "must not be empty"
    elif given:
        problem = f"expected {takes}, got {given}"
    return ConfigError(problem, where(origins, key), f"{key} takes {takes}")


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


# Not config values: the parameters, the section's own fields, tensors, and the reduction the
# loops rely on (a mean over the batch).
NOT_ARGUMENTS = {
    "params",
    "lr",
    "weight_decay",
    "weight",
    "pos_weight",
    "size_average",
    "reduce",
    "reduction",
}


def check_class_arguments(
    section: str, cls: type, args: dict[str, Any], limits: dict[str, Any], origins: Origins
) -> None:
    """`args` against the signature of `cls` (optimizer.args: SGD's), checked by jsonargparse
    with the types its annotations give; `limits`: stricter types for some names."""
    from jsonargparse import ArgumentError, ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(
        cls, skip=NOT_ARGUMENTS | set(limits), fail_untyped=False, sub_configs=False
    )
    takes = {name: arg.annotation for name, arg in inspect.signature(cls).parameters.items()}
    for name, kind in limits.items():
        if name in takes:
            parser.add_argument(f"--{name}", type=kind)
    names = sorted(parser.get_defaults().keys())
    for name in args:
        if name not in names:
            raise ConfigError(
                f"is not an argument of {cls.__name__}" + ("" if names else ", which takes none"),
                where(origins, f"{section}.{name}"),
                did_you_mean(name, names) if names else f"remove it, or choose another {section}",
            )
    try:
        parser.parse_object(json.loads(json.dumps(args)))  # a copy: it converts in place
    except ArgumentError as err:
        message = str(err).replace('Parser key "', f'Parser key "{section}.')
        types = {f"{section}.{name}": limits.get(name, kind) for name, kind in takes.items()}
        raise explain(message, origins, types) from None
