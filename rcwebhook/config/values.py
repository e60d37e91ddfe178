"""The kinds of value a key holds: how each is read from its text, checked, and shown again.

A kind's `read(key, text)` returns the value and the problems with the text (each a line an operator
can act on, naming the key; the caller says where it was set); `show(value)` gives the text
`--check-config` prints. Nothing here does I/O but the time zone lookup.
"""

from __future__ import annotations

import re
from datetime import timezone as dt_timezone, tzinfo
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Protocol, Sequence, Tuple
from urllib.parse import urlsplit

Read = Tuple[Any, List[str]]  # the value (None when the text is unusable) and the problems with the text


class Kind(Protocol):
    """How a key's value is read and shown."""

    def read(self, key: str, text: str) -> Read: ...

    def show(self, value: Any) -> str: ...

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _bad(key: str, text: str, why: str) -> List[str]:
    return [f"{key}={text!r} {why}"]


class Text:
    """Text, without blanks around it; with `blank_is_default`, a blank value is read as the key's default."""

    def __init__(self, blank_is_default: bool = False) -> None:
        self.blank_is_default = blank_is_default

    def read(self, key: str, text: str) -> Read:
        return text.strip(), []

    def show(self, value: str) -> str:
        return value


class Whole:
    """A whole number from `low` to `high`."""

    what, unit = "a whole number", ""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def number(self, text: str) -> float:
        return int(text)

    def read(self, key: str, text: str) -> Read:
        try:
            value = self.number(text.strip())
        except ValueError:
            return None, _bad(key, text, f"is not {self.what}")
        if not self.low <= value <= self.high:
            shown = f"{self.show(self.low)} to {self.show(self.high)}{self.unit}"
            return None, _bad(key, text, f"is out of range ({shown})")
        return value, []

    def show(self, value: float) -> str:
        return str(value)


class Seconds(Whole):
    """A number of seconds (or of requests per second) from `low` to `high`."""

    what, unit = "a number of seconds", " seconds"

    def number(self, text: str) -> float:
        value = float(text)
        if value != value:  # NaN
            raise ValueError(text)
        return value

    def show(self, value: float) -> str:
        return f"{value:g}"


class Switch:
    """true or false (also 1/0, yes/no, on/off; empty is false)."""

    def read(self, key: str, text: str) -> Read:
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE, []
        return None, _bad(key, text, "is not true or false")

    def show(self, value: bool) -> str:
        return str(value).lower()


class OneOf(Text):
    """One of a few words, in any case."""

    def __init__(self, options: Sequence[str]) -> None:
        self.options = tuple(options)

    def read(self, key: str, text: str) -> Read:
        word = text.strip().lower()
        if word in self.options:
            return word, []
        return None, _bad(key, text, f"is not one of {', '.join(self.options)}")


class Emoji(Text):
    """An emoji name such as :bell:, or nothing."""

    def read(self, key: str, text: str) -> Read:
        name = text.strip()
        if name and not re.fullmatch(r":[\w+-]+:", name):
            return None, _bad(key, text, "is not an emoji name such as :bell:")
        return name, []


class Rate:
    """POSTS/SECONDS, such as 10/60; 0 (or off) for none, as (0, 0.0)."""

    def read(self, key: str, text: str) -> Read:
        word = text.strip()
        if word in ("0", "off", ""):
            return (0, 0.0), []
        posts, sep, seconds = word.partition("/")
        try:
            limit, window = int(posts), float(seconds)
        except ValueError:
            limit, window = 0, 0.0
        if not sep or limit < 1 or not 0 < window <= 86400:
            return None, _bad(key, text, "is not POSTS/SECONDS such as 10/60 (Rocket.Chat's default), or 0 for no "
                                         "pacing")
        return (limit, window), []

    def show(self, value: Tuple[int, float]) -> str:
        return f"{value[0]}/{value[1]:g}" if value[0] else "0"


class Zone:
    """An IANA time zone name such as Europe/Berlin; UTC needs no time zone database."""

    def read(self, key: str, text: str) -> Read:
        name = text.strip()
        if name in ("", "UTC"):
            return dt_timezone.utc, []
        import zoneinfo  # only for another zone

        try:
            return zoneinfo.ZoneInfo(name), []
        except (KeyError, ValueError, OSError):  # not found (a KeyError), a path, not a TZif file
            pass
        hint = "" if zoneinfo.available_timezones() else \
            " (this host has no time zone database: install the tzdata package)"
        return None, _bad(key, text, f"is not a time zone name such as Europe/Berlin or UTC{hint}")

    def show(self, value: tzinfo) -> str:
        return str(value)


class Aliases:
    """ALIAS:SEVERITY pairs, comma-separated, as a mapping of lower-case aliases."""

    def __init__(self, targets: Sequence[str]) -> None:
        self.targets = tuple(targets)

    def read(self, key: str, text: str) -> Read:
        result: Dict[str, str] = {}
        problems: List[str] = []
        for item in filter(None, (p.strip() for p in text.split(","))):
            alias, sep, target = (s.strip().lower() for s in item.partition(":"))
            if not sep or not alias or target not in self.targets:
                problems += _bad(key, text, f"has {item!r}; expected ALIAS:SEVERITY pairs with SEVERITY one of "
                                            f"{', '.join(self.targets)}")
                continue
            result[alias] = target
        return MappingProxyType(result), problems

    def show(self, value: Mapping[str, str]) -> str:
        return ",".join(f"{a}:{t}" for a, t in value.items())


