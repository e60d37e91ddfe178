"""Routing: every alert goes to the route of its own severity."""

from __future__ import annotations

import json

from rcwebhook.messages.notification import parse
from rcwebhook.messages.routing import plan
from tests.conftest import make_settings

URLS = {
    "ROCKETCHAT_WEBHOOK_CRITICAL": "https://rc.example.com/hooks/c/tc",
    "ROCKETCHAT_WEBHOOK_WARNING": "https://rc.example.com/hooks/w/tw",
    "ROCKETCHAT_WEBHOOK_INFO": "https://rc.example.com/hooks/i/ti",
}


def notification(*labels):
    return parse(json.dumps({"alerts": [{"labels": dict(l)} for l in labels]}).encode())


def routed(settings, *labels):
    return {b.route.name: [a.name for a in b.alerts] for b in plan(notification(*labels), settings).batches}


def test_mixed_severities_in_one_group_split_by_alert():
    settings = make_settings(**URLS)
    result = routed(
        settings,
        {"alertname": "A", "severity": "warning"},
        {"alertname": "B", "severity": "critical"},
        {"alertname": "C", "severity": "info"},
        {"alertname": "D", "severity": "critical"},
    )
    assert result == {"critical": ["B", "D"], "warning": ["A"], "info": ["C"]}


def test_batches_come_in_severity_order_with_their_urls():
    settings = make_settings(**URLS)
    batches = plan(notification({"alertname": "I", "severity": "info"}, {"alertname": "C", "severity": "critical"}),
                   settings).batches
    assert [(b.route.name, b.route.url) for b in batches] == [
        ("critical", URLS["ROCKETCHAT_WEBHOOK_CRITICAL"]),
        ("info", URLS["ROCKETCHAT_WEBHOOK_INFO"]),
    ]


def test_missing_empty_and_unknown_severity_go_to_the_default_route():
    settings = make_settings(**URLS)
    result = routed(settings, {"alertname": "A"}, {"alertname": "B", "severity": ""}, {"alertname": "C", "severity": "bogus"})
    assert result == {"warning": ["A", "B", "C"]}


def test_default_route_is_configurable():
    settings = make_settings(DEFAULT_SEVERITY="critical", **URLS)
    assert routed(settings, {"alertname": "A"}) == {"critical": ["A"]}


def test_severity_is_case_insensitive_and_trimmed():
    settings = make_settings(**URLS)
    assert routed(settings, {"alertname": "A", "severity": " CRITICAL "}) == {"critical": ["A"]}


def test_default_aliases_route_common_names():
    settings = make_settings(**URLS)
    result = routed(
        settings,
        {"alertname": "P", "severity": "Page"},
        {"alertname": "E", "severity": "error"},
        {"alertname": "W", "severity": "warn"},
        {"alertname": "L", "severity": "low"},
        {"alertname": "N", "severity": "none"},
    )
    assert result == {"critical": ["P", "E"], "warning": ["W"], "info": ["L", "N"]}


def test_configured_aliases_replace_defaults():
    settings = make_settings(SEVERITY_ALIASES="p1:critical,p3:info", **URLS)
    result = routed(settings, {"alertname": "A", "severity": "P1"}, {"alertname": "B", "severity": "page"},
                    {"alertname": "C", "severity": "p3"})
    assert result == {"critical": ["A"], "warning": ["B"], "info": ["C"]}


def test_severity_label_name_is_configurable():
    settings = make_settings(SEVERITY_LABEL="priority", **URLS)
    result = routed(settings, {"alertname": "A", "priority": "critical", "severity": "info"})
    assert result == {"critical": ["A"]}


def test_route_without_url_uses_the_default_routes_url():
    settings = make_settings(ROCKETCHAT_WEBHOOK_WARNING=URLS["ROCKETCHAT_WEBHOOK_WARNING"])
    batches = plan(notification({"alertname": "A", "severity": "critical"}), settings).batches
    assert [(b.route.name, b.route.url) for b in batches] == [("critical", URLS["ROCKETCHAT_WEBHOOK_WARNING"])]
