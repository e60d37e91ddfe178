"""Delivery that loses nothing and posts nothing twice: retries, Rocket.Chat's rate limit, honest answers."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from rcwebhook.delivery import transport
from rcwebhook.delivery.clock import Clock
from rcwebhook.delivery.courier import IDLE_WAKE
from rcwebhook.delivery.transport import Answer
from tests.conftest import load_example
from tests.rocketchat_standin import RocketChatStandin


class SteppedClock(Clock):
    """The system's clocks, moved forward by the test: every timer of a deliverer that reads it (pacing,
    backoff, Rocket.Chat's 429 waits, the dedup window) moves with it, instead of the test waiting it out.
    With `skip_timers`, a courier's wait for a timer moves the clock to its end at once (its wait for news,
    IDLE_WAKE long, is waited as usual). Requests' deadlines stay on the server's clock: real time."""

    def __init__(self, skip_timers: bool = False) -> None:
        self.offset = 0.0
        self.skip_timers = skip_timers
        self.waiting: list = []  # the conditions a timer may be waited on: woken when the clock moves

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset

    def wait(self, cond, seconds) -> None:
        if self.skip_timers and seconds is not None and seconds < IDLE_WAKE:
            self.offset += seconds
            return
        cond.wait(seconds)

    def drive(self, daemon) -> "SteppedClock":
        """Be the clock of `daemon`'s deliverer (before its first post); return self."""
        depot = daemon.server.deliverer.depot
        depot.clock = self
        self.waiting.append(depot.lock)
        return self

    def advance(self, seconds: float) -> None:
        """Move both clocks `seconds` forward and wake every timer, which finds its time come (or nearer)."""
        self.offset += seconds
        for cond in self.waiting:
            with cond:
                cond.notify_all()


def one_alert(name="A", severity="critical", group="g", fingerprint=None, status="firing"):
    return {
        "groupKey": group,
        "status": status,
        "alerts": [{"status": status, "labels": {"alertname": name, "severity": severity},
                    "fingerprint": fingerprint or f"fp-{name}", "startsAt": "2026-01-30T10:00:00Z"}],
    }


@pytest.fixture
def hooks(rocketchat):
    return {f"ROCKETCHAT_WEBHOOK_{n.upper()}": rocketchat.add_hook(n) for n in ("critical", "warning", "info")}


# --- retries within a deadline ---------------------------------------------------------------

@pytest.mark.parametrize("mode", ["status", "reset"])
def test_transient_failures_are_retried_and_posted_once(start_daemon, rocketchat, hooks, logs, mode):
    daemon = start_daemon(**hooks)
    SteppedClock(skip_timers=True).drive(daemon)  # the backoff passes at once
    rocketchat.fail_next("critical", 2, status=503, mode=mode)
    status, _, body = daemon.post_json(load_example())
    assert status == 200, body
    assert body["routes"]["critical"]["status"] == "delivered"
    assert len(rocketchat.requests("critical")) == 3
    assert len(rocketchat.messages("critical")) == 1
    assert len(rocketchat.messages("warning")) == 1
    retries = [line for line in logs.lines(logging.WARNING) if line.startswith("Post to route critical failed")]
    assert len(retries) == 2
    assert "retrying in" in retries[0] and "(attempt 2," in retries[0] and "(attempt 3," in retries[1]


def test_rocketchat_500_is_retried(start_daemon, rocketchat, hooks):
    daemon = start_daemon(**hooks)
    SteppedClock(skip_timers=True).drive(daemon)
    rocketchat.fail_next("warning", 1, status=500, error="Internal server error")
    assert daemon.post_json(load_example())[0] == 200
    assert len(rocketchat.messages("warning")) == 1


def test_down_past_the_deadline_is_503_within_deadline_plus_one_second(start_daemon, rocketchat, hooks):
    daemon = start_daemon(DELIVERY_DEADLINE="1.5", **hooks)
    rocketchat.fail_next("critical", 1000, status=503)
    started = time.monotonic()
    status, headers, body = daemon.post_json(load_example())
    took = time.monotonic() - started
    assert status == 503
    assert took < 1.5 + 1.0
    assert int(headers["Retry-After"]) >= 1
    assert body["routes"]["critical"]["status"] == "pending"
    assert "503" in body["routes"]["critical"]["error"]
    assert body["routes"]["warning"]["status"] == "delivered"
    assert len(rocketchat.requests("critical")) >= 2  # retried within the deadline


