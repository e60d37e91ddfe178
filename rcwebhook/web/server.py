"""HTTP serving: a narrow handler that speaks HTTP and hands the work to dispatch, and the server that
keeps itself alive on a hostile network with the lobby (web.lobby), the admission (web.admission) and
the crew (web.crew), a deadline for each request, caps on headers, per-client limits and optional TLS.
"""

from __future__ import annotations

import contextlib
import email.utils
import enum
import functools
import io
import logging
import re
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Hashable, List, Optional, Sequence, Tuple

from .. import __version__
from ..config import tls
from ..config.secrets import redact
from ..config.settings import Settings, is_loopback
from ..delivery.deliverer import Deliverer
from ..delivery.transport import Transport, make_transport
from ..operations.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from ..operations.metrics import FirstSeen, Metrics
from . import auth, dispatch
from .admission import SPARE_CONNECTIONS, Admission, Phase, Reason, ShedTally
from .board import Board
from .crew import Crew
from .dispatch import Reply
from .lobby import MAX_HEADER_BYTES, Lobby, lobby_size
from .throttle import ClientLimiter

log = logging.getLogger("rcwebhook")
access_log = logging.getLogger("rcwebhook.access")

ALLOWED = {"/health": "GET, HEAD", "/metrics": "GET, HEAD", "/ready": "GET, HEAD", "/status": "GET, HEAD",
           "/status.json": "GET, HEAD", "/webhook": "POST"}
READ_CHUNK = 1024 * 1024  # the most of a body one read takes
# How long a TLS client has, from its connection, to finish the handshake (at most REQUEST_TIMEOUT).
HANDSHAKE_TIMEOUT = 5.0
# How often, at most, the connections shed are summed up in the log.
SHED_SUMMARY_EVERY = 60.0
_TOO_LONG = b"x" * 65537  # what http.server's own line-length checks refuse
_DIGITS = re.compile(r"[0-9]+")
_HTTP_VERSION = re.compile(r"HTTP/[0-9]{1,9}\.[0-9]{1,9}")

_BUSY_BODY = b'{"error":"every connection is busy with a request; retry","status":"error"}\n'
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
         b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY))


# Most of a refused body a client may still send after the answer; rcwebhook reads and drops it
# (for at most REQUEST_TIMEOUT) so that the client, which reads only once it has sent it all,
# gets the answer instead of a reset.
LINGER_BYTES = 64 * 1024 * 1024


class Hush:
    """A warning said at most once every SHED_SUMMARY_EVERY seconds, with how many times it was not said
    meanwhile: a flood must not write a line per request it sends."""

    def __init__(self) -> None:
        self.said = -float("inf")
        self.unsaid = 0
        self.lock = threading.Lock()

    def say(self, now: float, line: str, *args: object) -> None:
        """Log `line` (its last %s: how often it went unsaid meanwhile) as a warning when due, else at DEBUG."""
        with self.lock:
            due = now - self.said >= SHED_SUMMARY_EVERY
            if due:
                unsaid, self.unsaid, self.said = self.unsaid, 0, now
            else:
                unsaid, self.unsaid = 0, self.unsaid + 1
        since = f" ({unsaid} more since the last such line, said at most once a minute)" if unsaid else ""
        log.log(logging.WARNING if due else logging.DEBUG, line, *args, since)


class Body(enum.Enum):
    """What became of a request's body: whether its connection can serve another request, and whether
    closing it must first drain what the client still sends."""

    NONE = "none"  # the request has no body
    UNREAD = "unread"  # it has one, not (all) read: the connection cannot be reused
    READ = "read"


