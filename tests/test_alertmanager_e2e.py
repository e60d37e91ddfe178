"""End to end: a real Prometheus Alertmanager notifies rcwebhook, which posts to a stand-in Rocket.Chat.

Each test starts its own stand-in Rocket.Chat, its own rcwebhook and its own Alertmanager (about
0.1 s to become ready), so tests share nothing.  Alertmanager groups with group_wait and
group_interval of 1 s; every wait is on a condition with a deadline.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Tuple

import pytest

from tests.conftest import require_program
from tests.programs import ALERTMANAGER_CONFIG, ProgramOnPort

NOTIFY_TIMEOUT = 10.0  # group_wait is 1 s; leave room for a slow CI machine
READY_TIMEOUT = 10.0
START_ATTEMPTS = 5
SUCCESS_LINE = "Alert sent successfully to Rocket.Chat: 200"

CONFIG = ALERTMANAGER_CONFIG


@dataclass(frozen=True)
class AlertSpec:
    """One alert as a test adds it to Alertmanager."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    generator_url: str = ""

    def all_labels(self) -> Dict[str, str]:
        return {"alertname": self.name, **self.labels}


class Alertmanager(ProgramOnPort):
    """A running prometheus-alertmanager subprocess with a single webhook receiver."""

    ready_timeout = READY_TIMEOUT
    start_attempts = START_ATTEMPTS
    poll_interval = 0.02
    tail_lines = 60

    def __init__(self, binary: str, amtool: str, workdir: Path, receiver_url: str, config: str = "") -> None:
        super().__init__("Alertmanager", workdir, "/-/ready")
        self.binary = binary
        self.amtool = amtool
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(config or CONFIG.format(url=json.dumps(receiver_url)))

    def arguments(self, attempt: int) -> List[str]:
        return [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.path={self.workdir / f'data-{attempt}'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--cluster.listen-address=",
            "--log.level=debug",
        ]

    def add(self, alert: AlertSpec) -> None:
        """Fire `alert` with `amtool alert add`."""
        args = [self.amtool, f"--alertmanager.url={self.url}", "alert", "add", alert.name]
        args += [f"{k}={v}" for k, v in alert.labels.items()]
        args += [f"--annotation={k}={v}" for k, v in alert.annotations.items()]
        if alert.generator_url:
            args.append(f"--generator-url={alert.generator_url}")
        result = subprocess.run(args, capture_output=True, text=True, timeout=15)
        assert result.returncode == 0, (
            f"amtool failed ({result.returncode}): {result.stdout}{result.stderr}{self.explain()}"
        )

    def fire(self, *alerts: AlertSpec) -> None:
        """Fire `alerts` in one POST /api/v2/alerts, so each group's first notification holds all of its alerts."""
        self._post_alerts(alerts, {})

    def resolve(self, *alerts: AlertSpec) -> None:
        """Resolve `alerts` in one POST /api/v2/alerts, with endsAt just in the past."""
        ends_at = (datetime.now(timezone.utc) - timedelta(milliseconds=100)).isoformat().replace("+00:00", "Z")
        self._post_alerts(alerts, {"endsAt": ends_at})

    def _post_alerts(self, alerts: Tuple[AlertSpec, ...], extra: Mapping[str, str]) -> None:
        body = [
            {
                "labels": alert.all_labels(),
                "annotations": dict(alert.annotations),
                "generatorURL": alert.generator_url,
                **extra,
            }
            for alert in alerts
        ]
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"POST /api/v2/alerts: {exc.code} {exc.read()!r}{self.explain()}") from None
        assert status == 200, f"POST /api/v2/alerts answered {status}{self.explain()}"

    def webhook_metrics(self) -> Dict[str, float]:
        """Return Alertmanager's webhook notification counters, summed over their other labels."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        totals: Dict[str, float] = {}
        for line in text.splitlines():
            match = re.match(r'(alertmanager_notification\w*_total)\{([^}]*)\} (\S+)$', line)
            if match and 'integration="webhook"' in match.group(2):
                totals[match.group(1)] = totals.get(match.group(1), 0.0) + float(match.group(3))
        return totals


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def programs() -> Dict[str, str]:
    """Return the Alertmanager binaries; skip (fail under CI) before anything starts when missing."""
    return {
        "alertmanager": require_program("prometheus-alertmanager"),
        "amtool": require_program("amtool"),
    }


@pytest.fixture
def hooks(rocketchat) -> Dict[str, str]:
    """Return the URLs of three stand-in hooks, one per route."""
    return {name: rocketchat.add_hook(name) for name in ("critical", "warning", "info")}


def daemon_settings(hooks: Mapping[str, str], **extra: str) -> Dict[str, str]:
    return {
        "ROCKETCHAT_WEBHOOK_CRITICAL": hooks["critical"],
        "ROCKETCHAT_WEBHOOK_WARNING": hooks["warning"],
        "ROCKETCHAT_WEBHOOK_INFO": hooks["info"],
        **extra,
    }


@pytest.fixture
def start_alertmanager(programs, tmp_path) -> Iterator[Callable[[str], Alertmanager]]:
    """Start a real Alertmanager notifying the given rcwebhook base URL; always stopped afterwards."""
    started: List[Alertmanager] = []

    def start(daemon_url: str, config: str = "") -> Alertmanager:
        workdir = tmp_path / f"alertmanager-{len(started)}"
        workdir.mkdir()
        manager = Alertmanager(programs["alertmanager"], programs["amtool"], workdir, f"{daemon_url}/webhook",
                               config)
        started.append(manager)
        manager.start()
        return manager

    yield start
    for manager in started:
        manager.stop()


@pytest.fixture
def alertmanager(start_daemon, hooks, start_alertmanager) -> Alertmanager:
    """A real Alertmanager in front of an rcwebhook with default settings and all three hooks."""
    return start_alertmanager(start_daemon(**daemon_settings(hooks)).url)


# --- helpers ----------------------------------------------------------------------------------


def alert_names(message: Dict[str, Any]) -> List[str]:
    """Return the alert name each attachment of a posted message shows in its title."""
    names = []
    for attachment in message.get("attachments") or []:
        title = attachment["title"]
        if title.startswith("Resolved: "):
            title = title[len("Resolved: "):]
        names.append(title.split(":", 1)[0])
    return names


def wait_for_message(rocketchat, hook: str, wanted: Callable[[Dict[str, Any]], bool], what: str,
                     manager: Alertmanager, timeout: float = NOTIFY_TIMEOUT) -> Dict[str, Any]:
    """Return the first message posted to `hook` that satisfies `wanted`, waiting up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        messages = rocketchat.messages(hook)
        for message in messages:
            if wanted(message):
                return message
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(
                f"hook {hook!r}: no message {what} within {timeout:g}s; "
                f"posted: {json.dumps(rocketchat.all_messages(), indent=1)[:4000]}; "
                f"requests to {hook!r}: {[r['status'] for r in rocketchat.requests(hook)]}"
                f"{manager.explain()}"
            )
        try:
            rocketchat.wait_for_messages(hook, len(messages) + 1, remaining)
        except AssertionError:
            pass  # the loop reports the timeout with the whole picture


