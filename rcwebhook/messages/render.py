"""Rendering: the Rocket.Chat message for one route's alerts, built as data.

Every message built here is one Rocket.Chat accepts: no field with an empty title or
value (Rocket.Chat refuses those), only absolute http(s) URLs in URL-typed keys (it
refuses anything else, even an empty string), `text` within Message_MaxAllowedSize
(5000 by default, counted in UTF-16 code units as JavaScript counts), and a bounded
size overall.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from datetime import datetime, tzinfo
from typing import Any, Dict, List, Mapping, Optional, Sequence
from urllib.parse import quote, urlsplit

from ..config.settings import Route, Settings
from .notification import Alert, Notification, parse_time
from .routing import Batch

TEXT_LIMIT = 5000  # Rocket.Chat's default Message_MaxAllowedSize
HEADLINE_NAMES_LIMIT = 400
HEADLINE_LABELS_LIMIT = 400  # characters of common labels in the headline; the rest are fields
HEADLINE_VALUE_LIMIT = 100  # characters of one label value in the headline
VIEW_URL_LIMIT = 1000  # characters of the headline's link to Alertmanager's alert view
TITLE_LIMIT = 250
DESCRIPTION_LIMIT = 2000
FIELD_VALUE_LIMIT = 300
FIELD_TITLE_LIMIT = 100
MAX_FIELDS = 16
MAX_LINKS = 8  # annotations shown as links; more become fields
MAX_ATTACHMENTS_PER_POST = 200  # when waiting messages are merged into one post
MAX_POST_BYTES = 512 * 1024  # JSON bytes of one merged post
# How far a headline can be shortened when merged headlines are short of room (a lowered
# Message_MaxAllowedSize): 1 leaves out the alert-view link, 2 the labels too (each attachment shows
# them as fields instead), 3 the lone alert's summary too (its attachment's title shows it).
SHORTEST = 3

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
                         settings, receiver=notification.receiver, group_labels=notification.group_labels)


def group_message(route: Route, alerts: Sequence[Alert], external_url: str, truncated: int,
                  settings: Settings, text_limit: int = TEXT_LIMIT, thread: str = "",
                  note: str = "", receiver: str = "", group_labels: Optional[Mapping[str, str]] = None,
                  shorten: int = 0, cpu_deadline: Optional[float] = None) -> Dict[str, Any]:
    """Return the message for some alerts of one group: a headline (and `note`) over one attachment for
    each of the first MAX_ALERTS_PER_MESSAGE alerts, the rest counted; a reply in `thread` when given.
    The built-in headline is shortened `shorten` steps (see SHORTEST).

    `receiver` and `group_labels` are the notification's, for templates; past `cpu_deadline` (the post's, on
    time.thread_time()) the templates are over TEMPLATE_CPU_BUDGET, else they have the whole budget."""
    shown = alerts[: settings.max_alerts_per_message]
    common = common_entries([alert.labels for alert in alerts])
    in_headline = _headline_labels(common, route.severity, settings) if shorten < 2 else {}
    text, templated = None, []
    if settings.templates is not None:  # TEMPLATE_FILES: the parts a template renders are not built here
        text, templated = settings.templates.parts(alerts, len(shown), external_url, text_limit, receiver,
                                                   group_labels or {}, route.name, settings.template_cpu_budget,
                                                   cpu_deadline)
    if text is None:
        view = view_url(external_url, "alerts", common) if shorten < 1 else None
        if view and len(view) > VIEW_URL_LIMIT:  # many labels: the group's own are matchers enough
            grouped = {k: v for k, v in (group_labels or {}).items() if common.get(k) == v}
            view = view_url(external_url, "alerts", grouped)
            view = view if view and len(view) <= VIEW_URL_LIMIT else None
        text = _text(route.severity, alerts, in_headline, view, len(alerts) - len(shown), truncated, text_limit,
                     note, summary=shorten < 3)
    message: Dict[str, Any] = {
        "text": text,
        "attachments": [_attachment(alert, route.severity, external_url, settings, in_headline,
                                    *(templated[i] if i < len(templated) else (None, None)))
                        for i, alert in enumerate(shown)],
    }
    # each only when set; the username and emoji are the hook set's, else ROCKETCHAT_USERNAME's and _ICON_EMOJI's
    around = {"tmid": thread, "username": route.username, "icon_emoji": route.icon_emoji, "channel": route.channel}
    message.update((key, value) for key, value in around.items() if value)
    return message


def common_entries(maps: Sequence[Mapping[str, str]]) -> Dict[str, str]:
    """Return the entries every one of `maps` has, with the same value, in the first one's order."""
    common = dict(maps[0]) if maps else {}
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def _headline_labels(common: Mapping[str, str], severity: str, settings: Settings) -> Dict[str, str]:
    """Return the common labels the headline shows, sorted by name, as long as they fit HEADLINE_LABELS_LIMIT
    (none _said_otherwise); one left out (too long, on several lines, beyond the limit) is a field instead."""
    shown: Dict[str, str] = {}
    used = 0
    for name, value in sorted(common.items()):
        if _said_otherwise(name, value, severity, settings):
            continue
        size = len(name) + len(value) + 2
        if len(value) > HEADLINE_VALUE_LIMIT or len(name) > HEADLINE_VALUE_LIMIT or "\n" in value \
                or used + size > HEADLINE_LABELS_LIMIT:
            continue
        shown[name] = value
        used += size
    return shown


