"""spec -> context -> {relative path: text} -> formatted -> written (all or nothing).

build_context(spec, style) -> dict        pure: what the templates see
render_project(spec, style) -> dict       pure: {posix path: text}, .py files black-formatted
write_project(files, target, force)       the only step that touches the disk
"""

from torch_scaffold.generate.context import STYLES, build_context
from torch_scaffold.generate.render import render_project
from torch_scaffold.generate.write import WriteResult, write_project

__all__ = ["STYLES", "WriteResult", "build_context", "render_project", "write_project"]
