"""Alertmanager's template data: template.Data, its Alerts, KV and Pairs and their methods, read from
JSON as Go's encoding/json reads it (amtool's --template.data), or built from a notification with the
route and severity of the message it renders (MessageData).
"""

from __future__ import annotations

import functools
import json
import os
import re
import time as _clock
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, List, Tuple

from ..gotemplate.funcs import Func
from ..gotemplate.gotime import ZERO_TIME_SEC, GoTime, Location, local_location
from ..gotemplate.values import GoStruct, StringSlice, TypedMap, TypedSlice


def _method(fn: Any, params: Tuple[str, ...] = (), since_026: bool = False) -> Func:
    """A method of the data's types; `since_026`: one Alertmanager 0.25 does not have (a String method)."""
    f = Func(fn, params)
    f.since_026 = since_026  # type: ignore[attr-defined]
    return f


class Pair(GoStruct):
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


class Pairs(TypedSlice):
    TYPE = "template.Pairs"


Pairs.METHODS = {
    "Names": _method(lambda ps: StringSlice(p.Name for p in ps)),
    "Values": _method(lambda ps: StringSlice(p.Value for p in ps)),
    "String": _method(_pairs_string, since_026=True),
}


class KV(TypedMap):
    TYPE = "template.KV"


def sorted_pairs(kv: Dict[str, str]) -> Pairs:
    cached = getattr(kv, "sorted_pairs", None)  # a label set never changes once made: its pairs neither
    if cached is not None and len(cached) == len(kv):
        return cached
    pairs = Pairs(Pair(k, kv[k]) for k in sorted(kv, key=lambda k: (k != "alertname", k)))  # alertname first
    if isinstance(kv, KV):
        kv.sorted_pairs = pairs
    return pairs


def _remove(kv: KV, keys: List[str]) -> KV:
    drop = set(keys or ())
    return KV((k, v) for k, v in kv.items() if k not in drop)


KV.METHODS = {
    "SortedPairs": _method(sorted_pairs),
    "Remove": _method(_remove, ("[]string",)),
    "Names": _method(lambda kv: StringSlice(p.Name for p in sorted_pairs(kv))),
    "Values": _method(lambda kv: StringSlice(p.Value for p in sorted_pairs(kv))),
    "String": _method(lambda kv: _pairs_string(sorted_pairs(kv)), since_026=True),
}


class _Struct(GoStruct):
    """A struct of the data, its fields set by keyword; a field not given is its ZERO's value, else ""."""

    ZERO: Dict[str, Callable[[], Any]] = {}

    def __init__(self, **kw: Any) -> None:
        for name in self.FIELDS:
            setattr(self, name, kw[name] if name in kw else self.ZERO.get(name, str)())


def _zero_time() -> GoTime:
    return GoTime(ZERO_TIME_SEC)


class Alert(_Struct):
    TYPE = "template.Alert"
    FIELDS = ("Status", "Labels", "Annotations", "StartsAt", "EndsAt", "GeneratorURL", "Fingerprint")
    ZERO = {"Labels": KV, "Annotations": KV, "StartsAt": _zero_time, "EndsAt": _zero_time}


class AlertList(TypedSlice):
    TYPE = "[]template.Alert"


class Alerts(TypedSlice):
    TYPE = "template.Alerts"


def _with_status(alerts: Alerts, status: str) -> "AlertList":
    """.Firing and .Resolved: made once for a list of alerts (template data never changes; nor may
    what a template gets from it, and no function changes a value)."""
    kept = getattr(alerts, "by_status", None)
    if kept is None or kept[1] != len(alerts):
        lists = {wanted: AlertList(a for a in alerts if a.Status == wanted) for wanted in ("firing", "resolved")}
        kept = alerts.by_status = (lists, len(alerts))
    return kept[0][status]


Alerts.METHODS = {
    "Firing": _method(lambda alerts: _with_status(alerts, "firing")),
    "Resolved": _method(lambda alerts: _with_status(alerts, "resolved")),
}


class Data(_Struct):
    TYPE = "template.Data"
    FIELDS = ("Receiver", "Status", "Alerts", "GroupLabels", "CommonLabels", "CommonAnnotations", "ExternalURL")
    ZERO = {"Alerts": Alerts, "GroupLabels": KV, "CommonLabels": KV, "CommonAnnotations": KV}


class MessageData(Data):
    """The data of a template that renders a message: Alertmanager's, plus the route the message goes to
    (`.Route`: `critical`, or `db/critical` in hook set db) and its severity (`.Severity`)."""

    FIELDS = Data.FIELDS + ("Route", "Severity")


class DataError(ValueError):
    """The data file is not Alertmanager's template data (as Go's encoding/json would refuse it)."""


_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z")


