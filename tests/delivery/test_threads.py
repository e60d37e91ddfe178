"""Threads: each incident is one conversation in Rocket.Chat (docs/delivery.md, "Threads").

The channel message that announces a group's first firing alerts opens the group's thread (per
hook and groupKey); reminders and resolutions are replies in it (`tmid`); a newly firing alert goes
to the channel and the thread moves there; the resolution of the last alert ends the thread with
"Incident resolved after <duration>."; a later firing is a new channel message.

The scenarios with a real Alertmanager (prometheus-alertmanager; CI fails when it is missing) put a
recording proxy (tests/faults.py) between Alertmanager and rcwebhook and end with faults.check():
every alert state Alertmanager sent posted exactly once, in order, reminders included.  Alertmanager
groups by `service` with group_wait and group_interval of 1 s and repeat_interval of 2 s, and
rcwebhook runs with DEDUP_WINDOW=1, so that Alertmanager's reminders are posted.  The alerts start
at whole seconds in the past and resolve exactly 42 s (or a known span) later, so that the
resolution note's duration is exact.  The older-server, state-database and merging scenarios send
crafted notifications (tests/faults.py builders) to an in-process or subprocess rcwebhook.  Every
wait is on a condition with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import pytest

from tests import faults
from tests.conftest import require_program
from tests.faults import (FIRING, RESOLVED, RcwebhookProcess, RecordingProxy, Spec, acknowledged, alert_item,
                          notification, post_once, shown_states, wait_until, whole_second)
from tests.programs import free_port
from tests.rocketchat_standin import RocketChatStandin

ROUTES = ("critical", "warning", "info")
STEP = 15.0  # one step of a scenario: group_wait/group_interval of 1 s, reminders every 2-3 s, slow CI
REPEAT_INTERVAL = "2s"
# Pacing off (a reminder every 2 s would soon be paced), reminders posted after 1 s.
AM_SETTINGS = {"DEDUP_WINDOW": "1", "ROCKETCHAT_RATE_LIMIT": "0"}
SUCCESS = "Alert sent successfully to Rocket.Chat: 200"
RESOLVED_HEADLINE = ":white_check_mark: [RESOLVED:"


# --- fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def am_binary() -> str:
    return require_program("prometheus-alertmanager")


@pytest.fixture
def stack() -> Iterator[contextlib.ExitStack]:
    """Everything a test starts, stopped in reverse order afterwards."""
    with contextlib.ExitStack() as exits:
        yield exits


def add_hooks(rc: RocketChatStandin) -> Dict[str, str]:
    return {route: rc.add_hook(route) for route in ROUTES}


def hook_settings(urls: Mapping[str, str], **extra: str) -> Dict[str, str]:
    return {**{f"ROCKETCHAT_WEBHOOK_{route.upper()}": url for route, url in urls.items()}, **extra}


def start_alertmanager(stack: contextlib.ExitStack, binary: str, workdir: Path,
                       receiver_url: str) -> faults.Alertmanager:
    """Start an Alertmanager that reminds every REPEAT_INTERVAL."""
    manager = faults.Alertmanager(binary, workdir, receiver_url)
    config = faults.AM_CONFIG.replace("repeat_interval: 1h", f"repeat_interval: {REPEAT_INTERVAL}")
    assert config != faults.AM_CONFIG, "faults.AM_CONFIG changed: set repeat_interval another way"
    manager.config.write_text(config.format(url=json.dumps(receiver_url)))
    stack.callback(manager.stop)
    manager.start()
    return manager


def read_metrics(base_url: str) -> Dict[str, float]:
    with urllib.request.urlopen(base_url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def replies_metric(samples: Mapping[str, float], route: Optional[str] = None) -> float:
    """Return rcwebhook_thread_replies_total of `route`, or summed over every route."""
    if route is not None:
        return samples.get(f'rcwebhook_thread_replies_total{{route="{route}"}}', 0.0)
    return sum(v for k, v in samples.items() if k.startswith("rcwebhook_thread_replies_total{"))


def posts(rc: RocketChatStandin, hook: str) -> List[Tuple[Optional[str], Dict[str, Any]]]:
    """Return (id answered, body) of every message accepted on `hook`, in order."""
    messages = rc.messages(hook)
    ids = rc.message_ids(hook)
    return list(zip(ids, messages))


def channel_ids(rc: RocketChatStandin, hook: str) -> List[Optional[str]]:
    """Return the ids of the messages posted to the channel itself (no tmid)."""
    return [mid for mid, body in posts(rc, hook) if not body.get("tmid")]


def shows(body: Mapping[str, Any]) -> List[Tuple[str, str]]:
    """Return (alert name, firing|resolved) for each attachment of a message."""
    return [(s.name, s.status) for s in shown_states(body)]


def headline(body: Mapping[str, Any]) -> List[str]:
    """Return a message's text by line, its markdown links (to Alertmanager's alert view) as their text."""
    return re.sub(r"\[([^\[\]]*)\]\([^()\s]*\)", r"\1", body["text"]).split("\n")


def started(spec: Spec) -> str:
    return spec.starts_at.strftime(faults.STARTED_FORMAT)


class Explain:
    """Describes the stand-in's posts, the proxy's exchanges and the programs' logs, for failures."""

    def __init__(self, rc: RocketChatStandin, proxy: Optional[RecordingProxy] = None,
                 managers: Sequence[faults.Alertmanager] = (), logs: Any = None,
                 processes: Sequence[RcwebhookProcess] = ()) -> None:
        self.rc, self.proxy, self.managers, self.logs, self.processes = rc, proxy, managers, logs, processes
        self.began = time.monotonic()

    def __call__(self) -> str:
        out = []
        for hook in sorted(self.rc.all_messages()):
            out.append(f"hook {hook}:")
            for mid, body in posts(self.rc, hook):
                text = body.get("text", "").replace("\n", " | ")
                out.append(f"  id={mid} tmid={body.get('tmid')} {text[:120]} {shows(body)}")
            out.append(f"  requests: {[r['status'] or r['outcome'] for r in self.rc.requests(hook)]}")
        if self.proxy is not None:
            for e in self.proxy.exchanges()[-40:]:
                alerts = ",".join(f"{(a.get('labels') or {}).get('alertname')}:"
                                  f"{faults._alert_status(a, e.body or {})[:3]}" for a in e.alerts())
                out.append(f"  #{e.seq} +{e.sent - self.began:.2f}s [{alerts}] -> {e.status} {e.answer[:100]}")
        if self.logs is not None:
            out.append("rcwebhook log (last 60):\n" + "\n".join(self.logs.lines()[-60:]))
        text = "\n".join(out)
        for manager in self.managers:
            text += manager.explain(15)
        for process in self.processes:
            text += process.explain(40)
        return text


