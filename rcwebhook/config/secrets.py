"""Secrets and their redaction: a hook URL's token, the API key and a proxy's password are never shown whole."""

from __future__ import annotations

import contextlib
import functools
import re
from typing import Iterable, Mapping, Tuple
from urllib.parse import urlsplit

from .keys import URL_KEYS
from .values import hook_url_problem


def url_token(url: str) -> str:
    """Return the secret part of a Rocket.Chat hook URL: its token, the last segment of its path."""
    parts = urlsplit(url)
    _, hooks, hook = parts.path.partition("/hooks/")
    if hooks and "/" in hook:
        return hook.rsplit("/", 1)[1]
    # Not a /hooks/ URL: treat the whole path and query as secret.
    return parts.path.lstrip("/") + ("?" + parts.query if parts.query else "")


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return `text` with every secret replaced by ***: the one rule for logs, answers and printed errors."""
    # A secret counts where it is not part of a longer run of letters and digits, so that a short
    # token (such as `b` in a test) does not turn `retryable` into `retrya***le`.
    present = tuple(s for s in secrets if s and s in text)  # a plain search first: most text holds none
    return _secrets_pattern(present).sub("***", text) if present else text


@functools.lru_cache(maxsize=64)
def _secrets_pattern(secrets: Tuple[str, ...]) -> "re.Pattern[str]":
    """Return the pattern that finds any of `secrets` standing alone, the longest first."""
    ordered = sorted(secrets, key=len, reverse=True)  # a longer one may hold a shorter
    return re.compile("(?<![A-Za-z0-9])(?:%s)(?![A-Za-z0-9])" % "|".join(map(re.escape, ordered)))


def secrets_in(values: Mapping[str, str]) -> Tuple[str, ...]:
    """Return the secrets among raw key values, for redacting problems found before Settings exist."""
    found = {values.get("API_KEY", "").strip()}
    for key in ("HTTPS_PROXY", "HTTP_PROXY"):
        with contextlib.suppress(ValueError):  # not a URL (its own problem, told by its key)
            found.add(urlsplit(values.get(key, "").strip()).password or "")
    for key, value in values.items():
        if key.endswith(URL_KEYS):  # the default set's and every hook set's
            url = value.strip()
            found.add(url if hook_url_problem(url) else url_token(url))  # an invalid URL: all of it
    return tuple(s for s in found if s)


def redact_url(url: str) -> str:
    """Return `url` with its token replaced by ***: `https://host/hooks/<id>/***`."""
    if not url:
        return ""
    parts = urlsplit(url)
    before, hooks, hook = parts.path.partition("/hooks/")
    path = f"{before}/hooks/{hook.split('/', 1)[0]}/***" if hooks else "/***"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number, or out of range: not shown
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{path}"