def _text(severity: str, alerts: Sequence[Alert], labels: Mapping[str, str], view: Optional[str], hidden: int,
          truncated: int, limit: int, note: str = "", summary: bool = True) -> str:
    """Return the headline and notes above the attachments, within `limit` UTF-16 units.

    The headline is where Rocket.Chat reads mentions: every `@` of an alert's name, labels and
    summary is followed by a zero-width space, so that `@all` neither notifies everyone nor gets
    the whole message refused when the integration may not."""
    firing = sum(1 for a in alerts if a.status == "firing")
    resolved = len(alerts) - firing
    emoji = EMOJI[severity] if firing else RESOLVED_EMOJI
    state = " ".join(f"[{word}:{count}]" for word, count in (("FIRING", firing), ("RESOLVED", resolved))
                     if count or word == "RESOLVED" and not firing)
    names = _join_names([a.name for a in alerts])
    if view:
        # A link's text cannot hold brackets: such names get a link of their own after them.
        names = f"{names} · [Alertmanager]({view})" if "[" in names or "]" in names else f"[{names}]({view})"
    headline = f"{emoji} {state} {names}"
    if labels:
        headline += " " + " ".join(f"{_headline_word(n, HEADLINE_VALUE_LIMIT)}="
                                   f"{_headline_word(v, HEADLINE_VALUE_LIMIT)}" for n, v in labels.items())
    if len(alerts) == 1 and summary:
        said = _headline_word(alerts[0].annotations.get("summary", ""), TITLE_LIMIT)
        if said:
            headline += f" — {said}"
    if not firing:
        headline += f" ({severity})"  # the emoji of a resolved message does not tell it
    lines = [headline, note] if note else [headline]
    if hidden:
        where = f"[Alertmanager]({view})" if view else "Alertmanager"
        lines.append(f"…and {hidden} more alert{'s' if hidden != 1 else ''} not shown here; see {where}.")
    if truncated:
        lines.append(f"Alertmanager left out {truncated} more alert{'s' if truncated != 1 else ''} of this group "
                     "(its max_alerts setting).")
    return truncate_units("\n".join(lines), limit)


def _headline_word(text: str, limit: int) -> str:
    """Return `text` on one line, cut to `limit` characters, every `@` followed by a zero-width space."""
    return truncate(" ".join(text.split()), limit).replace("@", "@\u200b")


def _join_names(names: Sequence[str]) -> str:
    """Return the distinct alert names, in order, joined and cut to HEADLINE_NAMES_LIMIT."""
    distinct = list(dict.fromkeys(_headline_word(n, 120) for n in names))
    out = ""
    for i, name in enumerate(distinct):
        candidate = name if not out else f"{out}, {name}"
        if len(candidate) > HEADLINE_NAMES_LIMIT:
            return f"{out} and {len(distinct) - i} more"
        out = candidate
    return out