def wait_for_post(rc: RocketChatStandin, hook: str, wanted: Callable[[Dict[str, Any]], bool], what: str,
                  explain: Callable[[], str], timeout: float = STEP, after: int = 0) -> Tuple[int, str, Dict[str, Any]]:
    """Return (index, id, body) of the first message on `hook` from index `after` on that satisfies `wanted`."""
    deadline = time.monotonic() + timeout
    while True:
        seen = posts(rc, hook)
        for index, (mid, body) in enumerate(seen):
            if index >= after and wanted(body):
                assert mid, f"the stand-in answered no id for {body}\n{explain()}"
                return index, mid, body
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"hook {hook!r}: no message {what} within {timeout:g}s\n{explain()}")
        with contextlib.suppress(AssertionError):
            rc.wait_for_messages(hook, len(seen) + 1, min(remaining, 1.0))


def wait_metric(url: str, condition: Callable[[Dict[str, float]], bool], what: str,
                explain: Callable[[], str], timeout: float = STEP) -> Dict[str, float]:
    return wait_until(lambda: (lambda m: m if condition(m) else None)(read_metrics(url)), what, timeout, explain)


def reply_lines(lines: Sequence[str], root: str) -> List[str]:
    return [line for line in lines if SUCCESS in line and f" thread={root})" in line]


def finish_and_check(manager: faults.Alertmanager, proxy: RecordingProxy, rc: RocketChatStandin,
                     explain: Callable[[], str]) -> None:
    """Stop Alertmanager, wait until nothing is in flight, and check every state was posted once, in order."""
    manager.stop()
    wait_until(lambda: proxy.in_flight() == 0, "no request in flight at the proxy", STEP, explain)
    report = faults.check(proxy.exchanges(), faults.collect_posts(rc, {route: [route] for route in ROUTES}),
                          dedup_window=float(AM_SETTINGS["DEDUP_WINDOW"]))
    report.assert_clean(explain())


def assert_thread_layout(rc: RocketChatStandin, hook: str, roots: Sequence[str], explain: Callable[[], str]) -> None:
    """Assert the channel of `hook` holds exactly the messages `roots` (in order), and every other message
    is a reply in the thread of the latest root posted before it."""
    seen = posts(rc, hook)
    assert [mid for mid, body in seen if not body.get("tmid")] == list(roots), explain()
    current = None
    for mid, body in seen:
        if not body.get("tmid"):
            current = mid
            continue
        assert current is not None and body["tmid"] == current, (
            f"reply {mid} on {hook} went to thread {body['tmid']}, not to the newest channel message "
            f"{current}\n{explain()}")


# --- 1. one incident, one thread ---------------------------------------------------------------


