"""Parsing Alertmanager's payload: what is accepted, and what each rejection says."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from rcwebhook.messages.notification import PayloadError, names, parse, parse_time
from tests.conftest import load_example


def body(value) -> bytes:
    return json.dumps(value).encode()


def rejection(raw: bytes) -> str:
    with pytest.raises(PayloadError) as caught:
        parse(raw)
    return str(caught.value)


def test_example_notification_parses():
    notification = parse(body(load_example()))
    assert names(notification) == ["HighCPUUsage", "HighMemoryUsage"]
    assert notification.receiver == "rocketchat"
    assert notification.external_url == "http://localhost:9093"
    assert notification.alerts[0].labels["severity"] == "critical"
    assert notification.alerts[1].annotations["summary"] == "Memory usage above 80% on server1"


def test_unknown_keys_are_ignored_and_optional_ones_may_be_missing():
    notification = parse(body({
        "alerts": [{"labels": {"alertname": "A"}, "newKey": [1, 2]}],
        "notification_reason": "first notification",
        "routeLabels": {"x": "y"},
    }))
    alert = notification.alerts[0]
    assert (alert.status, alert.annotations, alert.generator_url) == ("firing", {}, "")
    assert notification.group_key == "" and notification.truncated_alerts == 0


def test_alert_without_status_takes_the_group_status():
    notification = parse(body({"status": "resolved", "alerts": [{"labels": {}}]}))
    assert notification.alerts[0].status == "resolved"


def test_alert_without_alertname_is_unnamed():
    assert names(parse(body({"alerts": [{"labels": {}}]}))) == ["(unnamed)"]


def test_empty_alerts_list_is_a_notification():
    assert parse(body({"alerts": []})).alerts == ()


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"not json", "body is not valid JSON: Expecting value at line 1 column 1"),
        (b'{"alerts": [', "body is not valid JSON"),
        (b"\xff\xfe{}", "body is not valid UTF-8 (at byte 0)"),
        (b'{"alerts": [], "x": NaN}', "NaN is not a JSON number"),
        (b'{"alerts": [], "x": -Infinity}', "-Infinity is not a JSON number"),
        (b"[]", "body must be a JSON object (an Alertmanager notification), not a list"),
        (b'"text"', "not a string"),
        (b"{}", "alerts is missing: this is not an Alertmanager notification"),
        (b'{"alerts": {}}', "alerts must be a list, not an object"),
        (b'{"alerts": [1]}', "alerts[0] must be an object, not a number"),
        (b'{"alerts": [{}, {"labels": []}]}', "alerts[1].labels must be an object, not a list"),
        (b'{"alerts": [{"labels": {"severity": 3}}]}', "alerts[0].labels.severity must be a string, not a number"),
        (b'{"alerts": [{"annotations": {"summary": null}}]}', "alerts[0].annotations.summary must be a string, not null"),
        (b'{"alerts": [{"status": "pending"}]}', 'alerts[0].status must be "firing" or "resolved", not "pending"'),
        (b'{"alerts": [{"startsAt": 5}]}', "alerts[0].startsAt must be a string, not a number"),
        (b'{"alerts": [], "status": true}', 'status must be "firing" or "resolved", not a boolean'),
        (b'{"alerts": [], "commonLabels": "x"}', "commonLabels must be an object, not a string"),
        (b'{"alerts": [], "externalURL": {}}', "externalURL must be a string, not an object"),
        (b'{"alerts": [], "truncatedAlerts": -1}', "truncatedAlerts must be a non-negative number"),
    ],
)
def test_rejections_say_what_and_where(raw, message):
    assert message in rejection(raw)


def test_deep_nesting_is_rejected_not_a_crash():
    deep = b'{"alerts": [], "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    assert "nests deeper than 32 levels" in rejection(deep)
    deeper = b'{"alerts": [], "x": ' + b"[" * 100000 + b"]" * 100000 + b"}"  # refused before it is parsed
    assert "Alertmanager never sends" in rejection(deeper)


def test_moderate_nesting_in_unknown_keys_is_fine():
    nested = b'{"alerts": [], "x": ' + b"[" * 20 + b"]" * 20 + b"}"
    assert parse(nested).alerts == ()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-01-30T10:00:00Z", datetime(2026, 1, 30, 10, 0, 0, tzinfo=timezone.utc)),
        ("2026-01-30T10:00:00.123456789Z", datetime(2026, 1, 30, 10, 0, 0, 123456, tzinfo=timezone.utc)),
        ("2026-01-30T12:30:00+02:30", datetime(2026, 1, 30, 10, 0, 0, tzinfo=timezone.utc)),
        ("2026-01-30T08:00:00.5-02:00", datetime(2026, 1, 30, 10, 0, 0, 500000, tzinfo=timezone.utc)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("yesterday", None),
        ("2026-13-40T10:00:00Z", None),
    ],
)
def test_parse_time_handles_rfc3339_with_nanoseconds(text, expected):
    assert parse_time(text) == expected


# --- large bodies are decoded in steps, exactly as json.loads decodes them -----------------------

def _mutations(seed: int):
    """Yield JSON texts over STEP_BYTES, valid and broken, built from `seed`."""
    import random

    rng = random.Random(seed)
    alert = {"status": "firing", "labels": {"alertname": "Ünïcode ✓", "severity": "critical"},
             "annotations": {"summary": 'quote " and \\ backslash'}, "startsAt": "2026-01-30T10:00:00Z",
             "fingerprint": "abc"}
    alerts = [dict(alert, fingerprint=f"{i:x}") for i in range(400)]
    shapes = [
        {"receiver": "r", "alerts": alerts, "groupLabels": {}, "nested": [[1, 2], [], [[]]]},
        {"alerts": alerts, "values": [None, True, False, 1.5e3, -0, "x", {"k": [{}]}]},
        {"version": "4", "alerts": [], "pad": ["p" * 70000]},
        {"alerts": alerts, "truncatedAlerts": 0},
    ]
    for shape in shapes:
        for indent in (None, 1):
            text = json.dumps(shape, indent=indent, ensure_ascii=rng.random() < 0.5)
            yield text
            yield " \n\t" + text + " \r\n"
            for _ in range(25):  # one character removed, doubled or replaced
                i = rng.randrange(len(text))
                choice = rng.random()
                if choice < 0.4:
                    yield text[:i] + text[i + 1:]
                elif choice < 0.7:
                    yield text[:i] + text[i] + text[i:]
                else:
                    yield text[:i] + rng.choice(',:[]{}" x0\\') + text[i + 1:]
    pad = " " * 70000
    for broken in ('{"alerts": [1,]}', '{"alerts": [1 2]}', '{"a" 1}', '{"a": 1,}', '{,}', '{"a": 1} x',
                   '{"a": NaN}', '{"a": [Infinity]}', '{"a": -}', '{"a": [}', '[1, 2]',
                   '"alerts"', '{}', '{"a": {"b": [1, {"c": null}]}}', '{"a": 1, "a": 2}', '\ufeff{"a": 1}'):
        yield pad + broken
        yield broken + pad


@pytest.mark.parametrize("seed", range(4))
def test_a_large_body_decodes_exactly_as_json_loads_would(seed):
    from rcwebhook.messages import notification as alertmanager

    assert alertmanager.STEP_BYTES <= 70000  # every text below is decoded in steps
    checked = failed = 0
    for text in _mutations(seed):
        assert len(text) >= alertmanager.STEP_BYTES
        try:
            expected = json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
        except (ValueError, RecursionError):
            expected = PayloadError
        try:
            got = alertmanager.decode(text.encode("utf-8", "surrogatepass"))
        except PayloadError:
            got = PayloadError
        if expected is PayloadError or got is PayloadError:
            failed += 1
        assert got == expected, text[:200]
        checked += 1
    assert checked > 200 and 0 < failed < checked
