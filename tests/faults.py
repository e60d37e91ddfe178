"""Helpers of the fault suite (tests/test_faults.py).

- RecordingProxy: sits between Alertmanager (or a test) and rcwebhook on 127.0.0.1, forwards each
  POST unchanged and records what was sent and what rcwebhook answered.
- check(): the one invariant checker.  From the proxy's exchanges and the stand-in's accepted
  posts it decides, per route and alert, whether every alert state Alertmanager sent was posted
  exactly once and in order (or every request carrying it got a non-2xx answer), and whether the
  channel ends showing FIRING for an alert Alertmanager resolved.
- Alertmanager (optionally clustered), RcwebhookProcess (a subprocess that can be killed or sent
  SIGHUP), payload builders and an Alertmanager-like retrying sender for crafted notifications.

Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from tests.programs import ALERTMANAGER_CONFIG, ProgramOnPort, free_port

ROOT = Path(__file__).resolve().parent.parent
ROUTES = ("critical", "warning", "info")
STARTED_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
FIRING, RESOLVED = "firing", "resolved"
RACE_MARGIN = 0.05  # seconds: states that reach the proxy closer than this may reach rcwebhook in either order


# --- time ---------------------------------------------------------------------------------------

_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:[Zz]|([+-])(\d\d):(\d\d))$")


def parse_time(text: str) -> Optional[datetime]:
    """Return an RFC 3339 time (nanoseconds allowed, as Alertmanager writes them) as an aware datetime."""
    match = _RFC3339.match(text or "")
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    value = datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone.utc)
    if match.group(8):
        offset = timedelta(hours=int(match.group(9)), minutes=int(match.group(10)))
        value -= offset if match.group(8) == "+" else -offset
    if value.year <= 1:
        return None  # Go's zero time: "not set"
    return value


def rfc3339(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def started_label(starts_at: str) -> str:
    """Return the `Started` field rcwebhook shows for a startsAt."""
    parsed = parse_time(starts_at)
    return parsed.strftime(STARTED_FORMAT) if parsed else ""


def whole_second(offset: float = 0.0) -> datetime:
    """Return now + offset seconds, cut to the second (so startsAt and its `Started` field agree)."""
    return datetime.fromtimestamp(int(time.time() + offset), timezone.utc)


# --- the recording proxy ------------------------------------------------------------------------


@dataclass
class Exchange:
    """One POST that went through the proxy."""

    seq: int
    source: str  # the first path segment the sender used (am1, am2, test, ...)
    sent: float  # monotonic, when the request arrived at the proxy
    wall: float  # time.time() at arrival
    body: Optional[Dict[str, Any]]
    status: int = -1  # rcwebhook's answer; 0: no answer (connection failed); -1: still in flight
    answered: float = 0.0  # monotonic, when rcwebhook's answer (or the failure) came back
    answer: str = ""  # rcwebhook's answer body (cut), or the connection error

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def alerts(self) -> List[Dict[str, Any]]:
        return list((self.body or {}).get("alerts") or [])

    def carries(self, name: str, status: Optional[str] = None) -> bool:
        for alert in self.alerts():
            if (alert.get("labels") or {}).get("alertname") == name:
                if status is None or _alert_status(alert, self.body or {}) == status:
                    return True
        return False


class RecordingProxy:
    """A ThreadingHTTPServer on 127.0.0.1 forwarding POST /<source>/webhook (or /webhook) to rcwebhook."""

    def __init__(self, target_port: int, timeout: float = 60.0) -> None:
        self.target_port = target_port
        self.timeout = timeout
        self._lock = threading.Condition()
        self._exchanges: List[Exchange] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - stdlib name
                proxy._forward(self)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="recording-proxy", daemon=True)

    def __enter__(self) -> "RecordingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, source: str = "test") -> str:
        """Return the webhook URL a sender should use; `source` names it in the records."""
        return f"http://127.0.0.1:{self.port}/{source}/webhook"

    def exchanges(self) -> List[Exchange]:
        with self._lock:
            return [Exchange(**vars(e)) for e in self._exchanges]

    def in_flight(self) -> int:
        with self._lock:
            return sum(1 for e in self._exchanges if e.status == -1)

    def last_activity(self) -> float:
        with self._lock:
            return max([0.0] + [max(e.sent, e.answered) for e in self._exchanges])

    def _forward(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        parts = [p for p in handler.path.split("?")[0].split("/") if p]
        source = parts[0] if len(parts) == 2 else "-"
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        with self._lock:
            exchange = Exchange(len(self._exchanges), source, time.monotonic(), time.time(),
                                body if isinstance(body, dict) else None)
            self._exchanges.append(exchange)
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() in ("content-type", "authorization", "user-agent", "x-api-key")}
        status, answer_headers, answer = 503, {"Content-Type": "application/json"}, b""
        connection = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=self.timeout)
        try:
            connection.request("POST", "/webhook", body=raw, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            status = response.status
            answer_headers = {k: v for k, v in response.headers.items()
                              if k.lower() in ("content-type", "retry-after")}
            recorded, note = status, answer.decode("utf-8", "replace")[:600]
        except (OSError, http.client.HTTPException) as exc:
            recorded, note = 0, f"proxy: no answer from rcwebhook: {type(exc).__name__}: {exc}"
            answer = json.dumps({"status": "error", "error": note}).encode()
        finally:
            connection.close()
        with self._lock:
            exchange.status, exchange.answered, exchange.answer = recorded, time.monotonic(), note
            self._lock.notify_all()
        try:
            handler.send_response(status)
            for name, value in answer_headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(answer)))
            handler.end_headers()
            handler.wfile.write(answer)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True  # the sender gave up meanwhile (Alertmanager's own timeout)


# --- what the stand-in accepted -----------------------------------------------------------------


@dataclass
class Shown:
    """One attachment of an accepted post: the alert state it shows."""

    name: str
    status: str
    started: str


@dataclass
class Post:
    """One message Rocket.Chat accepted."""

    hook: str
    route: str
    at: float  # the stand-in's clock (monotonic) when the request arrived
    index: int  # position among the hook's accepted messages
    shown: List[Shown]


def shown_states(message: Mapping[str, Any]) -> List[Shown]:
    """Return the alert state each attachment of a posted message shows."""
    states = []
    for attachment in message.get("attachments") or []:
        title = attachment.get("title") or ""
        status = FIRING
        if title.startswith("Resolved: "):
            status, title = RESOLVED, title[len("Resolved: "):]
        fields = {f.get("title"): f.get("value") for f in attachment.get("fields") or []}
        states.append(Shown(title.split(":", 1)[0], status, fields.get("Started") or ""))
    return states


def _posted(request: Mapping[str, Any]) -> bool:
    """Return whether a stand-in request record is a message Rocket.Chat posted."""
    body = request.get("body") or {}
    something = bool(body.get("text") or body.get("msg") or body.get("attachments"))
    return something and (request.get("status") == 200 or request.get("outcome") == "accept_reset")


def collect_posts(standin, hooks_by_route: Mapping[str, Sequence[str]]) -> List[Post]:
    """Return every message the stand-in posted on the given hooks, ordered by arrival."""
    posts: List[Post] = []
    for route, hooks in hooks_by_route.items():
        for hook in hooks:
            requests = [r for r in standin.requests(hook) if _posted(r)]
            messages = standin.messages(hook)
            assert len(requests) == len(messages), (
                f"hook {hook}: {len(messages)} messages but {len(requests)} posting requests; "
                f"the stand-in's records changed shape?")
            for index, request in enumerate(requests):
                posts.append(Post(hook, route, request["at"], index, shown_states(messages[index])))
    posts.sort(key=lambda p: (p.at, p.hook, p.index))
    return posts


def count_429(standin, hooks: Iterable[str]) -> int:
    return sum(standin.count_429(hook) for hook in hooks)


def stand_in_activity(standin, hooks: Iterable[str]) -> Tuple[int, float]:
    """Return (requests so far, time of the latest) over `hooks`."""
    count, latest = 0, 0.0
    for hook in hooks:
        requests = standin.requests(hook)
        count += len(requests)
        latest = max([latest] + [r["at"] for r in requests])
    return count, latest


# --- the invariant checker -------------------------------------------------------------------


def default_route(labels: Mapping[str, str]) -> str:
    """rcwebhook's routing with default settings: the severity label, else warning."""
    severity = (labels.get("severity") or "").strip().lower()
    return severity if severity in ROUTES else "warning"


