"""Delivery: one HTTP POST of a rendered message to a Rocket.Chat hook, and what came of it."""

from __future__ import annotations

import http.client
import io
import json
import logging
import re
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Tuple

from .. import __version__
from ..config.keys import key_prefix
from ..config.settings import Route, Settings

log = logging.getLogger("rcwebhook")

MAX_ANSWER_BYTES = 64 * 1024
ERROR_TEXT_LIMIT = 300
MAX_RATE_LIMIT_WAIT = 3600.0
# Once a post is sent, Rocket.Chat may have posted it: its answer is waited for this long (or twice
# DELIVERY_TIMEOUT, if more) before the post counts as failed and is sent again.
ANSWER_WAIT = 60.0
BAD_TOKEN_TEXT = "Invalid integration id or token"
_HEADERS = {"Content-Type": "application/json", "User-Agent": f"rcwebhook/{__version__}"}
_RESET = re.compile(r"[0-9]{1,16}")  # epoch milliseconds; ASCII digits only (int() takes others too)
_WAIT_TEXT = re.compile(r"wait ([0-9]{1,9}(?:\.[0-9]{1,9})?) seconds?")


class Answer(NamedTuple):
    """What Rocket.Chat made of one post."""

    status: int  # the HTTP status, or 0 when no (whole) answer came
    error: str = ""  # Rocket.Chat's error text or the transport failure; "" when accepted
    headers: Mapping[str, str] = None  # type: ignore[assignment]
    permanent: bool = False  # a failure that no retry fixes, though the status may not say so
    sent: bool = False  # the post was sent whole without an answer: Rocket.Chat may have posted it
    ids: Tuple[str, ...] = ()  # the ids of the messages posted (with separateResponse)
    separate: bool = False  # the answer had `responses`: the server knows separateResponse

    @property
    def accepted(self) -> bool:
        return self.status == 200 and not self.error

    @property
    def transient(self) -> bool:
        """Return whether trying again later may succeed: no answer, 429 or a 5xx."""
        return not self.accepted and not self.permanent and (
            self.status in (0, 429) or self.status >= 500)

    @property
    def bad_token(self) -> bool:
        """Return whether Rocket.Chat said the hook's integration id or token is wrong."""
        return BAD_TOKEN_TEXT in self.error


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
    from ..config import tls

    context = tls.client_context(settings.rocketchat_ca_file)
    direct, proxies = Poster(context), settings.proxies
    if not proxies:
        return direct
    opener = _opener(context, proxies)
    import urllib.request

    def transport(url: str, body: bytes, timeout: float) -> Answer:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in proxies and \
                not urllib.request.proxy_bypass_environment(parts.hostname or "", proxies):
            return post(url, body, timeout, opener)
        return direct(url, body, timeout)

    return transport


