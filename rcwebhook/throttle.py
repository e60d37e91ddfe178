"""Per-client request limiting: a token bucket per client address, bounded in number."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Optional, Tuple

MAX_CLIENTS = 10000


class ClientLimiter:
    """Allows each client `rate` requests per second with bursts of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._lock = threading.Lock()
        self._buckets: "OrderedDict[str, Tuple[float, float]]" = OrderedDict()  # address: (tokens, time)

    def wait_needed(self, client: str, now: float) -> Optional[float]:
        """Take one request from `client`'s bucket; return None if allowed, else the seconds until it would be."""
        if self.rate <= 0:
            return None
        with self._lock:
            tokens, then = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > MAX_CLIENTS:
                self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self.rate
