"""Alert states: for each route and alert, what Rocket.Chat was last told and what it is owed.

A notification contributes one state per alert: firing since its startsAt, or resolved at its
endsAt. A newer state of an alert replaces an older one, whatever order they arrive in:
"newer" is read from the times the states speak for, not from arrival. A request is answered
200 exactly when every state it brought has been posted, or is older than one already posted.

Nothing here reads a clock or does I/O: the caller hands in the time and holds the lock.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
import threading
from collections import OrderedDict
from types import MappingProxyType
from typing import Any, Dict, Iterator, List, Mapping, NamedTuple, Optional, Tuple

from ..messages.notification import Alert, parse_time

FIRING = "firing"
RESOLVED = "resolved"
# Alerts remembered at most (about 0.6 KB each); the least recently seen go first. Alertmanager
# re-sends every alert that still fires with each reminder, which keeps those entries fresh.
CAPACITY = 20_000
NAME_LIMIT = 200  # characters of an alert's name an entry keeps, for log lines: the name is a client's


# The compact record of the states posted for alerts the ledger has forgotten (see Posted).
# Digest of route and alert key, resolved?, startsAt, asof, when (epoch s), sender_tag of the resolution's sender.
RECORD = struct.Struct("<16sBddII")
FRESH_LIMIT = 16_384  # records kept in a dict before they are sealed into a sorted run
RUN_LIMIT = 131_072  # records in a run at most: runs are merged up to this size, and dropped whole
MAX_RECORDS = 1_000_000  # records kept at most (about 37 MB); the oldest runs go first


class State(NamedTuple):
    """One state of one alert, as Rocket.Chat was or is to be told."""

    status: str  # firing or resolved
    starts: float  # startsAt in epoch seconds; 0 when unknown
    ends: float  # endsAt in epoch seconds once resolved; 0 while firing
    asof: float  # the moment the state speaks for: its start when firing, its end when resolved

    @property
    def order(self) -> Tuple[float, bool]:
        """Return the sort key: later moments are newer, and a resolution is newer than a start at the
        same moment."""
        return (self.asof, self.status == RESOLVED)


def observe(alert: Alert, known: Optional[State], now: float, copy_window: float, sender: int = 0,
            resolvers: Tuple[int, ...] = (), resolved_seen: float = 0.0) -> State:
    """Return the state `alert` brings, placed in order against `known`, the newest state of that alert
    seen so far; `sender` is the sender_tag of who sent it, `resolvers` those of who sent `known` when it
    is a resolution, which first came at `resolved_seen`.

    A firing state with the startsAt of the known firing one is that same state (a copy, a retry or a
    reminder). A firing state whose startsAt is not after a known resolution fired again with its old
    startsAt (Alertmanager resolved it by timeout, then heard from its Prometheus again), which is newer,
    except for a copy: from another sender (an HA peer lagging behind) less than `copy_window` seconds
    after the resolution came (not after its endsAt: Alertmanager sends a resolution up to a group_interval
    after it), or from the resolution's own sender less than REFIRE_GAP after it came (its requests
    overtook one another; Alertmanager sends a group's next notification a group_interval later).
    When the senders are not known, it fired again: a re-fire posted twice costs a message, a re-fire
    taken for a copy would leave the channel saying RESOLVED until the next reminder.
    """
    starts = _epoch(alert.starts_at)
    if alert.status != RESOLVED:
        if known is not None and known.status == FIRING and known.starts == starts:
            return known
        asof = starts
        if known is not None and known.status == RESOLVED and starts <= known.ends and (
                now >= (known.ends if sender in resolvers else max(known.ends, resolved_seen)) + copy_window
                or not sender or not resolvers
                or (sender in resolvers and now >= resolved_seen + min(REFIRE_GAP, copy_window))):
            asof = known.ends + 0.001
        return State(FIRING, starts, 0.0, asof)
    ends = _epoch(alert.ends_at) or now
    if known is not None and known.status == RESOLVED and known.starts == starts and \
            (known.ends == ends or not alert.ends_at):
        return known
    return State(RESOLVED, starts, ends, ends)


def _epoch(text: str) -> float:
    """Return a startsAt or endsAt in epoch seconds; 0 when unset or invalid."""
    text = text.strip()
    # No RFC 3339 time is longer (nanoseconds and an offset make 35): a longer text is not kept in the cache.
    return _cached_epoch(text) if len(text) <= 64 else 0.0


@functools.lru_cache(maxsize=4096)  # each notification repeats its alerts' times, and every state is read twice
def _cached_epoch(text: str) -> float:
    moment = parse_time(text)
    return moment.timestamp() if moment else 0.0


def identity(alert: Alert) -> str:
    """Return the key of an alert: Alertmanager's fingerprint, or a digest of its labels without one."""
    if alert.fingerprint:
        return alert.fingerprint[:64]
    labels = json.dumps(sorted(alert.labels.items()), ensure_ascii=False)
    return "labels:" + hashlib.sha256(labels.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def sender_tag(address: str, external_url: str) -> int:
    """Return who sent a notification, as 32 bits: its peer's address and the Alertmanager's external URL (HA
    peers behind one address have their own URLs); 0 when unknown."""
    if not address:
        return 0
    text = f"{address}\x00{external_url[:200]}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(text, digest_size=4).digest(), "big") or 1


REMINDER_REASON = "repeat interval elapsed"  # Alertmanager's notification_reason for a reminder
MAX_RESOLVERS = 8  # senders of one resolution remembered
# A firing from the sender of a resolution this soon after it is taken for a request that overtook another
# (Alertmanager's group_interval, between two notifications of a group, is longer).
REFIRE_GAP = 5.0


class Context(NamedTuple):
    """What the message of a group needs besides its alerts, and why Alertmanager sent it."""

    group: str  # Alertmanager's groupKey
    external_url: str = ""
    truncated_alerts: int = 0
    reason: str = ""  # notification_reason, from Alertmanager 0.32 on
    receiver: str = ""  # for templates' .Receiver
    group_labels: Mapping[str, str] = MappingProxyType({})  # for templates' .GroupLabels
    sender: int = 0  # sender_tag of the client that sent it


class Item(NamedTuple):
    """One alert of one notification, bound for one route."""

    route: str
    key: str
    alert: Alert
    context: Context
    channel: str = ""  # the channel the alert's CHANNEL_LABEL names, instead of the route's


class Entry:
    """What one route's channel was told about one alert, and what it is owed."""

    __slots__ = ("route", "key", "name", "known", "posted", "posted_at", "confirmed_at", "owed", "item",
                 "tickets", "inflight", "vouched_at", "max_batch", "posts", "resolvers", "resolved_seen")

    def __init__(self, route: str, key: str, name: str, known: State) -> None:
        self.route = route
        self.key = key
        self.name = name
        self.known = known  # the newest state seen
        self.posted: Optional[State] = None  # the newest state Rocket.Chat accepted
        self.posted_at = 0.0
        self.confirmed_at = 0.0  # when a request carrying `posted` was answered 2xx; 0: not since it was posted
        self.owed = False  # `known` (or a reminder of it) is still to be posted
        self.item: Optional[Item] = None  # what to render for `known` while it is owed
        # Requests waiting for a state of this alert to be posted: the state, and the number of posts
        # the entry must have had (one more than now for a reminder of a state posted already).
        self.tickets: Dict["Ticket", Tuple[State, int]] = {}
        self.inflight: Optional[State] = None  # the state of a post sent and not yet answered
        self.vouched_at = 0.0
        self.max_batch = 0  # after a refused post: at most this many alerts per post (0: no cap)
        self.posts = 0  # posts Rocket.Chat accepted for this alert
        self.resolvers: Tuple[int, ...] = ()  # sender_tags of who sent `known`, when it is a resolution
        self.resolved_seen = 0.0  # when that resolution first came

    def covers(self, state: State) -> bool:
        """Return whether the posted state is `state` or newer than it."""
        return self.posted is not None and state.order <= self.posted.order


class Ticket:
    """One request's claim on one route: the states it brought, and whether they are posted."""

    def __init__(self, route: str, names: Tuple[str, ...]) -> None:
        self.route = route
        self.names = names
        self.carried: List[Tuple[Entry, State]] = []  # every state the request brought
        self.waiting: Dict[Entry, Tuple[State, int]] = {}  # those not yet posted (nor older than a posted one)
        self.posted_any = False  # a post was made for this request
        self.failure: Any = None  # Rocket.Chat's refusal, when one of its states was refused
        self.answer: Any = None  # Rocket.Chat's last answer to a post carrying its states
        self.done = threading.Event()

    def settle(self, entry: Entry) -> None:
        """Stop waiting for `entry` (its state is posted, or refused) and wake the request when nothing is left."""
        self.waiting.pop(entry, None)
        entry.tickets.pop(self, None)
        if not self.waiting:
            self.done.set()


class Verdict(NamedTuple):
    """What became of one offered state."""

    entry: Entry
    state: State
    owed: bool  # the state (or a newer one) must still be posted for the request to be answered 200
    copy: bool  # posted already (a retry after a non-2xx answer, or an HA peer's copy): not posted again


class Posted:
    """The states posted for alerts the ledger no longer holds whole: RECORD.size (37) bytes each, in
    sorted runs of packed records (a binary search finds one), the newest run first; up to MAX_RECORDS,
    the oldest dropped a run at a time. It keeps "once and in order" for far longer than the entries.
    """

    def __init__(self, max_records: Optional[int] = None) -> None:
        self.max_records = max_records or MAX_RECORDS
        self.fresh: Dict[bytes, bytes] = {}  # digest -> record, not yet sealed
        self.runs: List[Tuple[int, bytes]] = []  # (id, sorted records), oldest first
        self.next_id = 1
        self.version = 0  # changes whenever `runs` does, for the caller to save them

    def __len__(self) -> int:
        return len(self.fresh) + sum(len(run) for _, run in self.runs) // RECORD.size

    def add(self, route: str, key: str, state: State, when: float, resolver: int = 0) -> None:
        digest = _digest(route, key)
        self.fresh[digest] = RECORD.pack(digest, state.status == RESOLVED, state.starts, state.asof,
                                         max(0, min(int(when), 2**32 - 1)), resolver)
        if len(self.fresh) >= FRESH_LIMIT:
            self.seal()

    def find(self, route: str, key: str) -> Optional[Tuple[State, float, int]]:
        """Return the state last posted for an alert, when, and who sent it if resolved, if a record of it is
        kept."""
        digest = _digest(route, key)
        record = self.fresh.get(digest) or next(
            filter(None, (_search(run, digest) for _, run in reversed(self.runs))), None)
        if record is None:
            return None
        _, resolved, starts, asof, when, resolver = RECORD.unpack(record)
        state = State(RESOLVED, starts, asof, asof) if resolved else State(FIRING, starts, 0.0, asof)
        return state, float(when), resolver

    def seal(self) -> None:
        """Move the fresh records into a sorted run; merge runs and drop the oldest beyond the bound."""
        if not self.fresh:
            return
        run = b"".join(self.fresh[digest] for digest in sorted(self.fresh))
        self.fresh = {}
        self.runs.append((self._new_id(), run))
        while len(self.runs) >= 2 and len(self.runs[-1][1]) >= len(self.runs[-2][1]) \
                and len(self.runs[-2][1]) + len(self.runs[-1][1]) <= RUN_LIMIT * RECORD.size:
            older, newer = self.runs.pop(-2)[1], self.runs.pop()[1]
            self.runs.append((self._new_id(), _merge(older, newer)))
        while len(self.runs) > 1 and sum(len(run) for _, run in self.runs) > self.max_records * RECORD.size:
            self.runs.pop(0)
        self.version += 1

    def restore(self, runs: List[Tuple[int, bytes]]) -> None:
        """Take the runs kept from earlier runs of rcwebhook (oldest first)."""
        self.runs = [(ident, run) for ident, run in runs if len(run) % RECORD.size == 0]
        self.next_id = max((ident for ident, _ in self.runs), default=0) + 1

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _digest(route: str, key: str) -> bytes:
    return hashlib.blake2b(f"{route}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _search(run: bytes, digest: bytes) -> Optional[bytes]:
    size = RECORD.size
    lo, hi = 0, len(run) // size
    while lo < hi:
        mid = (lo + hi) // 2
        if run[mid * size:mid * size + 16] < digest:
            lo = mid + 1
        else:
            hi = mid
    if lo * size < len(run) and run[lo * size:lo * size + 16] == digest:
        return run[lo * size:(lo + 1) * size]
    return None


def _merge(older: bytes, newer: bytes) -> bytes:
    """Return one sorted run of both; the newer record of an alert in both wins."""
    size = RECORD.size
    out = bytearray()
    i = j = 0
    while i < len(older) and j < len(newer):
        a, b = older[i:i + 16], newer[j:j + 16]
        if a < b:
            out += older[i:i + size]
            i += size
        else:
            out += newer[j:j + size]
            j += size
            i += size if a == b else 0
    out += older[i:]
    out += newer[j:]
    return bytes(out)


class Ledger:
    """Entries by (route, alert key), bounded in number; the caller holds the lock."""

    def __init__(self, capacity: Optional[int] = None) -> None:
        self.capacity = capacity = capacity or CAPACITY
        self._next_bound = capacity
        self.entries: "OrderedDict[Tuple[str, str], Entry]" = OrderedDict()  # least recently touched first
        self.owed: Dict[str, "OrderedDict[str, Entry]"] = {}  # per route, in the order they became owed
        self.posted = Posted()  # what forgotten entries had posted

    def _entry(self, route: str, key: str) -> Optional[Entry]:
        """Return the entry of an alert; one made again from its compact record when it was forgotten."""
        entry = self.entries.get((route, key))
        if entry is None and (self.posted.fresh or self.posted.runs):
            found = self.posted.find(route, key)
            if found is not None:
                state, when, resolver = found
                self.restore(route, key, state, when, when)
                entry = self.entries.get((route, key))  # None when bounding forgot it at once
                if entry is not None and resolver and state.status == RESOLVED:
                    entry.resolvers, entry.resolved_seen = (resolver,), when
        return entry

    def __len__(self) -> int:
        return len(self.entries)

    def restore(self, route: str, key: str, state: State, posted_at: float, confirmed_at: float) -> None:
        """Remember a state posted before this process started."""
        entry = self.entries[(route, key)] = Entry(route, key, "", state)
        entry.posted, entry.posted_at, entry.confirmed_at = state, posted_at, confirmed_at
        entry.posts = 1
        self._bound()

    def news(self, item: Item, now: float, copy_window: float) -> bool:
        """Return whether `item` brings a state newer than the one known (or an alert not known)."""
        entry = self._entry(item.route, item.key)
        return entry is None or observe(item.alert, entry.known, now, copy_window, item.context.sender,
                                        entry.resolvers, entry.resolved_seen).order > entry.known.order

    def offer(self, item: Item, ticket: Ticket, now: float, copy_window: float, reminder: bool = True) -> Verdict:
        """Record the state `item` brings and tie `ticket` to it; return what it needs. `reminder`: the
        notification may be Alertmanager's reminder (it brings no news, or says it is one)."""
        entry = self._entry(item.route, item.key)
        sender = item.context.sender
        state = observe(item.alert, entry.known if entry else None, now, copy_window, sender,
                        entry.resolvers if entry else (), entry.resolved_seen if entry else 0.0)
        if entry is None:
            entry = self.entries[(item.route, item.key)] = Entry(item.route, item.key, "", state)
            self._bound()
        else:
            self.entries.move_to_end((item.route, item.key))
        entry.name = item.alert.name[:NAME_LIMIT]
        if state.status == RESOLVED and sender and (state.order > entry.known.order or not entry.resolvers):
            entry.resolvers, entry.resolved_seen = (sender,), now
        elif state == entry.known and state.status == RESOLVED and sender and sender not in entry.resolvers:
            entry.resolvers = (entry.resolvers + (sender,))[-MAX_RESOLVERS:]
        if state.order > entry.known.order:
            entry.known = state
            self._owe(entry, item)
        elif state == entry.known and entry.owed:
            entry.item = item  # the newest copy: its annotations may have changed
        elif state == entry.known and not entry.covers(state):
            self._owe(entry, item)  # owed before, then dropped when no request vouched for it
        wanted = 0  # how many posts the entry must have had: more than now for a reminder
        copy = False
        if entry.covers(state) and state == entry.posted == entry.known:
            if entry.owed:
                wanted = entry.posts + 1  # a reminder is on its way already
            elif reminder and state.status == FIRING and entry.confirmed_at and now - entry.confirmed_at >= copy_window:
                # Acknowledged long enough ago: Alertmanager's reminder (repeat_interval). Post it again.
                self._owe(entry, item)
                wanted = entry.posts + 1
            else:
                # A retry after a non-2xx answer, or an HA peer's copy: never posted twice.
                copy = True
        ticket.carried.append((entry, state))
        owed = not (entry.covers(state) and entry.posts >= wanted)
        if owed:
            ticket.waiting[entry] = (state, wanted)
            entry.tickets[ticket] = (state, wanted)
            entry.vouched_at = now
        return Verdict(entry, state, owed, copy)

    def _owe(self, entry: Entry, item: Item) -> None:
        entry.item = item
        if not entry.owed:
            entry.owed = True
            self.owed.setdefault(entry.route, OrderedDict())[entry.key] = entry

    def ready(self, routes: List[str]) -> Iterator[Entry]:
        """Yield the owed entries of `routes` that a waiting request vouches for and no post carries now,
        oldest first."""
        for route in routes:
            for entry in self.owed.get(route, {}).values():
                if entry.tickets and entry.inflight is None:
                    yield entry

    def answered(self, entry: Entry, answer: Any) -> None:
        """Rocket.Chat answered a post carrying `entry`: the requests waiting for it show that answer (until
        a later one), and the state is no longer on its way."""
        entry.inflight = None
        for ticket in entry.tickets:
            ticket.answer = answer

    def requeue(self, entry: Entry) -> None:
        """Put an owed entry whose post failed behind the others, so that one post that keeps failing
        does not keep the rest from being tried."""
        if entry.key in self.owed.get(entry.route, {}):
            self.owed[entry.route].move_to_end(entry.key)

    def accepted(self, entry: Entry, state: State, now: float) -> None:
        """Record that Rocket.Chat accepted `state` for `entry`; settle the tickets it satisfies."""
        entry.inflight = None
        entry.posts += 1
        if entry.posted is None or state.order >= entry.posted.order:
            entry.posted, entry.posted_at, entry.confirmed_at = state, now, 0.0
        if entry.known.order <= state.order:
            self._paid(entry)
        for ticket, (wanted, posts) in list(entry.tickets.items()):
            if entry.covers(wanted) and entry.posts >= posts:
                ticket.posted_any = True
                ticket.settle(entry)

    def refused(self, entry: Entry, answer: Any) -> None:
        """Fail the requests waiting for `entry`, whose post Rocket.Chat refused, and forget the refused
        state: Alertmanager's retry brings it again, and it is tried again then."""
        entry.inflight = None
        for ticket in list(entry.tickets):
            ticket.failure = answer
            ticket.settle(entry)
            ticket.done.set()
        self._forget(entry)

    def release(self, ticket: Ticket, now: float, acknowledged: bool) -> None:
        """The request of `ticket` was answered: stop vouching for its states, and when it was answered
        2xx, remember that Alertmanager has them."""
        for entry in list(ticket.waiting):
            entry.tickets.pop(ticket, None)
        ticket.waiting.clear()
        if acknowledged:
            for entry, state in ticket.carried:
                if entry.posted == state and entry.confirmed_at == 0.0:
                    entry.confirmed_at = now

    def expire(self, now: float, max_age: float) -> List[Tuple[Entry, State]]:
        """Forget and return the owed states that no request has vouched for in `max_age` seconds: as if
        they had never come, so that a later copy is judged afresh."""
        forgotten = [(entry, entry.known) for route_owed in self.owed.values()
                     for entry in route_owed.values()
                     if not entry.tickets and entry.inflight is None and now - entry.vouched_at > max_age]
        for entry, _ in forgotten:
            self._forget(entry)
        return forgotten

    def _forget(self, entry: Entry) -> None:
        """Forget the state owed to `entry`, as if it had never come."""
        self._paid(entry)
        if entry.posted is None:
            self.entries.pop((entry.route, entry.key), None)
        else:
            entry.known = entry.posted

    def _paid(self, entry: Entry) -> None:
        if entry.owed:
            entry.owed = False
            self.owed.get(entry.route, {}).pop(entry.key, None)
        entry.item = None
        entry.max_batch = 0

    def owed_count(self) -> int:
        return sum(len(route_owed) for route_owed in self.owed.values())

    def _bound(self) -> None:
        """Forget the least recently touched entries beyond capacity, never one that is owed or awaited.

        It runs once the ledger has grown a tenth past what it last bounded to, so that a burst of owed
        entries (which cannot go) costs one pass, not one per entry."""
        if len(self.entries) <= self._next_bound:
            return
        excess = len(self.entries) - self.capacity
        for key in list(self.entries):
            if excess <= 0:
                break
            entry = self.entries[key]
            if not entry.owed and not entry.tickets and entry.inflight is None:
                del self.entries[key]
                if entry.posted is not None:
                    resolver = entry.resolvers[0] if entry.resolvers and entry.posted == entry.known else 0
                    self.posted.add(entry.route, entry.key, entry.posted, entry.confirmed_at or entry.posted_at,
                                    resolver)
                excess -= 1
        self._next_bound = max(self.capacity, len(self.entries)) * 11 // 10
