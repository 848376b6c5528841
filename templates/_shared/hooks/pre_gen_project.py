"""cookiecutter hook: refuse names and specs the project could not work with, before anything
is written (cookiecutter removes the project folder when this hook fails).

The same checks `scaffold new` makes on the spec's name, for the names typed at the prompts,
and `scaffold new`'s own checks (and error lines) on a spec other than the template's default.
"""

import importlib.util
import json
import keyword
import re
import sys

slug = {{ cookiecutter.project_slug | pyrepr }}
package = {{ cookiecutter.package_name | pyrepr }}
spec_json = {{ cookiecutter.spec | pyrepr }}
default_spec = {{ cookiecutter._project.spec | pyrepr }}


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


def check_spec(text):
    """The spec's problems as `scaffold new` reports them; None when it is usable."""
    try:
        if json.loads(text) == default_spec:
            return None  # the template's own spec: nothing to derive
    except ValueError:
        pass  # not JSON: the spec loader says where, as for a YAML file
    try:
        from torch_scaffold.errors import ScaffoldError
        from torch_scaffold.spec import load_spec_text
    except ImportError:
        return (
            "error: spec: a spec other than the template's default is derived by torch-scaffold,"
            " which is not installed\nhint: pip install torch-scaffold, or leave spec as it is"
        )
    try:
        load_spec_text(text, "the cookiecutter `spec` variable")
    except ScaffoldError as err:
        return err.render()
    return None


problems = check_spec(spec_json)
if problems:
    print(problems, file=sys.stderr)
    sys.exit(1)
