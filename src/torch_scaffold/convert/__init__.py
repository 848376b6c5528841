"""Convert a manual PyTorch training script into a LightningModule + Trainer.

Public interface:
    convert_source(source, filename="<stdin>", *, partial=False, style=None) -> Conversion
        Pure. Raises errors.ScriptError for input that is not valid Python 3
        (message names filename:line), and for a script over convert.limits.MAX_LINES
        lines or MAX_BYTES bytes. Never raises for unsupported constructs:
        they become REFUSED entries in the report (code=None unless partial=True,
        in which case code carries `# TODO(scaffold): ...` markers). A bug of the
        converter becomes an INTERNAL entry (code=None), never a refusal.
        `style` (convert.style.Style) sets how the emitted code is formatted;
        style.find_style(path) reads it from the script's project.
"""

from torch_scaffold.convert.result import Conversion, ReportEntry

__all__ = ["Conversion", "ReportEntry", "convert_source"]


def convert_source(
    source: str, filename: str = "<stdin>", *, partial: bool = False, style=None
) -> Conversion:
    from torch_scaffold.convert.pipeline import convert

    return convert(source, filename, partial=partial, style=style)
