"""Alertmanager's template data (template.Data and its Alerts, KV and Pairs) and its template
functions, for the Go template engine in gotemplate.

`compat` names the Alertmanager whose behaviour is followed: "0.28" (the default; Debian 13) or
"0.25" (Debian 12): 0.28 adds trimSpace, date, tz, since and humanizeDuration, prints a KV and
Pairs as `a=1, b=2` (their String methods) and knows {{else with}} and range over an integer;
its regular expressions (Go 1.24's) know (?<name>...), 0.25's (Go 1.19's) only (?P<name>...).
Regular expressions run in goregexp, in time linear in the text, as Go's do.
Later levels only add functions (see FUNCTIONS_SINCE): 0.30 safeUrl, urlUnescape and toJson; 0.32
list, append and dict; 0.33 now; 0.34 toDate, mustToDate, base64encode and base64decode.
"""

from __future__ import annotations

import functools
import json
import math
import time as _clock
import re
import unicodedata
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ..gotemplate import regexp as goregexp
from ..gotemplate import values as gv
from ..gotemplate.gotime import Int64
from ..gotemplate.template import BUILTINS, Func, GoError, ParseError, Template, bounded

COMPATS = ("0.25", "0.28", "0.30", "0.32", "0.33", "0.34")
DEFAULT_COMPAT = "0.28"


def _method(fn: Any, params: Tuple[str, ...] = (), variadic: bool = False, since_026: bool = False,
            name: str = "") -> Func:
    f = Func(fn, params, variadic, name)
    f.since_026 = since_026  # type: ignore[attr-defined]
    return f


# ---------------------------------------------------------------------------------------------
# Data


class Pair(gv.GoStruct):
    TYPE = "template.Pair"
    FIELDS = ("Name", "Value")

    def __init__(self, name: str, value: str) -> None:
        self.Name, self.Value = name, value

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Pair) and (self.Name, self.Value) == (other.Name, other.Value)

    def __hash__(self) -> int:
        return hash((self.Name, self.Value))


def _pairs_string(ps: "Pairs") -> str:
    return ", ".join(f"{p.Name}={p.Value}" for p in ps)


class Pairs(gv.TypedSlice):
    TYPE = "template.Pairs"


Pairs.METHODS = {
    "Names": _method(lambda ps: gv.StringSlice(p.Name for p in ps)),
    "Values": _method(lambda ps: gv.StringSlice(p.Value for p in ps)),
    "String": _method(_pairs_string, since_026=True),
}


class KV(gv.TypedMap):
    TYPE = "template.KV"
    ELEM_ZERO = ""


def sorted_pairs(kv: Dict[str, str]) -> Pairs:
    cached = getattr(kv, "sorted_pairs", None)  # a label set never changes once made: its pairs neither
    if cached is not None and len(cached) == len(kv):
        return cached
    keys = sorted(k for k in kv if k != "alertname")
    if "alertname" in kv:
        keys.insert(0, "alertname")
    pairs = Pairs(Pair(k, kv[k]) for k in keys)
    if isinstance(kv, KV):
        kv.sorted_pairs = pairs
    return pairs


def _remove(kv: KV, keys: List[str]) -> KV:
    drop = set(keys or ())
    return KV((k, v) for k, v in kv.items() if k not in drop)


KV.METHODS = {
    "SortedPairs": _method(sorted_pairs),
    "Remove": _method(_remove, ("[]string",)),
    "Names": _method(lambda kv: gv.StringSlice(p.Name for p in sorted_pairs(kv))),
    "Values": _method(lambda kv: gv.StringSlice(p.Value for p in sorted_pairs(kv))),
    "String": _method(lambda kv: _pairs_string(sorted_pairs(kv)), since_026=True),
}


class Alert(gv.GoStruct):
    TYPE = "template.Alert"
    FIELDS = ("Status", "Labels", "Annotations", "StartsAt", "EndsAt", "GeneratorURL", "Fingerprint")

    def __init__(self, **kw: Any) -> None:
        self.Status = kw.get("Status", "")
        self.Labels = kw.get("Labels", KV())
        self.Annotations = kw.get("Annotations", KV())
        self.StartsAt = kw.get("StartsAt", gv.GoTime(gv.ZERO_TIME_SEC))
        self.EndsAt = kw.get("EndsAt", gv.GoTime(gv.ZERO_TIME_SEC))
        self.GeneratorURL = kw.get("GeneratorURL", "")
        self.Fingerprint = kw.get("Fingerprint", "")


class AlertList(gv.TypedSlice):
    TYPE = "[]template.Alert"


class Alerts(gv.TypedSlice):
    TYPE = "template.Alerts"


