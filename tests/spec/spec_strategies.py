"""Hypothesis strategies drawn from the spec schema, for property tests anywhere.

- `valid_specs()`: plain dicts (ready for yaml.safe_dump) whose every field is drawn from
  the schema's own types, ranges and choices, then made consistent with the cross-field
  rules; `load_spec_text(dump(d))` always succeeds.
- `invalid_cases()`: (dotted path, bad value, index of the bad list item or None) for any
  field: wrong types, out-of-range numbers, unknown choices, bad list lengths.

Import from a test in this folder with `from spec_strategies import valid_specs` (pytest
puts the folder of a test module on sys.path).
"""

from __future__ import annotations

import keyword
import math
import string

import yaml
from hypothesis import strategies as st

from torch_scaffold.spec import Spec
from torch_scaffold.spec.derived import (
    IMAGE_SOURCES,
    METRIC_MODES,
    MODEL_KINDS,
    TASK_DEFAULTS,
    TOKEN_SOURCES,
    TOKEN_TASKS,
    allowed_metrics,
    task_kind,
    tasks_for_loss,
    tasks_for_model,
)
from torch_scaffold.spec.introspect import FieldInfo, walk
from torch_scaffold.spec.names import dependency_clash
from torch_scaffold.spec.schema import LOSSES, MODELS

LEAVES = [(path, info) for path, info in walk(Spec) if info.kind != "section"]
SECTIONS = [path for path, info in walk(Spec) if info.kind == "section"]
WORDS = st.text(string.ascii_letters, min_size=1, max_size=12).filter(
    lambda w: _yaml_kind(w) == "str"
)


def _yaml_kind(text: str) -> str:
    """What PyYAML reads a plain `text` as (so 'yes' is a boolean, '1e3' text)."""
    node = yaml.compose(f"k: {text}", Loader=yaml.SafeLoader)
    return node.value[0][1].tag.rsplit(":", 1)[-1]


def put(data: dict, path: str, value) -> dict:
    *sections, leaf = path.split(".")
    target = data
    for part in sections:
        target = target.setdefault(part, {})
    target[leaf] = value
    return data


