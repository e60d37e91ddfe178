"""Rendering: the Rocket.Chat message for one route's alerts, built as data.

Every message built here is one Rocket.Chat accepts: no field with an empty title or
value (Rocket.Chat refuses those), only absolute http(s) URLs in URL-typed keys (it
refuses anything else, even an empty string), `text` within Message_MaxAllowedSize
(5000 by default, counted in UTF-16 code units as JavaScript counts), and a bounded
size overall.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import quote, urlsplit

from .alertmanager import Alert, Notification, parse_time
from .config import Route, Settings
from .routing import Batch

TEXT_LIMIT = 5000  # Rocket.Chat's default Message_MaxAllowedSize
HEADLINE_NAMES_LIMIT = 400
TITLE_LIMIT = 250
DESCRIPTION_LIMIT = 2000
FIELD_VALUE_LIMIT = 300
FIELD_TITLE_LIMIT = 100
MAX_FIELDS = 16
MAX_ATTACHMENTS_PER_POST = 200  # when waiting messages are merged into one post
MAX_POST_BYTES = 512 * 1024  # JSON bytes of one merged post

COLORS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
RESOLVED_COLOR = "#2ca02c"
EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}
RESOLVED_EMOJI = ":white_check_mark:"

# Annotations shown in the title, text or links rather than as fields.
_SHOWN_ANNOTATIONS = ("summary", "description", "message", "runbook_url")
_URL_SAFE = ":/?#[]@!$&'*+,;=%~"
_UNSAFE_IN_URL = re.compile(r"[\s\x00-\x1f\x7f]")


def render(notification: Notification, batch: Batch, settings: Settings) -> Dict[str, Any]:
    """Return the Rocket.Chat message (a JSON-ready dict) for the alerts of one route."""
    return group_message(batch.route, batch.alerts, notification.external_url, notification.truncated_alerts,
                         settings)


def group_message(route: Route, alerts: Sequence[Alert], external_url: str, truncated: int,
                  settings: Settings, text_limit: int = TEXT_LIMIT, thread: str = "",
                  note: str = "") -> Dict[str, Any]:
    """Return the message for some alerts of one group: a headline (and `note`) over one attachment for
    each of the first MAX_ALERTS_PER_MESSAGE alerts, the rest counted; a reply in `thread` when given."""
    shown = alerts[: settings.max_alerts_per_message]
    message: Dict[str, Any] = {
        "text": _text(route.severity, alerts, len(alerts) - len(shown), truncated, text_limit, note),
        "attachments": [_attachment(alert, route.severity, external_url, settings) for alert in shown],
    }
    if thread:
        message["tmid"] = thread
    if route.username:  # the hook set's, else ROCKETCHAT_USERNAME
        message["username"] = route.username
    if route.icon_emoji:
        message["icon_emoji"] = route.icon_emoji
    if route.channel:
        message["channel"] = route.channel
    if settings.templates is not None:  # TEMPLATE_FILES: the parts a template renders
        message = settings.templates.apply(message, alerts, external_url, text_limit)
    return message


def _text(severity: str, alerts: Sequence[Alert], hidden: int, truncated: int, limit: int, note: str = "") -> str:
    """Return the headline and notes above the attachments, within `limit` UTF-16 units."""
    firing = sum(1 for a in alerts if a.status == "firing")
    resolved = len(alerts) - firing
    if firing:
        emoji, state = EMOJI[severity], f"[FIRING:{firing}]"
        if resolved:
            state += f" [RESOLVED:{resolved}]"
    else:
        emoji, state = RESOLVED_EMOJI, f"[RESOLVED:{resolved}]"
    names = _join_names([a.name for a in alerts])
    lines = [f"{emoji} {state} {names} ({severity})"]
    if note:
        lines.append(note)
    if hidden:
        lines.append(f"…and {hidden} more alert{'s' if hidden != 1 else ''} not shown here; see Alertmanager.")
    if truncated:
        lines.append(
            f"Alertmanager left out {truncated} more alert"
            f"{'s' if truncated != 1 else ''} of this group (its max_alerts setting)."
        )
    return truncate_units("\n".join(lines), limit)


def _join_names(names: Sequence[str]) -> str:
    """Return the distinct alert names, in order, joined and cut to HEADLINE_NAMES_LIMIT.

    The headline is the one place where Rocket.Chat reads mentions: a name such as `@all` must not
    notify everyone (nor get the whole message refused when the integration may not), so every `@`
    in it is followed by a zero-width space."""
    distinct = list(dict.fromkeys(truncate(" ".join(n.split()), 120).replace("@", "@\u200b") for n in names))
    out = ""
    for i, name in enumerate(distinct):
        candidate = name if not out else f"{out}, {name}"
        if len(candidate) > HEADLINE_NAMES_LIMIT:
            return f"{out} and {len(distinct) - i} more"
        out = candidate
    return out


def _attachment(alert: Alert, severity: str, external_url: str, settings: Settings) -> Dict[str, Any]:
    """Return the attachment that shows one alert."""
    resolved = alert.status == "resolved"
    summary = alert.annotations.get("summary", "").strip()
    title = alert.name + (f": {summary}" if summary else "")
    if resolved:
        title = "Resolved: " + title
    attachment: Dict[str, Any] = {
        "title": truncate(" ".join(title.split()), TITLE_LIMIT),
        "color": RESOLVED_COLOR if resolved else COLORS[severity],
        "collapsed": False,
    }
    prometheus = absolute_url(alert.generator_url)
    if prometheus:
        attachment["title_link"] = prometheus
    text = _description(alert)
    links = _links(alert, external_url, prometheus)
    if links:
        text = f"{text}\n{links}" if text else links
    if text:
        attachment["text"] = text
    fields = _fields(alert, severity, settings)
    if fields:
        attachment["fields"] = fields
    return attachment


def _description(alert: Alert) -> str:
    description = (alert.annotations.get("description") or alert.annotations.get("message") or "").strip()
    return truncate(description, DESCRIPTION_LIMIT)


def _links(alert: Alert, external_url: str, prometheus: Optional[str]) -> str:
    """Return the markdown links line: runbook, Prometheus, silence; each only when absolute."""
    links = []
    runbook = absolute_url(alert.annotations.get("runbook_url", ""))
    if runbook:
        links.append(f"[Runbook]({runbook})")
    if prometheus:
        links.append(f"[Prometheus]({prometheus})")
    silence = silence_url(external_url, alert.labels)
    if silence:
        links.append(f"[Silence]({silence})")
    return " · ".join(links)


def _fields(alert: Alert, severity: str, settings: Settings) -> List[Dict[str, Any]]:
    """Return short fields for the alert's identifying labels (its severity label too when it is
    an alias or unknown), then its times and other annotations."""
    fields = []
    for name, value in alert.labels.items():
        if name == "alertname" or (name == settings.severity_label and value.strip().lower() == severity):
            continue  # both are in the headline already
        _add_field(fields, name, value, short=True)
    started = parse_time(alert.starts_at)
    if started:
        _add_field(fields, "Started", started.strftime("%Y-%m-%d %H:%M:%S UTC"), short=True)
    ended = parse_time(alert.ends_at)
    if alert.status == "resolved" and started and ended and ended >= started:
        _add_field(fields, "Duration", duration((ended - started).total_seconds()), short=True)
    for name, value in alert.annotations.items():
        if name not in _SHOWN_ANNOTATIONS:
            _add_field(fields, name, value, short=len(value) <= 40)
    return fields[:MAX_FIELDS]


def _add_field(fields: List[Dict[str, Any]], title: str, value: str, short: bool) -> None:
    """Append a field unless its title or value is blank (Rocket.Chat rejects those)."""
    title, value = title.strip(), value.strip()
    if title and value and len(fields) < MAX_FIELDS:
        fields.append({
            "title": truncate(title, FIELD_TITLE_LIMIT),
            "value": truncate(value, FIELD_VALUE_LIMIT),
            "short": short,
        })


def envelope(rendered: Dict[str, Any]) -> Dict[str, Any]:
    """Return what a message says besides its text and attachments (channel, username, emoji, the thread
    it replies in): messages merge only when these are the same."""
    return {k: v for k, v in rendered.items() if k not in ("text", "attachments")}


def mergeable(messages: Sequence[Dict[str, Any]], text_limit: int = TEXT_LIMIT) -> int:
    """Return how many of `messages`, from the first on, fit into one post within Rocket.Chat's limits
    (at least one): the same envelope, `text_limit` UTF-16 units of headlines,
    MAX_ATTACHMENTS_PER_POST attachments and MAX_POST_BYTES of JSON."""
    first = envelope(messages[0])
    text, attachments, size = -1, 0, 0
    for count, rendered in enumerate(messages):
        text += 1 + units(rendered["text"])
        attachments += len(rendered["attachments"])
        size += len(json.dumps(rendered, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        if count and (text > text_limit or attachments > MAX_ATTACHMENTS_PER_POST or size > MAX_POST_BYTES
                      or envelope(rendered) != first):
            return count
    return len(messages)


def merge(messages: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Return one message holding them all: headlines one per line, attachments in order."""
    if len(messages) == 1:
        return messages[0]
    merged = envelope(messages[0])
    merged["text"] = "\n".join(m["text"] for m in messages)
    merged["attachments"] = [a for m in messages for a in m["attachments"]]
    return merged


