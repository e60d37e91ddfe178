"""Delivery: one HTTP POST of a rendered message to a Rocket.Chat hook, and what came of it."""

from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import threading
import urllib.parse
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional

from . import __version__
from .config import Route, Settings

MAX_ANSWER_BYTES = 64 * 1024
ERROR_TEXT_LIMIT = 300
MAX_RATE_LIMIT_WAIT = 3600.0
_WAIT_TEXT = re.compile(r"wait (\d+(?:\.\d+)?) seconds?")


class Answer(NamedTuple):
    """What Rocket.Chat made of one post."""

    status: int  # the HTTP status, or 0 when no answer came
    error: str = ""  # Rocket.Chat's error text or the transport failure; "" when accepted
    headers: Mapping[str, str] = None  # type: ignore[assignment]
    permanent: bool = False  # a failure that no retry fixes, though no status says so (a bad certificate)

    @property
    def accepted(self) -> bool:
        return self.status == 200 and not self.error

    @property
    def transient(self) -> bool:
        """Return whether trying again later may succeed: no answer, 429 or a 5xx."""
        return not self.accepted and not self.permanent and (
            self.status == 0 or self.status == 429 or self.status >= 500)


Transport = Callable[[str, bytes, float], Answer]


def _opener(context: Optional[ssl.SSLContext] = None, proxies: Optional[Mapping[str, str]] = None):
    """Return a urllib opener that refuses redirects (following one would turn the POST into a GET
    and lose the message) and uses `proxies` (urllib's form) and no others: never os.environ's.
    urllib is imported here: only posts through a proxy need it."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
            return None

    handlers = [NoRedirect(), urllib.request.ProxyHandler({k: v for k, v in (proxies or {}).items() if k != "no"})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def make_transport(settings: Settings) -> Transport:
    """Return the transport for these settings: ROCKETCHAT_CA_FILE trusted too, and their proxies, no others."""
    from . import tls

    context = tls.client_context(settings.rocketchat_ca_file)
    direct = Poster(context)
    if not settings.proxies:
        return direct
    proxies = settings.proxies
    opener = _opener(context, proxies)

    def transport(url: str, body: bytes, timeout: float) -> Answer:
        if _proxied(urllib.parse.urlsplit(url), proxies):
            return post(url, body, timeout, opener)
        return direct(url, body, timeout)

    return transport


class Poster:
    """Posts over kept-alive connections, one per Rocket.Chat host and sending thread.

    A new connection per post costs a TCP (and TLS) handshake each time; each courier
    thread keeps its own. Through a proxy (http_proxy and friends), urllib does the work.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.opener = None
        self.local = threading.local()

    def __call__(self, url: str, body: bytes, timeout: float) -> Answer:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or _proxied(parts):
            self.opener = self.opener or _opener(self.context)
            return post(url, body, timeout, self.opener)
        connections = self.local.__dict__.setdefault("connections", {})
        key = (parts.scheme, parts.netloc)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/json", "User-Agent": f"rcwebhook/{__version__}",
                   "Host": parts.netloc.rsplit("@", 1)[-1]}
        for attempt in (1, 2):
            connection = connections.get(key)
            reused = connection is not None
            if connection is None:
                connection = connections[key] = self._connect(parts, timeout)
            try:
                if connection.sock is not None:
                    connection.sock.settimeout(timeout)
                connection.timeout = timeout
                connection.request("POST", path or "/", body=body, headers=headers)
                response = connection.getresponse()
                raw = response.read(MAX_ANSWER_BYTES)
                if response.will_close or response.length:  # closing, or more than we read
                    connections.pop(key).close()
                return interpret(response.status, raw, dict(response.headers))
            except ssl.SSLCertVerificationError as exc:
                connections.pop(key, None)
                return Answer(0, f"Rocket.Chat's TLS certificate is not trusted ({exc.verify_message}); "
                                 "set ROCKETCHAT_CA_FILE to its CA", permanent=True)
            except (OSError, http.client.HTTPException) as exc:
                connections.pop(key, None)
                connection.close()
                # A kept-alive connection the server closed meanwhile fails before any answer:
                # try once more on a new one. Any other failure is the post's.
                if attempt == 1 and reused and isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError,
                                                                ConnectionResetError)):
                    continue
                return Answer(0, _transport_error(exc))
        raise AssertionError("unreachable")

    def _connect(self, parts: urllib.parse.SplitResult, timeout: float) -> http.client.HTTPConnection:
        host, port = parts.hostname or "", parts.port
        if parts.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=self.context)
        return http.client.HTTPConnection(host, port, timeout=timeout)


def _proxied(parts: urllib.parse.SplitResult, proxies: Optional[Mapping[str, str]] = None) -> bool:
    """Return whether `proxies` (the settings', urllib's form) route this URL through a proxy."""
    if not proxies or parts.scheme not in proxies:
        return False
    import urllib.request

    return not urllib.request.proxy_bypass_environment(parts.hostname or "", proxies)