def _with_status(alerts: Alerts, status: str) -> "AlertList":
    """.Firing and .Resolved: made once for a list of alerts (template data never changes; nor may
    what a template gets from it, and no function changes a value)."""
    kept = getattr(alerts, "by_status", None)
    if kept is None or kept[2] != len(alerts):
        firing = AlertList(a for a in alerts if a.Status == "firing")
        resolved = AlertList(a for a in alerts if a.Status == "resolved")
        kept = alerts.by_status = (firing, resolved, len(alerts))
    return kept[0] if status == "firing" else kept[1]


Alerts.METHODS = {
    "Firing": _method(lambda alerts: _with_status(alerts, "firing")),
    "Resolved": _method(lambda alerts: _with_status(alerts, "resolved")),
}


class Data(gv.GoStruct):
    TYPE = "template.Data"
    FIELDS = ("Receiver", "Status", "Alerts", "GroupLabels", "CommonLabels", "CommonAnnotations", "ExternalURL")

    def __init__(self, **kw: Any) -> None:
        self.Receiver = kw.get("Receiver", "")
        self.Status = kw.get("Status", "")
        self.Alerts = kw.get("Alerts", Alerts())
        self.GroupLabels = kw.get("GroupLabels", KV())
        self.CommonLabels = kw.get("CommonLabels", KV())
        self.CommonAnnotations = kw.get("CommonAnnotations", KV())
        self.ExternalURL = kw.get("ExternalURL", "")


class MessageData(Data):
    """The data of a template that renders a message: Alertmanager's, plus the route the message goes to
    (`.Route`: `critical`, or `db/critical` in hook set db) and its severity (`.Severity`)."""

    FIELDS = Data.FIELDS + ("Route", "Severity")

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.Route = kw.get("Route", "")
        self.Severity = kw.get("Severity", "")


class DataError(ValueError):
    """The data file is not Alertmanager's template data (as Go's encoding/json would refuse it)."""


_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z")


def parse_time(text: str) -> gv.GoTime:
    """A time.Time from RFC 3339 text, as Go's time.Time.UnmarshalJSON reads it."""
    m = _RFC3339.match(text)
    if not m:
        raise DataError(f'parsing time "{text}" as RFC 3339: cannot parse')
    year, month, day, hour, minute, second, frac, z, sign, oh, om = m.groups()
    from datetime import datetime, timedelta
    try:
        civil = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        raise DataError(f'parsing time "{text}": value out of range') from None
    nsec = int((frac or "0").ljust(9, "0"))
    if z:
        offset, zone = 0, "UTC"
    else:
        if int(oh) >= 24 or int(om) >= 60:
            raise DataError(f'parsing time "{text}": time zone offset out of range')
        offset = (int(oh) * 3600 + int(om) * 60) * (-1 if sign == "-" else 1)
        zone = ""  # a fixed zone without a name: Go prints its offset (+0200 +0200)
    sec = (civil - datetime(1970, 1, 1)) // timedelta(seconds=1) - offset
    if not z:
        # Go's time.Parse: an offset that the local zone has at that moment gives the local zone
        try:
            local = _clock.localtime(sec)
            if local.tm_gmtoff == offset:
                return gv.GoTime(sec, nsec, offset, local.tm_zone, _process_local())
        except (OverflowError, OSError, ValueError):
            pass
    return gv.GoTime(sec, nsec, offset, zone)


@functools.lru_cache(maxsize=1)
def _process_local() -> gv.Location:
    """This process's time.Local, as parse_time's local times (above) are in it."""
    import os
    return local_location(os.environ)


def _field(obj: Dict[str, Any], name: str) -> Any:
    """A JSON object's member for a Go struct field: exact name first, else case-insensitively; the
    last of duplicates wins, as in Go."""
    found = None
    for key, value in obj.items():
        if key == name:
            return value
        if found is None and key.lower() == name.lower():
            found = (value,)
    return found[0] if found else None


def _kv(value: Any, where: str) -> KV:
    if value is None:
        out = KV()
        out.nil = True  # Go's nil map (%#v prints it so); an empty one otherwise
        return out
    if not isinstance(value, dict):
        raise DataError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field {where} of type template.KV")
    out = KV()
    for k, v in value.items():
        if v is None:
            out[k] = ""
            continue
        if not isinstance(v, str):
            raise DataError(f"json: cannot unmarshal {_json_kind(v)} into Go struct field {where} of type string")
        out[k] = v
    return out


