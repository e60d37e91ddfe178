"""Go's time.ParseInLocation(layout, value, time.UTC): a time from text written in a Go layout, and
Go's own message when the text does not fit it.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from .funcs import GoError
from .gotime import DAYS, DAYS_BEFORE, MONTHS, GoTime, next_std


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
    n = next((k for k in range(3) if not _digit(s, k)), 3)
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


def _chunk_at(layout: str, i: int) -> int:
    """Where the layout's next standard chunk from i on starts (Go's nextStdChunk), or its end."""
    while i < len(layout) and not all(next_std(layout, i)):
        i += 1
    return i


def _fraction(value: str) -> Tuple[int, str]:
    """Nanoseconds of the fraction (. or , then digits) opening `value`, and the rest of it."""
    n = 2
    while _digit(value, n):
        n += 1
    return _nanoseconds(value, n), value[n:]


def parse_layout(layout: str, value: str) -> GoTime:
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
        start, i = i, _chunk_at(layout, i)
        prefix = layout[start:i]
        value, matched = _skip(value, prefix)
        if not matched:
            raise fail(prefix, value)
        if i >= len(layout):
            if value:
                raise fail("", value, f": extra text: {_time_quote(value)}")
            break
        std, size = next_std(layout, i)
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
                names = MONTHS if std == "January" else [m[:3] for m in MONTHS]
                month, value = _lookup(names, value)
                month += 1
            elif std in ("01", "1"):
                month, value = _getnum(value, std == "01")
                if not 1 <= month <= 12:
                    range_error = "month"
            elif std in ("Monday", "Mon"):
                _, value = _lookup(DAYS if std == "Monday" else [d[:3] for d in DAYS], value)
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
                    j = _chunk_at(layout, i)
                    if layout[j:j + 1] not in (".", ","):  # a fraction the layout does not name
                        nsec, value = _fraction(value)
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
                    body = std[1:]  # the shape after the sign: 07, 0700, 07:00, 070000 or 07:00:00
                    if len(value) <= len(body) or \
                            any(value[k + 1] != ":" for k, b in enumerate(body) if b == ":"):
                        raise _BadParse
                    digits = "".join(c for c, b in zip(value[1:], body) if b != ":").ljust(6, "0")
                    sign, value = value[0], value[len(body) + 1:]
                    h, m, s = (_getnum(digits[k:k + 2], True)[0] for k in (0, 2, 4))
                    for what, v, top in (("hour", h, 24), ("minute", m, 60), ("second", s, 60)):
                        if v > top:  # the last out of range is the one Go names
                            range_error = f"time zone offset {what}"
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
                    nsec, value = _fraction(value)
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
            if DAYS_BEFORE[m] < yday:
                m += 1
            d = yday - DAYS_BEFORE[m - 1]
        if month >= 0 and month != m:
            raise fail("", value, ": day-of-year does not match month")
        month = m
        if day >= 0 and day != d:
            raise fail("", value, ": day-of-year does not match day")
        day = d
    else:
        month = 1 if month < 0 else month
        day = 1 if day < 0 else day
    days_in = 29 if month == 2 and leap else DAYS_BEFORE[month] - DAYS_BEFORE[month - 1]
    if not 1 <= day <= days_in:
        raise fail("", value, ": day out of range")
    sec_of_day = hour * 3600 + minute * 60 + sec
    epoch = _civil_to_unix(year, month, day) + sec_of_day
    if utc or offset is None and not zone_name:
        return GoTime(epoch, nsec)
    if offset is not None:
        epoch -= offset
        if offset == 0 and not zone_name:
            return GoTime(epoch, nsec)
        return GoTime(epoch, nsec, offset, zone_name or "")
    # a zone abbreviation UTC does not know: a zone of that name at offset 0 (GMT+h at h hours)
    shift = int(zone_name[3:]) * 3600 if len(zone_name) > 3 and zone_name[:3] == "GMT" else 0
    return GoTime(epoch, nsec, shift, zone_name)  # the instant read as UTC, shown in that zone


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
