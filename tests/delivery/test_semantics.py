"""Delivery semantics of the alert-state model, one test (or a few) per defect of the issue.

Each test asserts what a user sees: the answers to POST /webhook, the messages Rocket.Chat (the
stand-in) accepted, rcwebhook's log lines and /metrics. Every one of them fails on the delivery
core before the alert-state rewrite (683586b). Waits are conditions with deadlines, never sleeps.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sqlite3
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional

import pytest

from rcwebhook.delivery.transport import Answer, post
from tests.faults import wait_until
from tests.rocketchat_standin import RocketChatStandin
from tests.delivery.test_deliverer import SteppedClock
from tests.test_operations import parse_metrics, processes  # noqa: F401 - `processes` is a fixture

RATE_LIMIT_TEXT = ("Error, too many requests. Please slow down. You must wait {} seconds before trying this "
                   "endpoint again. [error-too-many-requests]")


# --- helpers ---------------------------------------------------------------------------------------

def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def alert(name: str = "A", status: str = "firing", severity: str = "critical", group: Optional[str] = None,
          starts: Optional[float] = None, ends: Optional[float] = None, **alerts_extra: Any) -> Dict[str, Any]:
    """Return a notification of one group holding one alert, as Alertmanager sends it."""
    one = {"status": status, "labels": {"alertname": name, "severity": severity}, "fingerprint": f"fp-{name}",
           "startsAt": iso(starts if starts is not None else time.time() - 60),
           "endsAt": iso(ends) if ends is not None else "0001-01-01T00:00:00Z"}
    one.update(alerts_extra)
    return {"version": "4", "groupKey": group or f"{{}}:{{alertname=\"{name}\"}}", "receiver": "rc",
            "status": status, "alerts": [one]}


def two_routes() -> Dict[str, Any]:
    """One group whose alerts go to two routes: critical and warning."""
    starts = iso(time.time() - 60)
    return {"version": "4", "groupKey": "{}:{service=\"db\"}", "status": "firing", "receiver": "rc", "alerts": [
        {"status": "firing", "labels": {"alertname": "DbDown", "severity": "critical"}, "fingerprint": "fp-crit",
         "startsAt": starts},
        {"status": "firing", "labels": {"alertname": "DbSlow", "severity": "warning"}, "fingerprint": "fp-warn",
         "startsAt": starts}]}


def retry_until_ok(post, payload, limit: float = 15.0, clock: Optional[SteppedClock] = None) -> List[int]:
    """Send `payload` again after every non-2xx answer, as Alertmanager does, each a second later by `clock`
    (moved, not waited for) when one is given; return the statuses."""
    statuses: List[int] = []
    deadline = time.monotonic() + limit
    while not statuses or not 200 <= statuses[-1] < 300:
        assert time.monotonic() < deadline, f"no 2xx within {limit}s: {statuses}"
        if clock is not None:
            clock.advance(1.0)
        statuses.append(post(payload)[0])
    return statuses


def titles(rocketchat: RocketChatStandin, hook: str) -> List[str]:
    return [a["title"] for m in rocketchat.messages(hook) for a in m["attachments"]]


def headlines(rocketchat: RocketChatStandin, hook: str) -> List[str]:
    return [m["text"] for m in rocketchat.messages(hook)]


def no_new_request(rocketchat: RocketChatStandin, hook: str, seconds: float) -> None:
    """Assert that no request reaches `hook` within `seconds` (waiting on the stand-in's condition)."""
    before = len(rocketchat.requests(hook))
    try:
        got = rocketchat.wait_for_requests(hook, before + 1, timeout=seconds)
    except AssertionError:
        return
    raise AssertionError(f"unexpected post to {hook}: {got[before:]}")


def idle(daemon) -> bool:
    """Return whether no post of the daemon is on its way to Rocket.Chat (always true on a model that
    does not say)."""
    couriers = getattr(daemon.server.deliverer, "_couriers", {})
    return all(not getattr(c, "sending_since", 0.0) and not getattr(c, "rendering_since", 0.0)
               for c in list(couriers.values()))


def metrics(daemon) -> Dict[str, float]:
    with urllib.request.urlopen(daemon.url + "/metrics", timeout=5) as response:
        return parse_metrics(response.read().decode())


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@pytest.fixture
def hooks(rocketchat) -> Dict[str, str]:
    return {f"ROCKETCHAT_WEBHOOK_{n.upper()}": rocketchat.add_hook(n) for n in ("critical", "warning", "info")}


# --- 2. left FIRING after it resolved ----------------------------------------------------------------

def test_firing_that_got_503_is_not_posted_on_its_own_after_it_resolved(start_daemon, rocketchat, hooks, logs):
    """Rocket.Chat down, the FIRING answered 503, the alert resolves before Alertmanager's next send, and
    Alertmanager, never having delivered the FIRING, sends nothing more. When Rocket.Chat comes back,
    nothing may be posted: the channel would show the resolved alert FIRING for good."""
    daemon = start_daemon(DELIVERY_DEADLINE="1", ROCKETCHAT_RATE_LIMIT="0", **hooks)
    clock = SteppedClock().drive(daemon)
    rocketchat.set_outage("critical", "503")
    firing = alert("Flap", starts=time.time() - 30)
    status, _, body = daemon.post_json(firing)
    assert status == 503, body
    assert body["routes"]["critical"]["status"] == "pending"
    assert len(rocketchat.requests("critical")) >= 2  # retried while the request waited
    # The alert resolves now; Alertmanager sends no resolved-only group it never delivered.
    wait_until(lambda: idle(daemon), "no post on its way")
    rocketchat.set_outage("critical", None)
    clock.advance(60.0)  # past any backoff: a courier that would post it on its own does so at once
    no_new_request(rocketchat, "critical", 0.5)
    assert rocketchat.messages("critical") == []


# --- 4. a re-fire swallowed --------------------------------------------------------------------------

def test_fire_resolve_fire_again_with_the_same_startsat_posts_three_times_in_order(start_daemon, rocketchat, hooks):
    daemon = start_daemon(**hooks)  # default settings: DEDUP_WINDOW=60
    now = time.time()
    firing = alert("Refire", starts=now - 200)
    resolved = alert("Refire", status="resolved", starts=now - 200, ends=now - 70)
    answers = [daemon.post_json(payload) for payload in (firing, resolved, firing)]
    assert [a[0] for a in answers] == [200, 200, 200], answers
    assert [a[2]["routes"]["critical"]["status"] for a in answers] == ["delivered"] * 3
    shown = headlines(rocketchat, "critical")
    assert len(shown) == 3, shown
    assert shown[0].startswith(":rotating_light: [FIRING:1] Refire")
    assert shown[1].startswith(":white_check_mark: [RESOLVED:1] Refire")
    assert shown[2].startswith(":rotating_light: [FIRING:1] Refire")


# --- 5. reminders swallowed --------------------------------------------------------------------------

def test_reminder_after_dedup_window_is_posted_and_a_copy_within_it_is_not(start_daemon, rocketchat, hooks):
    daemon = start_daemon(**hooks)  # default settings: DEDUP_WINDOW=60
    clock = SteppedClock().drive(daemon)
    firing = alert("Remind", starts=time.time() - 600)
    status, _, body = daemon.post_json(firing)
    assert (status, body["routes"]["critical"]["status"]) == (200, "delivered")
    clock.advance(5.0)  # an HA peer's copy, or a retry whose 200 was lost: not posted
    status, _, body = daemon.post_json(firing)
    assert (status, body["routes"]["critical"]["status"]) == (200, "already-delivered")
    assert len(rocketchat.messages("critical")) == 1
    clock.advance(56.0)  # Alertmanager's reminder (repeat_interval of a minute): posted
    status, _, body = daemon.post_json(firing)
    assert (status, body["routes"]["critical"]["status"]) == (200, "delivered")
    shown = headlines(rocketchat, "critical")
    assert len(shown) == 2 and all(t.startswith(":rotating_light: [FIRING:1] Remind") for t in shown)


# --- 6. duplicates from a slow Rocket.Chat -------------------------------------------------------------

def test_late_answer_within_the_deadline_is_awaited_and_posted_once(start_daemon, rocketchat, hooks, logs):
    daemon = start_daemon(DELIVERY_TIMEOUT="0.5", DELIVERY_DEADLINE="3", **hooks)
    rocketchat.set_delay("critical", 1.5)
    status, _, body = daemon.post_json(alert("Late"))
    assert (status, body["routes"]["critical"]["status"]) == (200, "delivered"), body
    assert len(rocketchat.requests("critical")) == 1
    assert titles(rocketchat, "critical") == ["Late"]
    assert any("has not answered a post within DELIVERY_TIMEOUT" in line for line in logs.lines(logging.WARNING))


def test_late_answer_after_the_deadline_503_then_alertmanagers_retry_200_posted_once(
        start_daemon, rocketchat, hooks):
    daemon = start_daemon(DELIVERY_TIMEOUT="0.5", DELIVERY_DEADLINE="1", **hooks)
    rocketchat.set_delay("critical", 1.5)
    payload = alert("Later")
    statuses = retry_until_ok(daemon.post_json, payload)
    assert statuses[0] == 503 and statuses[-1] == 200 and set(statuses[:-1]) == {503}, statuses
    assert len(rocketchat.requests("critical")) == 1
    assert titles(rocketchat, "critical") == ["Later"]
    status, _, body = daemon.post_json(payload)  # one more retry (its 200 lost): not posted again
    assert (status, body["routes"]["critical"]["status"]) == (200, "already-delivered")
    assert len(rocketchat.requests("critical")) == 1


def test_trickled_answer_slower_than_delivery_timeout_is_not_sent_again(start_daemon, rocketchat, hooks, logs):
    daemon = start_daemon(DELIVERY_TIMEOUT="0.5", DELIVERY_DEADLINE="1.5", ROCKETCHAT_RATE_LIMIT="0", **hooks)
    # A trickle of small gaps, longer than DELIVERY_TIMEOUT as a whole: one post, 200.
    rocketchat.fail_next("critical", 1, mode="trickle", delay=0.006)  # ~155 bytes: about 1 s
    started = time.monotonic()
    statuses = retry_until_ok(daemon.post_json, alert("Trickle"))
    assert statuses[-1] == 200 and time.monotonic() - started > 0.5, statuses
    assert titles(rocketchat, "critical") == ["Trickle"]
    assert len(rocketchat.requests("critical")) == 1
    # A trickle whose every byte comes later than DELIVERY_TIMEOUT: Rocket.Chat posted it, so it is
    # awaited, not sent again, however often Alertmanager retries meanwhile.
    rocketchat.fail_next("critical", 1, mode="trickle", delay=0.7)
    payload = alert("Drip")
    for _ in range(2):
        status, _, body = daemon.post_json(payload)
        assert status == 503, body
        assert "waiting for Rocket.Chat to answer a post sent" in body["routes"]["critical"]["error"]
    assert titles(rocketchat, "critical") == ["Trickle", "Drip"]
    assert len(rocketchat.requests("critical")) == 2


def test_a_trickled_answer_is_given_up_after_answer_wait_not_held_for_the_whole_trickle(
        start_daemon, rocketchat, hooks, logs, monkeypatch):
    monkeypatch.setattr("rcwebhook.delivery.transport.ANSWER_WAIT", 1.0)
    daemon = start_daemon(DELIVERY_TIMEOUT="0.5", DELIVERY_DEADLINE="5", ROCKETCHAT_RATE_LIMIT="0", **hooks)
    rocketchat.fail_next("critical", 1, mode="trickle", delay=0.2)  # ~30 s for the whole answer
    started = time.monotonic()
    status, _, body = daemon.post_json(alert("Slowpoke"))
    took = time.monotonic() - started
    assert status == 200, body  # at-least-once: the post is sent again after the wait
    first, second = rocketchat.requests("critical")[:2]
    assert first["outcome"] == "trickle"
    # ANSWER_WAIT + one backoff (1.4-1.6 s); the upper bounds leave room for a slow machine and still
    # rule out waiting for the whole trickle (30 s)
    assert 0.9 <= second["at"] - first["at"] <= 4, (first["at"], second["at"])
    assert took < 4.5
    assert any("no whole answer from Rocket.Chat in time" in line for line in logs.lines(logging.WARNING))


# --- 7. duplicates from partial success ------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["refused", "down"])
def test_accepted_route_is_never_posted_again_while_alertmanager_retries_for_the_other(
        start_daemon, rocketchat, hooks, fault):
    daemon = start_daemon(DEDUP_WINDOW="0", DELIVERY_DEADLINE="0.5", ROCKETCHAT_RATE_LIMIT="0", **hooks)
    clock = SteppedClock().drive(daemon)
    if fault == "refused":
        rocketchat.fail_next("warning", 5, status=400, error="error-running-script")
    else:
        rocketchat.set_outage("warning", "503")
    payload = two_routes()
    for attempt in range(5):  # the first send and 4 retries, all failing for the warning route
        status, _, body = daemon.post_json(payload)
        assert status == (502 if fault == "refused" else 503), body
        assert body["routes"]["critical"]["status"] == ("delivered" if attempt == 0 else "already-delivered")
    rocketchat.set_outage("warning", None)
    statuses = retry_until_ok(daemon.post_json, payload, clock=clock)  # the 5th retry (or later) gets 200
    assert statuses[-1] == 200
    assert titles(rocketchat, "critical") == ["DbDown"]
    assert titles(rocketchat, "warning") == ["DbSlow"]


# --- 9. one bad message fails the others ------------------------------------------------------------------

def gated_transport(refuse: Optional[bytes] = None):
    """Return (transport, gate, warm_sent): the real post, except that a post of "Warm" waits for `gate`
    (so that what comes meanwhile is merged into the next post) and a post containing `refuse` is
    refused with 400."""
    gate, warm_sent, seen = threading.Event(), threading.Event(), []

    def transport(url, body, timeout):
        seen.append(body)
        if b"Warm" in body:
            warm_sent.set()
            gate.wait(10)
        if refuse is not None and refuse in body:
            return Answer(400, "some refusal")
        return post(url, body, timeout)

    transport.seen = seen  # type: ignore[attr-defined]
    return transport, gate, warm_sent


def send_merged(daemon, payloads, gate, warm_sent):
    """Hold the hook with a post of "Warm", send `payloads` at once, let them go out merged; return the
    answers."""
    with ThreadPoolExecutor(len(payloads) + 1) as pool:
        warm = pool.submit(daemon.post_json, alert("Warm", group="warm"))
        assert warm_sent.wait(5)
        futures = [pool.submit(daemon.post_json, p) for p in payloads]
        wait_until(lambda: daemon.server.deliverer.pending_count() >= len(payloads) + 1,
                   "every notification waiting")
        gate.set()
        assert warm.result()[0] == 200
        return [f.result() for f in futures]


def test_a_refused_merged_post_is_split_so_one_bad_alert_fails_only_its_own_request(start_daemon, rocketchat,
                                                                                      hooks, logs):
    transport, gate, warm_sent = gated_transport(refuse=b"Bad")
    daemon = start_daemon(transport=transport, ROCKETCHAT_RATE_LIMIT="100/1", **hooks)
    names = [f"Good{i}" for i in range(9)] + ["Bad"]
    answers = send_merged(daemon, [alert(n, group=n) for n in names], gate, warm_sent)
    assert any(all(n.encode() in body for n in names) for body in transport.seen)  # all ten in one post
    by_name = dict(zip(names, answers))
    for name in names[:-1]:
        status, _, body = by_name[name]
        assert (status, body["routes"]["critical"]["status"]) == (200, "delivered"), (name, body)
    status, _, body = by_name["Bad"]
    assert status == 502, body
    assert body["routes"]["critical"]["error"] == "some refusal"
    posted = titles(rocketchat, "critical")
    assert sorted(posted) == sorted(["Warm"] + names[:-1])  # each good alert once, the bad one never


def test_error_message_size_exceeded_shortens_the_merged_text_and_posts_every_alert(start_daemon, rocketchat,
                                                                                     hooks, logs):
    rocketchat.set_max_message_size("critical", 300)
    transport, gate, warm_sent = gated_transport()
    daemon = start_daemon(transport=transport, ROCKETCHAT_RATE_LIMIT="100/1", **hooks)
    names = [f"\U0001F525\U0001F525\U0001F525\U0001F525\U0001F525Disk{i}" for i in range(10)]  # emoji: 2 units
    answers = send_merged(daemon, [alert(n, group=f"g{i}") for i, n in enumerate(names)], gate, warm_sent)
    assert [a[0] for a in answers] == [200] * 10, [a[2] for a in answers]
    posted = titles(rocketchat, "critical")
    assert sorted(posted) == sorted(["Warm"] + names)
    assert all(utf16(m["text"]) <= 300 for m in rocketchat.messages("critical"))
    assert any("as too long" in line and "posting it again with at most" in line
               for line in logs.lines(logging.WARNING)), logs.lines(logging.WARNING)
    assert not logs.lines(logging.ERROR)


# --- 10. 429 without a floor --------------------------------------------------------------------------

def test_429_saying_wait_0_seconds_with_a_past_reset_waits_at_least_a_second(start_daemon, rocketchat, hooks):
    calls: List[float] = []
    clock = SteppedClock(skip_timers=True)  # the wait passes at once, on the clock the calls are timed by

    def transport(url, body, timeout):
        calls.append(clock.monotonic())
        if len(calls) == 1:
            past = str(int((time.time() - 30) * 1000))
            return Answer(429, RATE_LIMIT_TEXT.format(0), {"X-RateLimit-Reset": past})
        return post(url, body, timeout)

    daemon = start_daemon(transport=transport, ROCKETCHAT_RATE_LIMIT="0", **hooks)
    clock.drive(daemon)
    status, _, body = daemon.post_json(alert("Limited"))
    assert status == 200, body
    assert len(calls) == 2, calls
    assert calls[1] - calls[0] >= 1.0, calls
    assert titles(rocketchat, "critical") == ["Limited"]


def test_429_with_a_400_digit_reset_header_is_still_delivered(start_daemon, rocketchat, hooks, logs):
    calls: List[float] = []

    def transport(url, body, timeout):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Answer(429, RATE_LIMIT_TEXT.format(1), {"X-RateLimit-Reset": "9" * 400})
        return post(url, body, timeout)

    daemon = start_daemon(transport=transport, ROCKETCHAT_RATE_LIMIT="0", **hooks)
    SteppedClock(skip_timers=True).drive(daemon)  # the wait Rocket.Chat asks for passes at once
    status, _, body = daemon.post_json(alert("Huge"))
    assert (status, body["routes"]["critical"]["status"]) == (200, "delivered"), body
    assert titles(rocketchat, "critical") == ["Huge"]
    assert not any("Internal error" in line for line in logs.lines(logging.ERROR))


# --- 11. half answers ---------------------------------------------------------------------------------

def test_half_written_200_is_a_failed_attempt_retried_not_a_refusal(start_daemon, rocketchat, hooks, logs):
    daemon = start_daemon(**hooks)  # the real transport
    SteppedClock(skip_timers=True).drive(daemon)  # the backoff passes at once
    rocketchat.fail_next("critical", 1, mode="half")
    status, _, body = daemon.post_json(alert("Half"))
    assert (status, body["routes"]["critical"]["status"]) == (200, "delivered"), body
    assert 1 <= titles(rocketchat, "critical").count("Half") <= 2  # at-least-once: the answer was lost
    assert logs.lines(logging.ERROR) == []
    assert not any("incoming webhook" in line for line in logs.lines())


def test_resend_after_a_reset_on_a_kept_alive_connection_is_logged(start_daemon, rocketchat, hooks, logs):
    daemon = start_daemon(ROCKETCHAT_RATE_LIMIT="0", **hooks)  # the real transport, keeping connections alive
    assert daemon.post_json(alert("First"))[0] == 200
    rocketchat.fail_next("critical", 1, mode="accept_reset")
    status, _, body = daemon.post_json(alert("Second"))
    assert status == 200, body
    assert "Second" in titles(rocketchat, "critical")
    assert any("sending it again on a new connection" in line for line in logs.lines(logging.INFO)), logs.lines()


@pytest.mark.parametrize("plain", [False, True], ids=["json-500", "plain-500"])
def test_wrong_token_on_rocketchat_7_is_a_502_naming_the_key_and_counted(start_daemon, logs, plain):
    with RocketChatStandin(version=7, plain_token_error=plain) as standin:
        url = standin.add_hook("critical")
        wrong = url.rsplit("/", 1)[0] + "/" + "x" * 48
        daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=wrong, DELIVERY_DEADLINE="2", ROCKETCHAT_RATE_LIMIT="0",
                              DEFAULT_SEVERITY="critical")
        started = time.monotonic()
        status, _, body = daemon.post_json(alert("Token"))
        assert status == 502, body
        assert time.monotonic() - started < 1.5  # not retried until the deadline
        assert body["routes"]["critical"]["status"] == "failed"
        assert len(standin.requests("critical")) == 1
        errors = logs.lines(logging.ERROR)
        assert any("ROCKETCHAT_WEBHOOK_CRITICAL" in line for line in errors), errors
        assert standin.token("critical") not in logs.text()
        samples = metrics(daemon)
        assert samples.get('rcwebhook_rocketchat_refusals_total{route="critical",reason="bad_token"}') == 1


