"""systemd's notify protocol in pure Python: READY, RELOADING, STOPPING, STATUS and WATCHDOG datagrams;
and the reload state file that lets `systemctl reload` wait for the reload (rcwebhook.unit)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from pathlib import Path
from typing import Mapping, Optional

log = logging.getLogger("rcwebhook")

# In $RUNTIME_DIRECTORY: `<N> <outcome>`, N counting the reloads begun, outcome reloading, ok or refused.
RELOAD_STATE = "reload"


class Notifier:
    """Sends state changes to the service manager; does nothing when not run by systemd."""

    def __init__(self, address: str = "", watchdog_usec: int = 0, runtime_dir: str = "") -> None:
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval = watchdog_usec / 1e6 if watchdog_usec > 0 else 0.0
        self.last_ping = 0.0
        # The unit's RuntimeDirectory=: where the reload state file goes (none without it).
        self.reload_state: Optional[Path] = Path(runtime_dir) / RELOAD_STATE if runtime_dir else None
        self.reloads = 0
        self.reload_state_written = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Notifier":
        """Return the notifier $NOTIFY_SOCKET and $WATCHDOG_USEC (for this process only) ask for."""
        watchdog = 0
        pid = environ.get("WATCHDOG_PID", "")
        if not pid or pid == str(os.getpid()):
            with contextlib.suppress(ValueError):
                watchdog = int(environ.get("WATCHDOG_USEC", "0"))
        return cls(environ.get("NOTIFY_SOCKET", ""), watchdog, environ.get("RUNTIME_DIRECTORY", "").split(":")[0])

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
        if not self.reload_state_written:
            self._write_reload_state("ok")
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        self.reloads += 1
        self._write_reload_state("reloading")
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def reloaded(self, applied: bool) -> None:
        """Record how the reload announced by reloading() ended, for `systemctl reload` to report."""
        self._write_reload_state("ok" if applied else "refused")

    def stopping(self, takes: float) -> None:
        """Say the service is stopping; `takes`: the seconds it may need, which may exceed TimeoutStopSec=."""
        self.send("STOPPING=1", "STATUS=Stopping", f"EXTEND_TIMEOUT_USEC={int(takes * 1e6)}")

    def _write_reload_state(self, outcome: str) -> None:
        """Write `<reloads> <outcome>` whole (rename), so that a reader never sees half of it."""
        self.reload_state_written = True
        if self.reload_state is None:
            return
        partial = self.reload_state.with_name(f".{RELOAD_STATE}.{os.getpid()}")
        try:
            partial.write_text(f"{self.reloads} {outcome}\n")
            os.replace(partial, self.reload_state)
        except OSError as exc:
            log.warning("Cannot write %s (%s): systemctl reload cannot tell when a reload is done",
                        self.reload_state, exc.strerror or exc)

    def watchdog_due(self, now: float) -> bool:
        """Send WATCHDOG=1 when half the watchdog interval has passed since the last one; return whether sent."""
        if not self.watchdog_interval or now - self.last_ping < self.watchdog_interval / 2:
            return False
        self.last_ping = now
        return self.send("WATCHDOG=1")

    def poll_interval(self) -> float:
        """Return how often the serving loop must wake to ping the watchdog in time."""
        return min(0.5, self.watchdog_interval / 4) if self.watchdog_interval else 0.5