def test_an_incident_fires_in_the_channel_and_reminds_and_resolves_in_its_thread(
        rocketchat, start_daemon, logs, stack, am_binary, tmp_path):
    rc = rocketchat
    daemon = start_daemon(**hook_settings(add_hooks(rc), **AM_SETTINGS))
    proxy = stack.enter_context(RecordingProxy(daemon.port))
    am = start_alertmanager(stack, am_binary, tmp_path / "am", proxy.url("am"))
    explain = Explain(rc, proxy, [am], logs)
    start = whole_second(-60)
    disk = Spec("ThreadDiskFull", "critical", "thread1", start)

    am.fire(disk)
    index, root, first = wait_for_post(rc, "critical", lambda m: True, "for the firing alert", explain)
    assert index == 0 and "tmid" not in first, explain()
    assert headline(first) == [":rotating_light: [FIRING:1] ThreadDiskFull service=thread1 — ThreadDiskFull on thread1"], \
        explain()
    assert shows(first) == [("ThreadDiskFull", FIRING)]
    wait_metric(daemon.url, lambda m: m.get("rcwebhook_open_threads") == 1, "one open thread", explain)

    # Alertmanager's reminder (repeat_interval) is a reply in the thread, not a second channel message.
    _, reminder_id, reminder = wait_for_post(rc, "critical", lambda m: "tmid" in m, "replying (a reminder)",
                                             explain, after=1)
    assert reminder["tmid"] == root, explain()
    assert reminder["text"] == first["text"] and shows(reminder) == [("ThreadDiskFull", FIRING)], explain()
    assert reminder_id != root
    wait_until(lambda: reply_lines(logs.lines(), root), f"a success log line saying thread={root}", STEP, explain)
    wait_metric(daemon.url, lambda m: replies_metric(m, "critical") >= 1, "a thread reply counted", explain)
    assert channel_ids(rc, "critical") == [root], explain()

    # The resolution ends the thread, saying how long the incident lasted.
    am.resolve(start + timedelta(seconds=42), disk)
    _, _, resolution = wait_for_post(rc, "critical", lambda m: m["text"].startswith(RESOLVED_HEADLINE),
                                     "resolving ThreadDiskFull", explain)
    assert resolution.get("tmid") == root, explain()
    assert headline(resolution) == [
        ":white_check_mark: [RESOLVED:1] ThreadDiskFull service=thread1 — ThreadDiskFull on thread1 (critical)",
        "Incident resolved after 42s."], explain()
    assert shows(resolution) == [("ThreadDiskFull", RESOLVED)]
    wait_metric(daemon.url, lambda m: m.get("rcwebhook_open_threads") == 0, "the thread ended", explain)
    wait_until(lambda: acknowledged(proxy, {disk.name: RESOLVED}), "the resolution answered 200", STEP, explain)
    assert channel_ids(rc, "critical") == [root], explain()

    # Firing again later is a new incident: a new channel message, not a reply in the old thread.
    again = Spec(disk.name, "critical", "thread1", whole_second(-1))
    count = len(rc.messages("critical"))
    am.fire(again)
    _, new_root, refired = wait_for_post(rc, "critical", lambda m: m["text"].startswith(":rotating_light:"),
                                         "firing again", explain, after=count)
    assert "tmid" not in refired and new_root != root, explain()
    assert [s.started for s in shown_states(refired)] == [started(again)], explain()
    assert "Incident" not in refired["text"]
    wait_metric(daemon.url, lambda m: m.get("rcwebhook_open_threads") == 1, "the new incident's thread open",
                explain)

    finish_and_check(am, proxy, rc, explain)
    assert_thread_layout(rc, "critical", [root, new_root], explain)
    replies = [body for _, body in posts(rc, "critical") if body.get("tmid")]
    assert len([r for r in replies if r["tmid"] == root]) >= 2, explain()
    # Every reply is counted and logged with its thread; no channel message is.
    wait_metric(daemon.url, lambda m: replies_metric(m) == len(replies) == replies_metric(m, "critical"),
                f"rcwebhook_thread_replies_total == {len(replies)}", explain)
    # The counter is raised just before the line is logged, under the same lock: wait for the line too.
    def critical_successes() -> Optional[List[str]]:
        found = [line for line in logs.lines() if SUCCESS in line and "route=critical" in line]
        return found if len([line for line in found if " thread=" in line]) >= len(replies) else None

    lines = wait_until(critical_successes, f"{len(replies)} success lines saying thread=", STEP, explain)
    assert len([line for line in lines if " thread=" in line]) == len(replies), explain()
    assert len(reply_lines(lines, root)) == len([r for r in replies if r["tmid"] == root]), explain()
    for hook in ("warning", "info"):
        assert rc.messages(hook) == []


# --- 2. a restart or kill -9 between firing and resolving ----------------------------------------


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_the_thread_survives_a_restart_between_firing_and_resolving(stop, stack, am_binary, tmp_path):
    rc = stack.enter_context(RocketChatStandin())
    urls = add_hooks(rc)
    port = free_port()
    proxy = stack.enter_context(RecordingProxy(port))
    state_dir = tmp_path / "state"
    workdir = tmp_path / "rcwebhook"
    workdir.mkdir()
    daemon = RcwebhookProcess(workdir, hook_settings(urls, STATE_DIR=str(state_dir), **AM_SETTINGS), port)
    stack.callback(daemon.stop)
    daemon.start()
    am = start_alertmanager(stack, am_binary, tmp_path / "am", proxy.url("am"))
    explain = Explain(rc, proxy, [am], processes=[daemon])
    start = whole_second(-90)
    disk = Spec("RestartDiskFull", "critical", "thread2", start)

    am.fire(disk)
    _, root, first = wait_for_post(rc, "critical", lambda m: True, "for the firing alert", explain)
    assert "tmid" not in first, explain()
    _, _, reminder = wait_for_post(rc, "critical", lambda m: "tmid" in m, "replying (a reminder)", explain)
    assert reminder["tmid"] == root, explain()
    # Stop it only once Alertmanager has its answer and nothing is in flight: then nothing is owed.
    wait_until(lambda: proxy.in_flight() == 0 and len([e for e in proxy.exchanges() if e.ok]) >= 2,
               "the firing and a reminder answered 200, nothing in flight", STEP, explain)
    if stop == "sigterm":
        assert daemon.process is not None
        daemon.process.terminate()
        assert daemon.process.wait(15) == 0, explain()
    else:
        daemon.kill9()
    daemon.start()

    # The thread came back from STATE_DIR; reminders after the restart are replies in it too.
    samples = read_metrics(daemon.url)
    assert samples.get("rcwebhook_open_threads") == 1, f"{samples}\n{explain()}"
    replies_before = len(rc.thread("critical", root))
    wait_until(lambda: reply_lines(daemon.stderr().splitlines(), root), "a reminder posted in the thread by the "
               "restarted rcwebhook", STEP, explain)
    assert len(rc.thread("critical", root)) > replies_before, explain()

    am.resolve(start + timedelta(seconds=42), disk)
    _, _, resolution = wait_for_post(rc, "critical", lambda m: m["text"].startswith(RESOLVED_HEADLINE),
                                     "resolving RestartDiskFull", explain)
    assert resolution.get("tmid") == root, explain()
    assert resolution["text"].split("\n")[1:] == ["Incident resolved after 42s."], explain()
    wait_metric(daemon.url, lambda m: m.get("rcwebhook_open_threads") == 0, "the thread ended", explain)
    wait_until(lambda: acknowledged(proxy, {disk.name: RESOLVED}), "the resolution answered 200", STEP, explain)

    again = Spec(disk.name, "critical", "thread2", whole_second(-1))
    count = len(rc.messages("critical"))
    am.fire(again)
    _, new_root, refired = wait_for_post(rc, "critical", lambda m: m["text"].startswith(":rotating_light:"),
                                         "firing again", explain, after=count)
    assert "tmid" not in refired and new_root != root, explain()
    wait_metric(daemon.url, lambda m: m.get("rcwebhook_open_threads") == 1, "the new incident's thread", explain)

    finish_and_check(am, proxy, rc, explain)
    assert_thread_layout(rc, "critical", [root, new_root], explain)
    assert " ERROR " not in daemon.stderr(), explain()


