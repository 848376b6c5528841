"""User-facing errors and the exit codes they map to.

Every failure a user can cause is raised as a ScaffoldError subclass. The CLI
prints `error: <where>: <what>` plus an optional `hint: <fix>` line on stderr
and exits with `exit_code`. Nothing else in the package prints errors.

Exit codes (documented in the README):
    0  success
    1  `--check` found work to do; `update` left conflicts, or finds them still unresolved
    2  bad input or usage (spec, script, paths, options)
    3  conversion refused (the script has constructs we cannot convert safely)
    4  `convert --verify`: the converted script trains differently (a loss differs)
    5  internal converter error (a bug in scaffold, not a verdict on the script)
    6  `convert --verify` could not compare: the original failed, or a run timed out
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3
EXIT_MISMATCH = 4
EXIT_INTERNAL = 5
EXIT_UNVERIFIED = 6


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


class SpecErrors(SpecError):
    """Several independent problems in one spec, in file order.

    `message`, `where` and `hint` are the first problem's; `render` gives every problem's
    `error:` line and `hint:` line, one after the other.
    """

    def __init__(self, errors: list[SpecError]):
        if len(errors) < 2:
            raise ValueError("SpecErrors holds two or more errors; raise a single one as is")
        first = errors[0]
        super().__init__(first.message, where=first.where, hint=first.hint)
        self.errors = list(errors)

    def render(self) -> str:
        return "\n".join(err.render() for err in self.errors)


def each_error(err: SpecError) -> list[SpecError]:
    """The single errors in `err`: its list for SpecErrors, else itself."""
    return list(err.errors) if isinstance(err, SpecErrors) else [err]


def spec_errors(errors: list[SpecError]) -> SpecError:
    """One exception for `errors` (not empty): the error itself when there is one."""
    flat = [one for err in errors for one in each_error(err)]
    return flat[0] if len(flat) == 1 else SpecErrors(flat)


class OutputError(ScaffoldError):
    """The output location cannot be written as asked."""


class UnresolvedConflicts(ScaffoldError):
    """`scaffold update` while conflict markers of an earlier update remain."""

    exit_code = EXIT_CHECK_FAILED


class ScriptError(ScaffoldError):
    """The script to convert cannot be read or parsed."""


class ConversionRefused(ScaffoldError):
    """The script uses constructs that cannot be converted safely."""

    exit_code = EXIT_REFUSED


class VerifyMismatch(ScaffoldError):
    """`convert --verify`: the original and the converted script back-propagate different losses."""

    exit_code = EXIT_MISMATCH


class VerifyIncomplete(ScaffoldError):
    """`convert --verify` could not compare: the original failed, or a run timed out."""

    exit_code = EXIT_UNVERIFIED
