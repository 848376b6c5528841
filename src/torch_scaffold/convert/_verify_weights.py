"""The model's weights for `scaffold convert --verify`: which tensors, saved by the original's
run, compared by the converted one's.

_verify_runner.py loads this file by path, in the interpreter that runs the user's script
(torch is there; scaffold may not be): standard library at import time, torch passed in.

Which tensors: every torch.optim optimizer the script makes is noted (Optimizer.__init__ is
wrapped). An optimizer's model is the smallest nn.Module holding all of its parameters, other
than a LightningModule (the converted script's wrapper, `self.model = model`), so both runs name
the same module; its state_dict (parameters, and buffers such as BatchNorm's running
statistics) is compared, in order. An optimizer whose parameters no single module holds adds
its parameters alone. The modules are looked up (gc) at the first loss after an optimizer is
made, while the script still holds them, and kept alive to the end of the run.
"""

from __future__ import annotations

import functools
import gc
import math

# |original - converted| <= ATOL + RTOL * |original|: the losses' tolerance (verify.py) too.
ATOL, RTOL = 1e-5, 1e-4


class Weights:
    def __init__(self, torch):
        self.torch = torch
        self.new: list = []  # optimizers made since the last lookup
        self.found: list[tuple[list, object]] = []  # (parameters, their module or None)

    def install(self) -> None:
        """Note every optimizer the script makes (its own class or Lightning's)."""
        optimizer = self.torch.optim.Optimizer
        init = optimizer.__init__

        @functools.wraps(init)
        def noted(opt, *args, **kwargs):
            init(opt, *args, **kwargs)
            self.new.append(opt)

        optimizer.__init__ = noted

    def look_up(self) -> None:
        """Find the module of each optimizer made since the last call (cheap when none was)."""
        if not self.new:
            return
        known = {tuple(map(id, params)) for params, _ in self.found}
        fresh = []  # an optimizer made again over the same parameters needs no lookup
        for opt in self.new:
            params = [p for group in opt.param_groups for p in group["params"]]
            if params and tuple(map(id, params)) not in known:
                known.add(tuple(map(id, params)))
                fresh.append(params)
        self.new.clear()
        if not fresh:
            return
        nn = self.torch.nn
        modules = [m for m in gc.get_objects() if isinstance(m, nn.Module) and not _is_lightning(m)]
        self.found += [(params, _owner(params, modules)) for params in fresh]

    def named(self) -> list[tuple[str, object]]:
        """The compared tensors, in order, each with the name the message gives it."""
        self.look_up()
        groups: list[tuple[str, list]] = []
        seen: set[int] = set()
        for params, owner in self.found:
            if owner is not None:
                if id(owner) not in seen:
                    seen.add(id(owner))
                    groups.append((type(owner).__name__, list(owner.state_dict().items())))
            else:
                groups.append(("optimizer", [(f"param {i}", p) for i, p in enumerate(params)]))
        several = len(groups) > 1
        return [
            (f"{label}.{name}" if several else name, tensor)
            for label, items in groups
            for name, tensor in items
        ]

    def save(self, path: str, save) -> dict:
        """Write the tensors for the other run (with torch's own save); the trace's entry."""
        named = self.named()
        if not named:
            return {"none": "the script made no torch.optim optimizer"}
        save(
            {
                "names": [name for name, _ in named],
                "tensors": [t.detach().cpu().clone() for _, t in named],
            },
            path,
        )
        return {"count": len(named)}

    def compare(self, path: str) -> dict:
        """Compare with the tensors the original's run saved; the trace's entry."""
        named = self.named()
        if not named:
            return {"none": "the converted script made no torch.optim optimizer"}
        theirs = self.torch.load(path, weights_only=True)
        names, expected = theirs["names"], theirs["tensors"]
        if len(expected) != len(named):
            return {
                "count": len(expected),
                "differs": f"the original's model has {len(expected)} tensors, the converted "
                f"one's {len(named)}",
            }
        exact = True
        for name, a, (_, b) in zip(names, expected, named):
            b = b.detach().cpu()
            problem = _difference(self.torch, a, b)
            if problem:
                return {"count": len(expected), "tensor": name, "why": problem}
            exact = exact and self.torch.equal(a, b)
        return {"count": len(expected), "exact": exact}


def _difference(torch, a, b) -> str | None:
    """What differs between the original's tensor a and the converted one's b, or None."""
    if a.shape != b.shape:
        return f"shape {tuple(a.shape)} vs {tuple(b.shape)}"
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} vs {b.dtype}"
    if not (a.is_floating_point() or a.is_complex()):
        return None if torch.equal(a, b) else "values differ"
    if torch.allclose(b, a, rtol=RTOL, atol=ATOL, equal_nan=True):
        return None
    gap = (b.double() - a.double()).abs().nan_to_num(math.inf).max().item()
    return f"largest difference {gap:.3g}"


def _is_lightning(module) -> bool:
    return any(cls.__name__ == "LightningModule" for cls in type(module).__mro__)


def _owner(params: list, modules: list):
    """The smallest module holding every one of `params` (the deeper one of equal size)."""
    wanted = {id(p) for p in params}
    best, best_size = None, math.inf
    for module in modules:
        held = {id(p) for p in module.parameters()}
        if not wanted <= held:
            continue
        deeper = best is not None and any(m is module for m in best.modules())
        if len(held) < best_size or (len(held) == best_size and deeper):
            best, best_size = module, len(held)
    return best
