"""GET /status (HTML and JSON) and GET /ready, as an operator and a load balancer see them."""

from __future__ import annotations

import copy
import http.client
import json
from typing import Any, Dict, Tuple

import pytest

from tests.conftest import load_example

HOSTILE = '<script>alert("x")</script>'


def get(daemon, path: str, accept: str = "") -> Tuple[int, Dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept": accept} if accept else {})
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def status_json(daemon) -> Dict[str, Any]:
    code, headers, body = get(daemon, "/status.json")
    assert code == 200 and headers["Content-Type"] == "application/json", (code, headers, body[:300])
    return json.loads(body)


def fired_again(minute: int) -> Dict[str, Any]:
    """Return the sample notification with its alerts firing since another moment: news to post."""
    payload = load_example()
    for alert in payload["alerts"]:
        alert["startsAt"] = f"2030-01-01T00:{minute:02d}:00Z"
    return payload


def route(facts: Dict[str, Any], name: str) -> Dict[str, Any]:
    return next(r for r in facts["routes"] if r["route"] == name)


@pytest.fixture
def daemon(start_daemon, rocketchat):
    hooks = {f"ROCKETCHAT_WEBHOOK_{name.upper()}": rocketchat.add_hook(name) for name in ("critical", "warning")}
    return start_daemon(DEDUP_WINDOW="0", ROCKETCHAT_RATE_LIMIT="0", **hooks)


def test_status_shows_each_hook_a_failing_one_with_rocketchat_s_reason(daemon, rocketchat):
    rocketchat.fail_next("critical", 1, status=400, error="Invalid href value provided")
    assert daemon.post_json(load_example())[0] == 502
    facts = status_json(daemon)

    critical, warning = route(facts, "critical"), route(facts, "warning")
    assert critical["state"] == "failing" and critical["failing"]
    assert "400" in critical["last_error"] and "Invalid href value provided" in critical["last_error"]
    assert critical["last_failure"]["ago_seconds"] < 60 and critical["last_accepted"] is None
    assert warning["state"] == "ok" and warning["last_accepted"] and warning["last_failure"] is None
    assert warning["waiting"] == 0 and warning["seen_429"] == 0
    assert route(facts, "info")["hook"] == warning["hook"]  # info falls back to the warning hook
    # URLs redacted: the hook's id shows, its token never.
    assert critical["hook"] == f"{rocketchat.base_url}/hooks/{rocketchat.integration_id('critical')}/***"
    for name in ("critical", "warning"):
        assert rocketchat.token(name) not in json.dumps(facts)

    [recent] = facts["recent"]
    assert recent["group_key"] == load_example()["groupKey"]
    assert recent["alerts"] == ["HighCPUUsage", "HighMemoryUsage"]
    assert recent["routes"] == {"critical": "failed", "warning": "delivered"}
    assert recent["outcome"] == "502 error"
    assert facts["version"] and facts["uptime_seconds"] >= 0 and facts["last_reload"]["ok"] is True
    assert facts["open_threads"] == 1 and facts["state_database_bytes"] == 0

    # The same facts as a page: self-contained, the failing hook marked so.
    code, headers, body = get(daemon, "/status")
    page = body.decode("utf-8")
    assert code == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert 'data-route="critical" data-state="failing"' in page and "Invalid href value provided" in page
    assert 'data-route="warning" data-state="ok"' in page
    assert "<script" not in page and "src=" not in page and "http-equiv=refresh" in page
    for name in ("critical", "warning"):
        assert rocketchat.token(name) not in page


def test_status_json_by_accept_header_html_for_browsers(daemon):
    assert get(daemon, "/status", "application/json")[1]["Content-Type"] == "application/json"
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert get(daemon, "/status", browser)[1]["Content-Type"].startswith("text/html")
    assert get(daemon, "/status")[1]["Content-Type"].startswith("text/html")
    code, headers, body = daemon.request("POST", "/status", b"{}", {"Content-Type": "application/json"})
    assert code == 405 and headers["Allow"] == "GET, HEAD"


def test_label_values_cannot_inject_into_the_page(start_daemon):
    daemon = start_daemon(DRY_RUN="true")
    payload = copy.deepcopy(load_example())
    payload["groupKey"] = HOSTILE
    payload["alerts"][0]["labels"]["alertname"] = '"><img src=x onerror=alert(1)>'
    assert daemon.post_json(payload)[0] == 200
    page = get(daemon, "/status")[2].decode("utf-8")
    assert HOSTILE not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert status_json(daemon)["recent"][0]["group_key"] == HOSTILE  # JSON keeps the value as sent


def test_recent_keeps_the_last_50_newest_first(start_daemon):
    daemon = start_daemon(DRY_RUN="true")
    payload = load_example()
    for i in range(55):
        payload["groupKey"] = f"group-{i}"
        assert daemon.post_json(payload)[0] == 200
    recent = status_json(daemon)["recent"]
    assert [r["group_key"] for r in recent] == [f"group-{i}" for i in range(54, 4, -1)]
    assert all(r["outcome"] == "200 ok" and set(r["routes"].values()) == {"dry-run"} for r in recent)


def test_ready_is_503_while_every_hook_fails_and_200_once_one_posts(daemon, rocketchat):
    def ready() -> Tuple[int, Dict[str, Any]]:
        code, headers, body = get(daemon, "/ready")
        assert headers["Content-Type"] == "application/json"
        return code, json.loads(body)

    assert ready() == (200, pytest.approx({"ready": True, "reason": "no post tried yet", "status": "ready",
                                           "version": status_json(daemon)["version"]}))
    rocketchat.fail_next("critical", 1, status=400, error="Invalid href value provided")
    assert daemon.post_json(load_example())[0] == 502
    code, body = ready()
    assert code == 200 and "critical" in body["reason"]  # warning still posts
    rocketchat.fail_next("critical", 1, status=400, error="Invalid href value provided")
    rocketchat.fail_next("warning", 1, status=400, error="error-invalid-channel")
    assert daemon.post_json(fired_again(1))[0] == 502
    code, body = ready()
    assert (code, body["ready"], body["status"]) == (503, False, "not ready"), (body, status_json(daemon))
    assert "Invalid href value provided" in body["reason"] and "error-invalid-channel" in body["reason"]
    for name in ("critical", "warning"):
        assert rocketchat.token(name) not in body["reason"]
    # /health stays what the old script's users rely on.
    assert daemon.request("GET", "/health")[2] == {"service": "rocketchat-webhook-adapter", "status": "healthy",
                                                   "version": body["version"]}
    assert daemon.post_json(fired_again(2))[0] == 200
    assert ready()[0] == 200


def test_status_and_ready_need_no_api_key_like_health_and_metrics(start_daemon):
    daemon = start_daemon(DRY_RUN="true", API_KEY="k3y-0f-the-test")
    for path in ("/health", "/metrics", "/ready", "/status", "/status.json"):
        code, _, body = get(daemon, path)
        assert code == 200, path
        assert b"k3y-0f-the-test" not in body
    assert daemon.post_json(load_example())[0] == 401


def test_status_shows_states_waiting_pacing_and_429s(start_daemon, rocketchat, tmp_path):
    hook = rocketchat.add_hook("critical")
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=hook, ROCKETCHAT_WEBHOOK_WARNING=hook,
                          ROCKETCHAT_RATE_LIMIT="1/60", DELIVERY_DEADLINE="1", STATE_DIR=str(tmp_path / "state"))
    assert daemon.post_json(fired_again(1))[0] == 200  # the one post this minute allows
    assert daemon.post_json(fired_again(2))[0] == 503  # its states wait for the next window
    critical, warning = route(status_json(daemon), "critical"), route(status_json(daemon), "warning")
    assert critical["waiting"] == warning["waiting"] == 1 and critical["state"] == warning["state"] == "waiting"
    assert 30 < critical["next_post_in"] <= 61 and "ROCKETCHAT_RATE_LIMIT=1/60" in critical["pacing"]
    facts = status_json(daemon)
    assert facts["state_database_bytes"] > 0 and facts["ready"]["ready"] is True
    page = get(daemon, "/status")[2].decode("utf-8")
    assert 'data-state="waiting"' in page and "1 alert state<" in page and "ROCKETCHAT_RATE_LIMIT=1/60" in page