# --- 3. a group that gains an alert -------------------------------------------------------------


def test_a_new_alert_of_the_group_is_shown_in_the_channel_and_the_thread_moves_to_it(
        rocketchat, start_daemon, logs, stack, am_binary, tmp_path):
    rc = rocketchat
    daemon = start_daemon(**hook_settings(add_hooks(rc), **AM_SETTINGS))
    proxy = stack.enter_context(RecordingProxy(daemon.port))
    am = start_alertmanager(stack, am_binary, tmp_path / "am", proxy.url("am"))
    explain = Explain(rc, proxy, [am], logs)
    start = whole_second(-120)
    disk = Spec("GrowDiskFull", "critical", "thread3", start)
    slow = Spec("GrowDiskSlow", "critical", "thread3", start + timedelta(seconds=10))

    am.fire(disk)
    _, root1, first = wait_for_post(rc, "critical", lambda m: True, "for the first alert", explain)
    assert "tmid" not in first and shows(first) == [("GrowDiskFull", FIRING)], explain()
    wait_until(lambda: acknowledged(proxy, {disk.name: FIRING}), "the first alert answered 200", STEP, explain)

    am.fire(slow)
    _, root2, grown = wait_for_post(rc, "critical", lambda m: ("GrowDiskSlow", FIRING) in shows(m),
                                    "showing the new alert", explain)
    # The new alert is announced in the channel, with that alert only; the thread moves to it.
    assert "tmid" not in grown and root2 != root1, explain()
    assert shows(grown) == [("GrowDiskSlow", FIRING)], explain()
    assert headline(grown) == [":rotating_light: [FIRING:1] GrowDiskSlow service=thread3 — GrowDiskSlow on thread3"], \
        explain()
    samples = wait_metric(daemon.url, lambda m: m.get("rcwebhook_open_threads") == 1, "one open thread", explain)
    assert samples["rcwebhook_open_threads"] == 1

    # The reminders of both alerts are replies in the thread of the newest channel message.
    _, _, reminder = wait_for_post(rc, "critical", lambda m: m.get("tmid") and len(shows(m)) == 2,
                                   "reminding of both alerts", explain)
    assert reminder["tmid"] == root2, explain()
    assert sorted(shows(reminder)) == [("GrowDiskFull", FIRING), ("GrowDiskSlow", FIRING)], explain()

    # One alert resolves: a reply, and the incident goes on (no note).
    am.resolve(start + timedelta(seconds=30), disk)
    _, _, partial = wait_for_post(rc, "critical", lambda m: ("GrowDiskFull", RESOLVED) in shows(m),
                                  "resolving GrowDiskFull", explain)
    assert partial.get("tmid") == root2 and shows(partial) == [("GrowDiskFull", RESOLVED)], explain()
    assert headline(partial) == [
        ":white_check_mark: [RESOLVED:1] GrowDiskFull service=thread3 — GrowDiskFull on thread3 (critical)"], explain()
    wait_until(lambda: acknowledged(proxy, {disk.name: RESOLVED}), "GrowDiskFull's resolution answered 200",
               STEP, explain)
    assert read_metrics(daemon.url).get("rcwebhook_open_threads") == 1, explain()

    # The last one resolves: the incident lasted from the first start to the last end.
    am.resolve(start + timedelta(seconds=75), slow)
    _, _, last = wait_for_post(rc, "critical", lambda m: ("GrowDiskSlow", RESOLVED) in shows(m),
                               "resolving GrowDiskSlow", explain)
    assert last.get("tmid") == root2, explain()
    assert headline(last) == [
        ":white_check_mark: [RESOLVED:1] GrowDiskSlow service=thread3 — GrowDiskSlow on thread3 (critical)",
        "Incident resolved after 1m 15s."], explain()
    wait_metric(daemon.url, lambda m: m.get("rcwebhook_open_threads") == 0, "the thread ended", explain)
    wait_until(lambda: acknowledged(proxy, {slow.name: RESOLVED}), "the last resolution answered 200", STEP,
               explain)

    finish_and_check(am, proxy, rc, explain)
    assert_thread_layout(rc, "critical", [root1, root2], explain)
    replies = [body for _, body in posts(rc, "critical") if body.get("tmid")]
    assert replies_metric(read_metrics(daemon.url), "critical") == len(replies), explain()
    wait_until(lambda: len(reply_lines(logs.lines(), root2)) >= len(rc.thread("critical", root2)),
               f"a success line for each reply in thread {root2}", STEP, explain)
    assert len(reply_lines(logs.lines(), root2)) == len(rc.thread("critical", root2)), explain()