def test_stalled_answer_is_awaited_not_sent_again_and_posted_once(start_daemon, rocketchat, hooks):
    # Once a post is sent, Rocket.Chat may have posted it: a late answer is waited for, not taken for
    # a failure at DELIVERY_TIMEOUT and sent again.
    daemon = start_daemon(DELIVERY_TIMEOUT="0.5", DELIVERY_DEADLINE="1.5", **hooks)
    rocketchat.fail_next("critical", 1, mode="stall")
    status, _, body = daemon.post_json(one_alert())
    assert status == 503, body
    assert "waiting for Rocket.Chat to answer a post sent" in body["error"]
    assert len(rocketchat.requests("critical")) == 1
    rocketchat.release_stalled()  # the connection closes without an answer: that attempt failed
    status, _, body = daemon.post_json(one_alert())  # Alertmanager's retry
    assert status == 200, body
    assert len(rocketchat.messages("critical")) == 1
    assert daemon.server.deliverer.pending_count() == 0
    # The courier is idle again: a second alert goes straight through.
    assert daemon.post_json(one_alert("B"))[0] == 200


# --- permanent refusals --------------------------------------------------------------------------

def test_refusal_is_not_retried_and_answered_502_with_its_text(start_daemon, rocketchat, hooks, logs):
    daemon = start_daemon(**hooks)
    rocketchat.fail_next("critical", 1, status=400, error="Invalid href value provided")
    status, _, body = daemon.post_json(load_example())
    assert status == 502
    assert body["routes"]["critical"] == {"status": "failed", "alerts": 1, "code": 400,
                                          "error": "Invalid href value provided", "retryable": False}
    assert "route critical: Rocket.Chat answered 400: Invalid href value provided" in body["error"]
    assert len(rocketchat.requests("critical")) == 1
    [error] = logs.lines(logging.ERROR)
    assert "Rocket.Chat refused the post for route critical: 400 Invalid href value provided" in error


def test_disabled_integration_is_retried_then_503(start_daemon, rocketchat, hooks):
    daemon = start_daemon(DELIVERY_DEADLINE="1", **hooks)
    rocketchat.disable("critical")
    status, _, body = daemon.post_json(one_alert())
    assert status == 503
    assert body["routes"]["critical"]["code"] == 503


# --- Rocket.Chat's rate limit --------------------------------------------------------------------

def test_429_with_the_wait_only_in_its_text_is_obeyed(start_daemon, logs):
    clock = SteppedClock(skip_timers=True)  # Rocket.Chat's and rcwebhook's: the wait passes at once on both
    with RocketChatStandin(clock=clock.monotonic) as rocketchat:
        daemon = start_daemon(ROCKETCHAT_RATE_LIMIT="0", ROCKETCHAT_WEBHOOK_CRITICAL=rocketchat.add_hook("critical"),
                              DEFAULT_SEVERITY="critical")
        clock.drive(daemon)
        rocketchat.fail_next("critical", 1, status=429, error=(
            "Error, too many requests. Please slow down. You must wait 1 seconds before trying this endpoint "
            "again. [error-too-many-requests]"))
        status, _, _ = daemon.post_json(one_alert())
        assert status == 200
        first, second = rocketchat.requests("critical")
    assert first["status"] == 429 and second["status"] == 200
    assert second["at"] - first["at"] >= 1.0
    assert any("Rate limited by Rocket.Chat on route critical" in line and "waiting 1.0s as it asked" in line
               for line in logs.lines(logging.WARNING))


def test_429_from_the_real_limiter_with_reset_header_is_obeyed(start_daemon, hooks):
    with RocketChatStandin(rate_limit=1, rate_window=1.5) as limited:
        url = limited.add_hook("critical")
        limited_daemon = start_daemon(ROCKETCHAT_RATE_LIMIT="0", ROCKETCHAT_WEBHOOK_WARNING=url)
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda n: limited_daemon.post_json(one_alert(n, group=n))[0], ["A", "B"]))
        assert answers == [200, 200]
        statuses = [r["status"] for r in limited.requests("critical")]
        assert statuses.count(200) >= 1 and sum(len(m["attachments"]) for m in limited.messages("critical")) == 2
        if 429 in statuses:
            rejected = statuses.index(429)
            retry = limited.requests("critical")[rejected + 1]
            assert retry["at"] - limited.requests("critical")[rejected]["at"] >= 1.0


