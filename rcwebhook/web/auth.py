"""Authentication of /webhook requests: the API key as Alertmanager's http_config can send it."""

from __future__ import annotations

import base64
import contextlib
import hmac
from typing import Mapping, Tuple

CHALLENGES: Tuple[Tuple[str, str], ...] = (
    ("WWW-Authenticate", 'Bearer realm="rcwebhook"'),
    ("WWW-Authenticate", 'Basic realm="rcwebhook", charset="UTF-8"'),
)


def presented_keys(headers: Mapping[str, str]) -> Tuple[str, ...]:
    """Return every key the request presents: X-API-Key, a Bearer token, a Basic auth password."""
    keys = []
    if headers.get("X-API-Key") is not None:
        keys.append(headers["X-API-Key"].strip())
    scheme, _, credentials = (headers.get("Authorization") or "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        keys.append(credentials)
    elif scheme.lower() == "basic" and credentials:
        with contextlib.suppress(ValueError):  # not base64 (binascii.Error), not UTF-8 (UnicodeDecodeError)
            _, sep, password = base64.b64decode(credentials, validate=True).decode("utf-8").partition(":")
            if sep:
                keys.append(password)
    return tuple(keys)


def authorized(headers: Mapping[str, str], api_key: str) -> bool:
    """Return whether the request may use /webhook: always when no key is set, else when it presents the key."""
    if not api_key:
        return True
    # Every presented key is compared (a list: no early stop), each in constant time, so the time
    # taken tells nothing about how much of a guess was right.
    expected = api_key.encode("utf-8")
    return any([hmac.compare_digest(key.encode("utf-8"), expected) for key in presented_keys(headers)])
