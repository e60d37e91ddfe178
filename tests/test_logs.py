"""Logging set-up: rotation, journald priorities, secrets kept out."""

from __future__ import annotations

import io
import logging
import os

import pytest

from rcwebhook import logs


@pytest.fixture
def restore_logger():
    logger = logging.getLogger("rcwebhook")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    for handler in list(logger.handlers):
        if handler not in saved[0]:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_log_file_rotates_at_max_bytes_keeping_backup_count(tmp_path, restore_logger):
    path = tmp_path / "rcwebhook.log"
    logs.configure("INFO", str(path), max_bytes=1000, backup_count=2, stream=io.StringIO(), environ={})
    for i in range(100):
        restore_logger.info("line %03d %s", i, "x" * 50)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["rcwebhook.log", "rcwebhook.log.1", "rcwebhook.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    assert "line 099" in path.read_text()


def test_secrets_are_masked_in_every_handler(tmp_path, restore_logger):
    stream = io.StringIO()
    path = tmp_path / "rcwebhook.log"
    logs.configure("DEBUG", str(path), 0, 0, secrets=["S3CR3T"], stream=stream, environ={})
    restore_logger.error("failed posting to https://h/hooks/id/S3CR3T: boom")
    for text in (stream.getvalue(), path.read_text()):
        assert "S3CR3T" not in text
        assert "https://h/hooks/id/***: boom" in text


def test_journal_format_only_when_stderr_is_the_journal_stream(tmp_path, restore_logger):
    with open(tmp_path / "err", "w") as stream:
        status = os.fstat(stream.fileno())
        logs.configure("INFO", stream=stream, environ={"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"})
        restore_logger.error("two\nlines")
        restore_logger.warning("warned")
        restore_logger.debug("hidden")
    assert (tmp_path / "err").read_text() == "<3>two\n<3>lines\n<4>warned\n"


def test_inherited_journal_stream_of_another_file_is_ignored(tmp_path, restore_logger):
    stream = io.StringIO()
    logs.configure("INFO", stream=stream, environ={"JOURNAL_STREAM": "8:12345"})
    restore_logger.info("hello")
    assert not stream.getvalue().startswith("<")
    assert "INFO hello" in stream.getvalue()


def test_configure_twice_replaces_handlers(restore_logger):
    first, second = io.StringIO(), io.StringIO()
    logs.configure("INFO", stream=first, environ={})
    logs.configure("INFO", stream=second, environ={})
    restore_logger.info("once")
    assert first.getvalue() == "" and "once" in second.getvalue()
