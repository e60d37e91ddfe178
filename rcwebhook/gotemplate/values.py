"""Go values as Go's text/template and fmt see them: types, printing (%v and printf), time.

The template engine (gotemplate) works on ordinary Python values (str, int, float, bool, None for
Go's invalid value, list, dict) and on the classes here, which carry the Go type that Go's
error messages and printing depend on.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime, timedelta, timezone
from typing import Any, List, Optional, Tuple

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
    """A Go pointer to a struct (the data Alertmanager hands its templates is a *template.Data)."""

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
    """html/template's HTML type (what safeHtml returns): a string of another Go type."""


class Duration(int):
    """time.Duration: nanoseconds."""


class Uint8(int):
    """A byte (what index gives for a string)."""


class Month(int):
    pass


class Weekday(int):
    pass


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]


class GoTime:
    """time.Time: seconds since the Unix epoch, nanoseconds, and a zone (offset, name)."""

    __slots__ = ("sec", "nsec", "offset", "zone", "tzinfo")

    def __init__(self, sec: int, nsec: int = 0, offset: int = 0, zone: Optional[str] = "UTC", tzinfo: Any = None):
        self.sec, self.nsec, self.offset, self.zone, self.tzinfo = sec, nsec, offset, zone, tzinfo

    def civil(self) -> "Civil":
        return civil(self.sec + self.offset)

    def abbrev(self) -> str:
        """The zone's abbreviation as Go prints it for MST: the name, else the offset as -0700."""
        if self.zone:
            return self.zone
        return _offset(self.offset, "", False)

    def __eq__(self, other: Any) -> bool:  # Go's == on time.Time compares every field
        return isinstance(other, GoTime) and (self.sec, self.nsec, self.offset, self.zone) == \
            (other.sec, other.nsec, other.offset, other.zone)

    def __hash__(self) -> int:
        return hash((self.sec, self.nsec))


ZERO_TIME_SEC = -62135596800


class Location:
    """*time.Location: a zone's name and its rules (a tzinfo; None for UTC's). `local` marks Go's
    time.Local, the zone the process runs in (for rcwebhook's messages: TIMEZONE)."""

    __slots__ = ("name", "tz", "local")

    def __init__(self, name: str, tz: Any = None, local: bool = False) -> None:
        self.name, self.tz, self.local = name, tz, local

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Location) and (self.name, self.local) == (other.name, other.local)

    def __hash__(self) -> int:
        return hash(self.name)


UTC = Location("UTC")


def location_of(t: GoTime) -> Location:
    """The *time.Location of a time: the one it was put in, UTC, or a fixed zone without a name."""
    if isinstance(t.tzinfo, Location):
        return t.tzinfo
    if t.zone == "UTC" and t.offset == 0:
        return UTC
    if not t.zone:
        return Location("", timezone(timedelta(seconds=t.offset)))  # Go's FixedZone("", offset)
    return Location("Local", None, True)  # parsed with an offset the local zone had then


class Civil:
    """A proleptic Gregorian date and time of day (any year, unlike datetime's 1 to 9999)."""

    __slots__ = ("year", "month", "day", "hour", "minute", "second", "wday", "yday")

    def weekday(self) -> int:  # datetime's convention: Monday is 0
        return (self.wday + 6) % 7


def civil(seconds: int) -> Civil:
    """The civil date and time `seconds` after 1970-01-01T00:00:00 (H. Hinnant's days-to-civil)."""
    days, rem = divmod(seconds, 86400)
    c = Civil()
    c.hour, rem = divmod(rem, 3600)
    c.minute, c.second = divmod(rem, 60)
    c.wday = (days + 4) % 7  # 1970-01-01 was a Thursday; Sunday is 0
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    c.day = doy - (153 * mp + 2) // 5 + 1
    c.month = mp + 3 if mp < 10 else mp - 9
    c.year = y + (1 if c.month <= 2 else 0)
    leap = c.year % 4 == 0 and (c.year % 100 != 0 or c.year % 400 == 0)
    c.yday = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334][c.month - 1] + c.day + \
        (1 if leap and c.month > 2 else 0)
    return c


_TYPE_NAMES: dict = {}  # Python class -> Go type name, for the classes whose name is their class's


def type_name(v: Any) -> str:
    """Go's name of the type of `v` (as %T and error messages print it)."""
    name = _TYPE_NAMES.get(type(v))
    if name is not None:
        return name
    name = _type_name(v)
    if not isinstance(v, Ptr):  # a pointer's name is its element's
        _TYPE_NAMES[type(v)] = name
    return name


