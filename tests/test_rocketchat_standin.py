"""The Rocket.Chat stand-in answers incoming-webhook posts the way Rocket.Chat 6.x-8.x really does."""

from __future__ import annotations

import datetime
import http.client
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

try:
    from rocketchat_standin import RocketChatStandin
except ImportError:  # tests/ became a package
    from tests.rocketchat_standin import RocketChatStandin

CONNECTION_ERRORS = (urllib.error.URLError, ConnectionError, http.client.HTTPException, socket.timeout)

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


# -- Message_MaxAllowedSize in UTF-16 units, per hook --------------------------------------------


def test_size_limit_counts_utf16_units_so_an_emoji_counts_twice():
    with RocketChatStandin(max_message_size=10) as rc:
        url = rc.add_hook("alerts")
        assert post(url, {"text": "\U0001F525" * 5})[0] == 200                  # 5 characters, 10 units
        assert post(url, {"text": "\U0001F525" * 5 + "x"})[:2] == (            # 6 characters, 11 units
            400, {"success": False, "error": "error-message-size-exceeded"})
        assert post(url, {"msg": "\u00e9" * 10})[0] == 200                       # BMP: one unit each
        assert post(url, {"text": "x", "attachments": [{"text": "\U0001F525" * 100}]})[0] == 200
        assert [m.get("text", m.get("msg"))[:1] for m in rc.messages("alerts")] == ["\U0001F525", "\u00e9", "x"]


def test_default_size_limit_is_5000_utf16_units(rc, hook):
    assert post(hook, {"text": "\U0001F680" * 2500})[0] == 200
    assert post(hook, {"text": "\U0001F680" * 2500 + "x"})[1]["error"] == "error-message-size-exceeded"


def test_size_limit_can_be_set_per_hook_and_changed_later(rc):
    small, default = rc.add_hook("small", max_message_size=20), rc.add_hook("default")

    assert post(small, {"text": "x" * 21})[0] == 400
    assert post(default, {"text": "x" * 21})[0] == 200
    rc.set_max_message_size("small", 30)
    assert post(small, {"text": "x" * 30})[0] == 200
    rc.set_max_message_size("default", 5)
    assert post(default, {"text": "x" * 6})[1]["error"] == "error-message-size-exceeded"
    rc.set_max_message_size("small", None)  # back to the stand-in's 5000
    assert post(small, {"text": "x" * 5000})[0] == 200
    assert [len(m["text"]) for m in rc.messages("small")] == [30, 5000]


# -- separateResponse, message ids and threads ------------------------------------------------

ID_RE = re.compile(r"[23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz]{17}")


