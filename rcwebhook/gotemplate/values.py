"""Go values as Go's text/template and fmt see them: their types, and printing (%v, %#v and printf).

The template engine works on ordinary Python values (str, int, float, bool, None for Go's invalid
value, list, dict), on the classes here, which carry the Go type that Go's error messages and
printing depend on, and on the time package's (gotime).
"""

from __future__ import annotations

import functools
import math
from typing import Any, List, Optional, Tuple

from .gotime import (DAYS, MONTHS, UTC, Duration, GoTime, Int64, Location, Month, Weekday,
                     duration_string, location_of, time_string)

# ---------------------------------------------------------------------------------------------
# Typed values


class GoStruct:
    """A Go struct value: FIELDS in declaration order, TYPE its Go name; METHODS name callables."""

    TYPE = "struct"
    FIELDS: Tuple[str, ...] = ()
    METHODS: dict = {}

    def field(self, name: str) -> Any:
        return getattr(self, name)


class Ptr:
    """A Go pointer to a struct: printed with & at the top, as an address below it."""

    __slots__ = ("elem",)

    def __init__(self, elem: Any) -> None:
        self.elem = elem


class TypedSlice(list):
    """A Go slice of a named element type; TYPE is the slice's Go type name."""

    TYPE = "[]interface {}"
    METHODS: dict = {}


class StringSlice(TypedSlice):
    TYPE = "[]string"


class TypedMap(dict):
    TYPE = "map[string]string"
    METHODS: dict = {}
    ELEM_ZERO: Any = ""


class HTML(str):
    """html/template's HTML type: a string of another Go type."""


class URL(str):
    """html/template's URL type: a string of another Go type."""


class Uint8(int):
    """A byte (what index gives for a string)."""


# a value's Go type name and reflect kind: those of the first class here it is an instance of
_GO_TYPES = ((type(None), "<nil>"), (bool, "bool"), (Duration, "time.Duration"), (Uint8, "uint8"),
             (Month, "time.Month"), (Weekday, "time.Weekday"), (Int64, "int64"), (int, "int"),
             (float, "float64"), (complex, "complex128"), (HTML, "template.HTML"),
             (URL, "template.URL"), (str, "string"), (GoTime, "time.Time"),
             (Location, "*time.Location"), (list, "[]interface {}"),
             (dict, "map[string]interface {}"))
_KINDS = ((type(None), "invalid"), (bool, "bool"), (Uint8, "uint"), (int, "int"), (float, "float"),
          (complex, "complex"), (str, "string"), (list, "slice"), (dict, "map"),
          ((Ptr, Location), "ptr"))
_TYPE_NAMES: dict = {}  # Python class -> Go type name, for the classes whose name is their class's
_KINDS_OF: dict = {}


def type_name(v: Any) -> str:
    """Go's name of the type of `v` (as %T and error messages print it)."""
    name = _TYPE_NAMES.get(type(v))
    if name is None and isinstance(v, Ptr):  # a pointer's name is its element's: never kept
        return "*" + type_name(v.elem)
    if name is None:
        name = v.TYPE if isinstance(v, (GoStruct, TypedSlice, TypedMap)) else \
            next((n for cls, n in _GO_TYPES if isinstance(v, cls)), type(v).__name__)
        _TYPE_NAMES[type(v)] = name
    return name


def kind(v: Any) -> str:
    """Go's reflect kind: invalid, bool, (u)int, float, complex, string, slice, map, struct, ptr."""
    k = _KINDS_OF.get(type(v))
    if k is None:
        k = _KINDS_OF[type(v)] = next((k for cls, k in _KINDS if isinstance(v, cls)), "struct")
    return k


# ---------------------------------------------------------------------------------------------
# %v


