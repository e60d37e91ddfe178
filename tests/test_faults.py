"""The fault suite: rcwebhook under Rocket.Chat outages, HA pairs, kill -9, reloads, storms and
out-of-order copies.

Every scenario puts a recording proxy (tests/faults.py) between Alertmanager and rcwebhook and
checks one invariant with one checker, faults.check():

- every alert state Alertmanager sent is posted exactly once to its route, in order, or every
  request carrying it got a non-2xx answer;
- the channel never ends showing FIRING for an alert Alertmanager resolved.

An alert state is (alert, firing|resolved, startsAt, and endsAt once resolved).  Each scenario
prints one `FAULT-SUMMARY ...` line (run with `pytest -s` to see them).  Alertmanager groups by
`service` with group_wait and group_interval of 1 s; every wait is on a condition with a deadline.
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence

import pytest

from tests import faults
from tests.conftest import require_program
from tests.faults import (FIRING, RESOLVED, Exchange, Post, RecordingProxy, RcwebhookProcess, Sender, Shown, Spec,
                          acknowledged, alert_item, notification, refused, send, wait_quiet, wait_until,
                          whole_second)
from tests.rocketchat_standin import RocketChatStandin

ROUTES = ("critical", "warning", "info")
STEP_TIMEOUT = 20.0  # one step of a scenario (Alertmanager's 10 s notify timeout plus its retries)
SETTLE_TIMEOUT = 30.0
QUIET = 1.0  # seconds without any request at the proxy or the stand-in before the final check

# Short deadlines so that a 503 comes quickly; pacing off unless a scenario is about it.
FAST = {"DELIVERY_DEADLINE": "2", "DELIVERY_TIMEOUT": "1", "ROCKETCHAT_RATE_LIMIT": "0", "DEDUP_WINDOW": "60"}


# --- the harness ------------------------------------------------------------------------------


class Harness:
    """Everything one scenario starts, stopped in reverse order afterwards."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.began = time.monotonic()
        self.cleanups: List[Callable[[], None]] = []
        self.standins: List[RocketChatStandin] = []
        self.proxy_: Optional[RecordingProxy] = None
        self.processes: List[RcwebhookProcess] = []
        self.managers: List[faults.Alertmanager] = []

    def close(self) -> None:
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception:  # noqa: BLE001 - clean up everything, whatever failed first
                pass

    def standin(self, **options: Any) -> RocketChatStandin:
        standin = RocketChatStandin(**options).start()
        self.cleanups.append(standin.stop)
        self.standins.append(standin)
        return standin

    def proxy(self, target_port: int) -> RecordingProxy:
        proxy = RecordingProxy(target_port).__enter__()
        self.cleanups.append(proxy.stop)
        self.proxy_ = proxy
        return proxy

    def rcwebhook(self, values: Mapping[str, str], port: int = 0, name: str = "rcwebhook") -> RcwebhookProcess:
        workdir = self.tmp_path / name
        workdir.mkdir()
        process = RcwebhookProcess(workdir, values, port)
        self.cleanups.append(process.stop)
        self.processes.append(process)
        process.start()
        return process

    def alertmanager(self, binary: str, receiver_url: str, name: str = "Alertmanager") -> faults.Alertmanager:
        manager = faults.Alertmanager(binary, self.tmp_path / name.lower(), receiver_url, name)
        return self.start_manager(manager)

    def start_manager(self, manager: faults.Alertmanager) -> faults.Alertmanager:
        self.cleanups.append(manager.stop)
        self.managers.append(manager)
        manager.start()
        return manager

    def explain(self, hooks: Sequence[str] = ()) -> Callable[[], str]:
        """Return a function describing proxy, stand-in, Alertmanager and rcwebhook, for failure messages."""
        def describe() -> str:
            lines = []
            if self.proxy_ is not None:
                for e in self.proxy_.exchanges()[-60:]:
                    alerts = ",".join(f"{(a.get('labels') or {}).get('alertname')}:"
                                      f"{faults._alert_status(a, e.body or {})[:3]}" for a in e.alerts())
                    lines.append(f"  #{e.seq} {e.source} +{e.sent - self.began:.2f}s [{alerts}] -> "
                                 f"{e.status} {e.answer[:160].strip()}")
            out = "proxy exchanges (last 60):\n" + "\n".join(lines)
            for standin in self.standins:
                for hook in hooks:
                    try:
                        statuses = [r["status"] or r["outcome"] for r in standin.requests(hook)]
                    except KeyError:
                        continue
                    out += f"\nstand-in {hook}: requests {statuses}"
            for manager in self.managers:
                out += manager.explain(15)
            for process in self.processes:
                out += process.explain(30)
            return out
        return describe

    def report(self, scenario: str, standin: RocketChatStandin, hooks_by_route: Mapping[str, Sequence[str]],
               dedup_window: float = 60.0) -> faults.Report:
        """Check the invariant over what the proxy saw and the stand-in posted; print the summary line."""
        assert self.proxy_ is not None
        posts = faults.collect_posts(standin, hooks_by_route)
        hooks = [h for hs in hooks_by_route.values() for h in hs]
        report = faults.check(self.proxy_.exchanges(), posts, dedup_window=dedup_window,
                              http429=faults.count_429(standin, hooks))
        report.t0 = self.began  # the same time base as explain()
        print("\n" + report.summary(scenario, time.monotonic() - self.began), flush=True)
        return report