def test_a_429_is_counted_and_is_no_failure_for_ready(daemon, rocketchat):
    rocketchat.fail_next("critical", 1, status=429, error="Error, too many requests. Please slow down. "
                         "You must wait 1 seconds before trying this endpoint again.")
    assert daemon.post_json(load_example())[0] == 200  # posted after the wait Rocket.Chat asked for
    critical = route(status_json(daemon), "critical")
    assert critical["seen_429"] == 1 and critical["last_outcome"] == "accepted" and critical["state"] == "ok"
    assert "429" in critical["last_error"] and critical["last_failure"] is not None


HUGE = 1024 * 1024  # characters of each value below: 50 such notifications once made a page of gigabytes


def huge_notification(i: int) -> Dict[str, Any]:
    payload = load_example()
    payload["groupKey"] = f"g{i}" + "<" * HUGE
    payload["receiver"] = f"r{i}" + '"' * HUGE
    payload["alerts"] = payload["alerts"][:1]
    payload["alerts"][0]["labels"]["alertname"] = f"a{i}" + "<" * HUGE
    return payload


def test_status_stays_under_1_mb_whatever_was_received(start_daemon):
    daemon = start_daemon(DRY_RUN="true", MAX_BODY_BYTES=str(16 * HUGE))
    for i in range(50):
        assert daemon.post_json(huge_notification(i))[0] == 200
    code, _, page = get(daemon, "/status")
    assert code == 200 and len(page) < 1024 * 1024, len(page)
    text = page.decode("utf-8")
    assert "Recent notifications (50)" in text
    assert all(f"g{i}&lt;&lt;" in text and f"r{i}&quot;&quot;" in text and f"a{i}&lt;&lt;" in text for i in range(50))
    assert f"({HUGE + 2} characters)" in text  # the full length is noted where a value is cut
    code, _, body = get(daemon, "/status.json")
    assert code == 200 and len(body) < 1024 * 1024, len(body)
    recent = json.loads(body)["recent"]
    assert len(recent) == 50 and all(r["group_key"].startswith(f"g{49 - n}<<") for n, r in enumerate(recent))
    assert recent[0]["group_key"].endswith(f"\u2026 ({HUGE + 3} characters)")
    assert recent[0]["receiver"].startswith('r49""') and recent[0]["alerts"][0].startswith("a49<<")


