"""A stand-in Rocket.Chat incoming-webhook server for tests (stdlib only, Python 3.9+).

It answers ``POST /hooks/<integrationId>/<token>`` (and the legacy
``/hooks/<integrationId>/<userId>/<token>``) the way Rocket.Chat 6.x-8.x does, as its source
and behaviour were studied: the same status codes and the same error strings for validation,
wrong tokens (404 on version 6, 500 on version >= 7), disabled integrations (503) and rate
limiting (429, wait only reliably in the error text, never a ``Retry-After`` header).  It records
every request per hook, and every accepted message, so tests assert on what was really posted.
It can also be told to fail, reset or stall the next requests to a hook.

Where it simplifies the real server (tests relying on these must know):

- Permissions are switches, not roles: overriding the channel (``channel``/``roomId``) and
  impersonating (``username``/``alias``/``avatar``/``icon_url``) are refused unless the stand-in
  or the hook was built with ``allow_channel_override`` / ``allow_impersonate``.  When allowed,
  any channel name or room id is accepted: there is no ``invalid-channel``/``error-not-allowed``
  check, no rooms, no users, and no integration scripts (``error-running-script`` never happens).
- The message-size check counts Python characters (code points) of ``text`` (or ``msg``) only;
  the real server counts JavaScript UTF-16 units, so astral characters (emoji) count once here
  and twice there.  Attachments are not counted, as in the real server.
- Attachment field ``title``/``value`` must be non-empty strings.  The real server also accepts a
  non-zero number or ``true`` as ``value``; this stand-in is stricter on purpose.
- URL-typed keys (attachment ``title_link``, ``author_link``, ``image_url``, ``thumb_url`` and
  ``actions[].url``) must be absolute ``http``/``https`` URLs with a host; an empty string counts
  as absent.  ``author_icon`` is not checked (CONTRACTS.md does not list it).
- When several validation rules are broken, the first in this order answers: channel override,
  impersonation, shape of ``text``/``attachments``/``fields``, field title/value, hrefs, size.
- Only ``POST`` with a JSON body (``Content-Length`` framed) is modelled: other methods get 405,
  chunked bodies get 411, form-encoded ``payload=`` bodies get 400, bodies over 8 MiB get 413.
  A zero-length body counts as ``{}``.  The legacy URL accepts any ``userId`` segment.
- A body without ``text``/``msg`` and without attachments is answered 200 and posts nothing: it
  shows up in ``requests()`` but not in ``messages()``.
- The 503 body for a disabled integration (``Integration disabled``) is this stand-in's choice;
  CONTRACTS.md only fixes the status.
- Rate limiting is off unless ``rate_limit > 0`` (the real default is 10 per 60 s).  It uses fixed
  windows per (client IP, request path): a window opens with the first request after the previous
  one expired and lasts ``rate_window`` seconds.  Like the real limiter, which runs before the hook
  handler, it counts every request that reaches a hook URL, whether later rejected (400, 404,
  503) or not.  The ``X-RateLimit-*`` headers go on every answer that passed through the limiter,
  unless ``ratelimit_headers=False`` (some versions omit them).
- ``fail_next`` is injected trouble in front of everything else (as a proxy or network fault
  would be): it matches a request by integration id alone, ignores the token, and is not counted
  by the rate limiter.  Requests with an id no hook has are kept in ``unmatched_requests()``.
"""

from __future__ import annotations

import copy
import http.server
import json
import math
import secrets
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

__all__ = ["RocketChatStandin", "check_message", "normalize_message"]

INVALID_TOKEN_ERROR = "Invalid integration id or token provided."
FIELD_ERROR = "Invalid attachment field, title and value is required"
HREF_ERROR = "Invalid href value provided"
SIZE_ERROR = "error-message-size-exceeded"
CHANNEL_OVERRIDE_ERROR = "overriding destination channel is disabled for this integration"
IMPERSONATE_ERROR = "error-user-lacks-message-impersonate-permission"
DISABLED_ERROR = "Integration disabled"
RATE_LIMIT_ERROR = (
    "Error, too many requests. Please slow down. You must wait {seconds} seconds before trying "
    "this endpoint again. [error-too-many-requests]"
)

MAX_BODY_BYTES = 8 * 1024 * 1024
ATTACHMENT_URL_KEYS = ("title_link", "author_link", "image_url", "thumb_url")
IMPERSONATE_KEYS = ("username", "alias", "avatar", "icon_url")
FAIL_MODES = ("status", "reset", "stall")