def _str(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field {where} of type string")
    return value


def _time(value: Any, where: str) -> gv.GoTime:
    if value is None:
        return gv.GoTime(gv.ZERO_TIME_SEC)
    if not isinstance(value, str):
        raise DataError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field {where} of type time.Time")
    return parse_time(value)


def _json_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def data_from_json(obj: Any) -> Data:
    """The template.Data that Go's json.Unmarshal makes of this JSON value (amtool hands templates
    the struct itself, not a pointer)."""
    if obj is None:
        return Data()
    if not isinstance(obj, dict):
        raise DataError(f"json: cannot unmarshal {_json_kind(obj)} into Go value of type template.Data")
    raw_alerts = _field(obj, "alerts")
    alerts = Alerts()
    if raw_alerts is None:
        alerts.nil = True
    else:
        if not isinstance(raw_alerts, list):
            raise DataError(f"json: cannot unmarshal {_json_kind(raw_alerts)} into Go struct field "
                            "Data.alerts of type template.Alerts")
        for item in raw_alerts:
            if item is None:
                alerts.append(Alert())
                continue
            if not isinstance(item, dict):
                raise DataError(f"json: cannot unmarshal {_json_kind(item)} into Go struct field Data.alerts "
                                "of type template.Alert")
            alerts.append(Alert(
                Status=_str(_field(item, "status"), "Data.alerts.status"),
                Labels=_kv(_field(item, "labels"), "Data.alerts.labels"),
                Annotations=_kv(_field(item, "annotations"), "Data.alerts.annotations"),
                StartsAt=_time(_field(item, "startsAt"), "Data.alerts.startsAt"),
                EndsAt=_time(_field(item, "endsAt"), "Data.alerts.endsAt"),
                GeneratorURL=_str(_field(item, "generatorURL"), "Data.alerts.generatorURL"),
                Fingerprint=_str(_field(item, "fingerprint"), "Data.alerts.fingerprint"),
            ))
    return Data(
        Receiver=_str(_field(obj, "receiver"), "Data.receiver"),
        Status=_str(_field(obj, "status"), "Data.status"),
        Alerts=alerts,
        GroupLabels=_kv(_field(obj, "groupLabels"), "Data.groupLabels"),
        CommonLabels=_kv(_field(obj, "commonLabels"), "Data.commonLabels"),
        CommonAnnotations=_kv(_field(obj, "commonAnnotations"), "Data.commonAnnotations"),
        ExternalURL=_str(_field(obj, "externalURL"), "Data.externalURL"),
    )


def load_data(text: str) -> Data:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise DataError(f"invalid JSON: {exc}") from None
    return data_from_json(obj)


# ---------------------------------------------------------------------------------------------
# Go regular expressions: goregexp runs them as Go does, in time linear in the text

RegexpError = goregexp.RegexpError


def compile_regexp(pattern: str, compat: str = DEFAULT_COMPAT) -> goregexp.Regexp:
    """Compile a Go regular expression as the given Alertmanager's Go does; RegexpError with Go's
    wording when Go would refuse it (unsupported=True: Go accepts it, goregexp cannot run it)."""
    return goregexp.compile(pattern, angle_names=compat != "0.25")  # (?<name>) is Go 1.22's


# ---------------------------------------------------------------------------------------------
# Alertmanager's functions


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_" or unicodedata.category(c) in ("Mn", "Mc", "Me", "Pc")


_TITLE_MID = set("'.:·‘’\u00ad\u0387\u05f4\u2024\ufe13\ufe52\ufe55\uff07\uff0e\uff1a")


def _title(s: str) -> str:
    """golang.org/x/text/cases Title (American English): in each word the first cased letter upper
    (title) case, the letters after it lower case; digits start no case; a word goes on over
    ' . : · ’ and a soft hyphen, as x/text's caser has it."""
    out = []
    seen = False  # a cased letter of this word has been seen
    n = len(s)
    for i, c in enumerate(s):
        if _is_word(c) and c != "\u200b":
            if c.isalpha() and (c.lower() != c or c.upper() != c):
                if not seen:
                    out.append(c.title())
                elif c == "Σ":  # final sigma at the end of a word
                    out.append("ς" if not (i + 1 < n and s[i + 1].isalpha()) else "σ")
                else:
                    low = c.lower()
                    out.append(low if len(low) == 1 else _SIMPLE_LOWER.get(c, c))
                seen = True
            else:
                out.append(c)
            continue
        out.append(c)
        if c in _TITLE_MID:
            continue
        seen = False
    return "".join(out)


def _string_slice(*s: str) -> gv.StringSlice:
    return gv.StringSlice(s)


_string_slice.pure = True  # type: ignore[attr-defined]  # with literals only, made once (gotemplate.codegen)


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
            quoted = f"`{pattern}`" if _can_backquote(pattern) else gv.go_quote(pattern)
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


REGEXP_FUNCTIONS = {compat: _regexp_functions(compat) for compat in COMPATS}
_match, _re_replace_all = REGEXP_FUNCTIONS[DEFAULT_COMPAT]


def _can_backquote(s: str) -> bool:
    """strconv.CanBackquote."""
    return all(c == "\t" or (c >= " " and c not in "`\x7f\ufeff") for c in s)


def _tz(name: str, t: gv.GoTime) -> gv.GoTime:
    if name in ("", "UTC"):
        return gv.time_in(t, None)
    if name == "Local":
        raise GoError("unknown time zone Local")
    try:
        from zoneinfo import ZoneInfo
        tz = ZoneInfo(name)
    except Exception:
        raise GoError(f"unknown time zone {name}") from None
    return gv.time_in(t, gv.Location(name, tz))


def local_location(environ: Mapping[str, str]) -> gv.Location:
    """Go's time.Local for a process with this environment: $TZ, else /etc/localtime, else UTC."""
    from zoneinfo import ZoneInfo
    tz = environ.get("TZ")
    try:
        if tz is None:
            with open("/etc/localtime", "rb") as f:
                return gv.Location("Local", ZoneInfo.from_file(f, key="Local"), True)
        tz = tz[1:] if tz.startswith(":") else tz
        if tz and tz != "UTC":
            return gv.Location(tz, ZoneInfo(tz), True)
    except Exception:  # no such zone, no database: Go falls back to UTC too
        pass
    return gv.Location("UTC", None, True)


def local_of(zone: Any) -> gv.Location:
    """time.Local for rcwebhook's messages: the zone TIMEZONE names (a tzinfo; None or UTC for UTC)."""
    from datetime import timezone
    return gv.Location("Local", None if zone in (None, timezone.utc) else zone, True)


def _since(t: gv.GoTime) -> gv.Duration:
    import time as _time
    now = _time.time_ns()
    d = now - (t.sec * 1_000_000_000 + t.nsec)
    return gv.Duration(max(min(d, (1 << 63) - 1), -(1 << 63)))


def _humanize_duration(i: Any) -> str:
    if isinstance(i, bool) or i is None:
        raise GoError(f"can't convert {gv.type_name(i)} to float")
    if isinstance(i, gv.Duration):
        v = int(i) / 1e9
    elif isinstance(i, float):
        v = i
    elif isinstance(i, int) and type(i) in (int, Int64):
        v = float(i)
    elif isinstance(i, str) and type(i) is str:
        try:
            v = _go_parse_float(i)
        except ValueError:
            raise GoError(f'strconv.ParseFloat: parsing {gv.go_quote(i)}: invalid syntax') from None
    else:
        raise GoError(f"can't convert {gv.type_name(i)} to float")
    if math.isnan(v) or math.isinf(v):
        return gv.sprintf("%.4g", [v], DEFAULT_COMPAT)
    if v == 0:
        return gv.sprintf("%.4gs", [v], DEFAULT_COMPAT)
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        dur = int(v)
        seconds = dur % 60
        minutes = (dur // 60) % 60
        hours = (dur // 3600) % 24
        days = dur // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return sign + gv.sprintf("%.4gs", [v], DEFAULT_COMPAT)
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return gv.sprintf("%.4g", [v], DEFAULT_COMPAT) + prefix + "s"


# No two ways to match one string (digits, then an optional fraction), so no backtracking: linear
_GO_FLOAT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _go_parse_float(s: str) -> float:
    t = s.strip("")
    low = t.lower().lstrip("+-")
    if low in ("inf", "infinity"):
        return float("-inf") if t.startswith("-") else float("inf")
    if low == "nan":
        return float("nan")
    if not _GO_FLOAT.fullmatch(t):
        raise ValueError(s)
    return float(t)


# ---------------------------------------------------------------------------------------------
# The functions of Alertmanager 0.30 to 0.34


class URL(str):
    """html/template's URL type (what safeUrl returns): a string of another Go type."""


gv._TYPE_NAMES[URL] = "template.URL"


def _url_unescape(s: str) -> str:
    """url.QueryUnescape: %XX and + (a space); an invalid escape is an error naming it."""
    out = bytearray()
    raw = s.encode("utf-8", "surrogateescape")
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            if not (_is_hex(raw, i + 1) and _is_hex(raw, i + 2)):
                bad = raw[i:i + 3].decode("utf-8", "surrogateescape")
                raise GoError(f"invalid URL escape {gv.go_quote(bad)}")
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
            continue
        out.append(0x20 if c == 0x2B else c)
        i += 1
    return out.decode("utf-8", "replace")


def _is_hex(raw: bytes, i: int) -> bool:
    return i < len(raw) and chr(raw[i]) in "0123456789abcdefABCDEF"


# Go's json tags of Alertmanager's data: untagged fields (rcwebhook's Route and Severity, a Pair's) keep their names.
_JSON_NAMES = {
    "Receiver": "receiver", "Status": "status", "Alerts": "alerts", "GroupLabels": "groupLabels",
    "CommonLabels": "commonLabels", "CommonAnnotations": "commonAnnotations", "ExternalURL": "externalURL",
    "Labels": "labels", "Annotations": "annotations", "StartsAt": "startsAt", "EndsAt": "endsAt",
    "GeneratorURL": "generatorURL", "Fingerprint": "fingerprint",
}
_JSON_TAGGED = ("template.Data", "template.Alert")
_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_SPECIAL = re.compile('["\\\\<>&\u2028\u2029\x00-\x1f]')


def _json_string(s: str) -> str:
    """A JSON string as Go's encoding/json writes one (HTML characters escaped as \\u003c...)."""
    return '"' + _JSON_SPECIAL.sub(lambda m: _JSON_ESCAPES.get(m.group(), "\\u%04x" % ord(m.group())), s) + '"'


def _json_float(f: float) -> str:
    if math.isnan(f) or math.isinf(f):
        raise GoError(f"json: unsupported value: {gv.format_v(f, DEFAULT_COMPAT)}")
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
    if isinstance(v, gv.Ptr):
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
    if isinstance(v, gv.GoTime):
        if not -62167219200 <= v.sec + v.offset < 253402300800:
            raise GoError("json: error calling MarshalJSON for type time.Time: Time.MarshalJSON: year outside of "
                          "range [0,9999]")
        return '"' + gv.time_format(v, "2006-01-02T15:04:05.999999999Z07:00") + '"'
    if isinstance(v, gv.Location):
        return "{}"
    if isinstance(v, dict):
        if getattr(v, "nil", False):
            return "null"
        return "{" + ",".join(f"{_json_string(str(k))}:{to_json(x, depth + 1)}" for k, x in
                              sorted(v.items(), key=lambda kv: str(kv[0]).encode("utf-8", "surrogatepass"))) + "}"
    if isinstance(v, list):
        if getattr(v, "nil", False):
            return "null"
        return "[" + ",".join(to_json(x, depth + 1) for x in v) + "]"
    if isinstance(v, gv.GoStruct):
        tagged = any(getattr(cls, "TYPE", "") in _JSON_TAGGED for cls in type(v).__mro__)
        return "{" + ",".join(f'"{_JSON_NAMES.get(name, name) if tagged else name}":{to_json(v.field(name), depth + 1)}'
                              for name in v.FIELDS) + "}"
    raise GoError(f"json: unsupported type: {gv.type_name(v)}")


MAX_ITEMS = 10_000  # elements of a list append makes: each append copies, so a loop of them stays cheap


def _list(*args: Any) -> List[Any]:
    return list(args)


def _append(items: Optional[List[Any]], *args: Any) -> List[Any]:
    if len(items or ()) + len(args) > MAX_ITEMS:
        raise GoError(f"result longer than {MAX_ITEMS} elements")
    return list(items or ()) + list(args)


def _dict(*values: Any) -> Dict[str, Any]:
    if len(values) % 2:
        raise GoError("dict requires an even number of arguments")
    out: Dict[str, Any] = {}
    for key, value in zip(values[::2], values[1::2]):
        if type(key) is not str:  # a Go string, not a template.HTML or another string type
            raise GoError("dict keys must be strings")
        out[key] = value
    return out


def _now(st: Any) -> gv.GoTime:
    ns = _clock.time_ns()
    return gv.time_in(gv.GoTime(ns // 1_000_000_000, ns % 1_000_000_000), st.tmpl.local)


_now.wants_state = True  # type: ignore[attr-defined]


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


def _to_date(layout: str, value: str) -> gv.GoTime:
    """toDate: time.ParseInLocation in UTC, the zero time when the text does not fit the layout."""
    try:
        return parse_layout(layout, value)
    except GoError:
        return gv.GoTime(gv.ZERO_TIME_SEC)


# Since which Alertmanager each function exists, for those after 0.28.
FUNCTIONS_SINCE: Dict[str, Tuple[str, Func]] = {
    "safeUrl": ("0.30", Func(lambda s: URL(s), ("string",))),
    "urlUnescape": ("0.30", Func(bounded(_url_unescape), ("string",))),
    "toJson": ("0.30", Func(bounded(to_json), ("any",))),
    "list": ("0.32", Func(_list, ("any",), True)),
    "append": ("0.32", Func(_append, ("[]interface {}", "any"), True)),
    "dict": ("0.32", Func(_dict, ("any",), True)),
    "now": ("0.33", Func(_now, ())),
    "toDate": ("0.34", Func(_to_date, ("string", "string"))),
    "mustToDate": ("0.34", Func(lambda layout, value: parse_layout(layout, value), ("string", "string"))),
    "base64encode": ("0.34", Func(bounded(_base64encode), ("string",))),
    "base64decode": ("0.34", Func(_base64decode, ("string",))),
}


def _level(compat: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in compat.split("."))


# time.ParseInLocation(layout, value, time.UTC), as toDate and mustToDate call it.

_DAYS_BEFORE = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)


class _BadParse(Exception):
    """Go's errBad: the value does not fit the layout element."""


def _time_quote(s: str) -> str:
    """The time package's quote: like strconv.Quote, but every byte beyond ASCII or below a space as \\xNN."""
    out = ['"']
    for ch in s:
        if ord(ch) >= 0x80 or ch < " ":
            out.extend("\\x%02x" % b for b in ch.encode("utf-8", "surrogateescape"))
        else:
            out.append("\\" + ch if ch in '"\\' else ch)
    return "".join(out) + '"'


def _digit(s: str, i: int) -> bool:
    return i < len(s) and "0" <= s[i] <= "9"


def _getnum(s: str, fixed: bool) -> Tuple[int, str]:
    if not _digit(s, 0):
        raise _BadParse
    if not _digit(s, 1):
        if fixed:
            raise _BadParse
        return int(s[0]), s[1:]
    return int(s[:2]), s[2:]


def _getnum3(s: str, fixed: bool) -> Tuple[int, str]:
    n = 0
    while n < 3 and _digit(s, n):
        n += 1
    if n == 0 or (fixed and n != 3):
        raise _BadParse
    return int(s[:n]), s[n:]


def _lookup(names: List[str], s: str) -> Tuple[int, str]:
    for i, name in enumerate(names):
        if len(s) >= len(name) and s[:len(name)].lower() == name.lower():
            return i, s[len(name):]
    raise _BadParse


def _skip(value: str, prefix: str) -> Tuple[str, bool]:
    """The value after the layout's literal `prefix`, and whether it matched (else where it stopped)."""
    while prefix:
        if prefix[0] == " ":
            if value and value[0] != " ":
                return value, False
            prefix, value = prefix.lstrip(" "), value.lstrip(" ")
            continue
        if not value or value[0] != prefix[0]:
            return value, False
        prefix, value = prefix[1:], value[1:]
    return value, True


def _signed_offset(value: str) -> int:
    """parseSignedOffset: the length of a +h or -h (h at most 12) opening `value`, or 0."""
    if value[:1] not in ("+", "-"):
        return 0
    n = 1
    while _digit(value, n):
        n += 1
    return n if n > 1 and int(value[1:n]) <= 12 else 0


def _zone_name_length(value: str) -> int:
    """parseTimeZone: the length of the zone abbreviation opening `value`, or 0."""
    if len(value) < 3:
        return 0
    if value[:4] in ("ChST", "MeST"):
        return 4
    if value[:3] == "GMT":
        return 3 + (_signed_offset(value[3:]) if len(value) > 3 else 0)
    if value[0] in "+-":
        return _signed_offset(value)
    upper = 0
    while upper < min(len(value), 6) and "A" <= value[upper] <= "Z":
        upper += 1
    if upper == 3 or (upper == 4 and (value[3] == "T" or value[:4] == "WITA")) or (upper == 5 and value[4] == "T"):
        return upper
    return 0


def _next_chunk(layout: str, i: int) -> str:
    """The next standard chunk of the layout from layout[i:] on (Go's nextStdChunk), or ''."""
    while i < len(layout):
        std, size = gv._next_std(layout, i)
        if std and size:
            return std
        i += 1
    return ""


def parse_layout(layout: str, value: str) -> gv.GoTime:
    """time.ParseInLocation(layout, value, time.UTC); GoError with Go's message when `value` does not fit."""
    alayout, avalue = layout, value

    def fail(elem: str, rest: str, message: str = "") -> GoError:
        if message:
            return GoError(f"parsing time {_time_quote(avalue)}{message}")
        return GoError(f"parsing time {_time_quote(avalue)} as {_time_quote(alayout)}: cannot parse "
                       f"{_time_quote(rest)} as {_time_quote(elem)}")

    year, month, day, yday = 0, -1, -1, -1
    hour = minute = sec = nsec = 0
    offset: Optional[int] = None
    zone_name = ""
    utc = False
    pm = am = False
    i = 0
    while True:
        start = i
        while i < len(layout):
            std, size = gv._next_std(layout, i)
            if std and size:
                break
            i += 1
        prefix = layout[start:i]
        value, matched = _skip(value, prefix)
        if not matched:
            raise fail(prefix, value)
        if i >= len(layout):
            if value:
                raise fail("", value, f": extra text: {_time_quote(value)}")
            break
        std, size = gv._next_std(layout, i)
        i += size
        hold = value
        range_error = ""
        try:
            if std == "2006":
                if len(value) < 4 or not all(_digit(value, k) for k in range(4)):
                    raise _BadParse
                year, value = int(value[:4]), value[4:]
            elif std == "06":
                if len(value) < 2 or not (_digit(value, 0) and _digit(value, 1)):
                    raise _BadParse
                year, value = int(value[:2]), value[2:]
                year += 1900 if year >= 69 else 2000
            elif std in ("January", "Jan"):
                names = gv.MONTHS if std == "January" else [m[:3] for m in gv.MONTHS]
                month, value = _lookup(names, value)
                month += 1
            elif std in ("01", "1"):
                month, value = _getnum(value, std == "01")
                if not 1 <= month <= 12:
                    range_error = "month"
            elif std in ("Monday", "Mon"):
                _, value = _lookup(gv.DAYS if std == "Monday" else [d[:3] for d in gv.DAYS], value)
            elif std in ("02", "_2", "2"):
                if std == "_2" and value[:1] == " ":
                    value = value[1:]
                day, value = _getnum(value, std == "02")
            elif std in ("__2", "002"):
                for _ in range(2):
                    if std == "__2" and value[:1] == " ":
                        value = value[1:]
                yday, value = _getnum3(value, std == "002")
            elif std == "15":
                hour, value = _getnum(value, False)
                if not 0 <= hour < 24:
                    range_error = "hour"
            elif std in ("3", "03"):
                hour, value = _getnum(value, std == "03")
                if not 0 <= hour <= 12:
                    range_error = "hour"
            elif std in ("4", "04"):
                minute, value = _getnum(value, std == "04")
                if not 0 <= minute < 60:
                    range_error = "minute"
            elif std in ("5", "05"):
                sec, value = _getnum(value, std == "05")
                if not 0 <= sec < 60:
                    range_error = "second"
                elif len(value) >= 2 and value[0] in ".," and _digit(value, 1):
                    if _next_chunk(layout, i)[:1] not in (".", ","):  # a fraction the layout does not name
                        n = 2
                        while _digit(value, n):
                            n += 1
                        nsec, value = _nanoseconds(value, n), value[n:]
            elif std in ("PM", "pm"):
                if len(value) < 2:
                    raise _BadParse
                word, value = value[:2], value[2:]
                if word == std[0] + std[1]:
                    pm = True
                elif word == ("AM" if std == "PM" else "am"):
                    am = True
                else:
                    raise _BadParse
            elif std[0] in "-Z":
                if std[0] == "Z" and value[:1] == "Z":
                    value, utc = value[1:], True
                else:
                    body = std[1:]
                    if body in ("07:00",):
                        if len(value) < 6 or value[3] != ":":
                            raise _BadParse
                        sign, hh, mm, ss, value = value[0], value[1:3], value[4:6], "00", value[6:]
                    elif body == "07":
                        if len(value) < 3:
                            raise _BadParse
                        sign, hh, mm, ss, value = value[0], value[1:3], "00", "00", value[3:]
                    elif body == "07:00:00":
                        if len(value) < 9 or value[3] != ":" or value[6] != ":":
                            raise _BadParse
                        sign, hh, mm, ss, value = value[0], value[1:3], value[4:6], value[7:9], value[9:]
                    elif body == "070000":
                        if len(value) < 7:
                            raise _BadParse
                        sign, hh, mm, ss, value = value[0], value[1:3], value[3:5], value[5:7], value[7:]
                    else:
                        if len(value) < 5:
                            raise _BadParse
                        sign, hh, mm, ss, value = value[0], value[1:3], value[3:5], "00", value[5:]
                    h, m, s = (_getnum(x, True)[0] for x in (hh, mm, ss))
                    if h > 24:
                        range_error = "time zone offset hour"
                    if m > 60:
                        range_error = "time zone offset minute"
                    if s > 60:
                        range_error = "time zone offset second"
                    if sign not in "+-":
                        raise _BadParse
                    offset = ((h * 60 + m) * 60 + s) * (-1 if sign == "-" else 1)
            elif std == "MST":
                if value[:3] == "UTC":
                    value, utc = value[3:], True
                else:
                    n = _zone_name_length(value)
                    if not n:
                        raise _BadParse
                    zone_name, value = value[:n], value[n:]
            elif std[0] in ".,":
                if std[1] == "0":
                    digits = len(std)
                    if len(value) < digits:
                        raise _BadParse
                    nsec, value = _nanoseconds(value, digits), value[digits:]
                elif len(value) >= 2 and value[0] in ".," and _digit(value, 1):
                    n = 1
                    while _digit(value, n):
                        n += 1
                    nsec, value = _nanoseconds(value, n), value[n:]
        except _BadParse:
            raise fail(std, hold) from None
        if range_error:
            raise fail(std, value, f": {range_error} out of range")
    if pm and hour < 12:
        hour += 12
    elif am and hour == 12:
        hour = 0
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if yday >= 0:
        m = d = 0
        if leap:
            if yday == 31 + 29:
                m, d = 2, 29
            elif yday > 31 + 29:
                yday -= 1
        if not 1 <= yday <= 365:
            raise fail("", value, ": day-of-year out of range")
        if m == 0:
            m = (yday - 1) // 31 + 1
            if _DAYS_BEFORE[m] < yday:
                m += 1
            d = yday - _DAYS_BEFORE[m - 1]
        if month >= 0 and month != m:
            raise fail("", value, ": day-of-year does not match month")
        month = m
        if day >= 0 and day != d:
            raise fail("", value, ": day-of-year does not match day")
        day = d
    else:
        month = 1 if month < 0 else month
        day = 1 if day < 0 else day
    days_in = 29 if month == 2 and leap else _DAYS_BEFORE[month] - _DAYS_BEFORE[month - 1]
    if not 1 <= day <= days_in:
        raise fail("", value, ": day out of range")
    sec_of_day = hour * 3600 + minute * 60 + sec
    epoch = _civil_to_unix(year, month, day) + sec_of_day
    if utc or offset is None and not zone_name:
        return gv.GoTime(epoch, nsec)
    if offset is not None:
        epoch -= offset
        if offset == 0 and not zone_name:
            return gv.GoTime(epoch, nsec)
        return gv.GoTime(epoch, nsec, offset, zone_name or "")
    # a zone abbreviation UTC does not know: a zone of that name at offset 0 (GMT+h at h hours)
    shift = int(zone_name[3:]) * 3600 if len(zone_name) > 3 and zone_name[:3] == "GMT" else 0
    return gv.GoTime(epoch, nsec, shift, zone_name)  # the instant read as UTC, shown in that zone


def _civil_to_unix(year: int, month: int, day: int) -> int:
    """Seconds from the Unix epoch to 00:00 UTC of a proleptic Gregorian date (any year, 0 included)."""
    y = year - (1 if month <= 2 else 0)
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return (era * 146097 + doe - 719468) * 86400


def _nanoseconds(value: str, n: int) -> int:
    """parseNanoseconds: the fraction after value[0] (a . or ,), n bytes in all, as nanoseconds."""
    if value[0] not in ".,":
        raise _BadParse
    n = min(n, 10)
    digits = value[1:n]
    if digits and not all("0" <= c <= "9" for c in digits):
        raise _BadParse
    return int(digits or "0") * 10 ** (10 - n)

def functions(compat: str = DEFAULT_COMPAT) -> Dict[str, Func]:
    """Go's built-ins and Alertmanager's functions, as the given Alertmanager version has them."""
    funcs = dict(BUILTINS)
    funcs.update({
        "toUpper": Func(bounded(lambda s: s.upper() if s.isascii() else _go_upper(s)), ("string",)),
        "toLower": Func(bounded(lambda s: s.lower() if s.isascii() else _go_lower(s)), ("string",)),
        "title": Func(bounded(_title), ("string",)),
        "join": Func(bounded(lambda sep, s: sep.join(s)), ("string", "[]string")),
        "match": Func(REGEXP_FUNCTIONS[compat][0], ("string", "string")),
        "safeHtml": Func(lambda s: gv.HTML(s), ("string",)),
        "reReplaceAll": Func(bounded(REGEXP_FUNCTIONS[compat][1]), ("string", "string", "string")),
        "stringSlice": Func(_string_slice, ("string",), True),
    })
    if compat != "0.25":
        funcs.update({
            "trimSpace": Func(lambda s: s.strip(" \t\n\r\v\f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                                                "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"),
                              ("string",)),
            "date": Func(bounded(lambda layout, t: gv.time_format(t, layout)), ("string", "time.Time")),
            "tz": Func(_tz, ("string", "time.Time")),
            "since": Func(_since, ("time.Time",)),
            "humanizeDuration": Func(_humanize_duration, ("any",)),
        })
    funcs.update({name: fn for name, (since, fn) in FUNCTIONS_SINCE.items() if _level(compat) >= _level(since)})
    return funcs


def _go_upper(s: str) -> str:
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in s)


_SIMPLE_LOWER = {"İ": "i"}


def _go_lower(s: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else _SIMPLE_LOWER.get(c, c) for c in s)


# ---------------------------------------------------------------------------------------------
# A template set as Alertmanager builds one


def new_template(compat: str = DEFAULT_COMPAT) -> Template:
    return Template(functions(compat), compat)


def check_regexps(tmpl: Template) -> None:
    """Refuse at load time a literal pattern given to match or reReplaceAll that cannot be compiled."""
    from ..gotemplate import nodes as gt
    for tree in tmpl.trees.values():
        stack: List[Any] = [tree.root]
        while stack:
            node = stack.pop()
            if node is None:
                continue
            if isinstance(node, gt.ListNode):
                stack.extend(node.nodes)
            elif isinstance(node, gt.ActionNode):
                stack.append(node.pipe)
            elif isinstance(node, gt.BranchNode):
                stack.extend([node.pipe, node.list, node.else_list])
            elif isinstance(node, gt.TemplateNode):
                stack.append(node.pipe)
            elif isinstance(node, gt.PipeNode):
                stack.extend(node.cmds)
            elif isinstance(node, gt.ChainNode):
                stack.append(node.node)
            elif isinstance(node, gt.CommandNode):
                stack.extend(node.args)
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
