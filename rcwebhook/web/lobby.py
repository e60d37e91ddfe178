"""The lobby: where new connections wait, before the admission gives them a seat and the crew a thread."""

from __future__ import annotations

import collections
import contextlib
import logging
import resource
import selectors
import socket
import ssl
import threading
import time
from typing import Any, Dict, Tuple

from ..config import tls
from .admission import Phase, Reason

log = logging.getLogger("rcwebhook")

MAX_HEADER_BYTES = 32 * 1024  # request line and headers together; http.server caps them at 100 lines
# A POST's body up to this size is waited for in the lobby too: a request that comes whole (Alertmanager
# sends its notification at once) may then take the seat of one whose body is dragged out.
LOBBY_BODY_BYTES = 32 * 1024
# Connections waiting in the lobby for their handshake or their request's head, at most (fewer when the
# process may open fewer files); each holds at most MAX_HEADER_BYTES of what it sent.
LOBBY_CONNECTIONS = 1024


def lobby_size(seats: int) -> int:
    """Return how many connections the lobby may hold: LOBBY_CONNECTIONS, fewer if the process may open
    fewer files (raising its soft limit to the hard one first, as far as LOBBY_CONNECTIONS needs)."""
    want = LOBBY_CONNECTIONS + seats + 128  # the served connections, the state, the logs, Rocket.Chat
    with contextlib.suppress(OSError, ValueError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < want:
            soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return LOBBY_CONNECTIONS
    return max(16, min(LOBBY_CONNECTIONS, soft - seats - 128))


def _whole_request(head: bytes) -> int:
    """Return how many bytes make the whole request whose head `head` holds, body included, when the lobby
    waits for all of it (no body, or a Content-Length of at most LOBBY_BODY_BYTES, not expecting 100
    Continue); 0 when it does not."""
    end = head.find(b"\r\n\r\n")
    end = end + 4 if end >= 0 else head.find(b"\n\n") + 2
    if end < 2:
        return 0
    length = None
    for line in head[:end].split(b"\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name in (b"expect", b"transfer-encoding") or (name == b"content-length" and length is not None):
            return 0
        if name == b"content-length":
            value = value.strip()
            if not value.isdigit() or len(value) > 9 or int(value) > LOBBY_BODY_BYTES:
                return 0
            length = int(value)
    return end + (length or 0)


def _head_is_whole(head: bytes) -> bool:
    """Return whether `head` holds a whole request line and headers (or a line http.server refuses at once)."""
    end = head.find(b"\n")
    if end < 0:
        return False
    if b" HTTP/" not in head[:end]:
        return True  # not HTTP/1.x: http.server answers it from the line alone
    return b"\n\r\n" in head or b"\n\n" in head


class Lobby:
    """Where new connections wait, without a thread each, for their TLS handshake and their first request's
    head (its body too when it is small); one thread serves them all with a selector.

    A flood of connections that send nothing, or drag out their headers, stays here: it holds neither a
    thread nor a seat, and a notification that arrives whole goes straight past it. When the lobby is
    full, the connection that has sent nothing for the longest makes room, then the slowest head."""

    TICK = 0.1  # how often deadlines are checked

    def __init__(self, server: Any, size: int) -> None:  # server: the rcwebhook.web.server.Server it serves
        self.server = server
        self.admission = server.admission
        self.size = size
        self.selector = selectors.DefaultSelector()
        self.members: Dict[socket.socket, Tuple] = {}  # the lobby's connections and their addresses
        self.inbox: "collections.deque[Tuple[socket.socket, Tuple]]" = collections.deque()
        self.waker, self.wake_end = socket.socketpair()
        self.waker.setblocking(False)
        self.wake_end.setblocking(False)
        self.selector.register(self.wake_end, selectors.EVENT_READ)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="lobby", daemon=True)
        self.thread.start()

    def add(self, sock: socket.socket, address: Tuple) -> None:
        """Take a new connection (from the accepting thread)."""
        self.inbox.append((sock, address))
        self._wake()

    def stop(self) -> None:
        self.stopping = True
        self._wake()
        self.thread.join(5)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # already woken (its buffer is full), or stopped
            self.waker.send(b"x")

    def _run(self) -> None:
        next_tick = 0.0
        while not self.stopping:
            for key, _ in self.selector.select(self.TICK):
                if key.fileobj is self.wake_end:
                    with contextlib.suppress(OSError):
                        self.wake_end.recv(4096)
                else:
                    self._advance(key.fileobj)
            while self.inbox:
                self._admit(*self.inbox.popleft())
            now = time.monotonic()  # when to look again is real time, whatever the admission's clock
            if now >= next_tick:
                next_tick = now + self.TICK
                self._tick()
        for sock in list(self.members):
            self._drop(sock)
        while self.inbox:
            sock, _ = self.inbox.popleft()
            self.server.shutdown_request(sock)
        for closing in (self.selector, self.waker, self.wake_end):
            closing.close()

    def _tick(self) -> None:
        """Close the connections past their deadline, those the admission closed, and sum up what was shed."""
        self.server.close_shed(self.admission.expired())
        table = self.admission.table
        for sock in [s for s in self.members if s not in table or table[s].phase is Phase.CLOSED]:
            self._drop(sock)
        summary = self.server.shed_tally.due(self.admission.clock())
        if summary:
            log.warning("%s", summary)

    def _admit(self, sock: socket.socket, address: Tuple) -> None:
        for victim, reason in self.admission.lobby_victim(self.size):
            self.server.count_shed(reason)
            self._drop(victim)
        if len(self.members) >= self.size:  # every one there is sending its request, none slow yet
            self.server.count_shed(Reason.IDLE)
            self.server.shutdown_request(sock)
            return
        self.admission.arrive(sock, isinstance(sock, ssl.SSLSocket))
        self.members[sock] = address
        self.selector.register(sock, selectors.EVENT_READ)
        self._advance(sock)

    def _drop(self, sock: socket.socket) -> None:
        """Close a lobby connection."""
        if self.members.pop(sock, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)
        self.server.shutdown_request(sock)

    def _advance(self, sock: socket.socket) -> None:
        """Take the next step on a lobby connection that can make one: the handshake, or reading its head."""
        connection = self.admission.table.get(sock)
        if connection is None or connection.phase is Phase.CLOSED:
            self._drop(sock)
            return
        if connection.phase is Phase.HANDSHAKE:
            try:
                step = tls.handshake_step(sock)
            except (OSError, ValueError) as error:  # a TLS error, a reset, a closed socket
                log.debug("TLS handshake with %s failed: %s", self.members.get(sock, ("?",))[0], error)
                self.server.count_shed(Reason.TLS)
                self._drop(sock)
                return
            if step != "done":
                self.selector.modify(sock, selectors.EVENT_READ if step == "read" else selectors.EVENT_WRITE)
                return
            self.admission.enter(sock, Phase.NEW)
            self.selector.modify(sock, selectors.EVENT_READ)
        head = connection.head
        wanted = _whole_request(head)  # its body, waited for here (0: its head is not whole yet)
        try:
            while True:
                data = sock.recv(max(wanted, MAX_HEADER_BYTES + 1) - len(head))
                if not data:  # the client left, or ended its body early: that one is answered (400)
                    (self._hand if wanted else self._drop)(sock)
                    return
                if not head and not self.admission.enter(sock, Phase.HEAD):
                    self._drop(sock)
                    return
                head += data
                wanted = wanted or _whole_request(head)
                if len(head) >= max(wanted, MAX_HEADER_BYTES + 1) or not isinstance(sock, ssl.SSLSocket) \
                        or not sock.pending():
                    break
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            pass
        except (OSError, ValueError):
            self._drop(sock)
            return
        connection.head = head
        if wanted:
            if len(head) >= wanted:
                connection.whole = True
                self._hand(sock)
        elif len(head) > MAX_HEADER_BYTES or _head_is_whole(head):
            self._hand(sock)

    def _hand(self, sock: socket.socket) -> None:
        """Give a connection whose head is whole a seat and a thread, or answer 503 if every seat is busy."""
        address = self.members.pop(sock)
        self.selector.unregister(sock)
        seat, shed = self.admission.seat(sock)
        self.server.close_shed(shed)
        if seat is None:
            self.server.refuse_busy(sock)
            return
        self.server.crew.hand(sock, address)
