"""Differential runner: a generated script against its `scaffold convert` output, whole runs.

Every run happens in THIS process (torch and Lightning are imported once; a fresh interpreter
per script would cost 6 s of imports each): the script runs as __main__ with fresh globals
(runpy), in its own empty working folder, with the random generators reset, and with
torch.Tensor.backward / torch.autograd.backward wrapped to record every back-propagated scalar
(as ../shared/tools/losstrace.py does) and torch.optim.Optimizer.__init__ wrapped to find the
parameters that were trained. A plain loop and a Lightning Trainer both end in
Tensor.backward, so their traces compare loss for loss.

Verdicts:
    same               every loss and every final weight equal within a tight tolerance
    refused            the converter refused (exit 3 in the CLI)
    silent-difference  converted, ran to the end, trained differently: the one unacceptable bug
    crash              the converted script failed where the original ran
    converter-error    the converter itself failed (exit 5), or said "already Lightning"
    invalid            the ORIGINAL failed or trained nothing: a bug of the generator
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import runpy
import signal
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field

OUTCOMES = ("same", "refused", "silent-difference", "crash", "converter-error", "invalid")
BUGS = ("silent-difference", "crash", "converter-error")
ATOL, RTOL = 1e-6, 1e-5
RUN_TIMEOUT_S = 60


@dataclass
class Trace:
    losses: list[float] = field(default_factory=list)
    weights: list = field(default_factory=list)  # final values of every optimized parameter
    error: str | None = None


@dataclass
class Verdict:
    seed: int
    outcome: str
    detail: str = ""


class _Recorder:
    """Patches torch once; `trace` is the run being recorded (None between runs)."""

    def __init__(self):
        import torch

        self.torch = torch
        self.trace: Trace | None = None
        self.optimizers: list = []
        tensor_backward = torch.Tensor.backward
        autograd_backward = torch.autograd.backward
        optimizer_init = torch.optim.Optimizer.__init__
        inside = []
        rec = self

        def record(t):
            if rec.trace is not None and isinstance(t, torch.Tensor) and t.numel() == 1:
                rec.trace.losses.append(float(t.detach().float()))

        def patched_tensor_backward(self, *a, **k):
            record(self)
            inside.append(1)
            try:
                return tensor_backward(self, *a, **k)
            finally:
                inside.pop()

        def patched_autograd_backward(tensors, *a, **k):
            if not inside and isinstance(tensors, torch.Tensor):
                record(tensors)
            return autograd_backward(tensors, *a, **k)

        def patched_init(self, *a, **k):
            optimizer_init(self, *a, **k)
            rec.optimizers.append(self)

        torch.Tensor.backward = patched_tensor_backward
        torch.autograd.backward = patched_autograd_backward
        torch.optim.Optimizer.__init__ = patched_init

    def final_weights(self):
        seen, params = set(), []
        for opt in self.optimizers:
            for group in opt.param_groups:
                for p in group["params"]:
                    if id(p) not in seen:
                        seen.add(id(p))
                        params.append(p)
        # two optimizers may be built in another order (configure_optimizers): order by shape,
        # creation order within a shape
        params.sort(key=lambda p: tuple(p.shape))
        return [p.detach().clone() for p in params]


_RECORDER: _Recorder | None = None


def _recorder() -> _Recorder:
    global _RECORDER
    if _RECORDER is None:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)
        import pytorch_lightning  # noqa: F401  (imported once, here, not in the first script's time)

        for name in ("lightning", "pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
            logging.getLogger(name).setLevel(logging.ERROR)
        _RECORDER = _Recorder()
    return _RECORDER


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def run_source(source: str, name: str = "script.py", timeout_s: int = RUN_TIMEOUT_S) -> Trace:
    """Run `source` as __main__ in a fresh temporary folder; return what it back-propagated."""
    import numpy
    import torch

    rec = _recorder()
    trace = Trace()
    old_cwd, old_argv, old_path = os.getcwd(), sys.argv, list(sys.path)
    with tempfile.TemporaryDirectory(prefix="convert-fuzz-") as tmp:
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(source)
        os.chdir(tmp)
        sys.argv = [path]
        sys.path.insert(0, tmp)
        random.seed(0)
        numpy.random.seed(0)
        torch.manual_seed(0)
        rec.trace, rec.optimizers = trace, []
        old_handler = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(timeout_s)
        sink = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                warnings.simplefilter("ignore")
                runpy.run_path(path, run_name="__main__")
        except _Timeout:
            trace.error = f"timeout after {timeout_s} s"
        except SystemExit as e:
            if e.code not in (None, 0):
                trace.error = f"SystemExit({e.code!r})"
        except Exception as e:  # noqa: BLE001 - the verdict records it
            tb = traceback.extract_tb(e.__traceback__)
            where = next((f"line {fr.lineno}" for fr in reversed(tb) if fr.filename == path), "")
            trace.error = f"{type(e).__name__}: {e} ({where})"
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old_handler)
            rec.trace = None
            trace.weights = rec.final_weights()
            rec.optimizers = []
            os.chdir(old_cwd)
            sys.argv, sys.path[:] = old_argv, old_path
    return trace


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= ATOL + RTOL * abs(a)


def compare(original: Trace, converted: Trace) -> str | None:
    """None when the runs trained the same; otherwise what differs, in one line."""
    a, b = original.losses, converted.losses
    if len(a) != len(b):
        return f"{len(a)} losses vs {len(b)}"
    for k, (x, y) in enumerate(zip(a, b)):
        if not _close(x, y):
            return f"loss {k}: {x:.6g} vs {y:.6g}"
    wa, wb = original.weights, converted.weights
    if [tuple(w.shape) for w in wa] != [tuple(w.shape) for w in wb]:
        return f"trained parameters differ: {len(wa)} tensors vs {len(wb)}"
    for k, (x, y) in enumerate(zip(wa, wb)):
        if (x - y).abs().gt(ATOL + RTOL * x.abs()).any():
            return f"final weights differ (parameter {k}, max diff {float((x - y).abs().max()):.3g})"
    return None


def check_source(source: str, seed: int = -1) -> Verdict:
    """Convert `source`, run both, give the verdict."""
    from torch_scaffold.convert import convert_source

    original = run_source(source, "original.py")
    if original.error or not original.losses:
        return Verdict(seed, "invalid", original.error or "the original back-propagated nothing")
    try:
        conversion = convert_source(source, f"fuzz_{seed}.py")
    except Exception as e:  # noqa: BLE001 - the converter's own failure is a verdict
        return Verdict(seed, "converter-error", f"{type(e).__name__}: {e}")
    if conversion.internal_errors or conversion.already_lightning:
        text = conversion.internal_errors[0].text if conversion.internal_errors else "already Lightning"
        return Verdict(seed, "converter-error", text)
    if conversion.refused:
        r = conversion.refusals[0]
        return Verdict(seed, "refused", f"line {r.line}: {r.text}")
    converted = run_source(conversion.code, "original_lightning.py")
    if converted.error and "do not fill whole windows" in converted.error:
        return Verdict(seed, "refused", f"at run time: {converted.error}")
    if converted.error:
        return Verdict(seed, "crash", converted.error)
    diff = compare(original, converted)
    return Verdict(seed, "silent-difference", diff) if diff else Verdict(seed, "same")


def check_seed(seed: int) -> Verdict:
    from .generate import script

    return check_source(script(seed), seed)
