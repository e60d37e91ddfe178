"""Templates' parse trees turned into Python closures, once per tree, for speed.

The closures do what gotemplate's tree walker does on the way to a result, step for step (the same
steps and output counted against the same limits), through the walker's own helpers for field
lookup, type checks and printing. They skip its dispatch on node types at every step. Whatever goes
wrong in them (an error, a limit, an arity a call does not match) is not reported from here: the
walker runs the template again from the start and gives Go's own error, as it always did. So the
walker stays the reference, and what the closures add is only speed on the way to a result.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from . import values as gv
from . import template as gt

# Closures: a statement runs as f(st, dot); an expression evaluates as f(st, dot) -> value; a command
# as f(st, dot, final) -> value, `final` being the previous command's value in a pipeline (or MISSING).
Stmt = Callable[[Any, Any], None]
Expr = Callable[[Any, Any], Any]
MISSING = gt._MISSING


class Fallback(Exception):
    """A case the closures leave to the tree walker (which then runs the whole template)."""


CODEGEN = True  # trees become Python functions (gocodegen) where they can; tests turn it off to try the closures


def root_of(tree: "gt.Tree", tmpl: "gt.Template") -> Stmt:
    """What runs a tree, compiled on first use (with the functions of its template set) and
    kept on the tree: gocodegen's function, or else closures of the tree's root."""
    compiled = tree.compiled
    if compiled is None:
        if CODEGEN:
            from . import codegen as gocodegen  # it builds on this module
            try:
                compiled = gocodegen.compile_tree(tree, tmpl)
            except gocodegen.Unsupported:
                pass
        if compiled is None:
            compiled = _stmt(tree.root)
        tree.compiled = compiled
    return compiled


def _count(st: Any) -> None:
    """One step, stopping at the limit (where the walker takes over and says so)."""
    st.steps += 1
    if st.steps > st.max_steps:
        checkpoint(st, st.steps, 0)


def checkpoint(st: Any, steps: int, size: int) -> int:
    """Return the step count at which compiled code next stops here: past the step or output limit the
    walker takes over (and says so); past the CPU-time budget the execution ends (BudgetError)."""
    if steps > st.step_limit or size > st.max_output:
        raise Fallback()
    st.max_steps = st.next_check(steps)
    return st.max_steps


# --- statements ------------------------------------------------------------------------------

def _stmt(node: "gt.Node") -> Stmt:
    kind = type(node)
    if kind is gt.TextNode:
        text = node.text

        def text_node(st: Any, dot: Any) -> None:
            _count(st)
            st.size += len(text)
            if st.size > st.max_output:
                raise Fallback()
            st.out.append(text)
        return text_node
    if kind is gt.ListNode:
        parts = [_stmt(n) for n in node.nodes]

        def list_node(st: Any, dot: Any) -> None:
            _count(st)
            for part in parts:
                part(st, dot)
        return list_node
    if kind is gt.ActionNode:
        return _action(node)
    if kind is gt.IfNode or kind is gt.WithNode:
        return _branch(node, kind is gt.WithNode)
    if kind is gt.RangeNode:
        return _range(node)
    if kind is gt.TemplateNode:
        return _template(node)
    if kind is gt.BreakNode:
        def break_node(st: Any, dot: Any) -> None:
            _count(st)
            raise gt._Break()
        return break_node
    if kind is gt.ContinueNode:
        def continue_node(st: Any, dot: Any) -> None:
            _count(st)
            raise gt._Continue()
        return continue_node
    return _unknown


def _unknown(st: Any, dot: Any) -> None:
    raise Fallback()


def _action(node: "gt.ActionNode") -> Stmt:
    pipe = _pipe(node.pipe)
    if node.pipe.decl:
        def declare(st: Any, dot: Any) -> None:
            _count(st)
            pipe(st, dot)
        return declare

    def action(st: Any, dot: Any) -> None:
        _count(st)
        v = pipe(st, dot)
        while isinstance(v, gt.Ptr):
            v = v.elem
        text = "<no value>" if v is None else v if type(v) is str else gv.format_v(v, st.compat)
        st.size += len(text)
        if st.size > st.max_output:
            raise Fallback()
        st.out.append(text)
    return action


def _branch(node: "gt.BranchNode", is_with: bool) -> Stmt:
    pipe = _pipe(node.pipe)
    body = _stmt(node.list)
    orelse = _stmt(node.else_list) if node.else_list is not None else None
    truth = gt.truth

    def branch(st: Any, dot: Any) -> None:
        _count(st)
        mark = len(st.vars)
        try:
            val = pipe(st, dot)
            kind = type(val)
            if kind is str or kind is bool:
                t = bool(val)
            else:
                t, ok = truth(val)
                if not ok:
                    raise Fallback()
            if t:
                body(st, val if is_with else dot)
            elif orelse is not None:
                orelse(st, dot)
        finally:
            del st.vars[mark:]
    return branch


def _range(r: "gt.RangeNode") -> Stmt:
    pipe = _pipe(r.pipe)
    body = _stmt(r.list)
    orelse = _stmt(r.else_list) if r.else_list is not None else None
    decl = [v.ident[0] for v in r.pipe.decl]
    assign = r.pipe.is_assign
    Continue, Break = gt._Continue, gt._Break

    def range_node(st: Any, dot: Any) -> None:
        _count(st)
        vars_ = st.vars
        mark0 = len(vars_)
        try:
            pairs = range_items(pipe(st, dot), st.compat, len(decl))
            mark = len(st.vars)
            by_assign = assign and st.compat != "0.25"
            try:
                if pairs is None:
                    if orelse is not None:
                        orelse(st, dot)
                    return
                for index, elem in pairs:
                    if decl:
                        if by_assign:
                            if len(decl) > 1:
                                st.set_var(decl[0], index)
                                st.set_var(decl[1], elem)
                            else:
                                st.set_var(decl[0], elem)
                        else:
                            st.vars[-1][1] = elem
                            if len(decl) > 1:
                                st.vars[-2][1] = index
                    try:
                        body(st, elem)
                    except Continue:
                        pass
                    finally:
                        del st.vars[mark:]
            except Break:
                return
        finally:
            del st.vars[mark0:]
    return range_node


def range_items(v: Any, compat: str, ndecl: int) -> Any:
    """What `range` goes over, as (index, element) pairs, for `ndecl` declared variables; None for
    nothing (its else). Anything Go ranges over otherwise, or refuses, is the walker's."""
    while type(v) is gt.Ptr:
        v = v.elem
    if isinstance(v, list):
        return enumerate(v) if v else None
    if isinstance(v, dict):
        return [(key, v[key]) for key in sorted(v)] if v else None
    if v is None:
        return None
    if type(v) is int and compat != "0.25" and ndecl <= 1:
        return [(i, i) for i in range(v)] if v > 0 else None
    raise Fallback()