# --- 4. one group, two severities ---------------------------------------------------------------


def test_each_severity_hook_of_a_mixed_group_has_its_own_thread(
        rocketchat, start_daemon, logs, stack, am_binary, tmp_path):
    rc = rocketchat
    daemon = start_daemon(**hook_settings(add_hooks(rc), **AM_SETTINGS))
    proxy = stack.enter_context(RecordingProxy(daemon.port))
    am = start_alertmanager(stack, am_binary, tmp_path / "am", proxy.url("am"))
    explain = Explain(rc, proxy, [am], logs)
    start = whole_second(-100)
    down = Spec("MixedApiDown", "critical", "thread4", start)
    latency = Spec("MixedLatency", "warning", "thread4", start + timedelta(seconds=20))

    am.fire(down, latency)
    roots = {}
    for hook, spec in (("critical", down), ("warning", latency)):
        _, roots[hook], first = wait_for_post(rc, hook, lambda m: True, f"firing {spec.name}", explain)
        assert "tmid" not in first and shows(first) == [(spec.name, FIRING)], explain()
    assert roots["critical"] != roots["warning"]
    wait_metric(daemon.url, lambda m: m.get("rcwebhook_open_threads") == 2, "two open threads", explain)
    for hook, spec in (("critical", down), ("warning", latency)):
        _, _, reminder = wait_for_post(rc, hook, lambda m: "tmid" in m, f"reminding of {spec.name}", explain)
        assert reminder["tmid"] == roots[hook] and shows(reminder) == [(spec.name, FIRING)], explain()

    am.resolve(start + timedelta(seconds=50), down, latency)
    for hook, spec, lasted in (("critical", down, "50s"), ("warning", latency, "30s")):
        _, _, resolution = wait_for_post(rc, hook, lambda m: m["text"].startswith(RESOLVED_HEADLINE),
                                         f"resolving {spec.name}", explain)
        assert resolution.get("tmid") == roots[hook], explain()
        assert resolution["text"].split("\n")[1:] == [f"Incident resolved after {lasted}."], explain()
    wait_metric(daemon.url, lambda m: m.get("rcwebhook_open_threads") == 0, "both threads ended", explain)
    wait_until(lambda: acknowledged(proxy, {down.name: RESOLVED, latency.name: RESOLVED}),
               "the resolutions answered 200", STEP, explain)

    finish_and_check(am, proxy, rc, explain)
    samples = read_metrics(daemon.url)
    for hook in ("critical", "warning"):
        assert_thread_layout(rc, hook, [roots[hook]], explain)
        assert replies_metric(samples, hook) == len(rc.thread(hook, roots[hook])), explain()
        wait_until(lambda: len(reply_lines(logs.lines(), roots[hook])) >= len(rc.thread(hook, roots[hook])),
                   f"a success line for each reply in thread {roots[hook]}", STEP, explain)
        assert len(reply_lines(logs.lines(), roots[hook])) == len(rc.thread(hook, roots[hook])), explain()
    assert rc.messages("info") == []


# --- 5. an older Rocket.Chat without separateResponse ---------------------------------------------


def test_an_older_rocketchat_gets_every_state_without_threads_and_one_info_line(start_daemon, logs):
    with RocketChatStandin(separate_response=False) as rc:
        # One hook for every route (critical and info fall back to the warning URL): one courier.
        daemon = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=rc.add_hook("old"), DEDUP_WINDOW="0",
                              ROCKETCHAT_RATE_LIMIT="0")
        explain = Explain(rc, logs=logs)
        s = whole_second(-300)
        disk_f = alert_item("OldDiskFull", "critical", FIRING, s, service="old")
        disk_r = alert_item("OldDiskFull", "critical", RESOLVED, s, s + timedelta(seconds=40), service="old")
        slow_f = alert_item("OldLatency", "warning", FIRING, s + timedelta(seconds=5), service="old")
        slow_r = alert_item("OldLatency", "warning", RESOLVED, s + timedelta(seconds=5), s + timedelta(seconds=60),
                            service="old")
        again_f = alert_item("OldDiskFull", "critical", FIRING, whole_second(-2), service="old")
        other_f = alert_item("OldQueue", "info", FIRING, s, service="other")
        other_r = alert_item("OldQueue", "info", RESOLVED, s, s + timedelta(seconds=9), service="other")
        steps = [
            ("fires", [disk_f], "old", [("OldDiskFull", FIRING)]),
            ("reminds", [disk_f], "old", [("OldDiskFull", FIRING)]),
            ("gains an alert", [disk_f, slow_f], "old", [("OldLatency", FIRING)]),
            ("another group fires", [other_f], "other", [("OldQueue", FIRING)]),
            ("reminds again", [disk_f, slow_f], "old", [("OldDiskFull", FIRING), ("OldLatency", FIRING)]),
            ("one resolves", [disk_r, slow_f], "old", [("OldDiskFull", RESOLVED)]),
            ("the other group resolves", [other_r], "other", [("OldQueue", RESOLVED)]),
            ("the last resolves", [slow_r], "old", [("OldLatency", RESOLVED)]),
            ("fires again", [again_f], "old", [("OldDiskFull", FIRING)]),
        ]
        for what, alerts, group, expected in steps:
            count = len(rc.messages("old"))
            status, _, answer = daemon.post_json(notification(alerts, group))
            assert status == 200, f"{what}: {status} {answer}\n{explain()}"
            new = rc.messages("old")[count:]
            assert [shows(m) for m in new] == [expected], f"{what}: posted {new}\n{explain()}"

        assert [r for r in rc.requests("old") if "tmid" in (r["body"] or {})] == [], explain()
        assert all(r["status"] == 200 for r in rc.requests("old")), explain()
        assert "Incident resolved" not in json.dumps(rc.messages("old"))
        too_old = [r for r in logs.records if "too old for separateResponse" in r.getMessage()]
        assert len(too_old) == 1 and too_old[0].levelname == "INFO", explain()
        assert "threads" in too_old[0].getMessage()
        samples = read_metrics(daemon.url)
        assert replies_metric(samples) == 0 and samples.get("rcwebhook_open_threads") == 0, samples
        assert not [line for line in logs.lines() if " thread=" in line], explain()


