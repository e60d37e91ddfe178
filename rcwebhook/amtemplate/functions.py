"""Alertmanager's template functions (toUpper, match, reReplaceAll, humanizeDuration, toJson, ...) on
top of Go's built-ins, as each Alertmanager version (compat) has them, and a template set built with
them.

Regular expressions run in gotemplate.regexp, in time linear in the text, as Go's do.
"""

from __future__ import annotations

import json
import math
import re
import time as _clock
import unicodedata
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote_to_bytes

from ..gotemplate import regexp
from ..gotemplate import nodes as gt
from ..gotemplate.funcs import Func, GoError, bounded, with_state
from ..gotemplate.gotime import ZERO_TIME_SEC, Duration, GoTime, Int64, Location, time_format, time_in
from ..gotemplate.regexp import RegexpError
from ..gotemplate.template import BUILTINS, ParseError, Template
from ..gotemplate.timeparse import parse_layout
from ..gotemplate.parse import parse_float
from ..gotemplate.values import HTML, URL, GoStruct, Ptr, StringSlice, format_v, go_quote, sprintf, type_name
from .compat import COMPATS, DEFAULT_COMPAT, level
from .data import JSON_NAMES


# --- Go regular expressions, as Go runs them: in time linear in the text --------------------------


def compile_regexp(pattern: str, compat: str = DEFAULT_COMPAT) -> regexp.Regexp:
    """Compile a Go regular expression as the given Alertmanager's Go does; RegexpError with Go's
    wording when Go would refuse it (unsupported=True: Go accepts it, gotemplate.regexp cannot run it)."""
    return regexp.compile(pattern, angle_names=compat != "0.25")  # (?<name>) is Go 1.22's


def _regexp_functions(compat: str) -> Tuple[Callable[[str, str], bool], Callable[[str, str, str], str]]:
    """Alertmanager's match (regexp.MatchString) and reReplaceAll (MustCompile, ReplaceAllString)."""
    def match(pattern: str, s: str) -> bool:
        try:
            return compile_regexp(pattern, compat).match_string(s)
        except RegexpError as exc:
            raise GoError(str(exc)) from None

    def re_replace_all(pattern: str, repl: str, text: str) -> str:
        try:
            regex = compile_regexp(pattern, compat)
        except RegexpError as exc:
            quoted = f"`{pattern}`" if _can_backquote(pattern) else go_quote(pattern)
            raise GoError(f"regexp: Compile({quoted}): {exc}") from None
        return regex.replace_all_string(text, repl)

    def match_literal(pattern: str) -> Optional[Callable[[str], bool]]:
        try:
            return compile_regexp(pattern, compat).match_string
        except RegexpError:
            return None  # match itself says why, when it runs

    def replace_all_literal(pattern: str) -> Optional[Callable[[str, str], str]]:
        try:
            regex = compile_regexp(pattern, compat)
        except RegexpError:
            return None
        return bounded(lambda repl, text: regex.replace_all_string(text, repl))

    # a literal pattern is compiled once, where the template is compiled (see gotemplate.codegen)
    match.with_literal_first = match_literal  # type: ignore[attr-defined]
    re_replace_all.with_literal_first = replace_all_literal  # type: ignore[attr-defined]
    return match, re_replace_all


def _string_slice(*s: str) -> StringSlice:
    return StringSlice(s)


_string_slice.pure = True  # type: ignore[attr-defined]  # with literals only, made once (gotemplate.codegen)


REGEXP_FUNCTIONS = {compat: _regexp_functions(compat) for compat in COMPATS}


def _can_backquote(s: str) -> bool:
    """strconv.CanBackquote."""
    return all(c == "\t" or (c >= " " and c not in "`\x7f\ufeff") for c in s)


# --- Strings --------------------------------------------------------------------------------------


def _go_upper(s: str) -> str:
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in s)


_SIMPLE_LOWER = {"İ": "i"}


def _go_lower(s: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else _SIMPLE_LOWER.get(c, c) for c in s)


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_" or unicodedata.category(c) in ("Mn", "Mc", "Me", "Pc")


_TITLE_MID = set("'.:·‘’\u00ad\u0387\u05f4\u2024\ufe13\ufe52\ufe55\uff07\uff0e\uff1a")