def _template(t: "gt.TemplateNode") -> Stmt:
    pipe = _pipe(t.pipe)
    name = t.name

    def template_node(st: Any, dot: Any) -> None:
        _count(st)
        tree = st.tmpl.trees.get(name)
        if tree is None or tree.root is None or st.depth >= gt.MAX_DEPTH:
            raise Fallback()
        dot = pipe(st, dot)
        saved = (st.tree, st.vars, st.depth)
        st.tree, st.vars, st.depth = tree, [["$", dot]], st.depth + 1
        try:
            (tree.compiled or root_of(tree, st.tmpl))(st, dot)
        finally:
            st.tree, st.vars, st.depth = saved
    return template_node


# --- expressions -----------------------------------------------------------------------------
# The function a name calls, the arity of each call and the type of each argument are known here, from
# the template set's functions; a command's place in its pipeline says whether it gets a final value.

def _pipe(pipe: Optional["gt.PipeNode"]) -> Expr:
    if pipe is None:
        return lambda st, dot: None
    first = _command(pipe.cmds[0], False)
    rest = [_command(c, True) for c in pipe.cmds[1:]]
    decl = [v.ident[0] for v in pipe.decl]
    assign = pipe.is_assign
    if not rest and not decl:
        return first

    def pipeline(st: Any, dot: Any) -> Any:
        value = first(st, dot)
        for cmd in rest:
            value = cmd(st, dot, value)
        for name in decl:
            if assign:
                st.set_var(name, value)
            else:
                st.vars.append([name, value])
        return value
    return pipeline


