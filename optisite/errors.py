"""Exceptions for people: each user mistake is one line naming where and what to do.

The CLI maps every subclass of :class:`OptisiteError` to its message and its
``exit_code``; anything else is a bug in optisite and keeps its traceback.
"""

from __future__ import annotations

EXIT_INPUT = 2  # bad input, bad option, refused path, existing output
EXIT_INFEASIBLE = 3  # the settings admit no plan
EXIT_CHECK = 4  # the independent checker found a violation


class OptisiteError(Exception):
    """Base class of the errors a user can cause and fix."""

    exit_code = EXIT_INPUT


class InputError(OptisiteError):
    """A problem in an input file, located by file, row and column."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        fix: str | None = None,
    ):
        self.problem = problem
        self.file = file
        self.row = row
        self.column = column
        self.fix = fix
        super().__init__(self.message())

    def message(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        text = ", ".join(where)
        text = f"{text}: {self.problem}" if text else self.problem
        if self.fix:
            text = f"{text}. Fix: {self.fix}"
        # One line, whatever the data contained, and no control characters (a cell holding
        # a terminal escape sequence must not reach the user's terminal as one).
        text = " ".join(text.split())
        return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


class OutputExistsError(OptisiteError):
    """The output folder exists and --force was not given."""


class InfeasibleError(OptisiteError):
    """The settings admit no feasible plan; the message names the constraint."""

    exit_code = EXIT_INFEASIBLE


class CheckError(OptisiteError):
    """The independent checker found a violation or a disagreement."""

    exit_code = EXIT_CHECK

    def __init__(self, violations: list[str]):
        self.violations = list(violations)
        first = self.violations[0] if self.violations else "unknown violation"
        more = f" (and {len(self.violations) - 1} more)" if len(self.violations) > 1 else ""
        super().__init__(f"check failed: {first}{more}")