def wait_for_log(logs, pattern: str, manager: Alertmanager, timeout: float = NOTIFY_TIMEOUT) -> str:
    """Return the first rcwebhook log line matching the regex `pattern`, waiting up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        for line in logs.lines():
            if re.search(pattern, line):
                return line
        if time.monotonic() >= deadline:
            raise AssertionError(f"no rcwebhook log line matching {pattern!r}; got:\n{logs.text()}{manager.explain()}")
        manager.pause(0.05)


def firing_with(*names: str) -> Callable[[Dict[str, Any]], bool]:
    return lambda m: "[FIRING:" in m["text"] and set(names) <= set(alert_names(m))


def resolved_with(*names: str) -> Callable[[Dict[str, Any]], bool]:
    return lambda m: m["text"].startswith(":white_check_mark: [RESOLVED:") and set(names) <= set(alert_names(m))


def fields_of(attachment: Dict[str, Any]) -> Dict[str, str]:
    return {f["title"]: f["value"] for f in attachment.get("fields") or []}


def assert_only(rocketchat, hook: str, names: List[str], manager: Alertmanager) -> None:
    """Assert every message posted to `hook` shows only alerts named in `names`."""
    for message in rocketchat.messages(hook):
        shown = alert_names(message)
        assert shown and set(shown) <= set(names), (
            f"hook {hook!r} got a message for {shown}, expected only {names}: {message}{manager.explain()}"
        )


def assert_alertmanager_delivered(manager: Alertmanager, logs, timeout: float = NOTIFY_TIMEOUT) -> None:
    """Assert rcwebhook answered 200 to every request Alertmanager made, and Alertmanager saw no failure.

    Alertmanager counts a request before sending it, and rcwebhook posts to Rocket.Chat before it
    answers, so first wait until rcwebhook has answered as many requests as Alertmanager sent.
    """
    deadline = time.monotonic() + timeout
    while True:
        answers = [line for line in logs.lines() if '"POST /webhook ' in line]
        metrics = manager.webhook_metrics()
        sent = metrics.get("alertmanager_notification_requests_total", 0)
        if sent >= 1 and len(answers) == sent:
            break
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"Alertmanager sent {sent:g} webhook requests, rcwebhook answered {len(answers)}: "
                f"{answers}{manager.explain()}"
            )
        manager.pause(0.05)
    refused = [line for line in answers if not re.search(r'" 200 \d+ ', line)]
    assert not refused, f"rcwebhook did not answer 200: {refused}{manager.explain()}"
    failed = {k: v for k, v in metrics.items() if "failed" in k and v}
    assert not failed, f"Alertmanager saw failed webhook requests: {failed}{manager.explain()}"


# --- tests ------------------------------------------------------------------------------------

DISK_FULL = AlertSpec(
    "DiskFull",
    {"severity": "critical", "service": "storage", "instance": "db1:9100"},
    {"summary": "Disk /var is 98% full", "description": "Only 2 GiB left on /var of db1.",
     "dashboard": "https://grafana.example.com/d/disk"},
    generator_url="http://prometheus.example.com:9090/graph?g0.expr=disk_free%3C0.05&g0.tab=1",
)
SLOW_QUERIES = AlertSpec(
    "SlowQueries",
    {"severity": "warning", "service": "storage", "instance": "db1:9100"},
    {"summary": "p99 query latency above 2s", "description": "Queries on db1 are slow."},
)


def test_one_group_is_split_so_each_alert_reaches_its_severity_hook(rocketchat, alertmanager, logs):
    alertmanager.add(DISK_FULL)
    alertmanager.add(SLOW_QUERIES)

    critical = wait_for_message(rocketchat, "critical", firing_with("DiskFull"), "firing DiskFull", alertmanager)
    warning = wait_for_message(rocketchat, "warning", firing_with("SlowQueries"), "firing SlowQueries",
                               alertmanager)
    # Alertmanager sent both alerts in one notification (one group, service=storage) and rcwebhook split it.
    wait_for_log(logs, r"Notification received: .*groupKey=\{\}:\{service=\"storage\"\}.* alerts=2 "
                       r"routes=critical:1,warning:1$", alertmanager)

    # The headline: the name, linked to Alertmanager's view of the alert, its labels and summary.
    assert critical["text"].startswith(f":rotating_light: [FIRING:1] [DiskFull]({alertmanager.url}/#/alerts?filter=")
    assert critical["text"].endswith(") instance=db1:9100 service=storage — Disk /var is 98% full")
    assert "SlowQueries" not in critical["text"]
    [attachment] = critical["attachments"]
    assert attachment["title"] == "DiskFull: Disk /var is 98% full"
    assert attachment["color"] == "#d62728"
    assert attachment["title_link"] == DISK_FULL.generator_url
    assert "Only 2 GiB left on /var of db1." in attachment["text"]
    assert f"[Silence]({alertmanager.url}/#/silences/new?filter=" in attachment["text"]
    assert "[dashboard](https://grafana.example.com/d/disk)" in attachment["text"]
    fields = fields_of(attachment)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", fields["Started"]), fields
    assert list(fields) == ["Started"]  # the labels are in the headline

    assert warning["text"].startswith(":warning: [FIRING:1] [SlowQueries](")
    assert " service=storage " in warning["text"] and "DiskFull" not in warning["text"]
    [attachment] = warning["attachments"]
    assert attachment["title"] == "SlowQueries: p99 query latency above 2s"
    assert attachment["color"] == "#ff7f0e"

    assert_alertmanager_delivered(alertmanager, logs)
    assert_only(rocketchat, "critical", ["DiskFull"], alertmanager)
    assert_only(rocketchat, "warning", ["SlowQueries"], alertmanager)
    assert rocketchat.requests("info") == []
    assert rocketchat.unmatched_requests() == []


def test_resolved_alerts_are_posted_to_the_hooks_they_fired_on(rocketchat, alertmanager, logs):
    alertmanager.add(DISK_FULL)
    alertmanager.add(SLOW_QUERIES)
    wait_for_message(rocketchat, "critical", firing_with("DiskFull"), "firing DiskFull", alertmanager)
    wait_for_message(rocketchat, "warning", firing_with("SlowQueries"), "firing SlowQueries", alertmanager)

    alertmanager.resolve(DISK_FULL, SLOW_QUERIES)

    critical = wait_for_message(rocketchat, "critical", resolved_with("DiskFull"), "resolving DiskFull",
                                alertmanager)
    warning = wait_for_message(rocketchat, "warning", resolved_with("SlowQueries"), "resolving SlowQueries",
                               alertmanager)
    wait_for_log(logs, r"Notification received: .* status=resolved alerts=2 routes=critical:1,warning:1$",
                 alertmanager)

    # The resolution is a reply in the thread of the firing message, saying how long it lasted.
    headline, note = critical["text"].split("\n")
    assert headline.startswith(":white_check_mark: [RESOLVED:1] [DiskFull](")
    assert headline.endswith(") instance=db1:9100 service=storage — Disk /var is 98% full (critical)")
    assert re.fullmatch(r"Incident resolved after \d+s\.", note), note
    assert critical["tmid"] == rocketchat.message_ids("critical")[0]
    [attachment] = critical["attachments"]
    assert attachment["title"] == "Resolved: DiskFull: Disk /var is 98% full"
    assert attachment["color"] == "#2ca02c"
    assert "Duration" in fields_of(attachment)
    assert "Silence" not in attachment["text"]

    assert warning["text"].split("\n")[0].startswith(":white_check_mark: [RESOLVED:1] [SlowQueries](")
    assert warning["text"].split("\n")[0].endswith(" (warning)")
    assert warning["tmid"] == rocketchat.message_ids("warning")[0]
    [attachment] = warning["attachments"]
    assert attachment["title"] == "Resolved: SlowQueries: p99 query latency above 2s"
    assert attachment["color"] == "#2ca02c"

    assert_alertmanager_delivered(alertmanager, logs)
    assert_only(rocketchat, "critical", ["DiskFull"], alertmanager)
    assert_only(rocketchat, "warning", ["SlowQueries"], alertmanager)
    assert rocketchat.requests("info") == []


def test_unknown_or_missing_severity_goes_to_default_route_and_alias_to_its_target(
        rocketchat, alertmanager, logs):
    bogus = AlertSpec("BogusSeverity", {"severity": "bogus", "service": "queue"}, {"summary": "odd severity"})
    unlabelled = AlertSpec("NoSeverity", {"service": "queue"}, {"summary": "no severity at all"})
    paged = AlertSpec("Paged", {"severity": "page", "service": "queue"}, {"summary": "someone get up"})
    for alert in (bogus, unlabelled, paged):
        alertmanager.add(alert)

    warning = wait_for_message(rocketchat, "warning", firing_with("BogusSeverity", "NoSeverity"),
                               "firing BogusSeverity and NoSeverity", alertmanager)
    critical = wait_for_message(rocketchat, "critical", firing_with("Paged"), "firing Paged", alertmanager)
    wait_for_log(logs, r"Notification received: .* alerts=3 routes=critical:1,warning:2$", alertmanager)

    assert warning["text"].startswith(":warning: [FIRING:2] ") and warning["text"].endswith(" service=queue")
    assert sorted(alert_names(warning)) == ["BogusSeverity", "NoSeverity"]
    assert {a["color"] for a in warning["attachments"]} == {"#ff7f0e"}
    assert critical["text"].startswith(":rotating_light: [FIRING:1] [Paged](") and " severity=page " in critical["text"]
    assert critical["attachments"][0]["title"] == "Paged: someone get up"

    assert_alertmanager_delivered(alertmanager, logs)
    assert_only(rocketchat, "warning", ["BogusSeverity", "NoSeverity"], alertmanager)
    assert_only(rocketchat, "critical", ["Paged"], alertmanager)
    assert rocketchat.requests("info") == []


def test_default_severity_setting_chooses_the_route_of_unknown_severities(
        rocketchat, hooks, start_daemon, start_alertmanager, logs):
    daemon = start_daemon(**daemon_settings(hooks, DEFAULT_SEVERITY="info"))
    manager = start_alertmanager(daemon.url)
    manager.add(AlertSpec("BogusSeverity", {"severity": "bogus", "service": "cache"}, {"summary": "odd"}))

    info = wait_for_message(rocketchat, "info", firing_with("BogusSeverity"), "firing BogusSeverity", manager)

    assert info["text"].startswith(":information_source: [FIRING:1] [BogusSeverity](")
    assert info["attachments"][0]["color"] == "#1f77b4"
    assert_alertmanager_delivered(manager, logs)
    assert rocketchat.requests("critical") == [] and rocketchat.requests("warning") == []


def test_deliveries_are_logged_without_the_hook_tokens(rocketchat, alertmanager, logs):
    notice = AlertSpec("CertExpiresSoon", {"severity": "info", "service": "web"}, {"summary": "in 20 days"})
    for alert in (DISK_FULL, SLOW_QUERIES, notice):
        alertmanager.add(alert)
    for hook, name in (("critical", "DiskFull"), ("warning", "SlowQueries"), ("info", "CertExpiresSoon")):
        wait_for_message(rocketchat, hook, firing_with(name), f"firing {name}", alertmanager)
    alertmanager.resolve(DISK_FULL, SLOW_QUERIES, notice)
    for hook, name in (("critical", "DiskFull"), ("warning", "SlowQueries"), ("info", "CertExpiresSoon")):
        wait_for_message(rocketchat, hook, resolved_with(name), f"resolving {name}", alertmanager)

    assert_alertmanager_delivered(alertmanager, logs)

    for route in ("critical", "warning", "info"):
        wait_for_log(logs, re.escape(SUCCESS_LINE) + rf" \(route={route} ", alertmanager)
    records = list(logs.records)
    tokens = {name: rocketchat.token(name) for name in ("critical", "warning", "info")}
    for record in records:
        line = record.getMessage()
        if record.exc_info:
            line += logging.Formatter().formatException(record.exc_info)
        for name, token in tokens.items():
            assert token not in line, f"the {name} hook's token is in a log line: {line}"
    assert not [r.getMessage() for r in records if r.levelno >= logging.WARNING]


# --- delivery that loses nothing and posts nothing twice ------------------------------------------
#
# rcwebhook answers 503 when a post is still pending at DELIVERY_DEADLINE (1 s here) and keeps it
# queued; Alertmanager retries 5xx with backoff (0.5 s, x1.5) and each retry of the same
# notification attaches to the pending post or is answered "already-delivered".  Pacing is off so
# that the couriers' own backoff is the only wait.

OUTAGE_SETTINGS = {"DELIVERY_DEADLINE": "1", "DELIVERY_TIMEOUT": "2", "ROCKETCHAT_RATE_LIMIT": "0"}
SETTLE_TIMEOUT = 15.0  # couriers back off up to ~4 s after a few seconds of outage; room for slow CI

_RECEIVED = re.compile(r"^Notification received: .* groupKey=(\S+) status=(\w+) alerts=")
_ANSWERED = re.compile(r'"POST /webhook HTTP/1\.1" (\d{3}) ')


def group_key(service: str) -> str:
    """Return Alertmanager 0.25's groupKey for the group of `service` under CONFIG's route."""
    return '{}:{service="%s"}' % service


def webhook_exchanges(logs) -> List[Tuple[str, str, int]]:
    """Return (groupKey, group status, HTTP status) of each POST /webhook rcwebhook answered, in order.

    A request is handled on one thread, which logs "Notification received" before the access
    line of its answer, so the two are paired per thread.
    """
    received: Dict[int, Tuple[str, str]] = {}
    exchanges = []
    for record in list(logs.records):
        line = record.getMessage()
        match = _RECEIVED.search(line)
        if match:
            received[record.emitted_by] = (match.group(1), match.group(2))
            continue
        match = _ANSWERED.search(line)
        if match and record.emitted_by in received:
            exchanges.append((*received.pop(record.emitted_by), int(match.group(1))))
    return exchanges


def answers_for(logs, key: str, status: str) -> List[int]:
    """Return the HTTP statuses rcwebhook answered to Alertmanager's `status` notifications of group `key`."""
    return [code for group, state, code in webhook_exchanges(logs) if group == key and state == status]