def _command(cmd: "gt.CommandNode", has_final: bool) -> Callable[..., Any]:
    """A command: f(st, dot) in a pipeline's first place, f(st, dot, final) after it. Each counts its step."""
    first = cmd.args[0]
    kind = type(first)
    args = cmd.args
    if kind is gt.IdentifierNode:
        return _call(first.ident, args[1:], has_final, cmd, counted=True)
    if kind is gt.FieldNode:
        ident = first.ident
        if len(args) == 1 and not has_final and len(ident) == 1:
            return _one_field(ident[0], first, counted=True)
        if len(args) == 1 and not has_final:
            def field(st: Any, dot: Any) -> Any:
                _count(st)
                return _field_chain(st, dot, dot, first, ident)
            return field
        return _method_call(has_final, first, lambda st, dot: dot, ident, args)
    if kind is gt.VariableNode:
        name = first.ident[0]
        rest = first.ident[1:]
        if not rest:
            if len(args) > 1 or has_final:
                return _refused

            def variable(st: Any, dot: Any) -> Any:
                _count(st)
                return _var(st, name)
            return variable
        if len(args) == 1 and not has_final:
            def variable_field(st: Any, dot: Any) -> Any:
                _count(st)
                return _field_chain(st, dot, _var(st, name), first, rest)
            return variable_field
        return _method_call(has_final, first, lambda st, dot: _var(st, name), rest, args)
    if kind is gt.ChainNode:
        if isinstance(first.node, gt.NilNode):
            return _refused
        operand = _arg(first.node, None)
        chain_ident = first.field
        if len(args) == 1 and not has_final:
            def chain(st: Any, dot: Any) -> Any:
                _count(st)
                return _field_chain(st, dot, operand(st, dot), first, chain_ident)
            return chain
        return _method_call(has_final, first, operand, chain_ident, args)
    if len(args) > 1 or has_final:
        return _refused  # not a function: the walker says so
    if kind is gt.PipeNode:
        inner = _pipe(first)

        def parenthesised(st: Any, dot: Any) -> Any:
            _count(st)
            return inner(st, dot)
        return parenthesised
    if kind is gt.DotNode:
        def dot_node(st: Any, dot: Any) -> Any:
            _count(st)
            return dot
        return dot_node
    constant = _constant(first)
    if constant is MISSING:
        return _refused

    def literal(st: Any, dot: Any) -> Any:
        _count(st)
        return constant
    return literal


def _method_call(has_final: bool, node: "gt.Node", start: Expr, ident: List[str],
                 args: List["gt.Node"]) -> Callable[..., Any]:
    """`.A.B.Method arg...` (or a field given arguments, which the walker refuses): the receiver by
    _field_chain, the method's arguments compiled for its parameters once per receiver class."""
    last = ident[-1]
    head = ident[:-1]
    arg_nodes = args[1:]
    by_class: dict = {}

    def method_call(st: Any, dot: Any, final: Any) -> Any:
        _count(st)
        receiver = _field_chain(st, dot, start(st, dot), node, head)
        if receiver is None or type(receiver) is gt.Ptr:
            return st.eval_field(dot, last, node, args, final, receiver)
        key = (type(receiver), st.compat)
        bound = by_class.get(key)
        if bound is None:
            method = gt._methods(receiver, st.compat).get(last)
            bound = by_class[key] = _bind(method, arg_nodes, has_final, node, receiver=True) \
                if method is not None else _walker_field
        if bound is _walker_field:
            return st.eval_field(dot, last, node, args, final, receiver)
        return bound(st, dot, final, receiver)

    if has_final:
        return method_call
    return lambda st, dot: method_call(st, dot, MISSING)


def _walker_field(*_: Any) -> Any:
    raise Fallback()  # never called: a marker


