"""Prometheus metrics: counters, gauges and histograms, and the text exposition format 0.0.4.

Labels carry route names and reasons, never URLs.
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import resource
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from .. import __version__

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

LabelValues = Tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values)] + ([extra] if extra else [])
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        self.lock = threading.Lock()
        self.values: Dict[LabelValues, float] = {}

    def _key(self, labels: Dict[str, str]) -> LabelValues:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, not {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.label_names)

    def header(self) -> List[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> List[str]:
        with self.lock:
            items = sorted(self.values.items())
        return self.header() + [f"{self.name}{_labels(self.label_names, k)} {_number(v)}" for k, v in items]


class Counter(_Metric):
    """A count that only goes up."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 initial: Iterable[Dict[str, str]] = ()) -> None:
        super().__init__(name, help_text, labels)
        # Series that exist from the start, so that rate() sees their first increase.
        self.values = dict.fromkeys(map(self._key, initial), 0.0)
        if not self.label_names:
            self.values[()] = 0.0

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self.lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def declare(self, **labels: str) -> None:
        """Give a series its 0 before its first increase, so that rate() sees that increase."""
        key = self._key(labels)
        with self.lock:
            self.values.setdefault(key, 0.0)

    def value(self, **labels: str) -> float:
        with self.lock:
            return self.values.get(self._key(labels), 0.0)


class ValueCounter(Counter):
    """A count per value of something a user controls (a label's value): the first `max_values` distinct
    values get a series each, the rest count together under `other`."""

    OTHER = "other"

    def __init__(self, name: str, help_text: str, max_values: int = 100, value_length: int = 100) -> None:
        super().__init__(name, help_text, ["value"])
        self.max_values = max_values
        self.value_length = value_length

    def count(self, value: str) -> str:
        """Count one `value`; return "new" when it got its own series now, "overflow" when it is the first to
        be counted as `other`, else ""."""
        value = value[: self.value_length]
        with self.lock:
            if (value,) in self.values:
                self.values[(value,)] += 1
                return ""
            if len(self.values) - ((self.OTHER,) in self.values) < self.max_values and value != self.OTHER:
                self.values[(value,)] = 1.0
                return "new"
            first = (self.OTHER,) not in self.values
            self.values[(self.OTHER,)] = self.values.get((self.OTHER,), 0.0) + 1
            return "overflow" if first else ""


class FirstSeen:
    """The first `limit` distinct values seen, to say something once per value in bounded memory."""

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self.seen: set = set()
        self.full = False
        self.lock = threading.Lock()

    def first(self, value: str) -> str:
        """Return "new" the first time `value` is seen, "overflow" the first time one is not remembered any
        more (beyond `limit`), else ""."""
        with self.lock:
            if value in self.seen:
                return ""
            if len(self.seen) < self.limit:
                self.seen.add(value)
                return "new"
            if not self.full:
                self.full = True
                return "overflow"
            return ""


class Gauge(_Metric):
    """A value that goes up and down, set directly or read from a function at scrape time."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 read: Optional[Callable[[], float]] = None) -> None:
        super().__init__(name, help_text, labels)
        self.read = read

    def set(self, value: float, **labels: str) -> None:
        with self.lock:
            self.values[self._key(labels)] = value

    def lines(self) -> List[str]:
        if self.read is not None:
            try:
                return self.header() + [f"{self.name} {_number(self.read())}"]
            except (OSError, ValueError):
                return []
        return super().lines()


class Histogram(_Metric):
    """Observations counted into cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = DURATION_BUCKETS) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets)) + (math.inf,)
        self.series: Dict[LabelValues, List[float]] = {}  # per bucket counts (not cumulative), then sum
        if not self.label_names:
            self.series[()] = [0.0] * (len(self.buckets) + 1)

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self.lock:
            series = self.series.setdefault(key, [0.0] * (len(self.buckets) + 1))
            series[bisect.bisect_left(self.buckets, value)] += 1  # the first bound >= value
            series[-1] += value

    def lines(self) -> List[str]:
        out = self.header()
        with self.lock:
            items = sorted((k, list(v)) for k, v in self.series.items())
        for key, series in items:
            for bound, cumulative in zip(self.buckets, itertools.accumulate(series)):
                le = 'le="%s"' % _number(bound)
                out.append(f"{self.name}_bucket{_labels(self.label_names, key, le)} {_number(cumulative)}")
            out.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(series[-1])}")
            out.append(f"{self.name}_count{_labels(self.label_names, key)} {_number(cumulative)}")
        return out


# Process-wide, as logging is: counted by rcwebhook.logs, which is set up before the server and its Metrics.
LOG_DROPS = Counter(
    "rcwebhook_log_entries_dropped_total",
    "Log entries dropped because their destination (journal, stderr, file: LOG_FILE) did not take them at once "
    "(journald not reading its socket, a full pipe, a stalled disk), by destination.", ["destination"])

