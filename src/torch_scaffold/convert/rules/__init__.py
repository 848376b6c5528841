"""Conversion rules, one module per concern, applied in this order by the pipeline.

Each rule reads and edits the Context: the moved statements (plan.sections), the
Trainer flags and the report.
"""