def _alert_status(alert: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    return alert.get("status") or body.get("status") or FIRING


@dataclass
class Occurrence:
    """An alert state that is owed its own post: a state, or a re-fire or reminder of it."""

    route: str
    alert: str
    status: str
    starts_at: str
    ends_at: str
    phase: int  # per startsAt: 0 firing, 1 resolved, 2 fired again, 3 resolved again...
    remind: int  # 0, or the how-manieth reminder of the same state
    stale: bool  # it first arrived after a newer state of the alert was known: never to be posted
    first_seen: float
    copies: List[Exchange] = field(default_factory=list)
    posts: List[Post] = field(default_factory=list)

    @property
    def started(self) -> str:
        return started_label(self.starts_at)

    @property
    def key(self) -> Tuple[float, int, int]:
        parsed = parse_time(self.starts_at)
        return (parsed.timestamp() if parsed else 0.0, self.phase, self.remind)

    @property
    def ends_epoch(self) -> float:
        parsed = parse_time(self.ends_at)
        return parsed.timestamp() if parsed else 0.0

    def first_ack(self) -> Optional[float]:
        acks = [e.answered for e in self.copies if e.ok]
        return min(acks) if acks else None

    def last_ack_before(self, moment: float) -> Optional[float]:
        acks = [e.answered for e in self.copies if e.ok and e.answered <= moment]
        return max(acks) if acks else None

    def describe(self, t0: float) -> str:
        what = self.status.upper() + (f" (re-fire {self.phase // 2})" if self.status == FIRING and self.phase else "")
        what += f" (reminder {self.remind})" if self.remind else ""
        what += " (stale on arrival)" if self.stale else ""
        ends = f" endsAt={self.ends_at}" if self.status == RESOLVED else ""
        copies = ", ".join(f"#{e.seq} {e.source} +{e.sent - t0:.2f}s->{e.status or 'no answer'}" for e in self.copies)
        posts = ", ".join(f"{p.hook}[{p.index}] +{p.at - t0:.2f}s" for p in self.posts) or "never"
        return f"{what} startsAt={self.starts_at}{ends}: requests [{copies}]; posted {posts}"


@dataclass
class Violation:
    kind: str  # duplicate, loss, disorder, stale-post, ends-firing, acked-before-posted, misrouted, phantom
    route: str
    alert: str
    detail: str


@dataclass
class Report:
    """What check() found."""

    occurrences: Dict[Tuple[str, str], List[Occurrence]]
    posts: List[Post]
    exchanges: List[Exchange]
    violations: List[Violation]
    http429: int = 0
    t0: float = 0.0

    def count(self, kind: str) -> int:
        return sum(1 for v in self.violations if v.kind == kind)

    @property
    def duplicates(self) -> int:
        return self.count("duplicate")

    @property
    def losses(self) -> int:
        return self.count("loss")

    @property
    def alerts(self) -> int:
        return len({alert for _, alert in self.occurrences})

    @property
    def states(self) -> int:
        return sum(len(o) for o in self.occurrences.values())

    def summary(self, scenario: str, seconds: float) -> str:
        non2xx = sum(1 for e in self.exchanges if not e.ok)
        return (f"FAULT-SUMMARY scenario={scenario} alerts={self.alerts} states={self.states} "
                f"requests={len(self.exchanges)} non2xx={non2xx} posts={len(self.posts)} "
                f"duplicates={self.duplicates} losses={self.losses} http429={self.http429} "
                f"seconds={seconds:.1f} violations={len(self.violations)}")

    def explain(self, limit: int = 12) -> str:
        """Return every violation, then each offending alert's states, requests and posts."""
        lines = [f"{len(self.violations)} invariant violation(s):"]
        lines += [f"  {v.kind}: route={v.route} alert={v.alert}: {v.detail}" for v in self.violations]
        offending = list(dict.fromkeys((v.route, v.alert) for v in self.violations))
        for route, alert in offending[:limit]:
            lines.append(f"alert {alert} (route {route}):")
            for occurrence in self.occurrences.get((route, alert), []):
                lines.append("    " + occurrence.describe(self.t0))
            shown = [f"{p.hook}[{p.index}] +{p.at - self.t0:.2f}s {s.status.upper()} {s.started}"
                     for p in self.posts for s in p.shown if s.name == alert]
            lines.append(f"    posts showing it, in order: {shown or 'none'}")
        if len(offending) > limit:
            lines.append(f"... and {len(offending) - limit} more offending alerts")
        statuses = [f"#{e.seq} {e.source} +{e.sent - self.t0:.2f}s {e.status}" for e in self.exchanges]
        lines.append(f"all requests (seq source arrival status): {statuses[:200]}")
        return "\n".join(lines)

    def assert_clean(self, context: str = "") -> None:
        assert not self.violations, self.explain() + (f"\n{context}" if context else "")


def _model(exchanges: Sequence[Exchange], dedup_window: float,
           route_of: Callable[[Mapping[str, str]], str]) -> Dict[Tuple[str, str], List[Occurrence]]:
    """Return, per (route, alert name), the occurrences Alertmanager's requests carried, in arrival order.

    A state is (status, startsAt, endsAt when resolved).  A FIRING with the startsAt of a known
    RESOLVED is a re-fire (a new occurrence) when it arrives more than `dedup_window` seconds after
    that endsAt, else a stale copy.  A copy of a state arriving more than `dedup_window` after the
    last 2xx answer for it is a reminder (a new occurrence), unless another alert of the same request
    brings news (the group changed).  Anything else is a copy (retry, HA peer).
    """
    occurrences: Dict[Tuple[str, str], List[Occurrence]] = {}

    def brings_news(exchange: Exchange, alert: Mapping[str, Any]) -> bool:
        """Whether `alert` in `exchange` is a state not seen before (a new occurrence, not a reminder)."""
        labels = alert.get("labels") or {}
        status = _alert_status(alert, exchange.body or {})
        starts_at = alert.get("startsAt") or ""
        known = occurrences.get((route_of(labels), labels.get("alertname") or "(unnamed)"), [])
        series = [o for o in known if o.starts_at == starts_at]
        current = max(series, key=lambda o: (o.phase, o.remind), default=None)
        if current is None:
            return True
        if status == RESOLVED:
            ends_at = alert.get("endsAt") or ""
            return current.status == FIRING and not any(
                o.status == RESOLVED and o.ends_at == ends_at for o in series)
        return current.status == RESOLVED and exchange.wall - current.ends_epoch > dedup_window

    for exchange in sorted(exchanges, key=lambda e: (e.sent, e.seq)):
        body = exchange.body or {}
        # Alertmanager sends a whole group again when it changes: its other alerts are copies then,
        # not reminders, as rcwebhook's ledger has it. Only a notification without news reminds.
        may_remind = not any(brings_news(exchange, alert) for alert in exchange.alerts())
        for alert in exchange.alerts():
            labels = alert.get("labels") or {}
            name = labels.get("alertname") or "(unnamed)"
            route = route_of(labels)
            status = _alert_status(alert, body)
            starts_at = alert.get("startsAt") or ""
            ends_at = (alert.get("endsAt") or "") if status == RESOLVED else ""
            known = occurrences.setdefault((route, name), [])
            series = [o for o in known if o.starts_at == starts_at]
            current = max(series, key=lambda o: (o.phase, o.remind), default=None)

            def new(phase: int, remind: int = 0, stale: Optional[bool] = None) -> Occurrence:
                occurrence = Occurrence(route, name, status, starts_at, ends_at, phase, remind, False, exchange.sent)
                if stale is None:
                    stale = any(o.key > occurrence.key and o.first_seen < exchange.sent - RACE_MARGIN for o in known)
                occurrence.stale = stale
                known.append(occurrence)
                return occurrence

            def same_or_reminder(occurrence: Occurrence) -> Occurrence:
                last_ack = occurrence.last_ack_before(exchange.sent)
                if (may_remind and occurrence is current and last_ack is not None
                        and exchange.sent - last_ack > dedup_window):
                    return new(occurrence.phase, occurrence.remind + 1, stale=False)
                return occurrence

            if status == RESOLVED:
                matching = [o for o in series if o.status == RESOLVED and o.ends_at == ends_at]
                if matching:
                    target = same_or_reminder(matching[-1])
                elif current is None:
                    target = new(1)
                elif current.status == FIRING:
                    target = new(current.phase + 1)
                else:
                    target = same_or_reminder(current)  # another endsAt for the same resolution
            else:
                if current is None:
                    target = new(0)
                elif current.status == FIRING:
                    target = same_or_reminder(current)
                elif exchange.wall - current.ends_epoch > dedup_window:
                    target = new(current.phase + 1)  # fired again after its resolution: newer news
                else:
                    earlier = [o for o in series if o.status == FIRING and o.phase < current.phase]
                    target = max(earlier, key=lambda o: (o.phase, o.remind)) if earlier else \
                        new(current.phase - 1, stale=True)
            target.copies.append(exchange)
    return occurrences


def check(exchanges: Sequence[Exchange], posts: Sequence[Post], *, dedup_window: float = 60.0,
          route_of: Callable[[Mapping[str, str]], str] = default_route, http429: int = 0) -> Report:
    """Return the Report of the invariant over what the proxy recorded and the stand-in posted.

    Per route and alert, the posts showing it must map one-to-one, in order, onto the states
    Alertmanager sent: a state answered 2xx must be posted (unless a newer state of the alert was
    posted before that answer), before its 2xx answer; a state whose every request got a non-2xx
    answer may be posted once or not at all; nothing is posted twice, out of order, on another
    route, or when it arrived after a newer state of its alert; and the last post of an alert is not
    FIRING when the newest state sent is RESOLVED.
    """
    model = _model(exchanges, dedup_window, route_of)
    violations: List[Violation] = []
    route_by_alert = {alert: route for route, alert in model}
    for post in posts:
        for shown in post.shown:
            route = route_by_alert.get(shown.name)
            occurrences = model.get((post.route, shown.name))
            if occurrences is None:
                if route is not None:
                    violations.append(Violation("misrouted", post.route, shown.name,
                                                f"{post.hook}[{post.index}] shows it; its route is {route}"))
                else:
                    violations.append(Violation("phantom", post.route, shown.name,
                                                f"{post.hook}[{post.index}] shows an alert no request carried"))
                continue
    for (route, alert), occurrences in model.items():
        ordered = sorted(occurrences, key=lambda o: o.key)
        shown_posts = [(p, s) for p in posts if p.route == route for s in p.shown if s.name == alert]
        last: Optional[Occurrence] = None
        for post, shown in shown_posts:
            where = f"{post.hook}[{post.index}] {shown.status.upper()} started {shown.started}"
            candidates = [o for o in ordered if o.status == shown.status and o.started == shown.started]
            if not candidates:
                violations.append(Violation("phantom", route, alert, f"{where}: no request carried this state"))
                continue
            later = [o for o in candidates if not o.posts and (last is None or o.key > last.key)]
            if later:
                target = later[0]
            elif any(not o.posts for o in candidates):
                target = next(o for o in candidates if not o.posts)
                violations.append(Violation("disorder", route, alert, f"{where}: posted after a newer state "
                                            f"({last.status.upper() if last else '?'} started {last.started if last else '?'})"))
            else:
                target = candidates[-1]
                violations.append(Violation("duplicate", route, alert,
                                            f"{where}: posted again (first at {target.posts[0].hook}"
                                            f"[{target.posts[0].index}])"))
            if target.stale and not target.posts:
                violations.append(Violation("stale-post", route, alert, f"{where}: this state arrived after a "
                                            "newer state of the alert was known and must not be posted"))
            target.posts.append(post)
            if last is None or target.key > last.key:
                last = target
        for occurrence in ordered:
            acked = occurrence.first_ack()
            if acked is None:
                continue  # every request carrying it got a non-2xx answer: posting it is optional
            newer_before = [o for o in ordered if o.key > occurrence.key and o.posts and o.posts[0].at <= acked]
            if newer_before:
                continue
            if not occurrence.posts:
                violations.append(Violation("loss", route, alert, f"{occurrence.status.upper()} started "
                                            f"{occurrence.started} was answered 2xx but never posted"))
            elif occurrence.posts[0].at > acked:
                violations.append(Violation("acked-before-posted", route, alert,
                                            f"{occurrence.status.upper()} started {occurrence.started} was "
                                            f"answered 2xx {occurrence.posts[0].at - acked:.2f}s before its post"))
        if shown_posts and ordered[-1].status == RESOLVED and shown_posts[-1][1].status == FIRING:
            violations.append(Violation("ends-firing", route, alert, "the channel's last word on it is FIRING, "
                                        "but Alertmanager resolved it"))
    t0 = min([e.sent for e in exchanges] + [p.at for p in posts], default=0.0)
    return Report(model, list(posts), list(exchanges), violations, http429, t0)


# --- waiting ----------------------------------------------------------------------------------


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 15.0,
               explain: Callable[[], str] = lambda: "", poll: float = 0.05) -> Any:
    """Return condition()'s first true value, polling until `timeout`; fail with explain() after it."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g}s: {what}\n{explain()}")
        time.sleep(poll)


def acknowledged(proxy: RecordingProxy, wanted: Mapping[str, str]) -> bool:
    """Return whether every alert name in `wanted` came with its status in a request answered 2xx."""
    exchanges = [e for e in proxy.exchanges() if e.ok]
    return all(any(e.carries(name, status) for e in exchanges) for name, status in wanted.items())


def refused(proxy: RecordingProxy, name: str, status: Optional[str] = None, source: Optional[str] = None) -> bool:
    """Return whether a request carrying alert `name` (in `status`, from `source`) got a non-2xx answer."""
    return any(e.status not in (-1,) and not e.ok and e.carries(name, status)
               and (source is None or e.source == source) for e in proxy.exchanges())


def wait_quiet(proxy: RecordingProxy, standin, hooks: Iterable[str], quiet: float, timeout: float,
               explain: Callable[[], str] = lambda: "") -> None:
    """Wait until nothing is in flight at the proxy and neither it nor the stand-in saw a request for `quiet` s."""
    hooks = list(hooks)

    def calm() -> bool:
        latest = max(proxy.last_activity(), stand_in_activity(standin, hooks)[1])
        return proxy.in_flight() == 0 and time.monotonic() - latest >= quiet

    wait_until(calm, f"no request for {quiet:g}s at the proxy and the stand-in", timeout, explain)


# --- crafted notifications -------------------------------------------------------------------


def fingerprint(labels: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:16]


def alert_item(name: str, severity: str, status: str, starts_at: datetime, ends_at: Optional[datetime] = None,
               **labels: str) -> Dict[str, Any]:
    """Return one alert of a version-4 webhook payload."""
    all_labels = {"alertname": name, "severity": severity, **labels}
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{name} {status}"},
        "startsAt": rfc3339(starts_at),
        "endsAt": rfc3339(ends_at) if ends_at is not None else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com/graph",
        "fingerprint": fingerprint(all_labels),
    }


def notification(alerts: Sequence[Dict[str, Any]], group: str) -> Dict[str, Any]:
    """Return a version-4 webhook payload for `alerts` of the group `group`."""
    status = FIRING if any(a["status"] == FIRING for a in alerts) else RESOLVED
    return {
        "version": "4",
        "groupKey": '{}:{group="%s"}' % group,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "rcwebhook",
        "groupLabels": {"group": group},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com",
        "alerts": list(alerts),
    }


def post_once(url: str, payload: Mapping[str, Any], timeout: float = 30.0) -> int:
    """POST a payload; return the status (0: no answer)."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        return exc.code
    except OSError:
        return 0