# --- 12. pacing forgot on restart ------------------------------------------------------------------------

def test_pacing_survives_kill_9_with_state_dir(tmp_path, processes):  # noqa: F811
    state = tmp_path / "state"
    state.mkdir()
    with RocketChatStandin(rate_limit=2, rate_window=3) as standin:
        url = standin.add_hook("critical")
        config = f"ROCKETCHAT_WEBHOOK_CRITICAL={url}\nSTATE_DIR={state}\nROCKETCHAT_RATE_LIMIT=2/3\n" \
                 "DEFAULT_SEVERITY=critical\n"
        first = processes(tmp_path, config)
        assert first.post(alert("One", group="one")) == 200
        assert first.post(alert("Two", group="two")) == 200

        def recorded() -> int:  # the state is written just after the answer, off its path
            with contextlib.closing(sqlite3.connect(str(state / "state.sqlite3"), timeout=5)) as db:
                return db.execute("SELECT count(*) FROM hook_post").fetchone()[0]

        deadline = time.monotonic() + 10
        while recorded() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert recorded() == 2
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(5)
        second = processes(tmp_path, config)
        assert second.post(alert("Three", group="three")) == 200
        assert standin.count_429("critical") == 0, [r["status"] for r in standin.requests("critical")]
        assert titles(standin, "critical") == ["One", "Two", "Three"]
        times = [r["at"] for r in standin.requests("critical")]
        assert times[2] - times[0] >= 3.0  # it waited for Rocket.Chat's window


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_rocketchat_does_not_spend_pacing_and_the_503_names_the_cause(start_daemon, logs):
    url = f"http://127.0.0.1:{closed_port()}/hooks/abc/def"
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=url, ROCKETCHAT_RATE_LIMIT="2/60", DELIVERY_DEADLINE="5",
                          DEFAULT_SEVERITY="critical")
    status, _, body = daemon.post_json(alert("Nowhere"))
    assert status == 503, body
    error = body["routes"]["critical"]["error"]
    assert "connection refused" in error.lower(), error
    assert "pacing" not in error.lower() and "ROCKETCHAT_RATE_LIMIT" not in error, error
    attempts = [line for line in logs.lines(logging.WARNING) if line.startswith("Post to route critical failed")]
    # The third failure comes 1.05-1.55 s in (backoffs of 0.5 and 0.75 s, each +-20%); 2/60 pacing would
    # allow two attempts at most within the deadline.
    assert len(attempts) >= 3, logs.lines()
    assert not any(line.startswith("Waiting ") for line in logs.lines())