def test_rate_limit_wait_reads_text_and_header():
    text = "Error, too many requests. Please slow down. You must wait 34 seconds before trying this endpoint again."
    assert transport.rate_limit_wait(Answer(429, text), 1000.0) == 34.0
    assert transport.rate_limit_wait(Answer(429, "slow down", {"X-RateLimit-Reset": "1010500"}), 1000.0) == 10.5
    assert transport.rate_limit_wait(Answer(429, text, {"x-ratelimit-reset": "1010000"}), 1000.0) == 34.0
    assert transport.rate_limit_wait(Answer(429, "slow down"), 1000.0) is None
    assert transport.rate_limit_wait(Answer(429, "slow down", {"X-RateLimit-Reset": "junk"}), 1000.0) is None


def test_storm_of_100_notifications_for_one_hook_makes_no_429_and_loses_nothing(start_daemon):
    limit, window = 3, 1.0
    with RocketChatStandin(rate_limit=limit, rate_window=window) as standin:
        url = standin.add_hook("critical")
        daemon = start_daemon(ROCKETCHAT_RATE_LIMIT=f"{limit}/{window}", ROCKETCHAT_WEBHOOK_WARNING=url,
                              MAX_CONNECTIONS="128")
        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(lambda i: daemon.post_json(one_alert(f"Storm{i:03d}", group=f"g{i}"))[0],
                                    range(100)))
        assert answers == [200] * 100
        assert standin.count_429("critical") == 0
        delivered = [a["title"] for m in standin.messages("critical") for a in m["attachments"]]
        assert sorted(delivered) == [f"Storm{i:03d}" for i in range(100)]
        posts = standin.requests("critical")
        assert len(posts) <= 6, len(posts)
        times = [r["at"] for r in posts]
        for i, start in enumerate(times):  # never more than `limit` posts in any window
            assert sum(1 for t in times[i:] if t < start + window) <= limit


def test_storm_of_1000_alerts_in_100_groups_under_rocketchats_default_limit(start_daemon):
    """The issue's alert storm: Rocket.Chat's real default limit, 10 posts per 60 s, enforced."""
    def group(g):
        return {"groupKey": f"storm{g}", "status": "firing", "alerts": [
            {"status": "firing", "fingerprint": f"{g}-{i}",
             "labels": {"alertname": f"Storm{g:03d}", "severity": "critical", "instance": f"host{i}"},
             "annotations": {"summary": "disk full", "description": "d" * 200}} for i in range(10)]}

    with RocketChatStandin(rate_limit=10, rate_window=60) as standin:
        url = standin.add_hook("critical")
        daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=url, DEFAULT_SEVERITY="critical", MAX_CONNECTIONS="128")
        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(lambda g: daemon.post_json(group(g))[0], range(100)))
        assert answers == [200] * 100  # all within the deadline: no post had to wait for a second window
        assert standin.count_429("critical") == 0
        attachments = [a for m in standin.messages("critical") for a in m["attachments"]]
        assert len(attachments) == 1000
        assert len({(a["title"], json.dumps(a["fields"])) for a in attachments}) == 1000
        # 200 attachments per post at most: 5 posts is the least possible.
        assert 5 <= len(standin.requests("critical")) <= 8


def test_merged_post_answers_every_waiting_request(start_daemon, rocketchat, hooks):
    daemon = start_daemon(ROCKETCHAT_RATE_LIMIT="1/1", **hooks)
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: daemon.post_json(one_alert(f"M{i}", group=f"m{i}")), range(10)))
    assert [a[0] for a in answers] == [200] * 10
    assert all(a[2]["routes"]["critical"]["status"] == "delivered" for a in answers)
    assert 1 <= len(rocketchat.requests("critical")) <= 2
    assert sum(len(m["attachments"]) for m in rocketchat.messages("critical")) == 10


def retry_until_ok(daemon, payload, limit=15.0, clock=None):
    """Send `payload` again after every non-2xx answer, as Alertmanager does, each a second later by `clock`
    (moved, not waited for) when one is given; return the statuses."""
    statuses = []
    deadline = time.monotonic() + limit
    while not statuses or statuses[-1] != 200:
        assert time.monotonic() < deadline, statuses
        if clock is not None:
            clock.advance(1.0)
        statuses.append(daemon.post_json(payload)[0])
    return statuses