@pytest.fixture
def harness(tmp_path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.close()


@pytest.fixture
def am_binary() -> str:
    return require_program("prometheus-alertmanager")


def add_hooks(standin: RocketChatStandin, suffix: str = "") -> Dict[str, str]:
    """Add one hook per route named `<route><suffix>`; return route -> webhook URL."""
    return {route: standin.add_hook(route + suffix) for route in ROUTES}


def hook_settings(urls: Mapping[str, str], **extra: str) -> Dict[str, str]:
    return {**{f"ROCKETCHAT_WEBHOOK_{route.upper()}": url for route, url in urls.items()}, **extra}


SAME_HOOKS = {route: [route] for route in ROUTES}


def shows(standin: RocketChatStandin, hook: str, title_prefix: str) -> bool:
    """Return whether any request that reached `hook` carried an attachment titled `title_prefix`..."""
    return any(a.get("title", "").startswith(title_prefix)
               for r in standin.requests(hook) for a in ((r.get("body") or {}).get("attachments") or []))


def posted(standin: RocketChatStandin, hook: str, title_prefix: str) -> bool:
    return any(a.get("title", "").startswith(title_prefix)
               for m in standin.messages(hook) for a in m.get("attachments") or [])


# --- the checker itself -------------------------------------------------------------------------


class TestChecker:
    """faults.check() on hand-made records: each kind of breach is caught, and only breaches are."""

    S = whole_second(-600)
    E = S + timedelta(seconds=100)
    STARTED = S.strftime(faults.STARTED_FORMAT)

    def exchange(self, seq: int, at: float, status: int, *alerts: Dict[str, Any], wall: Optional[float] = None,
                 source: str = "am") -> Exchange:
        return Exchange(seq, source, at, wall if wall is not None else self.E.timestamp() + at,
                        notification(list(alerts), "g"), status, at + 0.5)

    def firing(self, name: str = "A", severity: str = "critical") -> Dict[str, Any]:
        return alert_item(name, severity, FIRING, self.S)

    def resolved(self, name: str = "A", severity: str = "critical") -> Dict[str, Any]:
        return alert_item(name, severity, RESOLVED, self.S, self.E)

    def post(self, at: float, index: int, *shown: Shown, hook: str = "critical") -> Post:
        return Post(hook, hook.rstrip("0123456789"), at, index, list(shown))

    def shown(self, status: str, name: str = "A") -> Shown:
        return Shown(name, status, self.STARTED)

    def kinds(self, exchanges: List[Exchange], posts: List[Post], **kw: Any) -> List[str]:
        report = faults.check(exchanges, posts, **kw)
        assert report.explain()  # renders without error
        return sorted(v.kind for v in report.violations)

    def test_a_clean_history_passes(self):
        exchanges = [self.exchange(0, 1.0, 200, self.firing()), self.exchange(1, 5.0, 200, self.resolved())]
        posts = [self.post(1.2, 0, self.shown(FIRING)), self.post(5.2, 1, self.shown(RESOLVED))]
        report = faults.check(exchanges, posts)
        assert report.violations == [] and report.states == 2 and report.alerts == 1
        assert "duplicates=0 losses=0" in report.summary("unit", 1.0)

    def test_a_duplicate_is_caught(self):
        exchanges = [self.exchange(0, 1.0, 503, self.firing()), self.exchange(1, 3.0, 200, self.firing())]
        posts = [self.post(1.2, 0, self.shown(FIRING)), self.post(3.2, 1, self.shown(FIRING))]
        report = faults.check(exchanges, posts)
        assert [v.kind for v in report.violations] == ["duplicate"] and report.duplicates == 1
        text = report.explain()
        assert "alert A (route critical)" in text and "#0 am +0.00s->503" in text and "#1 am +2.00s->200" in text

    def test_a_loss_is_caught(self):
        exchanges = [self.exchange(0, 1.0, 200, self.firing(), self.firing("B"))]
        posts = [self.post(1.2, 0, self.shown(FIRING))]
        report = faults.check(exchanges, posts)
        assert [(v.kind, v.alert) for v in report.violations] == [("loss", "B")] and report.losses == 1

    def test_an_out_of_order_post_is_caught(self):
        exchanges = [self.exchange(0, 1.0, 200, self.firing()), self.exchange(1, 5.0, 200, self.resolved())]
        posts = [self.post(5.1, 0, self.shown(RESOLVED)), self.post(5.2, 1, self.shown(FIRING))]
        assert self.kinds(exchanges, posts) == ["acked-before-posted", "disorder", "ends-firing"]

    def test_a_non_2xx_answer_excuses_a_state_never_posted_or_posted_once(self):
        exchanges = [self.exchange(0, 1.0, 503, self.firing()), self.exchange(1, 3.0, 502, self.firing()),
                     self.exchange(2, 5.0, 0, self.firing("B"))]
        assert self.kinds(exchanges, []) == []
        assert self.kinds(exchanges, [self.post(1.2, 0, self.shown(FIRING))]) == []
        assert self.kinds(exchanges, [self.post(1.2, 0, self.shown(FIRING)),
                                      self.post(3.2, 1, self.shown(FIRING))]) == ["duplicate"]

    def test_a_state_superseded_by_a_posted_newer_one_is_no_loss(self):
        exchanges = [self.exchange(0, 1.0, 503, self.firing()), self.exchange(1, 5.0, 200, self.resolved()),
                     self.exchange(2, 6.0, 200, self.firing())]  # a stale FIRING copy after the RESOLVED
        assert self.kinds(exchanges, [self.post(5.2, 0, self.shown(RESOLVED))]) == []

    def test_a_stale_firing_posted_after_its_resolved_is_caught(self):
        exchanges = [self.exchange(0, 1.0, 200, self.resolved()), self.exchange(1, 2.0, 200, self.firing())]
        posts = [self.post(1.2, 0, self.shown(RESOLVED)), self.post(2.2, 1, self.shown(FIRING))]
        assert self.kinds(exchanges, posts) == ["disorder", "ends-firing", "stale-post"]

    def test_a_stale_firing_posted_before_its_waiting_resolved_is_caught(self):
        exchanges = [self.exchange(0, 1.0, 503, self.resolved()), self.exchange(1, 2.0, 200, self.firing()),
                     self.exchange(2, 4.0, 200, self.resolved())]
        posts = [self.post(2.2, 0, self.shown(FIRING)), self.post(4.2, 1, self.shown(RESOLVED))]
        assert self.kinds(exchanges, posts) == ["stale-post"]

    def test_a_channel_ending_firing_for_a_resolved_alert_is_caught(self):
        exchanges = [self.exchange(0, 1.0, 200, self.firing()), self.exchange(1, 5.0, 503, self.resolved())]
        assert self.kinds(exchanges, [self.post(1.2, 0, self.shown(FIRING))]) == ["ends-firing"]

    def test_an_answer_before_the_post_is_caught(self):
        exchanges = [self.exchange(0, 1.0, 200, self.firing())]  # answered at 1.5
        assert self.kinds(exchanges, [self.post(2.0, 0, self.shown(FIRING))]) == ["acked-before-posted"]

    def test_a_refire_after_the_dedup_window_is_owed_a_post(self):
        end = self.E.timestamp()
        exchanges = [self.exchange(0, 1.0, 200, self.firing(), wall=end - 10),
                     self.exchange(1, 2.0, 200, self.resolved(), wall=end + 0.1),
                     self.exchange(2, 4.0, 200, self.firing(), wall=end + 2.0)]
        three = [self.post(1.2, 0, self.shown(FIRING)), self.post(2.2, 1, self.shown(RESOLVED)),
                 self.post(4.2, 2, self.shown(FIRING))]
        assert self.kinds(exchanges, three, dedup_window=1) == []
        assert self.kinds(exchanges, three[:2], dedup_window=1) == ["loss"]
        # Within the window the same FIRING is a copy of the one posted first: posting it again is a breach.
        assert self.kinds(exchanges, three, dedup_window=5) == ["duplicate", "ends-firing"]

    def test_an_ha_copy_within_the_window_is_not_owed_and_a_late_one_is_a_reminder(self):
        exchanges = [self.exchange(0, 1.0, 200, self.firing(), source="am1"),
                     self.exchange(1, 2.0, 200, self.firing(), source="am2")]
        assert self.kinds(exchanges, [self.post(1.2, 0, self.shown(FIRING))]) == []
        late = exchanges + [self.exchange(2, 100.0, 200, self.firing(), source="am1")]
        assert self.kinds(late, [self.post(1.2, 0, self.shown(FIRING))], dedup_window=60) == ["loss"]
        assert self.kinds(late, [self.post(1.2, 0, self.shown(FIRING)), self.post(100.2, 1, self.shown(FIRING))],
                          dedup_window=60) == []

    def test_a_group_that_gained_an_alert_is_no_reminder_of_the_others(self):
        # Alertmanager sends the whole group again when an alert joins it. The alerts already posted
        # are copies in that notification, however long after their answer it comes (rcwebhook's
        # ledger rule); only a notification without news reminds.
        exchanges = [self.exchange(0, 1.0, 200, self.firing()),
                     self.exchange(1, 3.0, 200, self.firing(), self.firing("B")),
                     self.exchange(2, 6.0, 200, self.firing(), self.firing("B"))]
        posts = [self.post(1.2, 0, self.shown(FIRING)), self.post(3.2, 1, self.shown(FIRING, "B")),
                 self.post(6.2, 2, self.shown(FIRING), self.shown(FIRING, "B"))]
        assert self.kinds(exchanges, posts, dedup_window=1) == []
        # The reminder without news is owed.
        assert self.kinds(exchanges, posts[:2], dedup_window=1) == ["loss", "loss"]

    def test_a_post_on_another_route_and_a_post_nobody_sent_are_caught(self):
        exchanges = [self.exchange(0, 1.0, 200, self.firing())]
        posts = [self.post(1.2, 0, self.shown(FIRING)), self.post(1.3, 0, self.shown(FIRING), hook="warning"),
                 self.post(1.4, 1, self.shown(FIRING, "Ghost"))]
        assert self.kinds(exchanges, posts) == ["misrouted", "phantom"]

    def test_two_hooks_of_one_route_count_as_one_channel(self):
        exchanges = [self.exchange(0, 1.0, 200, self.firing()), self.exchange(1, 5.0, 200, self.resolved())]
        posts = [self.post(1.2, 0, self.shown(FIRING), hook="critical"),
                 self.post(5.2, 0, self.shown(RESOLVED), hook="critical2")]
        assert self.kinds(exchanges, posts) == []
        assert self.kinds(exchanges, posts + [self.post(5.3, 0, self.shown(RESOLVED), hook="critical3")]) == [
            "duplicate"]


# --- 1. Rocket.Chat flapping -------------------------------------------------------------------


def test_rocketchat_flapping(start_daemon, harness, am_binary):
    rc = harness.standin()
    urls = add_hooks(rc)
    daemon = start_daemon(**hook_settings(urls, **FAST))
    proxy = harness.proxy(daemon.port)
    am = harness.alertmanager(am_binary, proxy.url("am"))
    explain = harness.explain(ROUTES)
    start = whole_second(-60)
    disk = Spec("FlapDiskFull", "critical", "flap1", start)
    latency = Spec("FlapLatency", "warning", "flap1", start)
    queue = Spec("FlapQueueStuck", "critical", "flap2", start)
    errors = Spec("FlapErrors", "warning", "flap1", start + timedelta(seconds=5))  # joins flap1 later
    cert = Spec("FlapCertExpiry", "info", "flap3", start)
    backup = Spec("FlapBackupLate", "critical", "flap3", start + timedelta(seconds=7))

    # Rocket.Chat's critical hook answers 503: the flap1 and flap2 groups get 503, then it comes back.
    rc.set_outage("critical", "503")
    am.fire(disk, latency, queue)
    wait_until(lambda: refused(proxy, disk.name) and refused(proxy, queue.name), "503s while critical is down",
               STEP_TIMEOUT, explain)
    rc.set_outage("critical", None)
    wait_until(lambda: acknowledged(proxy, {disk.name: FIRING, latency.name: FIRING, queue.name: FIRING}),
               "the first alerts delivered", STEP_TIMEOUT, explain)

    # The warning hook resets connections while flap1 grows (FlapErrors joins after FlapLatency was posted).
    rc.set_outage("warning", "reset")
    am.fire(errors, cert)
    wait_until(lambda: refused(proxy, errors.name), "a 503 while warning resets", STEP_TIMEOUT, explain)
    rc.set_outage("warning", None)
    wait_until(lambda: acknowledged(proxy, {errors.name: FIRING, cert.name: FIRING}), "flap1 grown delivered",
               STEP_TIMEOUT, explain)

    # Critical 503 and info resets together, while alerts resolve and a new one fires in flap3.
    rc.set_outage("critical", "503")
    rc.set_outage("info", "reset")
    am.resolve(whole_second(-1), disk, queue)
    am.fire(backup)
    wait_until(lambda: refused(proxy, disk.name, RESOLVED) and refused(proxy, backup.name),
               "503s for the resolutions and for flap3", STEP_TIMEOUT, explain)
    rc.set_outage("critical", None)
    rc.set_outage("info", None)

    # Everything resolves while the warning hook is down once more.
    rc.set_outage("warning", "503")
    am.resolve(whole_second(-1), latency, errors, cert, backup)
    wait_until(lambda: refused(proxy, latency.name, RESOLVED), "a 503 for flap1's resolution", STEP_TIMEOUT,
               explain)
    rc.set_outage("warning", None)
    everything = [disk, latency, queue, errors, cert, backup]
    wait_until(lambda: acknowledged(proxy, {a.name: RESOLVED for a in everything}), "every resolution delivered",
               SETTLE_TIMEOUT, explain)
    wait_quiet(proxy, rc, ROUTES, QUIET, SETTLE_TIMEOUT, explain)

    harness.report("flapping", rc, SAME_HOOKS).assert_clean(explain())


# --- 2. an HA pair sharing one rcwebhook ----------------------------------------------------------


def test_ha_pair_sharing_one_rcwebhook(start_daemon, harness, am_binary):
    rc = harness.standin()
    urls = add_hooks(rc)
    daemon = start_daemon(**hook_settings(urls, **FAST))
    proxy = harness.proxy(daemon.port)
    am1, am2 = faults.start_cluster(am_binary, harness.tmp_path, [proxy.url("am1"), proxy.url("am2")])
    harness.start_manager(am1)
    harness.start_manager(am2)
    explain = harness.explain(ROUTES)
    wait_until(lambda: am1.cluster_size() == 2 and am2.cluster_size() == 2, "the two Alertmanagers clustered",
               STEP_TIMEOUT, explain)
    start = whole_second(-60)
    down = Spec("HaApiDown", "critical", "ha1", start)
    slow = Spec("HaApiSlow", "warning", "ha1", start)
    cert = Spec("HaCertExpiry", "info", "ha2", start)
    alerts = (down, slow, cert)

    # Rocket.Chat is briefly down: both members notify (neither's nflog shows a success) and get 503.
    rc.set_outage("critical", "503")
    valid_until = whole_second(600)
    for manager in (am1, am2):
        manager.fire(*alerts, ends_at=valid_until)  # Prometheus sends the same alerts to both members
    wait_until(lambda: refused(proxy, down.name, source="am1") and refused(proxy, down.name, source="am2"),
               "503 answered to both members", STEP_TIMEOUT, explain)
    rc.set_outage("critical", None)
    wait_until(lambda: acknowledged(proxy, {a.name: FIRING for a in alerts}), "the firing alerts delivered",
               SETTLE_TIMEOUT, explain)

    # Resolved on both members with the same endsAt, while the warning hook resets connections.
    rc.set_outage("warning", "reset")
    ended = whole_second(-1)
    for manager in (am1, am2):
        manager.resolve(ended, *alerts)
    wait_until(lambda: refused(proxy, slow.name, RESOLVED), "a 503 for the resolution", STEP_TIMEOUT, explain)
    rc.set_outage("warning", None)
    wait_until(lambda: acknowledged(proxy, {a.name: RESOLVED for a in alerts}), "the resolutions delivered",
               SETTLE_TIMEOUT, explain)
    wait_quiet(proxy, rc, ROUTES, 2 * QUIET, SETTLE_TIMEOUT, explain)

    report = harness.report("ha-pair", rc, SAME_HOOKS)
    assert {e.source for e in proxy.exchanges()} == {"am1", "am2"}, explain()
    report.assert_clean(explain())


# --- 3. kill -9 with posts pending ---------------------------------------------------------------


def test_kill_9_with_posts_pending_neither_loses_nor_repeats(harness, am_binary):
    rc = harness.standin()
    urls = add_hooks(rc)
    port = faults.free_port()
    proxy = harness.proxy(port)
    state_dir = harness.tmp_path / "state"
    state_dir.mkdir()
    daemon = harness.rcwebhook(hook_settings(urls, STATE_DIR=str(state_dir), **FAST), port)
    am = harness.alertmanager(am_binary, proxy.url("am"))
    explain = harness.explain(ROUTES)
    start = whole_second(-60)
    disk = Spec("KillDiskFull", "critical", "kill1", start)
    latency = Spec("KillLatency", "warning", "kill1", start)  # same group, its hook is up
    queue = Spec("KillQueueStuck", "critical", "kill2", start)
    alerts = (disk, latency, queue)

    rc.set_outage("critical", "503")
    am.fire(*alerts)
    # KillLatency is posted; the critical posts are pending and their requests answered 503.
    wait_until(lambda: posted(rc, "warning", latency.name) and refused(proxy, disk.name)
               and refused(proxy, queue.name), "KillLatency posted, 503 for the critical ones",
               STEP_TIMEOUT, explain)
    daemon.kill9()
    killed_at = time.monotonic()
    wait_until(lambda: any(e.status == 0 and e.sent > killed_at for e in proxy.exchanges()),
               "Alertmanager retried while rcwebhook was dead", STEP_TIMEOUT, explain)
    daemon.start()
    rc.set_outage("critical", None)
    wait_until(lambda: acknowledged(proxy, {a.name: FIRING for a in alerts}), "the firing alerts delivered",
               SETTLE_TIMEOUT, explain)
    am.resolve(whole_second(-1), *alerts)
    wait_until(lambda: acknowledged(proxy, {a.name: RESOLVED for a in alerts}), "the resolutions delivered",
               SETTLE_TIMEOUT, explain)
    wait_quiet(proxy, rc, ROUTES, QUIET, SETTLE_TIMEOUT, explain)

    harness.report("kill-9", rc, SAME_HOOKS).assert_clean(explain())


# --- 4. reload under load ----------------------------------------------------------------------


def test_reload_under_load_moves_routes_without_repeating_a_state(harness):
    rc = harness.standin()
    old = add_hooks(rc)
    new = add_hooks(rc, "2")
    port = faults.free_port()
    proxy = harness.proxy(port)
    # Pacing at 2 posts/s per hook and a 0.5 s deadline: requests queue, and some get 503 and retry.
    settings = {**FAST, "ROCKETCHAT_RATE_LIMIT": "2/1", "DELIVERY_DEADLINE": "0.5"}
    daemon = harness.rcwebhook(hook_settings(old, **settings), port)
    hooks = list(ROUTES) + [r + "2" for r in ROUTES]
    explain = harness.explain(hooks)
    start = whole_second(-60)
    severities = ("critical", "warning", "info")
    failures: List[str] = []

    def stream(lane: int) -> None:
        """Send alerts of one lane one after another: each fires, then resolves, retried like Alertmanager."""
        try:
            for i in range(5):
                name = f"ReloadLane{lane}Alert{i}"
                severity = severities[(lane + i) % 3]
                group = f"reload-{lane}-{i}"
                for payload in (notification([alert_item(name, severity, FIRING, start)], group),
                                notification([alert_item(name, severity, RESOLVED, start, whole_second(-1))],
                                             group)):
                    statuses = send(proxy.url(f"lane{lane}"), payload, deadline=SETTLE_TIMEOUT)
                    if not statuses or not 200 <= statuses[-1] < 300:
                        failures.append(f"{name}: answers {statuses}")
                        return
        except Exception as exc:  # noqa: BLE001 - reported by the test
            failures.append(f"lane {lane}: {exc!r}")

    lanes = [threading.Thread(target=stream, args=(lane,), daemon=True) for lane in range(4)]
    for lane in lanes:
        lane.start()
    wait_until(lambda: sum(1 for e in proxy.exchanges() if e.ok) >= 8, "notifications flowing", STEP_TIMEOUT,
               explain)
    # The old critical hook fails just before the reload, so states wait for it when the routes move;
    # it recovers right after the reload, when nothing may be posted to it any more.
    rc.set_outage("critical", "503")
    outage_from = time.monotonic()
    wait_until(lambda: any(e.sent > outage_from and e.status not in (-1, 200) and
                           any((a.get("labels") or {}).get("severity") == "critical" for a in e.alerts())
                           for e in proxy.exchanges()),
               "a critical state waiting for the old hook", STEP_TIMEOUT, explain)
    daemon.rewrite(hook_settings(new, **settings))
    reloads = daemon.stderr().count("Configuration reloaded")
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: daemon.stderr().count("Configuration reloaded") > reloads, "the reload logged",
               STEP_TIMEOUT, explain)
    reloaded_at = time.monotonic()
    rc.set_outage("critical", None)
    for lane in lanes:
        lane.join(SETTLE_TIMEOUT * 2)
    assert not any(lane.is_alive() for lane in lanes), explain()
    wait_quiet(proxy, rc, hooks, QUIET, SETTLE_TIMEOUT, explain)

    report = harness.report("reload", rc, {route: [route, route + "2"] for route in ROUTES})
    assert not failures, f"senders never got a 2xx: {failures}\n{explain()}"
    late = [f"{p.hook}[{p.index}] +{p.at - reloaded_at:.2f}s after the reload: "
            f"{[(s.name, s.status) for s in p.shown]}"
            for p in report.posts if not p.hook.endswith("2") and p.at > reloaded_at + 0.25]
    report.assert_clean(f"posts to the old hooks after the reload completed: {late}\n{explain()}")
    assert not late, f"posts to the old hooks after the reload completed: {late}\n{explain()}"
    assert any(p.hook.endswith("2") for p in report.posts), f"nothing reached the new hooks\n{explain()}"


