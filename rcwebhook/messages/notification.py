"""Alertmanager's webhook payload (version 4): strict JSON in, a validated Notification out."""

from __future__ import annotations

import gc
import json
import json.decoder
import json.scanner
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, List, Mapping, NamedTuple, Optional, Tuple, Union

MAX_DEPTH = 32
# What Alertmanager sends is never dense: every alert carries status, labels, annotations,
# startsAt, endsAt, generatorURL and fingerprint, some 170 bytes at the least. A body packed
# tighter than these bounds is refused before it costs much: parsing 4 MiB of `{},` would
# make 1.4 million objects (100 MB), and each alert costs work after that.
BYTES_PER_ALERT = 160  # at most one alert per this many bytes of body, beyond FREE_ALERTS
FREE_ALERTS = 1000
BYTES_PER_VALUE = 12  # at most one JSON value per this many bytes of body, beyond FREE_VALUES
FREE_VALUES = 10000
MAX_LABELS = 1000  # labels (or annotations) of one alert; Prometheus alerts carry tens
ANSWER_NAMES = 1000  # alert names the answer echoes, each cut to ANSWER_NAME_LENGTH characters
ANSWER_NAME_LENGTH = 200
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_ZERO_TIME = "0001-01-01T00:00:00Z"
_REGEX_ESCAPE = re.compile(r"\\(.)")
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z"
)


Body = Union[bytes, bytearray]  # a request body, as the server read it


class PayloadError(ValueError):
    """The request body is not an Alertmanager notification; the message says where and why."""


class PayloadTooDense(PayloadError):
    """The body packs more alerts or values into its bytes than Alertmanager ever does."""


class Alert(NamedTuple):
    """One alert of a notification."""

    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str = ""
    ends_at: str = ""
    generator_url: str = ""
    fingerprint: str = ""

    @property
    def name(self) -> str:
        """Return the alertname label, or `(unnamed)`."""
        return self.labels.get("alertname") or "(unnamed)"


class Notification(NamedTuple):
    """One webhook notification: a group of alerts and its metadata."""

    alerts: Tuple[Alert, ...]
    status: str = "firing"
    receiver: str = ""
    group_key: str = ""
    group_labels: Mapping[str, str] = None  # type: ignore[assignment]
    common_labels: Mapping[str, str] = None  # type: ignore[assignment]
    common_annotations: Mapping[str, str] = None  # type: ignore[assignment]
    external_url: str = ""
    truncated_alerts: int = 0
    reason: str = ""  # notification_reason (Alertmanager 0.32+): why it was sent; "" from older ones
    route_labels: Mapping[str, str] = None  # type: ignore[assignment]  # routeLabels (0.34+): the route's labels

    @property
    def receiver_name(self) -> str:
        """Return the receiver's name as configured: Alertmanager sends it regex-escaped (`team\\.prod`)."""
        return _REGEX_ESCAPE.sub(r"\1", self.receiver)