def test_waiting_state_is_posted_once_when_alertmanagers_retry_brings_it(start_daemon, rocketchat, hooks):
    daemon = start_daemon(ROCKETCHAT_RATE_LIMIT="1/2", DELIVERY_DEADLINE="1", **hooks)
    clock = SteppedClock().drive(daemon)
    assert daemon.post_json(one_alert("First", group="a"))[0] == 200
    status, headers, body = daemon.post_json(one_alert("Second", group="b"))
    assert status == 503
    assert body["routes"]["critical"]["status"] == "pending"
    assert "ROCKETCHAT_RATE_LIMIT=1/2" in body["routes"]["critical"]["error"]
    assert 1 <= int(headers["Retry-After"]) <= 3
    statuses = retry_until_ok(daemon, one_alert("Second", group="b"), clock=clock)
    assert statuses[-1] == 200 and set(statuses[:-1]) <= {503}
    titles = [a["title"] for m in rocketchat.messages("critical") for a in m["attachments"]]
    assert titles == ["First", "Second"]
    # Alertmanager's next retry (its answer was lost, say): answered 200, not posted again.
    status, _, body = daemon.post_json(one_alert("Second", group="b"))
    assert (status, body["routes"]["critical"]["status"]) == (200, "already-delivered")
    assert len(rocketchat.requests("critical")) == 2


# --- no duplicates --------------------------------------------------------------------------------

def test_same_notification_twice_posts_once(start_daemon, rocketchat, hooks):
    daemon = start_daemon(**hooks)
    first = daemon.post_json(load_example())
    second = daemon.post_json(load_example())
    assert (first[0], second[0]) == (200, 200)
    assert second[2]["routes"]["critical"]["status"] == "already-delivered"
    assert len(rocketchat.messages("critical")) == 1 and len(rocketchat.messages("warning")) == 1


def test_ha_pair_sending_at_the_same_moment_posts_once(start_daemon, rocketchat, hooks):
    daemon = start_daemon(**hooks)
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: daemon.post_json(load_example())[0], range(2)))
    assert answers == [200, 200]
    assert len(rocketchat.messages("critical")) == 1 and len(rocketchat.messages("warning")) == 1


def test_retry_after_partial_success_posts_only_what_was_missing(start_daemon, rocketchat, hooks):
    daemon = start_daemon(**hooks)
    rocketchat.fail_next("warning", 1, status=400, error="error-running-script")
    assert daemon.post_json(load_example())[0] == 502
    status, _, body = daemon.post_json(load_example())
    assert status == 200
    assert body["routes"] == {"critical": {"status": "already-delivered", "alerts": 1},
                              "warning": {"status": "delivered", "alerts": 1, "code": 200}}
    assert len(rocketchat.messages("critical")) == 1 and len(rocketchat.messages("warning")) == 1


def test_resolved_notification_of_the_same_group_is_posted(start_daemon, rocketchat, hooks):
    daemon = start_daemon(**hooks)
    assert daemon.post_json(one_alert())[0] == 200
    assert daemon.post_json(one_alert(status="resolved"))[0] == 200
    assert len(rocketchat.messages("critical")) == 2


def test_dedup_window_zero_posts_repeats(start_daemon, rocketchat, hooks):
    daemon = start_daemon(DEDUP_WINDOW="0", **hooks)
    daemon.post_json(one_alert())
    daemon.post_json(one_alert())
    assert len(rocketchat.messages("critical")) == 2


def test_tokens_stay_out_of_every_answer_and_log_under_faults(start_daemon, rocketchat, hooks, logs):
    daemon = start_daemon(DELIVERY_DEADLINE="0.5", **hooks)
    rocketchat.fail_next("critical", 3, status=503)
    rocketchat.fail_next("warning", 1, status=429, error="You must wait 1 seconds")
    rocketchat.fail_next("info", 1, status=400, error="Invalid href value provided")
    answers = [daemon.post_json({**load_example(), "alerts": load_example()["alerts"] + [
        {"labels": {"alertname": "I", "severity": "info"}}]})]
    text = logs.text() + json.dumps(answers)
    for name in ("critical", "warning", "info"):
        assert rocketchat.token(name) not in text


