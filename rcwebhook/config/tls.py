"""TLS contexts, built one way for the daemon and for --check-config, so that a file the
daemon cannot use is refused when the configuration is loaded, not when it is first needed."""

from __future__ import annotations

import ssl
from typing import Optional


def client_context(ca_file: str = "") -> ssl.SSLContext:
    """Return the context for posts to Rocket.Chat: certificates verified, `ca_file` trusted too."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def server_context(cert_file: str, key_file: str) -> Optional[ssl.SSLContext]:
    """Return the context that serves HTTPS (TLS 1.2 or newer) with this chain and key, or None for plain HTTP."""
    if not cert_file:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def handshake_step(sock: ssl.SSLSocket) -> str:
    """Take the next step of a non-blocking server handshake; return "done", or what it waits for: "read"
    or "write". A failed handshake raises OSError (ssl.SSLError is one) or ValueError."""
    try:
        sock.do_handshake()
    except ssl.SSLWantReadError:
        return "read"
    except ssl.SSLWantWriteError:
        return "write"
    return "done"


def problem(error: Exception) -> str:
    """Return why a TLS file could not be used, on one line."""
    reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or \
        (error.args[-1] if error.args else "")
    return " ".join(str(reason).split()) or type(error).__name__
