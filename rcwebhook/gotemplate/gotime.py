"""Go's time package as templates see it: time.Time, time.Duration, time.Month and time.Weekday,
time.Location, Time.Format's layouts, and the methods a template can call on a time or a duration.

A time is seconds since the Unix epoch, nanoseconds and a zone; its civil date is reckoned in the
proleptic Gregorian calendar for any year, as Go's is (datetime stops at 1 and 9999).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .funcs import Func, GoError, bounded, with_state


class Duration(int):
    """time.Duration: nanoseconds."""


class Month(int):
    """time.Month: 1 for January."""


class Weekday(int):
    """time.Weekday: 0 for Sunday."""


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
DAYS_BEFORE = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)  # in a common year


class GoTime:
    """time.Time: seconds since the Unix epoch, nanoseconds, and a zone (offset, name)."""

    __slots__ = ("sec", "nsec", "offset", "zone", "tzinfo")

    def __init__(self, sec: int, nsec: int = 0, offset: int = 0, zone: Optional[str] = "UTC", tzinfo: Any = None):
        self.sec, self.nsec, self.offset, self.zone, self.tzinfo = sec, nsec, offset, zone, tzinfo

    def civil(self) -> "Civil":
        return civil(self.sec + self.offset)

    def abbrev(self) -> str:
        """The zone's abbreviation as Go prints it for MST: the name, else the offset as -0700."""
        return self.zone or _offset(self.offset, "-0700")

    def __eq__(self, other: Any) -> bool:  # Go's == on time.Time compares every field
        return isinstance(other, GoTime) and (self.sec, self.nsec, self.offset, self.zone) == \
            (other.sec, other.nsec, other.offset, other.zone)

    def __hash__(self) -> int:
        return hash((self.sec, self.nsec))


ZERO_TIME_SEC = -62135596800  # Go's zero time, January 1 of year 1, 00:00 UTC


class Location:
    """*time.Location: a zone's name and its rules (a tzinfo; None for UTC's). `local` marks Go's
    time.Local, the zone the process runs in (a template set's own: Template.local)."""

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

    __slots__ = ("year", "month", "day", "hour", "minute", "second", "wday", "yday")  # wday: Sunday is 0


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
    c.yday = DAYS_BEFORE[c.month - 1] + c.day + (1 if leap and c.month > 2 else 0)
    return c