def stringer(v: Any, compat: str) -> Optional[str]:
    """The String() of `v` when its Go type has one, else None."""
    if isinstance(v, GoTime):
        return time_string(v)
    if isinstance(v, Location):
        return v.name
    if isinstance(v, Duration):
        return duration_string(int(v))
    if isinstance(v, Month):
        return MONTHS[v - 1] if 1 <= v <= 12 else f"%!Month({int(v)})"
    if isinstance(v, Weekday):
        return DAYS[v] if 0 <= v <= 6 else f"%!Weekday({int(v)})"
    method = getattr(v, "METHODS", {}).get("String")
    if method is not None and (compat != "0.25" or not getattr(method, "since_026", False)):
        return method.fn(v)
    return None


def format_v(v: Any, compat: str, depth: int = 0, plus: bool = False) -> str:
    """fmt's %v (and Sprint) of `v`."""
    if v is None:
        return "<nil>"
    s = stringer(v, compat)
    if s is not None:
        return s
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return format_float(v, "g", -1)
    if isinstance(v, complex):
        return _complex(v)
    if isinstance(v, str):
        return str(v)
    if isinstance(v, Ptr):
        if depth == 0:
            return "&" + format_v(v.elem, compat, depth + 1, plus)
        return "0xc000010000"
    if isinstance(v, list):
        return "[" + " ".join(format_v(x, compat, depth + 1, plus) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{format_v(k, compat, depth + 1, plus)}:{format_v(x, compat, depth + 1, plus)}"
                                 for k, x in sorted(v.items())) + "]"
    if isinstance(v, GoStruct):
        texts = ((name, format_v(v.field(name), compat, depth + 1, plus)) for name in v.FIELDS)
        return "{" + " ".join(f"{name}:{text}" if plus else text for name, text in texts) + "}"
    return str(v)


def _complex(v: complex) -> str:
    imag = format_float(v.imag, "g", -1)
    sign = "" if imag.startswith(("-", "+")) else "+"
    return "(" + format_float(v.real, "g", -1) + sign + imag + "i)"


def _sign(f: float) -> str:
    """Go's sign of a float that is not NaN: "-" for a negative one and for -0."""
    return "-" if math.copysign(1, f) < 0 else ""


