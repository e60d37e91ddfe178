"""Logging: to the journal's native socket under systemd (with fields), else stderr; plus a rotating file
when LOG_FILE is set."""

from __future__ import annotations

import array
import errno
import logging
import os
import re
import socket
import struct
import sys
import time
from typing import IO, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from .config import redact

# syslog priorities, as journald reads them from a `<N>` line prefix
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_HANDLER_MARK = "_rcwebhook"
# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators, as escapes:
# a value a client sent must not end a log line and forge the next one.
_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}
_ESCAPES.update({0x09: "\\t", 0x0a: "\\n", 0x0d: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})


_NEEDS_ESCAPE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def escape(text: str) -> str:
    """Return `text` with control characters and line separators written as backslash escapes."""
    return text if _clean(text) else text.translate(_ESCAPES)


def _clean(text: str) -> bool:
    # isprintable() is False for every character escaped here (and for a few others, such as U+00A0,
    # which the search then clears): the quick answer for the most values, which hold none.
    return text.isprintable() or not _NEEDS_ESCAPE.search(text)


def _needs_escape(arg: object) -> bool:
    return not (arg is None or isinstance(arg, (int, float)) or (isinstance(arg, str) and _clean(arg)))


class _Escaped:
    """A log argument that is not text, shown escaped whether formatted with %s or %r."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __str__(self) -> str:
        return escape(str(self.value))

    def __repr__(self) -> str:
        return escape(repr(self.value))


def _escaped(arg: object) -> object:
    if isinstance(arg, str):
        return escape(arg)
    if arg is None or isinstance(arg, (int, float)):
        return arg
    return _Escaped(arg)


class RedactingFormatter(logging.Formatter):
    """A formatter that replaces every known secret with *** in what it writes."""

    def __init__(self, fmt: str, secrets: "SecretList") -> None:
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
        # The arguments are where client values enter a line (the messages are literals): escape
        # them all here rather than at each call site. The record is shared by every handler.
        args = record.args
        if args and any(map(_needs_escape, args.values() if isinstance(args, dict) else args)):
            record = logging.makeLogRecord(record.__dict__)
            if isinstance(record.args, dict):
                record.args = {key: _escaped(value) for key, value in record.args.items()}
            else:
                record.args = tuple(_escaped(arg) for arg in record.args)
        return redact(super().format(record), self.secrets.values)


class JournalFormatter(RedactingFormatter):
    """Lines prefixed with `<N>` so journald records each line's priority; journald adds the time."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class SecretList:
    """The secrets to keep out of logs; replaced whole when the settings change."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = tuple(v for v in values if v)


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
    An entry too large for a datagram goes in a sealed memfd, as the protocol has it. When the socket
    refuses an entry (journald gone, its queue full), the line goes to `fallback` (stderr) instead.
    """

    def __init__(self, path: str, secrets: "SecretList", fallback: IO[str]) -> None:
        super().__init__()
        self.path = path
        self.secrets = secrets
        self.formatter_ = RedactingFormatter("%(message)s", secrets)
        self.fallback = logging.StreamHandler(fallback)
        self.fallback.setFormatter(JournalFormatter("%(message)s", secrets))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)  # never hold the daemon up for the journal: fall back to stderr

    def entry(self, record: logging.LogRecord) -> bytes:
        """Return the datagram for `record`."""
        parts = [journal_field("MESSAGE", self.formatter_.format(record)),
                 b"PRIORITY=%d\n" % _PRIORITY.get(record.levelno, 6),
                 journal_field("SYSLOG_IDENTIFIER", IDENTIFIER),
                 journal_field("RCWEBHOOK_LOGGER", str(record.name))]
        for name, value in (getattr(record, "journal", None) or {}).items():
            for one in ([value] if isinstance(value, str) else value):
                parts.append(journal_field(name, redact(str(one), self.secrets.values)))
        return b"".join(parts)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = self.entry(record)
        except Exception:
            self.handleError(record)
            return
        try:
            try:
                self.sock.sendto(data, self.path)
            except OSError as exc:
                if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                    raise
                self._send_memfd(data)
        except OSError:
            self.fallback.handle(record)

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


def under_journal(stream: IO[str], environ: Mapping[str, str]) -> bool:
    """Return whether `stream` is connected to the journal, as $JOURNAL_STREAM tells."""
    value = environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        device, inode = (int(part) for part in value.split(":"))
        status = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


def priority_prefix(stream: IO[str], environ: Mapping[str, str], level: int) -> str:
    """Return the `<N>` prefix that gives a line written to `stream` its syslog priority in the journal, or ''."""
    return f"<{_PRIORITY.get(level, 6)}>" if under_journal(stream, environ) else ""


def configure(
    level: str,
    log_file: str = "",
    max_bytes: int = 0,
    backup_count: int = 0,
    secrets: Iterable[str] = (),
    stream: Optional[IO[str]] = None,
    environ: Mapping[str, str] = os.environ,
) -> List[logging.Handler]:
    """Set up the `rcwebhook` logger and return its handlers; OSError when LOG_FILE cannot be opened."""
    handlers = build_handlers(log_file, max_bytes, backup_count, secrets, stream, environ)
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
    secret_list = SecretList(secrets)
    handlers: List[logging.Handler]
    journal = under_journal(stream, environ)
    if journal and os.path.exists(journal_socket):
        handlers = [JournalHandler(journal_socket, secret_list, stream)]
    else:
        handlers = [logging.StreamHandler(stream)]
        handlers[0].setFormatter(JournalFormatter("%(message)s", secret_list) if journal else
                                 RedactingFormatter("%(asctime)s %(levelname)s %(message)s", secret_list))
    if log_file:
        from logging.handlers import RotatingFileHandler  # only with LOG_FILE: it brings pickle and more

        file_handler = RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        file_handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(message)s", secret_list))
        handlers.append(file_handler)
    return handlers


def install(handlers: List[logging.Handler], level: str) -> None:
    """Make `handlers` the `rcwebhook` logger's own, closing the ones they replace; this cannot fail."""
    # No format here uses the caller's file and line, thread or process: do not compute them.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logger = logging.getLogger("rcwebhook")
    for old in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        logger.removeHandler(old)
        old.close()
    for handler in handlers:
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