def decode(body: Body) -> Any:
    """Return the JSON value in `body`; PayloadError for invalid UTF-8, bad JSON, NaN or deep nesting."""
    # Every value but the first in an array or object follows a comma, and every array and object
    # opens with a bracket: so this counts the values (and the commas and brackets in strings too).
    values = body.count(b",") + body.count(b"{") + body.count(b"[")
    if values > FREE_VALUES + len(body) // BYTES_PER_VALUE:
        raise PayloadTooDense(
            f"body packs some {values} JSON values into {len(body)} bytes; Alertmanager never sends more than "
            f"one per {BYTES_PER_VALUE} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not valid UTF-8 (at byte {exc.start})") from None
    try:
        value = _loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise PayloadError(f"body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise PayloadError(f"body holds a number too large to read: {str(exc)[:80]}") from None
    strings = _SURROGATE_ESCAPE.search(text) is not None
    if strings or text.count("[") + text.count("{") > MAX_DEPTH:  # else it cannot nest too deep
        _check(value, strings)
    return value


def _loads(text: str) -> Any:
    """Return json.loads(text) with the cyclic garbage collector paused."""
    # Parsing makes up to hundreds of thousands of objects, none in a cycle; each collection they
    # trigger would walk them all (and every other live object) holding the interpreter lock,
    # stalling every other request.
    paused = gc.isenabled()
    gc.disable()
    try:
        try:
            return _loads_in_steps(text)
        except json.JSONDecodeError:
            return _DECODER.decode(text)
    finally:
        if paused:
            gc.enable()


def _loads_in_steps(text: str) -> Any:
    """Return json.loads(text), decoding a top-level object one member (and an array one element) at a time.

    json.loads holds the interpreter lock from start to end: some 40 ms for 4 MiB of alerts, during
    which no other thread runs, /health included. Between these small steps another thread can. A
    body these steps find invalid is decoded again by json.loads, which says why in its own words."""
    i = _skip(text, 0).end()
    if len(text) < STEP_BYTES or not text.startswith("{", i):
        return _DECODER.decode(text)
    members, i = _items_in_steps(text, i, "}", _member)
    i = _skip(text, i).end()
    if i != len(text):
        raise json.JSONDecodeError("Extra data", text, i)
    return dict(members)


def _items_in_steps(text: str, i: int, close: str, item: Callable[[str, int], Tuple[Any, int]]
                    ) -> Tuple[List[Any], int]:
    """Return the items of the object or array that opens at text[i], each read by `item`, and where it ends."""
    items: List[Any] = []
    i = _skip(text, i + 1).end()
    if text.startswith(close, i):
        return items, i + 1
    while True:
        value, i = item(text, i)
        items.append(value)
        i = _skip(text, i).end()
        if text.startswith(",", i):
            i = _skip(text, i + 1).end()
        elif text.startswith(close, i):
            return items, i + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)


def _member(text: str, i: int) -> Tuple[Tuple[str, Any], int]:
    """Return the key and value of the object member at text[i], an array value read in steps too."""
    if not text.startswith('"', i):
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
    key, i = json.decoder.scanstring(text, i + 1)
    i = _skip(text, i).end()
    if not text.startswith(":", i):
        raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
    i = _skip(text, i + 1).end()
    value, i = _items_in_steps(text, i, "]", _value) if text.startswith("[", i) else _value(text, i)
    return (key, value), i


def _value(text: str, i: int) -> Tuple[Any, int]:
    """Return the JSON value that starts at text[i], and where it ends."""
    try:
        return _SCAN(text, i)
    except StopIteration as exc:
        raise json.JSONDecodeError("Expecting value", text, exc.value) from None


def _reject_constant(name: str) -> Any:
    raise PayloadError(f"body is not valid JSON: {name} is not a JSON number")


# Bodies from this size on are decoded in steps (_loads_in_steps).
STEP_BYTES = 64 * 1024
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_SCAN = json.scanner.make_scanner(_DECODER)
_skip = json.decoder.WHITESPACE.match