def posted_alerts(rocketchat, hook: str) -> Counter:
    """Count the attachments of every message accepted on `hook`, by (alert name, firing|resolved)."""
    counts: Counter = Counter()
    for message in rocketchat.messages(hook):
        for attachment in message.get("attachments") or []:
            state = "resolved" if attachment["title"].startswith("Resolved: ") else "firing"
            counts[(alert_names({"attachments": [attachment]})[0], state)] += 1
    return counts


def wait_until(condition: Callable[[], bool], what: str, manager: Alertmanager, explain: Callable[[], str],
               timeout: float = NOTIFY_TIMEOUT) -> None:
    """Poll `condition` until it holds; fail with `explain()` and Alertmanager's stderr after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}\n{explain()}{manager.explain()}")
        manager.pause(0.05)


def picture(rocketchat, logs, manager: Alertmanager) -> Callable[[], str]:
    """Return a function describing the state of all three parties, for assertion messages."""
    def describe() -> str:
        try:
            metrics = manager.webhook_metrics()
        except OSError as exc:
            metrics = {"unavailable": str(exc)}  # type: ignore[dict-item]
        statuses = {hook: [r["status"] or r["outcome"] for r in rocketchat.requests(hook)]
                    for hook in ("critical", "warning", "info")}
        return (f"exchanges (groupKey, status, answer): {webhook_exchanges(logs)}\n"
                f"Alertmanager webhook metrics: {metrics}\n"
                f"Rocket.Chat request statuses: {statuses}\n"
                f"posted: {json.dumps(rocketchat.all_messages(), indent=1)[:3000]}\n"
                f"rcwebhook log:\n" + "\n".join(logs.lines()[-80:]))
    return describe


def wait_until_settled(manager: Alertmanager, logs, daemon, keys: List[str], status: str,
                       explain: Callable[[], str]) -> None:
    """Wait until Alertmanager got 200 for its latest `status` notification of every group in `keys`,
    rcwebhook answered every request Alertmanager made, and no post is pending."""
    def settled() -> bool:
        answered = [line for line in logs.lines() if '"POST /webhook ' in line]
        sent = manager.webhook_metrics().get("alertmanager_notification_requests_total", 0)
        return (all(answers_for(logs, key, status)[-1:] == [200] for key in keys)
                and len(answered) == sent
                and daemon.server.deliverer.pending_count() == 0)
    wait_until(settled, f"Alertmanager's {status} notifications of {keys} answered 200 and nothing pending",
               manager, explain, SETTLE_TIMEOUT)


API_DOWN = AlertSpec("ApiDown", {"severity": "critical", "service": "web", "instance": "web1:8080"},
                     {"summary": "API answers 5xx"})
API_LATENCY = AlertSpec("ApiLatencyHigh", {"severity": "warning", "service": "web", "instance": "web1:8080"},
                        {"summary": "p99 latency above 1s"})
CERT_EXPIRES = AlertSpec("CertExpiresSoon", {"severity": "warning", "service": "web"},
                         {"summary": "certificate expires in 7 days"})
QUEUE_STUCK = AlertSpec("QueueStuck", {"severity": "critical", "service": "queue"},
                        {"summary": "no message consumed for 10 minutes"})


def test_rocketchat_outage_loses_nothing_and_posts_nothing_twice(rocketchat, hooks, start_daemon,
                                                                  start_alertmanager, logs):
    groups = {
        group_key("storage"): [DISK_FULL, SLOW_QUERIES],  # one group holding both severities
        group_key("web"): [API_DOWN, API_LATENCY, CERT_EXPIRES],
        group_key("queue"): [QUEUE_STUCK],
    }
    alerts = [alert for members in groups.values() for alert in members]
    expected = {
        hook: sorted(a.name for a in alerts if a.labels["severity"] == hook) for hook in ("critical", "warning")
    }
    # Rocket.Chat is down: the critical hook answers 503, the warning one resets connections, then 503.
    rocketchat.disable("critical")
    rocketchat.fail_next("warning", 3, mode="reset")
    rocketchat.disable("warning")
    daemon = start_daemon(**daemon_settings(hooks, **OUTAGE_SETTINGS))
    manager = start_alertmanager(daemon.url)
    explain = picture(rocketchat, logs, manager)

    manager.fire(*alerts)

    # Alertmanager gets 503 for every group and retries each at least once while Rocket.Chat is down.
    wait_until(lambda: all(answers_for(logs, key, "firing")[:2] == [503, 503] for key in groups),
               "Alertmanager retried every group after a 503", manager, explain)
    assert rocketchat.messages("critical") == [] and rocketchat.messages("warning") == []
    wait_for_log(logs, r'^127\.0\.0\.1 "POST /webhook HTTP/1\.1" 503 \d+ ', manager)
    assert manager.webhook_metrics().get("alertmanager_notification_requests_failed_total", 0) >= 2 * len(groups), (
        explain())

    # Rocket.Chat comes back.
    rocketchat.disable("critical", False)
    rocketchat.disable("warning", False)
    wait_until_settled(manager, logs, daemon, list(groups), "firing", explain)

    for hook in ("critical", "warning"):
        assert posted_alerts(rocketchat, hook) == Counter({(name, "firing"): 1 for name in expected[hook]}), (
            f"hook {hook!r}: every firing alert exactly once\n{explain()}")
        assert all("[FIRING:" in m["text"] for m in rocketchat.messages(hook)), explain()
    assert [r["status"] for r in rocketchat.requests("warning")][:3] == [0, 0, 0], explain()
    assert rocketchat.requests("info") == []
    metrics = manager.webhook_metrics()
    assert metrics.get("alertmanager_notifications_failed_total", 0) == 0, explain()  # no retry ran out

    # Resolving while Rocket.Chat still hiccups: each resolved alert arrives exactly once too.
    rocketchat.fail_next("critical", 3, mode="reset")
    rocketchat.fail_next("warning", 3, status=502, error="Bad Gateway")
    manager.resolve(*alerts)
    wait_until_settled(manager, logs, daemon, list(groups), "resolved", explain)

    for hook in ("critical", "warning"):
        wanted = Counter({(name, state): 1 for name in expected[hook] for state in ("firing", "resolved")})
        assert posted_alerts(rocketchat, hook) == wanted, f"hook {hook!r}: each alert once per state\n{explain()}"
    # Three failures back off for at least 0.4 + 0.6 + 0.9 s, past the 1 s deadline: Alertmanager saw a 503.
    assert any(503 in answers_for(logs, key, "resolved") for key in groups), explain()
    assert rocketchat.requests("info") == []
    assert manager.webhook_metrics().get("alertmanager_notifications_failed_total", 0) == 0, explain()


def test_alertmanager_retry_after_partial_success_posts_only_the_missing_route(
        rocketchat, hooks, start_daemon, start_alertmanager, logs):
    rocketchat.disable("warning")
    daemon = start_daemon(**daemon_settings(hooks, **OUTAGE_SETTINGS))
    manager = start_alertmanager(daemon.url)
    explain = picture(rocketchat, logs, manager)
    key = group_key("storage")

    manager.add(DISK_FULL)
    manager.add(SLOW_QUERIES)

    wait_for_message(rocketchat, "critical", firing_with("DiskFull"), "firing DiskFull", manager)
    # Alertmanager re-sends the whole group; the critical post is not made again.
    wait_for_log(logs, r"^Already posted: route=critical alerts=DiskFull;", manager)
    wait_until(lambda: answers_for(logs, key, "firing")[:2] == [503, 503],
               "Alertmanager got 503 twice for the storage group", manager, explain)
    assert [r["status"] for r in rocketchat.requests("critical")] == [200], explain()
    assert rocketchat.messages("warning") == []

    rocketchat.disable("warning", False)
    wait_until_settled(manager, logs, daemon, [key], "firing", explain)

    assert posted_alerts(rocketchat, "critical") == Counter({("DiskFull", "firing"): 1}), explain()
    assert posted_alerts(rocketchat, "warning") == Counter({("SlowQueries", "firing"): 1}), explain()
    assert [r["status"] for r in rocketchat.requests("critical")] == [200], explain()
    assert rocketchat.requests("warning")[-1]["status"] == 200
    assert len(answers_for(logs, key, "firing")) >= 2
    assert manager.webhook_metrics().get("alertmanager_notification_requests_failed_total", 0) >= 2, explain()
    assert rocketchat.requests("info") == []


DISK_SLOW = AlertSpec("DiskSlow", {"severity": "critical", "service": "storage", "instance": "db1:9100"},
                      {"summary": "disk latency above 100ms"})


def test_group_that_grows_during_a_long_outage_posts_each_alert_once(rocketchat, hooks, start_daemon,
                                                                    start_alertmanager, logs):
    rocketchat.disable("critical")
    daemon = start_daemon(**daemon_settings(hooks, **OUTAGE_SETTINGS))
    manager = start_alertmanager(daemon.url)
    explain = picture(rocketchat, logs, manager)
    key = group_key("storage")
    manager.fire(DISK_FULL)
    wait_until(lambda: answers_for(logs, key, "firing")[:1] == [503], "a 503 for the storage group", manager,
               explain)

    manager.add(DISK_SLOW)  # joins the group; Alertmanager sends it once its current notification gives up
    wait_until(lambda: any(_RECEIVED.search(line) and " alerts=2 " in line for line in logs.lines()),
               "the storage group re-sent with both alerts after Alertmanager's 10 s deadline", manager, explain,
               timeout=15.0)
    assert manager.webhook_metrics().get("alertmanager_notifications_failed_total", 0) >= 1, explain()
    rocketchat.disable("critical", False)
    wait_until_settled(manager, logs, daemon, [key], "firing", explain)

    assert posted_alerts(rocketchat, "critical") == Counter({("DiskFull", "firing"): 1, ("DiskSlow", "firing"): 1}), (
        explain())


# --- examples/alertmanager.yml, as an operator copies it ----------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "alertmanager.yml"


def example_config(daemon_url: str, uncomment_auth: bool = False) -> str:
    """Return examples/alertmanager.yml with only what this test must change: rcwebhook's port (8093
    may be taken here) and group_wait (30 s, which only slows the test); the auth block uncommented
    on request, as its comment says to do."""
    text = EXAMPLE.read_text()
    assert "url: http://127.0.0.1:8093/webhook" in text and "group_wait: 30s" in text
    text = text.replace("http://127.0.0.1:8093", daemon_url).replace("group_wait: 30s", "group_wait: 1s")
    if uncomment_auth:
        text = re.sub(r"^(\s*)#(http_config:|  authorization:|    type: Bearer|    credentials_file: .*)$",
                      r"\1\2", text, flags=re.M)
    return text


def test_the_example_configuration_delivers_as_copied(rocketchat, hooks, start_daemon, start_alertmanager, logs):
    manager = start_alertmanager("", example_config(start_daemon(**daemon_settings(hooks)).url))
    manager.add(DISK_FULL)
    wait_for_message(rocketchat, "critical", firing_with("DiskFull"), "firing DiskFull", manager)
    assert_alertmanager_delivered(manager, logs)


def test_the_example_authentication_step_delivers_with_the_api_key(rocketchat, hooks, start_daemon,
                                                                   start_alertmanager, logs, tmp_path):
    key_file = tmp_path / "rcwebhook-api-key"
    key_file.write_text("s3cret-key-of-the-example\n")
    daemon = start_daemon(**daemon_settings(hooks, API_KEY="s3cret-key-of-the-example"))
    config = example_config(daemon.url, uncomment_auth=True)
    assert "\n        http_config:\n          authorization:\n" in config, config
    manager = start_alertmanager("", config.replace("/etc/prometheus/rcwebhook-api-key", str(key_file)))
    manager.add(DISK_FULL)
    wait_for_message(rocketchat, "critical", firing_with("DiskFull"), "firing DiskFull", manager)
    assert_alertmanager_delivered(manager, logs)