def duration_string(d: int) -> str:
    """time.Duration.String(): 1h2m3.5s, 1.5ms, 0s."""
    if d == 0:
        return "0s"
    u = abs(d)
    if u < 1000:
        out = f"{u}ns"
    elif u < 1_000_000:
        out = _frac(u, 1000) + "µs"
    elif u < 1_000_000_000:
        out = _frac(u, 1_000_000) + "ms"
    else:
        h, m = divmod(u // 60_000_000_000, 60)
        sec = _frac(u % 60_000_000_000, 1_000_000_000) + "s"
        out = (f"{h}h{m}m" if h else f"{m}m" if m else "") + sec
    return ("-" if d < 0 else "") + out


def _frac(v: int, unit: int) -> str:
    whole, frac = divmod(v, unit)
    width = len(str(unit)) - 1
    return str(whole) + (("." + f"{frac:0{width}d}".rstrip("0")) if frac else "")


def time_string(t: GoTime) -> str:
    """time.Time.String(): 2026-01-30 10:00:00 +0000 UTC."""
    return time_format(t, "2006-01-02 15:04:05.999999999 -0700 MST")


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


def local_location(environ: Mapping[str, str]) -> Location:
    """Go's time.Local for a process with this environment: $TZ, else /etc/localtime, else UTC."""
    from zoneinfo import ZoneInfo
    tz = environ.get("TZ")
    try:
        if tz is None:
            with open("/etc/localtime", "rb") as f:
                return Location("Local", ZoneInfo.from_file(f, key="Local"), True)
        tz = tz[1:] if tz.startswith(":") else tz
        if tz and tz != "UTC":
            return Location(tz, ZoneInfo(tz), True)
    except Exception:  # no such zone, no database: Go falls back to UTC too
        pass
    return Location("UTC", None, True)


# ---------------------------------------------------------------------------------------------
# Layouts (the reference time Mon Jan 2 15:04:05 MST 2006)


# the standard chunks and their lengths by first character, each before any chunk it starts with
_STD_CHUNKS = {c: tuple((std, len(std)) for std in chunks) for c, chunks in {
    "J": ("January", "Jan"), "M": ("Monday", "Mon", "MST"), "0": ("002",), "1": ("15", "1"),
    "2": ("2006", "2"), "_": ("_2", "__2"), "3": ("3",), "4": ("4",), "5": ("5",), "P": ("PM",),
    "p": ("pm",), "-": ("-070000", "-07:00:00", "-0700", "-07:00", "-07"),
    "Z": ("Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07")}.items()}


def next_std(layout: str, i: int) -> Tuple[str, int]:
    """The standard chunk at layout[i:], as Go's nextStdChunk sees it, and its length; '' when none."""
    c = layout[i]
    if c == "0" and "1" <= layout[i + 1:i + 2] <= "6":
        return layout[i:i + 2], 2
    if c == "_" and layout.startswith("_2006", i):
        return "_", 0  # "_" then "2006"
    for std, size in _STD_CHUNKS.get(c, ()):
        if layout.startswith(std, i):
            return std, size
    if c in ".," and layout[i + 1:i + 2] in ("0", "9"):
        j = i + 1
        while j < len(layout) and layout[j] == layout[i + 1]:
            j += 1
        if not (j < len(layout) and layout[j].isdigit()):
            return layout[i:j], j - i
    return "", 0


def _offset(off: int, std: str) -> str:
    """The zone offset `off` as layout chunk `std` (-07, -0700, -07:00, Z070000...) writes it."""
    if std[0] == "Z" and off == 0:
        return "Z"
    h, rem = divmod(abs(off), 3600)
    m, s = divmod(rem, 60)
    fields = (f"{h:02d}", f"{m:02d}", f"{s:02d}")[:len(std.replace(":", "")) // 2]
    return ("-" if off < 0 else "+") + (":" if ":" in std else "").join(fields)


_CIVIL_FORMATS: Dict[str, Callable[[Civil], str]] = {
    "2006": lambda c: f"{c.year:04d}",
    "06": lambda c: f"{c.year % 100:02d}",
    "January": lambda c: MONTHS[c.month - 1],
    "Jan": lambda c: MONTHS[c.month - 1][:3],
    "01": lambda c: f"{c.month:02d}",
    "1": lambda c: str(c.month),
    "Monday": lambda c: DAYS[c.wday],
    "Mon": lambda c: DAYS[c.wday][:3],
    "2": lambda c: str(c.day),
    "02": lambda c: f"{c.day:02d}",
    "_2": lambda c: f"{c.day:2d}",
    "__2": lambda c: f"{c.yday:3d}",
    "002": lambda c: f"{c.yday:03d}",
    "15": lambda c: f"{c.hour:02d}",
    "3": lambda c: str(c.hour % 12 or 12),
    "03": lambda c: f"{c.hour % 12 or 12:02d}",
    "4": lambda c: str(c.minute),
    "04": lambda c: f"{c.minute:02d}",
    "5": lambda c: str(c.second),
    "05": lambda c: f"{c.second:02d}",
    "PM": lambda c: "PM" if c.hour >= 12 else "AM",
    "pm": lambda c: "pm" if c.hour >= 12 else "am",
}


def time_format(t: GoTime, layout: str) -> str:
    """time.Time.Format with a Go layout (reference time Mon Jan 2 15:04:05 MST 2006)."""
    dt = t.civil()
    out: List[str] = []
    i = 0
    n = len(layout)
    while i < n:
        std, size = next_std(layout, i)
        if not std or size == 0:
            out.append(layout[i])
            i += 1
            continue
        i += size
        civil_format = _CIVIL_FORMATS.get(std)
        if civil_format is not None:
            out.append(civil_format(dt))
        elif std == "MST":
            out.append(t.abbrev())
        elif std[0] in "-Z":
            out.append(_offset(t.offset, std))
        elif std[0] in ".,":
            frac = f"{t.nsec:09d}"[:len(std) - 1]
            frac = frac.rstrip("0") if std[1] == "9" else frac
            out.append(std[0] + frac if frac else "")
        else:
            out.append(std)
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# time.Time and time.Duration methods


class Int64(int):
    """An int64 (what Unix and a duration's whole-unit methods give): printed as an int, named int64."""


def _t_add(t: GoTime, d: int) -> GoTime:
    total = t.nsec + int(d)
    sec, nsec = divmod(total, 1_000_000_000)
    return GoTime(t.sec + sec, nsec, t.offset, t.zone, t.tzinfo)


def _t_sub(t: GoTime, u: GoTime) -> Duration:
    d = (t.sec - u.sec) * 1_000_000_000 + (t.nsec - u.nsec)
    return Duration(max(min(d, (1 << 63) - 1), -(1 << 63)))


def _t_key(t: GoTime) -> Tuple[int, int]:
    return (t.sec, t.nsec)


def _t_round(t: GoTime, d: int, up: bool) -> GoTime:
    if d <= 0:
        return GoTime(t.sec, t.nsec, t.offset, t.zone, t.tzinfo)
    # Go rounds relative to the zero time
    total = (t.sec - ZERO_TIME_SEC) * 1_000_000_000 + t.nsec
    r = total % d
    if up and r + r >= d:
        total += d - r
    else:
        total -= r
    sec, nsec = divmod(total, 1_000_000_000)
    return GoTime(sec + ZERO_TIME_SEC, nsec, t.offset, t.zone, t.tzinfo)


def _t_in(t: GoTime, loc: Optional[Location]) -> GoTime:
    if loc is None:
        raise GoError("time: missing Location in call to Time.In")
    return time_in(t, loc)


TIME_METHODS: Dict[str, Func] = {
    "Format": Func(bounded(time_format), ("string",)),
    "String": Func(time_string),
    "Unix": Func(lambda t: Int64(t.sec)),
    "UnixMilli": Func(lambda t: Int64(t.sec * 1000 + t.nsec // 1_000_000)),
    "UnixNano": Func(lambda t: Int64(t.sec * 1_000_000_000 + t.nsec)),
    "UTC": Func(lambda t: GoTime(t.sec, t.nsec, 0, "UTC")),
    "Year": Func(lambda t: t.civil().year),
    "Month": Func(lambda t: Month(t.civil().month)),
    "Day": Func(lambda t: t.civil().day),
    "Hour": Func(lambda t: t.civil().hour),
    "Minute": Func(lambda t: t.civil().minute),
    "Second": Func(lambda t: t.civil().second),
    "Nanosecond": Func(lambda t: t.nsec),
    "YearDay": Func(lambda t: t.civil().yday),
    "Weekday": Func(lambda t: Weekday(t.civil().wday)),
    "IsZero": Func(lambda t: t.sec == ZERO_TIME_SEC and t.nsec == 0),
    "Add": Func(_t_add, ("time.Duration",)),
    "Sub": Func(_t_sub, ("time.Time",)),
    "Before": Func(lambda t, u: _t_key(t) < _t_key(u), ("time.Time",)),
    "After": Func(lambda t, u: _t_key(t) > _t_key(u), ("time.Time",)),
    "Equal": Func(lambda t, u: _t_key(t) == _t_key(u), ("time.Time",)),
    "Round": Func(lambda t, d: _t_round(t, int(d), True), ("time.Duration",)),
    "Location": Func(location_of),
    "In": Func(_t_in, ("*time.Location",)),
    "Local": Func(with_state(lambda st, t: time_in(t, st.tmpl.local))),
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
    "String": Func(lambda d: duration_string(int(d))),
    "Seconds": Func(lambda d: _d_float(d, 1_000_000_000)),
    "Minutes": Func(lambda d: _d_float(d, 60_000_000_000)),
    "Hours": Func(lambda d: _d_float(d, 3_600_000_000_000)),
    "Milliseconds": Func(lambda d: Int64(_go_div(int(d), 1_000_000)[0])),
    "Microseconds": Func(lambda d: Int64(_go_div(int(d), 1000)[0])),
    "Nanoseconds": Func(lambda d: Int64(int(d))),
}
