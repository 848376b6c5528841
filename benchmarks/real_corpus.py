"""The converter on real public training scripts: each run whole, original against converted.

    python benchmarks/real_corpus.py [--only ID ...] [--mirror-dir /work/.mirror]
                                     [--work /tmp/real_corpus] [--timeout 120] [--no-save]

The scripts are not in this repository: benchmarks/real_corpus/manifest.yaml names each one
(repository, commit, path) and the minimal prep that makes it run offline on one CPU in
seconds (arguments, text substitutions that shrink sizes, helper files from the same commit,
our shims). Each script is read from a local mirror of its repository
(`git --git-dir <mirror-dir>/<owner>+<name>/repo show <commit>:<path>`; `fetch` makes those),
a notebook becomes its code cells in order (IPython `%`/`!` lines commented out), and the
prep is applied in a scratch folder.

Then, per script: the original runs to its end under ../shared/tools/losstrace.py (every
back-propagated loss recorded; same seed for both runs), `scaffold convert` writes the
Lightning version, that runs the same way, and the two are compared: every loss and the
final weights (every live module's parameters and float buffers at exit, as a multiset of
fingerprints: hook/sitecustomize.py). Outcomes:

  same               converted, every loss and the final weights equal (1e-5 + 1e-4 x |value|)
  refused            scaffold convert exit 3
  silent-difference  converted (exit 0), the converted run ends normally, trains differently
  crash              converted (exit 0), the converted run fails or times out
  converter-error    scaffold convert failed in another way (exit 5, a traceback, ...)
  original-fails     the original does not run to its end with its prep: fix the prep

Counts are printed and saved as a section of benchmarks/results.md; every script's outcome
with its detail goes to benchmarks/real_corpus/outcomes.md. OMP_NUM_THREADS=1 throughout.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "real_corpus"
MANIFEST = CORPUS / "manifest.yaml"
SHIMS = CORPUS / "shims"
HOOK = CORPUS / "hook"
OUTCOMES = CORPUS / "outcomes.md"
RESULTS = HERE / "results.md"
# the project's shared tools sit beside the checkout (../shared), or at /work/shared
LOSSTRACE = next((p for p in (HERE.parents[1] / "shared" / "tools" / "losstrace.py",
                              Path("/work/shared/tools/losstrace.py")) if p.is_file()), None)
SECTION = "## Real corpus (benchmarks/real_corpus.py)"
OUTCOME_ORDER = ["same", "refused", "silent-difference", "crash", "converter-error", "original-fails"]
ATOL, RTOL = 1e-5, 1e-4
MAX_LOSSES = 10**9  # "whole run": losstrace stops a run only after this many losses


@dataclass
class Entry:
    id: str
    repo: str
    commit: str
    path: str
    args: list[str] = field(default_factory=list)
    sub: list[list[str]] = field(default_factory=list)  # [old, new]: each must occur
    files: list[str] = field(default_factory=list)  # helpers/data from the same commit
    shims: list[str] = field(default_factory=list)
    note: str = ""


class PrepError(Exception):
    pass


def load_manifest(path: Path) -> list[Entry]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = [Entry(**item) for item in data["scripts"]]
    ids = Counter(e.id for e in entries)
    dup = [i for i, n in ids.items() if n > 1]
    if dup:
        sys.exit(f"error: {path}: id: duplicated: {', '.join(dup)}")
    return entries


def git_dir(mirror_dir: Path, repo: str) -> Path:
    base = mirror_dir / repo.replace("/", "+") / "repo"
    return base / ".git" if (base / ".git").is_dir() else base


def git_show(gd: Path, commit: str, path: str) -> bytes:
    p = subprocess.run(["git", "--git-dir", str(gd), "show", f"{commit}:{path}"], capture_output=True)
    if p.returncode:
        raise PrepError(f"git show {commit[:10]}:{path}: {p.stderr.decode().strip()[:200]}")
    return p.stdout


def notebook_code(raw: bytes) -> str:
    """The code cells of a notebook in order, IPython-only lines commented out."""
    cells = json.loads(raw)["cells"]
    parts = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        src = cell["source"]
        src = "".join(src) if isinstance(src, list) else src
        if src.startswith("%%"):
            continue
        # IPython lines start at column 0; an indented `% (...)` continues a Python expression
        lines = [("# " + l if l.startswith(("%", "!")) else l) for l in src.splitlines()]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def prepare(e: Entry, mirror_dir: Path, work: Path) -> Path:
    """Writes the script (and its files) into `work`; returns the script's path there."""
    gd = git_dir(mirror_dir, e.repo)
    if not gd.is_dir():
        raise PrepError(f"no mirror at {gd} (fetch github:{e.repo})")
    for f in e.files:
        dest = work / f
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(git_show(gd, e.commit, f))
    raw = git_show(gd, e.commit, e.path)
    text = notebook_code(raw) if e.path.endswith(".ipynb") else raw.decode("utf-8")
    for old, new in e.sub:
        if old not in text:
            raise PrepError(f"substitution not found: {old!r}")
        text = text.replace(old, new)
    script = work / re.sub(r"\.ipynb$", ".py", e.path)
    # a file name that is not an identifier is fine for `python FILE`; spaces are not for us
    script = script.with_name(script.name.replace(" ", "_"))
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(text, encoding="utf-8")
    return script


