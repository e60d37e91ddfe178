"""Alertmanager's template data (template.Data and its Alerts, KV and Pairs) and its template
functions, for the Go template engine in gotemplate.

`compat` names the Alertmanager whose behaviour is followed: "0.28" (the default; Debian 13) or
"0.25" (Debian 12): 0.28 adds trimSpace, date, tz, since and humanizeDuration, prints a KV and
Pairs as `a=1, b=2` (their String methods) and knows {{else with}} and range over an integer;
its regular expressions (Go 1.24's) know (?<name>...), 0.25's (Go 1.19's) only (?P<name>...).
Regular expressions run in goregexp, in time linear in the text, as Go's do.
"""

from __future__ import annotations

import functools
import json
import math
import time as _clock
import re
import unicodedata
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import goregexp
from . import govalues as gv
from .gotemplate import BUILTINS, Func, GoError, ParseError, Template, bounded

COMPATS = ("0.25", "0.28")
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
# time.Time and time.Duration methods


class Int64(int):
    GO_TYPE = "int64"


def _t_add(t: gv.GoTime, d: int) -> gv.GoTime:
    total = t.nsec + int(d)
    sec, nsec = divmod(total, 1_000_000_000)
    return gv.GoTime(t.sec + sec, nsec, t.offset, t.zone, t.tzinfo)


def _t_sub(t: gv.GoTime, u: gv.GoTime) -> gv.Duration:
    d = (t.sec - u.sec) * 1_000_000_000 + (t.nsec - u.nsec)
    return gv.Duration(max(min(d, (1 << 63) - 1), -(1 << 63)))


def _t_key(t: gv.GoTime) -> Tuple[int, int]:
    return (t.sec, t.nsec)


def _t_round(t: gv.GoTime, d: int, up: bool) -> gv.GoTime:
    if d <= 0:
        return gv.GoTime(t.sec, t.nsec, t.offset, t.zone, t.tzinfo)
    # Go rounds relative to the zero time
    total = (t.sec - gv.ZERO_TIME_SEC) * 1_000_000_000 + t.nsec
    r = total % d
    if up and r + r >= d:
        total += d - r
    else:
        total -= r
    sec, nsec = divmod(total, 1_000_000_000)
    return gv.GoTime(sec + gv.ZERO_TIME_SEC, nsec, t.offset, t.zone, t.tzinfo)


def _t_in(t: gv.GoTime, loc: Optional[gv.Location]) -> gv.GoTime:
    if loc is None:
        raise GoError("time: missing Location in call to Time.In")
    return gv.time_in(t, loc)


def state_method(fn: Any) -> Any:
    """A method that needs the execution's state (its template set's time.Local)."""
    fn.wants_state = True
    return fn


TIME_METHODS: Dict[str, Func] = {
    "Format": _method(bounded(gv.time_format), ("string",)),
    "String": _method(lambda t: gv.format_v(t, DEFAULT_COMPAT)),
    "Unix": _method(lambda t: Int64(t.sec)),
    "UnixMilli": _method(lambda t: Int64(t.sec * 1000 + t.nsec // 1_000_000)),
    "UnixNano": _method(lambda t: Int64(t.sec * 1_000_000_000 + t.nsec)),
    "UTC": _method(lambda t: gv.GoTime(t.sec, t.nsec, 0, "UTC")),
    "Year": _method(lambda t: t.civil().year),
    "Month": _method(lambda t: gv.Month(t.civil().month)),
    "Day": _method(lambda t: t.civil().day),
    "Hour": _method(lambda t: t.civil().hour),
    "Minute": _method(lambda t: t.civil().minute),
    "Second": _method(lambda t: t.civil().second),
    "Nanosecond": _method(lambda t: t.nsec),
    "YearDay": _method(lambda t: t.civil().yday),
    "Weekday": _method(lambda t: gv.Weekday((t.civil().weekday() + 1) % 7)),
    "IsZero": _method(lambda t: t.sec == gv.ZERO_TIME_SEC and t.nsec == 0),
    "Add": _method(_t_add, ("time.Duration",)),
    "Sub": _method(_t_sub, ("time.Time",)),
    "Before": _method(lambda t, u: _t_key(t) < _t_key(u), ("time.Time",)),
    "After": _method(lambda t, u: _t_key(t) > _t_key(u), ("time.Time",)),
    "Equal": _method(lambda t, u: _t_key(t) == _t_key(u), ("time.Time",)),
    "Round": _method(lambda t, d: _t_round(t, int(d), True), ("time.Duration",)),
    "Location": _method(gv.location_of),
    "In": _method(_t_in, ("*time.Location",)),
    "Local": _method(state_method(lambda st, t: gv.time_in(t, st.tmpl.local))),
    "Truncate": _method(lambda t, d: _t_round(t, int(d), False), ("time.Duration",)),
}

def _go_div(d: int, unit: int) -> Tuple[int, int]:
    """Go's integer division and remainder (both truncated toward zero)."""
    q = abs(d) // unit * (1 if d >= 0 else -1)
    return q, d - q * unit


def _d_float(d: Any, unit: int) -> float:
    whole, rest = _go_div(int(d), unit)
    return float(whole) + float(rest) / float(unit)


DURATION_METHODS: Dict[str, Func] = {
    "String": _method(lambda d: gv.duration_string(int(d))),
    "Seconds": _method(lambda d: _d_float(d, 1_000_000_000)),
    "Minutes": _method(lambda d: _d_float(d, 60_000_000_000)),
    "Hours": _method(lambda d: _d_float(d, 3_600_000_000_000)),
    "Milliseconds": _method(lambda d: Int64(_go_div(int(d), 1_000_000)[0])),
    "Microseconds": _method(lambda d: Int64(_go_div(int(d), 1000)[0])),
    "Nanoseconds": _method(lambda d: Int64(int(d))),
}


# ---------------------------------------------------------------------------------------------
# Go regular expressions: goregexp runs them as Go does, in time linear in the text

RegexpError = goregexp.RegexpError


def compile_regexp(pattern: str, compat: str = DEFAULT_COMPAT) -> goregexp.Regexp:
    """Compile a Go regular expression as the given Alertmanager's Go does; RegexpError with Go's
    wording when Go would refuse it (unsupported=True: Go accepts it, goregexp cannot run it)."""
    return goregexp.compile(pattern, angle_names=compat != "0.25")  # (?<name>) is Go 1.22's


def replace_all(regex: goregexp.Regexp, src: str, repl: str) -> str:
    """Go's Regexp.ReplaceAllString."""
    return regex.replace_all_string(src, repl)


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

    match.regexp_compat = re_replace_all.regexp_compat = compat  # type: ignore[attr-defined]
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
        "stringSlice": Func(lambda *s: gv.StringSlice(s), ("string",), True),
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
    from . import gotemplate as gt
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
