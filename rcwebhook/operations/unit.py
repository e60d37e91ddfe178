"""What rcwebhook's package runs beside the daemon: whether it is configured, and the synchronous reload.

`configured` exits 0 when the configuration sets a webhook URL (or has another problem, which the
daemon reports when it starts), and 1, saying what to set, while it sets no URL at all, as after a
fresh install: the postinst enables and starts the service only once it is configured, so that a
fresh install leaves no failed unit.

`reload PID` (ExecReload=) sends SIGHUP to the daemon and waits until a reload begun after it
has ended, as the daemon records in $RUNTIME_DIRECTORY/reload (rcwebhook.notify): it exits 0 once
the new configuration is in use and 1 when the daemon refused it, so that `systemctl reload`
returns only then, and fails for a refused configuration. systemd 247 and 252 have no
Type=notify-reload to do this.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, IO, List, Mapping, Optional, Tuple

from . import logs
from ..config.loading import SYSTEM_CONFIG, find_config, load
from ..config.settings import NO_URL, ConfigError
from .notify import RELOAD_STATE

USAGE = "usage: unit-helper configured [--config PATH] | unit-helper reload PID"
RELOAD_TIMEOUT = 80.0  # seconds; systemd's own limit for ExecReload= is TimeoutStartSec= (90 s by default)


def configured(explicit: Optional[str], environ: Mapping[str, str], err: IO[str]) -> int:
    """Return 1, saying what to set, when no webhook URL is configured anywhere, else 0."""
    path = find_config(explicit, environ, Path.cwd())
    try:
        load(path, environ)
    except Exception as exc:  # noqa: BLE001 - whatever it is, the daemon reports it better
        if not isinstance(exc, ConfigError):
            return 0
        if all(NO_URL in problem for problem in exc.problems):
            where = path or SYSTEM_CONFIG
            print(f"{logs.priority_prefix(err, environ, logging.WARNING)}rcwebhook is not configured yet, so it "
                  f"is neither enabled nor started: set the Rocket.Chat webhook URLs (ROCKETCHAT_WEBHOOK_CRITICAL, "
                  f"ROCKETCHAT_WEBHOOK_WARNING, ROCKETCHAT_WEBHOOK_INFO) in {where}, check them with "
                  f"`rcwebhook --check-config` and `rcwebhook --send-test`, then run "
                  f"`systemctl enable --now rcwebhook`", file=err)
            return 1
    return 0


def read_state(path: Path) -> Optional[Tuple[int, str]]:
    """Return (reloads begun, outcome) from the daemon's reload state file, or None."""
    try:
        count, outcome = path.read_text().split()
        return int(count), outcome
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def reload(pid: int, environ: Mapping[str, str], err: IO[str], timeout: float = RELOAD_TIMEOUT,
           clock: Callable[[], float] = time.monotonic) -> int:
    """Return 0 once a reload begun after this call has applied the new configuration, else 1."""

    def fail(why: str) -> int:
        print(f"{logs.priority_prefix(err, environ, logging.ERROR)}rcwebhook: {why}", file=err)
        return 1

    state = Path(environ.get("RUNTIME_DIRECTORY", "/run/rcwebhook").split(":")[0]) / RELOAD_STATE
    before = read_state(state)
    if before is None:
        return fail(f"cannot reload: {state} is missing or unreadable, so the daemon (PID {pid}) is not "
                    f"running under rcwebhook.service or not ready yet")
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        return fail(f"cannot signal the daemon (PID {pid}): {exc.strerror or exc}")
    deadline = clock() + timeout
    while True:
        now = read_state(state)
        # Reloads begun after `before` was read began after this call: the daemon read the file anew.
        if now is not None and now[0] > before[0] and now[1] != "reloading":
            return 0 if now[1] == "ok" else fail(
                "the new configuration was refused; the daemon runs on with the previous one "
                "(journalctl -u rcwebhook -p err says why; rcwebhook --check-config lists every problem)")
        if not _alive(pid):
            return fail(f"the daemon (PID {pid}) ended during the reload")
        if clock() > deadline:
            return fail(f"the daemon (PID {pid}) has not finished reloading after {timeout:g}s")
        time.sleep(0.02)


def main(argv: Optional[List[str]] = None, environ: Mapping[str, str] = os.environ,
         err: Optional[IO[str]] = None) -> int:
    """Run `configured` or `reload` and return the exit status."""
    args = sys.argv[1:] if argv is None else argv
    err = err or sys.stderr
    if args[:1] == ["configured"] and len(args) in (1, 3) and args[1:2] in ([], ["--config"]):
        return configured(args[2] if len(args) == 3 else None, environ, err)
    if args[:1] == ["reload"] and len(args) == 2 and args[1].isdigit():
        return reload(int(args[1]), environ, err)
    print(USAGE, file=err)
    return 2