def test_separate_response_answers_the_new_message_id(rc, hook):
    before = time.time()
    status, answer, _ = post(hook, {"text": "disk full", "separateResponse": True})

    assert status == 200 and answer["success"] is True
    [response] = answer["responses"]
    assert response["channel"] == "#alerts"
    message = response["message"]
    assert set(message) == {"_id", "rid", "msg", "ts"}
    assert ID_RE.fullmatch(message["_id"]) and ID_RE.fullmatch(message["rid"])
    assert message["msg"] == "disk full"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["ts"])
    ts = datetime.datetime.strptime(message["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert before - 2 <= ts.replace(tzinfo=datetime.timezone.utc).timestamp() <= time.time() + 2
    assert rc.message_ids("alerts") == [message["_id"]]


def test_message_ids_are_fresh_and_none_without_separate_response(rc, hook):
    first = post(hook, {"text": "1", "separateResponse": True})[1]
    plain = post(hook, {"text": "2"})[1]
    falsy = post(hook, {"text": "3", "separateResponse": "yes"})[1]  # only true itself counts
    second = post(hook, {"text": "4", "separateResponse": True})[1]
    nothing = post(hook, {"separateResponse": True})[1]               # posts nothing, gets no id

    assert plain == falsy == nothing == {"success": True}
    ids = [first["responses"][0]["message"]["_id"], second["responses"][0]["message"]["_id"]]
    assert ids[0] != ids[1]
    assert rc.message_ids("alerts") == [ids[0], None, None, ids[1]]
    assert len(rc.messages("alerts")) == 4
    assert first["responses"][0]["message"]["rid"] == second["responses"][0]["message"]["rid"]


def test_old_server_ignores_separate_response():
    with RocketChatStandin(separate_response=False) as rc:
        url = rc.add_hook("alerts")
        assert post(url, {"text": "x", "separateResponse": True})[:2] == (200, {"success": True})
        assert rc.messages("alerts") == [{"text": "x", "separateResponse": True}]
        assert rc.message_ids("alerts") == [None]


def test_separate_response_names_the_overridden_channel_with_its_own_room(rc):
    url = rc.add_hook("alerts", allow_channel_override=True)
    default = post(url, {"text": "a", "separateResponse": True})[1]["responses"][0]
    ops = post(url, {"text": "b", "channel": "#ops", "separateResponse": True})[1]["responses"][0]
    again = post(url, {"text": "c", "channel": "#ops", "separateResponse": True})[1]["responses"][0]

    assert (default["channel"], ops["channel"]) == ("#alerts", "#ops")
    assert ops["message"]["rid"] == again["message"]["rid"] != default["message"]["rid"]


def test_tmid_posts_a_thread_reply_and_unknown_tmid_still_posts(rc, hook):
    root = post(hook, {"text": "firing", "separateResponse": True})[1]["responses"][0]["message"]["_id"]
    reply = post(hook, {"text": "resolved", "tmid": root, "separateResponse": True})[1]
    assert post(hook, {"text": "other", "tmid": "n0suchmessage0000"})[:2] == (200, {"success": True})
    assert post(hook, {"text": "second reply", "tmid": root})[0] == 200

    assert reply["responses"][0]["message"]["tmid"] == root
    assert [m["text"] for m in rc.thread("alerts", root)] == ["resolved", "second reply"]
    assert [m["text"] for m in rc.thread("alerts", "n0suchmessage0000")] == ["other"]
    assert rc.thread("alerts", "unused") == []
    assert [p["tmid"] for p in rc.posted("alerts")] == [None, root, "n0suchmessage0000", root]
    rc.thread("alerts", root)[0]["text"] = "changed by the test"
    assert rc.thread("alerts", root)[0]["text"] == "resolved"


# -- @here / @all need the mention permission -----------------------------------------------


@pytest.mark.parametrize("body", [
    {"text": "@here disk full"},
    {"text": "disk full, ping @all"},
    {"text": "line one\n@all: look"},
    {"text": "(@here)"},
    {"msg": "@all"},
    {"text": "@here", "attachments": [{"title": "t"}]},
])
def test_here_or_all_mention_refuses_the_whole_message(rc, hook, body):
    assert post(hook, body)[:2] == (400, {"success": False, "error": "error-action-not-allowed"})
    assert rc.messages("alerts") == []


@pytest.mark.parametrize("body", [
    {"text": "@allison and @heretic are on call"},
    {"text": "mail ops@all.example or ops@here.example"},
    {"text": "@All @HERE are not mentions"},
    {"text": "@all_team"},
    {"text": "x", "attachments": [{"title": "@all", "text": "@here", "fields": [{"title": "@all", "value": "@here"}]}]},
])
def test_mention_check_reads_whole_words_of_the_top_level_text_only(rc, hook, body):
    assert post(hook, body)[0] == 200
    assert rc.messages("alerts") == [body]


def test_mention_permission_can_be_granted_to_the_standin_or_a_hook():
    with RocketChatStandin(allow_mention_all=True) as rc:
        granted, revoked = rc.add_hook("granted"), rc.add_hook("revoked", allow_mention_all=False)
        assert post(granted, {"text": "@here @all"})[0] == 200
        assert post(revoked, {"text": "@here"})[1]["error"] == "error-action-not-allowed"
    with RocketChatStandin() as rc:
        assert post(rc.add_hook("granted", allow_mention_all=True), {"text": "@all"})[0] == 200


@pytest.mark.parametrize("body, error", [
    ({"text": "@all", "channel": "#ops"}, "overriding destination channel is disabled for this integration"),
    ({"text": "@all", "alias": "bot"}, "error-user-lacks-message-impersonate-permission"),
    ({"text": "@all", "attachments": [{"fields": [{"title": "t"}]}]}, "error-action-not-allowed"),
    ({"text": "@all", "attachments": [{"title_link": "/x"}]}, "error-action-not-allowed"),
    ({"text": "@all " + "x" * 5000}, "error-action-not-allowed"),
])
def test_mention_check_comes_after_impersonation_and_before_field_checks(rc, hook, body, error):
    assert post(hook, body)[1]["error"] == error


# -- wrong token: a bare text/plain 500 on 7.x and 8.x ----------------------------------------


def exchange(url: str, body: Any, timeout: float = 2.0) -> Tuple[int, Dict[str, str], bytes]:
    """Return (status, headers, raw body) of one JSON POST on a fresh connection."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("POST", parts.path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("version", [7, 8])
def test_plain_token_error_is_a_bare_text_500(version):
    with RocketChatStandin(version=version, plain_token_error=True) as rc:
        url = rc.add_hook("alerts")
        status, headers, raw = exchange(url.rsplit("/", 1)[0] + "/" + "x" * 48, {"text": "x"})

        assert status == 500
        assert headers["Content-Type"].startswith("text/plain")
        assert raw == b"Invalid integration id or token provided."
        assert exchange(url, {"text": "ok"})[0] == 200
        assert [r["status"] for r in rc.requests("alerts")] == [500, 200]


def test_plain_token_error_does_not_change_version_6():
    with RocketChatStandin(version=6, plain_token_error=True) as rc:
        url = rc.add_hook("alerts")
        assert post(url.rsplit("/", 1)[0] + "/" + "x" * 48, {"text": "x"})[:2] == (404, INVALID_TOKEN)


# -- trouble after Rocket.Chat accepted the message ---------------------------------------------


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Return once predicate() is true; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met within %.3gs" % timeout
        time.sleep(0.005)


def posting_thread(url: str, body: Any, timeout: float) -> Tuple[threading.Thread, Dict[str, Any]]:
    """Return a started thread posting body to url and the dict its outcome ("answer"/"error") lands in."""
    outcome: Dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["answer"] = post(url, body, timeout=timeout)
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_slow_answer_comes_late_but_the_message_is_posted_at_once(rc, hook):
    rc.fail_next("alerts", 1, mode="slow", delay=0.5)
    started = time.monotonic()
    thread, outcome = posting_thread(hook, {"text": "late"}, timeout=3)

    assert rc.wait_for_messages("alerts", 1, timeout=2) == [{"text": "late"}]
    assert thread.is_alive() and not outcome          # posted, the client still waits for the answer
    thread.join(timeout=3)
    assert outcome["answer"][:2] == (200, {"success": True})
    assert time.monotonic() - started >= 0.5
    assert [(r["status"], r["outcome"]) for r in rc.requests("alerts")] == [(200, "slow")]
    assert post(hook, {"text": "next"}, timeout=0.4)[0] == 200   # used up: the next one is prompt


def test_slow_answer_after_the_client_gave_up_leaves_an_unknown_outcome(rc, hook):
    rc.fail_next("alerts", 1, mode="slow", delay=1.0)

    with pytest.raises(CONNECTION_ERRORS):
        post(hook, {"text": "did it post?"}, timeout=0.2)
    assert rc.messages("alerts") == [{"text": "did it post?"}]


def test_slow_answer_keeps_the_connection_usable(rc, hook):
    rc.fail_next("alerts", 1, mode="slow", delay=0.05)
    parts = urllib.parse.urlsplit(hook)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
    try:
        for text in ("slow", "prompt"):
            conn.request("POST", parts.path, body=json.dumps({"text": text, "separateResponse": True}),
                         headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            assert response.status == 200 and answer["responses"][0]["message"]["msg"] == text
    finally:
        conn.close()
    assert [r["outcome"] for r in rc.requests("alerts")] == ["slow", "answered"]
    assert len({r["client"] for r in rc.requests("alerts")}) == 1


def read_answer_bytewise(url: str, body: Any, timeout: float) -> List[bytes]:
    """Return the chunks of one raw HTTP answer as they arrived, up to the end of its body."""
    parts = urllib.parse.urlsplit(url)
    payload = json.dumps(body).encode()
    chunks: List[bytes] = []
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (parts.path.encode(), len(payload), payload))
        while True:
            data = b"".join(chunks)
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                if len(rest) >= length:
                    return chunks
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the answer was complete: %r" % data
            chunks.append(chunk)


def test_trickle_writes_the_whole_answer_one_byte_at_a_time(rc, hook):
    rc.fail_next("alerts", 1, mode="trickle", delay=0.002)
    started = time.monotonic()

    chunks = read_answer_bytewise(hook, {"text": "drip", "separateResponse": True}, timeout=1)

    data = b"".join(chunks)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    answer = json.loads(data.partition(b"\r\n\r\n")[2])
    assert answer["responses"][0]["message"]["msg"] == "drip"
    assert len(chunks) > len(data) // 4       # arrived in many small pieces, not in one or two writes
    assert time.monotonic() - started >= len(data) * 0.002
    assert rc.messages("alerts") == [{"text": "drip", "separateResponse": True}]
    assert rc.message_ids("alerts") == [answer["responses"][0]["message"]["_id"]]
    assert [(r["status"], r["outcome"]) for r in rc.requests("alerts")] == [(200, "trickle")]


def test_half_answer_has_the_full_length_but_half_the_body(rc, hook):
    rc.fail_next("alerts", 1, mode="half")
    parts = urllib.parse.urlsplit(hook)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
    try:
        conn.request("POST", parts.path, body=json.dumps({"text": "cut"}), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(len(b'{"success":true}'))
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
    finally:
        conn.close()

    assert cut.value.partial == b'{"success":true}'[:8]
    assert rc.messages("alerts") == [{"text": "cut"}]
    assert [(r["status"], r["outcome"]) for r in rc.requests("alerts")] == [(200, "half")]
    assert post(hook, {"text": "whole"})[:2] == (200, {"success": True})


def test_accept_reset_posts_the_message_and_resets_instead_of_answering(rc, hook):
    rc.fail_next("alerts", 1, mode="accept_reset")

    with pytest.raises(CONNECTION_ERRORS):
        post(hook, {"text": "posted, never answered"})

    assert rc.messages("alerts") == [{"text": "posted, never answered"}]
    assert rc.message_ids("alerts") == [None]
    assert [(r["status"], r["outcome"]) for r in rc.requests("alerts")] == [(0, "accept_reset")]
    assert post(hook, {"text": "next"})[0] == 200


@pytest.mark.parametrize("mode", ["slow", "trickle", "half", "accept_reset"])
def test_late_trouble_answers_a_refused_message_normally_and_is_used_up(rc, hook, mode):
    rc.fail_next("alerts", 1, mode=mode, delay=5)

    assert post(hook, {"text": "x", "channel": "#other"}, timeout=2)[:2] == (400, {
        "success": False, "error": "overriding destination channel is disabled for this integration"})
    assert post(hook, {"text": "fine"}, timeout=2)[:2] == (200, {"success": True})
    assert rc.messages("alerts") == [{"text": "fine"}]
    assert [(r["status"], r["outcome"]) for r in rc.requests("alerts")] == [(400, "answered"), (200, "answered")]


@pytest.mark.parametrize("mode", ["half", "accept_reset"])
def test_rate_limiter_counts_requests_with_late_trouble(mode):
    clock = FakeClock()
    with RocketChatStandin(rate_limit=1, rate_window=60.0, clock=clock) as rc:
        url = rc.add_hook("alerts")
        rc.fail_next("alerts", 1, mode=mode)
        with pytest.raises(CONNECTION_ERRORS):
            post(url, {"text": "counted"})
        assert post(url, {"text": "limited"})[0] == 429
        assert rc.messages("alerts") == [{"text": "counted"}]


def test_rate_limiter_refuses_before_late_trouble_applies():
    clock = FakeClock()
    with RocketChatStandin(rate_limit=1, rate_window=60.0, clock=clock) as rc:
        url = rc.add_hook("alerts")
        assert post(url, {"text": "1"})[0] == 200
        rc.fail_next("alerts", 1, mode="slow", delay=5)
        started = time.monotonic()
        assert post(url, {"text": "2"}, timeout=2)[0] == 429
        assert time.monotonic() - started < 1
        assert rc.messages("alerts") == [{"text": "1"}]


@pytest.mark.parametrize("mode", ["slow", "trickle"])
def test_stop_frees_handlers_waiting_to_answer_late(mode):
    before = threading.active_count()
    rc = RocketChatStandin().start()
    url = rc.add_hook("alerts")
    rc.fail_next("alerts", 1, mode=mode, delay=30)
    thread, outcome = posting_thread(url, {"text": "x"}, timeout=10)
    rc.wait_for_messages("alerts", 1, timeout=2)

    started = time.monotonic()
    rc.stop()
    thread.join(timeout=2)

    assert not thread.is_alive() and "error" in outcome     # closed without (a complete) answer
    wait_until(lambda: threading.active_count() <= before, timeout=2)  # the handler thread ended too
    assert time.monotonic() - started < 2


def test_set_delay_makes_every_accepted_post_answer_late(rc, hook):
    rc.set_delay("alerts", 0.2)
    for text in ("one", "two"):
        started = time.monotonic()
        assert post(hook, {"text": text}, timeout=2)[0] == 200
        assert time.monotonic() - started >= 0.2

    rc.set_delay("alerts", 30)   # a client waiting 2 s would time out on any delayed answer
    assert post(hook, {"text": "@all"}, timeout=2)[0] == 400        # refusals are not delayed
    rc.set_delay("alerts", 0)
    assert post(hook, {"text": "three"}, timeout=2)[0] == 200
    assert [m["text"] for m in rc.messages("alerts")] == ["one", "two", "three"]
    assert [r["outcome"] for r in rc.requests("alerts")] == ["slow", "slow", "answered", "answered"]


def test_fail_next_mode_replaces_set_delay_for_its_request(rc, hook):
    rc.set_delay("alerts", 5)
    rc.fail_next("alerts", 1, mode="accept_reset")
    started = time.monotonic()

    with pytest.raises(CONNECTION_ERRORS):
        post(hook, {"text": "x"}, timeout=2)
    assert time.monotonic() - started < 1


# -- outages --------------------------------------------------------------------------------


def test_outage_503_answers_every_request_and_posts_nothing(rc, hook):
    rc.set_outage("alerts", "503")
    for text in ("1", "2"):
        assert post(hook, {"text": text})[:2] == (503, {"success": False, "error": "Service Unavailable"})
    assert post(hook.rsplit("/", 1)[0] + "/" + "x" * 48, {"text": "wrong token"})[0] == 503

    rc.set_outage("alerts", None)
    assert post(hook, {"text": "3"})[0] == 200
    assert rc.messages("alerts") == [{"text": "3"}]
    assert [(r["status"], r["outcome"]) for r in rc.requests("alerts")] == [
        (503, "answered"), (503, "answered"), (503, "answered"), (200, "answered")]


def test_outage_reset_resets_every_request_and_posts_nothing(rc, hook):
    rc.set_outage("alerts", "reset")
    for text in ("1", "2"):
        with pytest.raises(CONNECTION_ERRORS):
            post(hook, {"text": text})

    rc.set_outage("alerts", None)
    assert post(hook, {"text": "3"})[0] == 200
    assert rc.messages("alerts") == [{"text": "3"}]
    assert [(r["status"], r["outcome"]) for r in rc.requests("alerts")] == [
        (0, "reset"), (0, "reset"), (200, "answered")]


def test_outage_can_flap_and_is_not_rate_limited_and_keeps_fail_next_waiting():
    clock = FakeClock()
    with RocketChatStandin(rate_limit=2, rate_window=60.0, clock=clock) as rc:
        url = rc.add_hook("alerts")
        rc.fail_next("alerts", 1, status=502, error="Bad Gateway")
        statuses = []
        for mode in ("503", None, "503", None, "503"):
            rc.set_outage("alerts", mode)
            statuses.append(post(url, {"text": str(mode)})[0])

        assert statuses == [503, 502, 503, 200, 503]
        rc.set_outage("alerts", None)
        assert post(url, {"text": "after"})[0] == 200   # only the second request through the limiter
        assert post(url, {"text": "limited"})[0] == 429
        assert [m["text"] for m in rc.messages("alerts")] == ["None", "after"]


def test_bad_fault_arguments_are_refused(rc, hook):
    with pytest.raises(ValueError):
        rc.set_outage("alerts", "500")
    with pytest.raises(ValueError):
        rc.fail_next("alerts", 1, mode="sometimes")
    with pytest.raises(ValueError):
        rc.fail_next("alerts", 1, mode="slow", delay=-1)
    with pytest.raises(ValueError):
        rc.set_delay("alerts", -0.5)
    with pytest.raises(KeyError):
        rc.set_outage("nope", None)
    assert post(hook, {"text": "unaffected"})[0] == 200
