"""Couriers: one per Rocket.Chat hook, shared by all requests.

A courier paces its hook's posts (ROCKETCHAT_RATE_LIMIT), merges the messages waiting
for their turn into one post, retries what may succeed later (no answer, 429, 5xx) with
backoff or as long as Rocket.Chat asks, and gives up only on a refusal (other 4xx) or
when a message has waited PENDING_MAX_AGE. Requests wait for their messages until their
deadline; a message still waiting then stays queued, and Alertmanager's retry of the same
notification attaches to it instead of queueing a second copy.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, NamedTuple, Optional, Tuple

from . import delivery, message
from .config import Route, Settings, redact_url
from .dedup import RecentPosts
from .metrics import Metrics
from .delivery import Answer, Transport
from .pacing import WindowLimiter

log = logging.getLogger("rcwebhook")

QUEUE_LIMIT = 1000  # messages waiting per hook
PENDING_MAX_AGE = 600.0  # seconds a message may wait since Alertmanager last sent it
BACKOFF_FIRST = 0.5
BACKOFF_FACTOR = 1.5
BACKOFF_CAP = 30.0
# While pacing is on, a post waits until no new message has come for LINGER_QUIET seconds
# (at most LINGER_MAX after the oldest waiting one), so that a burst of notifications goes
# out merged instead of spending Rocket.Chat's budget on its first few messages.
LINGER_QUIET = 0.05
LINGER_MAX = 0.5


class Result(NamedTuple):
    """What became of one route's message by the time its request is answered."""

    route: str
    alerts: Tuple[str, ...]
    status: str  # delivered, already-delivered, pending, failed, dry-run
    answer: Optional[Answer] = None  # Rocket.Chat's last answer, if any
    reason: str = ""  # why it is still pending
    retry_in: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("delivered", "already-delivered", "superseded", "dry-run")


class Job:
    """One route's message of one notification, until Rocket.Chat takes it or it is given up."""

    def __init__(self, key: str, route: Route, names: Tuple[str, ...], rendered: Dict[str, Any], now: float,
                 group: str = "") -> None:
        self.key = key
        self.group = group  # Alertmanager's groupKey: a newer message of the group replaces a waiting one
        self.route = route
        self.names = names
        self.message = rendered
        self.touched = now
        self.queued = now
        self.done = threading.Event()
        self.status = "pending"  # then delivered, failed or superseded
        self.answer: Optional[Answer] = None


