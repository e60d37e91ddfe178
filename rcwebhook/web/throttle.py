"""Per-client request limiting: a token bucket per client address, bounded in number."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Optional, Tuple

MAX_CLIENTS = 10000


class ClientLimiter:
    """Allows each client `rate` requests per second with bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self._lock = threading.Lock()
        self._rate = rate
        self._burst = burst
        self._buckets: "OrderedDict[str, Tuple[float, float]]" = OrderedDict()  # address: (tokens, time)

    def reconfigure(self, rate: float, burst: int) -> None:
        """Apply a new limit to every client at once: each starts again with a full bucket of the new burst."""
        with self._lock:
            self._rate, self._burst = rate, burst
            self._buckets.clear()

    def wait_needed(self, client: str, now: float) -> Optional[float]:
        """Take one request from `client`'s bucket; return None if allowed, else the seconds until it would be."""
        with self._lock:  # the rate and burst of one reading, even while a reload changes them
            rate, burst = self._rate, float(self._burst)
            if rate <= 0:
                return None
            tokens, then = self._buckets.pop(client, (burst, now))
            tokens = min(burst, tokens + (now - then) * rate)
            allowed = tokens >= 1.0
            self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / rate
