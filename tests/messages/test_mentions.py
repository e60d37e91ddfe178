"""Mentions (docs/messages.md, "Mentions"): who a firing message notifies, and what happens when Rocket.Chat refuses
@here or @all.

Every test asserts what a user sees: the messages the stand-in Rocket.Chat accepted, the answers to
POST /webhook, rcwebhook's log lines, /metrics and the exit status of --check-config.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional

import pytest

from rcwebhook.delivery import courier
from rcwebhook.delivery.transport import post
from tests.conftest import make_settings
from tests.test_cli import run, write_config
from tests.test_operations import parse_metrics

REFUSED = "Rocket.Chat refused a post to"
FIRING_HEADLINE = ":rotating_light: [FIRING:"


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def notification(*alerts: Dict[str, Any], group: str = "g") -> Dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {"version": "4", "groupKey": group, "receiver": "rc", "status": status, "alerts": list(alerts)}


def alert(name: str = "A", status: str = "firing", severity: str = "critical", mention: Optional[str] = None,
          starts: float = 0.0) -> Dict[str, Any]:
    starts = starts or time.time() - 60
    one: Dict[str, Any] = {"status": status, "labels": {"alertname": name, "severity": severity},
                           "annotations": {"summary": f"{name} is bad"}, "fingerprint": f"fp-{name}",
                           "startsAt": iso(starts),
                           "endsAt": iso(starts + 30) if status == "resolved" else "0001-01-01T00:00:00Z"}
    if mention is not None:
        one["annotations"]["mention"] = mention
    return one


def metrics(daemon) -> Dict[str, float]:
    with urllib.request.urlopen(daemon.url + "/metrics", timeout=5) as response:
        return parse_metrics(response.read().decode())


def mention_refusals(daemon, route: str = "critical") -> float:
    return metrics(daemon)[f'rcwebhook_mention_refusals_total{{route="{route}"}}']


def texts(rocketchat, hook: str = "critical") -> List[str]:
    return [m["text"] for m in rocketchat.messages(hook)]


def titles(rocketchat, hook: str = "critical") -> List[str]:
    return [a["title"] for m in rocketchat.messages(hook) for a in m["attachments"]]


@pytest.fixture
def allowed(rocketchat) -> Dict[str, str]:
    """Hooks whose integration user may mention @here and @all."""
    return {f"ROCKETCHAT_WEBHOOK_{n.upper()}": rocketchat.add_hook(n, allow_mention_all=True)
            for n in ("critical", "warning", "info")}


@pytest.fixture
def bot(rocketchat) -> Dict[str, str]:
    """Hooks whose integration user has the bot role's permissions: no @here, no @all."""
    return {f"ROCKETCHAT_WEBHOOK_{n.upper()}": rocketchat.add_hook(n, allow_mention_all=False)
            for n in ("critical", "warning", "info")}


# --- where the mentions go ---------------------------------------------------------------------------

def test_a_firing_message_mentions_its_routes_people_in_front_of_its_top_level_text(start_daemon, rocketchat,
                                                                                      allowed):
    daemon = start_daemon(MENTION_CRITICAL="@here @oncall", MENTION_WARNING="@alice @bob", **allowed)
    assert daemon.post_json(notification(alert("DiskFull"), alert("Slow", severity="warning")))[0] == 200
    [critical] = rocketchat.messages("critical")
    assert critical["text"].startswith(f"@here @oncall {FIRING_HEADLINE}1] DiskFull — DiskFull is bad"), critical["text"]
    assert "@" not in str(critical["attachments"])  # attachments notify nobody: no mention there
    assert texts(rocketchat, "warning")[0].startswith("@alice @bob :warning: [FIRING:1] Slow")


def test_a_route_without_mentions_posts_its_headline_alone(start_daemon, rocketchat, allowed):
    daemon = start_daemon(MENTION_CRITICAL="@oncall", **allowed)
    assert daemon.post_json(notification(alert("Chatty", severity="info")))[0] == 200
    assert texts(rocketchat, "info")[0].startswith(":information_source: [FIRING:1] Chatty")


def test_an_alerts_mention_annotation_adds_its_people_once_and_drops_what_is_no_mention(start_daemon, rocketchat,
                                                                                        allowed, logs):
    daemon = start_daemon(MENTION_CRITICAL="@oncall", **allowed)
    payload = notification(alert("DbDown", mention="@dba, @oncall bob @Here"), alert("DbSlow", mention="@dba @carol"))
    assert daemon.post_json(payload)[0] == 200
    [text] = texts(rocketchat)
    assert text.startswith(f"@oncall @dba @carol {FIRING_HEADLINE}2]"), text
    assert "bob" not in text and "Here" not in text
    warnings = logs.lines(logging.WARNING)
    assert any(line.startswith("Alert DbDown, mention annotation: 'bob' is not a mention: write @ and a Rocket.Chat "
                               "user") and line.endswith("; left out of the message") for line in warnings), warnings
    assert any("'@Here' is not a mention" in line and "did you mean @here?" in line for line in warnings), warnings


