"""Templates' parse trees turned into Python functions, once per tree: the fastest way to a result.

A tree becomes the source of one Python function. Statements become Python statements, template
variables become the function's local variables (Go resolves them by their place in the text, and
so does this), `range` becomes a `for` loop with Python's own `break` and `continue`, and the steps
and output are counted in locals, a block at a time. The source is made only of this module's own
fragments and of names it numbers (k0, v0, t0, ...): every string, number, field name and node a
template holds is handed to the function as a constant of its namespace, never written into the
source. So no text of a template can become code.

The function gives what the tree walker would give, or raises: anything it does not expect (an
error of a called function, a limit, a value of a kind it does not handle) is left to the walker,
which runs the template again from the start and says what went wrong in Go's own words. Steps are
counted ahead of what they count (a block's at its start), so the function stops no later than the
walker would. A tree with a construct this module does not generate is compiled by gocompile into
closures instead (Unsupported).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Dict, List, Optional

from ..amtemplate import functions as amdata
from . import closures as gc
from . import template as gt
from . import values as gv

Fallback = gc.Fallback
MISSING = gt._MISSING
_FREE = (None, "value", "any")


# Python compiles some 3 MB of source a second here: a tree whose source is larger (some 400 statements
# and more) is left to the closures, which are slower to run but built some 40 times faster, so that no
# start or reload waits long on compiling.
MAX_SOURCE = 256 * 1024


class Unsupported(Exception):
    """A tree (or a part of one) this module does not turn into source: gocompile's closures do it."""


def compile_tree(tree: "gt.Tree", tmpl: "gt.Template") -> Callable[[Any, Any], None]:
    """The function that runs `tree` as f(state, dot); Unsupported when it has a construct not handled here."""
    gen = _Generator(tmpl)
    source = gen.function(tree)
    if len(source) > MAX_SOURCE:
        raise Unsupported()
    try:
        code = compile(source, f"<template {tree.name!r}>", "exec")
    except (SyntaxError, RecursionError, MemoryError, ValueError):  # too deep for Python's compiler
        raise Unsupported() from None
    namespace = dict(gen.consts)
    exec(code, namespace)  # noqa: S102 - our own fragments only; see the module's docstring
    fn = namespace["run"]
    fn.source = source  # type: ignore[attr-defined]  # for tests and for reading
    return fn


# --- helpers the generated functions call --------------------------------------------------------

def _truth(v: Any) -> bool:
    return gt.truth(v)[0]


def _printed(compat: str) -> Callable[[Any], str]:
    format_v = gv.format_v

    def printed(v: Any) -> str:
        while type(v) is gt.Ptr:
            v = v.elem
        if v is None:
            return "<no value>"
        return v if type(v) is str else format_v(v, compat)
    return printed


def _field(st: Any, dot: Any, receiver: Any, name: str, node: "gt.Node", getters: Dict[type, Any]) -> Any:
    """`receiver.name` for a field or a method without arguments (gocompile's one-name lookup). A class
    whose lookup needs nothing but the receiver gets a getter in `getters`, which the generated code
    calls directly the next time."""
    if receiver is None:
        return None
    how = gc._RESOLVED.get((type(receiver), name, st.compat)) or gc._resolve(receiver, name, st.compat)
    if len(getters) < 64:  # a call site meets a handful of classes
        getter = _getter(type(receiver), name, how)
        if getter is not None:
            getters[type(receiver)] = getter
    return gc._field_chain(st, dot, receiver, node, (name,))


def _getter(cls: type, name: str, how: tuple) -> Optional[Callable[[Any], Any]]:
    """A one-argument callable that does what _field does for receivers of this class, when there is one."""
    kind = how[0]
    if kind == gc._FIELD:
        return operator.attrgetter(name)
    if kind == gc._METHOD and not how[2]:
        return how[1]
    if kind == gc._KEY:
        zero = cls.ELEM_ZERO
        if cls.get is dict.get and cls.__getitem__ is dict.__getitem__ and cls.__contains__ is dict.__contains__:
            return operator.methodcaller("get", name, zero)
    return None