def _title(s: str) -> str:
    """golang.org/x/text/cases Title (American English): in each word the first cased letter upper
    (title) case, the letters after it lower case; digits start no case; a word goes on over
    ' . : · ’ and a soft hyphen, as x/text's caser has it."""
    out = []
    seen = False  # a cased letter of this word has been seen
    for i, c in enumerate(s):
        if not _is_word(c) or c == "\u200b":
            out.append(c)
            seen = seen and c in _TITLE_MID
        elif not c.isalpha() or c.lower() == c == c.upper():  # no case
            out.append(c)
        elif not seen:
            out.append(c.title())
            seen = True
        elif c == "Σ":  # final sigma at the end of a word
            out.append("σ" if s[i + 1:i + 2].isalpha() else "ς")
        else:
            low = c.lower()
            out.append(low if len(low) == 1 else _SIMPLE_LOWER.get(c, c))
    return "".join(out)


# --- Times and durations --------------------------------------------------------------------------


def _tz(name: str, t: GoTime) -> GoTime:
    if name in ("", "UTC"):
        return time_in(t, None)
    if name == "Local":
        raise GoError("unknown time zone Local")
    try:
        from zoneinfo import ZoneInfo
        tz = ZoneInfo(name)
    except Exception:
        raise GoError(f"unknown time zone {name}") from None
    return time_in(t, Location(name, tz))


def _since(t: GoTime) -> Duration:
    now = _clock.time_ns()
    d = now - (t.sec * 1_000_000_000 + t.nsec)
    return Duration(max(min(d, (1 << 63) - 1), -(1 << 63)))


