"""The deliverer: where a request brings its alert states, waits for them to be posted, and learns its answer.

When is a 200 sent? A request (web/dispatch.py) hands `Deliverer.deliver` each route's alert states and its
deadline (DELIVERY_DEADLINE after it arrived). Under the depot's lock, the ledger takes each state (ledger.py
says which is newer, which is a copy already posted, which is a reminder to post again) and ties a ticket of
the request to the states still to be posted; the request then waits on its tickets, and nothing else. The
courier of each route's hook (courier.py) takes the states that waiting tickets vouch for, posts them, and
reports Rocket.Chat's answer to the depot; the ledger alone settles tickets from it: an accepted post settles
every ticket whose states it covers, a refusal fails the tickets waiting for the refused states, a failure a
retry may mend leaves them waiting. At the deadline, or once every ticket is settled, `deliver` reads each
ticket as a `Result`: delivered or already-delivered when all its states are posted, failed when Rocket.Chat
refused one, pending otherwise (with the courier's reason). dispatch answers 200 when every route's result is
delivered, already-delivered or a dry run; 502 when one failed; 503 with Retry-After while one is pending,
and Alertmanager's retry brings the same states, which are then found posted and not posted twice. Only when
the answer is 200 does the ledger remember that Alertmanager has the states (a later copy of them is a
reminder only after DEDUP_WINDOW).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Dict, List, NamedTuple, Optional, Tuple

from ..config.settings import Route, Settings
from ..operations.metrics import Metrics
from . import store as state_store
from .clock import Clock
from .courier import Courier
from .depot import PENDING_MAX_AGE, Depot
from .ledger import REMINDER_REASON, RESOLVED, Item, Ticket
from .transport import Answer, Transport, one_line

log = logging.getLogger("rcwebhook")

QUEUE_LIMIT = 50_000  # alert states waiting to be posted, all routes together
CLOSE_WAIT = 5.0  # seconds a stop waits for posts Rocket.Chat is answering


class Result(NamedTuple):
    """What became of one route's alerts by the time its request is answered."""

    route: str
    alerts: Tuple[str, ...]
    status: str  # delivered, already-delivered, pending, failed, dry-run
    answer: Optional[Answer] = None  # Rocket.Chat's last answer, if any
    reason: str = ""  # why it is still pending
    retry_in: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("delivered", "already-delivered", "dry-run")