def _method(st: Any, receiver: Any, name: str, argv: tuple, final: Any, known: Dict[type, Any],
            literals: Optional[tuple]) -> Any:
    """`receiver.name arg...` (and a final value from the pipeline): a method with parameters, each
    argument checked against its type, or for a literal (its node in `literals`) made for it, as in
    `.StartsAt.Add -3600000000000`; what a receiver's class has is kept in `known`, per call site.
    Anything unusual (no such method, a pointer, nil, the wrong number of arguments) is the walker's."""
    if final is not MISSING:
        argv = argv + (final,)
    how = known.get(type(receiver))
    if how is None:
        if receiver is None or type(receiver) is gt.Ptr:
            raise Fallback()
        method = gt._methods(receiver, st.compat).get(name)
        if method is None:
            raise Fallback()
        params = method.params
        if method.variadic:
            if len(argv) < len(params) - 1:
                raise Fallback()
            types = tuple(params[:-1]) + (params[-1],) * (len(argv) - len(params) + 1)
        elif len(argv) != len(params):
            raise Fallback()
        else:
            types = tuple(params)
        how = (method.fn, method.wants_state, types)
        if not method.variadic and len(known) < 64:
            known[type(receiver)] = how
    fn, wants_state, types = how
    if len(types) != len(argv):
        raise Fallback()
    if literals is not None:
        argv = tuple(v if i >= len(literals) or literals[i] is None else gc.literal_arg(literals[i], t)
                     for i, (v, t) in enumerate(zip(argv, types)))
        if MISSING in argv:
            raise Fallback()  # a literal the walker refuses for this type
    checked = tuple(v if t in _FREE or (t == "string" and type(v) is str) else st.validate_type(v, t)
                    for v, t in zip(argv, types))
    return fn(st, receiver, *checked) if wants_state else fn(receiver, *checked)


def _bounded(s: str) -> str:
    """A string a specialised call made, refused when longer than what the function itself gives."""
    if len(s) > gt.MAX_VALUE:
        raise Fallback()
    return s


def _template(st: Any, name: str, dot: Any) -> None:
    """{{template name dot}}: the named tree, compiled, with its own `$`; the steps and output go on."""
    tree = st.tmpl.trees.get(name)
    depth = st.depth
    if tree is None or tree.root is None or depth >= gt.MAX_DEPTH:
        raise Fallback()
    run = tree.compiled or gc.root_of(tree, st.tmpl)
    if hasattr(run, "source"):  # generated: its variables are its own, its tree is only the walker's
        st.depth = depth + 1
        run(st, dot)
        st.depth = depth  # (after a failure the walker starts again from a new state)
        return
    saved = (st.tree, st.vars)
    st.tree, st.vars, st.depth = tree, [["$", dot]], depth + 1
    run(st, dot)
    st.tree, st.vars, st.depth = saved[0], saved[1], depth


# --- the generator -------------------------------------------------------------------------------

