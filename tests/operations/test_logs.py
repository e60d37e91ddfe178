"""Logging set-up: rotation, journald priorities, secrets kept out."""

from __future__ import annotations

import io
import logging
import os
import re
import socket

import pytest

from rcwebhook.operations import logs


def test_log_file_rotates_at_max_bytes_keeping_backup_count(tmp_path, restore_logger):
    path = tmp_path / "rcwebhook.log"
    logs.configure("INFO", str(path), max_bytes=1000, backup_count=2, stream=io.StringIO(), environ={})
    for i in range(100):
        restore_logger.info("line %03d %s", i, "x" * 50)
    logs.flush()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["rcwebhook.log", "rcwebhook.log.1", "rcwebhook.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())
    assert "line 099" in path.read_text()


def test_secrets_are_masked_in_every_handler(tmp_path, restore_logger):
    stream = io.StringIO()
    path = tmp_path / "rcwebhook.log"
    logs.configure("DEBUG", str(path), 0, 0, secrets=["S3CR3T"], stream=stream, environ={})
    restore_logger.error("failed posting to https://h/hooks/id/S3CR3T: boom")
    logs.flush()
    for text in (stream.getvalue(), path.read_text()):
        assert "S3CR3T" not in text
        assert "https://h/hooks/id/***: boom" in text


def test_journal_format_only_when_stderr_is_the_journal_stream(tmp_path, restore_logger):
    with open(tmp_path / "err", "w") as stream:
        status = os.fstat(stream.fileno())
        # Where journald's socket is missing (on a host with journald it takes the entries instead).
        logs.install(logs.build_handlers(stream=stream, environ={"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"},
                                         journal_socket=str(tmp_path / "no-journald")), "INFO")
        restore_logger.error("two\nlines")
        restore_logger.warning("warned")
        restore_logger.debug("hidden")
        logs.flush()
    assert (tmp_path / "err").read_text() == "<3>two\n<3>lines\n<4>warned\n"


def test_inherited_journal_stream_of_another_file_is_ignored(tmp_path, restore_logger):
    stream = io.StringIO()
    logs.configure("INFO", stream=stream, environ={"JOURNAL_STREAM": "8:12345"})
    restore_logger.info("hello")
    logs.flush()
    assert not stream.getvalue().startswith("<")
    assert "INFO hello" in stream.getvalue()


def test_configure_twice_replaces_handlers(restore_logger):
    first, second = io.StringIO(), io.StringIO()
    logs.configure("INFO", stream=first, environ={})
    logs.configure("INFO", stream=second, environ={})
    restore_logger.info("once")
    logs.flush()
    assert first.getvalue() == "" and "once" in second.getvalue()


FORGED = "Alert sent successfully to Rocket.Chat: 200 (route=critical)"


@pytest.mark.parametrize("separator", ["\n", "\r\n", "\r", "\x1c", "\x0b", "\x85", "\u2028", "\u2029"])
def test_client_values_cannot_forge_a_log_line(restore_logger, start_daemon, separator):
    stream = io.StringIO()
    logs.configure("DEBUG", stream=stream, environ={})
    daemon = start_daemon(DRY_RUN="true")
    status, _, _ = daemon.post_json({"groupKey": f"g{separator}{FORGED}", "receiver": f"r{separator}{FORGED}",
                                     "alerts": [{"labels": {"alertname": "A"}}]})
    assert status == 200
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:  # the access log
        sock.sendall(f"GET /x{separator}{FORGED} HTTP/1.1\r\nHost: x\r\n\r\n".encode("utf-8"))
        assert sock.recv(65536).startswith(b"HTTP/1.1 4")
    logs.flush()
    lines = stream.getvalue().splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ", line) for line in lines), lines
    assert any("groupKey=g" in line and FORGED in line for line in lines)  # escaped, on its own line


def test_escape_shows_control_characters_as_escapes():
    assert logs.escape("a\nb\r\tc\x00\x7f\x85\u2028\u2029é") == "a\\nb\\r\\tc\\x00\\x7f\\x85\\u2028\\u2029é"


def test_a_request_that_times_out_is_logged_at_debug_not_info():
    """http.server's "Request timed out" (a connection left without a whole request) reads like an error
    after every notification; it is a DEBUG line."""
    import threading
    import time

    from rcwebhook.web.server import Server
    from tests.conftest import LogCapture, make_settings

    capture = LogCapture()
    logger = logging.getLogger("rcwebhook")
    saved_level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    server = Server(make_settings(PORT="0", DRY_RUN="true", REQUEST_TIMEOUT="1"))
    # A long poll interval: the socket's own timeout, not the serving loop's sweep, ends the request.
    thread = threading.Thread(target=server.serve_forever, args=(4,), daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # the headers never end
            assert sock.recv(65536) == b""  # closed by rcwebhook after REQUEST_TIMEOUT
        deadline = time.monotonic() + 10
        # Closed by http.server's read timeout, or (its head never came whole in the lobby) shed as slow.
        closing = ("Request timed out", "Shed a connection: slow")
        while not any(r.getMessage().startswith(closing) for r in capture.records):
            assert time.monotonic() < deadline, capture.text()
            time.sleep(0.01)
        timed_out = [r for r in capture.records if r.getMessage().startswith(closing)]
        assert [r.levelno for r in timed_out] == [logging.DEBUG]
    finally:
        server.shutdown()
        server.server_close()
        logger.removeHandler(capture)
        logger.setLevel(saved_level)


def test_a_notification_with_a_1_mb_group_key_makes_log_lines_of_under_2_kb(restore_logger, start_daemon,
                                                                             rocketchat):
    stream = io.StringIO()
    logs.configure("DEBUG", stream=stream, environ={})
    hook = rocketchat.add_hook("critical")
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=hook, ROCKETCHAT_WEBHOOK_WARNING=hook, ROCKETCHAT_RATE_LIMIT="0")
    payload = {"groupKey": "{}:" + "k" * 1024 * 1024, "receiver": "r" * 1024 * 1024, "status": "firing",
               "alerts": [{"labels": {"alertname": "A" * 100_000, "severity": "critical"}, "status": "firing",
                           "startsAt": "2030-01-01T00:00:00Z"}]}
    assert daemon.post_json(payload)[0] == 200
    logs.flush()
    lines = stream.getvalue().splitlines()
    assert any("Notification received" in line for line in lines), lines
    assert any("Alert sent successfully to Rocket.Chat: 200" in line for line in lines), lines
    assert max(map(len, lines)) < 2048, [line[:300] for line in lines if len(line) >= 2048]
    assert "(1048579 characters)" in stream.getvalue()  # the groupKey's full length, where it is cut


def test_a_stalled_log_file_holds_up_no_answer(tmp_path, restore_logger, start_daemon, rocketchat):
    """LOG_FILE on a disk that stopped taking writes: a FIFO whose buffer is full and that nobody reads."""
    import time

    path = tmp_path / "rcwebhook.log"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    filler = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        while True:
            os.write(filler, b"x" * 65536)
    except BlockingIOError:
        pass
    try:
        logs.configure("INFO", str(path), stream=io.StringIO(), environ={})
        hook = rocketchat.add_hook("critical")
        daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=hook, ROCKETCHAT_WEBHOOK_WARNING=hook,
                              ROCKETCHAT_RATE_LIMIT="0", DELIVERY_DEADLINE="5")
        for i in range(20):
            payload = {"groupKey": f"g{i}", "status": "firing", "receiver": "r",
                       "alerts": [{"labels": {"alertname": f"A{i}", "severity": "critical"}, "status": "firing"}]}
            started = time.monotonic()
            assert daemon.post_json(payload, timeout=6)[0] == 200, i
            assert time.monotonic() - started < 5
    finally:
        os.set_blocking(reader, True)

        def drain() -> None:
            try:
                while os.read(reader, 65536):
                    pass
            except OSError:
                pass
        import threading
        threading.Thread(target=drain, daemon=True).start()
    logs.flush()
    os.close(filler)


