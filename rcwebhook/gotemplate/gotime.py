"""Go's time.Time and time.Duration methods, as templates call them (.Format, .Add, .Sub, .Seconds...)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from . import values as gv
from .funcs import Func, GoError, bounded, with_state


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


TIME_METHODS: Dict[str, Func] = {
    "Format": Func(bounded(gv.time_format), ("string",)),
    "String": Func(lambda t: gv.format_v(t, "0.28")),
    "Unix": Func(lambda t: Int64(t.sec)),
    "UnixMilli": Func(lambda t: Int64(t.sec * 1000 + t.nsec // 1_000_000)),
    "UnixNano": Func(lambda t: Int64(t.sec * 1_000_000_000 + t.nsec)),
    "UTC": Func(lambda t: gv.GoTime(t.sec, t.nsec, 0, "UTC")),
    "Year": Func(lambda t: t.civil().year),
    "Month": Func(lambda t: gv.Month(t.civil().month)),
    "Day": Func(lambda t: t.civil().day),
    "Hour": Func(lambda t: t.civil().hour),
    "Minute": Func(lambda t: t.civil().minute),
    "Second": Func(lambda t: t.civil().second),
    "Nanosecond": Func(lambda t: t.nsec),
    "YearDay": Func(lambda t: t.civil().yday),
    "Weekday": Func(lambda t: gv.Weekday((t.civil().weekday() + 1) % 7)),
    "IsZero": Func(lambda t: t.sec == gv.ZERO_TIME_SEC and t.nsec == 0),
    "Add": Func(_t_add, ("time.Duration",)),
    "Sub": Func(_t_sub, ("time.Time",)),
    "Before": Func(lambda t, u: _t_key(t) < _t_key(u), ("time.Time",)),
    "After": Func(lambda t, u: _t_key(t) > _t_key(u), ("time.Time",)),
    "Equal": Func(lambda t, u: _t_key(t) == _t_key(u), ("time.Time",)),
    "Round": Func(lambda t, d: _t_round(t, int(d), True), ("time.Duration",)),
    "Location": Func(gv.location_of),
    "In": Func(_t_in, ("*time.Location",)),
    "Local": Func(with_state(lambda st, t: gv.time_in(t, st.tmpl.local))),
    "Truncate": Func(lambda t, d: _t_round(t, int(d), False), ("time.Duration",)),
}

def _go_div(d: int, unit: int) -> Tuple[int, int]:
    """Go's integer division and remainder (both truncated toward zero)."""
    q = abs(d) // unit * (1 if d >= 0 else -1)
    return q, d - q * unit


def _d_float(d: Any, unit: int) -> float:
    whole, rest = _go_div(int(d), unit)
    return float(whole) + float(rest) / float(unit)


DURATION_METHODS: Dict[str, Func] = {
    "String": Func(lambda d: gv.duration_string(int(d))),
    "Seconds": Func(lambda d: _d_float(d, 1_000_000_000)),
    "Minutes": Func(lambda d: _d_float(d, 60_000_000_000)),
    "Hours": Func(lambda d: _d_float(d, 3_600_000_000_000)),
    "Milliseconds": Func(lambda d: Int64(_go_div(int(d), 1_000_000)[0])),
    "Microseconds": Func(lambda d: Int64(_go_div(int(d), 1000)[0])),
    "Nanoseconds": Func(lambda d: Int64(int(d))),
}
