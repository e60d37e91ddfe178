"""Which connections rcwebhook keeps when it is short of room, decided by what each has done.

A connection is shed for room only while it waits on its client: first one that has sent nothing
(idle), then one whose request has dragged on for STALL_GRACE since its first byte without its head
being whole (slow), then one answered a refusal whose body it still drains (refused). A request whose
head has come whole and passed admission is never closed for another, with one exception: a request
that came whole (its body too, as Alertmanager sends it) may take the seat of one whose body lags behind
MIN_BODY_RATE, so that clients dragging out bodies cannot hold every seat for long. Otherwise only its own
deadline, REQUEST_TIMEOUT after its first byte, ends a request. Nothing here touches a socket: the table says who is
where, the decisions return the connections to close, and the server closes them. Nor does anything here read
the time but from the clock it is given (the monotonic clock, in the server): a test moves its own clock
through grace periods, paces and deadlines instead of waiting them out.
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from typing import Callable, Counter, Dict, Hashable, List, Optional, Tuple

# Connections admitted beyond MAX_CONNECTIONS while every other one is doing real work: they serve
# /health and /metrics (one request each), so a saturated daemon still shows it is alive.
SPARE_CONNECTIONS = 8
# How long after its first byte a request's head may take before it counts as slow. Alertmanager
# sends a whole notification in one go; a head still incomplete after this is a client dragging it out.
STALL_GRACE = 0.5
# The pace below which a request's body is dragged out (past STALL_GRACE after its head): such a request
# gives its seat to one that came whole. 4 MiB (MAX_BODY_BYTES) at this pace take 4 s.
MIN_BODY_RATE = 1024 * 1024  # bytes per second


class Phase(enum.Enum):
    """What an open connection is doing; its Connection says since when."""

    HANDSHAKE = "handshake"  # TLS handshake under way, in the lobby
    NEW = "new"  # accepted, no byte of its first request yet, in the lobby
    HEAD = "head"  # a request's first byte has come, its head is not whole yet
    READING = "reading"  # its head is whole and admitted: its body is being read (shed only when late)
    BUSY = "busy"  # a request is being answered: never closed from outside
    IDLE = "idle"  # kept alive between requests, no byte of the next one yet
    LINGERING = "lingering"  # answered a refusal without reading its body: dropping what the client still sends
    CLOSED = "closed"  # closed from outside; its thread notices


class Reason(enum.Enum):
    """Why a connection was shed: the label of rcwebhook_connections_shed_total."""

    IDLE = "idle"  # sent nothing (no request, or no next request on a kept-alive connection)
    SLOW = "slow"  # its request's head or body did not come whole in time
    REFUSED = "refused"  # answered a refusal (no API key, over its rate), still sending its body
    TLS = "tls"  # the TLS handshake failed or did not finish within HANDSHAKE_TIMEOUT


# Who waits on their client, in the order they are shed for room.
_SHED_ORDER = ((Phase.NEW, Reason.IDLE), (Phase.IDLE, Reason.IDLE), (Phase.HANDSHAKE, Reason.IDLE),
               (Phase.HEAD, Reason.SLOW), (Phase.LINGERING, Reason.REFUSED))
WAITING = frozenset(phase for phase, _ in _SHED_ORDER)
_REASON = dict(_SHED_ORDER)
# Why a connection past its deadline is shed, where that differs (None: a kept-alive one closed idle, routine).
_EXPIRED = {Phase.HANDSHAKE: Reason.TLS, Phase.IDLE: None}


class Seat(enum.Enum):
    """Where a connection is served."""

    LOBBY = "lobby"  # not yet given a thread: handshaking, or waiting for its request's head
    ORDINARY = "ordinary"  # one of MAX_CONNECTIONS
    SPARE = "spare"  # beyond them, for /health and /metrics only


class Connection:
    """What one open connection is doing, since when, and until when it may."""

    __slots__ = ("phase", "since", "deadline", "seat", "head", "looks", "whole", "body_due")

    def __init__(self, phase: Phase, now: float, deadline: float) -> None:
        self.phase = phase
        self.since = now  # HEAD: since the request's first byte
        self.deadline = deadline  # when the wait on the client ends, whatever the phase
        self.seat = Seat.LOBBY
        self.head = b""  # what the lobby read of the request's head, handed to the thread that serves it
        self.looks = False  # its request is a GET or HEAD (/health, /metrics, /status), known when seated
        self.whole = False  # its whole first request, body (if any) too, came in the lobby
        self.body_due = 0.0  # READING: when its body, at MIN_BODY_RATE, should have come whole

    @property
    def spare(self) -> bool:
        return self.seat is Seat.SPARE


# Connections closed by a decision, with why; None for a kept-alive connection closed idle after its
# REQUEST_TIMEOUT, which is routine (Alertmanager's, after each notification), not shed.
Shed = List[Tuple[Hashable, Optional[Reason]]]


class Admission:
    """The table of open connections and the decisions on it; every method takes the lock itself."""

    def __init__(self, max_connections: int, request_timeout: float, handshake_timeout: float,
                 clock: Callable[[], float] = time.monotonic, spares: int = SPARE_CONNECTIONS,
                 grace: float = STALL_GRACE) -> None:
        self.clock = clock
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self.handshake_timeout = handshake_timeout
        self.spares = spares
        self.grace = grace
        self.table: Dict[Hashable, Connection] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)  # a connection closed, or changed phase

    def reconfigure(self, max_connections: int, request_timeout: float) -> None:
        with self.lock:
            self.max_connections, self.request_timeout = max_connections, request_timeout

    # --- the life of a connection -----------------------------------------------------------

    def arrive(self, key: Hashable, tls: bool) -> None:
        """Record a connection just accepted, in the lobby."""
        now = self.clock()
        with self.lock:
            deadline = now + (self.handshake_timeout if tls else self.request_timeout)
            self.table[key] = Connection(Phase.HANDSHAKE if tls else Phase.NEW, now, deadline)

    def enter(self, key: Hashable, phase: Phase, body_bytes: int = 0) -> bool:
        """Record that a connection enters `phase` now (READING: with a body of `body_bytes` to come); return
        False if it was closed from outside (and then it must not go on: whatever it read is not acted on)."""
        now = self.clock()
        with self.changed:
            connection = self.table.get(key)
            if connection is None or connection.phase is Phase.CLOSED:
                return False
            if connection.phase is phase:
                return True
            if phase in (Phase.HEAD, Phase.NEW, Phase.IDLE, Phase.LINGERING):
                # From HEAD on, the deadline is for the whole request, head and body.
                connection.deadline = now + self.request_timeout
            elif phase is Phase.READING:
                connection.body_due = now + self.grace + body_bytes / MIN_BODY_RATE
            connection.phase, connection.since = phase, now
            self.changed.notify_all()
            return True

    def leave(self, key: Hashable) -> None:
        """Forget a connection that is closed."""
        with self.changed:
            if self.table.pop(key, None) is not None:
                self.changed.notify_all()

    def deadline(self, key: Hashable) -> float:
        """Return when the connection's wait on its client ends (now when it is gone)."""
        with self.lock:
            connection = self.table.get(key)
            return connection.deadline if connection is not None else self.clock()

    def is_spare(self, key: Hashable) -> bool:
        with self.lock:
            connection = self.table.get(key)
            return connection is not None and connection.spare

    # --- decisions --------------------------------------------------------------------------

    def seat(self, key: Hashable) -> Tuple[Optional[Seat], Shed]:
        """Give a connection whose request's head came whole in the lobby a seat: an ordinary one (in place of
        a connection waiting on its client if need be), else a spare one; return it (None: every seat is
        busy with real work, answer 503) and the connections to close for it, already marked closed."""
        now = self.clock()
        with self.changed:
            connection = self.table.get(key)
            if connection is None or connection.phase is Phase.CLOSED:
                return None, []
            shed: Shed = []
            connection.looks = connection.head.startswith((b"GET ", b"HEAD "))
            for seat, limit in ((Seat.ORDINARY, self.max_connections), (Seat.SPARE, self.spares)):
                # Notifications waiting on a spare seat to be promoted take half of them at most: a flood
                # of requests that hold every ordinary seat must not keep /health from answering.
                if seat is Seat.SPARE and not connection.looks and sum(
                        1 for c in self.table.values() if c.spare and c.phase is not Phase.CLOSED
                        and not c.looks) >= self.spares - self.spares // 2:
                    continue
                if self._taken(seat) >= limit:
                    victim = self._victim(seat, now, connection.whole)
                    if not victim:
                        continue
                    shed += victim
                connection.seat = seat
                return seat, shed
            return None, shed

    def promote(self, key: Hashable) -> Tuple[Optional[bool], Shed]:
        """Make a spare connection that carries a notification an ordinary one if a seat is free or a
        connection waits on its client; return whether it was (None: not yet, it may wait for
        `wait_for_change` and ask again, up to `grace`: promote_within) and the connections closed for it."""
        with self.lock:
            connection = self.table.get(key)
            if connection is None or connection.phase is Phase.CLOSED:
                return False, []
            if not connection.spare:
                return True, []
            shed: Shed = []
            if self._taken(Seat.ORDINARY) >= self.max_connections:
                shed = self._victim(Seat.ORDINARY, self.clock(), connection.whole)
            if self._taken(Seat.ORDINARY) >= self.max_connections:
                return None, []
            connection.seat = Seat.ORDINARY
            return True, shed

    def promote_within(self, key: Hashable) -> Tuple[bool, Shed]:
        """Promote as `promote` does, waiting up to `grace` (on this admission's clock) for a seat to free;
        return whether it was, and the connections closed for it."""
        deadline = self.clock() + self.grace
        while True:
            promoted, shed = self.promote(key)
            if promoted is not None:
                return promoted, shed
            left = deadline - self.clock()
            if left <= 0:
                return False, []
            # A seat frees when a connection changes phase or closes, which notifies; the clock is looked at
            # again at least this often, whatever moves it.
            self.wait_for_change(min(left, 0.05))

    def wait_for_change(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for a connection to close or change phase."""
        with self.changed:
            self.changed.wait(timeout)

    def lobby_victim(self, limit: int) -> Shed:
        """Return the lobby connection to close so that a new one fits in a lobby of `limit` (none when it
        fits, or when every one there is sending a request and is not slow yet)."""
        with self.lock:
            if self._taken(Seat.LOBBY) < limit:
                return []
            return self._victim(Seat.LOBBY, self.clock())

    def expired(self) -> Shed:
        """Return the connections past their deadline, marked closed: each waited on its client too long."""
        now = self.clock()
        shed: Shed = []
        with self.lock:
            for key, connection in self.table.items():
                if connection.deadline < now and connection.phase in WAITING | {Phase.READING}:
                    shed.append((key, _EXPIRED.get(connection.phase, _REASON.get(connection.phase, Reason.SLOW))))
                    connection.phase = Phase.CLOSED
        return shed

    def stopping(self) -> Tuple[List[Hashable], int]:
        """Mark closed every connection that waits on its client; return them and how many requests are
        still in flight (whole heads, being read or answered)."""
        with self.lock:
            closing = [key for key, c in self.table.items() if c.phase in WAITING]
            for key in closing:
                self.table[key].phase = Phase.CLOSED
            return closing, sum(1 for c in self.table.values() if c.phase in (Phase.READING, Phase.BUSY))

    # --- with the lock held ---------------------------------------------------------------------

    def _taken(self, seat: Seat) -> int:
        return sum(1 for c in self.table.values() if c.seat is seat and c.phase is not Phase.CLOSED)

    def _victim(self, seat: Seat, now: float, whole: bool = False) -> Shed:
        """Mark closed and return the connection in `seat` to shed first, with why ([] if none may be). For
        a request that came `whole`, last, the one whose body lags furthest behind MIN_BODY_RATE."""
        for phase, reason in _SHED_ORDER:
            slow = [(c.since, key) for key, c in self.table.items() if c.seat is seat and c.phase is phase
                    and (phase is not Phase.HEAD or c.since <= now - self.grace)]
            if slow:
                key = min(slow, key=lambda item: item[0])[1]
                self.table[key].phase = Phase.CLOSED
                return [(key, reason)]
        if whole:
            late = [(c.body_due, key) for key, c in self.table.items()
                    if c.seat is seat and c.phase is Phase.READING and c.body_due <= now]
            if late:
                key = min(late, key=lambda item: item[0])[1]
                self.table[key].phase = Phase.CLOSED
                return [(key, Reason.SLOW)]
        return []


class ShedTally:
    """The connections shed since the last summary, summed up in one line at most every `every` seconds."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self.counts: Counter[Reason] = collections.Counter()
        self.last_line = -float("inf")
        self.first: Optional[float] = None
        self.lock = threading.Lock()

    def add(self, reason: Reason, now: float) -> None:
        with self.lock:
            self.counts[reason] += 1
            if self.first is None:
                self.first = now

    def due(self, now: float) -> Optional[str]:
        """Return the summary line when one is due (something was shed, the last line is `every` old)."""
        with self.lock:
            if not self.counts or now - self.last_line < self.every:
                return None
            counts, self.counts = self.counts, collections.Counter()
            since = self.last_line if self.last_line > -float("inf") else self.first
            self.first, self.last_line = None, now
        return (f"Shed {sum(counts.values())} connections in the last {max(1, round(now - since))} s: "
                f"{counts[Reason.IDLE]} idle, {counts[Reason.SLOW]} slow, {counts[Reason.REFUSED]} refused while "
                f"sending their body, {counts[Reason.TLS]} failed TLS handshakes")