class StalledStream(io.StringIO):
    """A stream whose writes wait until `flowing` is set: a pipe nobody reads, then read again."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.flowing = threading.Event()

    def write(self, text: str) -> int:
        self.flowing.wait(30)
        return super().write(text)


def test_entries_beyond_the_queue_are_dropped_counted_and_told_once_writing_works(restore_logger):
    from rcwebhook.operations.metrics import LOG_DROPS

    stream = StalledStream()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.RedactingFormatter("%(levelname)s %(message)s", ()))
    outbox = logs.Outbox(handler, "stderr", (), limit=4000)
    restore_logger.addHandler(outbox)
    restore_logger.setLevel(logging.INFO)
    before = LOG_DROPS.value(destination="stderr")
    for i in range(100):  # about 300 bytes each: a dozen fit, the rest are dropped at once
        restore_logger.info("entry %03d", i)
    dropped = LOG_DROPS.value(destination="stderr") - before
    assert 50 < dropped < 100
    stream.flowing.set()
    outbox.flush(10)
    restore_logger.info("after")
    outbox.flush(10)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "INFO entry 000" and lines[-1] == "INFO after"
    assert f"WARNING {dropped:.0f} log entries were dropped while stderr was not accepting them " \
           "(rcwebhook_log_entries_dropped_total)" in lines
    assert len(lines) == 100 - dropped + 2