# The metrics of modules that load only when the configuration uses them (the templates'), by name: such a
# module registers its own as it loads, and /metrics shows them from then on.
_registered: Dict[str, _Metric] = {}
_registered_lock = threading.Lock()


def register(*metrics: _Metric) -> None:
    """Expose `metrics` on /metrics from now on (one registered again under its name replaces the first)."""
    with _registered_lock:
        for metric in metrics:
            _registered[metric.name] = metric


def registered() -> List[_Metric]:
    """Return the metrics registered so far, in the order they were first registered."""
    with _registered_lock:
        return list(_registered.values())


ERROR_REASONS = (
    "bad_request", "unauthorized", "request_timeout", "length_required", "too_large", "unsupported_media_type",
    "headers_too_large", "client_rate_limited", "busy", "internal", "rocketchat_refused",
    "rocketchat_unavailable", "unknown_receiver",
)
ROUTES = ("critical", "warning", "info")
# The other label of each per-route counter and its values: every route's series exist from the start.
POST_OUTCOMES = ("outcome", ("accepted", "refused", "failed"))
RETRY_REASONS = ("reason", ("server_error", "no_answer", "rate_limited"))
WAIT_REASONS = ("reason", ("pacing", "rocketchat_429"))
REFUSAL_REASONS = ("reason", ("bad_token", "message_too_long", "invalid_message"))
ONLY_ROUTE = ("", ("",))


def _route_series(route: str, other: Tuple[str, Sequence[str]]) -> List[Dict[str, str]]:
    label, words = other
    return [{"route": route, label: word} if label else {"route": route} for word in words]