def parse_time(text: str) -> GoTime:
    """A time.Time from RFC 3339 text, as Go's time.Time.UnmarshalJSON reads it."""
    m = _RFC3339.match(text)
    if not m:
        raise DataError(f'parsing time "{text}" as RFC 3339: cannot parse')
    year, month, day, hour, minute, second, frac, z, sign, oh, om = m.groups()
    try:
        civil = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        raise DataError(f'parsing time "{text}": value out of range') from None
    nsec = int((frac or "0").ljust(9, "0"))
    sec = (civil - datetime(1970, 1, 1)) // timedelta(seconds=1)
    if z:
        return GoTime(sec, nsec, 0, "UTC")
    if int(oh) >= 24 or int(om) >= 60:
        raise DataError(f'parsing time "{text}": time zone offset out of range')
    offset = (int(oh) * 3600 + int(om) * 60) * (-1 if sign == "-" else 1)
    sec -= offset
    try:  # Go's time.Parse: an offset that the local zone has at that moment gives the local zone
        local = _clock.localtime(sec)
        if local.tm_gmtoff == offset:
            return GoTime(sec, nsec, offset, local.tm_zone, _process_local())
    except (OverflowError, OSError, ValueError):
        pass
    return GoTime(sec, nsec, offset, "")  # a fixed zone without a name: Go prints its offset (+0200 +0200)


@functools.lru_cache(maxsize=1)
def _process_local() -> Location:
    """This process's time.Local, as parse_time's local times (above) are in it."""
    return local_location(os.environ)


def _field(obj: Dict[str, Any], name: str) -> Any:
    """A JSON object's member for a Go struct field, its name matched case-insensitively: Go's decoder
    sets the field from each matching key in turn, so the last one wins."""
    return next((obj[key] for key in reversed(obj) if key.lower() == name.lower()), None)


# Go's json tags of the data's fields: each its field's name with a lower-case first letter.
JSON_NAMES = {name: name[0].lower() + name[1:] for name in Data.FIELDS + Alert.FIELDS}


def _unmarshal_error(value: Any, where: str, go_type: str) -> DataError:
    return DataError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field {where} of type {go_type}")


def _kv(value: Any, where: str) -> KV:
    if value is None:
        out = KV()
        out.nil = True  # Go's nil map (%#v prints it so); an empty one otherwise
        return out
    if not isinstance(value, dict):
        raise _unmarshal_error(value, where, "template.KV")
    return KV((k, _str(v, where)) for k, v in value.items())


def _str(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _unmarshal_error(value, where, "string")
    return value


def _time(value: Any, where: str) -> GoTime:
    if value is None:
        return GoTime(ZERO_TIME_SEC)
    if not isinstance(value, str):
        raise _unmarshal_error(value, where, "time.Time")
    return parse_time(value)


def _alerts(value: Any, where: str) -> Alerts:
    alerts = Alerts()
    if value is None:
        alerts.nil = True
    elif not isinstance(value, list):
        raise _unmarshal_error(value, where, "template.Alerts")
    for item in value or ():
        if item is not None and not isinstance(item, dict):
            raise _unmarshal_error(item, where, "template.Alert")
        alerts.append(Alert() if item is None else _struct(Alert, item, where))
    return alerts


_READERS = {"Labels": _kv, "Annotations": _kv, "GroupLabels": _kv, "CommonLabels": _kv, "CommonAnnotations": _kv,
            "StartsAt": _time, "EndsAt": _time}


def _struct(cls: Any, obj: Dict[str, Any], where: str, **given: Any) -> Any:
    """The struct `cls` that Go's json.Unmarshal makes of a JSON object, its fields in `given` already read."""
    fields = dict(given)
    for name in cls.FIELDS:
        if name not in given:
            key = JSON_NAMES[name]
            fields[name] = _READERS.get(name, _str)(_field(obj, key), f"{where}.{key}")
    return cls(**fields)


_JSON_KINDS = ((bool, "bool"), ((int, float), "number"), (str, "string"), (list, "array"))  # bool is an int


def _json_kind(v: Any) -> str:
    return next((name for types, name in _JSON_KINDS if isinstance(v, types)), "object")


def data_from_json(obj: Any) -> Data:
    """The template.Data that Go's json.Unmarshal makes of this JSON value (amtool hands templates
    the struct itself, not a pointer)."""
    if obj is None:
        return Data()
    if not isinstance(obj, dict):
        raise DataError(f"json: cannot unmarshal {_json_kind(obj)} into Go value of type template.Data")
    return _struct(Data, obj, "Data", Alerts=_alerts(_field(obj, "alerts"), "Data.alerts"))


def load_data(text: str) -> Data:
    """The template.Data of a JSON text (amtool's --template.data); DataError when it is not one."""
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise DataError(f"invalid JSON: {exc}") from None
    return data_from_json(obj)


def local_of(zone: Any) -> Location:
    """time.Local for rcwebhook's messages: the zone TIMEZONE names (a tzinfo; None or UTC for UTC)."""
    return Location("Local", None if zone in (None, timezone.utc) else zone, True)