def _final_or_not(has_final: bool, f: Callable[[Any, Any, Any], Any]) -> Callable[..., Any]:
    """A command the walker's helpers evaluate, counted, in a first place or after it."""
    if has_final:
        def after(st: Any, dot: Any, final: Any) -> Any:
            _count(st)
            return f(st, dot, final)
        return after

    def first(st: Any, dot: Any) -> Any:
        _count(st)
        return f(st, dot, MISSING)
    return first


def _refused(*_: Any) -> Any:
    raise Fallback()


def _constant(node: "gt.Node") -> Any:
    """A literal command's value, or MISSING when the walker would refuse it (nil, an overflow)."""
    if isinstance(node, gt.BoolNode):
        return node.value
    if isinstance(node, gt.StringNode):
        return node.text
    if isinstance(node, gt.NumberNode):
        return gt.number_value(node)
    return MISSING


def _var(st: Any, name: str) -> Any:
    vars_ = st.vars
    for i in range(len(vars_) - 1, -1, -1):
        if vars_[i][0] == name:
            return vars_[i][1]
    raise Fallback()


_KEY, _FIELD, _METHOD, _WALKER = range(4)
_RESOLVED: dict = {}  # (receiver's class, name, compat) -> how the walker's eval_field would go


def _resolve(receiver: Any, name: str, compat: str) -> tuple:
    """How eval_field finds `name` on a receiver of this class (what it does depends on the class only)."""
    key = (type(receiver), name, compat)
    if type(receiver) is gt.Ptr:
        how: tuple = (_WALKER,)
    else:
        method = gt._methods(receiver, compat).get(name)
        if method is None:
            if isinstance(receiver, gv.TypedMap):
                how = (_KEY,)
            elif isinstance(receiver, gv.GoStruct) and name in receiver.FIELDS and \
                    type(receiver).field is gv.GoStruct.field:
                how = (_FIELD,)
            else:
                how = (_WALKER,)
        elif not method.params and not method.variadic:
            how = (_METHOD, method.fn, method.wants_state)
        else:
            how = (_WALKER,)
    if len(_RESOLVED) > 10000:  # names come from templates: only a process rendering endless new ones gets here
        _RESOLVED.clear()
    _RESOLVED[key] = how
    return how


def _one_field(name: str, node: "gt.Node", counted: bool) -> Expr:
    """`.Name`: _field_chain for one name on dot, without a loop (the commonest command)."""
    def one_field(st: Any, dot: Any) -> Any:
        if counted:
            _count(st)
        if dot is None:
            return None
        how = _RESOLVED.get((type(dot), name, st.compat)) or _resolve(dot, name, st.compat)
        kind = how[0]
        if kind == _KEY:
            return dot[name] if name in dot else dot.ELEM_ZERO
        if kind == _FIELD:
            return getattr(dot, name)
        if kind == _METHOD:
            try:
                return how[1](st, dot) if how[2] else how[1](dot)
            except gt.GoError:
                raise Fallback() from None
        return st.eval_field(dot, name, node, None, MISSING, dot)
    return one_field


def _field_chain(st: Any, dot: Any, receiver: Any, node: "gt.Node", ident: List[str]) -> Any:
    """Fields and argument-less methods, one after the other: a label set's key, a struct's field or a
    method without parameters directly, anything else through the walker's eval_field."""
    compat = st.compat
    for name in ident:
        if receiver is None:
            return None
        how = _RESOLVED.get((type(receiver), name, compat)) or _resolve(receiver, name, compat)
        kind = how[0]
        if kind == _KEY:
            receiver = receiver[name] if name in receiver else receiver.ELEM_ZERO
        elif kind == _FIELD:
            receiver = getattr(receiver, name)
        elif kind == _METHOD:
            try:
                receiver = how[1](st, receiver) if how[2] else how[1](receiver)
            except gt.GoError:
                raise Fallback() from None
        else:
            receiver = st.eval_field(dot, name, node, None, MISSING, receiver)
    return receiver


_ANY = (None, "value", "any")