class Compat(Text):
    """An Alertmanager version whose template functions are followed (amtemplate.data.COMPATS); blank is
    `default`, which is taken without loading the template engine."""

    def __init__(self, default: str) -> None:
        super().__init__(blank_is_default=True)
        self.default = default

    def read(self, key: str, text: str) -> Read:
        version = text.strip()
        if version == self.default:
            return version, []
        from ..amtemplate.compat import COMPATS  # the levels alone, no template engine
        if version in COMPATS:
            return version, []
        return None, _bad(key, text, f"is not an Alertmanager version rcwebhook follows ({', '.join(COMPATS)})")


# A hook's path: /hooks/ID/TOKEN, or the legacy /hooks/ID/USER_ID/TOKEN, after the path Rocket.Chat
# is served under, if any. A segment is any run of URL characters but `/`, `?` and `#`.
_SEGMENT = r"[A-Za-z0-9._~%!$&'()*+,;=:@-]+"
_HOOK_PATH = re.compile(rf"(?:/{_SEGMENT})*?/hooks/{_SEGMENT}/(?:{_SEGMENT}/)?{_SEGMENT}")
BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]")


def hook_url_problem(url: str) -> str:
    """Return what keeps `url` from being a Rocket.Chat incoming-webhook URL, or ''."""
    if BLANK_OR_CONTROL.search(url):
        return "holds a space or a control character (a word pasted after it?)"
    parts = urlsplit(url)
    try:
        port_ok = parts.port != 0
    except ValueError:  # a port that is not a number, or out of range
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        return "is not an absolute http(s) URL"
    if "@" in parts.netloc:
        return "holds a user name or password before the host"
    if parts.query or parts.fragment or url.endswith(("?", "#")) or not _HOOK_PATH.fullmatch(parts.path):
        return "is not an incoming-webhook URL (its path must be /hooks/ID/TOKEN and nothing after it)"
    return ""


class WebhookUrl(Text):
    """A Rocket.Chat incoming-webhook URL, or nothing. It is a secret: a problem names the key, never the value."""

    def read(self, key: str, text: str) -> Read:
        url = text.strip()
        why = hook_url_problem(url) if url else ""
        if why:
            return None, [f"{key} {why}; expected https://HOST[:PORT]/hooks/ID/TOKEN as Rocket.Chat's incoming "
                          "integration shows it"]
        return url, []


class ProxyUrl(Text):
    """An HTTP proxy's URL (or host:port, as urllib reads it), or nothing. It may hold a password: a problem names
    the key, never the value."""

    def read(self, key: str, text: str) -> Read:
        url = text.strip()
        if not url:
            return "", []
        parts = urlsplit(url if "://" in url else f"http://{url}")
        try:
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:
            valid = False
        if not valid or BLANK_OR_CONTROL.search(url):
            return None, [f"{key} is not a proxy URL such as http://proxy.example.com:3128"]
        return url, []


# Mentions: `@` and a user, team or group name under Rocket.Chat's default user name rule
# (UTF8_User_Names_Validation), or @here or @all; separated by blanks or commas.
SPECIAL_MENTIONS = ("here", "all")
_MENTION = re.compile(r"@[0-9A-Za-z._-]+")
_SEPARATORS = re.compile(r"[\s,]+")


def mention_words(text: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """Return the mentions in `text` (each once, in order) and the words in it that are not mentions.

    Words are separated by blanks or commas. A mention is `@` and a user, team or group name, or
    `@here` or `@all`; user names are compared without case, as Rocket.Chat compares them."""
    found, wrong, seen = [], [], set()
    for word in filter(None, _SEPARATORS.split(text)):
        if not _MENTION.fullmatch(word) or (word.lower()[1:] in SPECIAL_MENTIONS and word[1:] not in SPECIAL_MENTIONS):
            wrong.append(word)
        elif word.lower() not in seen:
            seen.add(word.lower())
            found.append(word)
    return tuple(found), tuple(dict.fromkeys(wrong))


def mention_problem(word: str) -> str:
    """Return why `word` is not a mention, and what to write instead."""
    if word.lower()[1:] in SPECIAL_MENTIONS:
        return f"{word!r} is not a mention: Rocket.Chat reads it as a user name; did you mean @{word.lower()[1:]}?"
    return (f"{word!r} is not a mention: write @ and a Rocket.Chat user, team or group name (letters, digits, "
            "'.', '_', '-'), or @here or @all, separated by spaces")


class Mentions(Text):
    """Mentions, checked, as one string separated by spaces."""

    def read(self, key: str, text: str) -> Read:
        found, wrong = mention_words(text)
        return " ".join(found), [f"{key}={text.strip()!r}: {mention_problem(word)}" for word in wrong]


TEXT = Text()
LABEL = Text(blank_is_default=True)  # a label name
SWITCH = Switch()
EMOJI = Emoji()
RATE = Rate()
ZONE = Zone()
WEBHOOK_URL = WebhookUrl()
PROXY_URL = ProxyUrl()
MENTIONS = Mentions()
