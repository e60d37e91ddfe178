"""Logging: to the journal's native socket under systemd (with fields), else stderr; plus a rotating file
when LOG_FILE is set.

Nothing that logs waits for a destination: each has one writer thread fed through a queue bounded in
bytes, and an entry that does not fit (or that a full journal socket will not take) is dropped,
counted in rcwebhook_log_entries_dropped_total, and told once writing works again. Every value a
client sent is cut to VALUE_LIMIT characters (escaped, its full length noted) wherever it is logged.
"""

from __future__ import annotations

import array
import errno
import logging
import os
import re
import socket
import struct
import sys
import threading
import time
from typing import IO, Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Union

from ..config.secrets import redact
from .backlog import Backlog
from .metrics import LOG_DROPS

# A client's value (a groupKey, a receiver, an alert name, an error text) shows in a log line or a journal
# field with at most this many characters: a 4 MB groupKey must not make a 4 MB line.
VALUE_LIMIT = 300
# A whole entry, traceback included, and a value given as Whole (a dry run's rendered message).
LINE_LIMIT = 64 * 1024
JOURNAL_FIELD_VALUES = 20  # values of one journal field given as a list (the groupKeys of a merged post)
QUEUE_BYTES = 1024 * 1024  # entries waiting for one destination's writer, at most
JOURNAL_PATIENCE = 0.2  # seconds the writer waits for a full journal socket before dropping what it holds
FLUSH_WAIT = 2.0  # seconds flush() waits for a destination's queue to empty

# syslog priorities, as journald reads them from a `<N>` line prefix
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_PLAIN = "%(asctime)s %(levelname)s %(message)s"  # on stderr (not the journal's) and in LOG_FILE
# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators, as escapes:
# a value a client sent must not end a log line and forge the next one.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}
_ESCAPES.update({0x09: "\\t", 0x0a: "\\n", 0x0d: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})