def _check(value: Any, strings: bool) -> None:
    """Raise PayloadError when `value` nests deeper than MAX_DEPTH or, when `strings`, holds a string
    that is not Unicode text (a lone surrogate escape such as \\ud800, which JSON's syntax allows)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if strings:
                stack.extend((key, depth) for key in item)
            item = list(item.values())
        if isinstance(item, list):
            if depth > MAX_DEPTH:
                raise PayloadError(f"body nests deeper than {MAX_DEPTH} levels")
            stack.extend((child, depth + 1) for child in item if strings or isinstance(child, (dict, list)))
        elif strings and isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise PayloadError(
                    f"body holds a string with a lone surrogate (\\u{ord(item[exc.start]):04x}): not Unicode text"
                ) from None


def parse(body: Body) -> Notification:
    """Return the Notification in a webhook request body; PayloadError says what is wrong."""
    data = decode(body)
    if not isinstance(data, dict):
        raise PayloadError(f"body must be a JSON object (an Alertmanager notification), not {_kind(data)}")
    if "alerts" not in data:
        raise PayloadError("alerts is missing: this is not an Alertmanager notification")
    raw_alerts = data["alerts"]
    if not isinstance(raw_alerts, list):
        raise PayloadError(f"alerts must be a list, not {_kind(raw_alerts)}")
    if len(raw_alerts) > FREE_ALERTS + len(body) // BYTES_PER_ALERT:
        raise PayloadTooDense(
            f"body packs {len(raw_alerts)} alerts into {len(body)} bytes; an alert from Alertmanager takes "
            f"{BYTES_PER_ALERT} bytes at the least")
    group_status = _optional_status(data, "status", "status", "firing")
    alerts = tuple(_alert(item, f"alerts[{i}]", group_status) for i, item in enumerate(raw_alerts))
    truncated = data.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, (int, float)) or truncated < 0 \
            or truncated == float("inf"):
        raise PayloadError("truncatedAlerts must be a non-negative number")
    return Notification(
        alerts=alerts,
        status=group_status,
        receiver=_string(data, "receiver", "receiver"),
        group_key=_string(data, "groupKey", "groupKey"),
        group_labels=_labels(data, "groupLabels", "groupLabels"),
        common_labels=_labels(data, "commonLabels", "commonLabels"),
        common_annotations=_labels(data, "commonAnnotations", "commonAnnotations"),
        external_url=_string(data, "externalURL", "externalURL"),
        truncated_alerts=int(truncated),
        # Newer than the payload's version 4 and only a hint: a value of another type is ignored.
        reason=data["notification_reason"] if isinstance(data.get("notification_reason"), str) else "",
        route_labels=_hint_labels(data.get("routeLabels")),
    )


def _hint_labels(value: Any) -> Mapping[str, str]:
    """Return a map of strings newer than payload version 4 (routeLabels), or {} for any other value: it is
    only a hint, and a notification is not refused for it."""
    if not isinstance(value, dict) or len(value) > MAX_LABELS:
        return {}
    return {k: v for k, v in value.items() if isinstance(v, str)}


def _alert(item: Any, where: str, group_status: str) -> Alert:
    """Return the Alert in one element of `alerts`."""
    if not isinstance(item, dict):
        raise PayloadError(f"{where} must be an object, not {_kind(item)}")
    return Alert(
        status=_optional_status(item, "status", f"{where}.status", group_status),
        labels=_labels(item, "labels", f"{where}.labels"),
        annotations=_labels(item, "annotations", f"{where}.annotations"),
        starts_at=_string(item, "startsAt", f"{where}.startsAt"),
        ends_at=_string(item, "endsAt", f"{where}.endsAt"),
        generator_url=_string(item, "generatorURL", f"{where}.generatorURL"),
        fingerprint=_string(item, "fingerprint", f"{where}.fingerprint"),
    )


def _optional_status(data: Mapping[str, Any], key: str, where: str, default: str) -> str:
    value = data.get(key)
    if value is None:
        return default
    if value not in ("firing", "resolved"):
        raise PayloadError(f'{where} must be "firing" or "resolved", not {_short(value)}')
    return value


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{where} must be a string, not {_kind(value)}")
    return value


def _labels(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, str]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object, not {_kind(value)}")
    if len(value) > MAX_LABELS:
        raise PayloadTooDense(f"{where} has {len(value)} entries; an alert from Alertmanager has far fewer "
                              f"than {MAX_LABELS}")
    for name, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(f"{where}.{name[:64]} must be a string, not {_kind(item)}")
    return value


# JSON's types as a message names them, bool before int (a bool is an int in Python).
_KINDS = ((type(None), "null"), (bool, "a boolean"), ((int, float), "a number"), (str, "a string"), (list, "a list"))


def _kind(value: Any) -> str:
    """Return the JSON name of `value`'s type, with an article."""
    return next((name for types, name in _KINDS if isinstance(value, types)), "an object")


def _short(value: Any) -> str:
    return json.dumps(value[:40], ensure_ascii=False) if isinstance(value, str) else _kind(value)


def parse_time(text: str) -> Optional[datetime]:
    """Return the UTC datetime of an RFC 3339 timestamp (nanoseconds allowed), or None when unset or invalid."""
    if not text or text == _ZERO_TIME:
        return None
    match = _RFC3339.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                          int((fraction or "0")[:6].ljust(6, "0")), tzinfo=timezone.utc)
        if not zulu:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            moment = moment - offset if sign == "+" else moment + offset
    except (ValueError, OverflowError):
        return None
    return moment if moment.year > 1 else None


def names(notification: Notification) -> List[str]:
    """Return the first ANSWER_NAMES alert names, each cut to ANSWER_NAME_LENGTH, as the seed script answered them."""
    return [alert.name[:ANSWER_NAME_LENGTH] for alert in notification.alerts[:ANSWER_NAMES]]
