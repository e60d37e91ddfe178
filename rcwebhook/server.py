"""HTTP serving: a narrow handler that speaks HTTP and hands the work to dispatch."""

from __future__ import annotations

import logging
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import urlsplit

from . import __version__, delivery, dispatch
from .config import Settings
from .courier import Deliverer
from .delivery import Transport
from .dispatch import Reply

log = logging.getLogger("rcwebhook")
access_log = logging.getLogger("rcwebhook.access")

ALLOWED = {"/health": "GET, HEAD", "/webhook": "POST"}


class Server(ThreadingHTTPServer):
    """The rcwebhook HTTP server; `settings` may be swapped whole at any time."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's 5 resets connections when Alertmanager sends a burst

    def __init__(self, settings: Settings, transport: Transport = delivery.post) -> None:
        self.settings = settings
        self.deliverer = Deliverer(settings, transport)
        if ":" in settings.host:
            self.address_family = socket.AF_INET6
        super().__init__((settings.host.strip("[]"), settings.port), Handler)

    def server_close(self) -> None:
        super().server_close()
        self.deliverer.close()

    @property
    def url(self) -> str:
        """Return the base URL this server answers on."""
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Handler(BaseHTTPRequestHandler):
    """Answers /health and /webhook; every answer is JSON, sent in one write."""

    server: Server
    protocol_version = "HTTP/1.1"
    server_version = f"rcwebhook/{__version__}"
    sys_version = ""
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        self.timeout = self.server.settings.request_timeout
        self.started = time.monotonic()
        super().setup()

    def parse_request(self) -> bool:
        # The request starts once its request line is in, not while a kept-alive connection idles.
        self.started = time.monotonic()
        return super().parse_request()

    # --- methods ---------------------------------------------------------

    def do_GET(self) -> None:
        path = self._path()
        if path == "/health":
            self._send(dispatch.health(__version__))
        else:
            self._not_here(path)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        path = self._path()
        if path != "/webhook":
            self._not_here(path)
            return
        body = self._read_body()
        if body is None:
            return
        settings = self.server.settings
        try:
            reply = dispatch.handle(body, settings, self.server.deliverer, self.started)
        except Exception:  # a bug must cost one request, not the daemon
            log.exception("Internal error while handling a notification")
            reply = dispatch.error(500, "internal error; see rcwebhook's log")
        self._send(reply)

    def do_PUT(self) -> None:
        self._not_here(self._path())

    do_DELETE = do_PATCH = do_OPTIONS = do_PUT

    # --- helpers ---------------------------------------------------------

    def _path(self) -> str:
        path = urlsplit(self.path).path
        return path.rstrip("/") if path != "/" else path

    def _not_here(self, path: str) -> None:
        """Answer 405 with Allow for a known path, else 404."""
        allowed = ALLOWED.get(path)
        if allowed:
            self._send(dispatch.error(
                405, f"{self.command} is not allowed on {path}; use {allowed}", (("Allow", allowed),)))
        else:
            self._send(dispatch.error(404, f"no such endpoint {path[:100]!r}; rcwebhook serves /health and /webhook"))

    def _read_body(self) -> Optional[bytes]:
        """Return the request body, or None after answering why it cannot be read."""
        settings = self.server.settings
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._refuse(411, "chunked bodies are not supported; send Content-Length")
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            return self._refuse(411, "Content-Length is required")
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            return self._refuse(400, f"Content-Length {length_text[:40]!r} is not a byte count")
        if length > settings.max_body_bytes:
            return self._refuse(413, f"body of {length} bytes is over MAX_BODY_BYTES ({settings.max_body_bytes})")
        content_type = self.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            return self._refuse(415, f"Content-Type {content_type[:60]!r} is not JSON; send application/json")
        try:
            body = self.rfile.read(length)
        except socket.timeout:
            return self._refuse(408, "the body did not arrive within REQUEST_TIMEOUT")
        if len(body) < length:
            return self._refuse(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _refuse(self, status: int, text: str) -> None:
        """Answer an error and close: the body is unread, so the connection cannot be reused."""
        self.close_connection = True
        self._send(dispatch.error(status, text))
        return None

    def _send(self, reply: Reply) -> None:
        """Write the whole response, status line to body, in one write."""
        body = dispatch.encode(reply)
        status = HTTPStatus(reply.status)
        head = [
            f"HTTP/1.1 {status.value} {status.phrase}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        ]
        head.extend(f"{name}: {value}" for name, value in reply.headers)
        if self.close_connection:
            head.append("Connection: close")
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
        self.close_connection = True
        text = message or HTTPStatus(code).phrase
        if not hasattr(self, "command") or self.command is None:
            self.command = ""
        self._send(dispatch.error(code, text))

    # --- logging through `logging`, not raw stderr -----------------------

    def _access(self, status: int, size: int) -> None:
        level = logging.INFO if status >= 400 else logging.DEBUG
        if access_log.isEnabledFor(level):
            request = getattr(self, "requestline", "") or "-"
            access_log.log(level, '%s "%s" %d %d %.1fms', self.client_address[0], request[:200], status, size,
                           (time.monotonic() - self.started) * 1000)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        access_log.info("%s %s", self.client_address[0], format % args)