_NEEDS_ESCAPE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def cut(text: str, limit: int) -> str:
    """Return `text`, or its first `limit` characters with an ellipsis and its full length when it is longer."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\u2026 ({len(text)} characters)"


class Whole(str):
    """Text shown in a log line up to LINE_LIMIT characters rather than VALUE_LIMIT: what a line is about
    (a dry run's rendered message), not a value quoted in passing."""

    __slots__ = ()


def escape(text: str) -> str:
    """Return `text` with control characters and line separators written as backslash escapes."""
    return text if _clean(text) else text.translate(_ESCAPES)


def _clean(text: str) -> bool:
    # isprintable() is False for every character escaped here (and for a few others, such as U+00A0,
    # which the search then clears): the quick answer for the most values, which hold none.
    return text.isprintable() or not _NEEDS_ESCAPE.search(text)


def _needs_change(arg: object) -> bool:
    return not (arg is None or isinstance(arg, (int, float))
                or (isinstance(arg, str) and len(arg) <= VALUE_LIMIT and _clean(arg)))


def shown(text: str, limit: int = VALUE_LIMIT, secrets: Sequence[str] = ()) -> str:
    """Return `text` as a log line shows it: escaped, and cut to `limit` characters with its full length noted
    (redacted before it is cut, so that no part of a secret is left where the cut falls)."""
    if len(text) <= limit and _clean(text):
        return text
    length = len(text)
    if length > limit:
        text = redact(text, secrets)
    escaped = escape(text[:limit])
    if length <= limit and len(escaped) <= limit:
        return escaped
    return f"{escaped[:limit]}\u2026 ({length} characters)"


class _Shown(NamedTuple):
    """A log argument that is not text, shown escaped and cut whether formatted with %s or %r."""

    value: object
    secrets: Sequence[str]

    def __str__(self) -> str:
        return shown(str(self.value), VALUE_LIMIT, self.secrets)

    def __repr__(self) -> str:
        return shown(repr(self.value), VALUE_LIMIT, self.secrets)


def _shown_arg(arg: object, secrets: Sequence[str]) -> object:
    if isinstance(arg, str):
        return shown(str(arg), LINE_LIMIT if isinstance(arg, Whole) else VALUE_LIMIT, secrets)
    if arg is None or isinstance(arg, (int, float)):
        return arg
    return _Shown(arg, secrets)


def _with_shown_args(record: logging.LogRecord, secrets: Sequence[str]) -> logging.LogRecord:
    """Return `record`, or a copy whose arguments are escaped and cut: the arguments are where client values
    enter a line (the messages are literals), so they are made safe here rather than at each call site."""
    args = record.args
    if not args or not any(map(_needs_change, args.values() if isinstance(args, dict) else args)):
        return record
    record = logging.makeLogRecord(record.__dict__)
    if isinstance(args, dict):
        record.args = {key: _shown_arg(value, secrets) for key, value in args.items()}
    else:
        record.args = tuple(_shown_arg(arg, secrets) for arg in args)
    return record


_TRACEBACKS = logging.Formatter()


def settled(record: logging.LogRecord, secrets: Sequence[str] = ()) -> logging.LogRecord:
    """Return a copy of `record` that can wait in a queue: its message made, every client value in it escaped
    and cut, its traceback as text, its journal fields cut; the line's size no longer depends on what a
    client sent."""
    copy = logging.makeLogRecord(record.__dict__)
    copy.msg = _line(_with_shown_args(record, secrets).getMessage(), secrets)
    copy.args = None
    if record.exc_info and not record.exc_text:
        copy.exc_text = _TRACEBACKS.formatException(record.exc_info)
    copy.exc_info = None
    if copy.exc_text:
        copy.exc_text = _line(copy.exc_text, secrets)
    if copy.stack_info:
        copy.stack_info = _line(copy.stack_info, secrets)
    journal = getattr(record, "journal", None)
    if journal:
        copy.journal = {name: _field_values(value, secrets) for name, value in journal.items()}
    return copy


def _line(text: str, secrets: Sequence[str], limit: int = LINE_LIMIT) -> str:
    return text if len(text) <= limit else cut(redact(text, secrets), limit)


def _field_values(value: "FieldValue", secrets: Sequence[str]) -> "FieldValue":
    if isinstance(value, str):
        return shown_field(value, secrets)
    return [shown_field(str(one), secrets) for one in list(value)[:JOURNAL_FIELD_VALUES]]


def _size(record: logging.LogRecord) -> int:
    """Return about how many bytes a settled record holds."""
    size = 256 + len(record.msg) + len(record.exc_text or "") + len(record.stack_info or "")
    for value in (getattr(record, "journal", None) or {}).values():
        size += len(value) if isinstance(value, str) else sum(map(len, value))
    return size


class RedactingFormatter(logging.Formatter):
    """A formatter that escapes and cuts client values, and replaces every known secret with *** in what it
    writes."""

    def __init__(self, fmt: str, secrets: Sequence[str]) -> None:
        super().__init__(fmt)
        self.secrets = secrets
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: Optional[str] = None) -> str:
        # strftime once a second, not once a line: the daemon logs a few lines per notification.
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        # The record is shared by every handler: a changed one is a copy.
        return _line(redact(super().format(_with_shown_args(record, self.secrets)), self.secrets), self.secrets)


