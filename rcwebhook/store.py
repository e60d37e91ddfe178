"""Durable state in STATE_DIR: the alert states posted per route, and each hook's recent posts.

It lets a restart (an upgrade, a reboot, a crash, kill -9) go on where the last process stopped:
what was posted is not posted again, and the pacing of Rocket.Chat's rate limit goes on.
The state is a help, never a single point of failure: when the database cannot be opened,
read or written, the error is logged once and rcwebhook goes on with its state in memory;
a corrupt file is moved aside first. Nothing is ever refused or delayed because of it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from .ledger import State
from .threads import MAX_THREADS, Row as ThreadRow

log = logging.getLogger("rcwebhook")

FILE_NAME = "state.sqlite3"
STATE_TTL = 7 * 86400.0  # a posted state is forgotten this long after its last post
MAX_STATES = 20_000  # rows kept at most, as many as the ledger holds; the oldest go first
PACING_TTL = 86400.0
MAX_HOOK_POSTS = 10_000  # recent posts kept, all hooks together: pacing needs a window's worth
PRUNE_EVERY = 500  # writes between two prunings, so that the file stays bounded while running

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_state (
    route TEXT NOT NULL, alert TEXT NOT NULL, status TEXT NOT NULL, starts REAL NOT NULL,
    ends REAL NOT NULL, asof REAL NOT NULL, posted_at REAL NOT NULL, confirmed_at REAL NOT NULL,
    PRIMARY KEY (route, alert));
CREATE INDEX IF NOT EXISTS alert_state_age ON alert_state (posted_at);
CREATE TABLE IF NOT EXISTS thread (
    hook TEXT NOT NULL, group_key TEXT NOT NULL, root TEXT NOT NULL, started REAL NOT NULL,
    last_post REAL NOT NULL, alerts TEXT NOT NULL, PRIMARY KEY (hook, group_key));
CREATE TABLE IF NOT EXISTS hook_post (hook TEXT NOT NULL, sent_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS hook_post_hook ON hook_post (hook, sent_at);
"""

Row = Tuple[str, str, State, float, float]  # route, alert key, state, posted at, confirmed at