def format_float(f: float, verb: str, prec: int) -> str:
    """strconv.FormatFloat / fmt for one float verb (e, E, f, F, g, G), prec -1 meaning shortest."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if verb in "fF":
        if prec < 0:
            digits, exp = _shortest(f)
            prec = max(len(digits) - exp, 0)
        return f"{f:.{prec}f}"
    if verb in "eE":
        if prec < 0:
            digits, exp = _shortest(f)
            prec = len(digits) - 1
        return f"{f:.{prec}{verb}}"  # Python's exponents have at least two digits, as Go's do
    # g, G
    if prec < 0:
        digits, exp = _shortest(f)  # f = 0.digits * 10**exp
        x = exp - 1
        if x < -4 or x >= 6:  # strconv's rule for the shortest form
            mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            out = f"{_sign(f)}{mant}e{'+' if x >= 0 else '-'}{abs(x):02d}"
            return out.upper() if verb == "G" else out
        return _plain(f, digits, exp)
    if prec == 0:
        prec = 1
    return f"{f:.{prec}{verb}}"


def _shortest(f: float) -> Tuple[str, int]:
    """The shortest decimal digits of |f| and the exponent e such that |f| = 0.DIGITS * 10**e."""
    if f == 0:
        return "0", 1
    mant, _, exp = repr(abs(f)).partition("e")
    whole, _, frac = mant.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + int(exp or 0) - (len(whole + frac) - len(digits))
    return digits.rstrip("0") or "0", point


def _plain(f: float, digits: str, exp: int) -> str:
    sign = _sign(f)
    if exp <= 0:
        return sign + "0." + "0" * (-exp) + digits
    if exp >= len(digits):
        return sign + digits + "0" * (exp - len(digits))
    return sign + digits[:exp] + "." + digits[exp:]


# ---------------------------------------------------------------------------------------------
# printf


def sprint(args: List[Any], compat: str) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    return "".join((" " if i and not isinstance(a, str) and not isinstance(args[i - 1], str)
                    else "") + format_v(a, compat) for i, a in enumerate(args))


def sprintln(args: List[Any], compat: str) -> str:
    return " ".join(format_v(a, compat) for a in args) + "\n"


def _bad(verb: str, a: Any, compat: str, plus: bool = False, pad: Optional["_Pad"] = None,
         prec: Optional[int] = None) -> str:
    if a is None:
        return f"%!{verb}(<nil>)"
    text = format_v(a, compat)
    if prec is not None and isinstance(a, str):
        text = text[:prec]
    elif prec is not None and isinstance(a, float):
        text = format_float(a, "g", prec)
    elif prec is not None and isinstance(a, int) and not isinstance(a, bool) and stringer(a, compat) is None:
        text = ("-" if a < 0 else "") + str(abs(int(a))).zfill(prec)
    if plus and isinstance(a, (int, float)) and not isinstance(a, bool) and not text.startswith(("-", "+")) \
            and stringer(a, compat) is None:
        text = "+" + text
    if pad is not None:
        text = pad(text, not (prec is not None and isinstance(a, int) and not isinstance(a, bool)))
    return _Padded(f"%!{verb}({type_name(a)}={text})")


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
            "\t": "\\t", "\v": "\\v"}


def go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o >= 0x80 and (ascii_only or not ch.isprintable()):  # (surrogates are not printable)
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def sprintf(fmt: str, args: List[Any], compat: str) -> str:
    """fmt.Sprintf for the verbs templates use."""
    simple = simple_format(fmt)
    if simple is not None and len(args) == len(simple) // 2 and all(type(a) is str for a in args):
        # only bare %s, %v or %q of plain strings, as most templates' printf: no padding, no conversion
        out = [simple[0]]
        for i, a in enumerate(args):
            out.append(go_quote(a) if simple[2 * i + 1] == "q" else a)
            out.append(simple[2 * i + 2])
        return "".join(out)
    out: List[str] = []
    i, n, argi = 0, len(fmt), 0
    while i < n:
        c = fmt[i]
        if c != "%":
            j = fmt.find("%", i)
            j = n if j < 0 else j
            out.append(fmt[i:j])
            i = j
            continue
        i += 1
        minus = plus = zero = sharp = space = False
        while i < n and fmt[i] in "-+0# ":
            f = fmt[i]
            minus |= f == "-"
            plus |= f == "+"
            zero |= f == "0"
            sharp |= f == "#"
            space |= f == " "
            i += 1
        width, i = _parse_num(fmt, i, n)
        prec = None
        if i < n and fmt[i] == ".":
            prec, i = _parse_num(fmt, i + 1, n)
            prec = prec or 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        pad = _Pad(width, minus, zero and not minus)
        out.append(_one(verb, args[argi], prec, plus, sharp, space, compat, pad))
        argi += 1
    if argi < len(args):
        extra = ", ".join("<nil>" if a is None else f"{type_name(a)}={format_v(a, compat)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _parse_num(fmt: str, i: int, n: int) -> Tuple[Optional[int], int]:
    """fmt's parsenum: a width or precision of ASCII digits at i (None for none) and the index after it.
    A number past a million is no number, and the rest of the format is taken with it (Go's
    "%!(NOVERB)" follows): no width or precision makes a string of more than some ten million."""
    num, j = 0, i
    while j < n and "0" <= fmt[j] <= "9":
        if num > 1_000_000:
            return None, n
        num = num * 10 + ord(fmt[j]) - 48
        j += 1
    return (num if j > i else None), j


@functools.lru_cache(maxsize=256)
def simple_format(fmt: str) -> Optional[Tuple[str, ...]]:
    """(text, verb, text, verb, ..., text) when every verb of a format is a bare %s, %v or %q; else None."""
    if "\0" in fmt:
        return None
    parts = fmt.replace("%%", "\0").split("%")
    out = [parts[0]]
    for part in parts[1:]:
        if not part or part[0] not in "svq":
            return None
        out += [part[0], part[1:]]
    return tuple(t.replace("\0", "%") for t in out)


def _float_b_x(f: float, verb: str, prec: Optional[int]) -> str:
    """strconv's 'b' (decimal mantissa, binary exponent) and 'x'/'X' (hexadecimal) float formats."""
    if math.isnan(f) or math.isinf(f):
        return format_float(f, "g", -1)
    sign = _sign(f)
    f = abs(f)
    if verb == "b":
        if f == 0:
            return sign + "0p-1074"
        m, e = math.frexp(f)
        mant, exp = int(m * (1 << 53)), e - 53
        if exp < -1074:
            mant >>= (-1074 - exp)
            exp = -1074
        return f"{sign}{mant}p{'+' if exp >= 0 else '-'}{abs(exp)}"
    if f == 0:
        text = "0x0p+00"
    else:
        h = f.hex()  # 0x1.8000000000000p+1
        mant, _, exp = h[2:].partition("p")
        lead, _, frac = mant.partition(".")
        frac = frac.rstrip("0")
        e = int(exp)
        if lead == "0":  # subnormal: normalise as Go does
            m, e2 = math.frexp(f)
            bits = int(m * (1 << 53))
            lead, frac = "1", f"{bits & ((1 << 52) - 1):013x}".rstrip("0")
            e = e2 - 1
        if prec is not None:
            full = int(lead + (frac.ljust(13, "0")), 16)
            shift = (13 - prec) * 4
            if shift > 0:
                q, r = divmod(full, 1 << shift)
                half = 1 << (shift - 1)
                if r > half or (r == half and q & 1):
                    q += 1
                full_digits = f"{q:x}"
                if len(full_digits) > 1 + prec:
                    q >>= 1
                    e += 1
                    full_digits = f"{q:x}"
                lead, frac = full_digits[0], full_digits[1:1 + prec]
            else:
                frac = frac.ljust(prec, "0")
        text = f"0x{lead}{'.' + frac if frac else ''}p{'+' if e >= 0 else '-'}{abs(e):02d}"
    text = sign + text
    return text.upper() if verb == "X" else text