class JournalFormatter(RedactingFormatter):
    """Lines prefixed with `<N>` so journald records each line's priority; journald adds the time."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


# --- the journal's native protocol ------------------------------------------------------------

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "rcwebhook"
# One fixed MESSAGE_ID per kind of event (`journalctl MESSAGE_ID=...`); never change them.
MESSAGE_IDS = {
    "received": "b4946d83978f4845bc214f29af8944c6",
    "delivered": "ee07d80aa35141fda5cd0b795496b077",
    "refused": "2327f63e9a5641b891fb15178f0d03a8",
    "retrying": "f86209d69f4c4b32abccf23b11aabf9f",
    "rate-limited": "b9dd5a5dce714cb585e3b23d701202c2",
    "reload": "46f56b6b23ef489cac952bc97828300d",
    "given-up": "8155d1d5395c4251bb6184e69f1b6ed9",
    "mention-refused": "6fde2135b86a46d680c384fab2d41e23",
    "impersonate-refused": "cca1692d89b7418ba56cf93f10eb1608",
}
FieldValue = Union[str, Sequence[str]]


def fields(event: str, route: FieldValue = "", hook: str = "", group_key: FieldValue = "", alerts: str = "",
           outcome: str = "") -> Dict[str, Dict[str, FieldValue]]:
    """Return logging's `extra=` for an event's journal fields: its MESSAGE_ID and the RCWEBHOOK_* that
    apply (a list gives the field once per value); hook URLs must come redacted."""
    found = {"MESSAGE_ID": MESSAGE_IDS[event], "RCWEBHOOK_EVENT": event, "RCWEBHOOK_ROUTE": route,
             "RCWEBHOOK_HOOK": hook, "RCWEBHOOK_GROUP_KEY": group_key, "RCWEBHOOK_ALERTS": alerts,
             "RCWEBHOOK_OUTCOME": outcome}
    return {"journal": {key: value for key, value in found.items() if value}}


def journal_field(name: str, value: str) -> bytes:
    """Return one field in the native protocol: KEY=value, or the length-prefixed form for a value with a
    newline."""
    data = value.encode("utf-8", "surrogateescape")
    if b"\n" not in data:
        return name.encode("ascii") + b"=" + data + b"\n"
    return name.encode("ascii") + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"


class JournalHandler(logging.Handler):
    """Entries sent to journald's native socket, with PRIORITY, MESSAGE_ID and the RCWEBHOOK_* fields.

    The socket is not connected: each entry is sent to the path, so a restarted journald is found again.
    An entry too large for a datagram goes in a sealed memfd, as the protocol has it. When the socket is
    full (journald not reading), the entry is dropped: stderr is then the journal's stream, which would
    hold the writer up too. When the socket is gone (journald stopped), the line goes to `fallback`.
    """

    def __init__(self, path: str, secrets: Sequence[str], fallback: IO[str]) -> None:
        super().__init__()
        self.path = path
        self.secrets = secrets
        self.setFormatter(RedactingFormatter("%(message)s", secrets))
        self.fallback = logging.StreamHandler(fallback)
        self.fallback.setFormatter(JournalFormatter("%(message)s", secrets))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)  # never held up by the journal: a full socket drops the entry
        self.stalled = False  # the last entry was dropped: the next one is not waited for

    def entry(self, record: logging.LogRecord) -> bytes:
        """Return the datagram for `record`."""
        parts = [journal_field("MESSAGE", self.format(record)),
                 b"PRIORITY=%d\n" % _PRIORITY.get(record.levelno, 6),
                 journal_field("SYSLOG_IDENTIFIER", IDENTIFIER),
                 journal_field("RCWEBHOOK_LOGGER", str(record.name))]
        for name, value in (getattr(record, "journal", None) or {}).items():
            value = _field_values(value, self.secrets)
            parts.extend(journal_field(name, one) for one in ([value] if isinstance(value, str) else value))
        return b"".join(parts)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if not self.deliver(record):
                LOG_DROPS.inc(destination="journal")
        except Exception:
            self.handleError(record)

    def deliver(self, record: logging.LogRecord) -> bool:
        """Send `record`; return False when the journal's socket stayed full for JOURNAL_PATIENCE (dropped)."""
        data = self.entry(record)
        deadline = time.monotonic() + JOURNAL_PATIENCE
        while True:
            try:
                self._send(data)
                self.stalled = False
                return True
            except BlockingIOError:
                if self.stalled or time.monotonic() >= deadline:
                    self.stalled = True
                    return False
                time.sleep(0.005)  # journald reads its socket many times a second when it is well
            except OSError:  # no journald at the path: stderr, as without one
                self.fallback.handle(record)
                return True

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendto(data, self.path)
        except OSError as exc:
            if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                raise
            self._send_memfd(data)

    def _send_memfd(self, data: bytes) -> None:
        import fcntl

        fd = os.memfd_create("rcwebhook-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
                        | fcntl.F_SEAL_SEAL)
            # socket.send_fds drops its address argument (CPython 3.9 to 3.12): sendmsg itself.
            self.sock.sendmsg([b""], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))], 0, self.path)
        finally:
            os.close(fd)

    def close(self) -> None:
        self.sock.close()
        super().close()