class Server(ThreadingHTTPServer):
    """The rcwebhook HTTP server; `settings` may be swapped whole at any time. ThreadingHTTPServer gives it
    its socket, serving loop and request cycle, not its threads (see process_request)."""

    allow_reuse_address = True
    # socketserver's 5 resets connections when Alertmanager sends a burst; a deep backlog also
    # keeps a flood of stalled clients from crowding out new ones while they are sorted out.
    request_queue_size = 1024

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.metrics.declare_routes(settings.routes)
        self.board = Board(settings.source)
        self.deliverer = Deliverer(settings, make_transport(settings), metrics=self.metrics)
        self.client_limiter = ClientLimiter(settings.client_rate_limit, settings.client_rate_burst)
        self.unknown_paths = FirstSeen()  # the /webhook/<name> paths of no hook set, logged once each
        self.on_tick: List[Callable[[], None]] = []
        self.tls = tls.server_context(settings.tls_cert_file, settings.tls_key_file)  # None: plain HTTP
        self.admission = Admission(settings.max_connections, settings.request_timeout,
                                   min(HANDSHAKE_TIMEOUT, settings.request_timeout))
        self.connections = self.admission.table
        self.accepted_connections = 0
        self.shed_tally = ShedTally(SHED_SUMMARY_EVERY)
        self.busy_hush, self.key_hush = Hush(), Hush()
        if ":" in settings.host:
            self.address_family = socket.AF_INET6
        self.crew = Crew(self.process_request_thread, self.shutdown_request)
        # Before binding: a failed bind calls server_close, which stops the lobby.
        self.lobby = Lobby(self, lobby_size(settings.max_connections + SPARE_CONNECTIONS))
        super().__init__((settings.host.strip("[]"), settings.port), Handler)
        self.crew.ensure(settings.max_connections + SPARE_CONNECTIONS)

    def apply(self, settings: Settings, transport: Optional[Transport] = None) -> None:
        """Swap in new settings whole, with the transport built for them beforehand (None: keep the one in
        use); nothing here can fail."""
        self.deliverer.reconfigure(settings, transport)
        self.client_limiter.reconfigure(settings.client_rate_limit, settings.client_rate_burst)
        self.crew.ensure(settings.max_connections + SPARE_CONNECTIONS)
        self.admission.reconfigure(settings.max_connections, settings.request_timeout)
        self.metrics.declare_routes(settings.routes)
        self.settings = settings

    def drain(self, grace: float) -> bool:
        """Close the connections that wait on their client and wait up to `grace` seconds for the requests in
        flight (whole heads being read or answered); return whether all ended."""
        deadline = self.admission.clock() + grace
        while True:
            closing, busy = self.admission.stopping()
            for sock in closing:
                _close_now(sock)
            if not busy:
                return True
            if self.admission.clock() > deadline:
                log.warning("Stopping with %d requests still in flight after %.0fs", busy, grace)
                return False
            self.admission.wait_for_change(0.05)

    @property
    def url(self) -> str:
        """Return the base URL this server answers on."""
        host, port = self.server_address[:2]
        scheme = "https" if self.tls else "http"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    # --- connections --------------------------------------------------------------

    def get_request(self):
        sock, address = super().get_request()
        sock.setblocking(False)
        if self.tls is not None:
            # No I/O here: the lobby does the handshake, under its own deadline.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def process_request(self, request, client_address) -> None:
        """Send a new connection to the lobby, where it waits for its handshake and its request's head
        without holding a thread. This replaces ThreadingMixIn's whole: it would start a thread per connection
        at once (see web.crew for what that cost) and keep each for server_close to join, so daemon_threads
        and block_on_close mean nothing here; the crew's threads run the base class's process_request_thread."""
        self.accepted_connections += 1
        self.lobby.add(request, client_address)

    def close_shed(self, shed: Sequence[Tuple[Hashable, Optional[Reason]]]) -> None:
        """Close connections the admission has shed (already marked closed), counting them by reason."""
        for sock, reason in shed:
            self.count_shed(reason)
            _close_now(sock)

    def count_shed(self, reason: Optional[Reason]) -> None:
        """Count a connection shed (reason None: a kept-alive one closed idle, which is routine)."""
        if reason is not None:
            log.debug("Shed a connection: %s", reason.value)
            self.metrics.connections_shed.inc(reason=reason.value)
            self.shed_tally.add(reason, self.admission.clock())

    def refuse_busy(self, request) -> None:
        """Answer 503 on a connection given no seat: every one is busy with a request."""
        self.busy_hush.say(self.admission.clock(), "All %d connections are busy with requests: answered a new "
                           "one 503%s", self.settings.max_connections)
        self.metrics.errors.inc(reason="busy")
        with contextlib.suppress(OSError, ValueError):
            request.send(_BUSY)  # non-blocking: what does not fit at once is not waited for
        self.shutdown_request(request)

    def shutdown_request(self, request) -> None:
        self.admission.leave(request)
        super().shutdown_request(request)

    def service_actions(self) -> None:
        """Run the ticks (reload, watchdog); serve_forever calls this on every turn of the serving loop."""
        for tick in self.on_tick:
            try:
                tick()
            except Exception:  # a failed tick (a reload, say) must not end the serving loop, and the daemon
                log.exception("Internal error in the serving loop; still serving")

    def handle_error(self, request, client_address) -> None:
        """Log a failed connection through `logging`; a peer that goes away is not an error."""
        error = sys.exc_info()[1]
        if isinstance(error, (OSError, EOFError)):  # ssl.SSLError too
            log.debug("Connection from %s ended: %s", client_address[0], error)
        else:
            log.exception("Internal error on a connection from %s", client_address[0])

    def server_close(self) -> None:
        super().server_close()
        self.lobby.stop()
        self.crew.stop()
        self.deliverer.close()


