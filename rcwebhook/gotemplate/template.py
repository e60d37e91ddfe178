"""Go's text/template in pure Python: the library's front (Template, Func, the errors).

Nothing in a template is ever evaluated as Python: a template is parsed into nodes (lexer, parse,
nodes); the walker (exec) runs them as Go does and is the specification; codegen turns each tree into a
Python function that gives the walker's output, deferring to the walker where it cannot decide. Only
the functions given to a template set are called (Go's built-ins and those of the caller). Parse and
execution errors carry Go's own wording ("template: NAME:LINE: ..." and "template: NAME:LINE:COL:
executing ..."), and every execution is bounded in steps, depth, output size and CPU time.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional, Tuple

from . import regexp as goregexp
from . import values as gv
from .builtins import BUILTINS
from .errors import BudgetError, ExecError, LimitError, ParseError, TemplateError
from .funcs import MAX_VALUE, Func, GoError, bounded
from .exec import MAX_DEPTH, MAX_OUTPUT, MAX_STEPS, _State
from .parse import Tree, _Parser, is_empty_tree

__all__ = ["BUILTINS", "MAX_DEPTH", "MAX_OUTPUT", "MAX_STEPS", "MAX_VALUE", "BudgetError", "ExecError", "Func",
           "GoError", "LimitError", "ParseError", "Template", "TemplateError", "bounded"]

# The Go release whose text/template is followed, by compat level (the Go that built that Alertmanager).
GO_VERSIONS = {"0.25": (1, 19)}
DEFAULT_GO = (1, 24)


class Template:
    """A set of named templates parsed together (Go's *template.Template and its associates).

    `go_version` is the Go release whose template syntax is parsed: from 1.20 an unmatched right paren
    is Go's later error, from 1.23 {{else with}} is known. By default, that of the compat level."""

    def __init__(self, funcs: Dict[str, Func], compat: str = "0.28",
                 go_version: Optional[Tuple[int, int]] = None) -> None:
        self.funcs = dict(funcs)
        self.trees: Dict[str, Tree] = {}
        self.compat = compat
        self.go_version = go_version or GO_VERSIONS.get(compat, DEFAULT_GO)
        self.local = gv.Location("UTC", None, True)  # Go's time.Local, for times' .Local

    def parse(self, name: str, text: str) -> None:
        """Parse `text` as template `name` (its defines join the set); raise ParseError."""
        tree_set: Dict[str, Tree] = {}
        parser = _Parser(name, text, self.funcs, tree_set, self.go_version)
        try:
            parser.parse()
        except RecursionError:
            raise ParseError(f"template: {name}:1: template nested too deeply", name, 1, 0) from None
        for tname, tree in tree_set.items():  # Go's associate: an empty tree never replaces a full one
            old = self.trees.get(tname)
            if old is not None and is_empty_tree(tree.root) and old.root is not None:
                continue
            self.trees[tname] = tree

    def compile(self, tree: Tree) -> Callable[[Any, Any], None]:
        """Return what runs `tree` (a tree of this set with a root), generated on first use and kept."""
        if tree.compiled is None:
            from . import codegen  # the generator loads with the first template that runs
            tree.compiled = codegen.compile_tree(tree, self)
        return tree.compiled

    def execute(self, name: str, data: Any, max_steps: int = MAX_STEPS, max_output: int = MAX_OUTPUT,
                cpu_deadline: Optional[float] = None) -> str:
        """Return the output of template `name` for `data`; raise ExecError. `cpu_deadline` is a time on
        the time.thread_time() clock: past it, the execution stops with BudgetError."""
        tree = self.trees.get(name)
        if tree is None or tree.root is None:
            raise ExecError(f"template: {name}: {gv.go_quote(name)} is an incomplete or empty template", name)
        if cpu_deadline is None:
            return self._execute(name, tree, data, max_steps, max_output, None)
        # A single regular expression can run long inside one step: the matcher checks the budget too.
        def check(steps: int) -> None:
            if time.thread_time() > cpu_deadline:
                raise BudgetError(f"template: {name}: a regular expression was stopped after {steps} steps: "
                                  "its CPU-time budget is used up", name)
        with goregexp.checking(check):
            return self._execute(name, tree, data, max_steps, max_output, cpu_deadline)

    def _execute(self, name: str, tree: Tree, data: Any, max_steps: int, max_output: int,
                 cpu_deadline: Optional[float]) -> str:
        st = _State(self, tree, data, max_steps, max_output, cpu_deadline)
        try:
            (tree.compiled or self.compile(tree))(st, data)
            return "".join(st.out)
        except BudgetError:
            raise
        except Exception:  # noqa: BLE001 - any failure: the walker runs it again and says why, in Go's words
            pass
        st = _State(self, tree, data, max_steps, max_output, cpu_deadline)
        try:
            st.walk(data, tree.root)
        except RecursionError:
            raise LimitError(f"template: {name}: exceeded maximum template depth", name) from None
        return "".join(st.out)
