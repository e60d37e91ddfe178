"""What a template can call: a function with its Go signature (Func), the error it returns (GoError),
and the bound on the strings functions make (MAX_VALUE).

The lowest module of the template language: the executor, Go's time methods and the functions a
template set is given all build on it.
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

# characters of a string a function makes: without it a template could double a variable at every step
MAX_VALUE = 1_000_000


class Func:
    """A function a template can call: its Go parameter types (the last variadic when `variadic`)."""

    def __init__(self, fn: Callable[..., Any], params: Tuple[str, ...] = (), variadic: bool = False,
                 name: str = "") -> None:
        self.fn, self.params, self.variadic, self.name = fn, params, variadic, name
        self.wants_state = getattr(fn, "wants_state", False)  # called with the execution's state first


class GoError(Exception):
    """An error a called function returns (Go's `error` result)."""


def with_state(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, marked to be called with the execution's state first (its template set, its limits)."""
    fn.wants_state = True  # type: ignore[attr-defined]
    return fn


def bounded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A function whose string result may be longer than its arguments, refusing one over MAX_VALUE."""
    def checked(*args: Any) -> Any:
        result = fn(*args)
        if isinstance(result, str) and len(result) > MAX_VALUE:
            raise GoError(f"result longer than {MAX_VALUE} characters")
        return result
    checked.wants_state = getattr(fn, "wants_state", False)  # type: ignore[attr-defined]
    return checked
