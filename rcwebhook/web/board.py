"""The records /status shows beside the delivery state, kept from the start (the page's code, in
rcwebhook.web.status, loads only when /status or /ready is first asked for)."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Mapping, Optional

from ..operations.logs import cut

RECENT = 50  # notifications the page lists
# What a client sent is kept for the page as a cut copy: 50 notifications of 4 MB groupKeys must not make a
# page of gigabytes. With these, one notification's values take at most about 1 KB, escaped 6 KB.
SHOWN = 200  # characters of a groupKey or receiver
SHOWN_NAME = 100  # characters of one alert name
SHOWN_NAMES = 400  # characters of the alert names of one notification, together
REFUSED_WINDOW = 15 * 60  # seconds over which the page counts notifications answered 4xx


class Board:
    """The records /status shows beside the delivery state: recent notifications, the last reload."""

    def __init__(self, config_file: str) -> None:
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.config_file = config_file
        self.reload: Dict[str, Any] = {"time": self.started_wall, "ok": True, "error": "", "kind": "start"}
        self.recent: Deque[Dict[str, Any]] = deque(maxlen=RECENT)
        # Notifications answered 4xx, which Alertmanager does not send again: per minute, the last 15 minutes.
        self.refusals: Deque[List[Any]] = deque()  # [minute, count]
        self.last_refusal: Dict[str, Any] = {}
        self.lock = threading.Lock()

    def notification(self, group_key: str, alerts: List[str], routes: Mapping[str, str], outcome: str,
                     receiver: str = "", hook_set: str = "", reason: str = "") -> None:
        """Record one notification: its groupKey, alert names, each route's outcome, the HTTP answer (and why,
        when it is not 2xx), Alertmanager's receiver (unescaped) and the hook set of the path it came to ("" for
        /webhook)."""
        self._record({"group_key": cut(group_key, SHOWN), "alerts": _names(alerts), "alert_count": len(alerts),
                      "routes": dict(routes), "outcome": cut(outcome, SHOWN), "reason": cut(reason, SHOWN),
                      "receiver": cut(receiver, SHOWN),
                      "path": cut(f"/webhook/{hook_set}" if hook_set else "/webhook", SHOWN)})

    def refusal(self, code: int, reason: str, path: str) -> None:
        """Record a POST to `path` answered `code` before it was read as a notification (a 404 for an unknown
        hook set, a 401, a body that is not a notification): the list shows every answer."""
        self._record({"group_key": "", "alerts": [], "alert_count": 0, "routes": {}, "outcome": f"{code} error",
                      "reason": cut(reason, SHOWN), "receiver": "", "path": cut(path, SHOWN)})

    def _record(self, entry: Dict[str, Any]) -> None:
        now = time.time()
        entry["time"] = now
        with self.lock:
            self.recent.append(entry)
            if entry["outcome"].startswith("4"):  # the HTTP answer's code comes first
                minute = int(now // 60)
                if self.refusals and self.refusals[-1][0] == minute:
                    self.refusals[-1][1] += 1
                else:
                    self.refusals.append([minute, 1])
                while self.refusals and self.refusals[0][0] <= minute - REFUSED_WINDOW // 60:
                    self.refusals.popleft()
                self.last_refusal = {"time": now, "outcome": entry["outcome"], "reason": entry["reason"],
                                     "path": entry["path"]}

    def refused(self, now: float) -> Dict[str, Any]:
        """Return how many notifications were answered 4xx in the last REFUSED_WINDOW, and the latest."""
        with self.lock:
            since = int(now // 60) - REFUSED_WINDOW // 60
            count = sum(n for minute, n in self.refusals if minute > since)
            last = dict(self.last_refusal) if count else {}
        return {"count": count, "window_seconds": REFUSED_WINDOW, "latest": last}

    def reloaded(self, ok: bool, error: str = "", config_file: Optional[str] = None) -> None:
        """Record a configuration reload and whether it worked."""
        with self.lock:
            self.reload = {"time": time.time(), "ok": ok, "error": error, "kind": "reload"}
            if config_file is not None:
                self.config_file = config_file


def _names(alerts: List[str]) -> List[str]:
    """Return the first alert names, each cut, as many as SHOWN_NAMES characters hold (at least one)."""
    names: List[str] = []
    room = SHOWN_NAMES
    for name in alerts:
        name = cut(name, SHOWN_NAME)
        if names and len(name) > room:
            break
        names.append(name)
        room -= len(name)
    return names