# Meteor's Random.id() alphabet, which Rocket.Chat uses for integration ids and tokens.
_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz"


def _random_id(length: int) -> str:
    """Return a Meteor-style random id of the given length."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _is_absolute_http_url(value: str) -> bool:
    """Return whether value is an absolute http(s) URL with a host."""
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _href_ok(value: Any) -> bool:
    """Return whether a URL-typed key's value passes (absent and empty count as absent)."""
    if value is None or value == "":
        return True
    return isinstance(value, str) and _is_absolute_http_url(value)


def _field_ok(item: Any) -> bool:
    """Return whether one attachments[].fields[] item has a non-empty string title and value."""
    if not isinstance(item, dict):
        return False
    title, value = item.get("title"), item.get("value")
    return isinstance(title, str) and title != "" and isinstance(value, str) and value != ""


def normalize_message(body: Dict[str, Any]) -> Dict[str, Any]:
    """Return the message a body posts, with aliases resolved the way Rocket.Chat resolves them."""
    return {
        "text": body.get("text") or body.get("msg") or "",
        "alias": body.get("alias") or body.get("username") or None,
        "avatar": body.get("avatar") or body.get("icon_url") or None,
        "emoji": body.get("emoji") or body.get("icon_emoji") or None,
        "channel": body.get("channel") or body.get("roomId") or None,
        "attachments": copy.deepcopy(body.get("attachments") or []),
        "tmid": body.get("tmid") or None,
    }


def check_message(
    body: Dict[str, Any],
    *,
    max_message_size: int,
    allow_channel_override: bool,
    allow_impersonate: bool,
) -> Optional[str]:
    """Return the error string the real server answers 400 with, or None if the post is accepted."""
    if (body.get("channel") or body.get("roomId")) and not allow_channel_override:
        return CHANNEL_OVERRIDE_ERROR
    if any(body.get(key) for key in IMPERSONATE_KEYS) and not allow_impersonate:
        return IMPERSONATE_ERROR

    text = body.get("text") or body.get("msg")
    if text is not None and not isinstance(text, str):
        return "Match error: Expected string for text, got " + type(text).__name__
    attachments = body.get("attachments")
    if attachments is None:
        attachments = []
    if not isinstance(attachments, list):
        return "Match error: Expected array for attachments"
    for attachment in attachments:
        if not isinstance(attachment, dict):
            return "Match error: Expected object for attachments[]"
        fields = attachment.get("fields")
        if fields is not None and not isinstance(fields, list):
            return "Match error: Expected array for attachments[].fields"
        actions = attachment.get("actions")
        if actions is not None and not isinstance(actions, list):
            return "Match error: Expected array for attachments[].actions"

    for attachment in attachments:
        if not all(_field_ok(item) for item in attachment.get("fields") or []):
            return FIELD_ERROR

    for attachment in attachments:
        if not all(_href_ok(attachment.get(key)) for key in ATTACHMENT_URL_KEYS):
            return HREF_ERROR
        for action in attachment.get("actions") or []:
            if isinstance(action, dict) and not _href_ok(action.get("url")):
                return HREF_ERROR

    if text is not None and len(text) > max_message_size:
        return SIZE_ERROR
    return None


def _posts_something(body: Dict[str, Any]) -> bool:
    """Return whether an accepted body produces a message (text or at least one attachment)."""
    return bool(body.get("text") or body.get("msg") or body.get("attachments"))


@dataclass
class _Hook:
    name: str
    integration_id: str
    user_id: str
    token: str
    allow_channel_override: bool
    allow_impersonate: bool
    disabled: bool = False
    failures: Deque[Tuple[str, int, str]] = field(default_factory=deque)
    messages: List[Dict[str, Any]] = field(default_factory=list)
    requests: List[Dict[str, Any]] = field(default_factory=list)


@dataclass
class _Answer:
    """What the handler writes back: a JSON answer, or no answer at all ("reset"/"stall")."""

    status: int
    body: Optional[Dict[str, Any]] = None
    headers: Dict[str, str] = field(default_factory=dict)
    action: str = "answer"