def shim_path(e: Entry, work: Path) -> str:
    """PYTHONPATH: the weights hook, then only the shims this script needs."""
    d = work / "_shims"
    d.mkdir(exist_ok=True)
    for shim in e.shims:
        # "torchvision": the package shims/torchvision; "data_util=mnist_arrays": the module
        # shims/mnist_arrays.py under the name the script imports
        name, _, source = shim.partition("=")
        src = SHIMS / source if source else SHIMS / name
        src = src if src.exists() else src.with_suffix(".py")
        if not src.exists():
            raise PrepError(f"no shim named {source or name!r} in {SHIMS}")
        (d / (name + src.suffix)).symlink_to(src)
    return os.pathsep.join([str(HOOK), str(d)])


def sh(cmd, cwd, env, timeout):
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr, time.perf_counter() - t
    except subprocess.TimeoutExpired as ex:
        out = (ex.stdout or b"") + (ex.stderr or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        return 124, out + "\nTIMEOUT", time.perf_counter() - t


def last_line(text: str) -> str:
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    return lines[-1][:160] if lines else ""


def traced_run(python, losstrace, script: Path, args, tag, env, timeout):
    """Runs the script whole under losstrace; (losses or None, weights, rc, output, seconds)."""
    trace, weights = script.parent / f"_{tag}.json", script.parent / f"_{tag}_weights.json"
    for f in (trace, weights):
        f.unlink(missing_ok=True)
    run_env = dict(env, REAL_CORPUS_WEIGHTS=str(weights))
    cmd = [python, str(losstrace), "run", "--steps", str(MAX_LOSSES), "--seed", "0", "--out", str(trace),
           "--", script.name, *args]
    rc, out, dt = sh(cmd, script.parent, run_env, timeout)
    losses = json.loads(trace.read_text())["losses"] if trace.exists() else None
    w = json.loads(weights.read_text()) if weights.exists() else None
    return losses, w, rc, out, dt


def close(a: float, b: float) -> bool:
    return abs(a - b) <= ATOL + RTOL * abs(a)


def compare_losses(a: list[float], b: list[float]) -> str | None:
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} losses back-propagated"
    bad = next((i for i, (x, y) in enumerate(zip(a, b)) if not close(x, y)), None)
    return None if bad is None else f"loss {bad + 1} of {len(a)}: {a[bad]:.6g} vs {b[bad]:.6g}"


def compare_weights(a, b) -> str | None:
    def groups(rows):
        g: dict[str, list] = {}
        for shape, *stats in rows:
            g.setdefault(str(shape), []).append(stats)
        return {k: sorted(v) for k, v in g.items()}

    ga, gb = groups(a), groups(b)
    if sorted(ga) != sorted(gb) or any(len(ga[k]) != len(gb[k]) for k in ga):
        return f"different parameter sets ({len(a)} vs {len(b)} tensors)"
    for k in ga:
        for x, y in zip(ga[k], gb[k]):
            if not all(close(p, q) for p, q in zip(x, y)):
                return f"final weights differ (a {k} tensor: sum {x[0]:.6g} vs {y[0]:.6g})"
    return None


def run_one(e: Entry, a) -> tuple[str, str, float]:
    work = Path(a.work) / e.id
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.perf_counter()
    try:
        script = prepare(e, Path(a.mirror_dir), work)
        pythonpath = shim_path(e, work)
    except PrepError as ex:
        return "original-fails", f"prep: {ex}", 0.0
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", MPLBACKEND="Agg",
               PYTHONPATH=pythonpath, PYTHONHASHSEED="0")
    orig, ow, rc, out, dt_orig = traced_run(a.python, a.losstrace, script, e.args, "orig", env, a.timeout)
    if rc != 0 or not orig:
        why = "no loss back-propagated" if rc == 0 else f"rc={rc}: {last_line(out)}"
        return "original-fails", why, time.perf_counter() - t0
    converted = script.with_name(script.stem + "_lightning.py")
    rc, out, _ = sh([a.scaffold, "convert", script.name, "-o", converted.name], script.parent, env, 120)
    if rc == 3:
        # the report's "FILE:LINE: refused: why" lines
        reasons = [l.strip() for l in out.splitlines() if ": refused:" in l] or [last_line(out)]
        return "refused", "; ".join(reasons)[:300], time.perf_counter() - t0
    if rc != 0 or "Traceback (most recent call last)" in out or not converted.exists():
        return "converter-error", f"rc={rc}: {last_line(out)}", time.perf_counter() - t0
    conv, cw, rc, out, _ = traced_run(a.python, a.losstrace, converted, e.args, "conv", env, max(a.timeout, 3 * dt_orig + 30))
    if rc != 0:
        return "crash", f"rc={rc}: {last_line(out)}", time.perf_counter() - t0
    diff = compare_losses(orig, conv or [])
    if diff is None and ow is not None:
        diff = compare_weights(ow, cw or [])
    if diff:
        return "silent-difference", diff, time.perf_counter() - t0
    return "same", f"{len(orig)} losses and the final weights equal", time.perf_counter() - t0


