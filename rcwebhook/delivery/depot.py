"""What the couriers share: the ledger of alert states, the open threads and the state store, under one lock.

A courier takes from here the states its post is to carry and reports back what Rocket.Chat answered; what an
answer means for the requests waiting (posted, still owed, refused) is the ledger's to decide (see ledger.py),
never the courier's. The depot knows nothing of couriers or requests: the flow is one way, from the deliverer
(which offers states and waits) and the couriers (which post them) into here.

Every method is called with `lock` held, except those that say otherwise (they write to the state store,
which queues the write and never waits on the disk).
"""

from __future__ import annotations

import logging
import math
import threading
from enum import Enum
from itertools import islice
from typing import Dict, List, Optional, Sequence, Tuple

from ..messages.render import duration
from ..operations import logs
from ..operations.metrics import Metrics
from . import store as state_store
from .clock import Clock
from .ledger import FIRING, RESOLVED, Entry, Ledger, State
from .threads import Thread, Threads, to_row
from .transport import Answer, Transport, one_line

log = logging.getLogger("rcwebhook")

PENDING_MAX_AGE = 600.0  # seconds an owed state is kept after the last request that carried it
CANDIDATES = 1000  # owed states looked at for one post


class Verdict(Enum):
    """What a post comes to, as its courier reads Rocket.Chat's answer."""

    POSTED = "posted"  # accepted: the requests whose states it carried are answered
    RETRY = "retry"  # no answer, 429 or 5xx: its states go behind the others, tried again while requests wait
    AGAIN = "again"  # refused for what the next post leaves out or shortens (a mention, a name, its length)
    SPLIT = "split"  # refused whole: its states go out in halves, so that one bad alert fails only its own
    REFUSED = "refused"  # refused for good: the requests waiting for its states fail with the answer