class _Handler(http.server.BaseHTTPRequestHandler):
    """Speaks HTTP only; the stand-in decides every answer."""

    protocol_version = "HTTP/1.1"
    server_version = "RocketChatStandin/1.0"
    disable_nagle_algorithm = True  # headers and body go out in two writes; no 40 ms delayed-ACK stall

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Keep test output clean: no access log on stderr."""

    def setup(self) -> None:
        super().setup()
        self.server.standin._track_connection(self.connection, True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.standin._track_connection(self.connection, False)  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.close_connection = True
            self._send(_Answer(HTTPStatus.LENGTH_REQUIRED, {"success": False, "error": "Length Required"}))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(_Answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"success": False, "error": "request entity too large"}))
            return
        raw = self.rfile.read(length) if length else b""
        answer = self.server.standin._handle_post(  # type: ignore[attr-defined]
            self.path, raw, dict(self.headers.items()), self.client_address
        )
        if answer.action == "reset":
            self._reset()
        elif answer.action == "stall":
            self.server.standin._stall()  # type: ignore[attr-defined]
            self.close_connection = True
        else:
            self._send(answer)

    def _not_allowed(self) -> None:
        # Drain any body so a keep-alive connection stays in step.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        self._send(_Answer(HTTPStatus.METHOD_NOT_ALLOWED, {"success": False, "error": "Method not allowed"}))

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed

    def _send(self, answer: _Answer) -> None:
        payload = json.dumps(answer.body, separators=(",", ":")).encode("utf-8")
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _reset(self) -> None:
        """Close the connection with a TCP RST instead of an answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    standin: "RocketChatStandin"