def _sharp_float(num: str, verb: str, prec: Optional[int]) -> str:
    """fmt's # flag on a float: always a decimal point, and %g/%x keep trailing zeros (Go's rule)."""
    if num in ("NaN", "+Inf", "-Inf") or verb == "b":
        return num
    digits = (6 if prec is None else prec) if verb in "vgGx" else 0
    sign = num[0] if num[:1] in ("+", "-") else ""
    body = num[len(sign):]
    exponent = "pP" if verb in "xX" else "pPeE"
    cut = next((i for i, ch in enumerate(body) if ch in exponent), len(body))
    text, tail = body[:cut], body[cut:]
    digits -= len(text.replace(".", "").lstrip("0"))  # the digits from the first that is not 0 on
    if "." not in text:
        if text == "0":
            digits -= 1
        text += "."
    return sign + text + "0" * max(digits, 0) + tail


class _Padded(str):
    pass


class _Pad:
    """A verb's width and flags: applied to each element of a slice, map or struct, and inside %!verb(...)."""

    __slots__ = ("width", "minus", "zero")

    def __init__(self, width: Optional[int] = None, minus: bool = False, zero: bool = False) -> None:
        self.width, self.minus, self.zero = width, minus, zero

    def __call__(self, text: str, zero_ok: bool = True) -> str:
        width = self.width
        if width is None or len(text) >= width:
            return text
        if self.minus:
            return text + " " * (width - len(text))
        if self.zero and zero_ok:
            sign = text[0] if text[:1] in ("+", "-") else ""
            return sign + "0" * (width - len(text)) + text[len(sign):]
        return " " * (width - len(text)) + text


_NOPAD = _Pad()