# --- 6. a corrupt, unwritable or locked state database ---------------------------------------------


def one_hook(rc: RocketChatStandin, **extra: str) -> Dict[str, str]:
    """Return settings for one stand-in hook, "critical", that every route uses; pacing off."""
    return {"ROCKETCHAT_WEBHOOK_CRITICAL": rc.add_hook("critical"), "DEFAULT_SEVERITY": "critical",
            "ROCKETCHAT_RATE_LIMIT": "0", **extra}


def start_process(stack: contextlib.ExitStack, tmp_path: Path, values: Mapping[str, str],
                  name: str = "rcwebhook") -> RcwebhookProcess:
    workdir = tmp_path / name
    workdir.mkdir()
    process = RcwebhookProcess(workdir, values, free_port())
    stack.callback(process.stop)
    process.start()
    return process


def log_lines(process: RcwebhookProcess, pattern: str) -> List[str]:
    return [line for line in process.stderr().splitlines() if re.search(pattern, line)]


def logged(process: RcwebhookProcess, pattern: str, explain: Callable[[], str]) -> List[str]:
    """Wait until the daemon's log holds a line matching `pattern`, and return every such line. Its log is
    written by a thread of its own, so a line can reach the file after the answer or post it tells of."""
    return wait_until(lambda: log_lines(process, pattern), f"a log line matching {pattern!r}", STEP, explain)


def firing_payload(name: str, group: str, starts: datetime, severity: str = "critical") -> Dict[str, Any]:
    return notification([alert_item(name, severity, FIRING, starts, service=group)], group)


def resolved_payload(name: str, group: str, starts: datetime, ends: datetime,
                     severity: str = "critical") -> Dict[str, Any]:
    return notification([alert_item(name, severity, RESOLVED, starts, ends, service=group)], group)


