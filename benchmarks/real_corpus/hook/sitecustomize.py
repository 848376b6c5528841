"""Records the final weights of a run, for benchmarks/real_corpus.py (on PYTHONPATH, so Python
imports it at start-up; inert unless REAL_CORPUS_WEIGHTS names the file to write).

At exit it finds every nn.Module still alive and writes, per distinct parameter or buffer
tensor, its shape, sum, absolute sum and sum of squares. Module and attribute names differ
between a script and its Lightning conversion (`model.fc` vs `self.model.fc`), so the runner
compares these fingerprints as a multiset, grouped by shape.
"""
import atexit
import json
import os

_OUT = os.environ.get("REAL_CORPUS_WEIGHTS")


def _dump():
    import gc
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return
    gc.collect()  # models dropped along the way are not part of the result
    seen, rows = set(), []
    for obj in gc.get_objects():
        if not issubclass(type(obj), torch.nn.Module):  # type(): no lazy-module proxies
            continue
        tensors = [p for p in obj.parameters(recurse=False)] + [
            b for b in obj.buffers(recurse=False) if b.is_floating_point()]
        for t in tensors:
            if id(t) in seen:
                continue
            seen.add(id(t))
            d = t.detach().double().cpu()
            rows.append([list(d.shape), float(d.sum()), float(d.abs().sum()), float((d * d).sum())])
    with open(_OUT, "w") as f:
        json.dump(rows, f)


if _OUT:
    atexit.register(_dump)


class _NoPause:
    """Makes matplotlib.pyplot.pause return at once: under the Agg backend it only sleeps, and
    tutorials call it on every plotted step (seconds of nothing per run)."""

    def find_spec(self, name, path=None, target=None):
        if name != "matplotlib.pyplot":
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            module.pause = lambda interval=0: None

        spec.loader.exec_module = exec_and_patch
        return spec


if _OUT:
    import sys as _sys

    _sys.meta_path.insert(0, _NoPause())