def flow(value) -> str:
    """A value as YAML for `--set KEY=VALUE` (JSON would turn inf into the text Infinity)."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
    return text.removesuffix("\n...\n").removesuffix("\n")


def dump(data: dict) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=10**6)


def _low(info: FieldInfo):
    """Numbers below the range (or at an exclusive minimum)."""
    if info.min is None:
        return None
    kind = info.item if info.kind == "list" else info.kind
    if kind == "int":
        return st.integers(max_value=int(info.min) - 1, min_value=int(info.min) - 10**9)
    below = st.floats(max_value=info.min, min_value=-1e9)
    return below.filter(lambda x: x < info.min or (info.exclusive_min and x == info.min))


def _high(info: FieldInfo):
    if info.max is None:
        return None
    kind = info.item if info.kind == "list" else info.kind
    if kind == "int":
        return st.integers(min_value=int(info.max) + 1, max_value=int(info.max) + 10**15)
    above = st.floats(min_value=info.max, max_value=1e300)
    return above.filter(lambda x: x > info.max or (info.exclusive_max and x == info.max))


def _wrong_scalar(kind: str, info: FieldInfo):
    """Values of the wrong type, or the right type but out of range / not a choice."""
    options = []
    lists = st.lists(st.integers(), min_size=1, max_size=3)
    maps = st.dictionaries(WORDS, st.integers(), min_size=1, max_size=2)
    if kind == "bool":
        options += [st.integers(), st.floats(allow_nan=False), WORDS, lists, maps]
    if kind == "int":
        fractional = st.floats(allow_nan=False, allow_infinity=False).filter(
            lambda x: not x.is_integer()
        )
        options += [st.booleans(), fractional, WORDS, lists, maps]
    if kind == "float":
        options += [st.booleans(), WORDS, lists, maps, st.sampled_from([math.inf, -math.inf])]
    if kind == "str":
        options += [st.booleans(), lists, maps, st.floats(allow_nan=False)]
        if info.choices:
            options.append(WORDS.filter(lambda w: w not in info.choices))
            options.append(st.integers().filter(lambda n: str(n) not in info.choices))
        else:
            options.append(st.integers())
        if info.max_length:
            options.append(
                st.text("abc", min_size=info.max_length + 1, max_size=info.max_length + 5)
            )
        if info.min_length:
            options.append(st.just(""))
        if not info.multiline and not info.choices:
            control = st.sampled_from(["\n", "\t", "\r", "\x00", "\x1b", "\x7f"])
            options.append(st.tuples(WORDS, control).map("".join))
    if kind == "map":  # not a mapping, or a key that is not a Python name
        bad_key = st.sampled_from(["1st", "with space", "class", "a-b"])
        options += [
            WORDS,
            lists,
            st.integers(),
            st.dictionaries(bad_key, st.integers(), min_size=1),
        ]
    if kind in ("int", "float"):  # integers beyond any float, or long digit strings
        options.append(st.integers(10**20, 10**400) | st.integers(-(10**400), -(10**20)))
    for bound in (_low(info), _high(info)):
        if bound is not None and kind in ("int", "float"):
            options.append(bound)
    return st.one_of(options)


def _invalid_value(info: FieldInfo):
    """(value, index of the one bad item of a list, or None)."""
    if info.kind != "list":
        return st.tuples(_wrong_scalar(info.kind, info), st.none())
    good_item = _valid_scalar(info.item, info)
    # a list is valid where a list is expected, so whole-value mistakes are non-lists
    not_a_list = _wrong_scalar(info.item, info).filter(lambda v: not isinstance(v, list))
    one_bad_item = st.tuples(st.lists(good_item, max_size=2), _wrong_scalar(info.item, info))
    options = [
        st.tuples(not_a_list, st.none()),
        one_bad_item.map(lambda t: (t[0] + [t[1]], len(t[0]))),
    ]
    if info.min_items:
        options.append(st.tuples(st.lists(good_item, max_size=info.min_items - 1), st.none()))
    if info.max_items and info.max_items <= 100:
        too_many = st.lists(good_item, min_size=info.max_items + 1, max_size=info.max_items + 3)
        options.append(st.tuples(too_many, st.none()))
    return st.one_of(options)


@st.composite
def invalid_cases(draw):
    path, info = draw(st.sampled_from(LEAVES))
    value, index = draw(_invalid_value(info))
    return path, value, index


def _valid_scalar(kind: str, info: FieldInfo, upper: float | None = None):
    if kind == "bool":
        return st.booleans()
    if kind == "int":
        low = int(info.min) if info.min is not None else -(10**6)
        high = int(info.max) if info.max is not None else 10**6
        return st.integers(low, min(high, upper if upper is not None else high))
    if kind == "float":
        return st.floats(
            min_value=info.min if info.min is not None else -1e6,
            max_value=min(info.max if info.max is not None else 1e6, upper or math.inf),
            exclude_min=info.exclusive_min,
            exclude_max=info.exclusive_max,
            allow_nan=False,
        )
    if info.choices:
        return st.sampled_from(info.choices)
    return st.text(
        string.ascii_letters
        + string.digits
        + " _-'\"\\{}%#:é网"
        + ("\n" if info.multiline else ""),
        min_size=1,
        max_size=min(info.max_length or 30, 30),
    ).filter(lambda s: s.strip() and any(c.isascii() and c.isalnum() for c in s))


def _valid(info: FieldInfo):
    if info.kind == "map":
        names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(
            lambda k: not keyword.iskeyword(k)
        )
        plain = st.integers(-1000, 1000) | st.booleans() | WORDS
        return st.dictionaries(names, plain | st.lists(plain, max_size=3), max_size=3)
    if info.kind == "list":
        items = _valid_scalar(info.item, info)
        unique = info.choices is not None or info.item == "str"
        top = min(info.max_items or 5, 5)
        return st.lists(items, min_size=info.min_items or 0, max_size=top, unique=unique)
    return _valid_scalar(info.kind, info)


@st.composite
def valid_specs(draw) -> dict:
    """A spec with every field drawn from the schema, made consistent with the rules."""
    data: dict = {}
    for path, info in LEAVES:
        value = draw(_valid(info))
        if info.optional and draw(st.booleans()):
            value = None
        put(data, path, value)
    task = data["task"]
    data["loss"] = draw(
        st.sampled_from(["auto"] + [k for k in LOSSES[1:] if task in tasks_for_loss(k)])
    )
    task_metrics = list(allowed_metrics(task))
    data["metrics"] = draw(
        st.none() | st.lists(st.sampled_from(task_metrics), min_size=1, unique=True)
    )
    model, d = data["model"], data["data"]
    model["type"] = draw(st.sampled_from([m for m in MODELS if task in tasks_for_model(m)]))
    kind = task_kind(task)
    if kind == "language_modelling":
        model["bidirectional"] = False
        model["causal"] = draw(st.sampled_from([None, True]))
    if model["embedding_dim"] % model["num_heads"]:
        model["embedding_dim"] = model["num_heads"] * draw(st.integers(1, 16))
    if d["source"] in TOKEN_SOURCES:  # text needs a sequence model and language modelling
        if kind != "language_modelling" or model["type"] not in ("rnn", "transformer"):
            d["source"] = "synthetic"
    elif kind not in ("multiclass", "regression"):
        d["source"] = "synthetic"  # files hold class labels or values (issue 2's tasks)
    if model["type"] in ("cnn", "resnet"):
        if d["source"] not in ("synthetic", "npz"):
            d["source"] = draw(st.sampled_from(["synthetic", "npz"]))
        blocks = len(model["channels"]) - (model["type"] == "resnet")
        side = 2**blocks
        d["input_shape"] = (
            draw(
                st.none()
                | st.tuples(
                    st.integers(1, 4), st.integers(side, side + 40), st.integers(side, side + 40)
                ).map(list)
            )
            if side <= 16
            else [1, side, side]
        )
    elif kind in TOKEN_TASKS:
        d["input_shape"] = None
    elif d["input_shape"] is not None:
        rank = 2 if model["type"] in ("rnn", "transformer") else 1
        d["input_shape"] = (d["input_shape"] * 2)[:rank]
    model["source"], model["args"] = None, {}  # custom models only, tested with real files
    if model["type"] == "custom":
        model["type"] = "mlp" if kind in MODEL_KINDS["mlp"] else "rnn"  # needs a real file
        model["bidirectional"] = model["bidirectional"] and kind != "language_modelling"
        if model["type"] == "mlp" and d["input_shape"] is not None:
            d["input_shape"] = d["input_shape"][:1]
    if d["source"] in IMAGE_SOURCES and task == "regression":  # images come with class labels
        d["source"] = "npz"
    if d["source"] in IMAGE_SOURCES and model["type"] != "mlp":  # only mlp/cnn/resnet read images
        d["source"] = "npz"  # (cnn and resnet were given synthetic or npz above)
    if d["source"] in IMAGE_SOURCES:  # an mlp flattens images
        d["input_shape"] = draw(
            st.none()
            | st.tuples(st.sampled_from([1, 3]), st.integers(1, 64), st.integers(1, 64)).map(list)
        )
    if d["image_mean"] is None or d["image_std"] is None:  # from the training split: both
        d["image_mean"] = d["image_std"] = None
    else:
        d["image_mean"], d["image_std"] = d["image_mean"][:1], d["image_std"][:1]
    if d["source"] != "synthetic" and d["path"] is None:
        d["path"] = "data/file." + d["source"]
    if d["source"] == "npy" and d["targets_path"] is None:
        d["targets_path"] = "data/targets.npy"
    if d["features"] is not None:
        d["features"] = [f for f in d["features"] if f != d["target"]][:1] or None
    if d["source"] not in ("csv", "npz", "npy"):  # the scaler options are for arrays and tables
        d["normalize"], d["missing"] = "standard", "error"
    if d["source"] not in IMAGE_SOURCES:  # augmentation transforms images
        d["augment"] = False
    classes = kind in ("binary", "multiclass", "multilabel", "sequence_classification")
    if not classes or data["loss"] not in ("auto", "cross_entropy", "bce_with_logits"):
        d["class_weights"] = "none"
    d["num_samples"] = max(d["num_samples"], 200)
    d["val_split"] = draw(st.floats(0.01, 0.44))
    d["test_split"] = draw(st.sampled_from([0.0, 0.1, 0.3]))
    metrics = data["metrics"] or TASK_DEFAULTS[task_kind(task)][1]
    for section in ("early_stopping", "checkpoint"):
        monitor = draw(st.sampled_from(["loss"] + list(metrics)))
        data["trainer"][section]["monitor"] = f"val_{monitor}"
        data["trainer"][section]["mode"] = METRIC_MODES[monitor]
    trainer = data["trainer"]
    if trainer["precision"] == "16-mixed" and trainer["accelerator"] == "cpu":
        trainer["accelerator"] = "cuda"
    if trainer["activation_checkpointing"]:
        trainer["strategy"] = "fsdp"  # an FSDP option
    if trainer["strategy"] == "fsdp" and trainer["accelerator"] == "cpu":
        trainer["accelerator"] = "cuda"  # Lightning's FSDP needs GPUs
    if trainer["accelerator"] == "mps":
        trainer["devices"] = 1
        trainer["num_nodes"] = 1
    data["scheduler"]["eta_min"] = data["optimizer"]["lr"] / 2
    data["scheduler"]["monitor"], data["scheduler"]["mode"] = "val_loss", "min"
    data["scheduler"]["milestones"] = sorted(set(data["scheduler"]["milestones"]))
    data["scheduler"]["warmup_steps"] = 1
    if data["scheduler"]["name"] == "warmup_cosine" and trainer["max_epochs"] == 1:
        trainer["max_epochs"] = 2  # at least 2 optimizer steps, so 1 warm-up step is shorter
    if data["scheduler"]["name"] == "plateau" and data["scheduler"]["gamma"] >= 1:
        data["scheduler"]["gamma"] = 0.5  # ReduceLROnPlateau needs a factor below 1
    optimizer = data["optimizer"]
    optimizer["nesterov"] = optimizer["nesterov"] and optimizer["name"] == "sgd"
    if optimizer["nesterov"]:
        optimizer["momentum"] = max(optimizer["momentum"], 0.5)
    if dependency_clash(data["name"]) is not None:  # `tqdm` would shadow a dependency
        data["name"] = ("my " + data["name"])[:100]
    return data
