"""De-duplication: what was delivered recently, so a repeat is answered without a second post."""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Iterable

from .alertmanager import Alert, Notification


def post_key(hook: str, notification: Notification, alerts: Iterable[Alert]) -> str:
    """Return the identity of one route's post: hook, groupKey, status and each alert's identity."""
    identity = [
        hook,
        notification.group_key,
        notification.status,
        sorted(
            [alert.fingerprint or json.dumps(sorted(alert.labels.items())), alert.status, alert.starts_at,
             alert.ends_at]
            for alert in alerts
        ),
    ]
    return hashlib.sha256(json.dumps(identity, ensure_ascii=False).encode("utf-8")).hexdigest()


class RecentPosts:
    """Keys of accepted posts, each remembered for `window` seconds; at most `capacity`, oldest out first."""

    def __init__(self, window: float, capacity: int = 10000) -> None:
        self.window = window
        self.capacity = capacity
        self._expiry: "OrderedDict[str, float]" = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, key: str, now: float) -> None:
        if self.window <= 0:
            return
        self._expiry.pop(key, None)
        self._expiry[key] = now + self.window
        while len(self._expiry) > self.capacity:
            self._expiry.popitem(last=False)

    def seen(self, key: str, now: float) -> bool:
        """Return whether `key` was delivered within the window before `now`."""
        self._expire(now)
        return key in self._expiry

    def _expire(self, now: float) -> None:
        while self._expiry:
            key, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                break
            self._expiry.popitem(last=False)