def shown_field(value: str, secrets: Sequence[str] = ()) -> str:
    """Return a journal field's value: redacted, and cut to VALUE_LIMIT characters (newlines are kept, the
    protocol carries them)."""
    return redact(_line(value, secrets, VALUE_LIMIT), secrets)


# --- not waiting for the destinations -------------------------------------------------------------

DESTINATIONS = {"journal": "the journal", "stderr": "stderr", "file": "LOG_FILE"}


class Outbox(logging.Handler):
    """One destination's handler, run by its own writer thread and fed through a queue of at most QUEUE_BYTES:
    logging never waits for the journal, a pipe or a disk. An entry that does not fit is dropped and
    counted, and the writer says how many were lost once it writes again."""

    def __init__(self, handler: logging.Handler, destination: str, secrets: Sequence[str],
                 limit: int = QUEUE_BYTES) -> None:
        super().__init__(handler.level)
        self.handler = handler
        self.destination = destination  # a key of DESTINATIONS
        self.secrets = secrets
        self.backlog = Backlog(limit)
        self.unsaid = 0  # entries dropped and not yet told
        LOG_DROPS.declare(destination=destination)
        threading.Thread(target=self._run, name=f"log-{destination}", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = self._settled(record)
        except Exception:
            self.handleError(record)
            return
        size = _size(entry)
        with self.backlog.cond:
            if self.backlog.closing or self.backlog.size + size > self.backlog.limit:
                self.unsaid += 1
                LOG_DROPS.inc(destination=self.destination)
                return
            self.backlog.add(entry, size)

    def _settled(self, record: logging.LogRecord) -> logging.LogRecord:
        # Several destinations get the same record: it is settled once for them all.
        done = record.__dict__.get("_rcwebhook_settled")
        if done is not None and done[0] is self.secrets:
            return done[1]
        entry = settled(record, self.secrets)
        record.__dict__["_rcwebhook_settled"] = (self.secrets, entry)
        return entry

    def _run(self) -> None:
        for (entry,) in iter(self.backlog.take, []):
            written = self._write(entry)
            with self.backlog.cond:
                if not written:
                    self.unsaid += 1
                    LOG_DROPS.inc(destination=self.destination)
                    continue
                lost, self.unsaid = self.unsaid, 0
            if lost:
                self._tell(lost)
        self.handler.close()

    def _write(self, entry: logging.LogRecord) -> bool:
        """Write one entry, waiting for the destination as long as it takes; False when it was dropped."""
        try:
            if isinstance(self.handler, JournalHandler):
                return self.handler.deliver(entry)
            if self.handler.filter(entry):
                self.handler.emit(entry)  # the writer is the handler's only user: no lock to take
        except Exception:
            self.handler.handleError(entry)
        return True

    def _tell(self, lost: int) -> None:
        notice = logging.makeLogRecord({
            "name": "rcwebhook", "levelno": logging.WARNING, "levelname": "WARNING",
            "msg": f"{lost} log entr{'y was' if lost == 1 else 'ies were'} dropped while "
                   f"{DESTINATIONS[self.destination]} was not accepting them (rcwebhook_log_entries_dropped_total)"})
        if not self._write(notice):
            with self.backlog.cond:
                self.unsaid += lost + 1
            LOG_DROPS.inc(destination=self.destination)

    def flush(self, timeout: float = FLUSH_WAIT) -> None:
        """Wait, up to `timeout` seconds, until every entry queued has been written."""
        self.backlog.idle(timeout)

    def close(self) -> None:
        """Let the writer write what is queued and end, closing the destination; without waiting for it (a reload
        replacing a stalled destination must not wait for it either)."""
        self.backlog.close()
        super().close()


def _destination(handler: logging.Handler) -> str:
    if isinstance(handler, JournalHandler):
        return "journal"
    return "file" if isinstance(handler, logging.FileHandler) else "stderr"


def flush(timeout: float = FLUSH_WAIT) -> None:
    """Wait, up to `timeout` seconds in all, until the `rcwebhook` logger's entries are written."""
    deadline = time.monotonic() + timeout
    for handler in logging.getLogger("rcwebhook").handlers:
        if isinstance(handler, Outbox):
            handler.flush(max(0.0, deadline - time.monotonic()))


def under_journal(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Return whether `stream` is connected to the journal, as $JOURNAL_STREAM tells."""
    try:  # unset or empty: no number, not the journal
        device, inode = (int(part) for part in environ.get("JOURNAL_STREAM", "").split(":"))
        status = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


def priority_prefix(stream: IO[str], environ: Mapping[str, str], level: int) -> str:
    """Return the `<N>` prefix that gives a line written to `stream` its syslog priority in the journal, or ''."""
    return f"<{_PRIORITY.get(level, 6)}>" if under_journal(stream, environ) else ""


def configure(level: str, *args: Any, **kwargs: Any) -> List[logging.Handler]:
    """Set up the `rcwebhook` logger with build_handlers(*args, **kwargs) and return its handlers;
    OSError when LOG_FILE cannot be opened."""
    handlers = build_handlers(*args, **kwargs)
    install(handlers, level)
    return handlers


def build_handlers(
    log_file: str = "",
    max_bytes: int = 0,
    backup_count: int = 0,
    secrets: Iterable[str] = (),
    stream: Optional[IO[str]] = None,
    environ: Mapping[str, str] = os.environ,
    journal_socket: str = JOURNAL_SOCKET,
) -> List[logging.Handler]:
    """Return the handlers for these settings, not yet in use; OSError when LOG_FILE cannot be opened.

    Under systemd (stderr is the journal stream) with journald's socket present, entries go to the
    socket with their fields; else to stderr (each line prefixed with its priority under systemd)."""
    stream = stream or sys.stderr
    secret_list = tuple(secret for secret in secrets if secret)  # the settings' own: a reload builds new handlers
    handlers: List[logging.Handler]
    journal = under_journal(stream, environ)
    if journal and os.path.exists(journal_socket):
        handlers = [JournalHandler(journal_socket, secret_list, stream)]
    else:
        handlers = [logging.StreamHandler(stream)]
        handlers[0].setFormatter(JournalFormatter("%(message)s", secret_list) if journal else
                                 RedactingFormatter(_PLAIN, secret_list))
    if log_file:
        from logging.handlers import RotatingFileHandler  # only with LOG_FILE: it brings pickle and more

        handlers.append(RotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backup_count,
                                            encoding="utf-8"))
        handlers[-1].setFormatter(RedactingFormatter(_PLAIN, secret_list))
    return handlers


def install(handlers: List[logging.Handler], level: str) -> None:
    """Make `handlers` the `rcwebhook` logger's own, each behind its own Outbox, closing the ones they replace;
    this cannot fail."""
    # No format here uses the caller's file and line, thread or process: do not compute them.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logger = logging.getLogger("rcwebhook")
    for old in [h for h in logger.handlers if isinstance(h, Outbox)]:
        logger.removeHandler(old)
        old.close()
    for handler in handlers:
        secrets = getattr(handler, "secrets", None) or getattr(handler.formatter, "secrets", None) or ()
        logger.addHandler(Outbox(handler, _destination(handler), secrets))
    logger.setLevel(level)
    logger.propagate = False