def _one(verb: str, a: Any, prec: Optional[int], plus: bool, sharp: bool, space: bool, compat: str,
         pad: _Pad = _NOPAD) -> str:
    if verb == "v" and sharp:
        return pad(format_sharp_v(a, compat))
    stringer_ok = verb in "vsxXq"
    if a is not None and not isinstance(a, (GoTime, Duration, Month, Weekday)) and \
            (not stringer_ok or stringer(a, compat) is None) and isinstance(a, (list, dict, GoStruct, Ptr)) and verb != "T":
        return _compound(verb, a, prec, compat, pad, plus, sharp)
    text = _one_scalar(verb, a, prec, plus, sharp, space, compat, pad)
    if isinstance(text, _Padded):
        return str(text)  # a wrong verb's value is padded inside its %!verb(...)
    return pad(text, not (prec is not None and verb in "dboxXv" and isinstance(a, int) and not isinstance(a, bool)))


def _one_scalar(verb: str, a: Any, prec: Optional[int], plus: bool, sharp: bool, space: bool, compat: str,
                pad: _Pad) -> str:
    if verb == "T":
        return type_name(a)
    if verb == "v":
        if a is None:
            return "<nil>"
        if isinstance(a, float) and prec is not None:
            return format_float(a, "g", prec)
        if prec is not None:
            text = stringer(a, compat)
            if text is None and isinstance(a, int) and not isinstance(a, bool):
                return _one_scalar("d", a, prec, plus, sharp, space, compat, pad)
            if text is not None or isinstance(a, str):
                return (str(a) if text is None else text)[:prec]
        return format_v(a, compat, plus=plus)
    if a is None:
        return f"%!{verb}(<nil>)"
    if verb == "q" and isinstance(a, int) and not isinstance(a, bool):
        ch = chr(a) if 0 <= a <= 0x10FFFF and not 0xD800 <= a <= 0xDFFF else "\ufffd"
        return "'" + go_quote(ch, plus)[1:-1].replace("\\\"", "\"").replace("'", "\\'") + "'"
    if verb == "s" or verb == "q":
        s = stringer(a, compat)
        if s is None and not isinstance(a, str):
            return _bad(verb, a, compat, plus, pad, prec)
        s = (str(a) if s is None else s)[:prec]
        return go_quote(s, plus) if verb == "q" else s
    if verb == "t" and isinstance(a, bool):
        return "true" if a else "false"
    if verb == "t" or isinstance(a, bool):
        return _bad(verb, a, compat, plus, pad, prec)
    if verb in "dboxXcU":
        if isinstance(a, int):
            v = int(a)
            if verb == "c":
                return chr(v) if 0 <= v <= 0x10FFFF and not 0xD800 <= v <= 0xDFFF else "\ufffd"
            if verb == "U":
                return f"U+{v:04X}"
            s = format(abs(v), verb).zfill(prec or 0)  # d, b, o, x, X: Python's format codes too
            if sharp and verb in "xX":
                s = "0" + verb + s
            sign = "-" if v < 0 else ("+" if plus else (" " if space else ""))
            return sign + s
        if verb in "xX" and (isinstance(a, str) or stringer(a, compat) is not None):
            data = (str(a) if isinstance(a, str) else stringer(a, compat)).encode("utf-8", "surrogatepass")
            s = data[:prec].hex()
            s = ("0x" + s if sharp and s else s)
            return s.upper() if verb == "X" else s
        if verb in "bxX" and isinstance(a, float):
            return _sharp_float(_float_b_x(a, verb, prec), verb, prec) if sharp else _float_b_x(a, verb, prec)
        return _bad(verb, a, compat, plus, pad, prec)
    if verb in "eEfFgG":
        if isinstance(a, float):
            s = format_float(a, verb, (-1 if verb in "gG" else 6) if prec is None else prec)
            if sharp:
                s = _sharp_float(s, verb, prec)
            if plus and not s.startswith(("-", "+")):
                s = "+" + s
            elif space and not s.startswith("-"):
                s = " " + s
            return s
        return _bad(verb, a, compat, plus, pad, prec)
    return _bad(verb, a, compat, plus, pad, prec)


