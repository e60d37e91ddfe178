"""Go's built-in template functions (and, or, index, len, printf, html, js, eq, lt...), Go's truth
of a value and its escaping for HTML, JavaScript and URL queries."""

from __future__ import annotations

from typing import Any, Dict, List

from . import values as gv
from .funcs import Func, GoError, bounded, with_state
from .values import Ptr


def truth(v: Any) -> bool:
    """Go's isTrue (every value a template meets has a truth: Go's `ok` is always true here)."""
    if v is None:
        return False
    if isinstance(v, (str, list, dict)):
        return len(v) > 0
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, complex)):
        return v != 0
    return True  # a pointer, a struct, a time


def indirect(v: Any) -> Any:
    while isinstance(v, Ptr):
        v = v.elem
    return v


def _html_escape(s: str) -> str:
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("\0", "\ufffd"))


_JS_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E", "&": "\\u0026", "=": "\\u003D"}


def _js_escape(s: str) -> str:
    out = []
    for c in s:
        o = ord(c)
        if c in _JS_ESCAPES:
            out.append(_JS_ESCAPES[c])
        elif o < 0x20:
            out.append(f"\\u00{o:02X}")
        elif o < 0x80 or c.isprintable():
            out.append(c)
        else:
            out.append(f"\\u{o:04X}")
    return "".join(out)


_QUERY_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_QUERY_ASCII = {c: ("+" if c == 32 else f"%{c:02X}") for c in range(128) if chr(c) not in _QUERY_SAFE}


def _query_escape(s: str) -> str:
    """Go's url.QueryEscape: all but letters, digits and -_.~ as %XX of their UTF-8, a space as +."""
    if s.isascii():
        return s.translate(_QUERY_ASCII)
    return "".join(_QUERY_ASCII.get(b, chr(b)) if b < 0x80 else f"%{b:02X}"
                   for b in s.encode("utf-8", "surrogatepass"))


def _eval_args(st: Any, args: List[Any]) -> str:
    if len(args) == 1 and type(args[0]) is str:
        return args[0]
    printable = ["<no value>" if indirect(a) is None else a for a in args]
    return gv.sprint(printable, st.compat)


def _index_arg(index: Any, cap: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        if index is None:
            raise GoError("cannot index slice/array with nil")
        raise GoError(f"cannot index slice/array with type {gv.type_name(index)}")
    x = int(index)
    if x < 0 or x > cap:
        raise GoError(f"index out of range: {x}")
    return x


def _index(st: Any, item: Any, *indexes: Any) -> Any:
    if item is None:
        raise GoError("index of untyped nil")
    for index in indexes:
        item = indirect(item)
        if isinstance(item, (list, str)):
            seq = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else item
            x = _index_arg(index, len(seq))
            if x == len(seq):  # within the capacity, past the length: reflect's own panic
                raise GoError(f"reflect: {'string' if isinstance(item, str) else 'slice'} index out of range")
            item = gv.Uint8(seq[x]) if isinstance(item, str) else seq[x]  # a string's byte
        elif isinstance(item, dict):
            if index is None:
                raise GoError("value is nil; should be of type string")
            if not isinstance(index, str) or isinstance(index, gv.HTML):
                raise GoError(f"value has type {gv.type_name(index)}; should be string")
            item = item.get(index, getattr(item, "ELEM_ZERO", None))
        elif item is None:
            raise GoError("index of untyped nil")
        else:
            raise GoError(f"can't index item of type {gv.type_name(item)}")
    return item


def _slice(st: Any, item: Any, *indexes: Any) -> Any:
    if item is None:
        raise GoError("slice of untyped nil")
    if len(indexes) > 3:
        raise GoError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str) and len(indexes) == 3:
        raise GoError("cannot 3-index slice a string")
    if not isinstance(item, (list, str)):
        raise GoError(f"can't slice item of type {gv.type_name(item)}")
    seq = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else item
    cap = len(seq)
    idx = [0, cap, 0]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, cap)
    if idx[0] > idx[1]:
        raise GoError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise GoError(f"invalid slice index: {idx[1]} > {idx[2]}")
    if isinstance(item, str):
        out = seq[idx[0]:idx[1]].decode("utf-8", "replace")
        return type(item)(out) if isinstance(item, gv.HTML) else out
    return type(item)(item[idx[0]:idx[1]])


def _len(st: Any, item: Any) -> int:
    item = indirect(item)
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogatepass"))
    if isinstance(item, (list, dict)):
        return len(item)
    if item is None:
        raise GoError("reflect: call of reflect.Value.Type on zero Value")
    raise GoError(f"len of type {gv.type_name(item)}")


_BASIC_KINDS = frozenset(("bool", "uint", "int", "float", "complex", "string"))