class RocketChatStandin:
    """A Rocket.Chat incoming-webhook server on 127.0.0.1 that records what it accepts."""

    def __init__(
        self,
        *,
        rate_limit: int = 0,
        rate_window: float = 60.0,
        version: int = 6,
        max_message_size: int = 5000,
        allow_channel_override: bool = False,
        allow_impersonate: bool = False,
        ratelimit_headers: bool = True,
        clock: Callable[[], float] = time.monotonic,
        tls: Optional["ssl.SSLContext"] = None,
    ) -> None:
        self.tls = tls  # serve HTTPS with this server context
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.version = version
        self.max_message_size = max_message_size
        self.allow_channel_override = allow_channel_override
        self.allow_impersonate = allow_impersonate
        self.ratelimit_headers = ratelimit_headers
        self._clock = clock
        self._cond = threading.Condition()
        self._hooks: Dict[str, _Hook] = {}
        self._hooks_by_id: Dict[str, _Hook] = {}
        self._unmatched: List[Dict[str, Any]] = []
        self._windows: Dict[Tuple[str, str], List[float]] = {}
        self._stall_generation = 0
        self._stopped = False
        self._connections: set = set()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "RocketChatStandin":
        """Return self, serving on an ephemeral 127.0.0.1 port in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("RocketChatStandin already started")
        server = _Server(("127.0.0.1", 0), _Handler)
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        server.standin = self
        self._server = server
        self._stopped = False
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01},
            name="rocketchat-standin", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection, free stalled handlers."""
        with self._cond:
            self._stopped = True
            self._stall_generation += 1
            self._cond.notify_all()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "RocketChatStandin":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Return http://127.0.0.1:PORT of the running stand-in."""
        if self._server is None:
            raise RuntimeError("RocketChatStandin is not started")
        scheme = "https" if self.tls is not None else "http"
        return "%s://127.0.0.1:%d" % (scheme, self._server.server_address[1])

    # -- hooks -----------------------------------------------------------------------------------

    def add_hook(
        self,
        name: str,
        *,
        allow_channel_override: Optional[bool] = None,
        allow_impersonate: Optional[bool] = None,
    ) -> str:
        """Return the URL of a new incoming-webhook integration named name (random id and token)."""
        base = self.base_url
        hook = _Hook(
            name=name,
            integration_id=_random_id(17),
            user_id=_random_id(17),
            token=_random_id(48),
            allow_channel_override=(
                self.allow_channel_override if allow_channel_override is None else allow_channel_override
            ),
            allow_impersonate=self.allow_impersonate if allow_impersonate is None else allow_impersonate,
        )
        with self._cond:
            if name in self._hooks:
                raise ValueError("hook %r already exists" % name)
            self._hooks[name] = hook
            self._hooks_by_id[hook.integration_id] = hook
        return "%s/hooks/%s/%s" % (base, hook.integration_id, hook.token)

    def url(self, name: str) -> str:
        """Return the webhook URL of a hook."""
        hook = self._hook(name)
        return "%s/hooks/%s/%s" % (self.base_url, hook.integration_id, hook.token)

    def legacy_url(self, name: str) -> str:
        """Return the legacy /hooks/<id>/<userId>/<token> URL of a hook."""
        hook = self._hook(name)
        return "%s/hooks/%s/%s/%s" % (self.base_url, hook.integration_id, hook.user_id, hook.token)

    def token(self, name: str) -> str:
        """Return the secret token of a hook."""
        return self._hook(name).token

    def integration_id(self, name: str) -> str:
        """Return the integration id of a hook."""
        return self._hook(name).integration_id

    def disable(self, name: str, disabled: bool = True) -> None:
        """Disable (503) or re-enable a hook."""
        with self._cond:
            self._hook(name).disabled = disabled

    def fail_next(
        self,
        name: str,
        count: int,
        *,
        status: int = 503,
        error: str = "Service Unavailable",
        mode: str = "status",
    ) -> None:
        """Make the next count requests to a hook fail: answer status, reset, or stall."""
        if mode not in FAIL_MODES:
            raise ValueError("mode must be one of %s, not %r" % (", ".join(FAIL_MODES), mode))
        with self._cond:
            self._hook(name).failures.extend([(mode, status, error)] * count)

    def release_stalled(self) -> None:
        """Free every stalled request; each one's connection is closed without an answer."""
        with self._cond:
            self._stall_generation += 1
            self._cond.notify_all()

    def reset_rate_limits(self) -> None:
        """Forget every rate-limit window."""
        with self._cond:
            self._windows.clear()

    # -- what was seen ------------------------------------------------------------------------

    def messages(self, name: str) -> List[Dict[str, Any]]:
        """Return copies of the JSON bodies accepted and posted for a hook, in order."""
        with self._cond:
            return copy.deepcopy(self._hook(name).messages)

    def posted(self, name: str) -> List[Dict[str, Any]]:
        """Return the accepted messages of a hook with aliases resolved (see normalize_message)."""
        return [normalize_message(body) for body in self.messages(name)]

    def all_messages(self) -> Dict[str, List[Dict[str, Any]]]:
        """Return copies of the accepted bodies of every hook, by hook name."""
        with self._cond:
            return {name: copy.deepcopy(hook.messages) for name, hook in self._hooks.items()}

    def requests(self, name: str) -> List[Dict[str, Any]]:
        """Return every request that reached a hook's integration id, in order.

        Each is {"status", "body", "headers", "at", "client", "outcome"}: status is 0 when no
        answer was given, body is the parsed JSON or None, at is the stand-in's clock, outcome is
        "answered", "reset" or "stalled".
        """
        with self._cond:
            return copy.deepcopy(self._hook(name).requests)

    def unmatched_requests(self) -> List[Dict[str, Any]]:
        """Return the requests whose path named no known hook."""
        with self._cond:
            return copy.deepcopy(self._unmatched)

    def count_429(self, name: str) -> int:
        """Return how many 429 answers a hook's integration id got."""
        with self._cond:
            return sum(1 for r in self._hook(name).requests if r["status"] == 429)

    def wait_for_messages(self, name: str, count: int, timeout: float = 5.0) -> List[Dict[str, Any]]:
        """Return the hook's accepted bodies once there are at least count, or raise AssertionError."""
        with self._cond:
            hook = self._hook(name)
            if not self._cond.wait_for(lambda: len(hook.messages) >= count, timeout):
                raise AssertionError(
                    "hook %r: wanted %d message(s) within %.3gs, got %d: %r; request statuses: %r"
                    % (name, count, timeout, len(hook.messages), hook.messages,
                       [r["status"] for r in hook.requests])
                )
            return copy.deepcopy(hook.messages)

    def wait_for_requests(self, name: str, count: int, timeout: float = 5.0) -> List[Dict[str, Any]]:
        """Return the hook's requests once at least count arrived, or raise AssertionError."""
        with self._cond:
            hook = self._hook(name)
            if not self._cond.wait_for(lambda: len(hook.requests) >= count, timeout):
                raise AssertionError(
                    "hook %r: wanted %d request(s) within %.3gs, got %d: %r"
                    % (name, count, timeout, len(hook.requests), hook.requests)
                )
            return copy.deepcopy(hook.requests)

    # -- request handling (called from handler threads) -------------------------------------

    def _hook(self, name: str) -> _Hook:
        try:
            return self._hooks[name]
        except KeyError:
            raise KeyError("no hook named %r (known: %s)" % (name, sorted(self._hooks))) from None

    def _track_connection(self, conn: socket.socket, opened: bool) -> None:
        with self._cond:
            if opened:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _stall(self) -> None:
        """Block the calling handler until release_stalled() or stop()."""
        with self._cond:
            generation = self._stall_generation
            self._cond.wait_for(lambda: self._stall_generation != generation or self._stopped)

    def _handle_post(
        self, path: str, raw: bytes, headers: Dict[str, str], client: Tuple[str, int]
    ) -> _Answer:
        """Return the answer to one POST, recording it."""
        route = urllib.parse.urlsplit(path).path
        parts = [p for p in route.split("/") if p]
        body, parse_error = _parse_body(raw)
        record: Dict[str, Any] = {
            "status": 0,
            "body": body if isinstance(body, dict) else None,
            "headers": headers,
            "at": self._clock(),
            "client": client,
            "outcome": "answered",
        }
        with self._cond:
            if len(parts) not in (3, 4) or parts[0] != "hooks":
                record["status"] = 404
                self._unmatched.append(record)
                self._cond.notify_all()
                return _Answer(404, {"success": False, "error": "Not found"})
            integration_id, token = parts[1], parts[-1]
            hook = self._hooks_by_id.get(integration_id)
            log = hook.requests if hook is not None else self._unmatched
            answer = self._answer(hook, token, route, body, parse_error, client[0])
            if answer.action != "answer":
                record["outcome"] = "reset" if answer.action == "reset" else "stalled"
            else:
                record["status"] = int(answer.status)
            log.append(record)
            self._cond.notify_all()
            return answer

    def _answer(
        self,
        hook: Optional[_Hook],
        token: str,
        route: str,
        body: Any,
        parse_error: Optional[str],
        client_ip: str,
    ) -> _Answer:
        """Return the answer for a request to a hook URL; caller holds the lock."""
        if hook is not None and hook.failures:
            mode, status, error = hook.failures.popleft()
            if mode == "reset":
                return _Answer(0, action="reset")
            if mode == "stall":
                return _Answer(0, action="stall")
            return _Answer(status, {"success": False, "error": error})

        limit_headers: Dict[str, str] = {}
        if self.rate_limit > 0:
            limited, limit_headers = self._rate_limit(client_ip, route)
            if limited is not None:
                return _Answer(429, {"success": False, "error": limited}, limit_headers)

        def fail(status: int, error: str) -> _Answer:
            return _Answer(status, {"success": False, "error": error}, limit_headers)

        if hook is None or not secrets.compare_digest(token.encode(), hook.token.encode()):
            return fail(404 if self.version < 7 else 500, INVALID_TOKEN_ERROR)
        if hook.disabled:
            return fail(503, DISABLED_ERROR)
        if parse_error is not None:
            return fail(400, parse_error)
        if not isinstance(body, dict):
            return fail(400, "Invalid JSON body: expected an object, got " + type(body).__name__)
        error = check_message(
            body,
            max_message_size=self.max_message_size,
            allow_channel_override=hook.allow_channel_override,
            allow_impersonate=hook.allow_impersonate,
        )
        if error is not None:
            return fail(400, error)
        if _posts_something(body):
            hook.messages.append(copy.deepcopy(body))
        return _Answer(200, {"success": True}, limit_headers)

    def _rate_limit(self, client_ip: str, route: str) -> Tuple[Optional[str], Dict[str, str]]:
        """Return (error text or None, X-RateLimit headers) after counting one request."""
        now = self._clock()
        window = self._windows.get((client_ip, route))
        if window is None or now >= window[0] + self.rate_window:
            window = [now, 0.0]
            self._windows[(client_ip, route)] = window
        window[1] += 1
        count = int(window[1])
        until_reset = window[0] + self.rate_window - now
        headers: Dict[str, str] = {}
        if self.ratelimit_headers:
            headers = {
                "X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": str(max(0, self.rate_limit - count)),
                "X-RateLimit-Reset": str(int((time.time() + until_reset) * 1000)),
            }
        if count <= self.rate_limit:
            return None, headers
        return RATE_LIMIT_ERROR.format(seconds=max(1, math.ceil(until_reset))), headers


def _parse_body(raw: bytes) -> Tuple[Any, Optional[str]]:
    """Return (parsed JSON body, None), {} for an empty body, or (None, error) when it is not JSON."""
    if not raw.strip():
        return {}, None
    try:
        return json.loads(raw.decode("utf-8")), None
    except (UnicodeDecodeError, ValueError) as exc:
        return None, "Invalid JSON body: %s" % exc