class Sender(threading.Thread):
    """Sends one notification the way Alertmanager does: again after each non-2xx answer, with backoff."""

    def __init__(self, url: str, payload: Mapping[str, Any], deadline: float = 30.0,
                 first_backoff: float = 0.2, factor: float = 1.5, cap: float = 1.5) -> None:
        super().__init__(daemon=True, name=f"sender {payload.get('groupKey')}")
        self.url, self.payload, self.deadline = url, payload, deadline
        self.first_backoff, self.factor, self.cap = first_backoff, factor, cap
        self.statuses: List[int] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        end = time.monotonic() + self.deadline
        backoff = self.first_backoff
        while not self.stop_event.is_set() and time.monotonic() < end:
            status = post_once(self.url, self.payload)
            self.statuses.append(status)
            if 200 <= status < 300:
                return
            self.stop_event.wait(backoff)
            backoff = min(self.cap, backoff * self.factor)

    @property
    def delivered(self) -> bool:
        return bool(self.statuses) and 200 <= self.statuses[-1] < 300


def send(url: str, payload: Mapping[str, Any], deadline: float = 30.0) -> List[int]:
    """Send like Alertmanager until a 2xx answer or `deadline`; return every status answered."""
    sender = Sender(url, payload, deadline)
    sender.run()
    return sender.statuses