def _attachment(alert: Alert, severity: str, external_url: str, settings: Settings,
                in_headline: Mapping[str, str], title: Optional[str] = None,
                text: Optional[str] = None) -> Dict[str, Any]:
    """Return the attachment that shows one alert (without the labels the headline shows); a `title`
    or `text` given is a template's (an empty text: none)."""
    resolved = alert.status == "resolved"
    if title is None:
        summary = alert.annotations.get("summary", "").strip()
        title = alert.name + (f": {summary}" if summary else "")
        if resolved:
            title = "Resolved: " + title
        title = truncate(" ".join(title.split()), TITLE_LIMIT)
    attachment: Dict[str, Any] = {
        "title": title,
        "color": RESOLVED_COLOR if resolved else COLORS[severity],
        "collapsed": False,
    }
    prometheus = absolute_url(alert.generator_url)
    linked = _url_annotations(alert)
    if text is None:
        text = "\n".join(filter(None, (_description(alert), _links(alert, external_url, prometheus, linked))))
    fields = _fields(alert, severity, settings, in_headline, linked)
    attachment.update((key, value) for key, value in (("title_link", prometheus), ("text", text), ("fields", fields))
                      if value)  # each only when there is one
    return attachment


def _description(alert: Alert) -> str:
    description = (alert.annotations.get("description") or alert.annotations.get("message") or "").strip()
    return truncate(description, DESCRIPTION_LIMIT)


def _url_annotations(alert: Alert) -> Dict[str, str]:
    """Return the annotations (but the ones shown otherwise) whose value is an absolute http(s) URL,
    the first MAX_LINKS of them, made safe for a markdown link: they are shown as links, not fields."""
    urls = ((name, absolute_url(value)) for name, value in alert.annotations.items()
            if name not in _SHOWN_ANNOTATIONS and value.lstrip()[:8].lower().startswith(("http://", "https://")))
    return dict(itertools.islice(((name, url) for name, url in urls if url), MAX_LINKS))


def _links(alert: Alert, external_url: str, prometheus: Optional[str], linked: Mapping[str, str]) -> str:
    """Return the markdown links line: runbook, URL annotations, Prometheus, and for a firing alert a
    silence; each only when absolute."""
    # a resolved alert has nothing left to silence
    silence = view_url(external_url, "silences/new", alert.labels) if alert.status != "resolved" else None
    links = [("Runbook", absolute_url(alert.annotations.get("runbook_url", ""))),
             *((_link_text(name), url) for name, url in linked.items()),
             ("Prometheus", prometheus), ("Silence", silence)]
    return " · ".join(f"[{text}]({url})" for text, url in links if url)


def _link_text(name: str) -> str:
    """Return an annotation's name as a markdown link's text: one line, no brackets, not empty."""
    return truncate(" ".join(name.replace("[", " ").replace("]", " ").split()), FIELD_TITLE_LIMIT) or "link"


def _fields(alert: Alert, severity: str, settings: Settings, in_headline: Mapping[str, str],
            linked: Mapping[str, str]) -> List[Dict[str, Any]]:
    """Return short fields for the alert's identifying labels (but the ones in the headline, and its
    severity label only when an alias or unknown), then its times and other annotations.

    The times and annotations always have room: the labels get what is left of MAX_FIELDS, and
    the ones that do not fit are summed up in one last label field."""
    others: List[Dict[str, Any]] = []
    started = parse_time(alert.starts_at)
    if started:
        _add_field(others, "Started", local_time(started, settings.timezone), short=True)
    ended = parse_time(alert.ends_at)
    if alert.status == "resolved" and started and ended and ended >= started:
        _add_field(others, "Duration", duration((ended - started).total_seconds()), short=True)
    for name, value in alert.annotations.items():
        if name not in _SHOWN_ANNOTATIONS and name not in linked:
            _add_field(others, name, value, short=len(value) <= 40)
    labels: List[Dict[str, Any]] = []
    rest: List[str] = []
    room = MAX_FIELDS - len(others)
    for name, value in alert.labels.items():
        if name in in_headline or _said_otherwise(name, value, severity, settings):
            continue
        if len(labels) < room - 1:
            _add_field(labels, name, value, short=True)
        else:
            rest.append(f"{' '.join(name.split())}={' '.join(value.split())}")
    if len(rest) == 1 and len(labels) < room:
        name, _, value = rest[0].partition("=")
        _add_field(labels, name, value, short=True)
    elif rest and len(labels) < room:
        _add_field(labels, f"{len(rest)} more labels", ", ".join(rest), short=False)
    return labels + others


