"""What a template can call: a function with its Go signature (Func), the error it returns (GoError),
and the bound on the strings functions make (MAX_VALUE).

The lowest module of the template language: the executor, Go's built-ins and time methods and the
functions a template set is given all build on it. A function may offer the generator (codegen) a
faster form of a call: `with_literal_first(text)` gives, for a literal string first argument, a
callable of the other arguments (or None), as a regular expression compiled once; `pure = True` says
its value depends on its arguments only and is not changed by its callers, so that a call with
literal strings only is made once, when the template is compiled.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, List, Tuple

# characters of a string a function makes: without it a template could double a variable at every step
MAX_VALUE = 1_000_000


class Func:
    """A function a template can call: its Go parameter types (the last variadic when `variadic`)."""

    def __init__(self, fn: Callable[..., Any], params: Tuple[str, ...] = (), variadic: bool = False,
                 name: str = "") -> None:
        self.fn, self.params, self.variadic, self.name = fn, params, variadic, name
        self.wants_state = getattr(fn, "wants_state", False)  # called with the execution's state first

    def takes(self, num_in: int) -> bool:
        """Whether Go calls this function with `num_in` values."""
        return num_in >= len(self.params) - 1 if self.variadic else num_in == len(self.params)

    def types(self, num_in: int) -> List[str]:
        """The parameter type of each of `num_in` values passed (the variadic one repeated)."""
        return [self.params[min(i, len(self.params) - 1)] for i in range(num_in)]


class GoError(Exception):
    """An error a called function returns (Go's `error` result)."""


def with_state(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, marked to be called with the execution's state first (its template set, its limits)."""
    fn.wants_state = True  # type: ignore[attr-defined]
    return fn


def bounded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A function whose string result may be longer than its arguments, refusing one over MAX_VALUE
    (with what `fn` offers: wants_state, with_literal_first, pure)."""
    @functools.wraps(fn)
    def checked(*args: Any) -> Any:
        result = fn(*args)
        if isinstance(result, str) and len(result) > MAX_VALUE:
            raise GoError(f"result longer than {MAX_VALUE} characters")
        return result
    return checked