class Courier:
    """The queue and sending thread of one hook URL."""

    def __init__(self, url: str, owner: "Deliverer") -> None:
        self.url = url
        self.hook = redact_url(url)
        self.owner = owner
        self.limiter = WindowLimiter(*owner.settings.rate_limit)
        self.queue: Deque[Job] = deque()
        self.cond = threading.Condition()
        self.hold_until = 0.0
        self.hold_reason = ""
        self.failures = 0
        self.closed = False
        self.last_arrival = 0.0
        self.announced_wait = 0.0
        self.thread = threading.Thread(target=self._run, name=f"courier {self.hook}", daemon=True)
        self.thread.start()

    # --- used by requests ---------------------------------------------------------

    def submit(self, job: Job) -> bool:
        """Queue a job; False when the queue is full."""
        with self.cond:
            if len(self.queue) >= QUEUE_LIMIT:
                return False
            self.queue.append(job)
            self.last_arrival = job.queued
            self.cond.notify()
            return True

    def supersede(self, job: Job) -> List[Job]:
        """Remove and return the waiting jobs that `job`, a newer message of their group and route, replaces."""
        if not job.group:
            return []
        with self.cond:
            old = [j for j in self.queue if j.group == job.group and j.route.name == job.route.name and j is not job]
            for stale in old:
                self.queue.remove(stale)
        return old

    def status(self, now: float) -> Tuple[str, float]:
        """Return why this hook's queue is waiting, and in how many seconds it sends next."""
        with self.cond:
            slot = self.limiter.next_slot(now)
            if self.hold_until > now and self.hold_until >= slot:
                return self.hold_reason, self.hold_until - now
            if slot > now:
                return self._pacing_reason(), slot - now
            return "waiting for Rocket.Chat to answer an earlier post", self.owner.settings.delivery_timeout

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    # --- the sending thread -----------------------------------------------------------

    def _run(self) -> None:
        while True:
            expired: List[Job] = []
            with self.cond:
                jobs = self._next_post(expired)
            for job in expired:  # settled outside self.cond: the owner's lock comes first
                self._give_up(job)
            if jobs is None:
                return
            if jobs:
                try:
                    self._send(jobs)
                except Exception as exc:  # a bug must cost these messages, not the hook's thread
                    log.exception("Internal error while posting to %s", self.hook)
                    for job in jobs:
                        self.owner.finish(job, "failed", Answer(0, f"internal error: {type(exc).__name__}",
                                                                 permanent=True))

    def _next_post(self, expired: List[Job]) -> Optional[List[Job]]:
        """Wait for the next post's turn and return the jobs it carries ([] to settle `expired` first,
        None once closed)."""
        while not self.closed:
            now = self.owner.clock()
            expired.extend(job for job in self.queue if now - job.touched > PENDING_MAX_AGE)
            if expired:
                for job in expired:
                    self.queue.remove(job)
                return []
            if not self.queue:
                self.cond.wait()
                continue
            ready = max(self.limiter.next_slot(now), self.hold_until)
            if ready > now:
                if ready > self.hold_until and ready != self.announced_wait:
                    self.announced_wait = ready
                    log.info("Waiting %.1fs before the next post to %s: %s", ready - now, self.hook,
                             self._pacing_reason())
                    for route in dict.fromkeys(job.route.name for job in self.queue):
                        self.owner.metrics.waits.inc(route=route, reason="pacing")
                self.cond.wait(ready - now)
                continue
            if self.limiter.limit > 0:
                linger = min(self.last_arrival + LINGER_QUIET, self.queue[0].queued + LINGER_MAX) - now
                if linger > 0:
                    self.cond.wait(linger)
                    continue
            count = message.mergeable([job.message for job in self.queue])
            jobs = [self.queue.popleft() for _ in range(count)]
            self.limiter.record(now)
            return jobs
        return None

    def _pacing_reason(self) -> str:
        limit, window = self.owner.settings.rate_limit
        return f"pacing to ROCKETCHAT_RATE_LIMIT={limit}/{window:g} (Rocket.Chat's own limit per hook)"

    def _give_up(self, job: Job) -> None:
        last = job.answer.error if job.answer else "it never got its turn"
        log.error("Gave up on the post for route %s (alerts=%s hook=%s): not delivered within %.0fs "
                  "of Alertmanager's last send; last: %s", job.route.name, _names(job.names), self.hook,
                  PENDING_MAX_AGE, last)
        self.owner.finish(job, "failed", job.answer or Answer(0, f"given up: {last}"))

    def _send(self, jobs: List[Job]) -> None:
        """Post the jobs as one message and settle, requeue or fail them by the answer."""
        settings = self.owner.settings
        rendered = message.merge([job.message for job in jobs])
        payload = json.dumps(rendered, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        started = self.owner.clock()
        answer = self.owner.transport(self.url, payload, settings.delivery_timeout)
        now = self.owner.clock()
        route_names = list(dict.fromkeys(job.route.name for job in jobs))
        routes = ",".join(route_names)
        names = _names(tuple(n for job in jobs for n in job.names))
        merged = f" merged={len(jobs)}" if len(jobs) > 1 else ""
        outcome = "accepted" if answer.accepted else "failed" if answer.transient else "refused"
        for route in route_names:
            self.owner.metrics.posts.inc(route=route, outcome=outcome)
            self.owner.metrics.post_duration.observe(now - started, route=route)
        for job in jobs:
            job.answer = answer
        if answer.accepted:
            self.failures = 0
            log.info("Alert sent successfully to Rocket.Chat: %d (route=%s alerts=%s hook=%s took=%.3fs%s)",
                     answer.status, routes, names, self.hook, now - started, merged)
            for job in jobs:
                self.owner.finish(job, "delivered", answer)
            return
        if answer.transient:
            self._retry_later(jobs, answer, now, routes)
            return
        log.error("Rocket.Chat refused the post for route %s: %s %s (alerts=%s hook=%s took=%.3fs%s); %s",
                  routes, answer.status, answer.error, names, self.hook, now - started, merged,
                  delivery.advice(jobs[0].route, answer))
        for job in jobs:
            self.owner.finish(job, "failed", answer)

    def _retry_later(self, jobs: List[Job], answer: Answer, now: float, routes: str) -> None:
        """Put the jobs back at the head of the queue and hold the queue as long as needed."""
        reason = "rate_limited" if answer.status == 429 else "no_answer" if answer.status == 0 else "server_error"
        for route in routes.split(","):
            self.owner.metrics.retries.inc(route=route, reason=reason)
            if answer.status == 429:
                self.owner.metrics.waits.inc(route=route, reason="rocketchat_429")
        if answer.status == 429:
            asked = delivery.rate_limit_wait(answer, self.owner.wall())
            delay = asked if asked is not None else self.owner.settings.rate_limit[1] or 60.0
            reason = f"Rocket.Chat's rate limit (429): {answer.error}"
            log.warning("Rate limited by Rocket.Chat on route %s (hook=%s): waiting %.1fs as it asked%s",
                        routes, self.hook, delay, "" if asked is not None else " (no wait given; one window)")
        else:
            self.failures += 1
            delay = min(BACKOFF_CAP, BACKOFF_FIRST * BACKOFF_FACTOR ** (self.failures - 1))
            delay *= self.owner.rng.uniform(0.8, 1.2)
            reason = f"{answer.status or 'no answer'}: {answer.error}"
            log.warning("Post to route %s failed (%s); retrying in %.2fs (attempt %d, hook=%s)",
                        routes, reason, delay, self.failures + 1, self.hook)
        with self.cond:
            self.hold_until = now + delay
            self.hold_reason = f"retrying after {reason}"
            self.queue.extendleft(reversed(jobs))


def _names(names: Tuple[str, ...]) -> str:
    return delivery.one_line(",".join(names))


class Deliverer:
    """Hands each route's message to its hook's courier and reports what became of it."""

    def __init__(self, settings: Settings, transport: Transport = delivery.post,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 rng: Optional[random.Random] = None, metrics: Optional[Metrics] = None) -> None:
        self.settings = settings
        self.transport = transport
        self.metrics = metrics or Metrics()
        self.metrics.pending.read = self.pending_count
        self.clock = clock
        self.wall = wall
        self.rng = rng or random.Random()
        self._lock = threading.Lock()
        self._couriers: Dict[str, Courier] = {}
        self._pending: Dict[str, Job] = {}
        self._recent = RecentPosts(settings.dedup_window)

    def reconfigure(self, settings: Settings, transport: Optional[Transport] = None) -> None:
        """Apply new settings, and the transport built for them if given, from the next post on."""
        if transport is not None:
            self.transport = transport
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        """Apply new settings to every hook from the next post on."""
        with self._lock:
            self.settings = settings
            self._recent.window = settings.dedup_window
            for courier in self._couriers.values():
                with courier.cond:
                    courier.limiter.limit, courier.limiter.window = settings.rate_limit

    def deliver(self, posts: List[Tuple[Route, Tuple[str, ...], Dict[str, Any], str]], deadline: float,
                group: str = "") -> List[Result]:
        """Post each (route, alert names, message, key) of one notification of `group` (its groupKey) and
        return the results at the latest by `deadline`."""
        now = self.clock()
        placed: List[Tuple[Route, Tuple[str, ...], Optional[Job], Optional[Courier]]] = []
        results: Dict[int, Result] = {}
        superseded: List[Job] = []
        with self._lock:
            for index, (route, names, rendered, key) in enumerate(posts):
                if self._recent.seen(key, now):
                    self.metrics.duplicates.inc(route=route.name)
                    results[index] = Result(route.name, names, "already-delivered")
                    log.info("Already delivered within DEDUP_WINDOW: route=%s alerts=%s; not posting again",
                             route.name, _names(names))
                    placed.append((route, names, None, None))
                    continue
                courier = self._courier(route.url)
                job = self._pending.get(key)
                if job is not None:
                    job.touched = now
                else:
                    job = Job(key, route, names, rendered, now, group)
                    if courier.submit(job):
                        self._pending[key] = job
                        superseded.extend(courier.supersede(job))
                    else:
                        results[index] = Result(route.name, names, "pending",
                                                reason=f"the queue for this hook is full ({QUEUE_LIMIT} messages)",
                                                retry_in=10.0)
                        job = None
                placed.append((route, names, job, courier))
        for stale in superseded:
            log.info("Dropped the waiting post for route %s (alerts=%s): a newer notification of its group "
                     "replaces it", stale.route.name, _names(stale.names))
            self.finish(stale, "superseded", stale.answer or Answer(0))
        for route, names, job, courier in placed:
            if job is not None:
                job.done.wait(max(0.0, deadline - self.clock()))
        for index, (route, names, job, courier) in enumerate(placed):
            if index in results:
                continue
            assert job is not None and courier is not None
            if job.done.is_set():
                results[index] = Result(route.name, names, job.status, job.answer)
            else:
                reason, retry_in = courier.status(self.clock())
                results[index] = Result(route.name, names, "pending", job.answer, reason, retry_in)
        return [results[i] for i in range(len(placed))]

    def _courier(self, url: str) -> Courier:
        courier = self._couriers.get(url)
        if courier is None:
            courier = self._couriers[url] = Courier(url, self)
        return courier

    def finish(self, job: Job, status: str, answer: Answer) -> None:
        """Settle a job as delivered, failed or superseded: remember a delivery, release its requests."""
        with self._lock:
            if self._pending.get(job.key) is job:
                del self._pending[job.key]
            if status == "delivered":
                self._recent.add(job.key, self.clock())
        job.status = status
        job.answer = answer
        job.done.set()

    def pending_count(self) -> int:
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        with self._lock:
            couriers = list(self._couriers.values())
        for courier in couriers:
            courier.close()
