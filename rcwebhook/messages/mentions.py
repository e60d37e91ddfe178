"""Mentions: the @-words that make Rocket.Chat notify people, gathered and taken out again (what a mention
is, which the MENTION_* keys are checked against too, is config.values').

Rocket.Chat notifies only for mentions in a message's top-level `text`, never in its attachments.
`@here` and `@all` need the integration user's `mention-here` and `mention-all` permissions, which
its `bot` role lacks by default; without them Rocket.Chat refuses the whole message with 400
`error-action-not-allowed`. Nothing here does I/O.
"""

from __future__ import annotations

import itertools
import re
from typing import Any, Dict, Iterable, List, Sequence, Tuple

from ..config.values import SPECIAL_MENTIONS, mention_words
from .notification import Alert

ANNOTATION = "mention"  # an alert's own mentions, added to its route's
REFUSAL = "error-action-not-allowed"  # Rocket.Chat's answer to @here/@all without the permission
LINE_LIMIT = 1000  # UTF-16 units of mentions in one post at most; the alerts need the rest of the text

# @here or @all as a word of a text, the way Rocket.Chat finds them, or a little more eagerly.
_SPECIAL_IN_TEXT = re.compile(r"(?<![\w@])@(?=(all|here)(?!\w))")


def annotation(alert: Alert) -> str:
    """Return the alert's `mention` annotation, or as many of its first words as fit LINE_LIMIT characters
    (it comes from clients, and a message has no room for more)."""
    text = alert.annotations.get(ANNOTATION, "")
    if len(text) <= LINE_LIMIT:
        return text
    head = text[:LINE_LIMIT]
    if text[LINE_LIMIT].isspace() or head[-1].isspace():
        return head
    whole = head.rsplit(None, 1)  # the last word is cut: a part of a name would mention someone else
    return whole[0] if len(whole) == 2 else ""


def called(route_mentions: str, alerts: Sequence[Alert]) -> Tuple[str, ...]:
    """Return the mentions a top-level message about `alerts` makes: none when no alert fires, else the
    route's, then the valid ones of the firing alerts' `mention` annotations, each once."""
    firing = [alert for alert in alerts if alert.status == "firing"]
    if not firing:
        return ()
    texts = [route_mentions] + [annotation(alert) for alert in firing]
    return mention_words(" ".join(texts))[0]


def line(groups: Iterable[Sequence[str]], limit: int = LINE_LIMIT) -> str:
    """Return the mentions of `groups`, each once, in order, as one line of at most `limit` characters:
    those that do not fit are left out, the first ones (the routes') kept."""
    found, _ = mention_words(" ".join(word for group in groups for word in group))
    ends = itertools.accumulate(1 + len(word) for word in found)  # where each ends, with a space before it
    return " ".join(found[:sum(1 for end in ends if end - 1 <= limit)])  # ASCII: characters are UTF-16 units


def put_in_front(message: Dict[str, Any], route_mentions: str, alerts: Sequence[Alert]) -> str:
    """Return the line of mentions a message about `alerts` makes, which this puts in front of its text."""
    said = line([called(route_mentions, alerts)])
    if said:
        message["text"] = f"{said} {message['text']}"
    return said


def without_special(mentions: Sequence[str]) -> Tuple[str, ...]:
    """Return `mentions` without @here and @all."""
    return tuple(word for word in mentions if word[1:] not in SPECIAL_MENTIONS)


def special(text: str) -> Tuple[str, ...]:
    """Return which of here and all `text` mentions as Rocket.Chat reads it."""
    found = {match.group(1) for match in _SPECIAL_IN_TEXT.finditer(text)}
    return tuple(name for name in SPECIAL_MENTIONS if name in found)


def neutralize(text: str) -> str:
    """Return `text` with every @here and @all made plain text (a zero-width space after the @)."""
    return _SPECIAL_IN_TEXT.sub("@\u200b", text)


def permissions(names: Iterable[str]) -> List[str]:
    """Return the Rocket.Chat permissions that mentioning each of `names` (here, all) needs."""
    return [f"mention-{name}" for name in names]