def test_two_notifications_of_one_group_with_different_alerts_post_every_alert(start_daemon, rocketchat, hooks):
    # Two Alertmanagers (or an HA peer lagging) send the same groupKey with different alerts at once:
    # a newer notification of a group does not hold everything an older one held.
    daemon = start_daemon(**hooks)

    def group(names):
        return {"groupKey": "storage", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": n, "severity": "critical"}, "fingerprint": f"fp-{n}",
             "startsAt": "2026-01-30T10:00:00Z"} for n in names]}

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda names: daemon.post_json(group(names))[0],
                                [[f"A{i}" for i in range(5)], [f"B{i}" for i in range(5)]]))
    assert answers == [200, 200]
    titles = sorted(a["title"] for m in rocketchat.messages("critical") for a in m["attachments"])
    assert titles == sorted([f"A{i}" for i in range(5)] + [f"B{i}" for i in range(5)])


def test_group_that_grows_while_waiting_posts_each_alert_once(start_daemon, rocketchat, hooks):
    daemon = start_daemon(ROCKETCHAT_RATE_LIMIT="1/2", DELIVERY_DEADLINE="1", **hooks)
    clock = SteppedClock().drive(daemon)
    assert daemon.post_json(one_alert("Other", group="other"))[0] == 200
    grown = one_alert("A", group="storage")
    assert daemon.post_json(grown)[0] == 503  # waits for its turn
    grown["alerts"].append({**grown["alerts"][0], "labels": {"alertname": "B", "severity": "critical"},
                            "fingerprint": "fp-B"})
    retry_until_ok(daemon, grown, clock=clock)
    assert daemon.post_json(one_alert("A", group="storage"))[0] == 200  # the older notification's retry
    titles = [a["title"] for m in rocketchat.messages("critical") for a in m["attachments"]]
    assert titles == ["Other", "A", "B"]


def test_resolved_state_replaces_the_waiting_firing_one_and_a_stale_copy_is_not_posted(
        start_daemon, rocketchat, hooks):
    daemon = start_daemon(ROCKETCHAT_RATE_LIMIT="1/2", DELIVERY_DEADLINE="1", **hooks)
    clock = SteppedClock().drive(daemon)
    assert daemon.post_json(one_alert("Other", group="other"))[0] == 200
    assert daemon.post_json(one_alert("Flap", group="flap"))[0] == 503
    retry_until_ok(daemon, one_alert("Flap", group="flap", status="resolved"), clock=clock)
    # A stale copy of the firing notification (an HA peer's retry) after the resolution: older news.
    status, _, body = daemon.post_json(one_alert("Flap", group="flap"))
    assert (status, body["routes"]["critical"]["status"]) == (200, "already-delivered")
    [_, resolved] = rocketchat.messages("critical")
    assert resolved["text"].startswith(":white_check_mark: [RESOLVED:1] Flap")
    assert len(resolved["attachments"]) == 1


def test_pacing_wait_is_logged_with_its_reason_and_delay(start_daemon, rocketchat, hooks, logs):
    daemon = start_daemon(ROCKETCHAT_RATE_LIMIT="1/2", DELIVERY_DEADLINE="1", **hooks)
    clock = SteppedClock().drive(daemon)
    assert daemon.post_json(one_alert("First", group="a"))[0] == 200
    retry_until_ok(daemon, one_alert("Second", group="b"), clock=clock)
    waits = [line for line in logs.lines() if line.startswith("Waiting ")]
    assert waits and "s before the next post to" in waits[0]
    assert "pacing to ROCKETCHAT_RATE_LIMIT=1/2" in waits[0]
    assert 0 < float(waits[0].split()[1].rstrip("s")) <= 2.1  # the window, plus the latency margin


def test_waiting_posts_are_bounded_in_number(start_daemon, rocketchat, hooks, monkeypatch):
    from rcwebhook.delivery import deliverer
    monkeypatch.setattr(deliverer, "QUEUE_LIMIT", 2)
    daemon = start_daemon(ROCKETCHAT_RATE_LIMIT="1/60", DELIVERY_DEADLINE="1", **hooks)
    assert daemon.post_json(one_alert("First", group="a"))[0] == 200
    assert [daemon.post_json(one_alert(f"W{i}", group=f"w{i}"))[0] for i in range(2)] == [503, 503]
    status, headers, body = daemon.post_json(one_alert("Over", group="over"))
    assert status == 503
    assert "too many alert states are waiting to be posted (2)" in body["routes"]["critical"]["error"]


