"""What the functions codegen generates call at run time: field and method lookup, {{template}},
the step and output checkpoints, and the deferrals to the walker where the generator knew too little.

A generated function gives the walker's output or raises; Fallback (or any other exception) makes the
template run again from the start on the walker, which then gives Go's own error. So nothing here
words an error.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Dict, List, Optional

from . import values as gv
from .values import Ptr
from .funcs import MAX_VALUE, GoError
from .exec import _MISSING as MISSING
from .exec import FREE, MAX_DEPTH, _Break, _Continue, _methods, literal_arg

BREAK, CONTINUE = "break", "continue"  # what a deferred statement ended with


class Fallback(Exception):
    """A case generated code leaves to the walker, which then runs the whole template."""


def checkpoint(st: Any, steps: int, size: int) -> int:
    """Return the step count at which generated code next stops here: past the step or output limit the
    walker takes over (and says so); past the CPU-time budget the execution ends (BudgetError)."""
    if steps > st.step_limit or size > st.max_output:
        raise Fallback()
    st.max_steps = st.next_check(steps)
    return st.max_steps


def printer(compat: str) -> Callable[[Any], str]:
    """Return what prints an action's value (strings at once, the rest as Go's fmt %v)."""
    format_v = gv.format_v

    def printed(v: Any) -> str:
        while type(v) is Ptr:
            v = v.elem
        if v is None:
            return "<no value>"
        return v if type(v) is str else format_v(v, compat)
    return printed


def bounded(s: str) -> str:
    """A string a specialised call made, refused when longer than what the function itself gives."""
    if len(s) > MAX_VALUE:
        raise Fallback()
    return s


def valid(st: Any, value: Any, typ: Optional[str]) -> Any:
    """`value` as an argument of type `typ` (the walker's validate_type, at once for the common cases)."""
    if typ in FREE:
        return value
    if typ == "string" and type(value) is str:
        return value
    return st.validate_type(value, typ)


# --- fields and methods ----------------------------------------------------------------------

_KEY, _FIELD, _METHOD, _WALKER = range(4)
_RESOLVED: dict = {}  # (receiver's class, name, compat) -> how the walker's eval_field would go


def _resolve(receiver: Any, name: str, compat: str) -> tuple:
    """How eval_field finds `name` on a receiver of this class (what it does depends on the class only)."""
    method = None if type(receiver) is Ptr else _methods(receiver, compat).get(name)
    if type(receiver) is Ptr or (method is not None and (method.params or method.variadic)):
        how: tuple = (_WALKER,)
    elif method is not None:
        how = (_METHOD, method.fn, method.wants_state)
    elif isinstance(receiver, gv.TypedMap):
        how = (_KEY,)
    elif isinstance(receiver, gv.GoStruct) and name in receiver.FIELDS and \
            type(receiver).field is gv.GoStruct.field:
        how = (_FIELD,)
    else:
        how = (_WALKER,)
    if len(_RESOLVED) > 10000:  # names come from templates: only a process rendering endless new ones gets here
        _RESOLVED.clear()
    _RESOLVED[(type(receiver), name, compat)] = how
    return how


def field(st: Any, dot: Any, receiver: Any, name: str, node: Any, getters: Dict[type, Any]) -> Any:
    """`receiver.name` for a field or a method without arguments: a label set's key, a struct's field or
    a method directly, anything else by the walker's eval_field. A class whose lookup needs nothing but
    the receiver gets a getter in `getters`, which the generated code calls directly the next time."""
    if receiver is None:
        return None
    compat = st.compat
    how = _RESOLVED.get((type(receiver), name, compat)) or _resolve(receiver, name, compat)
    if len(getters) < 64:  # a call site meets a handful of classes
        getter = _getter(type(receiver), name, how)
        if getter is not None:
            getters[type(receiver)] = getter
    kind = how[0]
    if kind == _KEY:
        return receiver[name] if name in receiver else receiver.ELEM_ZERO
    if kind == _FIELD:
        return getattr(receiver, name)
    if kind == _METHOD:
        try:
            return how[1](st, receiver) if how[2] else how[1](receiver)
        except GoError:
            raise Fallback() from None
    return st.eval_field(dot, name, node, None, MISSING, receiver)


def _getter(cls: type, name: str, how: tuple) -> Optional[Callable[[Any], Any]]:
    """A one-argument callable that does what field() does for receivers of this class, when there is one."""
    kind = how[0]
    if kind == _FIELD:
        return operator.attrgetter(name)
    if kind == _METHOD and not how[2]:
        return how[1]
    if kind == _KEY and cls.get is dict.get and cls.__getitem__ is dict.__getitem__ and \
            cls.__contains__ is dict.__contains__:
        return operator.methodcaller("get", name, cls.ELEM_ZERO)
    return None


def method(st: Any, receiver: Any, name: str, argv: tuple, final: Any, known: Dict[type, Any],
           literals: Optional[tuple]) -> Any:
    """`receiver.name arg...` (and a final value from the pipeline): a method with parameters, each
    argument checked against its type, or for a literal (its node in `literals`) made for it, as in
    `.StartsAt.Add -3600000000000`; what a receiver's class has is kept in `known`, per call site.
    Anything unusual (no such method, a pointer, nil, the wrong number of arguments) is the walker's."""
    if final is not MISSING:
        argv = argv + (final,)
    how = known.get(type(receiver))
    if how is None:
        found = None if type(receiver) is Ptr else _methods(receiver, st.compat).get(name)
        if found is None or not found.takes(len(argv)):
            raise Fallback()
        how = (found.fn, found.wants_state, tuple(found.types(len(argv))))
        if not found.variadic and len(known) < 64:
            known[type(receiver)] = how
    fn, wants_state, types = how
    if len(types) != len(argv):
        raise Fallback()
    if literals is not None:
        argv = tuple(v if i >= len(literals) or literals[i] is None else literal_arg(literals[i], t)
                     for i, (v, t) in enumerate(zip(argv, types)))
        if MISSING in argv:
            raise Fallback()  # a literal the walker refuses for this type
    checked = tuple(valid(st, v, t) for v, t in zip(argv, types))
    return fn(st, receiver, *checked) if wants_state else fn(receiver, *checked)


# --- statements ------------------------------------------------------------------------------

def template(st: Any, name: str, dot: Any) -> None:
    """{{template name dot}}: the named tree, compiled, with its own `$`; the steps and output go on."""
    tree = st.tmpl.trees.get(name)
    depth = st.depth
    if tree is None or tree.root is None or depth >= MAX_DEPTH:
        raise Fallback()
    st.depth = depth + 1
    (tree.compiled or st.tmpl.compile(tree))(st, dot)
    st.depth = depth  # (after a failure the walker starts again from a new state)


def walk_tree(tree: Any) -> Callable[[Any, Any], None]:
    """Return what runs a tree on the walker where generated code would: a tree too large to generate."""
    def walked(st: Any, dot: Any) -> None:
        saved = st.tree, st.vars
        st.tree, st.vars = tree, [["$", dot]]
        st.walk(dot, tree.root)
        st.tree, st.vars = saved
    return walked


def walk_statement(st: Any, dot: Any, node: Any, variables: List[List[Any]]) -> Optional[str]:
    """Run one statement on the walker, with the template variables in scope as [name, value] pairs (in
    the order they were declared: the walker reads the last of a name; it sets them in place and adds
    what the statement declares). Return BREAK or CONTINUE when the statement ended the round so."""
    saved = st.vars
    st.vars = variables
    try:
        st.walk(dot, node)
    except _Break:
        return BREAK
    except _Continue:
        return CONTINUE
    finally:
        st.vars = saved
    return None


def walk_pipeline(st: Any, dot: Any, pipe: Any, variables: List[List[Any]], steps: int) -> Any:
    """A pipeline's value by the walker (its declarations are the generated code's), with the
    variables in scope and the steps counted so far (the generated code counted this pipeline's)."""
    saved = st.vars
    st.vars, st.steps = variables, steps
    try:
        st.node = pipe
        value = MISSING
        for cmd in pipe.cmds:
            value = st.eval_command(dot, cmd, value)
        return value
    finally:
        st.vars = saved
