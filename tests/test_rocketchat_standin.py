"""The Rocket.Chat stand-in answers as the real server does (see tests/rocketchat_standin.py)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Optional, Tuple

import pytest

try:
    from rocketchat_standin import RocketChatStandin
except ImportError:  # tests/ became a package
    from tests.rocketchat_standin import RocketChatStandin

INVALID_TOKEN = {"success": False, "error": "Invalid integration id or token provided."}


def post(url: str, body: Any = None, *, raw: Optional[bytes] = None, timeout: float = 2.0,
         method: str = "POST") -> Tuple[int, Any, Dict[str, str]]:
    """Return (status, parsed JSON answer, headers) of one request to url."""
    data = raw if raw is not None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read()), dict(err.headers)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def rc():
    with RocketChatStandin() as standin:
        yield standin


@pytest.fixture
def hook(rc):
    return rc.add_hook("alerts")


def test_accepted_message_is_recorded_with_success_answer(rc, hook):
    status, answer, headers = post(hook, {"text": "disk full", "attachments": [{"title": "a"}]})

    assert (status, answer) == (200, {"success": True})
    assert headers["Content-Type"] == "application/json"
    assert rc.messages("alerts") == [{"text": "disk full", "attachments": [{"title": "a"}]}]
    assert rc.all_messages() == {"alerts": rc.messages("alerts")}


def test_hook_url_has_random_id_and_long_token(rc):
    first, second = rc.add_hook("one"), rc.add_hook("two")

    for name, url in (("one", first), ("two", second)):
        match = re.fullmatch(re.escape(rc.base_url) + r"/hooks/([A-Za-z0-9]+)/([A-Za-z0-9]+)", url)
        assert match, url
        assert match.group(2) == rc.token(name)
        assert len(rc.token(name)) >= 48
    assert rc.token("one") != rc.token("two")
    assert rc.base_url.startswith("http://127.0.0.1:")


def test_messages_are_kept_per_hook_and_as_copies(rc):
    one, two = rc.add_hook("one"), rc.add_hook("two")
    post(one, {"text": "for one"})
    post(two, {"text": "for two"})

    rc.messages("one")[0]["text"] = "changed by the test"

    assert rc.messages("one") == [{"text": "for one"}]
    assert rc.messages("two") == [{"text": "for two"}]


def test_legacy_url_with_user_id_is_accepted(rc, hook):
    status, _, _ = post(rc.legacy_url("alerts"), {"text": "legacy"})

    assert status == 200
    assert rc.messages("alerts") == [{"text": "legacy"}]


def test_aliases_resolve_like_rocketchat():
    with RocketChatStandin(allow_channel_override=True, allow_impersonate=True) as rc:
        url = rc.add_hook("alerts")
        body = {"msg": "hello", "alias": "bot", "avatar": "https://x.example/a.png",
                "emoji": ":fire:", "roomId": "GENERAL"}
        assert post(url, body)[0] == 200
        body2 = {"text": "hi", "username": "am", "icon_url": "https://x.example/b.png",
                 "icon_emoji": ":ok:", "channel": "#ops"}
        assert post(url, body2)[0] == 200

        assert rc.messages("alerts") == [body, body2]
        first, second = rc.posted("alerts")
        assert (first["text"], first["alias"], first["avatar"], first["emoji"], first["channel"]) == (
            "hello", "bot", "https://x.example/a.png", ":fire:", "GENERAL")
        assert (second["text"], second["alias"], second["avatar"], second["emoji"], second["channel"]) == (
            "hi", "am", "https://x.example/b.png", ":ok:", "#ops")


@pytest.mark.parametrize("raw", [b"{}", b"", b'{"text": ""}', b'{"attachments": []}'])
def test_empty_body_answers_success_and_posts_nothing(rc, hook, raw):
    status, answer, _ = post(hook, raw=raw)

    assert (status, answer) == (200, {"success": True})
    assert rc.messages("alerts") == []
    assert [r["status"] for r in rc.requests("alerts")] == [200]


FIELD_ERROR = "Invalid attachment field, title and value is required"
HREF_ERROR = "Invalid href value provided"


@pytest.mark.parametrize("body, error", [
    ({"attachments": [{"fields": [{"value": "v"}]}]}, FIELD_ERROR),
    ({"attachments": [{"fields": [{"title": "t"}]}]}, FIELD_ERROR),
    ({"attachments": [{"fields": [{"title": "", "value": "v"}]}]}, FIELD_ERROR),
    ({"attachments": [{"fields": [{"title": "t", "value": ""}]}]}, FIELD_ERROR),
    ({"attachments": [{"fields": [{"title": "t", "value": 3}]}]}, FIELD_ERROR),
    ({"text": "x", "attachments": [{"fields": [{"title": "t", "value": "v"}, "nope"]}]}, FIELD_ERROR),
    ({"attachments": [{"title": "t", "title_link": "/relative/path"}]}, HREF_ERROR),
    ({"attachments": [{"author_link": "example.com/x"}]}, HREF_ERROR),
    ({"attachments": [{"image_url": "http://"}]}, HREF_ERROR),
    ({"attachments": [{"thumb_url": "javascript:alert(1)"}]}, HREF_ERROR),
    ({"attachments": [{"actions": [{"type": "button", "url": "grafana/d/1"}]}]}, HREF_ERROR),
    ({"text": "x" * 5001}, "error-message-size-exceeded"),
    ({"msg": "x" * 5001}, "error-message-size-exceeded"),
    ({"text": "x", "channel": "#other"}, "overriding destination channel is disabled for this integration"),
    ({"text": "x", "roomId": "GENERAL"}, "overriding destination channel is disabled for this integration"),
    ({"text": "x", "username": "bot"}, "error-user-lacks-message-impersonate-permission"),
    ({"text": "x", "alias": "bot"}, "error-user-lacks-message-impersonate-permission"),
    ({"text": "x", "avatar": "https://x.example/a.png"}, "error-user-lacks-message-impersonate-permission"),
    ({"text": "x", "icon_url": "https://x.example/a.png"}, "error-user-lacks-message-impersonate-permission"),
])
def test_invalid_message_gets_400_with_rocketchat_error(rc, hook, body, error):
    status, answer, _ = post(hook, body)

    assert (status, answer) == (400, {"success": False, "error": error})
    assert rc.messages("alerts") == []
    assert rc.requests("alerts")[0]["status"] == 400
    assert rc.requests("alerts")[0]["body"] == body


@pytest.mark.parametrize("body", [
    {"text": "x", "attachments": {"title": "not a list"}},
    {"text": "x", "attachments": ["not an object"]},
    {"text": "x", "attachments": [{"fields": {"title": "t", "value": "v"}}]},
    {"text": 42},
    ["a", "json", "array"],
])
def test_malformed_structure_gets_400_with_an_error(rc, hook, body):
    status, answer, _ = post(hook, body)

    assert status == 400
    assert answer["success"] is False and answer["error"]
    assert rc.messages("alerts") == []


def test_non_json_body_gets_400(rc, hook):
    status, answer, _ = post(hook, raw=b"payload=%7B%7D")

    assert status == 400 and answer["success"] is False
    assert rc.requests("alerts")[0]["body"] is None


def test_message_at_size_limit_and_valid_attachments_are_accepted(rc, hook):
    body = {
        "text": "x" * 5000,
        "attachments": [{
            "title": "t", "title_link": "https://grafana.example/d/1", "author_link": "http://a.example",
            "image_url": "https://i.example/p.png", "thumb_url": "", "color": "#ff0000",
            "fields": [{"title": "severity", "value": "critical", "short": True}],
            "actions": [{"type": "button", "text": "Runbook", "url": "https://runbooks.example/x"}],
        }],
    }

    assert post(hook, body)[0] == 200
    assert rc.messages("alerts") == [body]


def test_smaller_max_message_size_is_enforced():
    with RocketChatStandin(max_message_size=10) as rc:
        url = rc.add_hook("alerts")
        assert post(url, {"text": "x" * 10})[0] == 200
        assert post(url, {"text": "x" * 11})[1]["error"] == "error-message-size-exceeded"


def test_permissions_can_be_granted_per_hook(rc):
    url = rc.add_hook("free", allow_channel_override=True, allow_impersonate=True)

    assert post(url, {"text": "x", "channel": "#ops", "username": "am"})[0] == 200


@pytest.mark.parametrize("version, status", [(6, 404), (7, 500), (8, 500)])
def test_wrong_token_or_unknown_id_is_rejected_by_version(version, status):
    with RocketChatStandin(version=version) as rc:
        url = rc.add_hook("alerts")
        wrong_token = url.rsplit("/", 1)[0] + "/" + "x" * 48
        unknown_id = "%s/hooks/%s/%s" % (rc.base_url, "n0suchid000000000", rc.token("alerts"))

        assert post(wrong_token, {"text": "x"})[:2] == (status, INVALID_TOKEN)
        assert post(unknown_id, {"text": "x"})[:2] == (status, INVALID_TOKEN)
        assert rc.messages("alerts") == []
        assert [r["status"] for r in rc.requests("alerts")] == [status]
        assert [r["status"] for r in rc.unmatched_requests()] == [status]


def test_disabled_hook_answers_503_until_enabled(rc, hook):
    rc.disable("alerts")
    status, answer, _ = post(hook, {"text": "x"})
    assert status == 503 and answer["success"] is False

    rc.disable("alerts", False)
    assert post(hook, {"text": "y"})[0] == 200
    assert rc.messages("alerts") == [{"text": "y"}]


def test_other_methods_get_405(rc, hook):
    assert post(hook, method="GET", raw=b"")[0] == 405


def test_fail_next_status_fails_that_many_requests(rc, hook):
    rc.fail_next("alerts", 2, status=502, error="Bad Gateway")

    assert post(hook, {"text": "1"})[:2] == (502, {"success": False, "error": "Bad Gateway"})
    assert post(hook, {"text": "2"})[:2] == (502, {"success": False, "error": "Bad Gateway"})
    assert post(hook, {"text": "3"})[:2] == (200, {"success": True})
    assert rc.messages("alerts") == [{"text": "3"}]
    assert [r["status"] for r in rc.requests("alerts")] == [502, 502, 200]


def test_fail_next_reset_gives_client_a_connection_error(rc, hook):
    rc.fail_next("alerts", 1, mode="reset")

    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        post(hook, {"text": "lost"})

    assert post(hook, {"text": "kept"})[0] == 200
    assert rc.messages("alerts") == [{"text": "kept"}]
    assert [(r["status"], r["outcome"]) for r in rc.requests("alerts")] == [(0, "reset"), (200, "answered")]


def test_fail_next_stall_times_out_client_until_released(rc, hook):
    rc.fail_next("alerts", 1, mode="stall")

    with pytest.raises((socket.timeout, urllib.error.URLError)):
        post(hook, {"text": "stalled"}, timeout=0.3)
    assert rc.requests("alerts")[0]["outcome"] == "stalled"

    rc.release_stalled()
    assert post(hook, {"text": "after"})[0] == 200
    assert rc.messages("alerts") == [{"text": "after"}]


def test_stop_releases_stalled_requests_and_open_connections():
    rc = RocketChatStandin().start()
    url = rc.add_hook("alerts")
    rc.fail_next("alerts", 1, mode="stall")
    outcome: Dict[str, Any] = {}

    def client() -> None:
        try:
            post(url, {"text": "x"}, timeout=5)
        except Exception as exc:  # the stalled request ends without an answer
            outcome["error"] = exc

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    rc.wait_for_requests("alerts", 1, timeout=2)
    idle = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(url).port, timeout=2)
    idle.connect()

    started = time.monotonic()
    rc.stop()
    thread.join(timeout=2)

    assert not thread.is_alive()
    assert "error" in outcome
    assert time.monotonic() - started < 2
    idle.close()


def test_rate_limit_uses_fixed_windows_opened_by_first_post():
    clock = FakeClock()
    with RocketChatStandin(rate_limit=3, rate_window=1.0, clock=clock) as rc:
        url = rc.add_hook("alerts")
        assert post(url, {"text": "1"})[0] == 200           # window opens at t=0
        clock.advance(0.5)
        assert post(url, {"text": "2"})[0] == 200
        assert post(url, {"text": "3"})[0] == 200
        clock.advance(0.25)
        before_ms = time.time() * 1000
        status, answer, headers = post(url, {"text": "4"})  # t=0.75, 0.25 s left

        assert status == 429
        assert answer == {"success": False, "error": (
            "Error, too many requests. Please slow down. You must wait 1 seconds before trying "
            "this endpoint again. [error-too-many-requests]")}
        assert headers["X-RateLimit-Limit"] == "3"
        assert headers["X-RateLimit-Remaining"] == "0"
        reset_ms = int(headers["X-RateLimit-Reset"])
        assert before_ms + 250 - 200 <= reset_ms <= time.time() * 1000 + 250 + 200
        assert "Retry-After" not in headers

        clock.advance(0.25)                                  # t=1.0: a new window opens here
        assert post(url, {"text": "5"})[0] == 200
        clock.advance(0.5)
        assert post(url, {"text": "6"})[0] == 200
        assert post(url, {"text": "7"})[0] == 200
        assert post(url, {"text": "8"})[0] == 429

        assert rc.count_429("alerts") == 2
        assert [m["text"] for m in rc.messages("alerts")] == ["1", "2", "3", "5", "6", "7"]


def test_rate_limit_wait_is_whole_seconds_rounded_up():
    clock = FakeClock()
    with RocketChatStandin(rate_limit=1, rate_window=60.0, clock=clock) as rc:
        url = rc.add_hook("alerts")
        assert post(url, {"text": "1"})[0] == 200
        assert "You must wait 60 seconds" in post(url, {"text": "2"})[1]["error"]
        clock.advance(30.2)
        assert "You must wait 30 seconds" in post(url, {"text": "3"})[1]["error"]
        clock.advance(29.7)
        assert "You must wait 1 seconds" in post(url, {"text": "4"})[1]["error"]


def test_rate_limit_counts_rejected_requests_and_is_per_hook():
    clock = FakeClock()
    with RocketChatStandin(rate_limit=2, rate_window=60.0, clock=clock) as rc:
        url, other = rc.add_hook("alerts"), rc.add_hook("other")
        assert post(url, {"text": "x", "channel": "#nope"})[0] == 400
        assert post(url.rsplit("/", 1)[0] + "/" + "w" * 48, {"text": "x"})[0] == 404  # other URL
        assert post(url, {"text": "ok"})[0] == 200
        assert post(url, {"text": "too many"})[0] == 429
        assert post(other, {"text": "fine"})[0] == 200
        assert rc.count_429("alerts") == 1
        assert rc.count_429("other") == 0


def test_rate_limit_headers_can_be_left_out():
    clock = FakeClock()
    with RocketChatStandin(rate_limit=1, rate_window=60.0, clock=clock, ratelimit_headers=False) as rc:
        url = rc.add_hook("alerts")
        ok = post(url, {"text": "1"})
        limited = post(url, {"text": "2"})

    assert ok[0] == 200 and limited[0] == 429
    assert "You must wait 60 seconds" in limited[1]["error"]
    for _, _, headers in (ok, limited):
        assert not [h for h in headers if h.lower().startswith("x-ratelimit") or h.lower() == "retry-after"]


def test_no_rate_limit_by_default(rc, hook):
    for i in range(15):
        assert post(hook, {"text": str(i)})[0] == 200
    assert rc.count_429("alerts") == 0


def test_keep_alive_serves_many_posts_on_one_connection(rc, hook):
    parts = urllib.parse.urlsplit(hook)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
    try:
        sockets = set()
        for i in range(5):
            conn.request("POST", parts.path, body=json.dumps({"text": str(i)}),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Content-Length") == str(len(response.read()))
            assert response.getheader("Connection") != "close"
            sockets.add(id(conn.sock))
    finally:
        conn.close()

    assert len(sockets) == 1
    assert len({r["client"] for r in rc.requests("alerts")}) == 1
    assert [m["text"] for m in rc.messages("alerts")] == ["0", "1", "2", "3", "4"]


def test_wait_for_messages_returns_once_posted(rc, hook):
    thread = threading.Thread(target=post, args=(hook, {"text": "late"}), daemon=True)
    thread.start()

    assert rc.wait_for_messages("alerts", 1, timeout=2) == [{"text": "late"}]
    thread.join(timeout=2)


def test_wait_for_messages_raises_with_what_it_has_at_deadline(rc, hook):
    post(hook, {"text": "only one"})
    started = time.monotonic()

    with pytest.raises(AssertionError, match="got 1.*only one"):
        rc.wait_for_messages("alerts", 2, timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 1.5


def test_unknown_hook_name_is_a_clear_error(rc):
    with pytest.raises(KeyError, match="no hook named 'nope'"):
        rc.messages("nope")