class _Generator:
    def __init__(self, tmpl: "gt.Template") -> None:
        self.tmpl = tmpl
        self.consts: Dict[str, Any] = {
            "Fallback": Fallback, "MISSING": MISSING, "truth": _truth, "range_items": gc.range_items,
            "printed": _printed(tmpl.compat), "field": _field, "method": _method, "template": _template,
            "compat": tmpl.compat, "validate": gc._valid, "quote": gv.go_quote,
            "replace_all": amdata.replace_all, "query_escape": gt._query_escape, "bounded": _bounded,
            "checkpoint": gc.checkpoint,
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
        raise Unsupported()  # the walker says "undefined variable"

    # the function
    def function(self, tree: "gt.Tree") -> str:
        if tree.root is None:
            raise Unsupported()
        self.scopes = [{"$": "v0"}]
        self.emit(0, "def run(st, dot):")
        self.emit(1, "steps = st.steps; size = st.size; max_steps = st.max_steps; max_output = st.max_output")
        self.emit(1, "w = st.out.append; v0 = dot")
        self.block(tree.root, 1, "dot")
        self.emit(1, "st.steps = steps; st.size = size")
        return "\n".join(self.lines) + "\n"

    # statements
    def block(self, lst: "gt.ListNode", depth: int, dot: str) -> None:
        """A list of statements: its steps and its literal text counted at its start, then each statement."""
        steps = 1 + sum(_cost(n) for n in lst.nodes)
        text = sum(len(n.text) for n in lst.nodes if type(n) is gt.TextNode)
        if text:
            self.emit(depth, f"steps += {steps}; size += {text}")
            self.emit(depth, "if steps > max_steps or size > max_output: max_steps = checkpoint(st, steps, size)")
        else:
            self.emit(depth, f"steps += {steps}")
            self.emit(depth, "if steps > max_steps: max_steps = checkpoint(st, steps, size)")
        for node in lst.nodes:
            self.statement(node, depth, dot)

    def statement(self, node: "gt.Node", depth: int, dot: str) -> None:
        kind = type(node)
        if kind is gt.TextNode:
            if node.text:
                self.emit(depth, f"w({self.const(node.text)})")
        elif kind is gt.ActionNode:
            self.action(node, depth, dot)
        elif kind is gt.IfNode or kind is gt.WithNode:
            self.branch(node, depth, dot, kind is gt.WithNode)
        elif kind is gt.RangeNode:
            self.range_(node, depth, dot)
        elif kind is gt.TemplateNode:
            if node.pipe is not None and node.pipe.decl:
                raise Unsupported()
            value = self.pipe(node.pipe, dot) if node.pipe is not None else "None"
            self.emit(depth, "st.steps = steps; st.size = size")
            self.emit(depth, f"template(st, {self.const(node.name)}, {value})")
            self.emit(depth, "steps = st.steps; size = st.size")
        elif kind is gt.BreakNode:
            self.emit(depth, "break")
        elif kind is gt.ContinueNode:
            self.emit(depth, "continue")
        elif kind is gt.ListNode:
            self.block(node, depth, dot)
        else:
            raise Unsupported()

    def action(self, node: "gt.ActionNode", depth: int, dot: str) -> None:
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

    def assign(self, pipe: "gt.PipeNode", value: str, depth: int) -> None:
        """`$x := value` (a new local) or `$x = value` (the one it names)."""
        if len(pipe.decl) != 1:
            raise Unsupported()
        var = pipe.decl[0].ident[0]
        target = self.lookup(var) if pipe.is_assign else None
        t = self.fresh("t")
        self.emit(depth, f"{t} = {value}")
        if target is None:
            target = self.declare(var)
        self.emit(depth, f"{target} = {t}")

    def branch(self, node: "gt.BranchNode", depth: int, dot: str, is_with: bool) -> None:
        self.scopes.append({})
        value = self.pipe(node.pipe, dot)
        t = self.fresh("t")
        if node.pipe.decl:
            self.assign(node.pipe, value, depth)
            self.emit(depth, f"{t} = {self.lookup(node.pipe.decl[0].ident[0])}")
        else:
            self.emit(depth, f"{t} = {value}")
        self.emit(depth, f"if {self.truth(t, t)}:")
        self.scopes.append({})
        if is_with:
            inner = self.fresh("d")
            self.emit(depth + 1, f"{inner} = {t}")
            self.block(node.list, depth + 1, inner)
        else:
            self.block(node.list, depth + 1, dot)
        self.scopes.pop()
        if node.else_list is not None:
            self.emit(depth, "else:")
            self.scopes.append({})
            self.block(node.else_list, depth + 1, dot)
            self.scopes.pop()
        self.scopes.pop()

    def range_(self, node: "gt.RangeNode", depth: int, dot: str) -> None:
        pipe = node.pipe
        if pipe.is_assign or len(pipe.decl) > 2:
            raise Unsupported()
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
            ends = _loop_exits(node.else_list)
            if len(ends) == 2:
                raise Unsupported()
            self.emit(depth, f"if {items} is None:")
            inner = depth + 1
            if gt.BreakNode in ends:
                self.emit(depth + 1, "for _ in (None,):  # a break ends the range")
                inner += 1
            self.scopes.append({})
            self.block(node.else_list, inner, dot)
            self.scopes.pop()
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
        self.scopes.append({})
        self.block(node.list, depth + 1, elem)
        self.scopes.pop()
        self.scopes.pop()

    # expressions
    def pipe(self, pipe: "gt.PipeNode", dot: str) -> str:
        """A pipeline's value as an expression (its declarations are the caller's)."""
        value: Optional[str] = None
        for cmd in pipe.cmds:
            value = self.command(cmd, dot, value)
        assert value is not None
        return value

    def command(self, cmd: "gt.CommandNode", dot: str, final: Optional[str]) -> str:
        first, args = cmd.args[0], cmd.args[1:]
        kind = type(first)
        if kind is gt.IdentifierNode:
            return self.call(first.ident, args, dot, final)
        if kind is gt.FieldNode:
            return self.chain(dot, dot, first, first.ident, args, final)
        if kind is gt.VariableNode:
            local = self.lookup(first.ident[0])
            if len(first.ident) == 1:
                if args or final is not None:
                    raise Unsupported()
                return local
            return self.chain(dot, local, first, first.ident[1:], args, final)
        if kind is gt.ChainNode:
            if isinstance(first.node, gt.NilNode):
                raise Unsupported()
            return self.chain(dot, self.arg(first.node, None, dot), first, first.field, args, final)
        if args or final is not None:
            raise Unsupported()
        if kind is gt.PipeNode:
            if first.decl:
                raise Unsupported()
            return self.pipe(first, dot)
        if kind is gt.DotNode:
            return dot
        constant = gc._constant(first)
        if constant is MISSING:
            raise Unsupported()
        return self.const(constant)

    def chain(self, dot: str, receiver: str, node: "gt.Node", ident: List[str], args: List["gt.Node"],
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
        literals = tuple(a if type(a) in (gt.NumberNode, gt.BoolNode, gt.StringNode) else None for a in args)
        literal_nodes = self.const(literals) if any(literals) else "None"
        return (f"method(st, {value}, {self.const(ident[-1])}, ({argv}), {final_value}, {self.const({})}, "
                f"{literal_nodes})")

    def call(self, name: str, arg_nodes: List["gt.Node"], dot: str, final: Optional[str]) -> str:
        fn = self.tmpl.funcs.get(name)
        if not isinstance(fn, gt.Func):
            raise Unsupported()
        params = fn.params
        nargs = len(arg_nodes)
        num_in = nargs + (1 if final is not None else 0)
        if fn.variadic:
            num_fixed = len(params) - 1
            if num_in < num_fixed:
                raise Unsupported()
        else:
            num_fixed = nargs
            if num_in != len(params):
                raise Unsupported()
        if fn.name in ("and", "or"):
            return self.logic(fn.name == "or", [self.arg(a, "value", dot) for a in arg_nodes], final)
        types = [params[i] for i in range(min(num_fixed, nargs))]
        if fn.variadic:
            types += [params[-1]] * (nargs - len(types))
        args = [self.arg(a, t, dot) for a, t in zip(arg_nodes, types)]
        if final is not None:
            final_type = params[-1] if params else "value"
            if fn.variadic and num_in - 1 < num_fixed:
                final_type = params[num_in - 1]
            args.append(self.checked(final, final_type))
        if final is None:
            special = self.special(name, fn, arg_nodes, args)
            if special is not None:
                return special
        f = self.const(fn.fn)
        if fn.wants_state:
            args.insert(0, "st")
        return f"{f}({', '.join(args)})"

    def special(self, name: str, fn: "gt.Func", arg_nodes: List["gt.Node"], args: List[str]) -> Optional[str]:
        """The commonest calls in a faster form that gives the same value: printf with a plain format,
        regular expressions given as literals compiled here, strings compared and escaped at once, a
        literal stringSlice made once. Anything else about them (another type, an error) goes the
        function's own way."""
        if fn is not self.tmpl.funcs.get(name):
            return None
        f, nargs = getattr(fn.fn, "unbounded", fn.fn), len(arg_nodes)
        literal = [n.text if type(n) is gt.StringNode else None for n in arg_nodes]
        if f is gt._printf and literal and literal[0] is not None:
            simple = gv.simple_format(literal[0])
            if simple is not None and len(simple) // 2 == nargs - 1:
                return self.printf(simple, args)
        compat = getattr(f, "regexp_compat", None)
        if compat is not None and literal[0] is not None:
            try:
                regex = amdata.compile_regexp(literal[0], compat)
            except amdata.RegexpError:
                return None
            if f is amdata.REGEXP_FUNCTIONS[compat][0]:
                return f"{self.const(regex.match_string)}({args[1]})"
            return f"bounded(replace_all({self.const(regex)}, {args[2]}, {args[1]}))"
        if name == "stringSlice" and None not in literal:
            return self.const(f(*literal))
        if name == "urlquery" and nargs == 1:
            t = self.fresh("t")
            return f"(bounded(query_escape({t})) if type({t} := {args[0]}) is str else {self.const(fn.fn)}(st, {t}))"
        if f is gt._eq and nargs == 2:
            a, b = self.fresh("t"), self.fresh("t")
            return (f"({a} == {b} if (type({a} := {args[0]}) is str) & (type({b} := {args[1]}) is str) "
                    f"else {self.const(fn.fn)}(st, {a}, {b}))")
        if f is gt._not:
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
        short = f"{' + '.join(lengths)} <= {gt.MAX_VALUE - len(''.join(simple[0::2]))}"
        general = f"{self.const(self.tmpl.funcs['printf'].fn)}(st, {args[0]}, {', '.join(temps)})"
        return f"({' + '.join(parts)} if {tests} and {short} else {general})"

    def logic(self, is_or: bool, args: List[str], final: Optional[str]) -> str:
        """and/or: the first argument that decides, else the last (the final value last of all).
        Go evaluates the final value before the call: so does this."""
        values = args + ([final] if final is not None else [])
        if final is not None:
            held = self.fresh("t")
            values[-1] = held
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
        if typ in _FREE:
            return value
        t = self.fresh("t")
        if typ == "string":
            return f"({t} if type({t} := {value}) is str else validate(st, {t}, {self.const(typ)}))"
        return f"validate(st, {value}, {self.const(typ)})"

    def arg(self, n: "gt.Node", typ: Optional[str], dot: str) -> str:
        """An argument for a parameter of type `typ`, checked against it (gocompile's _arg, as source)."""
        kind = type(n)
        if kind is gt.DotNode:
            return self.checked(dot, typ)
        if kind is gt.FieldNode:
            return self.checked(self.chain(dot, dot, n, n.ident, [], None), typ)
        if kind is gt.VariableNode:
            local = self.lookup(n.ident[0])
            if len(n.ident) == 1:
                return self.checked(local, typ)
            return self.checked(self.chain(dot, local, n, n.ident[1:], [], None), typ)
        if kind is gt.PipeNode:
            if n.decl:
                raise Unsupported()
            return self.checked(self.pipe(n, dot), typ)
        if kind is gt.IdentifierNode:
            return self.checked(self.call(n.ident, [], dot, None), typ)
        if kind is gt.ChainNode and not isinstance(n.node, gt.NilNode):
            return self.checked(self.chain(dot, self.arg(n.node, None, dot), n, n.field, [], None), typ)
        value = gc.literal_arg(n, typ)
        if value is MISSING:
            raise Unsupported()  # nil, and literals the walker refuses
        return self.const(value)


def _loop_exits(lst: "gt.ListNode") -> set:
    """The kinds of {{break}} and {{continue}} in a list that leave it for the enclosing loop: in it, in
    its ifs and withs, and a continue in the else of a range inside (which catches only its break)."""
    found = set()
    for node in lst.nodes:
        kind = type(node)
        if kind is gt.BreakNode or kind is gt.ContinueNode:
            found.add(kind)
        elif kind is gt.IfNode or kind is gt.WithNode:
            found |= _loop_exits(node.list)
            if node.else_list is not None:
                found |= _loop_exits(node.else_list)
        elif kind is gt.RangeNode and node.else_list is not None:
            found |= _loop_exits(node.else_list) & {gt.ContinueNode}
    return found


def _cost(node: "gt.Node") -> int:
    """The steps a statement takes in the walker at its start: itself and every command of its pipeline
    (an if's body and a range's rounds are counted in their own blocks). Never fewer than the walker's."""
    pipe = getattr(node, "pipe", None)
    return 1 + (_commands(pipe) if isinstance(pipe, gt.PipeNode) else 0)


def _commands(pipe: "gt.PipeNode") -> int:
    total = 0
    for cmd in pipe.cmds:
        total += 1
        for arg in cmd.args:
            while isinstance(arg, gt.ChainNode):
                arg = arg.node
            if isinstance(arg, gt.PipeNode):
                total += 1 + _commands(arg)
    return total