def test_a_state_no_request_carries_any_more_is_dropped_and_logged(start_daemon, rocketchat, hooks, logs):
    from rcwebhook.delivery.depot import PENDING_MAX_AGE
    daemon = start_daemon(DELIVERY_DEADLINE="1", **hooks)
    clock = SteppedClock().drive(daemon)
    rocketchat.disable("critical")
    assert daemon.post_json(one_alert("Lost", group="lost"))[0] == 503
    assert daemon.server.deliverer.pending_count() == 1
    clock.advance(PENDING_MAX_AGE + 1)
    deadline = time.monotonic() + 10
    while not any(line.startswith("Dropped the waiting firing state of alert Lost (route critical)")
                  for line in logs.lines(logging.WARNING)):
        assert time.monotonic() < deadline, logs.lines()
        time.sleep(0.05)
    assert daemon.server.deliverer.pending_count() == 0
    rocketchat.disable("critical", False)
    assert daemon.post_json(one_alert("Lost", group="lost"))[0] == 200  # Alertmanager's next try posts it
    assert len(rocketchat.messages("critical")) == 1


# --- reloads ----------------------------------------------------------------------------------

def reload_with(daemon, **values):
    """Swap new settings into the running daemon, as SIGHUP does once they are loaded."""
    from tests.conftest import make_settings
    daemon.server.apply(make_settings(PORT="0", **values))


def process_threads(daemon) -> int:
    with urllib.request.urlopen(daemon.url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return int(float(re.search(r"^process_threads (\S+)$", text, re.M).group(1)))


def test_lowering_dedup_window_by_reload_takes_effect_at_once(start_daemon, rocketchat, hooks):
    daemon = start_daemon(DEDUP_WINDOW="60", **hooks)
    assert daemon.post_json(one_alert())[0] == 200
    assert daemon.post_json(one_alert())[0] == 200  # a copy within the window: not posted
    assert len(rocketchat.messages("critical")) == 1
    reload_with(daemon, DEDUP_WINDOW="0", **hooks)
    assert daemon.post_json(one_alert())[0] == 200  # now a reminder: posted
    assert len(rocketchat.messages("critical")) == 2


def test_after_a_reload_waiting_states_go_to_the_new_url_and_old_senders_end(start_daemon, rocketchat, hooks):
    daemon = start_daemon(DELIVERY_DEADLINE="1", **hooks)
    assert daemon.post_json(one_alert("Warm", severity="warning"))[0] == 200
    rocketchat.disable("critical")
    assert daemon.post_json(one_alert("Moved"))[0] == 503  # waits for the critical hook, which is down
    threads = process_threads(daemon)
    new_hook = rocketchat.add_hook("critical-new")
    reload_with(daemon, **{**hooks, "ROCKETCHAT_WEBHOOK_CRITICAL": new_hook})
    assert retry_until_ok(daemon, one_alert("Moved"))[-1] == 200  # Alertmanager's retry
    assert [a["title"] for m in rocketchat.messages("critical-new") for a in m["attachments"]] == ["Moved"]
    rocketchat.disable("critical", False)
    assert daemon.post_json(one_alert("Next"))[0] == 200
    assert rocketchat.messages("critical") == []  # nothing ever went to the old URL
    deadline = time.monotonic() + 10
    while process_threads(daemon) > threads:  # the old URL's sending thread ended
        assert time.monotonic() < deadline, process_threads(daemon)
        time.sleep(0.05)


@pytest.mark.parametrize("reason, posted", [("repeat interval elapsed", True), ("new alerts added", False)])
def test_notification_reason_tells_a_reminder_from_a_changed_group(start_daemon, rocketchat, hooks, reason, posted):
    daemon = start_daemon(**hooks)
    clock = SteppedClock().drive(daemon)
    assert daemon.post_json(one_alert())[0] == 200
    clock.advance(120.0)  # later than DEDUP_WINDOW
    status, _, body = daemon.post_json({**one_alert(), "notification_reason": reason})
    assert status == 200, body
    assert len(rocketchat.messages("critical")) == (2 if posted else 1)