# --- Alertmanager ---------------------------------------------------------------------------------

AM_CONFIG = ALERTMANAGER_CONFIG


@dataclass(frozen=True)
class Spec:
    """An alert as a test gives it to Alertmanager (as Prometheus would: with its startsAt)."""

    name: str
    severity: str
    service: str
    starts_at: datetime

    def body(self, ends_at: datetime) -> Dict[str, Any]:
        return {
            "labels": {"alertname": self.name, "severity": self.severity, "service": self.service},
            "annotations": {"summary": f"{self.name} on {self.service}"},
            "generatorURL": "http://prometheus.example.com/graph",
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(ends_at),
        }


class Alertmanager(ProgramOnPort):
    """A prometheus-alertmanager subprocess notifying `receiver_url`; alone, or in a loopback cluster."""

    ready_timeout = 10.0
    start_attempts = 5
    poll_interval = 0.02
    tail_lines = 40

    def __init__(self, binary: str, workdir: Path, receiver_url: str, name: str = "Alertmanager",
                 cluster_port: int = 0, peers: Sequence[int] = ()) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(name, workdir, "/-/ready")
        self.binary = binary
        self.cluster_port = cluster_port
        self.peers = list(peers)
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(AM_CONFIG.format(url=json.dumps(receiver_url)))

    def arguments(self, attempt: int) -> List[str]:
        args = [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.path={self.workdir / f'data-{attempt}'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--web.external-url={self.url}",
            "--log.level=debug",
        ]
        if not self.cluster_port:
            return args + ["--cluster.listen-address="]
        return args + [
            f"--cluster.listen-address=127.0.0.1:{self.cluster_port}",
            f"--cluster.advertise-address=127.0.0.1:{self.cluster_port}",
            *[f"--cluster.peer=127.0.0.1:{peer}" for peer in self.peers],
            "--cluster.peer-timeout=500ms",
            "--cluster.gossip-interval=20ms",
            "--cluster.pushpull-interval=200ms",
            "--cluster.probe-interval=200ms",
            "--cluster.probe-timeout=100ms",
            "--cluster.settle-timeout=2s",
            "--cluster.reconnect-interval=200ms",
        ]

    def fire(self, *specs: Spec, ends_at: Optional[datetime] = None) -> None:
        """Send the alerts as firing, as Prometheus does: startsAt given, endsAt a few minutes ahead
        (give `ends_at` to send every member of a cluster the same copy, as Prometheus does)."""
        ends = ends_at or datetime.now(timezone.utc) + timedelta(minutes=10)
        self._post([spec.body(ends) for spec in specs])

    def resolve(self, ends_at: datetime, *specs: Spec) -> None:
        """Send the alerts as resolved at `ends_at` (in the past)."""
        self._post([spec.body(ends_at) for spec in specs])

    def _post(self, body: List[Dict[str, Any]]) -> None:
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200, f"POST /api/v2/alerts answered {response.status}{self.explain()}"
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"POST /api/v2/alerts: {exc.code} {exc.read()!r}{self.explain()}") from None

    def cluster_size(self) -> int:
        """Return the number of members this Alertmanager sees in its cluster (0 when unknown)."""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/status", timeout=5) as response:
                status = json.loads(response.read())
        except (OSError, ValueError):
            return 0
        return len((status.get("cluster") or {}).get("peers") or [])


