"""Convert a manual PyTorch training script into a LightningModule + Trainer.

Public interface:
    convert_source(source: str, filename: str = "<stdin>", *, partial: bool = False) -> Conversion
        Pure. Raises errors.ScriptError for input that is not valid Python 3
        (message names filename:line). Never raises for unsupported constructs:
        they become REFUSED entries in the report (code=None unless partial=True,
        in which case code carries `# TODO(scaffold): ...` markers).
"""

from torch_scaffold.convert.result import Conversion, ReportEntry

__all__ = ["Conversion", "ReportEntry", "convert_source"]


def convert_source(source: str, filename: str = "<stdin>", *, partial: bool = False) -> Conversion:
    from torch_scaffold.convert.pipeline import convert

    return convert(source, filename, partial=partial)