class Poster:
    """Posts over kept-alive connections, one per Rocket.Chat host and sending thread.

    A new connection per post costs a TCP (and TLS) handshake each time; each courier
    thread keeps its own. Through a proxy (http_proxy and friends), urllib does the work.

    Connecting and sending must finish within the timeout (DELIVERY_TIMEOUT); a failure there
    means the post was not delivered. Once it is sent, Rocket.Chat may post it even if its answer
    is late, so the answer is waited for up to ANSWER_WAIT (or twice the timeout), as one deadline
    over every read: a server that trickles its answer cannot hold the hook longer.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.local = threading.local()

    def __call__(self, url: str, body: bytes, timeout: float) -> Answer:
        parts = urllib.parse.urlsplit(url)  # http or https: the settings take no other hook URL
        connections = self.local.__dict__.setdefault("connections", {})
        key = (parts.scheme, parts.netloc)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {**_HEADERS, "Host": parts.netloc.rsplit("@", 1)[-1]}
        for attempt in (1, 2):
            connection = connections.get(key)
            reused = connection is not None
            sent = False
            try:
                if connection is None:
                    host, port = parts.hostname or "", parts.port
                    connection = connections[key] = http.client.HTTPSConnection(
                        host, port, timeout=timeout, context=self.context) if parts.scheme == "https" \
                        else http.client.HTTPConnection(host, port, timeout=timeout)
                    connection.connect()
                connection.sock.settimeout(timeout)
                connection.request("POST", path or "/", body=body, headers=headers)
                sent = True
                started = time.monotonic()
                wait = max(ANSWER_WAIT, 2 * timeout)
                reader = _DeadlineReader(connection.sock, started + wait, started + timeout, lambda: log.warning(
                    "Rocket.Chat has not answered a post within DELIVERY_TIMEOUT (%gs); waiting up to %gs "
                    "for its answer before sending it again, since it may have posted it", timeout, wait))
                connection.response_class = lambda _sock, *args, **kwargs: http.client.HTTPResponse(
                    reader, *args, **kwargs)
                response = connection.getresponse()
                raw = _read_answer(response)
                if response.will_close or not response.isclosed():  # closing, or more than we read
                    connections.pop(key).close()
                return interpret(response.status, raw, dict(response.headers))
            except ssl.SSLCertVerificationError as exc:
                connections.pop(key, None)
                return Answer(0, untrusted_certificate(exc.verify_message), permanent=True)
            except (OSError, http.client.HTTPException) as exc:
                connections.pop(key, None)
                if connection is not None:
                    connection.close()
                # A kept-alive connection that the server closed meanwhile fails before any answer:
                # send once more on a new one, and say so, since the server might have read it.
                if attempt == 1 and reused and isinstance(exc, (http.client.RemoteDisconnected, BrokenPipeError,
                                                                ConnectionResetError)):
                    log.info("Rocket.Chat closed a kept-alive connection before answering a post (%s); "
                             "sending it again on a new connection", _transport_error(exc))
                    continue
                return Answer(0, _transport_error(exc, sent), sent=sent)
        raise AssertionError("unreachable")


def _read_answer(response: http.client.HTTPResponse) -> bytes:
    """Return the whole body of an answer, at most MAX_ANSWER_BYTES of it; IncompleteRead when it
    was cut off."""
    if response.length is not None and response.length <= MAX_ANSWER_BYTES:
        return response.read()  # raises IncompleteRead when the server stops early
    raw = response.read(MAX_ANSWER_BYTES)
    if response.length is not None and len(raw) < MAX_ANSWER_BYTES:
        raise http.client.IncompleteRead(raw, response.length)
    return raw


class _DeadlineReader(io.RawIOBase):
    """A socket read with one deadline for the whole answer, and a call when it is first late; an
    HTTPResponse reads from it as from the socket."""

    def __init__(self, sock: socket.socket, deadline: float, slow_at: float, on_slow: Callable[[], None]) -> None:
        super().__init__()
        self.sock = sock
        self.deadline = deadline
        self.slow_at = slow_at
        self.on_slow: Optional[Callable[[], None]] = on_slow

    def readable(self) -> bool:
        return True

    def makefile(self, mode: str, *args, **kwargs):
        return io.BufferedReader(self)

    def readinto(self, buffer) -> int:
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                raise socket.timeout("no whole answer before the deadline")
            until = self.deadline if self.on_slow is None else min(self.deadline, self.slow_at)
            self.sock.settimeout(max(0.001, until - now))
            try:
                return self.sock.recv_into(buffer)
            except socket.timeout:
                if self.on_slow is not None and time.monotonic() >= self.slow_at:
                    self.on_slow, on_slow = None, self.on_slow
                    on_slow()


def post(url: str, body: bytes, timeout: float, opener=None) -> Answer:
    """Return Rocket.Chat's answer to POSTing `body` (JSON) to the hook at `url`, through urllib."""
    import urllib.error
    import urllib.request

    opener = opener or _opener()
    request = urllib.request.Request(url, data=body, method="POST", headers=_HEADERS)
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
            return Answer(0, untrusted_certificate(exc.reason.verify_message), permanent=True)
        return Answer(0, _transport_error(exc.reason))
    except (OSError, http.client.HTTPException) as exc:
        return Answer(0, _transport_error(exc))


# What OpenSSL's strict verification (Python 3.13 and later set VERIFY_X509_STRICT) refuses in a
# certificate that older Pythons accepted, and how to make it again.
STRICT_FIXES = {
    "CA cert does not include key usage extension":
        "the CA certificate lacks the keyUsage extension, which Python 3.13 and later require of a CA: "
        "issue the CA again with -addext 'keyUsage=critical,keyCertSign,cRLSign' (openssl req -x509), "
        "sign Rocket.Chat's certificate with it and set ROCKETCHAT_CA_FILE to the new CA",
    "Basic Constraints of CA cert not marked critical":
        "the CA certificate's basicConstraints is not critical, which Python 3.13 and later require: "
        "issue the CA again with -addext 'basicConstraints=critical,CA:TRUE'",
    "Missing Authority Key Identifier":
        "Rocket.Chat's certificate has no authorityKeyIdentifier, which Python 3.13 and later require: "
        "sign it again with 'authorityKeyIdentifier=keyid,issuer' in its extensions",
    "Missing Subject Key Identifier":
        "the CA certificate has no subjectKeyIdentifier, which Python 3.13 and later require: "
        "issue the CA again with -addext 'subjectKeyIdentifier=hash'",
}


def untrusted_certificate(verify_message: str) -> str:
    """Return what to say when Rocket.Chat's certificate chain was refused: OpenSSL's reason and the fix."""
    fix = STRICT_FIXES.get(verify_message)
    if fix:
        return f"Rocket.Chat's TLS certificate is not trusted ({verify_message}): {fix}"
    return f"Rocket.Chat's TLS certificate is not trusted ({verify_message}); set ROCKETCHAT_CA_FILE to its CA"


