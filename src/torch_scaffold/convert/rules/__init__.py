"""Conversion rules, one module per concern.

A module with `run(ctx)` is a pass: pipeline.PASSES lists the passes in the order they run.
A pass reads ctx.facts (read-only), fills ctx.plan (typed fields, declared in plan.py) and
notes its decisions in the report. Modules without `run` are helpers the passes call
(contexts, device, clipping), or refusals, which runs on the parsed script before any pass.
"""
