"""Pacing: never more than N posts to one hook in any window of W seconds.

Rocket.Chat counts posts per (client, hook) in fixed windows that open with the first
post. A token bucket refilling continuously can still put N+1 posts in such a window;
a log of the last N send times cannot: the (N+1)th post waits until the first of
those N is W seconds old.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Iterable


class WindowLimiter:
    """A sliding log of send times for one hook."""

    def __init__(self, limit: int, window: float, sent: Iterable[float] = ()) -> None:
        self.sent: Deque[float] = deque(sorted(sent))
        self.reconfigure(limit, window)

    def reconfigure(self, limit: int, window: float) -> None:
        """Take a new limit and window, keeping the posts already sent (the newest `limit`)."""
        self.limit, self.window = limit, window
        # Rocket.Chat times a post when it arrives; posts are recorded when answered, which is
        # never earlier. The margin covers the rest: clocks read a moment apart.
        self.margin = min(0.5, window * 0.05)
        self.sent = deque(self.sent, maxlen=max(0, limit))

    def next_slot(self, now: float) -> float:
        """Return the earliest time, not before `now`, at which one more post may be sent.

        The first half of the budget goes at once; the rest is spread over the window, so a
        burst does not spend every post on the first few small messages while the rest of the
        burst waits a whole window: later posts carry more, merged.
        """
        if self.limit <= 0:
            return now
        horizon = now - self.window - self.margin
        while self.sent and self.sent[0] <= horizon:
            self.sent.popleft()
        slot = now
        if len(self.sent) >= self.limit:
            slot = self.sent[-self.limit] + self.window + self.margin
        if len(self.sent) >= max(1, self.limit // 2):
            slot = max(slot, self.sent[-1] + self.window / self.limit)
        return max(now, slot)

    def record(self, when: float) -> None:
        """Count one post sent at `when`."""
        self.sent.append(when)  # the oldest beyond `limit` goes