def _humanize_duration(i: Any) -> str:
    if isinstance(i, bool) or i is None:
        raise GoError(f"can't convert {type_name(i)} to float")
    if isinstance(i, Duration):
        v = int(i) / 1e9
    elif isinstance(i, float):
        v = i
    elif type(i) in (int, Int64):
        v = float(i)
    elif type(i) is str:
        try:
            v = parse_float(i)
        except ValueError as e:
            raise GoError(f"strconv.ParseFloat: parsing {go_quote(i)}: {e}") from None
    else:
        raise GoError(f"can't convert {type_name(i)} to float")
    if math.isnan(v) or math.isinf(v):
        return sprintf("%.4g", [v], DEFAULT_COMPAT)
    if v == 0:
        return sprintf("%.4gs", [v], DEFAULT_COMPAT)
    if abs(v) >= 1:
        sign, v = "-" if v < 0 else "", abs(v)
        dur = int(v)
        if dur >= 1 << 63:  # Go's int64(v) on amd64 makes it the smallest int64, printed as such
            return sign + "-106751991167300d -15h -30m -8s"
        units = ((dur // 86400, "d"), (dur // 3600 % 24, "h"), (dur // 60 % 60, "m"))
        for i, (count, _) in enumerate(units):  # from the largest unit that is not 0 down to seconds
            if count:
                return sign + " ".join(f"{n}{unit}" for n, unit in units[i:]) + f" {dur % 60}s"
        return sign + sprintf("%.4gs", [v], DEFAULT_COMPAT)
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return sprintf("%.4g", [v], DEFAULT_COMPAT) + prefix + "s"


# --- The functions of Alertmanager 0.30 to 0.34 ---------------------------------------------------


_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def _url_unescape(s: str) -> str:
    """url.QueryUnescape: %XX and + (a space); an invalid escape is an error naming it."""
    raw = s.encode("utf-8", "surrogateescape")
    bad = _BAD_ESCAPE.search(raw)
    if bad:
        escape = raw[bad.start():bad.start() + 3].decode("utf-8", "surrogateescape")
        raise GoError(f"invalid URL escape {go_quote(escape)}")
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "replace")


# The types with Go json tags (data.JSON_NAMES); untagged fields (rcwebhook's Route and Severity, a Pair's) keep names.
_JSON_TAGGED = ("template.Data", "template.Alert")
_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_SPECIAL = re.compile('["\\\\<>&\u2028\u2029\x00-\x1f]')


def _json_string(s: str) -> str:
    """A JSON string as Go's encoding/json writes one (HTML characters escaped as \\u003c...)."""
    return '"' + _JSON_SPECIAL.sub(lambda m: _JSON_ESCAPES.get(m.group(), "\\u%04x" % ord(m.group())), s) + '"'


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise GoError(f"json: unsupported value: {format_v(f, DEFAULT_COMPAT)}")
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    if 1e-6 <= abs(f) < 1e21:
        from decimal import Decimal
        text = format(Decimal(repr(f)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    text = repr(f)  # the shortest digits, as an exponent here
    mantissa, _, exp = text.partition("e")
    sign, digits = exp[0], exp[1:].lstrip("0") or "0"
    return f"{mantissa}e{sign}{digits.zfill(2) if sign == '+' else digits}"


def to_json(v: Any, depth: int = 0) -> str:
    """json.Marshal of a template value, as Alertmanager's toJson returns it."""
    if depth > 100:
        raise GoError("json: unsupported value: encountered a cycle")
    if isinstance(v, Ptr):
        v = v.elem
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return _json_float(v)
    if isinstance(v, complex):
        raise GoError("json: unsupported type: complex128")
    if isinstance(v, str):
        return _json_string(v)
    if isinstance(v, GoTime):
        if not -62167219200 <= v.sec + v.offset < 253402300800:
            raise GoError("json: error calling MarshalJSON for type time.Time: Time.MarshalJSON: year outside of "
                          "range [0,9999]")
        return '"' + time_format(v, "2006-01-02T15:04:05.999999999Z07:00") + '"'
    if isinstance(v, Location):
        return "{}"
    if isinstance(v, (dict, list)) and getattr(v, "nil", False):
        return "null"
    if isinstance(v, dict):
        return "{" + ",".join(f"{_json_string(str(k))}:{to_json(x, depth + 1)}" for k, x in
                              sorted(v.items(), key=lambda kv: str(kv[0]).encode("utf-8", "surrogatepass"))) + "}"
    if isinstance(v, list):
        return "[" + ",".join(to_json(x, depth + 1) for x in v) + "]"
    if isinstance(v, GoStruct):
        tagged = any(getattr(cls, "TYPE", "") in _JSON_TAGGED for cls in type(v).__mro__)
        return "{" + ",".join(f'"{JSON_NAMES.get(name, name) if tagged else name}":{to_json(v.field(name), depth + 1)}'
                              for name in v.FIELDS) + "}"
    raise GoError(f"json: unsupported type: {type_name(v)}")


MAX_ITEMS = 10_000  # elements of a list append makes: each append copies, so a loop of them stays cheap


def _append(items: Optional[List[Any]], *args: Any) -> List[Any]:
    if len(items or ()) + len(args) > MAX_ITEMS:
        raise GoError(f"result longer than {MAX_ITEMS} elements")
    return list(items or ()) + list(args)


def _dict(*values: Any) -> Dict[str, Any]:
    if len(values) % 2:
        raise GoError("dict requires an even number of arguments")
    if any(type(key) is not str for key in values[::2]):  # a Go string, not a template.HTML or another string type
        raise GoError("dict keys must be strings")
    return dict(zip(values[::2], values[1::2]))


@with_state
def _now(st: Any) -> GoTime:
    ns = _clock.time_ns()
    return time_in(GoTime(ns // 1_000_000_000, ns % 1_000_000_000), st.tmpl.local)


def _base64encode(s: str) -> str:
    import base64
    return base64.urlsafe_b64encode(s.encode("utf-8", "surrogateescape")).decode("ascii")


def _base64decode(s: str) -> str:
    """base64.URLEncoding.DecodeString (padded, the URL-safe alphabet); its error names the first bad byte."""
    import base64
    raw = s.encode("utf-8", "surrogateescape")
    bad = _base64_problem(raw)
    if bad is not None:
        raise GoError(f"illegal base64 data at input byte {bad}")
    return base64.urlsafe_b64decode(raw).decode("utf-8", "replace")


_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _base64_problem(src: bytes) -> Optional[int]:
    """The input byte Go's padded decoder (base64.URLEncoding) reports as illegal in `src`, or None when it
    decodes; \\r and \\n are skipped, as Go skips them (a port of its decodeQuantum)."""
    si = 0
    while True:
        j = 0
        while j < 4:
            if si == len(src):
                if j == 0:
                    return None
                return si - j  # a quantum cut short: Go requires the padding
            c = src[si]
            si += 1
            if c in _B64:
                j += 1
                continue
            if c in (0x0A, 0x0D):
                continue
            if c != 0x3D or j < 2:  # not '=', or padding too early
                return si - 1
            if j == 2:  # "==" expected, the first '=' read
                while si < len(src) and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == len(src):
                    return len(src)
                if src[si] != 0x3D:
                    return si - 1
                si += 1
            while si < len(src) and src[si] in (0x0A, 0x0D):
                si += 1
            return si if si < len(src) else None  # trailing garbage after the padding


def _to_date(layout: str, value: str) -> GoTime:
    """toDate: time.ParseInLocation in UTC, the zero time when the text does not fit the layout."""
    try:
        return parse_layout(layout, value)
    except GoError:
        return GoTime(ZERO_TIME_SEC)


# --- Each version's functions ---------------------------------------------------------------------


# Since which Alertmanager each function exists, for those after 0.28.
FUNCTIONS_SINCE: Dict[str, Tuple[str, Func]] = {
    "safeUrl": ("0.30", Func(lambda s: URL(s), ("string",))),
    "urlUnescape": ("0.30", Func(bounded(_url_unescape), ("string",))),
    "toJson": ("0.30", Func(bounded(to_json), ("any",))),
    "list": ("0.32", Func(lambda *args: list(args), ("any",), True)),
    "append": ("0.32", Func(_append, ("[]interface {}", "any"), True)),
    "dict": ("0.32", Func(_dict, ("any",), True)),
    "now": ("0.33", Func(_now, ())),
    "toDate": ("0.34", Func(_to_date, ("string", "string"))),
    "mustToDate": ("0.34", Func(lambda layout, value: parse_layout(layout, value), ("string", "string"))),
    "base64encode": ("0.34", Func(bounded(_base64encode), ("string",))),
    "base64decode": ("0.34", Func(_base64decode, ("string",))),
}


def functions(compat: str = DEFAULT_COMPAT) -> Dict[str, Func]:
    """Go's built-ins and Alertmanager's functions, as the given Alertmanager version has them."""
    funcs = dict(BUILTINS)
    funcs.update({
        "toUpper": Func(bounded(lambda s: s.upper() if s.isascii() else _go_upper(s)), ("string",)),
        "toLower": Func(bounded(lambda s: s.lower() if s.isascii() else _go_lower(s)), ("string",)),
        "title": Func(bounded(_title), ("string",)),
        "join": Func(bounded(lambda sep, s: sep.join(s)), ("string", "[]string")),
        "match": Func(REGEXP_FUNCTIONS[compat][0], ("string", "string")),
        "safeHtml": Func(lambda s: HTML(s), ("string",)),
        "reReplaceAll": Func(bounded(REGEXP_FUNCTIONS[compat][1]), ("string", "string", "string")),
        "stringSlice": Func(_string_slice, ("string",), True),
    })
    if compat != "0.25":
        funcs.update({
            "trimSpace": Func(lambda s: s.strip(" \t\n\r\v\f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                                                "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"),
                              ("string",)),
            "date": Func(bounded(lambda layout, t: time_format(t, layout)), ("string", "time.Time")),
            "tz": Func(_tz, ("string", "time.Time")),
            "since": Func(_since, ("time.Time",)),
            "humanizeDuration": Func(_humanize_duration, ("any",)),
        })
    funcs.update({name: fn for name, (since, fn) in FUNCTIONS_SINCE.items() if level(compat) >= level(since)})
    return funcs


# --- A template set as Alertmanager builds one ----------------------------------------------------


def new_template(compat: str = DEFAULT_COMPAT) -> Template:
    return Template(functions(compat), compat)


def check_regexps(tmpl: Template) -> None:
    """Refuse at load time a literal pattern given to match or reReplaceAll that cannot be compiled."""
    for tree in tmpl.trees.values():
        stack: List[Any] = [tree.root]
        while stack:
            node = stack.pop()
            # the children that may hold commands, in the attributes that hold them
            stack.extend(child for name in ("nodes", "cmds", "args") for child in getattr(node, name, ()))
            stack.extend(getattr(node, name) for name in ("pipe", "list", "else_list", "node")
                         if getattr(node, name, None) is not None)
            if isinstance(node, gt.CommandNode):
                first = node.args[0]
                if isinstance(first, gt.IdentifierNode) and first.ident in ("match", "reReplaceAll") \
                        and len(node.args) > 1 and isinstance(node.args[1], gt.StringNode):
                    try:
                        compile_regexp(node.args[1].text, tmpl.compat)
                    except RegexpError as exc:
                        if not exc.unsupported:
                            continue  # invalid in Go too: an error when (and if) it runs, as in Go
                        line, col = gt._byte_col(tree.text, node.args[1].pos)
                        raise ParseError(f"template: {tree.parse_name}:{line}:{col}: {exc}",
                                         tree.parse_name, line, col) from None