def test_a_resolved_alert_does_not_bring_its_mention_annotation(start_daemon, rocketchat, allowed):
    daemon = start_daemon(**allowed)
    payload = notification(alert("Up"), alert("Gone", status="resolved", mention="@ghost"))
    assert daemon.post_json(payload)[0] == 200
    [text] = texts(rocketchat)
    assert text.startswith(f"{FIRING_HEADLINE}1] [RESOLVED:1]") and "@ghost" not in text, text


def test_a_resolved_only_message_mentions_nobody(start_daemon, rocketchat, allowed):
    daemon = start_daemon(MENTION_CRITICAL="@here @oncall", THREADS="false", **allowed)
    starts = time.time() - 60
    assert daemon.post_json(notification(alert("DiskFull", mention="@dba", starts=starts)))[0] == 200
    assert daemon.post_json(notification(alert("DiskFull", "resolved", mention="@dba", starts=starts)))[0] == 200
    firing, resolved = texts(rocketchat)
    assert firing.startswith("@here @oncall @dba ")
    assert resolved.startswith(":white_check_mark: [RESOLVED:1] DiskFull") and "@" not in resolved, resolved


def test_thread_replies_mention_nobody_and_a_new_firing_in_the_channel_does(start_daemon, rocketchat, allowed):
    daemon = start_daemon(MENTION_CRITICAL="@oncall", DEDUP_WINDOW="0", **allowed)
    starts = time.time() - 60
    assert daemon.post_json(notification(alert("A", starts=starts)))[0] == 200
    assert daemon.post_json(notification(alert("A", starts=starts)))[0] == 200  # a reminder: a reply
    assert daemon.post_json(notification(alert("A", starts=starts), alert("B", starts=starts)))[0] == 200
    assert daemon.post_json(notification(alert("A", starts=starts), alert("B", "resolved", starts=starts)))[0] == 200
    first, reminder, news, resolution = rocketchat.messages("critical")
    assert first["text"].startswith(f"@oncall {FIRING_HEADLINE}1] A") and "tmid" not in first
    assert reminder["tmid"] and "@" not in reminder["text"], reminder
    assert news["text"].startswith(f"@oncall {FIRING_HEADLINE}") and "tmid" not in news, news  # B is news
    assert resolution["tmid"] and "@" not in resolution["text"], resolution


def test_merged_posts_mention_everyone_once_in_front(start_daemon, rocketchat, allowed):
    daemon = start_daemon(MENTION_CRITICAL="@oncall", ROCKETCHAT_RATE_LIMIT="1/1", **allowed)
    payloads = [notification(alert(f"M{i}", mention="@dba" if i % 2 else "@oncall @carol"), group=f"m{i}")
                for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(daemon.post_json, payloads))
    assert [a[0] for a in answers] == [200] * 10
    posted = rocketchat.messages("critical")
    assert any(len(m["attachments"]) > 1 for m in posted), [len(m["attachments"]) for m in posted]
    assert sorted(titles(rocketchat)) == sorted(f"M{i}: M{i} is bad" for i in range(10))
    for body in posted:
        text = body["text"]
        numbers = [int(re.match(r"M(\d+)", a["title"]).group(1)) for a in body["attachments"]]
        wanted = {"@oncall"} | {"@dba" for i in numbers if i % 2} | {"@carol" for i in numbers if not i % 2}
        called = text.split(" :rotating_light:", 1)[0].split()
        assert called[0] == "@oncall" and sorted(called) == sorted(wanted), text  # each once, in front
        assert all(text.count(word) == 1 for word in wanted), text
        assert text.count("\n") + 1 == text.count("[FIRING:")  # one headline a line, the mentions on the first


def test_mentions_leave_the_text_within_message_max_allowed_size(start_daemon, rocketchat, allowed):
    rocketchat.set_max_message_size("critical", 300)
    mentions = " ".join(f"@person{i}" for i in range(12))
    daemon = start_daemon(MENTION_CRITICAL=mentions, **allowed)
    names = [f"VeryLongAlertName{i}" + "x" * 40 for i in range(10)]
    assert daemon.post_json(notification(*(alert(n) for n in names)))[0] == 200
    [text] = texts(rocketchat)
    assert text.startswith(mentions + " "), text
    assert len(text) <= 300


