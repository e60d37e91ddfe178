"""The running service: serving, SIGHUP reload, graceful stop, systemd notify and watchdog."""

from __future__ import annotations

import logging
import signal
import ssl
import threading
import time
from typing import Callable, List, Mapping, Tuple

from . import __version__
from .config import tls
from .config.keys import KEYS
from .config.secrets import redact_url
from .config.settings import EX_CONFIG, ConfigError, Settings, exposure_problems
from .delivery.deliverer import CLOSE_WAIT
from .delivery.transport import make_transport
from .operations import logs
from .operations.notify import Notifier
from .web.admission import Phase
from .web.server import Server

log = logging.getLogger("rcwebhook")

Loader = Callable[[], Tuple[Settings, List[str]]]
READY_FLUSH = 1.0  # seconds the start-up lines may take to be written before READY=1 goes anyway
# Changing these needs a new listening socket: a reload keeps the running values and says so.
_RESTART_KEYS = {key.field: key.name for key in KEYS if key.restart}


class Service:
    """rcwebhook as a long-running process; the settings in force are its server's, which a reload swaps."""

    def __init__(self, loader: Loader, environ: Mapping[str, str]) -> None:
        self.loader = loader
        self.environ = environ
        self.notifier = Notifier.from_environ(environ)
        self.reload_requested = False  # set by the signal handlers, acted on by the serving loop
        self.stop_signal = ""
        self.stop_started = False
        self.server: Server

    def run(self, settings: Settings) -> int:
        """Serve with `settings` until SIGTERM or SIGINT; return the exit status."""
        try:
            self.server = Server(settings)
        except ssl.SSLError as exc:  # changed since the configuration was checked
            log.error("TLS_CERT_FILE, TLS_KEY_FILE or ROCKETCHAT_CA_FILE cannot be used: %s", tls.problem(exc))
            return EX_CONFIG
        except OSError as exc:
            log.error("Cannot listen on %s port %d: %s", settings.host, settings.port, exc.strerror or exc)
            return 1
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)
        self.server.on_tick.append(self._tick)
        self._announce(settings)
        # Written before systemd says "Started" (journalctl's order), unless a destination is stalled.
        logs.flush(READY_FLUSH)
        self.notifier.ready(f"Serving on {self.server.url}")
        self.notifier.watchdog_due(time.monotonic())
        try:
            self.server.serve_forever(poll_interval=self.notifier.poll_interval())
        finally:
            # The drain and the posts being answered may outlast TimeoutStopSec=: tell systemd how long they
            # can take, with 10 s to spare.
            self.notifier.stopping(takes=self.server.settings.delivery_deadline + 5 + CLOSE_WAIT + 10)
            self._stop()
        log.info("rcwebhook stopped")
        logs.flush()  # what is queued for the journal, stderr or LOG_FILE, for a few seconds at most
        return 0

    def _on_stop_signal(self, signum: int, _frame) -> None:
        # Only flag it, in a plain attribute: a signal handler interrupts the main thread anywhere, even
        # inside a lock that logging or starting a thread would need. The serving loop acts on the flag.
        self.stop_signal = signal.Signals(signum).name

    def _on_reload_signal(self, _signum: int, _frame) -> None:
        self.reload_requested = True

    def _stop(self) -> None:
        """Close the listening socket, let requests in flight finish, then stop delivering."""
        server = self.server
        server.socket.close()
        grace = server.settings.delivery_deadline + 5
        with server.admission.lock:
            busy = sum(1 for c in server.connections.values() if c.phase is Phase.BUSY)
        log.info("Closed the listening socket; waiting up to %.0fs for %d request%s in flight", grace, busy,
                 "" if busy == 1 else "s")
        server.drain(grace)
        server.deliverer.close()

    def _tick(self) -> None:
        """Called from the serving loop: a hung loop stops the watchdog pings, as it should."""
        self.notifier.watchdog_due(time.monotonic())
        if self.stop_signal and not self.stop_started:
            self.stop_started = True
            log.info("Received %s, stopping: no new connections; requests in flight may finish", self.stop_signal)
            # shutdown() waits for serve_forever to return, so it cannot run in the serving thread.
            threading.Thread(target=self.server.shutdown, name="stop", daemon=True).start()
            return
        if self.reload_requested:
            self.reload_requested = False
            self.notifier.reloaded(self.reload())

    def reload(self) -> bool:
        """Load, validate and swap in the configuration whole; on any problem keep the running one."""
        self.notifier.reloading()
        try:
            try:
                new, warnings = self.loader()
            except ConfigError as exc:
                for warning in exc.warnings:
                    log.warning("Reload: %s", warning)
                for problem in exc.problems:
                    log.error("Reload refused: %s", problem)
                return self._refused("the configuration is invalid: " + "; ".join(exc.problems),
                                     "the configuration is invalid (%d problem%s); still running with the previous one",
                                     len(exc.problems), "s" if len(exc.problems) != 1 else "")
            loaded, new = new, self._in_force(new)
            # The rules hold for what will be in force: a new HOST waits for a restart, the new API_KEY does not.
            problems = exposure_problems(new.host, new.api_key, new.allow_unauthenticated)
            if problems:
                for problem in problems:
                    log.error("Reload refused: %s", problem)
                if loaded.host != new.host:
                    log.error("Reload refused: the new HOST=%s takes effect only at the next restart; until "
                              "then rcwebhook listens on HOST=%s", loaded.host, new.host)
                return self._refused("; ".join(problems), "HOST, API_KEY and ALLOW_UNAUTHENTICATED would leave "
                                     "rcwebhook open without authentication; still running with the previous "
                                     "configuration")
            # Everything the new settings need is built before anything is swapped: a reload that
            # fails changes nothing.
            try:
                transport = make_transport(new)
            except (ssl.SSLError, OSError, ValueError) as exc:
                return self._refused(f"ROCKETCHAT_CA_FILE cannot be used: {tls.problem(exc)}",
                                     "ROCKETCHAT_CA_FILE=%r cannot be used: %s; still running with the previous "
                                     "configuration", new.rocketchat_ca_file, tls.problem(exc))
            try:
                handlers = logs.build_handlers(new.log_file, new.log_max_bytes, new.log_backup_count,
                                               new.secrets(), environ=self.environ)
            except OSError as exc:
                return self._refused(f"LOG_FILE={new.log_file!r} cannot be opened: {exc.strerror or exc}",
                                     "LOG_FILE=%r cannot be opened: %s; still running with the previous "
                                     "configuration", new.log_file, exc.strerror or exc)
            store = None
            if new.state_dir != self.server.settings.state_dir:
                store = self.server.deliverer.open_store(new)
                if new.state_dir and store.failed:
                    store.close()
                    for handler in handlers:
                        handler.close()
                    return self._refused(f"STATE_DIR={new.state_dir!r} cannot be used",
                                         "STATE_DIR=%r cannot be used (see above); still running with the "
                                         "previous configuration and STATE_DIR=%r", new.state_dir,
                                         self.server.settings.state_dir)
            logs.install(handlers, new.log_level)
            if store is not None:
                self.server.deliverer.use_store(store)
                log.info("Alert states are kept in %s from now on (STATE_DIR changed); what was in memory is "
                         "written there", store.path or "memory only")
            self.server.apply(new, transport)
            for warning in warnings:
                log.warning("%s", warning)
            self.server.metrics.reload_success.set(1)
            self.server.metrics.reload_time.set(time.time())
            self.server.board.reloaded(True, config_file=new.source)
            log.info("Configuration reloaded from %s", new.source or "the environment",
                     extra=logs.fields("reload", outcome="reloaded"))
            self._announce_routes(new)
            return True
        finally:
            self.notifier.ready(f"Serving on {self.server.url}")

    def _refused(self, reason: str, line: str, *args: object) -> bool:
        """Log the last line of a refused reload (the journal's reload event), count and record it; return False."""
        log.error("Reload refused: " + line, *args, extra=logs.fields("reload", outcome="refused"))
        self.server.metrics.reload_success.set(0)
        self.server.board.reloaded(False, reason)
        return False

    def _in_force(self, new: Settings) -> Settings:
        """Return `new` as it would be in force: the running HOST, PORT and TLS files, which need a restart."""
        old = self.server.settings
        kept = {field: getattr(old, field) for field in _RESTART_KEYS if getattr(new, field) != getattr(old, field)}
        for field in kept:
            log.warning("Reload: %s changed in %s; it takes effect at the next restart", _RESTART_KEYS[field],
                        new.source or "the environment")
        return new._replace(**kept)

    def _announce(self, settings: Settings) -> None:
        log.info("rcwebhook %s listening on %s (config: %s)", __version__, self.server.url,
                 settings.source or "none")
        self._announce_routes(settings)
        if settings.dry_run:
            log.warning("Dry run: messages are rendered and logged, not posted to Rocket.Chat")
        else:
            log.info("%s", self.server.deliverer.describe_state())

    @staticmethod
    def _announce_routes(settings: Settings) -> None:
        for route in settings.routes.values():
            log.info("Route %s -> %s%s%s", route.name, redact_url(route.url) or "(no URL)",
                     f" channel {route.channel}" if route.channel else "",
                     f" (the {route.url_from} URL)" if route.url_from else "")
