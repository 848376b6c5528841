"""Shared helpers for the converter tests: where things are, and whether the real core exists."""

from __future__ import annotations

import collections
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "convert"
EXAMPLES = REPO / "examples" / "scripts"
# CI checks out ../shared beside the repository (corpus + losstrace.py); SCAFFOLD_SHARED
# points elsewhere, e.g. from a git worktree.
SHARED = Path(os.environ.get("SCAFFOLD_SHARED", REPO.parent / "shared"))

# Outcomes of the mutation tests (converted / refused / rejected / ...), for the summary.
MUTATION_STATS: collections.Counter = collections.Counter()


def pytest_terminal_summary(terminalreporter):
    outcomes = ("converted", "refused", "rejected", "already-lightning")
    tried = sum(MUTATION_STATS[o] for o in outcomes)
    if not tried:
        return
    parts = ", ".join(f"{MUTATION_STATS[o]} {o}" for o in outcomes if MUTATION_STATS[o])
    kinds = ", ".join(
        f"{k.split(':', 1)[1]} {n}" for k, n in sorted(MUTATION_STATS.items()) if ":" in k
    )
    terminalreporter.write_line(f"converter mutations tried: {tried} ({parts}); applied: {kinds}")