def _said_otherwise(name: str, value: str, severity: str, settings: Settings) -> bool:
    """Return whether a label needs no place of its own: alertname (the names are in the headline), a blank one,
    or a severity label that only says the route's severity (the emoji and colour do)."""
    return name == "alertname" or not name.strip() or not value.strip() or (
        name == settings.severity_label and value.strip().lower() == severity)


def local_time(moment: datetime, zone: tzinfo) -> str:
    """Return a time as `2026-01-30 11:00:00 CET`, in `zone` (TIMEZONE)."""
    try:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    except (OverflowError, ValueError):  # at the ends of datetime's range
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


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


class Post:
    """The messages going into one post, as long as they fit Rocket.Chat's limits: the same envelope,
    `text_limit` UTF-16 units of headlines, MAX_ATTACHMENTS_PER_POST attachments and MAX_POST_BYTES
    of JSON. The first message always fits."""

    def __init__(self, text_limit: int = TEXT_LIMIT) -> None:
        self.text_limit = text_limit
        self.messages: List[Dict[str, Any]] = []
        self.text, self.attachments, self.size = -1, 0, 0
        self.short_of_text = False  # a message was left out for the text limit alone

    def add(self, rendered: Dict[str, Any]) -> bool:
        """Add a message if it fits; return whether it did (when not, nothing after it is taken either)."""
        text = self.text + 1 + units(rendered["text"])
        attachments = self.attachments + len(rendered["attachments"])
        size = self.size + len(json.dumps(rendered, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        if self.messages:
            fits_but_text = attachments <= MAX_ATTACHMENTS_PER_POST and size <= MAX_POST_BYTES \
                and envelope(rendered) == envelope(self.messages[0])
            if text > self.text_limit or not fits_but_text:
                self.short_of_text = fits_but_text
                return False
        self.messages.append(rendered)
        self.text, self.attachments, self.size = text, attachments, size
        return True


def merge(messages: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Return one message holding them all: headlines one per line, attachments in order."""
    if len(messages) == 1:
        return messages[0]
    return {**envelope(messages[0]), "text": "\n".join(m["text"] for m in messages),
            "attachments": [a for m in messages for a in m["attachments"]]}


def units(text: str) -> int:
    """Return the length of `text` in UTF-16 code units, as Rocket.Chat (JavaScript) counts it."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2


def truncate_units(text: str, limit: int) -> str:
    """Return `text` cut to at most `limit` UTF-16 code units, ending in an ellipsis when cut."""
    if units(text) <= limit:
        return text
    ends = itertools.accumulate(2 if ord(c) > 0xFFFF else 1 for c in text)  # each character's last unit
    kept = sum(1 for _ in itertools.takewhile(lambda end: end < limit, ends))  # the ellipsis is one unit
    return text[:kept].rstrip() + "…"


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


def view_url(external_url: str, view: str, labels: Mapping[str, str]) -> Optional[str]:
    """Return the URL of an Alertmanager view filtered by exactly these labels (`alerts`: the alerts that have
    them, `silences/new`: a new silence matching them), or None."""
    base = absolute_url(external_url)
    if not base or not labels:
        return None
    return f"{base.rstrip('/')}/#/{view}?filter={_percent_encode(_matchers(labels))}"


def _matchers(labels: Mapping[str, str]) -> str:
    """Return `{a="1",b="2"}`: matchers for exactly these label values, sorted by name."""
    return "{" + ",".join(f'{name}="{_escape_label(value)}"' for name, value in sorted(labels.items())) + "}"


_UNRESERVED = re.compile(r"[^A-Za-z0-9_.~-]+")  # RFC 3986's unreserved characters are not quoted
_ASCII_QUOTED = {c: f"%{c:02X}" for c in range(128) if _UNRESERVED.match(chr(c))}


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