def test_refused_notifications_are_listed_and_turn_the_banner_to_a_warning(start_daemon):
    daemon = start_daemon(DRY_RUN="true")
    assert daemon.post_json(load_example())[0] == 200
    page = get(daemon, "/status")[2].decode("utf-8")
    assert "refused in the last" not in page and 'class="ready"' in page
    for _ in range(3):
        assert daemon.post_json(load_example(), path="/webhook/x")[0] == 404  # a hook set RECEIVERS does not name
    assert daemon.post_json(b'{"alerts": 1}')[0] == 400

    facts = status_json(daemon)
    assert [r["outcome"] for r in facts["recent"]] == ["400 error", "404 error", "404 error", "404 error", "200 ok"]
    assert facts["recent"][1]["path"] == "/webhook/x" and "no hook set 'x'" in facts["recent"][1]["reason"]
    assert facts["refused"]["count"] == 4 and facts["refused"]["latest"]["outcome"] == "400 error"
    page = get(daemon, "/status")[2].decode("utf-8")
    assert "Recent notifications (5)" in page
    assert page.count("404 error: no hook set &#x27;x&#x27;") == 3
    assert 'class="ready warn"' in page and "4 notifications refused in the last 15 min" in page


def test_routes_sharing_a_hook_show_their_own_figures_and_which_route_posted(start_daemon, rocketchat):
    hook = rocketchat.add_hook("shared")
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=hook, ROCKETCHAT_WEBHOOK_WARNING=hook, ROCKETCHAT_RATE_LIMIT="0")
    payload = load_example()
    payload["alerts"] = payload["alerts"][:1]  # critical only
    assert daemon.post_json(payload)[0] == 200
    facts = status_json(daemon)
    critical, warning = route(facts, "critical"), route(facts, "warning")
    assert critical["last_accepted"] is not None and critical["state"] == "ok"
    assert warning["last_accepted"] is None and warning["state"] == "no post yet"  # it never posted
    assert warning["shared_with"] == ["critical", "info"] and warning["hook_last_post"]["routes"] == ["critical"]
    page = get(daemon, "/status")[2].decode("utf-8")
    card = page[page.index('data-route="warning"'):page.index('data-route="info"')]
    assert "<dt>last accepted</dt><dd>never</dd>" in card
    assert "<dt>hook shared with</dt><dd>critical, info; its last post, for route <b>critical</b>: accepted" in card


def test_a_route_whose_threads_never_resolve_is_shown(daemon):
    import time as clock

    long_ago = clock.strftime("%Y-%m-%dT%H:%M:%SZ", clock.gmtime(clock.time() - 5 * 86400))  # THREAD_TTL is 7 days
    payload = load_example()
    for alert in payload["alerts"]:
        alert["startsAt"] = long_ago
    assert daemon.post_json(payload)[0] == 200  # a thread per route's hook, its incident 5 days old
    resolved = copy.deepcopy(payload)
    resolved["status"] = "resolved"
    resolved["alerts"] = [dict(payload["alerts"][1], status="resolved", endsAt="2030-01-01T00:00:00Z")]
    assert daemon.post_json(resolved)[0] == 200  # warning's alert resolves: its thread ends

    facts = status_json(daemon)
    critical, warning = route(facts, "critical"), route(facts, "warning")
    assert warning["unresolved_threads"] is None
    unresolved = critical["unresolved_threads"]
    assert unresolved["count"] == 1 and unresolved["older_than_seconds"] == 302400
    assert unresolved["advice"] == ("1 thread open for more than 3d 12h with no resolution: does Alertmanager send "
                                    "resolved notifications? Set send_resolved: true in the receiver's webhook_configs")
    page = get(daemon, "/status")[2].decode("utf-8")
    card = page[page.index('data-route="critical"'):page.index('data-route="warning"')]
    assert "1 thread open for more than 3d 12h with no resolution" in card and "send_resolved: true" in card

    # Once one of the route's alerts has its resolution posted, the route does get them.
    other = copy.deepcopy(payload)
    other["alerts"] = [dict(payload["alerts"][0], labels={"alertname": "DiskFull", "severity": "critical"},
                            fingerprint="d1sk")]
    assert daemon.post_json(other)[0] == 200
    other["alerts"][0].update(status="resolved", endsAt="2030-01-01T00:00:00Z")
    assert daemon.post_json(other)[0] == 200
    assert route(status_json(daemon), "critical")["unresolved_threads"] is None