def saved_outcomes() -> dict[str, tuple[str, str, float]]:
    """{id: (outcome, detail, 0)} from outcomes.md, as write_outcomes wrote it."""
    saved = {}
    if OUTCOMES.is_file():
        for line in OUTCOMES.read_text(encoding="utf-8").splitlines()[6:]:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
            if len(cells) == 5:
                saved[cells[0]] = (cells[3], cells[4].replace("\\|", "|"), 0.0)
    return saved


def write_outcomes(entries, results):
    lines = ["# Real corpus: per-script outcomes", "",
             "Written by `python benchmarks/real_corpus.py`; the manifest is `manifest.yaml`.", "",
             "| id | repository | path | outcome | detail |", "| --- | --- | --- | --- | --- |"]
    for e in entries:
        outcome, detail, _ = results[e.id]
        detail = detail.replace("|", "\\|")
        lines.append(f"| {e.id} | {e.repo}@{e.commit[:10]} | {e.path} | {outcome} | {detail} |")
    OUTCOMES.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_section(entries, counts):
    repos = len({e.repo for e in entries})
    table = [SECTION, "",
             "Real public training scripts (manifest: benchmarks/real_corpus/manifest.yaml), each run "
             "whole, original and `scaffold convert` output, losses and final weights compared; "
             "per-script outcomes in benchmarks/real_corpus/outcomes.md.", "",
             "| scripts | repositories | same | refused | silent-difference | crash | converter-error | original-fails |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |",
             f"| {len(entries)} | {repos} | " + " | ".join(str(counts.get(k, 0)) for k in OUTCOME_ORDER) + " |"]
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else ""
    # our section runs from its heading to the next heading (or the end)
    pattern = re.compile(re.escape(SECTION) + r".*?(?=\n## |\Z)", re.S)
    new = "\n".join(table) + "\n"
    text = pattern.sub(lambda _: new, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + new
    RESULTS.write_text(text, encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", help="ids to run (default: all); the others keep their saved outcome")
    ap.add_argument("--manifest", default=str(MANIFEST))
    ap.add_argument("--mirror-dir", default="/work/.mirror")
    ap.add_argument("--work", default="/tmp/real_corpus")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--scaffold", default=None, help="the CLI (default: scaffold beside --python)")
    ap.add_argument("--losstrace", default=str(LOSSTRACE), help="the shared tools' losstrace.py")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per original run")
    ap.add_argument("--jobs", type=int, default=1, help="scripts run at once")
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args()
    a.scaffold = a.scaffold or str(Path(a.python).parent / "scaffold")
    entries = load_manifest(Path(a.manifest))
    if a.only:
        entries = [e for e in entries if e.id in a.only]
    results = {}

    def one(e):
        results[e.id] = run_one(e, a)
        outcome, detail, dt = results[e.id]
        print(f"{e.id:<32} {outcome:<18} {dt:5.1f}s  {detail}", flush=True)

    # scripts are independent processes: --jobs 2 halves the wall time where two cores are free
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        list(pool.map(one, entries))
    counts = Counter(r[0] for r in results.values())
    print(f"scripts {len(entries)}, repositories {len({e.repo for e in entries})}; "
          + ", ".join(f"{k} {counts.get(k, 0)}" for k in OUTCOME_ORDER))
    if not a.no_save:
        # --only reruns some scripts: the others keep their saved outcome
        everything = load_manifest(Path(a.manifest))
        merged = {**saved_outcomes(), **results} if a.only else results
        missing = [e.id for e in everything if e.id not in merged]
        if missing:
            print(f"not saved: no outcome yet for {', '.join(missing)}")
            return 1
        write_outcomes(everything, merged)
        write_section(everything, Counter(merged[e.id][0] for e in everything))
    return 0


if __name__ == "__main__":
    sys.exit(main())