# --- 5. an alert storm under a scaled-down real rate limit -----------------------------------------


def test_alert_storm_under_the_rate_limit(start_daemon, harness, am_binary):
    rc = harness.standin(rate_limit=3, rate_window=1.0)
    urls = add_hooks(rc)
    daemon = start_daemon(**hook_settings(urls, **{**FAST, "ROCKETCHAT_RATE_LIMIT": "3/1"}))
    proxy = harness.proxy(daemon.port)
    am = harness.alertmanager(am_binary, proxy.url("am"))
    explain = harness.explain(ROUTES)
    start = whole_second(-60)
    severities = ("critical", "warning", "info", "warning", "critical")
    alerts = [Spec(f"Storm{g:02d}Alert{i}", severities[i], f"storm{g:02d}", start)
              for g in range(20) for i in range(5)]

    am.fire(*alerts)
    wait_until(lambda: acknowledged(proxy, {a.name: FIRING for a in alerts}), "100 firing alerts delivered",
               SETTLE_TIMEOUT * 1.5, explain)
    am.resolve(whole_second(-1), *alerts)
    wait_until(lambda: acknowledged(proxy, {a.name: RESOLVED for a in alerts}), "100 resolutions delivered",
               SETTLE_TIMEOUT * 1.5, explain)
    wait_quiet(proxy, rc, ROUTES, QUIET, SETTLE_TIMEOUT, explain)

    report = harness.report("storm", rc, SAME_HOOKS)
    report.assert_clean(explain())
    assert report.http429 == 0, f"Rocket.Chat answered 429 {report.http429} times\n{explain()}"