_WEBHOOK = re.compile(r"/webhook(?:/[^/]+)?")  # /webhook or /webhook/<hook set>


@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    """Return the Date header's value for `second`, formatted once a second."""
    return email.utils.formatdate(second, usegmt=True)


def _close_now(sock: socket.socket) -> None:
    """Wake the thread reading `sock` and make it give up the connection."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Prefixed(socket.SocketIO):
    """A socket's stream that gives `head` (what the lobby already read of it) first."""

    def __init__(self, head: bytes, sock: socket.socket) -> None:
        super().__init__(sock, "rb")
        self.head = memoryview(head)

    def readinto(self, buffer) -> Optional[int]:
        if not self.head:
            return super().readinto(buffer)
        count = min(len(buffer), len(self.head))
        buffer[:count] = self.head[:count]
        self.head = self.head[count:]
        return count


class _RequestReader(io.BufferedReader):
    """The request stream, with a byte budget for the request line and headers."""

    budget: Optional[int] = None

    def readline(self, limit: int = -1) -> bytes:
        if self.budget is None:
            return super().readline(limit)
        if self.budget <= 0:
            return _TOO_LONG
        line = super().readline(self.budget + 1 if limit < 0 else min(limit, self.budget + 1))
        self.budget -= len(line)
        return _TOO_LONG if self.budget < 0 else line