def _call(name: str, arg_nodes: List["gt.Node"], has_final: bool, cmd: "gt.Node",
          counted: bool = False) -> Callable[..., Any]:
    """A function call: the function from the template set (bound on the first call: a tree belongs
    to one set), its arguments each compiled for its parameter's type."""
    bound: List[Any] = []

    def bind(st: Any) -> Any:
        f = _bind(st.tmpl.funcs.get(name), arg_nodes, has_final, cmd)
        bound.append(f)
        return f

    if has_final:
        def call_final(st: Any, dot: Any, final: Any) -> Any:
            if counted:
                _count(st)
            return (bound[0] if bound else bind(st))(st, dot, final)
        return call_final

    def call(st: Any, dot: Any) -> Any:
        if counted:
            _count(st)
        return (bound[0] if bound else bind(st))(st, dot, MISSING)
    return call


def _bind(fn: Any, arg_nodes: List["gt.Node"], has_final: bool, cmd: "gt.Node",
          receiver: bool = False) -> Callable[..., Any]:
    """A call of `fn` with these arguments: f(st, dot, final), or for a method f(st, dot, final, receiver)."""
    if not isinstance(fn, gt.Func):
        return _refused
    params = fn.params
    nargs = len(arg_nodes)
    num_in = nargs + (1 if has_final else 0)
    if fn.variadic:
        num_fixed = len(params) - 1
        if num_in < num_fixed:
            return _refused
    else:
        num_fixed = nargs
        if num_in != len(params):
            return _refused
    if fn.name in ("and", "or"):
        args = [_arg(n, "value") for n in arg_nodes]
        want = fn.name == "or"
        truth = gt.truth

        def logic(st: Any, dot: Any, final: Any, receiver: Any = MISSING) -> Any:
            v: Any = None
            for arg in args:
                v = arg(st, dot)
                if truth(v)[0] == want:
                    return v
            if final is not MISSING:
                v = final
            return v
        return logic
    types = [params[i] for i in range(min(num_fixed, nargs))]
    if fn.variadic:
        types += [params[-1]] * (nargs - len(types))
    args = [_arg(n, t) for n, t in zip(arg_nodes, types)]
    final_type = None
    if has_final:
        final_type = params[-1] if params else "value"
        if fn.variadic and num_in - 1 < num_fixed:
            final_type = params[num_in - 1]
    f, wants_state = fn.fn, fn.wants_state
    GoError = gt.GoError
    if getattr(f, "unbounded", None) is gt._printf and not has_final and arg_nodes and \
            type(arg_nodes[0]) is gt.StringNode:
        simple = gv.simple_format(arg_nodes[0].text)
        if simple is not None and len(simple) // 2 == nargs - 1:
            return _printf_simple(simple, args[1:], bound_generic(f, args, has_final, final_type, cmd, wants_state))

    if not has_final and len(args) <= 4:
        a0, a1, a2, a3 = (args + [None, None, None, None])[:4]
        n = len(args)

        def bound_fixed(st: Any, dot: Any, final: Any, receiver: Any = MISSING) -> Any:
            if n == 0:
                argv: tuple = ()
            elif n == 1:
                argv = (a0(st, dot),)
            elif n == 2:
                argv = (a0(st, dot), a1(st, dot))
            elif n == 3:
                argv = (a0(st, dot), a1(st, dot), a2(st, dot))
            else:
                argv = (a0(st, dot), a1(st, dot), a2(st, dot), a3(st, dot))
            if receiver is not MISSING:
                argv = (receiver,) + argv
            st.node = cmd
            try:
                return f(st, *argv) if wants_state else f(*argv)
            except GoError:
                raise Fallback() from None
        return bound_fixed
    return bound_generic(f, args, has_final, final_type, cmd, wants_state)


def bound_generic(f: Any, args: List[Expr], has_final: bool, final_type: Optional[str], cmd: "gt.Node",
                  wants_state: bool) -> Callable[..., Any]:
    GoError = gt.GoError

    def bound(st: Any, dot: Any, final: Any, receiver: Any = MISSING) -> Any:
        argv = [arg(st, dot) for arg in args]
        if has_final:
            argv.append(_valid(st, final, final_type))
        if receiver is not MISSING:
            argv.insert(0, receiver)
        st.node = cmd  # what a function that reads the state's node sees, as in the walker
        try:
            return f(st, *argv) if wants_state else f(*argv)
        except GoError:
            raise Fallback() from None
    return bound


