"""Templates' parse trees turned into Python functions, once per tree: the compiled path.

A tree becomes the source of one Python function. Statements become Python statements, template
variables become the function's local variables (Go resolves them by their place in the text, and
so does this), `range` becomes a `for` loop with Python's own `break` and `continue`, and the steps
and output are counted in locals, a block at a time. The source is made only of this module's own
fragments and of names it numbers (k0, v0, t0, ...): every string, number, field name and node a
template holds is handed to the function as a constant of its namespace, never written into the
source. So no text of a template can become code.

The walker (exec) is the specification. Where the generator cannot decide something from the tree
alone (a call the walker will refuse, a variable that may be undefined when it runs, a range over
variables it assigns...), it does not refuse the tree: it emits a call that runs that pipeline or that
statement on the walker, with the variables in scope (runtime.walk_pipeline, runtime.walk_statement),
as Jinja2's compiler emits runtime calls where its static knowledge ends. The function gives what the
walker would give, or raises: then the walker runs the template again from the start and says what
went wrong in Go's own words, at the template's own line and column. Steps are counted ahead of what
they count (a block's at its start), so the function stops no later than the walker would. A tree too
large to generate runs on the walker.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, Optional

from . import runtime as rt
from . import values as gv
from .builtins import BUILTINS, _query_escape, truth
from .funcs import MAX_VALUE, Func
from .exec import _MISSING as MISSING
from .exec import range_items
from .nodes import (ActionNode, BoolNode, BranchNode, BreakNode, ChainNode, CommandNode, ContinueNode, DotNode,
                    FieldNode, IdentifierNode, IfNode, ListNode, NilNode, Node, NumberNode, PipeNode, RangeNode,
                    StringNode, TemplateNode, TextNode, VariableNode, WithNode)

# Python compiles some 3 MB of source a second here: a tree whose source is larger (some 400 statements
# and more) runs on the walker, so that no start or reload waits long on compiling.
MAX_SOURCE = 256 * 1024


class _Deferred(Exception):
    """A part of a tree the generator leaves to the walker (at the nearest pipeline or statement)."""


def compile_tree(tree: Any, tmpl: Any) -> Callable[[Any, Any], None]:
    """Return the function that runs `tree` as f(state, dot): generated, or the walker for a tree too large
    or declaring a variable inside a pipeline (`{{ $x := print ($y := 1) }}`: whether and where $y is
    declared is known only when the pipeline runs, and a generated function's variables are fixed)."""
    if _declares_inside(tree.root):
        return rt.walk_tree(tree)
    gen = _Generator(tmpl)
    source = gen.function(tree)
    if len(source) > MAX_SOURCE:
        return rt.walk_tree(tree)
    try:
        code = compile(source, f"<template {tree.name!r}>", "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):  # too deep for Python's compiler
        return rt.walk_tree(tree)
    namespace = dict(gen.consts)
    exec(code, namespace)  # noqa: S102 - our own fragments only; see the module's docstring
    return namespace["run"]


def source_of(tree: Any, tmpl: Any) -> str:
    """Return the Python source generated for `tree` (to read it)."""
    return _Generator(tmpl).function(tree)


class _Generator:
    def __init__(self, tmpl: "Any") -> None:
        self.tmpl = tmpl
        self.consts: Dict[str, Any] = {
            "Fallback": rt.Fallback, "MISSING": MISSING, "truth": truth, "range_items": range_items,
            "printed": rt.printer(tmpl.compat), "field": rt.field, "method": rt.method, "template": rt.template,
            "compat": tmpl.compat, "validate": rt.valid, "quote": gv.go_quote, "query_escape": _query_escape,
            "bounded": rt.bounded, "checkpoint": rt.checkpoint, "walk_statement": rt.walk_statement,
            "walk_pipeline": rt.walk_pipeline, "BREAK": rt.BREAK, "CONTINUE": rt.CONTINUE,
        }
        self.by_id: Dict[int, str] = {}
        self.lines: List[str] = []
        self.count = 0
        self.scopes: List[Dict[str, str]] = []

    # names
    def const(self, value: Any) -> str:
        key = id(value)
        name = self.by_id.get(key)
        if name is None or self.consts[name] is not value:
            name = f"k{len(self.consts)}"
            self.consts[name] = value
            self.by_id[key] = name
        return name

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def declare(self, var: str) -> str:
        local = self.fresh("v")
        self.scopes[-1][var] = local
        return local

    def lookup(self, var: str) -> str:
        for scope in reversed(self.scopes):
            if var in scope:
                return scope[var]
        raise _Deferred()  # the walker says "undefined variable"

    # the function
    def function(self, tree: "Any") -> str:
        self.scopes = [{"$": "v0"}]
        self.emit(0, "def run(st, dot):")
        self.emit(1, "steps = st.steps; size = st.size; max_steps = st.max_steps; max_output = st.max_output")
        self.emit(1, "w = st.out.append; v0 = dot")
        self.block(tree.root, 1, "dot")
        self.emit(1, "st.steps = steps; st.size = size")
        return "\n".join(self.lines) + "\n"

    # statements
    def block(self, lst: ListNode, depth: int, dot: str) -> None:
        """A list of statements: its steps and its literal text counted at its start, then each statement."""
        steps = 1 + sum(_cost(n) for n in lst.nodes)
        text = sum(len(n.text) for n in lst.nodes if type(n) is TextNode)
        if text:
            self.emit(depth, f"steps += {steps}; size += {text}")
            self.emit(depth, "if steps > max_steps or size > max_output: max_steps = checkpoint(st, steps, size)")
        else:
            self.emit(depth, f"steps += {steps}")
            self.emit(depth, "if steps > max_steps: max_steps = checkpoint(st, steps, size)")
        for node in lst.nodes:
            self.statement(node, depth, dot)

    def scoped(self, lst: ListNode, depth: int, dot: str) -> None:
        """A block whose variables end with it."""
        self.scopes.append({})
        self.block(lst, depth, dot)
        self.scopes.pop()

    def statement(self, node: Node, depth: int, dot: str) -> None:
        """A statement as Python, or where part of it cannot be, a call that runs it on the walker."""
        kind = type(node)
        if kind is TextNode or kind is BreakNode or kind is ContinueNode:
            self.generated(node, depth, dot)
            return
        lines, scopes, count = len(self.lines), [dict(scope) for scope in self.scopes], self.count
        try:
            self.generated(node, depth, dot)
        except _Deferred:
            del self.lines[lines:]
            self.scopes, self.count = scopes, count
            self.deferred(node, depth, dot)

    def deferred(self, node: Node, depth: int, dot: str) -> None:
        """The walker runs `node` with the variables in scope; it may set them, declare one or end the round."""
        visible = [(var, local) for scope in self.scopes for var, local in scope.items()]
        variables, ended = self.fresh("t"), self.fresh("t")
        pairs = ", ".join(f"[{self.const(var)}, {local}]" for var, local in visible)
        self.emit(depth, f"{variables} = [{pairs}]")
        self.emit(depth, f"st.steps = steps - {_cost(node)}; st.size = size")  # the walker counts the node again
        self.emit(depth, f"{ended} = walk_statement(st, {dot}, {self.const(node)}, {variables})")
        self.emit(depth, "steps = st.steps; size = st.size; max_steps = st.max_steps")
        for i, (var, local) in enumerate(visible):
            self.emit(depth, f"{local} = {variables}[{i}][1]")
        pipe = getattr(node, "pipe", None)
        if type(node) is ActionNode and pipe.decl and not pipe.is_assign:
            self.emit(depth, f"{self.declare(pipe.decl[0].ident[0])} = {variables}[{len(visible)}][1]")
        exits = _loop_exits([node])
        if BreakNode in exits:
            self.emit(depth, f"if {ended} is BREAK: break")
        if ContinueNode in exits:
            self.emit(depth, f"if {ended} is CONTINUE: continue")

    def generated(self, node: Node, depth: int, dot: str) -> None:
        kind = type(node)
        if kind is TextNode:
            if node.text:
                self.emit(depth, f"w({self.const(node.text)})")
        elif kind is ActionNode:
            self.action(node, depth, dot)
        elif kind is IfNode or kind is WithNode:
            self.branch(node, depth, dot, kind is WithNode)
        elif kind is RangeNode:
            self.range_(node, depth, dot)
        elif kind is TemplateNode:
            if node.pipe is not None and node.pipe.decl:
                raise _Deferred()
            value = self.pipe(node.pipe, dot) if node.pipe is not None else "None"
            self.emit(depth, "st.steps = steps; st.size = size")
            self.emit(depth, f"template(st, {self.const(node.name)}, {value})")
            self.emit(depth, "steps = st.steps; size = st.size")
        elif kind is BreakNode:
            self.emit(depth, "break")
        elif kind is ContinueNode:
            self.emit(depth, "continue")
        else:
            raise _Deferred()

    def action(self, node: ActionNode, depth: int, dot: str) -> None:
        pipe = node.pipe
        value = self.pipe(pipe, dot)
        if pipe.decl:
            self.assign(pipe, value, depth)
            return
        t = self.fresh("t")
        self.emit(depth, f"{t} = {value}")
        self.emit(depth, f"if type({t}) is not str: {t} = printed({t})")
        self.emit(depth, f"size += len({t})")
        self.emit(depth, "if size > max_output: raise Fallback()")
        self.emit(depth, f"w({t})")

    def assign(self, pipe: PipeNode, value: str, depth: int) -> None:
        """`$x := value` (a new local) or `$x = value` (the one it names)."""
        if len(pipe.decl) != 1:
            raise _Deferred()
        var = pipe.decl[0].ident[0]
        target = self.lookup(var) if pipe.is_assign else None
        t = self.fresh("t")
        self.emit(depth, f"{t} = {value}")
        if target is None:
            target = self.declare(var)
        self.emit(depth, f"{target} = {t}")

    def branch(self, node: BranchNode, depth: int, dot: str, is_with: bool) -> None:
        self.scopes.append({})
        value = self.pipe(node.pipe, dot)
        t = self.fresh("t")
        if node.pipe.decl:
            self.assign(node.pipe, value, depth)
            self.emit(depth, f"{t} = {self.lookup(node.pipe.decl[0].ident[0])}")
        else:
            self.emit(depth, f"{t} = {value}")
        self.emit(depth, f"if {self.truth(t, t)}:")
        inner = dot
        if is_with:
            inner = self.fresh("d")
            self.emit(depth + 1, f"{inner} = {t}")
        self.scoped(node.list, depth + 1, inner)
        if node.else_list is not None:
            self.emit(depth, "else:")
            self.scoped(node.else_list, depth + 1, dot)
        self.scopes.pop()

    def range_(self, node: RangeNode, depth: int, dot: str) -> None:
        pipe = node.pipe
        if pipe.is_assign or len(pipe.decl) > 2:
            raise _Deferred()  # a range that assigns variables of an enclosing scope: the walker's
        self.scopes.append({})
        collection = self.fresh("t")
        self.emit(depth, f"{collection} = {self.pipe(pipe, dot)}")
        # Go's pipeline gives its declared variables the collection; each round then sets them
        names = [self.declare(v.ident[0]) for v in pipe.decl]
        for local in names:
            self.emit(depth, f"{local} = {collection}")
        items = self.fresh("t")
        self.emit(depth, f"{items} = range_items({collection}, compat, {len(names)})")
        if node.else_list is not None:
            # Go's range catches a {{break}} of its else too: it ends the range, so the else runs in a
            # loop of one round. A {{continue}} there goes on with the enclosing range's next round, as
            # Python's does, unless that loop of one round stands in its way.
            ends = _loop_exits(node.else_list.nodes)
            if len(ends) == 2:
                raise _Deferred()  # a break and a continue in the else: the walker's
            self.emit(depth, f"if {items} is None:")
            inner = depth + 1
            if BreakNode in ends:
                self.emit(depth + 1, "for _ in (None,):  # a break ends the range")
                inner += 1
            self.scoped(node.else_list, inner, dot)
            self.emit(depth, "else:")
            depth += 1
        else:
            self.emit(depth, f"if {items} is not None:")
            depth += 1
        index, elem = self.fresh("i"), self.fresh("e")
        self.emit(depth, f"for {index}, {elem} in {items}:")
        if len(names) == 1:
            self.emit(depth + 1, f"{names[0]} = {elem}")
        elif len(names) == 2:
            self.emit(depth + 1, f"{names[0]} = {index}; {names[1]} = {elem}")
        self.scoped(node.list, depth + 1, elem)
        self.scopes.pop()

    # expressions
    def pipe(self, pipe: PipeNode, dot: str) -> str:
        """A pipeline's value as an expression (its declarations are the caller's): generated, or where a
        command cannot be, the walker's evaluation of the whole pipeline with the variables in scope."""
        count = self.count
        try:
            value: Optional[str] = None
            for cmd in pipe.cmds:
                value = self.command(cmd, dot, value)
            assert value is not None
            return value
        except _Deferred:
            pass
        self.count = count
        visible = [(var, local) for scope in self.scopes for var, local in scope.items()]
        pairs = ", ".join(f"[{self.const(var)}, {local}]" for var, local in visible)
        return f"walk_pipeline(st, {dot}, {self.const(pipe)}, [{pairs}], steps)"

    def command(self, cmd: CommandNode, dot: str, final: Optional[str]) -> str:
        return self.operand(cmd.args[0], cmd.args[1:], dot, final)

    def operand(self, first: Node, args: List[Node], dot: str, final: Optional[str]) -> str:
        """A command's value: its first operand, given the other operands and the final value."""
        kind = type(first)
        if kind is IdentifierNode:
            return self.call(first.ident, args, dot, final)
        if kind is FieldNode:
            return self.chain(dot, dot, first, first.ident, args, final)
        if kind is VariableNode:
            local = self.lookup(first.ident[0])
            if len(first.ident) == 1:
                if args or final is not None:
                    raise _Deferred()
                return local
            return self.chain(dot, local, first, first.ident[1:], args, final)
        if kind is ChainNode:
            if isinstance(first.node, NilNode):
                raise _Deferred()
            return self.chain(dot, self.arg(first.node, None, dot), first, first.field, args, final)
        if args or final is not None:
            raise _Deferred()
        if kind is PipeNode:
            if first.decl:
                raise _Deferred()
            return self.pipe(first, dot)
        if kind is DotNode:
            return dot
        constant = rt.literal_arg(first, None)
        if constant is MISSING:
            raise _Deferred()
        return self.const(constant)

    def chain(self, dot: str, receiver: str, node: Node, ident: List[str], args: List[Node],
              final: Optional[str]) -> str:
        """Fields one after the other on `receiver`; with arguments or a final value the last is a method call."""
        n = self.const(node)
        called = bool(args) or final is not None
        names = ident[:-1] if called else ident
        value = receiver
        for name in names:
            r, g = self.fresh("r"), self.fresh("g")
            getters = self.const({})
            value = (f"({g}({r}) if ({g} := {getters}.get(type({r} := {value}))) is not None "
                     f"else field(st, {dot}, {r}, {self.const(name)}, {n}, {getters}))")
        if not called:
            return value
        argv = "".join(f"{self.arg(a, None, dot)}, " for a in args)
        final_value = final if final is not None else "MISSING"
        # a literal argument takes its value from the parameter's type, known only with the receiver
        literals = tuple(a if type(a) in (NumberNode, BoolNode, StringNode) else None for a in args)
        literal_nodes = self.const(literals) if any(literals) else "None"
        return (f"method(st, {value}, {self.const(ident[-1])}, ({argv}), {final_value}, {self.const({})}, "
                f"{literal_nodes})")

    def call(self, name: str, arg_nodes: List[Node], dot: str, final: Optional[str]) -> str:
        fn = self.tmpl.funcs.get(name)
        if not isinstance(fn, Func):
            raise _Deferred()
        num_in = len(arg_nodes) + (1 if final is not None else 0)
        if not fn.takes(num_in):
            raise _Deferred()  # the walker says "wrong number of args"
        if fn.name in ("and", "or"):
            return self.logic(fn.name == "or", [self.arg(a, "value", dot) for a in arg_nodes], final)
        types = fn.types(num_in)
        args = [self.arg(a, t, dot) for a, t in zip(arg_nodes, types)]
        if final is not None:
            args.append(self.checked(final, types[-1]))
        if final is None:
            special = self.special(name, fn, arg_nodes, args)
            if special is not None:
                return special
        f = self.const(fn.fn)
        if fn.wants_state:
            args.insert(0, "st")
        return f"{f}({', '.join(args)})"

    def special(self, name: str, fn: Func, arg_nodes: List[Node], args: List[str]) -> Optional[str]:
        """The commonest calls in a faster form that gives the same value: printf with a plain format,
        strings compared and escaped at once; and for any function, what it offers: `with_literal_first`
        (given its first argument, a literal string, a faster callable of the others, or None: bounded as
        the function is) and `pure` (with literal strings only, its value is made once, here). Anything
        else about them (another type, an error) goes the function's own way."""
        if fn is not self.tmpl.funcs.get(name):
            return None
        f, nargs = fn.fn, len(arg_nodes)
        literal = [n.text if type(n) is StringNode else None for n in arg_nodes]
        if fn is BUILTINS["printf"] and literal and literal[0] is not None:
            simple = gv.simple_format(literal[0])
            if simple is not None and len(simple) // 2 == nargs - 1:
                return self.printf(simple, args)
        if literal and literal[0] is not None and getattr(f, "with_literal_first", None) is not None:
            fast = f.with_literal_first(literal[0])  # e.g. a regular expression compiled once, here
            if fast is not None:
                return f"{self.const(fast)}({', '.join(args[1:])})"
        if getattr(f, "pure", False) and None not in literal and not fn.wants_state:
            return self.const(f(*literal))
        if fn is BUILTINS["urlquery"] and nargs == 1:
            t = self.fresh("t")
            return f"(bounded(query_escape({t})) if type({t} := {args[0]}) is str else {self.const(fn.fn)}(st, {t}))"
        if fn is BUILTINS["eq"] and nargs == 2:
            a, b = self.fresh("t"), self.fresh("t")
            return (f"({a} == {b} if (type({a} := {args[0]}) is str) & (type({b} := {args[1]}) is str) "
                    f"else {self.const(fn.fn)}(st, {a}, {b}))")
        if fn is BUILTINS["not"]:
            t = self.fresh("t")
            return f"(not {self.truth(f'({t} := {args[0]})', t)})"
        return None

    def printf(self, simple: tuple, args: List[str]) -> str:
        """printf with bare %s, %v and %q: strings put in place at once, anything else through printf."""
        if len(args) == 1:
            return self.const(simple[0])
        temps = [self.fresh("t") for _ in args[1:]]
        tests = " & ".join(f"(type({t} := {a}) is str)" for t, a in zip(temps, args[1:]))
        parts = [self.const(simple[0])] if simple[0] else []
        for i, t in enumerate(temps):
            parts.append(f"quote({t})" if simple[2 * i + 1] == "q" else t)
            if simple[2 * i + 2]:
                parts.append(self.const(simple[2 * i + 2]))
        # strings put together that would be too long go to printf, which refuses them
        lengths = [f"len({t})" if simple[2 * i + 1] != "q" else f"10 * len({t})" for i, t in enumerate(temps)]
        short = f"{' + '.join(lengths)} <= {MAX_VALUE - len(''.join(simple[0::2]))}"
        general = f"{self.const(self.tmpl.funcs['printf'].fn)}(st, {args[0]}, {', '.join(temps)})"
        return f"({' + '.join(parts)} if {tests} and {short} else {general})"

    def logic(self, is_or: bool, args: List[str], final: Optional[str]) -> str:
        """and/or: the first argument that decides, else the last (the final value last of all).
        Go evaluates the final value before the call: so does this."""
        held = self.fresh("t") if final is not None else None
        values = args + ([held] if held is not None else [])
        expr = values[-1]
        for a in reversed(values[:-1]):
            t = self.fresh("t")
            test = self.truth(f"({t} := {a})", t)
            test = test if is_or else f"not {test}"
            expr = f"({t} if {test} else {expr})"
        if final is not None:
            return f"(({held} := {final}), {expr})[1]"
        return expr

    def truth(self, value: str, t: str) -> str:
        """Go's truth of `value` (which leaves it in `t`): booleans and strings at once, the rest by truth()."""
        c = self.fresh("c")
        return f"({t} if ({c} := type({value})) is bool else {t} != '' if {c} is str else truth({t}))"

    def checked(self, value: str, typ: Optional[str]) -> str:
        if typ in rt.FREE:
            return value
        t = self.fresh("t")
        if typ == "string":
            return f"({t} if type({t} := {value}) is str else validate(st, {t}, {self.const(typ)}))"
        return f"validate(st, {value}, {self.const(typ)})"

    def arg(self, n: Node, typ: Optional[str], dot: str) -> str:
        """An argument for a parameter of type `typ`, checked against it (the walker's eval_arg, as source)."""
        if type(n) in (DotNode, FieldNode, VariableNode, PipeNode, IdentifierNode, ChainNode):
            return self.checked(self.operand(n, [], dot, None), typ)
        value = rt.literal_arg(n, typ)
        if value is MISSING:
            raise _Deferred()  # nil, and literals the walker refuses
        return self.const(value)


def _loop_exits(nodes: List[Node]) -> set:
    """The kinds of {{break}} and {{continue}} in a list that leave it for the enclosing loop: in it, in
    its ifs and withs, and a continue in the else of a range inside (which catches only its break)."""
    found = set()
    for node in nodes:
        kind = type(node)
        if kind is BreakNode or kind is ContinueNode:
            found.add(kind)
        elif kind is IfNode or kind is WithNode:
            found |= _loop_exits(node.list.nodes)
            if node.else_list is not None:
                found |= _loop_exits(node.else_list.nodes)
        elif kind is RangeNode and node.else_list is not None:
            found |= _loop_exits(node.else_list.nodes) & {ContinueNode}
    return found


def _cost(node: Node) -> int:
    """The steps a statement takes in the walker at its start: itself and every command of its pipeline
    (an if's body and a range's rounds are counted in their own blocks). Never fewer than the walker's."""
    pipe = getattr(node, "pipe", None)
    return 1 + (_commands(pipe) if isinstance(pipe, PipeNode) else 0)


def _commands(pipe: PipeNode) -> int:
    return len(pipe.cmds) + sum(1 + _commands(inner) for inner in _inner_pipes(pipe))


def _inner_pipes(pipe: PipeNode) -> Iterator[PipeNode]:
    """The parenthesised pipelines among a pipeline's operands (a chain's too: `(...).Field`)."""
    for cmd in pipe.cmds:
        for arg in cmd.args:
            while isinstance(arg, ChainNode):
                arg = arg.node
            if isinstance(arg, PipeNode):
                yield arg


def _declares_inside(node: Any) -> bool:
    """Whether a pipeline of the tree declares or assigns a variable inside (in a parenthesised pipeline),
    or a {{template}}'s pipeline declares one."""
    kind = type(node)
    if kind is ListNode:
        return any(_declares_inside(n) for n in node.nodes)
    if isinstance(node, BranchNode):
        return _declares_inside(node.pipe) or _declares_inside(node.list) or \
            (node.else_list is not None and _declares_inside(node.else_list))
    if kind is ActionNode:
        return _declares_inside(node.pipe)
    if kind is TemplateNode:
        return node.pipe is not None and (bool(node.pipe.decl) or _declares_inside(node.pipe))
    return kind is PipeNode and any(inner.decl or _declares_inside(inner)
                                    for inner in _inner_pipes(node))