class Depot:
    """The ledger, the threads, the store, the clock and the transport that every courier posts with."""

    def __init__(self, transport: Transport, clock: Clock, metrics: Metrics, store: state_store.Store,
                 thread_ttl: float) -> None:
        self.lock = threading.Condition()  # notified on every change, for couriers and requests
        self.clock = clock
        self.transport = transport  # swapped by a reload
        self.metrics = metrics
        self.ledger = Ledger()
        self.store = store
        self.threads = Threads(thread_ttl)
        self.last_offer = 0.0  # monotonic: when a request last brought states
        self.posts_in_flight = 0  # posts sent and not yet answered, of every courier (retired ones too)
        self._opened: Dict[Tuple[str, str], Thread] = {}  # thread changes not yet saved
        self._ended: List[Tuple[str, str]] = []
        store.recall = self.memory
        self.ledger.posted.restore(store.load_runs())
        for route, key, state, posted_at, confirmed_at in store.load_states():
            self.ledger.restore(route, key, state, posted_at, confirmed_at)
        self._runs_saved = self.ledger.posted.version
        self.threads.restore(store.load_threads(clock.wall() - thread_ttl))

    def memory(self) -> Tuple[List[state_store.Row], list, list]:
        """Return the posted alert states, the open threads and the compact record of posted states held in
        memory, as the state database keeps them (takes the lock)."""
        with self.lock:
            states = [(e.route, e.key, e.posted, e.posted_at, e.confirmed_at)
                      for e in self.ledger.entries.values() if e.posted is not None]
            threads = [to_row(t) for t in self.threads.open.values()]
            runs = list(self.ledger.posted.runs)
        return states, threads, runs

    # --- what couriers wait for and take ---------------------------------------------------

    def ready(self, routes: List[str]) -> List[Entry]:
        """Return the owed states of `routes` that a waiting request vouches for and no post carries, oldest
        first (at most CANDIDATES), after dropping those no request has carried for PENDING_MAX_AGE."""
        for entry, state in self.ledger.expire(self.clock.wall(), PENDING_MAX_AGE):
            log.warning("Dropped the waiting %s state of alert %s (route %s): no notification has carried it "
                        "for %gs, so Alertmanager no longer asks for it", state.status,
                        one_line(entry.name), entry.route, PENDING_MAX_AGE,
                        extra=logs.fields("given-up", route=entry.route, alerts=entry.name, outcome="dropped",
                                          group_key=entry.item.context.group if entry.item else ""))
        return list(islice(self.ledger.ready(routes), CANDIDATES))

    def take(self, entries: Sequence[Entry], states: Sequence[State]) -> None:
        """Mark the states as carried by a post being made, so that no other post carries them."""
        for entry, state in zip(entries, states):
            entry.inflight = state

    def give_back(self, entries: Sequence[Entry]) -> None:
        """The post that was to carry `entries` is not sent (or not answered): they are ready again."""
        for entry in entries:
            entry.inflight = None
        self.lock.notify_all()

    # --- what couriers report ----------------------------------------------------------------

    def report(self, entries: Sequence[Entry], states: Sequence[State], answer: Answer, verdict: Verdict,
               wall: float) -> List[state_store.Row]:
        """Settle the post that carried `states` of `entries` by Rocket.Chat's `answer`, as its courier read it
        (`verdict`), and wake whoever waits; return the rows to save. The requests waiting for the states show
        the answer; the ledger settles them (see Ledger.accepted and Ledger.refused)."""
        for entry in entries:
            self.ledger.answered(entry, answer)
        saved: List[state_store.Row] = []
        if verdict is Verdict.POSTED:
            for entry, state in zip(entries, states):
                self.ledger.accepted(entry, state, wall)
            saved = [(entry.route, entry.key, state, wall, 0.0) for entry, state in zip(entries, states)]
        elif verdict is Verdict.RETRY:
            for entry in entries:
                self.ledger.requeue(entry)
        elif verdict is Verdict.SPLIT:
            # From now on these go out in posts of at most `most` alerts.
            most = math.ceil(len(entries) / 2)
            for entry in entries:
                entry.max_batch = min(entry.max_batch or most, most)
        elif verdict is Verdict.REFUSED:
            for entry in entries:
                self.ledger.refused(entry, answer)
        self.lock.notify_all()
        return saved

    # --- threads ---------------------------------------------------------------------------

    def resolution_note(self, thread: Thread, entries: List[Entry]) -> str:
        """Return the line that says how long the incident lasted, when this reply resolves its last alert."""
        posting = {f"{e.route}/{e.key}": e.known for e in entries}
        if not thread.alerts or not self._all_resolved(thread, posting):
            return ""
        ends = [e.known.ends for e in entries if e.known.status == RESOLVED and e.known.ends]
        if not ends or not thread.started or max(ends) < thread.started:
            return "Incident resolved."
        return f"Incident resolved after {duration(max(ends) - thread.started)}."

    def follow_thread(self, hook: str, scope: str, thread: Optional[Thread], reply: bool, entries: List[Entry],
                      root: str, wall: float) -> Optional[Thread]:
        """Note an accepted post of one group: a reply extends its open thread, a channel message announcing
        firing alerts opens (or moves) it at `root`, and a thread whose alerts have all resolved ends.
        Return the thread the post replied in, if it did."""
        firing = [e for e in entries if e.posted is not None and e.posted.status == FIRING]
        keys = [f"{e.route}/{e.key}" for e in firing]
        started = min((e.posted.starts for e in firing if e.posted and e.posted.starts), default=0.0)
        replied = None
        if reply and thread is not None:
            thread.last_post = wall
            thread.alerts.update(keys)
            self.metrics.thread_replies.inc(route=entries[0].route)
            replied = thread
        elif firing:
            thread = self.threads.anchor(hook, scope, root, started, wall, keys)
        if thread is not None and self._all_resolved(thread):
            self.threads.end(thread)
            self._opened.pop((thread.hook, thread.group), None)
            self._ended.append((thread.hook, thread.group))
        elif thread is not None:
            self._opened[(thread.hook, thread.group)] = thread
        return replied

    def _all_resolved(self, thread: Thread, posting: Optional[Dict[str, State]] = None) -> bool:
        """Return whether every alert announced in `thread` has resolved (counting the states being posted)."""
        for key in thread.alerts:
            state = (posting or {}).get(key)
            if state is None:
                route, _, alert = key.rpartition("/")  # a route's name may hold a / (db/critical), a key not
                entry = self.ledger.entries.get((route, alert))
                state = entry.posted if entry is not None else None
            if state is not None and state.status != RESOLVED:
                return False
        return True

    # --- the state store (it queues its writes) --------------------------------------------

    # The writes are queued with the lock held, so that the state writer writes them in the order the
    # ledger changed: a row queued after a newer one of the same alert would overwrite it (a post's row,
    # not yet acknowledged, written over its acknowledgement). Queueing never waits for the disk.

    def save(self, states: List[state_store.Row]) -> None:
        """Queue the posted states, and the threads changed since the last save (the lock is held)."""
        opened, ended = [to_row(t) for t in self._opened.values()], self._ended
        self._opened, self._ended = {}, []
        self.store.save_states(states)
        self.store.save_threads(opened, ended)

    def save_runs(self) -> None:
        """Queue the ledger's compact record of posted states when it changed since last saved (the lock is
        held)."""
        if self.ledger.posted.version == self._runs_saved:
            return
        self._runs_saved = self.ledger.posted.version
        self.store.save_runs(list(self.ledger.posted.runs))