# --- 6. out-of-order copies --------------------------------------------------------------------


def test_stale_firing_copies_never_outlive_their_resolution(start_daemon, harness, monkeypatch):
    # The stale copies below come, with their retries, about 2.3 s after their resolution here: within
    # REFIRE_GAP (5 s), but a loaded machine can stretch that past it, where a firing from the resolution's
    # own sender is taken for a re-fire and posted. What is tested is the copy rule, not that gap: widen it.
    from rcwebhook.delivery import ledger
    monkeypatch.setattr(ledger, "REFIRE_GAP", 30.0)
    rc = harness.standin()
    urls = add_hooks(rc)
    daemon = start_daemon(**hook_settings(urls, **{**FAST, "DELIVERY_DEADLINE": "1", "DELIVERY_TIMEOUT": "5"}))
    proxy = harness.proxy(daemon.port)
    explain = harness.explain(ROUTES)
    url = proxy.url("test")
    start, end = whole_second(-120), whole_second(-5)

    def firing(name: str, severity: str) -> Dict[str, Any]:
        return notification([alert_item(name, severity, FIRING, start)], name)

    def resolved(name: str, severity: str) -> Dict[str, Any]:
        return notification([alert_item(name, severity, RESOLVED, start, end)], name)

    # A: RESOLVED delivered, then a stale FIRING copy (same startsAt and fingerprint) arrives.
    assert send(url, resolved("OooResolvedFirst", "critical"), STEP_TIMEOUT)[-1:] == [200], explain()
    assert send(url, firing("OooResolvedFirst", "critical"), STEP_TIMEOUT)[-1:] == [200], explain()

    # B: FIRING posted; Rocket.Chat goes down; the RESOLVED waits; a stale FIRING copy arrives meanwhile.
    # D: the same, but the FIRING was never posted.
    assert send(url, firing("OooWhileDown", "critical"), STEP_TIMEOUT)[-1:] == [200], explain()
    rc.set_outage("critical", "503")
    senders = [Sender(url, resolved(name, "critical"), SETTLE_TIMEOUT) for name in ("OooWhileDown", "OooNeverPosted")]
    for sender in senders:
        sender.start()
    # Each RESOLVED is known and waiting once its first request is answered (503: Rocket.Chat is down).
    # The stale copies come (and are retried) soon after their resolution, as requests that overtook one
    # another do: later than REFIRE_GAP after it, a firing from the resolution's sender is a re-fire. (Waiting
    # until the courier's backed-off retries had tried both resolutions took 4 s, and the copies' retries
    # then came past REFIRE_GAP.)
    wait_until(lambda: all(s.statuses for s in senders), "both RESOLVED answered once", STEP_TIMEOUT, explain)
    assert shows(rc, "critical", "Resolved: OooWhileDown") or shows(rc, "critical", "Resolved: OooNeverPosted"), \
        explain()  # rcwebhook is trying them
    stale = [Sender(url, firing(name, "critical"), SETTLE_TIMEOUT) for name in ("OooWhileDown", "OooNeverPosted")]
    for sender in stale:
        sender.start()
    wait_until(lambda: all(s.statuses for s in stale), "each stale critical copy answered once", STEP_TIMEOUT,
               explain)
    rc.set_outage("critical", None)

    # C: never posted FIRING; the RESOLVED's post is accepted but answered slowly (past
    # DELIVERY_DEADLINE); a stale FIRING copy arrives while it is in flight.
    rc.set_delay("warning", 1.5)
    senders.append(Sender(url, resolved("OooWhileSlow", "warning"), SETTLE_TIMEOUT))
    senders[-1].start()
    wait_until(lambda: shows(rc, "warning", "Resolved: OooWhileSlow"), "the RESOLVED's post in flight",
               STEP_TIMEOUT, explain)
    slow = Sender(url, firing("OooWhileSlow", "warning"), SETTLE_TIMEOUT)
    slow.start()
    stale.append(slow)
    senders += stale
    wait_until(lambda: slow.statuses, "the stale warning copy answered once", STEP_TIMEOUT, explain)
    rc.set_delay("warning", 0)
    for sender in senders:
        sender.join(SETTLE_TIMEOUT)
    wait_quiet(proxy, rc, ROUTES, QUIET, SETTLE_TIMEOUT, explain)

    report = harness.report("out-of-order", rc, SAME_HOOKS)
    report.assert_clean(explain())
    assert all(s.delivered for s in senders), f"{[(s.name, s.statuses) for s in senders]}\n{explain()}"
    for name, hook in (("OooResolvedFirst", "critical"), ("OooWhileDown", "critical"), ("OooNeverPosted", "critical"),
                       ("OooWhileSlow", "warning")):
        shown = [s.status for p in report.posts if p.hook == hook for s in p.shown if s.name == name]
        assert shown and shown[-1] == RESOLVED and shown.count(RESOLVED) == 1, (name, shown, explain())


