"""User-facing errors and the exit codes they map to.

Every failure a user can cause is raised as a ScaffoldError subclass. The CLI
prints `error: <where>: <what>` plus an optional `hint: <fix>` line on stderr
and exits with `exit_code`. Nothing else in the package prints errors.

Exit codes (documented in the README):
    0  success
    1  `--check` found work to do
    2  bad input or usage (spec, script, paths, options)
    3  conversion refused (the script has constructs we cannot convert safely)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3


class ScaffoldError(Exception):
    """A problem the user can fix. `where` is a file, file:line, or field path."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def render(self) -> str:
        head = f"error: {self.where}: {self.message}" if self.where else f"error: {self.message}"
        return f"{head}\nhint: {self.hint}" if self.hint else head


class SpecError(ScaffoldError):
    """The model specification is malformed or inconsistent."""


class OutputError(ScaffoldError):
    """The output location cannot be written as asked."""


class ScriptError(ScaffoldError):
    """The script to convert cannot be read or parsed."""


class ConversionRefused(ScaffoldError):
    """The script uses constructs that cannot be converted safely."""

    exit_code = EXIT_REFUSED