class Metrics:
    """Every metric rcwebhook exposes, in the order /metrics shows them."""

    def __init__(self) -> None:
        self.route_counters: List[Tuple[Counter, Tuple[str, Sequence[str]]]] = []
        self.requests = Counter("webhook_requests_total", "Requests to /webhook, by HTTP status code.", ["code"],
                                initial=[{"code": "200"}])
        self.request_duration = Histogram(
            "webhook_request_duration_seconds", "Time from a /webhook request's first line to its answer.")
        self.errors = Counter("webhook_errors_total", "/webhook requests not answered 2xx, by reason.", ["reason"],
                              initial=[{"reason": r} for r in ERROR_REASONS])
        self.connections_shed = Counter(
            "rcwebhook_connections_shed_total",
            "Connections closed before a request on them was served, by reason: idle (sent nothing), slow (its "
            "request not whole in time), refused (still sending a refused body), tls (handshake failed or too slow).",
            ["reason"], initial=[{"reason": r} for r in ("idle", "slow", "refused", "tls")])
        self.alerts = Counter("rcwebhook_alerts_received_total", "Alerts received, by status and routed severity.",
                              ["status", "severity"],
                              initial=[{"status": s, "severity": r} for s in ("firing", "resolved") for r in ROUTES])
        self.posts = self._per_route("rcwebhook_rocketchat_posts_total",
                                "Route messages posted to Rocket.Chat, by route and outcome (accepted, refused, "
                                "failed).", POST_OUTCOMES)
        self.post_duration = Histogram("rcwebhook_rocketchat_post_duration_seconds",
                                       "Time Rocket.Chat took to answer a post, by route.", ["route"])
        self.retries = self._per_route("rcwebhook_rocketchat_retries_total",
                                  "Posts tried again, by route and reason (server_error, no_answer, rate_limited).",
                                  RETRY_REASONS)
        self.waits = self._per_route("rcwebhook_rocketchat_rate_limit_waits_total",
                                "Waits before a post for Rocket.Chat's rate limit, by route and reason "
                                "(pacing: rcwebhook's own; rocketchat_429: Rocket.Chat asked).", WAIT_REASONS)
        self.refusals = self._per_route("rcwebhook_rocketchat_refusals_total",
                                   "Posts Rocket.Chat refused, by route and reason (bad_token: the hook's id or token "
                                   "is wrong; message_too_long: shortened and sent again; invalid_message).",
                                   REFUSAL_REASONS)
        self.mention_refusals = self._per_route(
            "rcwebhook_mention_refusals_total",
            "Posts Rocket.Chat refused for their @here or @all (the integration's user lacks the mention-here or "
            "mention-all permission), by route; each was posted again without them.")
        self.impersonate_refusals = self._per_route(
            "rcwebhook_impersonate_refusals_total",
            "Posts Rocket.Chat refused for naming their sender or avatar (the integration's user lacks the "
            "message-impersonate permission), by route; each was posted again without them.")
        self.duplicates = self._per_route("rcwebhook_duplicates_skipped_total",
                                     "Alert states not posted again because they were posted already (a retry "
                                     "after a non-2xx answer, or an HA peer's copy).")
        self.unknown_severities = ValueCounter(
            "rcwebhook_unknown_severity_total",
            "Alerts whose severity label is neither a severity nor an alias (routed to DEFAULT_SEVERITY), by "
            "value; values beyond the first 100 count as other.")
        self.unknown_receivers = ValueCounter(
            "rcwebhook_unknown_receiver_label_total",
            "Alerts whose ROUTE_LABEL (label or routeLabels) names no hook set (routed by path), by value; "
            "values beyond the first 100 count as other.")
        self.pending = Gauge("rcwebhook_pending_posts", "Alert states waiting to be posted.")
        self.state_bytes = Gauge("rcwebhook_state_database_bytes",
                                 "Size of the state database in STATE_DIR (0 without one).")
        self.state_errors = Counter("rcwebhook_state_errors_total",
                                    "Errors of the state database; after one, the state is kept in memory only.")
        self.state_writes_dropped = Counter(
            "rcwebhook_state_writes_dropped_total",
            "Changes not written to the state database because its queue was full (the database was locked "
            "or slow) or rcwebhook stopped first; a restart may post them again.")
        self.thread_replies = self._per_route("rcwebhook_thread_replies_total",
                                         "Posts made as replies in the thread of an incident's first message, by "
                                         "route.")
        self.open_threads = Gauge("rcwebhook_open_threads", "Incidents whose thread is open.")
        self.build_info = Gauge("rcwebhook_build_info", "rcwebhook's version; always 1.", ["version"])
        self.build_info.set(1, version=__version__)
        self.reload_success = Gauge("rcwebhook_config_last_reload_successful",
                                    "Whether the last configuration (re)load succeeded.")
        self.reload_time = Gauge("rcwebhook_config_last_reload_success_timestamp_seconds",
                                 "When the configuration was last loaded successfully.")
        self.reload_success.set(1)
        self.reload_time.set(time.time())
        self.process = _process_metrics()

    def _per_route(self, name: str, help_text: str, other: Tuple[str, Sequence[str]] = ONLY_ROUTE) -> Counter:
        labels = ["route", other[0]] if other[0] else ["route"]
        counter = Counter(name, help_text, labels, initial=[s for r in ROUTES for s in _route_series(r, other)])
        self.route_counters.append((counter, other))
        return counter

    def declare_routes(self, routes: Iterable[str]) -> None:
        """Give the per-route series of `routes` (hook sets' routes among them) their 0."""
        for counter, other in self.route_counters:
            for route in routes:
                for labels in _route_series(route, other):
                    counter.declare(**labels)

    def all(self) -> List[_Metric]:
        own = [m for m in vars(self).values() if isinstance(m, _Metric)]
        return own + [LOG_DROPS] + self.process + registered()

    def expose(self) -> bytes:
        """Return every metric in the Prometheus text format 0.0.4."""
        return "".join(f"{line}\n" for metric in self.all() for line in metric.lines()).encode("utf-8")


# --- process figures from /proc -----------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = resource.getpagesize()


def _stat() -> List[str]:
    with open("/proc/self/stat", "rb") as f:
        text = f.read().decode()
    return text[text.rindex(")") + 2:].split()  # the fields after the command name


def _process_metrics() -> List[_Metric]:
    if not os.path.exists("/proc/self/stat"):
        return []
    # The boot time from the clock that counts since boot (the one the kernel dates processes by; Linux
    # 2.6.39 on), not from /proc/stat's btime, which the unit's sandbox hides (ProcSubset=pid).
    try:
        started = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) + int(_stat()[19]) / _TICKS
    except (OSError, ValueError, IndexError, AttributeError):
        started = time.time()

    def cpu() -> float:
        return sum(map(int, _stat()[11:13])) / _TICKS  # utime and stime

    def statm(field: int) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[field]) * _PAGE

    cpu_seconds = Gauge("process_cpu_seconds_total", "User and system CPU time spent, in seconds.", read=cpu)
    cpu_seconds.kind = "counter"
    return [
        cpu_seconds,
        Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", read=lambda: statm(1)),
        Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", read=lambda: statm(0)),
        Gauge("process_open_fds", "Open file descriptors.", read=lambda: len(os.listdir("/proc/self/fd"))),
        Gauge("process_max_fds", "Most open file descriptors allowed.",
              read=lambda: resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
        Gauge("process_start_time_seconds", "When the process started, in seconds since the epoch.",
              read=lambda: started),
        Gauge("process_threads", "Threads in the process.", read=threading.active_count),
    ]