def post(url: str, body: bytes, timeout: float, opener=None) -> Answer:
    """Return Rocket.Chat's answer to POSTing `body` (JSON) to the hook at `url`, through urllib."""
    import urllib.error
    import urllib.request

    opener = opener or _opener()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"rcwebhook/{__version__}"},
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            return interpret(response.status, response.read(MAX_ANSWER_BYTES), dict(response.headers))
    except urllib.error.HTTPError as exc:
        try:
            raw = exc.read(MAX_ANSWER_BYTES)
        except (OSError, http.client.HTTPException):
            raw = b""
        return interpret(exc.code, raw, dict(exc.headers or {}))
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLCertVerificationError):
            return Answer(0, f"Rocket.Chat's TLS certificate is not trusted ({exc.reason.verify_message}); "
                             "set ROCKETCHAT_CA_FILE to its CA", permanent=True)
        return Answer(0, _transport_error(exc.reason))
    except (OSError, http.client.HTTPException) as exc:
        return Answer(0, _transport_error(exc))


def _transport_error(reason: Any) -> str:
    """Return a one-line description of a failure to get an answer (no URL in it)."""
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "no answer from Rocket.Chat within the timeout (DELIVERY_TIMEOUT)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused by Rocket.Chat"
    if isinstance(reason, ConnectionResetError):
        return "connection reset by Rocket.Chat"
    if isinstance(reason, http.client.RemoteDisconnected):
        return "Rocket.Chat closed the connection without answering"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve Rocket.Chat's host name: {reason.strerror or reason}"
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return f"cannot reach Rocket.Chat: {one_line(text)}"


def interpret(status: int, raw: bytes, headers: Mapping[str, str]) -> Answer:
    """Return the Answer for an HTTP status and body from Rocket.Chat."""
    data: Optional[Dict[str, Any]] = None
    try:
        decoded = json.loads(raw.decode("utf-8")) if raw else None
        data = decoded if isinstance(decoded, dict) else None
    except (UnicodeDecodeError, ValueError):
        pass
    if status == 200 and data is not None and data.get("success") is True:
        return Answer(200, "", headers)
    if data is not None and isinstance(data.get("error"), str) and data["error"]:
        error = data["error"]
    elif 300 <= status < 400:
        error = f"Rocket.Chat redirected the post elsewhere (HTTP {status}); check the URL's scheme and host"
    elif status == 200:
        error = "the answer was not Rocket.Chat's {\"success\": true}; is the URL a Rocket.Chat incoming webhook?"
    else:
        error = raw.decode("utf-8", "replace").strip() or http.client.responses.get(status, "no reason given")
    return Answer(status, one_line(error), headers)


def one_line(text: str) -> str:
    """Return `text` on one line, cut to ERROR_TEXT_LIMIT characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


def rate_limit_wait(answer: Answer, wall_now: float) -> Optional[float]:
    """Return the seconds Rocket.Chat asked to wait in a 429: from its error text or X-RateLimit-Reset.

    Rocket.Chat sends no Retry-After; the text (`You must wait N seconds`) is always there,
    the reset header (epoch milliseconds) only on some versions. The longer of the two wins.
    """
    waits = []
    match = _WAIT_TEXT.search(answer.error)
    if match:
        waits.append(float(match.group(1)))
    for name, value in (answer.headers or {}).items():
        if name.lower() == "x-ratelimit-reset":
            try:
                waits.append(int(value.strip()) / 1000.0 - wall_now)
            except ValueError:
                pass
    if not waits:
        return None
    return min(MAX_RATE_LIMIT_WAIT, max(0.0, max(waits)))


def advice(route: Route, answer: Answer) -> str:
    """Return what the operator should check after Rocket.Chat did not take a post for `route`."""
    key = f"ROCKETCHAT_WEBHOOK_{(route.url_from or route.name).upper()}"
    channel = f"ROCKETCHAT_CHANNEL_{route.name.upper()}"
    error = answer.error
    if "Invalid integration id or token" in error or answer.status == 404:
        return f"check {key}: Rocket.Chat does not know this integration id or token"
    if "impersonate" in error:
        return "unset ROCKETCHAT_USERNAME and ROCKETCHAT_ICON_EMOJI, or give the integration's user the impersonate permission"
    if "overriding destination channel" in error:
        return f"unset {channel}, or allow the integration to override its channel"
    if "invalid-channel" in error or "error-not-allowed" in error:
        return f"check {channel} and that the integration's user may post there"
    if answer.status == 503:
        return f"the integration behind {key} may be disabled in Rocket.Chat"
    if answer.status == 0:
        return f"check that Rocket.Chat is reachable from this host at the address in {key}"
    if answer.status == 429:
        return "Rocket.Chat's rate limit for this hook was reached"
    if 400 <= answer.status < 500:
        return "Rocket.Chat rejected the message itself; please report it with this log line"
    return "Rocket.Chat failed; see its server log"
