"""The errors of the template language: parse and execution errors carry Go's own wording."""

from __future__ import annotations


class TemplateError(Exception):
    """A parse or execution error; str() is Go's message, name/line/col locate it."""

    def __init__(self, message: str, name: str = "", line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.name, self.line, self.col = name, line, col


class ParseError(TemplateError):
    pass


class ExecError(TemplateError):
    pass


class LimitError(ExecError):
    pass


class BudgetError(LimitError):
    """The execution used up its CPU-time budget."""
