"""Durable state in STATE_DIR: the alert states posted per route, and each hook's recent posts.

It lets a restart (an upgrade, a reboot, a crash, kill -9) go on where the last process stopped:
what was posted is not posted again, and the pacing of Rocket.Chat's rate limit goes on.
The state is a help, never a single point of failure: when the database cannot be opened,
read or written, the error is logged once and rcwebhook goes on with its state in memory;
a corrupt file is moved aside first. Nothing is ever refused or delayed because of it:
writes are queued (bounded in bytes) for one writing thread, and what the queue cannot hold
while the database is locked or slow is dropped and counted, never waited for.

What a client chooses the size of is kept under a digest: a thread under its groupKey's digest.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Deque, Dict, Iterable, List, Optional, Tuple

from ..operations.backlog import Backlog
from .ledger import State
from .threads import MAX_THREADS, Row as ThreadRow, group_digest

log = logging.getLogger("rcwebhook")

FILE_NAME = "state.sqlite3"
STATE_TTL = 7 * 86400.0  # a posted state is forgotten this long after its last post
MAX_STATES = 20_000  # rows kept at most, as many as the ledger holds; the oldest go first
PACING_TTL = 86400.0
MAX_HOOK_POSTS = 10_000  # recent posts kept, all hooks together: pacing needs a window's worth
PRUNE_EVERY = 500  # writes between two prunings, so that the file stays bounded while running
MAX_QUEUED_BYTES = 4 * 1024 * 1024  # writes waiting for the writing thread; beyond, new ones are dropped
LOCK_RETRY = 0.5  # seconds between two tries while another process holds the database's lock
BUSY_TIMEOUT = 1.0  # SQLite's wait for a lock, on the writing thread only (never a request's)
SETTLE_WAIT = 2.0  # at most this long a read (at start) or close waits for the queued writes
SCHEMA_VERSION = 1  # 1: threads are kept under group_digest(groupKey), not the groupKey itself

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
CREATE TABLE IF NOT EXISTS posted_run (id INTEGER PRIMARY KEY, records BLOB NOT NULL);
"""

Row = Tuple[str, str, State, float, float]  # route, alert key, state, posted at, confirmed at
_SAVE_STATE = "INSERT OR REPLACE INTO alert_state VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SAVE_THREAD = "INSERT OR REPLACE INTO thread VALUES (?, ?, ?, ?, ?, ?)"


