"""Time as delivery reads it: one object, handed to whatever keeps a timer.

Pacing windows, backoff, Rocket.Chat's 429 waits and the merging of a burst are timers on the
monotonic clock; what is kept or shown (when a state was posted, a thread's age, the dedup window)
is in epoch seconds. Every wait for a timer goes through `wait`, so that a clock that is moved
(rather than waited for) moves every timer with it.
"""

from __future__ import annotations

import threading
import time
from typing import Optional


class Clock:
    """The system's clocks, and waiting on a condition for at most some seconds of them."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def wait(self, cond: threading.Condition, seconds: Optional[float]) -> None:
        """Wait on `cond` (held) until notified or `seconds` have passed (None: until notified)."""
        cond.wait(seconds)
