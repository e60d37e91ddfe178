"""Threads: one conversation per incident, rooted at the channel message that announced it.

A group's first firing post opens a thread (Rocket.Chat returns its message id when a post asks
for `separateResponse`). Later posts of the group that only repeat or resolve alerts already
announced go into that thread (`tmid`). A post that announces a newly firing alert is never
hidden in a thread: it goes to the channel, and the thread moves there (the newest channel
message of the incident is where it goes on). When every alert announced has resolved, the
resolution goes into the thread and the thread ends: a later firing is a new incident.

Threads are kept per hook and Alertmanager groupKey (stable across Alertmanager restarts and HA
peers), under a fixed-size digest of the groupKey: a client chooses its size, and the thread needs
only to be found again. Nothing here does I/O or reads a clock; the caller holds the lock.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from typing import Iterable, List, NamedTuple, Optional, Tuple

MAX_THREADS = 20_000  # open threads kept at most; the least recently used go first


def group_digest(group: str) -> str:
    """Return the name a group's thread is kept under: 32 hex digits, whatever the groupKey's size."""
    return hashlib.blake2b(group.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def thread_scope(group: str, receiver: str, channel: str) -> str:
    """Return the key a group's thread is kept under on its hook: the groupKey for the default hook set's
    channels, else with the hook set and the channel override, since a thread lives in one channel (and a
    hook set may share its hook with another)."""
    return f"{group}\x1f{receiver}\x1f{channel}" if receiver or channel else group


class Thread:
    """An open thread: its root message, when the incident started, and the alerts announced in it."""

    __slots__ = ("hook", "group", "root", "started", "last_post", "alerts")

    def __init__(self, hook: str, group: str, root: str, started: float, last_post: float,
                 alerts: Iterable[str] = ()) -> None:
        self.hook = hook
        self.group = group  # the group_digest of the groupKey (and scope) it was opened for
        self.root = root  # the _id of the channel message the thread hangs from
        self.started = started  # the earliest startsAt of its alerts (epoch seconds; 0 unknown)
        self.last_post = last_post
        self.alerts = set(alerts)  # "route/alert key" of every alert announced in it


class Row(NamedTuple):
    """A thread as the state database keeps it."""

    hook: str
    group: str
    root: str
    started: float
    last_post: float
    alerts: str  # JSON list


def to_row(thread: Thread) -> Row:
    return Row(thread.hook, thread.group, thread.root, thread.started, thread.last_post,
               json.dumps(sorted(thread.alerts)))


class Threads:
    """The open threads, forgotten `ttl` seconds after their last post."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.open: "OrderedDict[Tuple[str, str], Thread]" = OrderedDict()

    def __len__(self) -> int:
        return len(self.open)

    def restore(self, rows: Iterable[Row]) -> None:
        for row in rows:
            try:
                alerts = json.loads(row.alerts)
            except ValueError:
                continue
            self.open[(row.hook, row.group)] = Thread(*row[:5], alerts)
        self._bound()

    def get(self, hook: str, group: str, now: float) -> Optional[Thread]:
        """Return the open thread of a group on a hook, or None (also when it went quiet for `ttl`)."""
        key = (hook, group_digest(group))
        thread = self.open.get(key)
        if thread is not None and now - thread.last_post > self.ttl:
            del self.open[key]
            return None
        return thread

    def anchor(self, hook: str, group: str, root: str, started: float, now: float,
               alerts: Iterable[str]) -> Thread:
        """Open the group's thread at `root`, or move its open thread there."""
        key = (hook, group_digest(group))
        thread = self.open.pop(key, None) or Thread(hook, key[1], root, started, now)
        thread.root = root
        thread.started = min(t for t in (thread.started, started) if t) if thread.started or started else 0.0
        thread.last_post = now
        thread.alerts.update(alerts)
        self.open[key] = thread
        self._bound()
        return thread

    def end(self, thread: Thread) -> None:
        self.open.pop((thread.hook, thread.group), None)

    def started_before(self, moment: float, now: float) -> List[Thread]:
        """Return the open threads (not gone quiet for `ttl`) whose incident is known to have started before
        `moment`."""
        return [t for t in self.open.values() if 0 < t.started < moment and now - t.last_post <= self.ttl]

    def _bound(self) -> None:
        while len(self.open) > MAX_THREADS:
            self.open.popitem(last=False)