def _transport_error(reason: Any, sent: bool = False) -> str:
    """Return a one-line description of a failure to get an answer (no URL in it)."""
    if isinstance(reason, http.client.IncompleteRead):
        return "Rocket.Chat's answer was cut off before its end (it may have posted the message)"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        if sent:
            return "no whole answer from Rocket.Chat in time (it may have posted the message)"
        return "could not connect to Rocket.Chat and send the post within DELIVERY_TIMEOUT"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused by Rocket.Chat"
    if isinstance(reason, ConnectionResetError):  # http.client.RemoteDisconnected too
        return "connection reset by Rocket.Chat" + (" after the post was sent (it may have posted it)" if sent else "")
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
        responses = data.get("responses")
        if not isinstance(responses, list):
            return Answer(200, "", headers)
        ids = tuple(r["message"]["_id"] for r in responses if isinstance(r, dict) and isinstance(
            r.get("message"), dict) and isinstance(r["message"].get("_id"), str) and r["message"]["_id"])
        return Answer(200, "", headers, ids=ids, separate=True)
    if data is not None and isinstance(data.get("error"), str) and data["error"]:
        error = data["error"]
    elif 300 <= status < 400:
        error = f"Rocket.Chat redirected the post elsewhere (HTTP {status}); check the URL's scheme and host"
    elif status == 200:
        error = "the answer was not Rocket.Chat's {\"success\": true}; is the URL a Rocket.Chat incoming webhook?"
    else:
        error = raw.decode("utf-8", "replace").strip() or http.client.responses.get(status, "no reason given")
    # Rocket.Chat 7.x and later answer a wrong token with a bare 500: no retry mends that.
    return Answer(status, one_line(error), headers, permanent=BAD_TOKEN_TEXT in error)


def one_line(text: str) -> str:
    """Return `text` on one line, cut to ERROR_TEXT_LIMIT characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


def rate_limit_wait(answer: Answer, wall_now: float) -> Optional[float]:
    """Return the seconds Rocket.Chat asked to wait in a 429: from its error text or X-RateLimit-Reset,
    at least one second and at most MAX_RATE_LIMIT_WAIT; None when it said nothing usable.

    Rocket.Chat sends no Retry-After; the text (`You must wait N seconds`) is always there,
    the reset header (epoch milliseconds) only on some versions. The longer of the two wins.
    """
    waits = []
    match = _WAIT_TEXT.search(answer.error)
    if match:
        waits.append(float(match.group(1)))
    for name, value in (answer.headers or {}).items():
        if name.lower() == "x-ratelimit-reset" and _RESET.fullmatch(value.strip()):
            waits.append(int(value.strip()) / 1000.0 - wall_now)
    return min(MAX_RATE_LIMIT_WAIT, max(1.0, max(waits))) if waits else None


def advice(route: Route, answer: Answer, label_channel: str = "", channel_label: str = "") -> str:
    """Return what the operator should check after Rocket.Chat did not take a post for `route`; `label_channel`
    is the channel an alert's `channel_label` label asked for, if any."""
    key = route.url_key or f"ROCKETCHAT_WEBHOOK_{(route.url_from or route.name).upper()}"
    prefix = key_prefix(route.receiver)
    channel = f"{prefix}ROCKETCHAT_CHANNEL_{route.severity.upper()}"
    error = answer.error
    if answer.bad_token or answer.status == 404:
        return f"check {key}: Rocket.Chat does not know this integration id or token"
    if "impersonate" in error:
        return (f"unset {prefix}ROCKETCHAT_USERNAME and {prefix}ROCKETCHAT_ICON_EMOJI, or give the integration's user "
                "the impersonate permission")
    if "overriding destination channel" in error and label_channel:
        return (f"the alert's {channel_label} label sends it to {label_channel}, which this integration may not do: "
                f"allow it to override its channel in Rocket.Chat (Administration > Integrations), or drop "
                f"the label from the alerting rule")
    if "overriding destination channel" in error:
        return f"unset {channel}, or allow the integration to override its channel"
    if ("invalid-channel" in error or "error-not-allowed" in error) and label_channel:
        return f"check the channel {label_channel} that the alert's {channel_label} label names, and that the " \
               "integration's user may post there"
    if "invalid-channel" in error or "error-not-allowed" in error:
        return f"check {channel} and that the integration's user may post there"
    if answer.status == 503:
        return f"the integration behind {key} may be disabled in Rocket.Chat"
    if "certificate is not trusted" in error:
        return f"Rocket.Chat was reached at the address in {key}, but its certificate is refused, as said"
    if answer.status == 0:
        return f"check that Rocket.Chat is reachable from this host at the address in {key}"
    if answer.status == 429:
        return "Rocket.Chat's rate limit for this hook was reached"
    if 400 <= answer.status < 500:
        return "Rocket.Chat rejected the message itself; please report it with this log line"
    return "Rocket.Chat failed; see its server log"