# --- found in review: a changed group is no reminder; a reset header of non-ASCII digits ---------------

def test_a_group_that_gains_an_alert_after_dedup_window_posts_only_the_new_alert(start_daemon, rocketchat, hooks):
    daemon = start_daemon(**hooks)
    clock = SteppedClock().drive(daemon)
    starts = time.time() - 600

    def firing(name: str, since: float) -> Dict[str, Any]:
        return {"status": "firing", "labels": {"alertname": name, "severity": "critical"},
                "fingerprint": f"fp-{name}", "startsAt": iso(since)}

    def group(*alerts: Dict[str, Any]) -> Dict[str, Any]:
        return {"version": "4", "groupKey": "{}:{job=\"disk\"}", "status": "firing", "receiver": "rc",
                "alerts": list(alerts)}

    assert daemon.post_json(group(firing("DiskA", starts)))[0] == 200
    clock.advance(300.0)  # Alertmanager's group_interval (5m): the group gained DiskB
    status, _, body = daemon.post_json(group(firing("DiskA", starts), firing("DiskB", starts + 250)))
    assert status == 200, body
    assert titles(rocketchat, "critical") == ["DiskA", "DiskB"]


def test_429_with_a_non_ascii_digit_reset_header_is_no_internal_error(start_daemon, rocketchat, hooks, logs):
    calls: List[float] = []

    def transport(url, body, timeout):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return Answer(429, RATE_LIMIT_TEXT.format(1), {"X-RateLimit-Reset": "\u00b9"})
        return post(url, body, timeout)

    daemon = start_daemon(transport=transport, ROCKETCHAT_RATE_LIMIT="0", **hooks)
    SteppedClock(skip_timers=True).drive(daemon)  # the wait Rocket.Chat asks for passes at once
    status, _, body = daemon.post_json(alert("Superscript"))
    assert (status, body["routes"]["critical"]["status"]) == (200, "delivered"), body
    assert not any("Internal error" in line for line in logs.lines(logging.ERROR)), logs.lines(logging.ERROR)