# --- 7. fire, resolve, fire again with the same startsAt -----------------------------------------------


def test_refire_with_the_same_starts_at_after_the_dedup_window(start_daemon, harness):
    rc = harness.standin()
    urls = add_hooks(rc)
    daemon = start_daemon(**hook_settings(urls, **{**FAST, "DEDUP_WINDOW": "1"}))
    proxy = harness.proxy(daemon.port)
    explain = harness.explain(ROUTES)
    url = proxy.url("test")
    start = whole_second(-30)
    name = "RefireSameStart"

    def payload(status: str, ends_at=None) -> Dict[str, Any]:
        return notification([alert_item(name, "critical", status, start, ends_at)], "refire")

    assert send(url, payload(FIRING), STEP_TIMEOUT)[-1:] == [200], explain()
    ended = datetime.now(timezone.utc)
    assert send(url, payload(RESOLVED, ended), STEP_TIMEOUT)[-1:] == [200], explain()
    # The same FIRING (same startsAt) more than DEDUP_WINDOW after the endsAt: it fired again.
    wait_until(lambda: time.time() > ended.timestamp() + 1.3, "DEDUP_WINDOW past the endsAt", 5)
    assert send(url, payload(FIRING), STEP_TIMEOUT)[-1:] == [200], explain()
    wait_quiet(proxy, rc, ROUTES, 0.5, SETTLE_TIMEOUT, explain)

    report = harness.report("refire", rc, SAME_HOOKS, dedup_window=1)
    report.assert_clean(explain())
    shown = [s.status for p in report.posts for s in p.shown if s.name == name]
    assert shown == [FIRING, RESOLVED, FIRING], (shown, explain())