def units(text: str) -> int:
    """Return the length of `text` in UTF-16 code units, as Rocket.Chat (JavaScript) counts it."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF) if not text.isascii() else len(text)


def truncate_units(text: str, limit: int) -> str:
    """Return `text` cut to at most `limit` UTF-16 code units, ending in an ellipsis when cut."""
    if units(text) <= limit:
        return text
    out, used = [], 1  # the ellipsis is one unit
    for c in text:
        size = 2 if ord(c) > 0xFFFF else 1
        if used + size > limit:
            break
        out.append(c)
        used += size
    return "".join(out).rstrip() + "…"


# The same external, generator and runbook URLs come again and again: they are cached, but only
# short ASCII ones, since URLs come from clients: the cache holds at most
# URL_CACHE_SIZE * URL_CACHE_LENGTH * 4 bytes (the URL and its quoted form), some 8 MiB.
URL_CACHE_SIZE = 1024
URL_CACHE_LENGTH = 2048
_URL_HEAD = re.compile(r"[^/?#]*(?://[^/?#]*)?")  # scheme and authority, as urlsplit finds them


def absolute_url(url: str) -> Optional[str]:
    """Return `url`, made safe for a markdown link, when it is an absolute http(s) URL; else None."""
    if url and len(url) <= URL_CACHE_LENGTH and url.isascii():
        return _cached_absolute_url(url)
    return _absolute_url(url)


def _absolute_url(url: str) -> Optional[str]:
    url = (url or "").strip()
    if not url or _UNSAFE_IN_URL.search(url):
        return None
    try:
        # Only the scheme and authority matter here; urlsplit keeps what it splits in a cache of its
        # own, so it gets that short head, never a client's long path and query.
        parts = urlsplit(_URL_HEAD.match(url).group())
        parts.port  # a bad port raises ValueError
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return quote(url, safe=_URL_SAFE)


_cached_absolute_url = functools.lru_cache(maxsize=URL_CACHE_SIZE)(_absolute_url)


def silence_url(external_url: str, labels: Dict[str, str]) -> Optional[str]:
    """Return the Alertmanager URL of a new silence matching exactly these labels, or None."""
    base = absolute_url(external_url)
    if not base or not labels:
        return None
    matchers = ",".join(f'{name}="{_escape_label(value)}"' for name, value in sorted(labels.items()))
    return f"{base.rstrip('/')}/#/silences/new?filter={_percent_encode('{' + matchers + '}')}"


_UNRESERVED = re.compile(r"[^A-Za-z0-9_.~-]+")


_ASCII_QUOTED = {c: f"%{c:02X}" for c in range(128) if not re.fullmatch(r"[A-Za-z0-9_.~-]", chr(c))}


def _percent_encode(text: str) -> str:
    """Return `text` with everything but RFC 3986's unreserved characters percent-encoded.

    The same as urllib.parse.quote(text, safe=""), several times faster."""
    if text.isascii():
        return text.translate(_ASCII_QUOTED)
    return _UNRESERVED.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), text)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def duration(seconds: float) -> str:
    """Return a duration as `2d 3h`, `5m 3s` or `12s`: the two largest units."""
    seconds = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def truncate(text: str, limit: int) -> str:
    """Return `text` cut to at most `limit` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"