def test_a_mention_annotation_longer_than_a_message_has_room_for_is_cut_between_names(start_daemon, rocketchat,
                                                                                      allowed):
    daemon = start_daemon(MENTION_CRITICAL="@oncall", **allowed)
    many = [f"@user{i}" for i in range(300)]
    payload = notification(alert("Noisy", mention=" ".join(many)), alert("Long", mention="@" + "x" * 3000))
    assert daemon.post_json(payload)[0] == 200
    [text] = texts(rocketchat)
    called = text.split(" :rotating_light:", 1)[0].split()
    assert called[0] == "@oncall" and called[1:] == many[: len(called) - 1], called  # whole names, in order
    assert 100 < len(" ".join(called)) <= 1000 and "@xxx" not in text


def test_dry_run_shows_the_mentions_it_would_make(start_daemon, logs):
    daemon = start_daemon(DRY_RUN="true", MENTION_CRITICAL="@oncall")
    assert daemon.post_json(notification(alert("DiskFull", mention="@dba")))[0] == 200
    assert any(line.startswith("Dry run: would post to route critical") and '"text":"@oncall @dba :rotating_light:'
               in line for line in logs.lines()), logs.lines()


# --- when Rocket.Chat refuses @here or @all -----------------------------------------------------------

def test_a_refused_at_here_is_posted_again_without_it_logged_counted_and_answered_200(start_daemon, rocketchat,
                                                                                        bot, logs):
    daemon = start_daemon(MENTION_CRITICAL="@here @oncall", **bot)
    status, _, body = daemon.post_json(notification(alert("DiskFull")))
    assert status == 200 and body["routes"]["critical"]["status"] == "delivered", body
    first, again = rocketchat.requests("critical")
    assert (first["status"], first["body"]["text"].split()[0]) == (400, "@here")
    assert again["status"] == 200
    [text] = texts(rocketchat)
    assert text.startswith(f"@oncall {FIRING_HEADLINE}1] DiskFull") and "@here" not in text, text
    assert titles(rocketchat) == ["DiskFull: DiskFull is bad"]  # posted exactly once
    [error] = logs.lines(logging.ERROR)
    hook = f"/hooks/{rocketchat.integration_id('critical')}/***"
    assert error.startswith(REFUSED) and f"{hook}: 400 error-action-not-allowed:" in error, error
    assert "the integration's user may not mention @here (it lacks the mention-here permission)" in error
    assert "grant mention-here to the integration's user" in error and "take @here out of MENTION_CRITICAL" in error
    assert "posting it again without @here" in error and "for 1h or until a reload" in error
    assert rocketchat.token("critical") not in logs.text()
    assert mention_refusals(daemon) == 1
    assert metrics(daemon)['rcwebhook_rocketchat_posts_total{route="critical",outcome="accepted"}'] == 1


def test_after_a_refusal_later_posts_leave_at_here_out_until_a_reload(start_daemon, rocketchat, bot, logs):
    values = dict(MENTION_CRITICAL="@here @oncall", **bot)
    daemon = start_daemon(**values)
    assert daemon.post_json(notification(alert("One"), group="one"))[0] == 200
    assert daemon.post_json(notification(alert("Two"), group="two"))[0] == 200
    assert [r["status"] for r in rocketchat.requests("critical")] == [400, 200, 200]  # no refusal first
    assert texts(rocketchat)[1].startswith(f"@oncall {FIRING_HEADLINE}1] Two")
    assert len(logs.lines(logging.ERROR)) == 1 and mention_refusals(daemon) == 1
    daemon.server.apply(make_settings(PORT="0", **values))  # a reload tries @here again
    assert daemon.post_json(notification(alert("Three"), group="three"))[0] == 200
    assert [r["status"] for r in rocketchat.requests("critical")] == [400, 200, 200, 400, 200]
    assert len(logs.lines(logging.ERROR)) == 2 and mention_refusals(daemon) == 2
    assert titles(rocketchat) == [f"{n}: {n} is bad" for n in ("One", "Two", "Three")]


def test_a_refused_at_all_from_an_annotation_names_mention_all_and_the_annotation(start_daemon, rocketchat, bot,
                                                                                  logs):
    daemon = start_daemon(MENTION_CRITICAL="@oncall", **bot)
    assert daemon.post_json(notification(alert("Outage", mention="@all @cto")))[0] == 200
    [text] = texts(rocketchat)
    assert text.startswith(f"@oncall @cto {FIRING_HEADLINE}1] Outage"), text
    [error] = logs.lines(logging.ERROR)
    assert "may not mention @all (it lacks the mention-all permission)" in error, error
    assert "take @all out of the alerts' mention annotation" in error, error
    assert mention_refusals(daemon) == 1


