"""A queue bounded in bytes that one writer thread drains, so that whoever queues never waits on the
writing: the log destinations' and the state database's."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable, Deque, List, Tuple


class Backlog:
    """What waits for one writer thread, at most `limit` bytes of it: who queues never waits on the
    writing. The caller holds `cond` for add()."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: Deque[Tuple[Any, int]] = deque()  # (item, its bytes), oldest first
        self.size = 0  # bytes queued
        self.writing = False  # the writer holds what take() gave it
        self.closing = False
        self.cond = threading.Condition(threading.Lock())

    def add(self, item: Any, size: int) -> None:
        self.items.append((item, size))
        self.size += size
        self.cond.notify_all()

    def take(self, every: bool = False) -> List[Any]:
        """Wait for items; return the oldest (no longer queued) or, `every`, all of them (queued
        until forget()); none once closing with nothing left."""
        with self.cond:
            self.writing = False
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.items or self.closing)
            self.writing = bool(self.items)
            if every or not self.items:
                return [item for item, _ in self.items]
            item, size = self.items.popleft()
            self.size -= size
            return [item]

    def forget(self, count: int) -> None:
        """Remove the `count` oldest items, as many as there are (the caller holds `cond`)."""
        for _ in range(min(count, len(self.items))):
            self.size -= self.items.popleft()[1]

    def idle(self, timeout: float, unless: Callable[[], bool] = lambda: False) -> None:
        """Wait, up to `timeout` seconds, until nothing is queued or written (or `unless()`)."""
        with self.cond:
            self.cond.wait_for(lambda: not (self.items or self.writing) or unless(), timeout)

    def close(self, drop: bool = False) -> int:
        """Let the writer's take() return nothing once the queue is empty (emptied first, `drop`);
        return how many items were dropped."""
        with self.cond:
            dropped = len(self.items) if drop else 0
            self.forget(dropped)
            self.closing = True
            self.cond.notify_all()
        return dropped