def damaged_database(path: Path) -> None:
    """Write a real SQLite database at `path`, then overwrite one of its b-tree pages with garbage."""
    db = sqlite3.connect(str(path))
    db.execute("CREATE TABLE filler (x TEXT)")
    db.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,) for _ in range(200)])
    db.commit()
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(path, "r+b") as handle:
        handle.seek(page * 3)
        handle.write(b"\xde\xad\xbe\xef" * (page // 4))


@pytest.mark.parametrize("damage", ["garbage", "damaged-pages"])
def test_a_corrupt_state_database_is_moved_aside_and_a_new_one_keeps_the_threads(damage, stack, tmp_path):
    rc = stack.enter_context(RocketChatStandin())
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    database = state_dir / "state.sqlite3"
    if damage == "garbage":
        database.write_bytes(os.urandom(8192).replace(b"SQLite", b"sqlite"))
    else:
        damaged_database(database)
    values = one_hook(rc, STATE_DIR=str(state_dir))
    daemon = start_process(stack, tmp_path, values)
    explain = Explain(rc, processes=[daemon])
    starts = whole_second(-30)

    assert post_once(daemon.url + "/webhook", firing_payload("CorruptDiskFull", "corrupt", starts)) == 200, explain()
    root = rc.message_ids("critical")[0]
    moved = logged(daemon, r" ERROR The state database .*state\.sqlite3 is corrupt .*: moved it aside to "
                           r"state\.sqlite3\.corrupt-\d+ and started a new one", explain)
    assert len(moved) == 1, explain()
    aside = sorted(p.name for p in state_dir.iterdir() if p.name.startswith("state.sqlite3.corrupt-"))
    assert len(aside) == 1 and aside[0] in moved[0], (aside, explain())
    assert len(log_lines(daemon, " ERROR ")) == 1, explain()

    def saved_roots() -> List[Tuple[str]]:
        with contextlib.closing(sqlite3.connect(str(database), timeout=5)) as db:
            return db.execute("SELECT root FROM thread").fetchall()

    wait_until(lambda: saved_roots() == [(root,)], "the thread saved in the new database", STEP, explain)

    # The new database works: a restart keeps the thread.
    daemon.stop()
    daemon.start()
    assert read_metrics(daemon.url).get("rcwebhook_open_threads") == 1, explain()
    status = post_once(daemon.url + "/webhook",
                       resolved_payload("CorruptDiskFull", "corrupt", starts, starts + timedelta(seconds=20)))
    assert status == 200, explain()
    _, resolution = posts(rc, "critical")[-1]
    assert resolution.get("tmid") == root, explain()
    assert resolution["text"].split("\n")[1:] == ["Incident resolved after 20s."], explain()
    logged(daemon, rf"{re.escape(SUCCESS)} .* thread={re.escape(root)}\)", explain)  # the resolution's reply
    assert " ERROR " not in daemon.stderr(), explain()  # the second start found a sound database
    assert sorted(p.name for p in state_dir.iterdir() if p.name.startswith("state.sqlite3.corrupt-")) == aside


@pytest.mark.parametrize("where", ["under-a-regular-file", "a-regular-file"])
def test_an_unwritable_state_dir_costs_nothing_but_one_error(where, stack, tmp_path):
    rc = stack.enter_context(RocketChatStandin())
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file\n")
    state_dir = blocker / "state" if where == "under-a-regular-file" else blocker
    values = one_hook(rc, STATE_DIR=str(state_dir), DEDUP_WINDOW="0")
    daemon = start_process(stack, tmp_path, values)
    explain = Explain(rc, processes=[daemon])
    starts = whole_second(-30)
    firing = firing_payload("NoStateDiskFull", "nostate", starts)

    for payload in (firing, firing, resolved_payload("NoStateDiskFull", "nostate", starts,
                                                     starts + timedelta(seconds=5))):
        began = time.monotonic()
        assert post_once(daemon.url + "/webhook", payload) == 200, explain()
        assert time.monotonic() - began < 2.0, explain()
    seen = posts(rc, "critical")
    assert [shows(body) for _, body in seen] == [[("NoStateDiskFull", FIRING)]] * 2 + [[("NoStateDiskFull",
                                                                                          RESOLVED)]], explain()
    # Threads still work, in memory.
    root = seen[0][0]
    assert [body.get("tmid") for _, body in seen] == [None, root, root], explain()
    errors = logged(daemon, " ERROR ", explain)
    assert len(errors) == 1, explain()
    assert re.search(r"The state database in STATE_DIR=.* cannot be opened: .*; going on with state in memory "
                     r"only", errors[0]), errors
    samples = read_metrics(daemon.url)
    assert samples.get("rcwebhook_state_errors_total", 0) > 0, samples
    assert samples.get("rcwebhook_state_database_bytes") == 0, samples
    assert blocker.read_text() == "a regular file\n"


def test_a_locked_state_database_neither_delays_nor_refuses_alerts(stack, tmp_path):
    rc = stack.enter_context(RocketChatStandin())
    state_dir = tmp_path / "state"
    values = one_hook(rc, STATE_DIR=str(state_dir), DEDUP_WINDOW="0")
    daemon = start_process(stack, tmp_path, values)
    explain = Explain(rc, processes=[daemon])
    starts = whole_second(-30)
    url = daemon.url + "/webhook"

    began = time.monotonic()
    assert post_once(url, firing_payload("LockedFirst", "locked1", starts)) == 200, explain()
    normal = time.monotonic() - began
    assert " ERROR " not in daemon.stderr(), explain()

    # Another process holds the database's write lock (this test's own connection; rcwebhook is a child).
    # rcwebhook's writes of the post above may still be queued; they wait for this lock like the ones below.
    holder = sqlite3.connect(str(state_dir / "state.sqlite3"), isolation_level=None, timeout=10)
    stack.callback(holder.close)
    holder.execute("BEGIN EXCLUSIVE")
    stack.callback(lambda: holder.in_transaction and holder.execute("ROLLBACK"))

    timings = []
    for payload in (firing_payload("LockedSecond", "locked2", starts), firing_payload("LockedFirst", "locked1", starts),
                    resolved_payload("LockedFirst", "locked1", starts, starts + timedelta(seconds=7))):
        began = time.monotonic()
        assert post_once(url, payload, timeout=15) == 200, explain()
        timings.append(time.monotonic() - began)
    # Writes wait in the state writer's queue, never on the request's path.
    assert max(timings) < 1.0, f"answers took {timings} (before the lock: {normal:.3f}s)\n{explain()}"
    seen = posts(rc, "critical")
    assert [shows(body) for _, body in seen] == [[("LockedFirst", FIRING)], [("LockedSecond", FIRING)],
                                                 [("LockedFirst", FIRING)], [("LockedFirst", RESOLVED)]], explain()
    root = seen[0][0]
    assert [body.get("tmid") for _, body in seen] == [None, None, root, root], explain()
    errors = wait_until(lambda: log_lines(daemon, " ERROR "), "the error about the lock", STEP, explain)
    assert len(errors) == 1 and "database is locked" in errors[0], explain()
    assert read_metrics(daemon.url).get("rcwebhook_state_errors_total", 0) > 0


def test_a_database_locked_only_while_rcwebhook_starts_still_gives_back_its_threads(stack, tmp_path):
    rc = stack.enter_context(RocketChatStandin())
    state_dir = tmp_path / "state"
    daemon = start_process(stack, tmp_path, one_hook(rc, STATE_DIR=str(state_dir)))
    explain = Explain(rc, processes=[daemon])
    starts = whole_second(-30)
    url = daemon.url + "/webhook"
    firing = firing_payload("StartLockDiskFull", "startlock", starts)
    assert post_once(url, firing) == 200, explain()
    root = rc.message_ids("critical")[0]

    def saved_roots() -> List[Tuple[str]]:
        with contextlib.closing(sqlite3.connect(str(state_dir / "state.sqlite3"), timeout=5)) as db:
            return db.execute("SELECT root FROM thread").fetchall()

    wait_until(lambda: saved_roots() == [(root,)], "the thread saved", STEP, explain)
    daemon.stop()

    # A backup or an administrator's sqlite3 shell holds the write lock while rcwebhook starts, then lets go.
    holder = sqlite3.connect(str(state_dir / "state.sqlite3"), isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        daemon.start()
    finally:
        holder.close()
    count = len(rc.messages("critical"))
    assert post_once(url, firing) == 200, explain()  # Alertmanager's retry of a state posted before the restart
    assert post_once(url, resolved_payload("StartLockDiskFull", "startlock", starts,
                                           starts + timedelta(seconds=12))) == 200, explain()
    after = [(body.get("tmid"), shows(body)) for _, body in posts(rc, "critical")[count:]]
    assert after == [(root, [("StartLockDiskFull", RESOLVED)])], f"{after}\n{explain()}"


# --- 7. posts merge only when they go to the same place ----------------------------------------------


def test_states_for_a_thread_and_for_the_channel_waiting_at_once_are_never_merged(rocketchat, start_daemon, logs):
    rc = rocketchat
    daemon = start_daemon(**one_hook(rc, DEDUP_WINDOW="0"))
    deliverer = daemon.server.deliverer
    explain = Explain(rc, logs=logs)
    s = whole_second(-200)

    def firing(name: str) -> Dict[str, Any]:
        return notification([alert_item(name, "critical", FIRING, s, service=name.lower())], name.lower())

    def resolved(name: str) -> Dict[str, Any]:
        return notification([alert_item(name, "critical", RESOLVED, s, s + timedelta(seconds=60),
                                         service=name.lower())], name.lower())

    def post(payload: Dict[str, Any]) -> None:
        status, _, answer = daemon.post_json(payload)
        assert status == 200, f"{status} {answer}\n{explain()}"

    def all_at_once(blocker: Dict[str, Any], payloads: List[Dict[str, Any]]) -> int:
        """Hold the hook with a stalled post of `blocker`, have `payloads` arrive in this order while it is held,
        then let it go; return the index of the first message posted after the stall."""
        rc.fail_next("critical", 1, mode="stall")
        first = len(rc.messages("critical"))
        requests = len(rc.requests("critical"))
        answers: List[int] = []
        senders = []
        for number, payload in enumerate([blocker] + payloads):
            sender = threading.Thread(target=lambda p=payload: answers.append(daemon.post_json(p)[0]), daemon=True)
            sender.start()
            senders.append(sender)
            if number == 0:
                rc.wait_for_requests("critical", requests + 1, STEP)  # the blocker is stalled at Rocket.Chat
            wait_until(lambda n=number: deliverer.pending_count() == n + 1, f"{number + 1} states waiting", STEP,
                       explain)
        rc.release_stalled()
        for sender in senders:
            sender.join(STEP)
        assert answers == [200] * len(senders), f"{answers}\n{explain()}"
        return first

    def after_release(first: int, blocker: str) -> List[Tuple[Optional[str], List[Tuple[str, str]]]]:
        """Return (tmid, alerts shown) of each post made after the stall but the blocker's own post, which
        goes alone to the channel (sent again at once, or after the others)."""
        made = [(body.get("tmid"), sorted(shows(body))) for _, body in posts(rc, "critical")[first:]]
        assert made.count((None, [(blocker, FIRING)])) == 1, f"{made}\n{explain()}"
        return [post for post in made if post != (None, [(blocker, FIRING)])]

    # Open threads: A and D fired (each its own channel message and thread).
    post(firing("MergeA"))
    post(firing("MergeD"))
    root_a, root_d = rc.message_ids("critical")
    # Round 1, thread first: A's resolution (thread A), B and C fire (channel), D's reminder (thread D).
    first = all_at_once(firing("MergeX"), [resolved("MergeA"), firing("MergeB"), firing("MergeC"), firing("MergeD")])
    assert after_release(first, "MergeX") == [
        (root_a, [("MergeA", RESOLVED)]),
        (None, [("MergeB", FIRING), ("MergeC", FIRING)]),  # both to the channel, waiting together: merged
        (root_d, [("MergeD", FIRING)]),
    ], explain()
    resolution = rc.thread("critical", root_a)[-1]
    assert resolution["text"].split("\n")[1:] == ["Incident resolved after 1m."], explain()
    [root_bc] = [mid for mid, body in posts(rc, "critical")[first:] if "MergeB" in body["text"]]

    # Round 2, channel first: E fires (channel), D resolves (thread D), F fires (channel), B's reminder (thread).
    first = all_at_once(firing("MergeY"), [firing("MergeE"), resolved("MergeD"), firing("MergeF"), firing("MergeB")])
    assert after_release(first, "MergeY") == [
        (None, [("MergeE", FIRING)]),
        (root_d, [("MergeD", RESOLVED)]),
        (None, [("MergeF", FIRING)]),
        (root_bc, [("MergeB", FIRING)]),
    ], explain()

    # Every post that reached Rocket.Chat (the stalled ones too): a reply carries only its thread's group.
    group_of_root = {root_a: "MergeA", root_d: "MergeD", root_bc: "MergeB"}
    for request in rc.requests("critical"):
        body = request["body"] or {}
        if body.get("tmid"):
            assert {name for name, _ in shows(body)} == {group_of_root[body["tmid"]]}, explain()
            assert body["text"].count("\n:") == 0, explain()  # one headline: one group
    replies = [body for _, body in posts(rc, "critical") if body.get("tmid")]
    samples = read_metrics(daemon.url)
    assert replies_metric(samples, "critical") == len(replies) == 4, explain()
    # Open: B and C (which share their merged message), X, E, F, Y; A and D ended.
    assert samples.get("rcwebhook_open_threads") == 6, f"{samples}\n{explain()}"
    assert len([line for line in logs.lines() if SUCCESS in line and " thread=" in line]) == 4, explain()