class Handler(BaseHTTPRequestHandler):
    """Answers /health and /webhook; every answer is JSON, sent in one write."""

    server: Server
    protocol_version = "HTTP/1.1"
    server_version = f"rcwebhook/{__version__}"
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        self.timeout = self.server.settings.request_timeout
        self.started = time.monotonic()
        self.command = ""
        super().setup()
        self.rfile.close()  # replaced below; left open, it would keep the socket from closing
        # What the lobby read of the first request's head comes first, then the socket.
        connection = self.server.connections[self.request]  # seated, so in the table until shutdown_request
        head, connection.head = connection.head, b""
        self.rfile = _RequestReader(_Prefixed(head, self.connection))

    def handle_one_request(self) -> None:
        again = bool(getattr(self, "raw_requestline", None))
        if again and self.server.admission.is_spare(self.request):
            self.close_connection = True  # a spare connection serves one request
            return
        self.body = Body.NONE
        self.expects_continue = False
        if again:  # the first request's first byte came in the lobby
            if not self.server.admission.enter(self.request, Phase.IDLE) or not self._first_byte() \
                    or not self.server.admission.enter(self.request, Phase.HEAD):
                self.close_connection = True
                return
            self.started = time.monotonic()
        self.rfile.budget = MAX_HEADER_BYTES
        super().handle_one_request()

    def _first_byte(self) -> bool:
        """Wait, up to the idle timeout, for the next request's first byte; return whether it came."""
        try:
            return bool(self.rfile.peek(1))
        except OSError:  # the idle timeout, a reset, or closed from outside
            return False

    def parse_request(self) -> bool:
        words = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n").split()
        if len(words) == 3 and not _HTTP_VERSION.fullmatch(words[2]):
            # Older Pythons (Debian 12's 3.11.2) take "HTTP/-1.1" for a version.
            self.command, self.request_version = "", "HTTP/1.1"
            self.requestline = " ".join(words)[:200]
            self.send_error(400, f"Bad request version ({words[2][:40]!r})")
            return False
        if not super().parse_request():
            return False
        encoding = self.headers.get("Transfer-Encoding")
        length = self.headers.get("Content-Length")
        if encoding is not None or (length is not None and length.strip() != "0"):
            self.body = Body.UNREAD
        if encoding is not None and encoding.strip().lower() != "chunked":
            # The only coding rcwebhook knows of is chunked (refused with 411): with any other, where the
            # body ends is unknown, so nothing after it on this connection can be trusted.
            self.send_error(400, f"Transfer-Encoding {encoding[:60]!r} is not supported; send Content-Length")
            return False
        # The body's size sets the pace it is held to (a size over MAX_BODY_BYTES is refused unread).
        digits = (length or "").strip(" \t")
        body_bytes = min(int(digits), self.server.settings.max_body_bytes) \
            if _DIGITS.fullmatch(digits) and len(digits) <= 18 else 0
        if not self.server.admission.enter(self.request, Phase.READING, body_bytes):  # closed from outside meanwhile
            self.close_connection = True
            return False
        return True

    def handle_expect_100(self) -> bool:
        # http.server would send 100 Continue at once: it is sent only after the client is admitted and
        # its body's size is checked (in _read_body), so that a refused client does not send its body.
        self.expects_continue = True
        return True

    # --- methods ---------------------------------------------------------

    def do_GET(self) -> None:
        if not self.server.admission.enter(self.request, Phase.BUSY):
            self.close_connection = True
            return
        path = self._path()
        if path == "/health":
            self._send(dispatch.health(__version__))
        elif path == "/metrics":
            self._write(200, self.server.metrics.expose(), METRICS_CONTENT_TYPE)
        elif path in ("/status", "/status.json", "/ready"):
            self._status(path)
        else:
            self._not_here(path)

    do_HEAD = do_GET

    def _status(self, path: str) -> None:
        """Answer /status (HTML, or JSON when asked), /status.json or /ready."""
        from . import status  # the page's code: loaded when first asked for, not by every daemon

        server = self.server
        facts = status.facts(server.board, server.deliverer.snapshot(), server.settings.dry_run)
        no_store = (("Cache-Control", "no-store"),)
        if path == "/ready":
            ready = facts["ready"]["ready"]
            self._write(200 if ready else 503, dispatch.to_json(
                {"ready": ready, "reason": facts["ready"]["reason"], "status": "ready" if ready else "not ready",
                 "version": __version__}), "application/json", no_store)
        elif status.wants_json(path, self.headers.get("Accept", "")):
            self._write(200, dispatch.to_json(facts), "application/json", no_store)
        else:
            self._write(200, status.page(facts), "text/html; charset=utf-8", no_store + (
                ("Content-Security-Policy", status.CONTENT_SECURITY_POLICY),
                ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")))

    def do_POST(self) -> None:
        path = self._path()
        if not _WEBHOOK.fullmatch(path):
            self._not_here(path)
            return
        settings = self.server.settings
        receiver = path[len("/webhook/"):]
        promoted, shed = self.server.admission.promote_within(self.request)  # a spare seat's to an ordinary one
        self.server.close_shed(shed)
        if not promoted:
            self._refuse(503, "every connection is busy with a notification; retry",
                         (("Retry-After", "1"),), "busy")
            return
        refusal = self._admission(settings)
        if refusal is None and receiver and receiver not in settings.receivers:
            refusal = dispatch.unknown_receiver(receiver, settings, self.server.unknown_paths.first(receiver[:64]))
        if refusal is not None:
            self._send(refusal)  # its body unread: the connection closes, after draining it
            return
        body = self._read_body(settings)
        if body is None:
            return
        if not self.server.admission.enter(self.request, Phase.BUSY):
            # Closed from outside (its deadline, or stopping) after its body came: the client sees no
            # answer, so the notification must not be delivered either; Alertmanager sends it again.
            self.close_connection = True
            return
        try:
            reply = dispatch.handle(body, settings, self.server.deliverer, self.started, self.server.metrics,
                                    self.server.board, receiver, sender=self.client_address[0])
        except Exception:  # a bug must cost one request, not the daemon
            log.exception("Internal error while handling a notification")
            self._send(dispatch.error(500, "internal error; see rcwebhook's log"))
            return
        self._send(reply, recorded=True)

    def do_PUT(self) -> None:
        self._not_here(self._path())

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT

    # --- helpers ---------------------------------------------------------

    def _path(self) -> str:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        return path.rstrip("/") if path != "/" else path

    def _not_here(self, path: str) -> None:
        """Answer 405 with Allow for a known path, else 404."""
        allowed = "POST" if _WEBHOOK.fullmatch(path) else ALLOWED.get(path)
        if allowed:
            self._send(dispatch.error(
                405, f"{self.command} is not allowed on {path}; use {allowed}", (("Allow", allowed),)))
        else:
            self._send(dispatch.error(404, f"no such endpoint {path[:100]!r}; rcwebhook serves /metrics, /ready, "
                                            "/status, /health and /webhook (or /webhook/<hook set>)"))

    def _admission(self, settings: Settings) -> Optional[Reply]:
        """Return the refusal for a client over its request limit or without the API key, else None."""
        client = self.client_address[0]
        if settings.client_rate_limit_loopback or not is_loopback(client):
            wait = self.server.client_limiter.wait_needed(client, time.monotonic())
            if wait is not None:
                return dispatch.error(
                    503, f"too many requests from {client}: over CLIENT_RATE_LIMIT; retry later",
                    (("Retry-After", str(max(1, int(wait + 0.999)))),), reason="client_rate_limited")
        if not auth.authorized(self.headers, settings.api_key):
            self.server.key_hush.say(self.server.admission.clock(), "Refused a notification from %s: %s%s", client,
                                     "wrong API key" if auth.presented_keys(self.headers) else "no API key")
            return dispatch.error(
                401, "an API key is required: send it as X-API-Key, as Authorization: Bearer, "
                     "or as the Basic auth password", auth.CHALLENGES)
        return None

    def _read_body(self, settings: Settings) -> Optional[bytearray]:
        """Return the request body, or None after answering why it cannot be read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._refuse(411, "chunked bodies are not supported; send Content-Length")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return self._refuse(411, "Content-Length is required")
        digits = length_text.strip(" \t")
        if not _DIGITS.fullmatch(digits) or len(self.headers.get_all("Content-Length")) > 1:
            return self._refuse(400, f"Content-Length {length_text[:40]!r} is not a byte count")
        length = int(digits) if len(digits) <= 18 else 10 ** 18
        if length > settings.max_body_bytes:
            return self._refuse(413, f"body of {digits[:40]} bytes is over MAX_BODY_BYTES ({settings.max_body_bytes})")
        content_type = self.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            return self._refuse(415, f"Content-Type {content_type[:60]!r} is not JSON; send application/json")
        self.rfile.budget = None
        if self.expects_continue:
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            # The same deadline the lobby's sweep keeps: REQUEST_TIMEOUT after the request's first byte.
            body = self._read_exactly(length, self.server.admission.deadline(self.request))
        except socket.timeout:
            return self._refuse(408, "the body did not arrive within REQUEST_TIMEOUT")
        except OSError:
            self.close_connection = True
            return None
        if len(body) < length:
            return self._refuse(400, f"body ended after {len(body)} of {length} bytes")
        self.body = Body.READ
        return body

    def _read_exactly(self, length: int, deadline: float) -> bytearray:
        """Return up to `length` bytes, fewer only when the client stops sending; socket.timeout at `deadline`.

        The body is read into one buffer, as much at a time as the socket holds (up to READ_CHUNK): each
        read takes the interpreter lock again, and 64 bodies read in small pieces at once would keep
        /health waiting for it."""
        body = bytearray(length)
        got = 0
        with memoryview(body) as view:
            while got < length:
                if self.server.admission.clock() > deadline:
                    raise socket.timeout
                count = self.rfile.readinto1(view[got:got + READ_CHUNK])
                if not count:
                    break
                got += count
        del body[got:]
        return body  # not copied to bytes: a 4 MiB body would be held twice meanwhile

    def _refuse(self, status: int, text: str, headers: Sequence[Tuple[str, str]] = (),
                reason: str = "") -> None:
        """Answer an error and close: the body is unread, so the connection cannot be reused."""
        self.close_connection = True
        self._send(dispatch.error(status, text, headers, reason))

    def finish(self) -> None:
        super().finish()
        if getattr(self, "body", Body.NONE) is Body.UNREAD:
            self._linger()

    def _linger(self) -> None:
        """Stop writing, then drop what the client still sends (LINGER_BYTES, REQUEST_TIMEOUT at most)."""
        # A client reads the answer only once it has sent its body; closing with its data unread
        # would reset the connection, and the answer would be lost.
        sock = self.connection
        if not self.server.admission.enter(sock, Phase.LINGERING):
            return
        clock = self.server.admission.clock
        deadline = self.server.admission.deadline(sock)
        left = LINGER_BYTES
        with contextlib.suppress(OSError):  # the deadline, a reset, or closed from outside
            sock.shutdown(socket.SHUT_WR)
            while left > 0 and clock() < deadline:
                sock.settimeout(max(0.01, deadline - clock()))
                chunk = sock.recv(min(65536, left))
                if not chunk:
                    break
                left -= len(chunk)

    def _send(self, reply: Reply, recorded: bool = False) -> None:
        """Answer with a JSON reply, counting /webhook answers in the metrics and, unless dispatch `recorded` it,
        listing a refusal on /status."""
        if self.command == "POST" and _WEBHOOK.fullmatch(self._path()):
            server_metrics = self.server.metrics
            server_metrics.requests.inc(code=str(reply.status))
            server_metrics.request_duration.observe(time.monotonic() - self.started)
            if reply.status >= 300:
                server_metrics.errors.inc(reason=reply.reason or "bad_request")
                if not recorded:
                    self.server.board.refusal(reply.status, str(reply.body.get("error", "")), self._path())
        self._write(reply.status, dispatch.to_json(reply.body), "application/json", reply.headers)

    def _write(self, code: int, body: bytes, content_type: str, headers: Sequence[Tuple[str, str]] = ()) -> None:
        """Write the whole response, status line to body, in one write, every secret in the body redacted."""
        # Here, where every answer passes, not in each message: an error text may quote anything.
        body = redact(body.decode("utf-8"), self.server.settings.secrets()).encode("utf-8")
        if getattr(self, "body", Body.NONE) is Body.UNREAD:
            self.close_connection = True  # its unread body must not be taken for the next request
        status = HTTPStatus(code)
        head = [f"HTTP/1.1 {status.value} {status.phrase}", f"Server: {self.version_string()}",
                f"Date: {_http_date(int(time.time()))}", f"Content-Type: {content_type}",
                f"Content-Length: {len(body)}"]
        head.extend(f"{name}: {value}" for name, value in headers)
        if self.close_connection:
            head.append("Connection: close")
        elif getattr(self, "request_version", "") == "HTTP/1.0":
            head.append("Connection: keep-alive")  # an HTTP/1.0 client closes unless told otherwise
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD":
            data += body
        self._access(status.value, len(body))
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    def send_error(self, code: int, message: Optional[str] = None, explain: Optional[str] = None) -> None:
        """Answer a protocol error found by http.server itself, as JSON."""
        self._refuse(code, message or HTTPStatus(code).phrase)

    # --- logging through `logging`, not raw stderr -----------------------

    def _access(self, status: int, size: int) -> None:
        level = logging.INFO if status >= 400 else logging.DEBUG
        if access_log.isEnabledFor(level):
            request = (getattr(self, "requestline", "") or "-").encode("ascii", "backslashreplace").decode()
            access_log.log(level, '%s "%s" %d %d %.1fms', self.client_address[0], request[:200], status, size,
                           (time.monotonic() - self.started) * 1000)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        # http.server says "Request timed out" when a kept-alive connection (Alertmanager's, after each
        # notification) is closed idle: routine, not worth an INFO line that reads like an error.
        level = logging.DEBUG if format.startswith("Request timed out") else logging.INFO
        access_log.log(level, "%s %s", self.client_address[0], format % args)