def hook_id(url: str) -> str:
    """Return the name a hook's pacing is kept under: a digest, so the token is not written to disk."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]


class Store:
    """The SQLite database in STATE_DIR, or nothing at all (`directory` empty): every call is safe."""

    def __init__(self, directory: str, wall=time.time, thread_ttl: float = 7 * 86400.0, on_error=None) -> None:
        self.directory = directory
        self.wall = wall
        self.thread_ttl = thread_ttl
        self.on_error = on_error  # called on every database error, for the metrics
        self.lock = threading.Lock()
        self.db = None
        self.failed = False
        self.locked = False  # the last transaction found the database locked by another process
        self.writes = 0
        if directory:
            self._open()

    @property
    def path(self) -> Optional[Path]:
        return Path(self.directory) / FILE_NAME if self.directory else None

    def _open(self) -> None:
        import sqlite3  # only with STATE_DIR

        path = self.path
        assert path is not None
        for attempt in (1, 2):
            try:
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                db = sqlite3.connect(str(path), timeout=0.2, check_same_thread=False, isolation_level=None)
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                except sqlite3.OperationalError as exc:
                    if not _is_locked(exc):  # locked: another process has it open, in the mode it has
                        raise
                db.execute("PRAGMA synchronous=NORMAL")
                if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise sqlite3.DatabaseError("quick_check failed")
                try:
                    db.executescript(_SCHEMA)
                except sqlite3.OperationalError as exc:
                    # Another process holds the write lock: the tables are there if this is not a new file.
                    if not _is_locked(exc) or db.execute(
                            "SELECT count(*) FROM sqlite_master WHERE name = 'alert_state'").fetchone()[0] == 0:
                        raise
                self.db = db
                self._prune()
                return
            except sqlite3.DatabaseError as exc:
                if attempt == 1 and path.exists() and _is_corruption(exc):
                    aside = path.with_name(f"{FILE_NAME}.corrupt-{int(self.wall())}")
                    log.error("The state database %s is corrupt (%s): moved it aside to %s and started a new one",
                              path, exc, aside.name)
                    try:
                        os.replace(path, aside)
                        for suffix in ("-wal", "-shm"):
                            Path(str(path) + suffix).unlink(missing_ok=True)
                    except OSError:
                        pass
                    continue
                self._fail(f"cannot be opened: {exc}")
                return
            except OSError as exc:
                self._fail(f"cannot be opened: {exc.strerror or exc}")
                return

    def _fail(self, why: str) -> None:
        """Log once and go on without the database."""
        if self.on_error is not None:
            self.on_error()
        if not self.failed:
            log.error("The state database in STATE_DIR=%s %s; going on with state in memory only: a restart "
                      "may post again what was posted, and Rocket.Chat's rate limit starts afresh",
                      self.directory, why)
        self.failed = True
        if self.db is not None:
            try:
                self.db.close()
            except Exception:  # noqa: BLE001 - closing a broken database must not fail too
                pass
        self.db = None

    def _run(self, what: str, work) -> object:
        """Run `work(db)` in a transaction. While another process holds the database's lock, the work is
        skipped (and said once); on any other database error, fail over to memory."""
        import sqlite3

        with self.lock:
            if self.db is None:
                return None
            try:
                self.db.execute("BEGIN")
                result = work(self.db)
                self.db.execute("COMMIT")
                self.locked = False
                return result
            except (sqlite3.Error, OSError) as exc:
                if not _is_locked(exc):
                    self._fail(f"failed while {what}: {exc}")
                    return None
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if self.on_error is not None:
                    self.on_error()
                if not self.locked:
                    log.error("The state database %s is locked by another process (%s): what rcwebhook does "
                              "meanwhile is not saved, so a restart may post it again; it is tried again at "
                              "every change", self.path, exc)
                self.locked = True
                return None

    # --- alert states ------------------------------------------------------------------

    def load_states(self) -> List[Row]:
        """Return the posted states kept from earlier runs."""
        rows = self._run("reading the alert states", lambda db: db.execute(
            "SELECT route, alert, status, starts, ends, asof, posted_at, confirmed_at FROM alert_state "
            "ORDER BY posted_at").fetchall())
        return [(r[0], r[1], State(r[2], r[3], r[4], r[5]), r[6], r[7]) for r in rows or ()]

    def save_states(self, rows: Iterable[Row]) -> None:
        """Remember posted (or acknowledged) states."""
        values = [(route, key, s.status, s.starts, s.ends, s.asof, posted_at, confirmed_at)
                  for route, key, s, posted_at, confirmed_at in rows]
        if values:
            self._run("saving alert states", lambda db: db.executemany(
                "INSERT OR REPLACE INTO alert_state VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values))
            self._wrote()

    # --- threads ---------------------------------------------------------------------------

    def load_threads(self, since: float) -> List[ThreadRow]:
        """Return the open threads whose last post is after `since`."""
        rows = self._run("reading the threads", lambda db: db.execute(
            "SELECT hook, group_key, root, started, last_post, alerts FROM thread WHERE last_post >= ? "
            "ORDER BY last_post", (since,)).fetchall())
        return [ThreadRow(*row) for row in rows or ()]

    def save_threads(self, opened: Iterable[ThreadRow], ended: Iterable[Tuple[str, str]]) -> None:
        """Remember opened or changed threads and forget ended ones, in one transaction."""
        opened, ended = list(opened), list(ended)
        if not opened and not ended:
            return

        def save(db) -> None:
            db.executemany("INSERT OR REPLACE INTO thread VALUES (?, ?, ?, ?, ?, ?)", opened)
            db.executemany("DELETE FROM thread WHERE hook = ? AND group_key = ?", ended)

        self._run("saving threads", save)
        self._wrote()

    # --- pacing ---------------------------------------------------------------------------

    def recent_posts(self, hook: str, since: float) -> List[float]:
        """Return the wall times of the posts to `hook` since `since`, oldest first."""
        rows = self._run("reading a hook's posts", lambda db: db.execute(
            "SELECT sent_at FROM hook_post WHERE hook = ? AND sent_at >= ? ORDER BY sent_at", (hook, since)).fetchall())
        return [r[0] for r in rows or ()]

    def record_post(self, hook: str, sent_at: float) -> None:
        self._run("recording a post", lambda db: db.execute("INSERT INTO hook_post VALUES (?, ?)", (hook, sent_at)))
        self._wrote()

    # --- upkeep -----------------------------------------------------------------------------

    def _prune(self) -> None:
        """Forget what is too old, and the oldest rows beyond MAX_STATES."""
        now = self.wall()

        def prune(db) -> None:
            db.execute("DELETE FROM alert_state WHERE posted_at < ?", (now - STATE_TTL,))
            db.execute("DELETE FROM alert_state WHERE rowid IN (SELECT rowid FROM alert_state "
                       "ORDER BY posted_at DESC LIMIT -1 OFFSET ?)", (MAX_STATES,))
            db.execute("DELETE FROM hook_post WHERE sent_at < ?", (now - PACING_TTL,))
            db.execute("DELETE FROM hook_post WHERE rowid IN (SELECT rowid FROM hook_post "
                       "ORDER BY sent_at DESC LIMIT -1 OFFSET ?)", (MAX_HOOK_POSTS,))
            db.execute("DELETE FROM thread WHERE last_post < ?", (now - self.thread_ttl,))
            db.execute("DELETE FROM thread WHERE rowid IN (SELECT rowid FROM thread "
                       "ORDER BY last_post DESC LIMIT -1 OFFSET ?)", (MAX_THREADS,))

        self._run("pruning", prune)

    def _wrote(self) -> None:
        self.writes += 1
        if self.writes % PRUNE_EVERY == 0:
            self._prune()

    def size(self) -> int:
        """Return the database's size in bytes (with its write-ahead log), 0 without one."""
        path = self.path
        if self.db is None or path is None:
            return 0
        total = 0
        for name in (str(path), str(path) + "-wal"):
            try:
                total += os.stat(name).st_size
            except OSError:
                pass
        return total

    def close(self) -> None:
        with self.lock:
            if self.db is not None:
                try:
                    self.db.close()
                except Exception:  # noqa: BLE001
                    pass
                self.db = None


def _is_locked(exc: Exception) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _is_corruption(exc: Exception) -> bool:
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text or "quick_check" in text or "corrupt" in text