def _basic_kind(v: Any) -> str:
    k = gv.kind(v)
    return k if k in _BASIC_KINDS else "invalid"


_BAD_TYPE = "invalid type for comparison"
_BAD_CMP = "incompatible types for comparison"


def _eq(st: Any, arg1: Any, *arg2: Any) -> bool:
    if len(arg2) == 1 and type(arg1) is str and type(arg2[0]) is str:  # the commonest: two strings
        return arg1 == arg2[0]
    if not arg2:
        raise GoError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in arg2:
        k2 = _basic_kind(arg)
        if k1 != k2:
            if {k1, k2} == {"int", "uint"}:
                t = int(arg1) == int(arg)
            elif arg1 is not None and arg is not None:
                raise GoError(_BAD_CMP)
            else:
                t = False
        elif k1 == "string":
            t = str(arg1) == str(arg)
        elif k1 != "invalid":
            t = arg1 == arg
        else:
            if arg1 is not None and arg is not None and gv.kind(arg1) != gv.kind(arg):
                raise GoError(f"non-comparable types {gv.format_v(arg1, st.compat)}: {gv.type_name(arg1)}, "
                              f"{gv.type_name(arg)}: {gv.format_v(arg, st.compat)}")
            if arg1 is None or arg is None:
                t = arg1 is None and arg is None
            elif isinstance(arg, (list, dict)) or (isinstance(arg, gv.GoStruct) and not _comparable_struct(arg)):
                raise GoError(f"non-comparable type {gv.format_v(arg, st.compat)}: {gv.type_name(arg)}")
            else:
                t = gv.type_name(arg1) == gv.type_name(arg) and arg1 == arg
        if t:
            return True
    return False


def _comparable_struct(v: Any) -> bool:
    return all(not isinstance(v.field(f), (list, dict)) for f in v.FIELDS)


def _lt(st: Any, a: Any, b: Any) -> bool:
    k1, k2 = _basic_kind(a), _basic_kind(b)
    if k1 == "invalid" or k2 == "invalid":
        raise GoError(_BAD_TYPE)
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return int(a) < int(b)
        raise GoError(_BAD_CMP)
    if k1 in ("bool", "complex"):
        raise GoError(_BAD_TYPE)
    if k1 == "string":
        return str(a).encode("utf-8", "surrogatepass") < str(b).encode("utf-8", "surrogatepass")
    return a < b


def _le(st: Any, a: Any, b: Any) -> bool:
    return _lt(st, a, b) or _eq(st, a, b)


def _call(st: Any, fn: Any, *args: Any) -> Any:
    if fn is None:
        raise GoError("call of nil")
    if st.compat == "0.25":
        raise GoError(f"non-function of type {gv.type_name(fn)}")
    raise GoError(f"non-function {gv.format_v(fn, st.compat)} of type {gv.type_name(fn)}")


BUILTINS: Dict[str, Func] = {
    "and": Func(lambda *a: None, ("value", "value"), True, "and"),
    "or": Func(lambda *a: None, ("value", "value"), True, "or"),
    "call": Func(with_state(_call), ("value", "value"), True, "call"),
    "html": Func(bounded(with_state(lambda st, *a: _html_escape(_eval_args(st, list(a))))), ("any",), True, "html"),
    "js": Func(bounded(with_state(lambda st, *a: _js_escape(_eval_args(st, list(a))))), ("any",), True, "js"),
    "urlquery": Func(bounded(with_state(lambda st, *a: _query_escape(_eval_args(st, list(a))))), ("any",), True),
    "index": Func(with_state(_index), ("value", "value"), True, "index"),
    "slice": Func(with_state(_slice), ("value", "value"), True, "slice"),
    "len": Func(with_state(_len), ("value",), False, "len"),
    "not": Func(with_state(lambda st, a: not truth(a)), ("value",), False, "not"),
    "print": Func(bounded(with_state(lambda st, *a: gv.sprint(list(a), st.compat))), ("any",), True),
    "printf": Func(bounded(with_state(lambda st, fmt, *a: gv.sprintf(fmt, list(a), st.compat))),
                   ("string", "any"), True),
    "println": Func(bounded(with_state(lambda st, *a: gv.sprintln(list(a), st.compat))), ("any",), True),
    "eq": Func(with_state(_eq), ("value", "value"), True),
    "ne": Func(with_state(lambda st, a, b: not _eq(st, a, b)), ("value", "value")),
    "lt": Func(with_state(_lt), ("value", "value")),
    "le": Func(with_state(_le), ("value", "value")),
    "gt": Func(with_state(lambda st, a, b: not _le(st, a, b)), ("value", "value")),
    "ge": Func(with_state(lambda st, a, b: not _lt(st, a, b)), ("value", "value")),
}