class Deliverer:
    """The depot of alert states and the couriers that post them; requests wait here for their states."""

    def __init__(self, settings: Settings, transport: Transport, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.depot = Depot(transport, Clock(), metrics, self.open_store(settings), settings.thread_ttl)
        self._couriers: Dict[str, Courier] = {}
        self._closed = False
        metrics.pending.read = self.pending_count
        metrics.state_bytes.read = self.depot.store.size
        metrics.open_threads.read = lambda: len(self.depot.threads)

    def open_store(self, settings: Settings) -> state_store.Store:
        """Return the state database of `settings` (STATE_DIR), opened; it counts its errors in the metrics."""
        return state_store.Store(settings.state_dir, time.time, settings.thread_ttl,
                                 on_error=lambda: self.metrics.state_errors.inc(),
                                 on_drop=lambda count: self.metrics.state_writes_dropped.inc(count))

    def use_store(self, store: state_store.Store) -> None:
        """Keep the state in `store` from now on (a reload changed STATE_DIR): what is in memory is written
        into it, and the database used until now is closed."""
        depot = self.depot
        old, depot.store = depot.store, store
        store.recall = depot.memory
        self.metrics.state_bytes.read = store.size
        states, threads, runs = depot.memory()
        store.save_states(states)
        store.save_threads(threads, [])
        store.save_runs(runs)
        for hook, sent in list(old.posts.items()):
            for sent_at in list(sent):
                store.record_post(hook, sent_at)
        # Closing waits for the old database's queue: not on the thread that reloads, which serves.
        threading.Thread(target=old.close, name="state closer", daemon=True).start()

    def reconfigure(self, settings: Settings, transport: Optional[Transport] = None) -> None:
        """Swap in new settings (and transport): waiting states go to their routes' new URLs, and the
        couriers of URLs no longer used end after their current post.

        The waiting states of a route that is gone (its hook set left RECEIVERS) stay where they are, unposted:
        the requests waiting for them are answered 503 at their deadline, and Alertmanager's retry meets the
        404 of an unknown hook set. They are posted if the set comes back and a retry brings them again, and
        are dropped after PENDING_MAX_AGE otherwise, as any state no request asks for."""
        depot = self.depot
        with depot.lock:
            for name, owed in depot.ledger.owed.items():
                if owed and name not in settings.routes and name in self.settings.routes:
                    log.warning("Route %s is gone from the configuration with %d alert states waiting to be posted "
                                "to it: they are not posted unless its hook set comes back and Alertmanager sends "
                                "them again, and are dropped after %gs", name, len(owed), PENDING_MAX_AGE)
            self.settings = settings
            depot.threads.ttl = depot.store.thread_ttl = settings.thread_ttl
            if transport is not None:
                depot.transport = transport
            used = {route.url for route in settings.routes.values() if route.url}
            for url in [u for u in self._couriers if u not in used]:
                self._couriers.pop(url).close()
            for courier in self._couriers.values():
                courier.reconfigure(settings)
            for route in settings.routes.values():
                if route.url and depot.ledger.owed.get(route.name):
                    self._courier(route.url)
            depot.lock.notify_all()

    def describe_state(self) -> str:
        """Return where the alert states are kept and how much of them a start found."""
        depot = self.depot
        with depot.lock:
            alerts, threads = len(depot.ledger), len(depot.threads)
        if depot.store.path is None or depot.store.failed:
            return ("Alert states are kept in memory only (STATE_DIR is not set, or its database failed): a "
                    "restart may post again what was posted")
        return f"Alert states are kept in {depot.store.path}: {alerts} alerts and {threads} open threads restored"

    def deliver(self, batches: List[Tuple[Route, Tuple[str, ...], List[Item]]], deadline: float) -> List[Result]:
        """Bring each route's alert states, wait until they are posted or `deadline` (on time.monotonic, the
        server's clock) comes, and return what became of each route's."""
        depot, ledger = self.depot, self.depot.ledger
        tickets: List[Tuple[Route, Ticket]] = []
        with depot.lock:
            now = depot.clock.wall()
            depot.last_offer = depot.clock.monotonic()
            dedup = self.settings.dedup_window
            # Alertmanager sends a whole group again when it changes: the alerts in it that did not
            # change are not a reminder then. Only a notification without news (or that says so) is.
            everything = [item for _, _, items in batches for item in items]
            reason = everything[0].context.reason if everything else ""
            reminder = reason == REMINDER_REASON if reason else not any(ledger.news(i, now, dedup) for i in everything)
            for route, names, items in batches:
                ticket = Ticket(route.name, names)
                tickets.append((route, ticket))
                if ledger.owed_count() + len(items) > QUEUE_LIMIT:
                    ticket.done.set()  # answered pending below: Alertmanager retries when there is room
                    continue
                copies = [item.alert.name for item in items if ledger.offer(item, ticket, now, dedup, reminder).copy]
                if copies:
                    self.metrics.duplicates.inc(len(copies), route=route.name)
                    log.info("Already posted: route=%s alerts=%s; not posting them again", route.name,
                             one_line(",".join(copies)))
                if not ticket.waiting:
                    ticket.done.set()
                elif route.url:
                    self._courier(route.url)
            depot.lock.notify_all()
        for _, ticket in tickets:
            ticket.done.wait(max(0.0, deadline - time.monotonic()))
        with depot.lock:
            results = [self._result(route, ticket) for route, ticket in tickets]
            acknowledged = all(result.ok for result in results)
            now = depot.clock.wall()
            confirmed = []
            for _, ticket in tickets:
                ledger.release(ticket, now, acknowledged)
                if acknowledged:
                    confirmed.extend((e.route, e.key, e.posted, e.posted_at, e.confirmed_at)
                                     for e, state in ticket.carried if e.posted == state and e.confirmed_at == now)
            depot.store.save_states(confirmed)
            depot.save_runs()
        return results

    def _result(self, route: Route, ticket: Ticket) -> Result:
        if ticket.failure is not None:
            return Result(route.name, ticket.names, "failed", ticket.failure)
        if not ticket.carried:
            return Result(route.name, ticket.names, "pending", None,
                          f"too many alert states are waiting to be posted ({QUEUE_LIMIT})", 10.0)
        if ticket.done.is_set() and not ticket.waiting:
            return Result(route.name, ticket.names, "delivered" if ticket.posted_any else "already-delivered",
                          ticket.answer)
        courier = self._couriers.get(route.url)
        reason, retry_in = courier.status(self.depot.clock.monotonic()) if courier else \
            ("no courier for this route", 1.0)
        return Result(route.name, ticket.names, "pending", ticket.answer, reason, retry_in)

    def _courier(self, url: str) -> None:
        """Start the courier of `url` if it has none."""
        if url not in self._couriers:
            self._couriers[url] = Courier(url, self.depot, self.settings)

    def pending_count(self) -> int:
        with self.depot.lock:
            return self.depot.ledger.owed_count()

    def snapshot(self) -> Dict[str, object]:
        """Return, read-only, each route's hook and what is owed to it, and each hook's courier's state."""
        depot = self.depot
        with depot.lock:
            now = depot.clock.monotonic()
            routes = {route.name: (route.url, len(depot.ledger.owed.get(route.name) or ()))
                      for route in self.settings.routes.values()}
            hooks = {url: courier.snapshot(now) for url, courier in self._couriers.items()}
            threads = len(depot.threads)
            unresolved = self._unresolved(depot.clock.wall(), self.settings.thread_ttl / 2)
        return {"routes": routes, "hooks": hooks, "threads": threads, "state_bytes": depot.store.size(),
                "unresolved": unresolved, "unresolved_after": self.settings.thread_ttl / 2}

    def _unresolved(self, wall: float, age: float) -> Dict[str, Dict[str, float]]:
        """Return, per route that has never had a resolution posted, its open threads whose incident started more
        than `age` seconds ago, and the oldest one's start (the lock is held): what a route whose Alertmanager
        receiver does not send resolved notifications shows."""
        found: Dict[str, Dict[str, float]] = {}
        for thread in self.depot.threads.started_before(wall - age, wall):
            for route in {key.rpartition("/")[0] for key in thread.alerts}:  # a route's name may hold a /, a key not
                figures = found.setdefault(route, {"count": 0, "oldest": thread.started})
                figures["count"] += 1
                figures["oldest"] = min(figures["oldest"], thread.started)
        if found:
            for (route, _), entry in self.depot.ledger.entries.items():
                if route in found and entry.posted is not None and entry.posted.status == RESOLVED:
                    del found[route]
        return found

    def close(self, wait: float = CLOSE_WAIT) -> None:
        """Stop posting: a post Rocket.Chat is answering is waited for, up to `wait` seconds, so that what it
        posted is saved (Alertmanager's retry after a restart then finds it posted); then close the store.
        Closing again does nothing (and waits for nothing)."""
        depot = self.depot
        with depot.lock:
            if self._closed:
                return
            self._closed = True
            for courier in self._couriers.values():
                courier.close()
            depot.lock.notify_all()
            depot.lock.wait_for(lambda: depot.posts_in_flight == 0, wait)
            depot.ledger.posted.seal()  # the records not yet sealed would be lost otherwise
            depot.save_runs()
        depot.store.close()
