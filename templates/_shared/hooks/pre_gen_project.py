"""cookiecutter hook: refuse names the project could not work with, before anything is written.

The same checks `scaffold new` makes on the spec's name, for the names typed at the prompts.
"""

import importlib.util
import keyword
import re
import sys

slug = {{ cookiecutter.project_slug | pyrepr }}
package = {{ cookiecutter.package_name | pyrepr }}


def refuse(message, hint):
    print(f"error: {message}\nhint: {hint}", file=sys.stderr)
    sys.exit(1)


if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", slug):
    refuse(
        f"project_slug {slug!r} is not a folder name",
        "use letters, digits, '-', '_' and '.', e.g. my-project",
    )
if not package.isidentifier() or keyword.iskeyword(package) or not package.isascii():
    refuse(
        f"package_name {package!r} is not a Python package name",
        "use lowercase letters, digits and '_', starting with a letter, e.g. my_project",
    )
if importlib.util.find_spec(package) is not None:
    refuse(
        f"package_name {package!r} is the name of an installed module, which the project's"
        " package would hide (or be hidden by)",
        "pick another package_name",
    )