def start_cluster(binary: str, workdir: Path, receiver_urls: Sequence[str]) -> List[Alertmanager]:
    """Start one Alertmanager per receiver URL, clustered with each other on loopback."""
    ports = [free_port() for _ in receiver_urls]
    managers = []
    for i, url in enumerate(receiver_urls):
        manager = Alertmanager(binary, workdir / f"am{i + 1}", url, f"Alertmanager{i + 1}", ports[i],
                               [p for j, p in enumerate(ports) if j != i])
        managers.append(manager)
    return managers


# --- rcwebhook as a subprocess -----------------------------------------------------------------


def env_file_text(values: Mapping[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


class RcwebhookProcess:
    """`python3 rcwebhook.py --config FILE` on a fixed loopback port, for kill -9, restart and SIGHUP."""

    def __init__(self, workdir: Path, values: Mapping[str, str], port: int = 0) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.config = workdir / "rcwebhook.env"
        self.values = {**values, "HOST": "127.0.0.1", "PORT": str(self.port)}
        self.config.write_text(env_file_text(self.values))
        self.process: Optional[subprocess.Popen] = None
        self.starts = 0
        self.stderr_path = workdir / "rcwebhook-0.stderr"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.stderr_path = self.workdir / f"rcwebhook-{self.starts}.stderr"
        self.starts += 1
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen([sys.executable, str(ROOT / "rcwebhook.py"), "--config", str(self.config)],
                                            cwd=str(self.workdir), env=env, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=stderr)

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"rcwebhook exited with {self.process.returncode}{self.explain()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(ready, "rcwebhook answers /health", timeout, self.explain, poll=0.02)

    def rewrite(self, values: Mapping[str, str]) -> None:
        """Replace the env file (atomically, as an editor or a config manager would)."""
        self.values = {**values, "HOST": "127.0.0.1", "PORT": str(self.port)}
        temporary = self.config.with_suffix(".tmp")
        temporary.write_text(env_file_text(self.values))
        os.replace(temporary, self.config)

    def signal(self, signum: int) -> None:
        assert self.process is not None and self.process.poll() is None, f"rcwebhook is not running{self.explain()}"
        self.process.send_signal(signum)

    def kill9(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(5)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def explain(self, tail: int = 40) -> str:
        state = "stopped"
        if self.process is not None:
            code = self.process.poll()
            state = "running" if code is None else f"exited with {code}"
        lines = "\n".join(self.stderr().splitlines()[-tail:])
        return f"\n--- rcwebhook on port {self.port} ({state}), stderr tail:\n{lines}"
