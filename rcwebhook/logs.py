"""Logging: stderr always (journal-aware), plus a rotating file when LOG_FILE is set."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import IO, Iterable, List, Mapping, Optional

# syslog priorities, as journald reads them from a `<N>` line prefix
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_HANDLER_MARK = "_rcwebhook"


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
        text = super().format(record)
        for secret in self.secrets.values:
            text = text.replace(secret, "***")
        return text


class JournalFormatter(RedactingFormatter):
    """Lines prefixed with `<N>` so journald records each line's priority; journald adds the time."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class SecretList:
    """The secrets to keep out of logs; replaced whole when the settings change."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = tuple(v for v in values if v)


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
    stream = stream or sys.stderr
    secret_list = SecretList(secrets)
    # No format here uses the caller's file and line, thread or process: do not compute them.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if under_journal(stream, environ):
        stderr_format: logging.Formatter = JournalFormatter("%(message)s", secret_list)
    else:
        stderr_format = RedactingFormatter("%(asctime)s %(levelname)s %(message)s", secret_list)
    handlers: List[logging.Handler] = [logging.StreamHandler(stream)]
    handlers[0].setFormatter(stderr_format)
    if log_file:
        from logging.handlers import RotatingFileHandler  # only with LOG_FILE: it brings pickle and more

        file_handler = RotatingFileHandler(
            log_file, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        file_handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(message)s", secret_list))
        handlers.append(file_handler)
    logger = logging.getLogger("rcwebhook")
    for old in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        logger.removeHandler(old)
        old.close()
    for handler in handlers:
        setattr(handler, _HANDLER_MARK, True)
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handlers
