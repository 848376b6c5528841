"""Device handling: Lightning moves the model and each batch, so `.to(device)` / `.cuda()`
inside the training step go, and the user's device variable becomes `self.device`."""

from __future__ import annotations

import libcst as cst

from torch_scaffold.convert.nodes import dotted, method_call


class DropMoves(cst.CSTTransformer):
    """`x.to(device)` -> `x`, `x.cuda()` -> `x` (training step: the batch is already there)."""

    def __init__(self, ctx, roles):
        self.ctx, self.roles = ctx, roles

    def leave_Call(self, original, updated):
        mc = method_call(updated)
        if mc is None:
            return updated
        receiver, meth = mc
        if meth == "cuda" and not updated.args:
            self.ctx.count_removed(".to(device)/.cuda() calls")
            return receiver
        if meth == "to" and updated.args:
            first = updated.args[0]
            if (
                (first.keyword is None or first.keyword.value == "device")
                and dotted(first.value) in self.roles.devices
                and all(
                    a.keyword is not None and a.keyword.value in ("non_blocking", "copy")
                    for a in updated.args[1:]
                )
            ):
                self.ctx.count_removed(".to(device)/.cuda() calls")
                return receiver
        return updated


class CudaToDevice(cst.CSTTransformer):
    """Outside the training step keep the move, but to Lightning's device."""

    def leave_Call(self, original, updated):
        mc = method_call(updated)
        if mc and mc[1] == "cuda" and not updated.args:
            return updated.with_changes(
                func=updated.func.with_changes(attr=cst.Name("to")),
                args=[cst.Arg(cst.parse_expression("self.device"))],
            )
        return updated
