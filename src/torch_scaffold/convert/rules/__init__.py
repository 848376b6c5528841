"""Conversion rules, one module per concern.

A module with `run(ctx)` is a pass: pipeline.PASSES lists the passes in the order they run.
The others are helpers that the hooks pass applies to each hook body in its own order. Every
rule reads ctx.facts (read-only), fills ctx.plan (typed fields, declared in plan.py) and notes
its decisions in the report.
"""
