"""The loop's pieces become the first hook bodies: spelled in the names of the host (the
`self` of the user's class is HOST while code moves), the `with` blocks and progress bars
around the loop handled (rules/contexts.py)."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.plan import (
    BATCH_END,
    BEFORE_OPT,
    EPOCH_END,
    EPOCH_START,
    HOST,
    TRAIN_STEP,
)
from torch_scaffold.convert.rules import contexts
from torch_scaffold.convert.scope import rename


def run(ctx) -> None:
    raw, plan = ctx.raw, ctx.plan
    host = {"self": cst.Name(HOST)}
    sec = {
        TRAIN_STEP: [rename(s, host) for s in raw.loop_body],
        EPOCH_START: [rename(s, host) for s in raw.epoch_pre],
        EPOCH_END: [rename(s, host) for s in raw.epoch_post],
        "tail": [rename(s, host) for s in raw.closure_tail],
    }
    sec = contexts.strip(ctx, sec)
    plan.closure_tail = sec.pop("tail")
    # every hook the step pass fills, in the order the later passes meet them
    plan.sections = {
        TRAIN_STEP: sec[TRAIN_STEP],
        BEFORE_OPT: [],
        BATCH_END: [],
        EPOCH_START: sec[EPOCH_START],
        EPOCH_END: sec[EPOCH_END],
    }