def _compound(verb: str, a: Any, prec: Optional[int], compat: str, pad: "_Pad" = _NOPAD,
              plus: bool = False, sharp: bool = False) -> str:
    """A verb applied to each element of a slice, map or struct (width too), as fmt does."""
    def one(x: Any) -> str:
        return _one(verb, x, prec, plus, sharp, False, compat, pad)
    if isinstance(a, Ptr):
        return "&" + _compound(verb, a.elem, prec, compat, pad, plus, sharp)
    if isinstance(a, list):
        return "[" + " ".join(one(x) for x in a) + "]"
    if isinstance(a, dict):
        return "map[" + " ".join(f"{one(k)}:{one(x)}" for k, x in sorted(a.items())) + "]"
    if verb == "v" and plus:
        return "{" + " ".join(f"{f}:{one(a.field(f))}" for f in a.FIELDS) + "}"
    return "{" + " ".join(one(a.field(f)) for f in a.FIELDS) + "}"


# ---------------------------------------------------------------------------------------------
# %#v


def go_string_time(t: GoTime) -> str:
    """time.Time's GoString: `time.Date(2026, time.January, 30, 10, 0, 0, 0, time.UTC)`."""
    c = t.civil()
    loc = location_of(t)
    where = "time.Local" if loc.local else "time.UTC" if loc is UTC or (loc.name == "UTC" and loc.tz is None) \
        else f"time.Location({go_quote(loc.name)})"
    return (f"time.Date({c.year}, time.{MONTHS[c.month - 1]}, {c.day}, {c.hour}, {c.minute}, {c.second}, "
            f"{t.nsec}, {where})")


def format_sharp_v(v: Any, compat: str, top: bool = True) -> str:
    """fmt's %#v: the value as Go source would write it (type names, quoted strings)."""
    if v is None:
        return "<nil>" if top else "interface {}(nil)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Uint8):
        return f"0x{int(v):x}"
    if isinstance(v, int):
        return str(int(v))  # Duration, Month and Weekday too: %#v ignores String methods
    if isinstance(v, float):
        return format_float(v, "g", -1)
    if isinstance(v, complex):
        return _complex(v)
    if isinstance(v, str):
        return go_quote(str(v))
    if isinstance(v, GoTime):
        return go_string_time(v)
    if isinstance(v, Location):
        if v.tz is None and v.name == "UTC" and not v.local:
            return ('&time.Location{name:"UTC", zone:[]time.zone(nil), tx:[]time.zoneTrans(nil), extend:"", '
                    'cacheStart:0, cacheEnd:0, cacheZone:(*time.zone)(nil)}')
        return f"&time.Location{{name:{go_quote(v.name)}}}"  # Go's also shows the zone's transition tables
    if isinstance(v, Ptr):
        return "&" + format_sharp_v(v.elem, compat, top) if top else f"(*{type_name(v.elem)})(0xc000010000)"
    if isinstance(v, (list, dict)) and not v and getattr(v, "nil", False):
        return type_name(v) + "(nil)"
    if isinstance(v, list):
        typed = isinstance(v, TypedSlice) and v.TYPE != "[]interface {}"
        return type_name(v) + "{" + ", ".join(format_sharp_v(x, compat, typed) for x in v) + "}"
    if isinstance(v, dict):
        typed = isinstance(v, TypedMap)
        return type_name(v) + "{" + ", ".join(f"{format_sharp_v(k, compat)}:{format_sharp_v(x, compat, typed)}"
                                              for k, x in sorted(v.items())) + "}"
    if isinstance(v, GoStruct):
        return v.TYPE + "{" + ", ".join(f"{name}:{format_sharp_v(v.field(name), compat, False)}"
                                        for name in v.FIELDS) + "}"
    return str(v)