def _printf_simple(simple: tuple, args: List[Expr], general: Callable[..., Any]) -> Callable[..., Any]:
    """printf with a literal format of bare %s, %v and %q only: plain strings put in place at once
    (as fmt does them), any other value through the general call."""
    quote = gv.go_quote

    def printf(st: Any, dot: Any, final: Any, receiver: Any = MISSING) -> Any:
        values = [arg(st, dot) for arg in args]
        out = [simple[0]]
        for i, a in enumerate(values):
            if type(a) is not str:
                return general(st, dot, final)
            out.append(quote(a) if simple[2 * i + 1] == "q" else a)
            out.append(simple[2 * i + 2])
        text = "".join(out)
        return text if len(text) <= gt.MAX_VALUE else general(st, dot, final)  # printf refuses it
    return printf


def _valid(st: Any, value: Any, typ: Optional[str]) -> Any:
    if typ in _ANY:
        return value
    if typ == "string" and type(value) is str:
        return value
    return st.validate_type(value, typ)


def literal_arg(n: "gt.Node", typ: Optional[str]) -> Any:
    """A literal argument's value for a parameter of type `typ`, as the walker's eval_arg makes it;
    MISSING for anything else (not a literal, nil, or a literal the walker refuses for that type)."""
    kind = type(n)
    free = typ in _ANY
    if kind is gt.StringNode and (typ == "string" or free):
        return n.text
    if kind is gt.BoolNode and (typ == "bool" or free):
        return n.value
    if kind is gt.NumberNode:
        if typ in ("int", "time.Duration") and n.is_int:
            return n.int64 if typ == "int" else gv.Duration(n.int64)
        if typ == "float64" and n.is_float:
            return n.float64
        if free:
            return _constant(n)
    return MISSING


def _arg(n: "gt.Node", typ: Optional[str]) -> Expr:
    """An argument for a parameter of type `typ`: f(st, dot) -> the value, checked against the type."""
    kind = type(n)
    free = typ in _ANY
    if kind is gt.DotNode:
        return (lambda st, dot: dot) if free else (lambda st, dot: _valid(st, dot, typ))
    if kind is gt.FieldNode:
        ident = n.ident
        if free and len(ident) == 1:
            return _one_field(ident[0], n, counted=False)
        if free:
            return lambda st, dot: _field_chain(st, dot, dot, n, ident)
        return lambda st, dot: _valid(st, _field_chain(st, dot, dot, n, ident), typ)
    if kind is gt.VariableNode:
        name, rest = n.ident[0], n.ident[1:]
        if not rest:
            return (lambda st, dot: _var(st, name)) if free else (lambda st, dot: _valid(st, _var(st, name), typ))
        return lambda st, dot: _valid(st, _field_chain(st, dot, _var(st, name), n, rest), typ)
    if kind is gt.PipeNode:
        inner = _pipe(n)
        return inner if free else (lambda st, dot: _valid(st, inner(st, dot), typ))
    if kind is gt.IdentifierNode:
        call = _call(n.ident, [], False, n)
        return call if free else (lambda st, dot: _valid(st, call(st, dot), typ))
    if kind is gt.ChainNode and not isinstance(n.node, gt.NilNode):
        operand = _arg(n.node, None)
        chain_ident = n.field
        return lambda st, dot: _valid(st, _field_chain(st, dot, operand(st, dot), n, chain_ident), typ)
    value = literal_arg(n, typ)
    if value is MISSING and kind in (gt.StringNode, gt.BoolNode):
        return _refused
    if value is not MISSING:
        return lambda st, dot: value
    if kind is gt.NumberNode:
        return _refused
    # nil, chains and anything rarer: the walker's own eval_arg
    return lambda st, dot: st.eval_arg(dot, typ, n)
