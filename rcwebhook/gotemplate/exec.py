"""The tree walker: a parsed template run node by node, as Go's text/template executes it.

It is the specification of the language here: compiled code (codegen) gives its output or leaves the
execution to it, and every execution error is its own, in Go's words ("template: NAME:LINE:COL:
executing ..."). Every execution is bounded in steps, depth and output size.
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from . import values as gv
from .builtins import indirect, truth
from .values import Ptr
from .errors import BudgetError, ExecError, LimitError
from .funcs import Func, GoError
from .gotime import DURATION_METHODS, TIME_METHODS, Duration, GoTime
from .nodes import (ActionNode, BoolNode, BranchNode, BreakNode, ChainNode, CommandNode, ContinueNode,
                    DotNode, FieldNode, IdentifierNode, IfNode, ListNode, NilNode, Node, NumberNode, PipeNode,
                    RangeNode, StringNode, TemplateNode, TextNode, VariableNode, WithNode, _byte_col)

MAX_STEPS = 1_000_000
MAX_OUTPUT = 1_000_000  # characters
MAX_DEPTH = 100  # nested {{template}} calls; Go allows 100000, which no real template needs
# With a CPU-time budget, the executors read the thread's CPU time every CHECK_STEPS steps (reading it
# costs a system call; a step costs less): a step is bounded in work (MAX_VALUE), so a budget is
# overrun by at most CHECK_STEPS steps.
CHECK_STEPS = 64


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_MISSING = object()
FREE = (None, "value", "any")  # parameter types that take any value unchecked
_EXPECTED = {"bool": "bool", "int": "integer", "time.Duration": "integer", "float64": "float",
             "string": "string"}


def number_value(c: NumberNode) -> Any:
    """A number literal's value where it is printed or passed untyped (Go's idealConstant): complex,
    float when written as one, else int; _MISSING when none fits (an unsigned beyond int64)."""
    text = c.text
    is_hex_int = len(text) > 2 and text[0] == "0" and text[1] in "xX" and not any(x in text for x in "pP")
    if c.is_complex:
        return c.complex128
    if c.is_float and not is_hex_int and not text.startswith("'") and any(x in text for x in ".eEpP"):
        return c.float64
    if c.is_int:
        return c.int64
    return _MISSING


def literal_arg(n: Any, typ: Optional[str]) -> Any:
    """A literal argument's value for a parameter of type `typ`, as the walker's eval_arg makes it;
    _MISSING for anything else (not a literal, nil, or a literal the walker refuses for that type)."""
    kind = type(n)
    free = typ in FREE
    if kind is StringNode and (typ == "string" or free):
        return n.text
    if kind is BoolNode and (typ == "bool" or free):
        return n.value
    if kind is NumberNode:
        if typ in ("int", "time.Duration") and n.is_int:
            return n.int64 if typ == "int" else Duration(n.int64)
        if typ == "float64" and n.is_float:
            return n.float64
        if free:
            return number_value(n)
    return _MISSING


def range_items(v: Any, compat: str, ndecl: int) -> Any:
    """What `range` goes over, as (index, element) pairs, for `ndecl` declared variables; None for
    nothing (its else); GoError for what Go does not range over."""
    v = indirect(v)
    if isinstance(v, list):
        return enumerate(v) if v else None
    if isinstance(v, dict):
        return [(key, v[key]) for key in sorted(v)] if v else None
    if v is None:
        return None
    if type(v) is int and compat != "0.25":
        if ndecl > 1:
            raise GoError(f"can't use {v} to iterate over more than one variable")
        return zip(range(v), range(v)) if v > 0 else None  # counted as they run: never made ahead
    raise GoError(f"range can't iterate over {gv.format_v(v, compat)}")


class _State:
    __slots__ = ("tmpl", "tree", "vars", "node", "out", "size", "steps", "max_steps", "max_output", "depth", "compat",
                 "step_limit", "cpu_deadline")

    def __init__(self, tmpl: Template, tree: Optional[Tree], data: Any, max_steps: int, max_output: int,
                 cpu_deadline: Optional[float] = None) -> None:
        self.tmpl = tmpl
        self.tree = tree
        self.vars: List[List[Any]] = [["$", data]]
        self.node: Optional[Node] = None
        self.out: List[str] = []
        self.size = 0
        self.steps = 0
        # max_steps is where the executors next stop to check: the step limit, or before it the next
        # reading of the CPU time
        self.step_limit = max_steps
        self.cpu_deadline = cpu_deadline
        self.max_steps = max_steps if cpu_deadline is None else min(max_steps, CHECK_STEPS)
        self.max_output = max_output
        self.depth = 0
        self.compat = tmpl.compat

    # errors
    def errorf(self, msg: str) -> None:
        tree = self.tree
        name = tree.name if tree else ""
        if self.node is None or self.node.tree is None:
            raise ExecError(f"template: {name}: {msg}", name)
        ntree = self.node.tree
        line, col = _byte_col(ntree.text, self.node.pos)
        raise ExecError(f"template: {ntree.parse_name}:{line}:{col}: executing {gv.go_quote(name)} at "
                        f"<{self.node}>: {msg}", ntree.parse_name, line, col)

    def limit(self, msg: str) -> None:
        name = self.tree.name if self.tree else ""
        line = col = 0
        if self.node is not None and self.node.tree is not None:
            line, col = _byte_col(self.node.tree.text, self.node.pos)
        raise LimitError(f"template: {name}:{line}:{col}: {msg}", name, line, col)

    def over(self) -> None:
        """Stop at the step limit or past the CPU-time budget, else set the next check."""
        if self.steps > self.step_limit:
            self.limit(f"execution stopped after {self.step_limit} steps")
        self.max_steps = self.next_check(self.steps)

    def next_check(self, steps: int) -> int:
        """Return the step count of the next check; raise BudgetError past the CPU-time budget."""
        if self.cpu_deadline is not None:
            if time.thread_time() > self.cpu_deadline:
                name = self.tree.name if self.tree else ""
                raise BudgetError(f"template: {name}: execution stopped after {steps} steps: "
                                  "its CPU-time budget is used up", name)
            return min(self.step_limit, steps + CHECK_STEPS)
        return self.step_limit

    def write(self, s: str) -> None:
        self.size += len(s)
        if self.size > self.max_output:
            self.limit(f"output larger than {self.max_output} characters")
        self.out.append(s)

    # variables
    def var(self, name: str) -> List[Any]:
        """The [name, value] of the variable `name` in scope (the last declared of that name)."""
        for pair in reversed(self.vars):
            if pair[0] == name:
                return pair
        self.errorf(f"undefined variable: {name}")
        raise AssertionError

    # walking
    def walk(self, dot: Any, node: Node) -> None:
        self.node = node
        self.steps += 1
        if self.steps > self.max_steps:
            self.over()
        kind = type(node)
        if kind is TextNode:
            self.write(node.text)
            return
        if kind is ListNode:
            for n in node.nodes:
                self.walk(dot, n)
            return
        if isinstance(node, ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, val)
        elif isinstance(node, IfNode):
            self.walk_if_with(False, dot, node)
        elif isinstance(node, WithNode):
            self.walk_if_with(True, dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break()
        elif isinstance(node, ContinueNode):
            raise _Continue()
        else:
            self.errorf(f"unknown node: {node}")

    def walk_if_with(self, is_with: bool, dot: Any, node: BranchNode) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            if truth(val):
                self.walk(val if is_with else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, r: RangeNode) -> None:
        self.node = r
        mark0 = len(self.vars)
        try:
            val = self.eval_pipeline(dot, r.pipe)
            mark = len(self.vars)
            try:
                items = range_items(val, self.compat, len(r.pipe.decl))
            except GoError as exc:
                self.errorf(str(exc))
            try:
                if items is None and r.else_list is not None:
                    self.walk(dot, r.else_list)
                decl = r.pipe.decl  # $elem or $index, $elem: assigned, or the last declared
                if items and r.pipe.is_assign and self.compat != "0.25":
                    pairs = [self.var(v.ident[0]) for v in decl]
                else:  # the same variables every pass: the body's own are dropped after each
                    pairs = self.vars[mark - len(decl):mark]
                for index, elem in items or ():
                    for pair, value in zip(pairs, (index, elem)[2 - len(decl):]):
                        pair[1] = value
                    try:
                        self.walk(elem, r.list)
                    except _Continue:
                        pass
                    finally:
                        del self.vars[mark:]
            except _Break:  # as in Go, a break in the else list ends that list too
                return
        finally:
            del self.vars[mark0:]

    def walk_template(self, dot: Any, t: TemplateNode) -> None:
        self.node = t
        tree = self.tmpl.trees.get(t.name)
        if tree is None or tree.root is None:
            self.errorf(f"template {gv.go_quote(t.name)} not defined")
        if self.depth >= MAX_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_DEPTH})")
        dot = self.eval_pipeline(dot, t.pipe)
        saved = (self.tree, self.vars, self.depth)
        self.tree, self.vars, self.depth = tree, [["$", dot]], self.depth + 1
        try:
            self.walk(dot, tree.root)
        finally:
            self.tree, self.vars, self.depth = saved

    def eval_pipeline(self, dot: Any, pipe: Optional[PipeNode]) -> Any:
        if pipe is None:
            return None
        self.node = pipe
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.var(var.ident[0])[1] = value
            else:
                self.vars.append([var.ident[0], value])
        return value

    def not_a_function(self, args: List[Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        self.steps += 1
        if self.steps > self.max_steps:
            self.over()
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.node = first
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        self.errorf(f"can't evaluate command {gv.go_quote(str(first))}")

    def ideal_constant(self, c: NumberNode) -> Any:
        self.node = c
        value = number_value(c)
        if value is not _MISSING:
            return value
        if c.is_uint:
            self.errorf(f"{c.text} overflows int")
        return None

    def eval_chain(self, dot: Any, chain: ChainNode, args: List[Node], final: Any) -> Any:
        self.node = chain
        if isinstance(chain.node, NilNode):
            self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.field, args, final)

    def eval_variable(self, dot: Any, var: VariableNode, args: List[Node], final: Any) -> Any:
        self.node = var
        value = self.var(var.ident[0])[1]
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.ident[1:], args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: Node, ident: List[str], args: List[Node],
                         final: Any) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(dot, name, node, None, _MISSING, receiver)
        return self.eval_field(dot, ident[-1], node, args, final, receiver)

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: Optional[List[Node]],
                      final: Any) -> Any:
        self.node = node
        fn = self.tmpl.funcs.get(node.ident)
        if not isinstance(fn, Func):
            self.errorf(f"{gv.go_quote(node.ident)} is not a defined function")
        return self.eval_call(dot, fn, cmd, node.ident, args, final)

    def eval_field(self, dot: Any, name: str, node: Node, args: Optional[List[Node]], final: Any,
                   receiver: Any) -> Any:
        if receiver is None:
            return None
        method = _methods(receiver, self.compat).get(name)
        if method is None and isinstance(receiver, Ptr):
            method = _methods(receiver.elem, self.compat).get(name)
        if method is not None:
            return self.eval_call(dot, method, node, name, args, final, receiver=indirect(receiver))
        rv = indirect(receiver)
        has_args = (args is not None and len(args) > 1) or final is not _MISSING
        if isinstance(rv, gv.GoStruct):
            if name in rv.FIELDS:
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return rv.field(name)
        elif isinstance(rv, dict):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            return rv[name] if name in rv else getattr(rv, "ELEM_ZERO", None)
        self.errorf(f"can't evaluate field {name} in type {gv.type_name(receiver)}")

    def eval_call(self, dot: Any, fn: Func, node: Node, name: str, args: Optional[List[Node]], final: Any,
                  receiver: Any = _MISSING) -> Any:
        args = args[1:] if args is not None else []
        params = fn.params
        num_in = len(args) + (0 if final is _MISSING else 1)
        if not fn.takes(num_in):
            self.errorf(f"wrong number of args for {name}: want at least {len(params) - 1} got {len(args)}"
                        if fn.variadic else f"wrong number of args for {name}: want {len(params)} got {num_in}")
        if fn.name in ("and", "or"):
            v: Any = None
            for arg in args:
                v = self.eval_arg(dot, "value", arg)
                if truth(v) == (fn.name == "or"):
                    return v
            if final is not _MISSING:
                v = final
            return v
        types = fn.types(num_in)
        argv = [self.eval_arg(dot, t, a) for t, a in zip(types, args)]
        if final is not _MISSING:
            argv.append(self.validate_type(final, types[-1]))
        try:
            if receiver is not _MISSING:
                result = fn.fn(self, receiver, *argv) if fn.wants_state else fn.fn(receiver, *argv)
            else:
                result = fn.fn(self, *argv) if fn.wants_state else fn.fn(*argv)
        except GoError as exc:
            self.node = node
            self.errorf(f"error calling {name}: {exc}")
        return result

    def validate_type(self, value: Any, typ: Optional[str]) -> Any:
        if value is None:
            if typ in FREE:
                return None
            if typ.startswith("[]") or typ.startswith("map[") or typ.startswith("*"):
                return gv.StringSlice() if typ == "[]string" else None
            self.errorf(f"invalid value; expected {typ}")
        if typ in FREE:
            return value
        vt = gv.type_name(value)
        if vt == typ:
            return value
        if isinstance(value, Ptr) and gv.type_name(value.elem) == typ:
            return value.elem
        self.errorf(f"wrong type for value; expected {typ}; got {vt}")

    def eval_arg(self, dot: Any, typ: Optional[str], n: Node) -> Any:
        self.node = n
        if isinstance(n, DotNode):
            return self.validate_type(dot, typ)
        if isinstance(n, NilNode):
            if typ in ("value", "any") or (typ and typ.startswith(("[]", "map[", "*"))):
                return None
            self.errorf(f"cannot assign nil to {typ}")
        if isinstance(n, FieldNode):
            return self.validate_type(self.eval_field_chain(dot, dot, n, n.ident, [n], _MISSING), typ)
        if isinstance(n, VariableNode):
            return self.validate_type(self.eval_variable(dot, n, [], _MISSING), typ)
        if isinstance(n, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), typ)
        if isinstance(n, IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, None, _MISSING), typ)
        if isinstance(n, ChainNode):
            return self.validate_type(self.eval_chain(dot, n, [], _MISSING), typ)
        value = literal_arg(n, typ)
        if value is not _MISSING:
            return value
        expected = _EXPECTED.get(typ)
        if expected is not None:
            self.errorf(f"expected {expected}; found {n}")
        if typ in FREE and isinstance(n, NumberNode):
            return self.ideal_constant(n)  # Go's error for a number no type holds
        self.errorf(f"can't handle {n} for arg of type {typ}")

    def print_value(self, node: Node, v: Any) -> None:
        self.node = node
        v = indirect(v)
        self.write("<no value>" if v is None else gv.format_v(v, self.compat))


def _methods(v: Any, compat: str) -> Dict[str, Func]:
    methods = getattr(v, "METHODS", None)
    if not methods:
        if isinstance(v, GoTime):
            return TIME_METHODS
        if isinstance(v, Duration):
            return DURATION_METHODS
        return {}
    if compat == "0.25":
        return {k: m for k, m in methods.items() if not getattr(m, "since_026", False)}
    return methods