def _type_name(v: Any) -> str:
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Duration):
        return "time.Duration"
    if isinstance(v, Uint8):
        return "uint8"
    if isinstance(v, Month):
        return "time.Month"
    if isinstance(v, Weekday):
        return "time.Weekday"
    if isinstance(v, int):
        return getattr(v, "GO_TYPE", "int")
    if isinstance(v, float):
        return "float64"
    if isinstance(v, complex):
        return "complex128"
    if isinstance(v, HTML):
        return "template.HTML"
    if isinstance(v, str):
        return "string"
    if isinstance(v, GoTime):
        return "time.Time"
    if isinstance(v, Location):
        return "*time.Location"
    if isinstance(v, Ptr):
        return "*" + type_name(v.elem)
    if isinstance(v, (GoStruct, TypedSlice, TypedMap)):
        return v.TYPE
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    return type(v).__name__


def kind(v: Any) -> str:
    """Go's reflect kind: invalid, bool, int, float, complex, string, slice, map, struct, ptr."""
    if v is None:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, complex):
        return "complex"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "slice"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, (Ptr, Location)):
        return "ptr"
    return "struct"


# ---------------------------------------------------------------------------------------------
# %v


def stringer(v: Any, compat: str) -> Optional[str]:
    """The String() of `v` when its Go type has one, else None."""
    if isinstance(v, GoTime):
        return time_format(v, "2006-01-02 15:04:05.999999999 -0700 MST")
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
        return format_float(v, "g", -1, v_verb=True)
    if isinstance(v, complex):
        return "(" + format_float(v.real, "g", -1, True) + _signed(format_float(v.imag, "g", -1, True)) + "i)"
    if isinstance(v, str):
        return str(v)
    if isinstance(v, Ptr):
        if depth == 0:
            return "&" + format_v(v.elem, compat, depth + 1, plus)
        return "0xc000010000"
    if isinstance(v, list):
        return "[" + " ".join(format_v(x, compat, depth + 1, plus) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted(v.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(f"{format_v(k, compat, depth + 1, plus)}:{format_v(x, compat, depth + 1, plus)}"
                                 for k, x in items) + "]"
    if isinstance(v, GoStruct):
        parts = []
        for name in v.FIELDS:
            text = format_v(v.field(name), compat, depth + 1, plus)
            parts.append(f"{name}:{text}" if plus else text)
        return "{" + " ".join(parts) + "}"
    return str(v)


def _sort_key(k: Any) -> Any:
    return k


def _signed(text: str) -> str:
    return text if text.startswith(("-", "+")) else "+" + text


def format_float(f: float, verb: str, prec: int, v_verb: bool = False, sharp: bool = False) -> str:
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
        return _fix_exp(f"{f:.{prec}{verb}}")
    # g, G
    if prec < 0:
        digits, exp = _shortest(f)  # f = 0.digits * 10**exp
        eprec = 6  # strconv's rule for the shortest form: %e when the exponent is < -4 or >= 6
        x = exp - 1
        if x < -4 or x >= eprec:
            mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
            out = f"{'-' if f < 0 or (f == 0 and math.copysign(1, f) < 0) else ''}{mant}e{'+' if x >= 0 else '-'}{abs(x):02d}"
            return out.upper() if verb == "G" else out
        return _plain(f, digits, exp)
    if prec == 0:
        prec = 1
    out = _fix_exp(f"{f:.{prec}{verb}}")
    return out


def _fix_exp(text: str) -> str:
    return text  # Python's exponents have at least two digits, as Go's do


def _shortest(f: float) -> Tuple[str, int]:
    """The shortest decimal digits of |f| and the exponent e such that |f| = 0.DIGITS * 10**e."""
    if f == 0:
        return "0", 1
    r = repr(abs(f))
    if "e" in r:
        mant, e = r.split("e")
        exp = int(e)
    else:
        mant, exp = r, 0
    if "." in mant:
        ip, fp = mant.split(".")
    else:
        ip, fp = mant, ""
    if fp == "0":
        fp = ""
    digits = (ip + fp).lstrip("0")
    lead = len(ip + fp) - len((ip + fp).lstrip("0"))
    point = len(ip) + exp - lead
    digits = digits.rstrip("0") or "0"
    return digits, point


def _plain(f: float, digits: str, exp: int) -> str:
    sign = "-" if f < 0 or (f == 0 and math.copysign(1, f) < 0) else ""
    if exp <= 0:
        return sign + "0." + "0" * (-exp) + digits
    if exp >= len(digits):
        return sign + digits + "0" * (exp - len(digits))
    return sign + digits[:exp] + "." + digits[exp:]


def duration_string(d: int) -> str:
    """time.Duration.String(): 1h2m3.5s, 1.5ms, 0s."""
    if d == 0:
        return "0s"
    neg = d < 0
    u = -d if neg else d
    if u < 1_000_000_000:
        if u < 1000:
            out = f"{u}ns"
        elif u < 1_000_000:
            out = _frac(u, 1000) + "µs"
        else:
            out = _frac(u, 1_000_000) + "ms"
    else:
        secs, frac = divmod(u, 1_000_000_000)
        out = ""
        h, rem = divmod(secs, 3600)
        m, s = divmod(rem, 60)
        sec = str(s) + (("." + f"{frac:09d}".rstrip("0")) if frac else "") + "s"
        if h:
            out = f"{h}h{m}m{sec}"
        elif m:
            out = f"{m}m{sec}"
        else:
            out = sec
    return ("-" if neg else "") + out


def _frac(v: int, unit: int) -> str:
    whole, frac = divmod(v, unit)
    width = len(str(unit)) - 1
    return str(whole) + (("." + f"{frac:0{width}d}".rstrip("0")) if frac else "")


# ---------------------------------------------------------------------------------------------
# printf


def sprint(args: List[Any], compat: str) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    out = []
    prev_string = False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_v(a, compat))
        prev_string = is_string
    return "".join(out)


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


def _pad(text: str, width: Optional[int], minus: bool, zero: bool = False) -> str:
    if width is None or len(text) >= width:
        return text
    if minus:
        return text + " " * (width - len(text))
    if zero:
        sign = text[0] if text[:1] in ("+", "-") else ""
        return sign + "0" * (width - len(text)) + text[len(sign):]
    return " " * (width - len(text)) + text


def go_quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote."""
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\v":
            out.append("\\v")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif o < 0x80:
            out.append(ch)
        elif ascii_only or not ch.isprintable() or 0xD800 <= o <= 0xDFFF:
            if o == 0xFFFD and not ascii_only:
                out.append(ch)
            elif o < 0x10000:
                out.append(f"\\u{o:04x}")
            else:
                out.append(f"\\U{o:08x}")
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
        a = args[argi]
        argi += 1
        pad = _Pad(width, minus, zero and not minus)
        out.append(_one(verb, a, prec, plus, sharp, space, compat, pad))
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
    sign = "-" if f < 0 or (f == 0 and math.copysign(1, f) < 0) else ""
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
                    q >>= 4 if False else 1
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
    tail = ""
    seen_point = saw_nonzero = False
    out = []
    for i, ch in enumerate(body):
        if ch == ".":
            seen_point = True
        elif ch in "pP" or (ch in "eE" and verb not in "xX"):
            tail = body[i:]
            break
        else:
            saw_nonzero = saw_nonzero or ch != "0"
            if saw_nonzero:
                digits -= 1
        out.append(ch)
    text = "".join(out)
    if not seen_point:
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
        return _pad(text, self.width, self.minus, self.zero and zero_ok)


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
            if isinstance(a, int) and not isinstance(a, bool) and stringer(a, compat) is None:
                return _one_scalar("d", a, prec, plus, sharp, space, compat, pad)
            text = stringer(a, compat)
            if text is None and isinstance(a, str):
                text = str(a)
            if text is not None:
                return text[:prec]
        return format_v(a, compat, plus=plus)
    if a is None:
        return f"%!{verb}(<nil>)"
    if verb == "q" and isinstance(a, int) and not isinstance(a, bool):
        ch = chr(a) if 0 <= a <= 0x10FFFF and not 0xD800 <= a <= 0xDFFF else "\ufffd"
        return "'" + go_quote(ch, plus)[1:-1].replace("\\\"", "\"").replace("'", "\\'") + "'"
    if verb == "s" or verb == "q":
        s = stringer(a, compat)
        if s is None:
            if isinstance(a, str):
                s = str(a)
            else:
                return _bad(verb, a, compat, plus, pad, prec)
        if prec is not None:
            s = s[:prec]
        if verb == "q":
            return go_quote(s, plus)
        return s
    if verb == "t":
        if isinstance(a, bool):
            return "true" if a else "false"
        return _bad(verb, a, compat, plus, pad, prec)
    if isinstance(a, bool):
        return _bad(verb, a, compat, plus, pad, prec)
    if verb in "dboxXcU":
        if isinstance(a, int):
            v = int(a)
            if verb == "d":
                s = str(abs(v))
            elif verb == "b":
                s = format(abs(v), "b")
            elif verb == "o":
                s = format(abs(v), "o")
            elif verb == "x":
                s = format(abs(v), "x")
            elif verb == "X":
                s = format(abs(v), "X")
            elif verb == "c":
                return chr(v) if 0 <= v <= 0x10FFFF and not 0xD800 <= v <= 0xDFFF else "\ufffd"
            else:
                return f"U+{v:04X}"
            if prec is not None and len(s) < prec:
                s = "0" * (prec - len(s)) + s
            if sharp and verb in "xX":
                s = ("0x" if verb == "x" else "0X") + s
            sign = "-" if v < 0 else ("+" if plus else (" " if space else ""))
            return sign + s
        if verb in "xX" and (isinstance(a, str) or stringer(a, compat) is not None):
            data = (str(a) if isinstance(a, str) else stringer(a, compat)).encode("utf-8", "surrogatepass")
            if prec is not None:
                data = data[:prec]
            s = data.hex()
            s = ("0x" + s if sharp and s else s)
            return s.upper() if verb == "X" else s
        if verb in "bxX" and isinstance(a, float):
            return _sharp_float(_float_b_x(a, verb, prec), verb, prec) if sharp else _float_b_x(a, verb, prec)
        return _bad(verb, a, compat, plus, pad, prec)
    if verb in "eEfFgG":
        if isinstance(a, float):
            if verb in "gG":
                s = format_float(a, verb, -1 if prec is None else prec)
            else:
                s = format_float(a, verb, 6 if prec is None else prec)
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
# time


def time_from_datetime(dt: datetime, nsec: int, zone: Optional[str], tzinfo: Any = None) -> GoTime:
    offset = int(dt.utcoffset().total_seconds()) if dt.utcoffset() is not None else 0
    naive = dt.replace(tzinfo=None)
    sec = (naive - datetime(1970, 1, 1)) // timedelta(seconds=1) - offset
    return GoTime(sec, nsec, offset, zone, tzinfo)


def time_in(t: GoTime, loc: Optional[Location]) -> GoTime:
    """t in the location `loc` (its rules a tzinfo, or None for UTC's)."""
    if loc is None or (loc.tz is None and not loc.local and loc.name == "UTC"):
        return GoTime(t.sec, t.nsec, 0, "UTC")
    if loc.tz is None:
        return GoTime(t.sec, t.nsec, 0, "UTC", loc)
    sec = min(max(t.sec, ZERO_TIME_SEC + 86400 * 2), 253402300799 - 86400 * 2)  # datetime's range
    utc = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=sec)
    local = utc.astimezone(loc.tz)
    offset = int(local.utcoffset().total_seconds())
    abbr = loc.name if isinstance(loc.tz, timezone) else local.tzname() or ""  # a fixed zone's name is its abbreviation
    return GoTime(t.sec, t.nsec, offset, abbr, loc)


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
        return format_float(v, "g", -1, v_verb=True)
    if isinstance(v, complex):
        return "(" + format_float(v.real, "g", -1, True) + _signed(format_float(v.imag, "g", -1, True)) + "i)"
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
        items = sorted(v.items(), key=lambda kv: _sort_key(kv[0]))
        return type_name(v) + "{" + ", ".join(f"{format_sharp_v(k, compat)}:{format_sharp_v(x, compat, typed)}"
                                              for k, x in items) + "}"
    if isinstance(v, GoStruct):
        return v.TYPE + "{" + ", ".join(f"{name}:{format_sharp_v(v.field(name), compat, False)}"
                                        for name in v.FIELDS) + "}"
    return str(v)


_STD = [
    "January", "Jan", "Monday", "Mon", "MST",
    "01", "02", "03", "04", "05", "06", "002",
    "15", "1", "2", "_2", "3", "4", "5", "2006", "__2",
    "PM", "pm",
    "Z070000", "Z0700", "Z07:00:00", "Z07:00", "Z07",
    "-070000", "-0700", "-07:00:00", "-07:00", "-07",
]


def _next_std(layout: str, i: int) -> Tuple[str, int]:
    """The standard chunk at layout[i:], as Go's nextStdChunk sees it, and its length; '' when none."""
    s = layout[i:]
    c = s[0]
    if c == "J":
        if s.startswith("January"):
            return "January", 7
        if s.startswith("Jan"):
            return "Jan", 3
    elif c == "M":
        if s.startswith("Monday"):
            return "Monday", 6
        if s.startswith("Mon"):
            return "Mon", 3
        if s.startswith("MST"):
            return "MST", 3
    elif c == "0":
        if len(s) >= 2 and "1" <= s[1] <= "6":
            return s[:2], 2
        if s.startswith("002"):
            return "002", 3
    elif c == "1":
        if s.startswith("15"):
            return "15", 2
        return "1", 1
    elif c == "2":
        if s.startswith("2006"):
            return "2006", 4
        return "2", 1
    elif c == "_":
        if s.startswith("_2"):
            if s.startswith("_2006"):
                return "_", 0  # "_" then "2006"
            if s.startswith("__2"):
                return "__2", 3
            return "_2", 2
        if s.startswith("__2"):
            return "__2", 3
    elif c in "345":
        return c, 1
    elif c == "P":
        if s.startswith("PM"):
            return "PM", 2
    elif c == "p":
        if s.startswith("pm"):
            return "pm", 2
    elif c in "-Z":
        for std in ("-070000", "-07:00:00", "-0700", "-07:00", "-07") if c == "-" else \
                ("Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07"):
            if s.startswith(std):
                return std, len(std)
    elif c in ".,":
        if len(s) >= 2 and s[1] in "09":
            j = 1
            while j < len(s) and s[j] == s[1]:
                j += 1
            if not (j < len(s) and s[j].isdigit()):
                return s[:j], j
    return "", 0


def _offset(off: int, z: str, colon: bool, seconds: bool = False, short: bool = False) -> str:
    if z and off == 0:
        return "Z"
    sign = "-" if off < 0 else "+"
    a = abs(off)
    h, rem = divmod(a, 3600)
    m, s = divmod(rem, 60)
    out = f"{sign}{h:02d}"
    if short:
        return out
    out += (":" if colon else "") + f"{m:02d}"
    if seconds:
        out += (":" if colon else "") + f"{s:02d}"
    return out


def time_format(t: GoTime, layout: str) -> str:
    """time.Time.Format with a Go layout (reference time Mon Jan 2 15:04:05 MST 2006)."""
    dt = t.civil()
    out: List[str] = []
    i = 0
    n = len(layout)
    while i < n:
        std, size = _next_std(layout, i)
        if not std or size == 0:
            out.append(layout[i])
            i += 1
            continue
        i += size
        year = dt.year
        if std == "2006":
            out.append(f"{year:04d}")
        elif std == "06":
            out.append(f"{year % 100:02d}")
        elif std == "January":
            out.append(MONTHS[dt.month - 1])
        elif std == "Jan":
            out.append(MONTHS[dt.month - 1][:3])
        elif std == "01":
            out.append(f"{dt.month:02d}")
        elif std == "1":
            out.append(str(dt.month))
        elif std == "Monday":
            out.append(DAYS[(dt.weekday() + 1) % 7])
        elif std == "Mon":
            out.append(DAYS[(dt.weekday() + 1) % 7][:3])
        elif std == "2":
            out.append(str(dt.day))
        elif std == "02":
            out.append(f"{dt.day:02d}")
        elif std == "_2":
            out.append(f"{dt.day:2d}")
        elif std == "__2":
            out.append(f"{dt.yday:3d}")
        elif std == "002":
            out.append(f"{dt.yday:03d}")
        elif std == "15":
            out.append(f"{dt.hour:02d}")
        elif std == "3":
            out.append(str(dt.hour % 12 or 12))
        elif std == "03":
            out.append(f"{dt.hour % 12 or 12:02d}")
        elif std == "4":
            out.append(str(dt.minute))
        elif std == "04":
            out.append(f"{dt.minute:02d}")
        elif std == "5":
            out.append(str(dt.second))
        elif std == "05":
            out.append(f"{dt.second:02d}")
        elif std == "PM":
            out.append("PM" if dt.hour >= 12 else "AM")
        elif std == "pm":
            out.append("pm" if dt.hour >= 12 else "am")
        elif std == "MST":
            out.append(t.abbrev())
        elif std[0] in "-Z":
            z = std[0] == "Z"
            body = std[1:]
            out.append(_offset(t.offset, "Z" if z else "", ":" in body, len(body) in (6, 8),
                               len(body) == 2))
        elif std[0] in ".,":
            digits = len(std) - 1
            frac = f"{t.nsec:09d}"[:digits]
            if std[1] == "9":
                frac = frac.rstrip("0")
                if frac:
                    out.append(std[0] + frac)
            else:
                out.append(std[0] + frac)
        else:
            out.append(std)
    return "".join(out)
