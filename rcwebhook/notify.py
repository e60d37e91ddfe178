"""systemd's notify protocol in pure Python: READY, RELOADING, STOPPING, STATUS and WATCHDOG datagrams."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Mapping

log = logging.getLogger("rcwebhook")


class Notifier:
    """Sends state changes to the service manager; does nothing when not run by systemd."""

    def __init__(self, address: str = "", watchdog_usec: int = 0) -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval = watchdog_usec / 1e6 if watchdog_usec > 0 else 0.0
        self.last_ping = 0.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Notifier":
        """Return the notifier $NOTIFY_SOCKET and $WATCHDOG_USEC (for this process only) ask for."""
        watchdog = 0
        pid = environ.get("WATCHDOG_PID", "")
        if not pid or pid == str(os.getpid()):
            try:
                watchdog = int(environ.get("WATCHDOG_USEC", "0"))
            except ValueError:
                watchdog = 0
        return cls(environ.get("NOTIFY_SOCKET", ""), watchdog)

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        """Send one datagram of KEY=VALUE lines; return whether it went out."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(fields).encode("utf-8"), self.address)
            return True
        except OSError as exc:
            log.debug("Cannot notify the service manager at %r: %s", self.address, exc)
            return False

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=Stopping")

    def watchdog_due(self, now: float) -> bool:
        """Send WATCHDOG=1 when half the watchdog interval has passed since the last one; return whether sent."""
        if not self.watchdog_interval or now - self.last_ping < self.watchdog_interval / 2:
            return False
        self.last_ping = now
        return self.send("WATCHDOG=1")

    def poll_interval(self, default: float = 0.5) -> float:
        """Return how often the serving loop must wake to ping the watchdog in time."""
        return min(default, self.watchdog_interval / 4) if self.watchdog_interval else default