def test_a_refused_merged_post_is_posted_again_whole_without_the_mention(start_daemon, rocketchat):
    url = rocketchat.add_hook("shared", allow_mention_all=False)
    gate, warm_sent = threading.Event(), threading.Event()

    def transport(target, body, timeout):  # holds the hook with a post of "Warm" until the others wait
        if b"Warm" in body:
            warm_sent.set()
            gate.wait(10)
        return post(target, body, timeout)

    daemon = start_daemon(transport=transport, ROCKETCHAT_WEBHOOK_CRITICAL=url, DEFAULT_SEVERITY="critical",
                          MENTION_CRITICAL="@here @oncall", ROCKETCHAT_RATE_LIMIT="100/1")
    with ThreadPoolExecutor(7) as pool:
        warm = pool.submit(daemon.post_json, notification(alert("Warm", severity="warning"), group="warm"))
        assert warm_sent.wait(5)
        answers = [pool.submit(daemon.post_json, notification(alert(f"M{i}"), group=f"m{i}")) for i in range(6)]
        deadline = time.monotonic() + 5
        while daemon.server.deliverer.pending_count() < 7:
            assert time.monotonic() < deadline, "the six notifications did not all wait"
            time.sleep(0.01)
        gate.set()
        assert warm.result()[0] == 200 and [a.result()[0] for a in answers] == [200] * 6
    warm_post, refused, again = rocketchat.requests("shared")
    assert [warm_post["status"], refused["status"], again["status"]] == [200, 400, 200]
    assert len(refused["body"]["attachments"]) == 6 and refused["body"]["text"].startswith("@here @oncall ")
    assert again["body"]["attachments"] == refused["body"]["attachments"]  # the same alerts, whole
    assert again["body"]["text"] == refused["body"]["text"][len("@here "):]  # one mention left, once
    assert sorted(titles(rocketchat, "shared")) == sorted(["Warm: Warm is bad"] + [f"M{i}: M{i} is bad"
                                                                                    for i in range(6)])
    assert mention_refusals(daemon) == 1


def test_at_here_is_tried_again_once_the_hook_has_left_it_out_for_a_while(start_daemon, rocketchat, bot,
                                                                        monkeypatch):
    monkeypatch.setattr(courier, "MENTION_RETRY", 0.3)
    daemon = start_daemon(MENTION_CRITICAL="@here", ROCKETCHAT_RATE_LIMIT="0", **bot)
    assert daemon.post_json(notification(alert("First"), group="first"))[0] == 200
    deadline, sent = time.monotonic() + 10, 0
    while [r["status"] for r in rocketchat.requests("critical")].count(400) < 2:
        assert time.monotonic() < deadline, "@here was not tried again"
        sent += 1
        assert daemon.post_json(notification(alert(f"Later{sent}"), group=f"later{sent}"))[0] == 200
    assert mention_refusals(daemon) == 2
    assert len(titles(rocketchat)) == sent + 1 and not any("@here" in text for text in texts(rocketchat))


def test_a_refused_post_with_both_at_here_and_at_all_names_both_permissions(start_daemon, rocketchat, bot, logs):
    daemon = start_daemon(MENTION_CRITICAL="@all @here @oncall", **bot)
    assert daemon.post_json(notification(alert("Outage")))[0] == 200
    assert texts(rocketchat)[0].startswith(f"@oncall {FIRING_HEADLINE}1] Outage")
    [error] = logs.lines(logging.ERROR)
    assert "may not mention @here or @all (it lacks the mention-here or the mention-all permission)" in error, error
    assert "grant mention-here and mention-all to the integration's user" in error, error
    assert "take @here and @all out of MENTION_CRITICAL" in error, error


# --- configuration ------------------------------------------------------------------------------------

def test_an_invalid_mention_setting_exits_78_naming_file_line_and_word(tmp_path):
    hook = "https://chat.example.com/hooks/abc123/SECRETTOKEN"
    path = write_config(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nMENTION_CRITICAL=@here oncall\n"
                                  "MENTION_WARNING=@ALL\nMENTION_CRITCAL=@x\n")
    for args in (("--check-config", "--config", str(path)), ("--config", str(path))):
        result = run(*args)
        assert result.returncode == 78, result.stderr
        lines = result.stderr.splitlines()
        assert any(line.startswith(f"rcwebhook: error: {path}:2: MENTION_CRITICAL='@here oncall': 'oncall' is not "
                                   "a mention: write @ and a Rocket.Chat user") for line in lines), lines
        assert f"rcwebhook: error: {path}:3: MENTION_WARNING='@ALL': '@ALL' is not a mention: Rocket.Chat reads it " \
               "as a user name; did you mean @all?" in lines
        assert f"rcwebhook: error: {path}:4: unknown key MENTION_CRITCAL, did you mean MENTION_CRITICAL? (a near-miss of a known key is an error: fix its spelling, or remove it)" \
            in lines


def test_check_config_shows_the_mentions(tmp_path):
    hook = "https://chat.example.com/hooks/abc123/SECRETTOKEN"
    path = write_config(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nMENTION_CRITICAL=@here,  @oncall @OnCall\n")
    result = run("--check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "MENTION_CRITICAL=@here @oncall\n" in result.stdout
    assert "MENTION_INFO=\n" in result.stdout