def hook_id(url: str) -> str:
    """Return the name a hook's pacing is kept under: a digest, so the token is not written to disk."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]


Work = Callable[[object], object]  # one write: given the open database, runs its statements
# What is in memory, to write into a new file: alert states, threads, runs of the compact record of posted states.
Recall = Callable[[], Tuple[List[Row], List[ThreadRow], List[Tuple[int, bytes]]]]


class Store:
    """The SQLite database in STATE_DIR, or nothing at all (`directory` empty): every call is safe.

    Reads happen at start (and when a courier starts, from memory); writes go to a queue that one
    thread empties, so that no request and no courier ever waits on the disk or another process."""

    def __init__(self, directory: str, wall=time.time, thread_ttl: float = 7 * 86400.0,
                 on_error: Callable[[], object] = lambda: None,
                 on_drop: Callable[[int], object] = lambda count: None) -> None:
        self.directory = directory
        self.wall = wall
        self.thread_ttl = thread_ttl
        self.on_error = on_error  # called on every database error, for the metrics
        self.on_drop = on_drop  # called with the number of writes dropped, for the metrics
        self.lock = threading.RLock()  # the connection's (reopening it prunes, inside)
        self.db = None
        self.failed = False
        self.locked = False  # the last transaction found the database locked by another process
        self.writes = 0
        self.identity: Optional[Tuple[int, int]] = None  # the file's (st_dev, st_ino) when opened
        self.recall: Optional[Recall] = None  # what is in memory, for a new file
        self.posts: Dict[str, Deque[float]] = {}  # each hook's recent posts, as saved
        self.backlog = Backlog(MAX_QUEUED_BYTES)  # the writing thread's: (what, work)
        self.dropping = False  # writes are being dropped (told once per episode)
        self.writer: Optional[threading.Thread] = None
        if directory:
            self._open()
            self._load_posts()

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
                db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT, check_same_thread=False, isolation_level=None)
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                except sqlite3.OperationalError as exc:
                    if not _is_locked(exc):  # locked: another process has it open, in the mode it has
                        raise
                db.execute("PRAGMA synchronous=NORMAL")
                if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                    raise sqlite3.DatabaseError("quick_check failed")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                existed = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'thread'").fetchone()[0]
                try:
                    db.executescript(_SCHEMA)
                    if version < SCHEMA_VERSION:
                        _migrate(db, version if existed else SCHEMA_VERSION)
                except sqlite3.OperationalError as exc:
                    # Another process holds the write lock: the tables are there if this is not a new file.
                    if not _is_locked(exc) or not existed:
                        raise
                try:
                    stat = os.stat(path)
                    self.identity = (stat.st_dev, stat.st_ino)
                except OSError:
                    self.identity = None
                self.db = db
                self.failed = False
                self._prune()
                return
            except sqlite3.DatabaseError as exc:
                if attempt == 1 and path.exists() and _is_corruption(exc):
                    aside = path.with_name(f"{FILE_NAME}.corrupt-{int(self.wall())}")
                    log.error("The state database %s is corrupt (%s): moved it aside to %s and started a new one",
                              path, exc, aside.name)
                    with contextlib.suppress(OSError):
                        os.replace(path, aside)
                        _remove_log(path)
                    continue
                self._fail(f"cannot be opened: {exc}")
                return
            except OSError as exc:
                self._fail(f"cannot be opened: {exc.strerror or exc}")
                return

    def _fail(self, why: str) -> None:
        """Log once and go on without the database."""
        self.on_error()
        if not self.failed:
            log.error("The state database in STATE_DIR=%s %s; going on with state in memory only: a restart "
                      "may post again what was posted, and Rocket.Chat's rate limit starts afresh",
                      self.directory, why)
        self.failed = True
        self._close_db()

    def _close_db(self) -> None:
        if self.db is not None:
            with contextlib.suppress(Exception):  # closing a broken database must not fail too
                self.db.close()
        self.db = None

    def _run(self, what: str, work: Work) -> object:
        """Run `work(db)` in a transaction and return its result; None when the database is locked by another
        process (said once, and `locked` set) or failed (then state stays in memory)."""
        import sqlite3

        with self.lock:
            if self.db is None:
                return None
            try:
                self.db.execute("BEGIN")
                result = work(self.db)
                self.db.execute("COMMIT")
                if self.locked:
                    log.warning("The state database %s can be written again", self.path)
                self.locked = False
                return result
            except (sqlite3.Error, OSError) as exc:
                if not _is_locked(exc):
                    self._fail(f"failed while {what}: {exc}")
                    return None
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
                self.on_error()
                if not self.locked:
                    log.error("The state database %s is locked by another process (%s): changes wait in memory "
                              "(up to %d KiB) and are tried again every %gs; beyond that they are dropped and "
                              "counted in rcwebhook_state_writes_dropped_total, and a restart may post them again",
                              self.path, exc, MAX_QUEUED_BYTES // 1024, LOCK_RETRY)
                self.locked = True
                return None

    # --- the writing thread ----------------------------------------------------------------

    def _submit(self, what: str, work: Work, size: int) -> None:
        """Queue a write for the writing thread; drop it (and count it) when the queue is full."""
        if self.db is None:
            return
        with self.backlog.cond:
            if self.backlog.closing:
                return
            if self.backlog.items and self.backlog.size + size > MAX_QUEUED_BYTES:
                if not self.dropping:
                    self.dropping = True
                    log.error("The state database %s cannot keep up (%s): changes beyond %d KiB waiting are "
                              "dropped and counted in rcwebhook_state_writes_dropped_total; a restart may post "
                              "them again", self.path, "locked by another process" if self.locked else "slow",
                              MAX_QUEUED_BYTES // 1024)
                self.on_drop(1)
                return
            self.backlog.add((what, work), size)
            if self.writer is None:
                self.writer = threading.Thread(target=self._write_loop, name="state writer", daemon=True)
                self.writer.start()

    def _write_loop(self) -> None:
        backlog = self.backlog
        for batch in iter(lambda: backlog.take(every=True), []):
            self._check_identity()
            done = self._run(batch[0][0] if len(batch) == 1 else "saving changes",  # a list: never None
                             lambda db: [work(db) for _, work in batch]) is not None or self.db is None
            with backlog.cond:
                backlog.writing = False
                # close() may have emptied the queue; failed, the state is in memory only from here on
                if done:
                    backlog.forget(len(backlog.items) if self.db is None else len(batch))
                    if self.dropping and not backlog.items:
                        self.dropping = False
                        log.warning("The state database %s keeps up again", self.path)
                backlog.cond.notify_all()
                if not done:  # locked by another process: try again a little later
                    backlog.cond.wait(LOCK_RETRY)
            if done:
                before, self.writes = self.writes, self.writes + len(batch)
                if before // PRUNE_EVERY != self.writes // PRUNE_EVERY:
                    self._prune()

    def _check_identity(self) -> None:
        """Notice when the file was deleted or replaced under the open connection: open it anew and write
        into it what is in memory (the writing thread calls this before each batch)."""
        path = self.path
        if self.db is None or path is None or self.identity is None:
            return
        try:
            stat = os.stat(path)
            if (stat.st_dev, stat.st_ino) == self.identity:
                return
            what = "replaced"
        except OSError:
            what = "deleted"
        with self.lock:
            self._close_db()
            if what == "deleted":  # a write-ahead log left without its database must not meet the new one
                _remove_log(path)
            self._open()
        if self.db is None:
            return  # _fail said why
        rows, threads, runs = self.recall() if self.recall is not None else ([], [], [])
        log.error("The state database %s was %s while rcwebhook was running: opened it anew and wrote into it "
                  "the %d alert states and %d open threads held in memory", path, what, len(rows), len(threads))
        self.on_error()
        states = [_state_values(row) for row in rows]
        self._run("writing the state held in memory", lambda db: (
            db.executemany(_SAVE_STATE, states), db.executemany(_SAVE_THREAD, threads),
            db.executemany("INSERT OR REPLACE INTO posted_run VALUES (?, ?)", runs),
            db.executemany("INSERT INTO hook_post VALUES (?, ?)",
                           [(hook, sent) for hook, sent_at in self.posts.items() for sent in sent_at])))

    def _settle(self, timeout: float = SETTLE_WAIT) -> None:
        """Wait (up to `timeout`) until the queued writes are written, for a read to see them."""
        self.backlog.idle(timeout, lambda: self.db is None)

    def _read(self, what: str, query: str, *parameters: float) -> list:
        """Return the rows of `query` once the queued writes are written; none if the database failed."""
        self._settle()
        return self._run(what, lambda db: db.execute(query, parameters).fetchall()) or []

    # --- alert states ------------------------------------------------------------------

    def load_states(self) -> List[Row]:
        """Return the posted states kept from earlier runs."""
        rows = self._read("reading the alert states", "SELECT route, alert, status, starts, ends, asof, "
                          "posted_at, confirmed_at FROM alert_state ORDER BY posted_at")
        return [(r[0], r[1], State(*r[2:6]), r[6], r[7]) for r in rows]

    def save_states(self, rows: Iterable[Row]) -> None:
        """Remember posted (or acknowledged) states."""
        values = [_state_values(row) for row in rows]
        if values:
            self._submit("saving alert states", lambda db: db.executemany(_SAVE_STATE, values),
                         sum(_size(v) for v in values))

    # --- threads ---------------------------------------------------------------------------

    def load_threads(self, since: float) -> List[ThreadRow]:
        """Return the open threads whose last post is after `since`."""
        return [ThreadRow(*row) for row in self._read(
            "reading the threads", "SELECT hook, group_key, root, started, last_post, alerts "
            "FROM thread WHERE last_post >= ? ORDER BY last_post", since)]

    def save_threads(self, opened: Iterable[ThreadRow], ended: Iterable[Tuple[str, str]]) -> None:
        """Remember opened or changed threads and forget ended ones, in one transaction."""
        opened, ended = list(opened), list(ended)
        if opened or ended:
            self._submit("saving threads", lambda db: (
                db.executemany(_SAVE_THREAD, opened),
                db.executemany("DELETE FROM thread WHERE hook = ? AND group_key = ?", ended)),
                sum(map(_size, opened + ended)))

    # --- the compact record of states posted (ledger.Posted) ----------------------------------

    def load_runs(self) -> List[Tuple[int, bytes]]:
        """Return the runs of compact records kept from earlier runs, oldest first."""
        return [(ident, bytes(records)) for ident, records in self._read(
            "reading the record of posted states", "SELECT id, records FROM posted_run ORDER BY id")]

    def save_runs(self, runs: List[Tuple[int, bytes]]) -> None:
        """Keep exactly these runs (a new list: the queue holds it): write the new ones, forget the rest."""

        def save(db) -> None:
            kept = {ident for (ident,) in db.execute("SELECT id FROM posted_run")}
            wanted = {ident for ident, _ in runs}
            db.executemany("DELETE FROM posted_run WHERE id = ?", [(ident,) for ident in kept - wanted])
            db.executemany("INSERT INTO posted_run VALUES (?, ?)",
                           [(ident, run) for ident, run in runs if ident not in kept])

        # The queue holds the runs by reference (the ledger keeps them anyway): counted as one small write.
        self._submit("saving the record of posted states", save, 64 * len(runs))

    # --- pacing ---------------------------------------------------------------------------

    def _load_posts(self) -> None:
        query = "SELECT hook, sent_at FROM hook_post WHERE sent_at >= ? ORDER BY sent_at"
        for hook, sent_at in self._read("reading the hooks' posts", query, self.wall() - PACING_TTL):
            self._keep_post(hook, sent_at)

    def _keep_post(self, hook: str, sent_at: float) -> None:
        kept = self.posts.setdefault(hook, deque())
        kept.append(sent_at)
        while kept and (len(kept) > MAX_HOOK_POSTS or kept[0] < sent_at - PACING_TTL):
            kept.popleft()

    def recent_posts(self, hook: str, since: float) -> List[float]:
        """Return the wall times of the posts to `hook` since `since`, oldest first (from memory)."""
        with self.backlog.cond:
            return [sent for sent in self.posts.get(hook, ()) if sent >= since]

    def record_post(self, hook: str, sent_at: float) -> None:
        if self.db is None:
            return
        with self.backlog.cond:
            self._keep_post(hook, sent_at)
        self._submit("recording a post", lambda db: db.execute("INSERT INTO hook_post VALUES (?, ?)",
                                                                (hook, sent_at)), 64)

    # --- upkeep -----------------------------------------------------------------------------

    def _prune(self) -> None:
        """Forget what is too old, and the oldest rows of each table beyond its bound."""
        now = self.wall()

        def prune(db) -> None:
            for table, column, ttl, most in (("alert_state", "posted_at", STATE_TTL, MAX_STATES),
                                             ("hook_post", "sent_at", PACING_TTL, MAX_HOOK_POSTS),
                                             ("thread", "last_post", self.thread_ttl, MAX_THREADS)):
                db.execute(f"DELETE FROM {table} WHERE {column} < ?", (now - ttl,))
                db.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} "
                           f"ORDER BY {column} DESC LIMIT -1 OFFSET ?)", (most,))

        self._run("pruning", prune)

    def size(self) -> int:
        """Return the database's size in bytes (with its write-ahead log), 0 without one."""
        if self.db is None:  # always, without STATE_DIR
            return 0
        total = 0
        for name in (f"{self.path}", f"{self.path}-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(name).st_size
        return total

    def close(self) -> None:
        """Write what is queued (waiting at most SETTLE_WAIT) and close the database."""
        self._settle()
        dropped = self.backlog.close(drop=True)
        if dropped:
            log.error("Stopped with %d changes not written to the state database %s (locked by another process?): "
                      "a restart may post them again", dropped, self.path)
            self.on_drop(dropped)
        with self.lock:
            self._close_db()


def _state_values(row: Row) -> tuple:
    route, key, state, posted_at, confirmed_at = row
    return (route, key, state.status, state.starts, state.ends, state.asof, posted_at, confirmed_at)


def _size(values: tuple) -> int:
    """Return about how many bytes a row's values take in the queue."""
    return 64 + sum(len(v) if isinstance(v, str) else 8 for v in values)


def _migrate(db, version: int) -> None:
    """Bring a database written by an older rcwebhook up to SCHEMA_VERSION, in place."""
    if version < 1:
        # Threads were kept under the whole groupKey (megabytes, when a client sends that): key them by digest,
        # which is what rcwebhook looks them up by now, and give the space back.
        db.create_function("rcwebhook_group_digest", 1, group_digest, deterministic=True)
        db.execute("BEGIN IMMEDIATE")
        before = db.execute("SELECT coalesce(sum(length(group_key)), 0) FROM thread").fetchone()[0]
        db.execute("UPDATE thread SET group_key = rcwebhook_group_digest(group_key)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
        if before > 1024 * 1024:
            db.execute("VACUUM")
        return
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _remove_log(path: Path) -> None:
    """Remove the write-ahead log (and its index) of the database at `path`."""
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(OSError):
            Path(f"{path}{suffix}").unlink()


def _is_locked(exc: Exception) -> bool:
    return any(word in str(exc).lower() for word in ("locked", "busy"))


def _is_corruption(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(word in text for word in ("malformed", "not a database", "quick_check", "corrupt"))
