"""Journal entries with fields: the native protocol, read back from a datagram socket the test binds."""

from __future__ import annotations

import logging
import http.client
import os
import socket
import struct
import threading
import time
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

from rcwebhook.operations import logs
from tests.conftest import load_example

STALLED_NOTICE = "were dropped while the journal was not accepting them"


def parse_entry(data: bytes) -> Dict[str, List[str]]:
    """Return the fields of one native-protocol datagram (KEY=value lines, or KEY\\n<le64 size><value>\\n)."""
    fields: Dict[str, List[str]] = {}
    i = 0
    while i < len(data):
        end = data.index(b"\n", i)
        line = data[i:end]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            i = end + 1
        else:
            key = line
            (size,) = struct.unpack("<Q", data[end + 1:end + 9])
            value = data[end + 9:end + 9 + size]
            assert data[end + 9 + size:end + 10 + size] == b"\n", data
            i = end + 10 + size
        assert key and key.upper() == key and not key.startswith(b"_"), key
        fields.setdefault(key.decode("ascii"), []).append(value.decode("utf-8"))
    return fields


class Journal:
    """A datagram socket standing for journald's, collecting the entries sent to it."""

    def __init__(self, path: str, sock: Optional[socket.socket] = None) -> None:
        self.path = path
        if sock is None:  # else a bound socket that was not read so far
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock = sock
        self.entries: List[Dict[str, List[str]]] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 1)
            except OSError:
                return
            for fd in fds:  # a large entry comes as a sealed memfd
                with os.fdopen(fd, "rb") as f:
                    f.seek(0)  # the sender's writes moved the offset both ends use; journald maps it whole
                    data = f.read()
            with self.cond:
                self.entries.append(parse_entry(data))
                self.cond.notify_all()

    def wait_for(self, what: str, match, timeout: float = 10.0) -> Dict[str, List[str]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [e for e in self.entries if match(e)]
                if found:
                    return found[0]
                left = deadline - time.monotonic()
                assert left > 0, f"no journal entry {what} within {timeout:g}s; got {self.entries}"
                self.cond.wait(left)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def journal(tmp_path) -> Iterator[Journal]:
    j = Journal(str(tmp_path / "socket"))
    yield j
    j.close()


def journal_stream(tmp_path):
    """Return stderr standing for systemd's journal stream, and the environment that says it is one."""
    stream = open(tmp_path / "stderr", "w")
    status = os.fstat(stream.fileno())
    return stream, {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}


@pytest.fixture
def journal_logging(tmp_path, journal) -> Iterator[logging.Logger]:
    """The rcwebhook logger writing to the test's journal socket, as under systemd."""
    logger = logging.getLogger("rcwebhook")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    stream, environ = journal_stream(tmp_path)
    handlers = logs.build_handlers(secrets=["S3CR3T-T0KEN"], stream=stream, environ=environ,
                                   journal_socket=journal.path)
    assert [type(h) for h in handlers] == [logs.JournalHandler]
    for handler in handlers:
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(saved[1])
    stream.close()


def one(entry: Dict[str, List[str]], key: str) -> Optional[str]:
    values = entry.get(key, [])
    assert len(values) <= 1, (key, values)
    return values[0] if values else None


def test_a_delivery_and_a_refusal_carry_route_hook_group_alerts_outcome(journal_logging, journal, start_daemon,
                                                                        rocketchat):
    hook = rocketchat.add_hook("critical")
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=hook, ROCKETCHAT_WEBHOOK_WARNING=hook,
                          ROCKETCHAT_RATE_LIMIT="0", DEDUP_WINDOW="0")
    token = rocketchat.token("critical")
    redacted = f"{rocketchat.base_url}/hooks/{rocketchat.integration_id('critical')}/***"
    assert daemon.post_json(load_example())[0] == 200
    group = load_example()["groupKey"]

    delivered = journal.wait_for("of a delivery", lambda e: e.get("RCWEBHOOK_EVENT") == ["delivered"])
    assert one(delivered, "MESSAGE").startswith("Alert sent successfully to Rocket.Chat: 200 (route=critical")
    assert one(delivered, "PRIORITY") == "6" and one(delivered, "SYSLOG_IDENTIFIER") == "rcwebhook"
    assert one(delivered, "MESSAGE_ID") == logs.MESSAGE_IDS["delivered"] == "ee07d80aa35141fda5cd0b795496b077"
    # Both routes use one hook: the merged post carries both.
    assert delivered["RCWEBHOOK_ROUTE"] == ["critical", "warning"]
    assert one(delivered, "RCWEBHOOK_HOOK") == redacted
    assert one(delivered, "RCWEBHOOK_GROUP_KEY") == group
    assert one(delivered, "RCWEBHOOK_ALERTS") == "HighCPUUsage,HighMemoryUsage"
    assert one(delivered, "RCWEBHOOK_OUTCOME") == "accepted"
    received = journal.wait_for("of the notification", lambda e: e.get("RCWEBHOOK_EVENT") == ["received"])
    assert one(received, "RCWEBHOOK_GROUP_KEY") == group and one(received, "MESSAGE").startswith("Notification")

    rocketchat.fail_next("critical", 1, status=400, error="Invalid href value provided")
    payload = load_example()
    payload["alerts"][0]["startsAt"] = "2030-01-01T00:00:00Z"
    assert daemon.post_json(payload)[0] == 502
    refused = journal.wait_for("of a refusal", lambda e: e.get("RCWEBHOOK_EVENT") == ["refused"])
    assert one(refused, "PRIORITY") == "3" and one(refused, "MESSAGE_ID") == logs.MESSAGE_IDS["refused"]
    assert "Invalid href value provided" in one(refused, "MESSAGE")
    assert one(refused, "RCWEBHOOK_OUTCOME") == "refused" and one(refused, "RCWEBHOOK_HOOK") == redacted

    rocketchat.fail_next("critical", 1, status=503, error="Service Unavailable")
    payload["alerts"][0]["startsAt"] = "2030-01-01T00:01:00Z"
    assert daemon.post_json(payload)[0] == 200
    retrying = journal.wait_for("of a retry", lambda e: e.get("RCWEBHOOK_EVENT") == ["retrying"])
    assert one(retrying, "PRIORITY") == "4" and one(retrying, "RCWEBHOOK_OUTCOME") == "failed"
    assert one(retrying, "MESSAGE_ID") == logs.MESSAGE_IDS["retrying"]

    rocketchat.fail_next("critical", 1, status=429, error="Error, too many requests. Please slow down. "
                         "You must wait 1 seconds before trying this endpoint again.")
    payload["alerts"][0]["startsAt"] = "2030-01-01T00:02:00Z"
    assert daemon.post_json(payload)[0] == 200
    limited = journal.wait_for("of a 429", lambda e: e.get("RCWEBHOOK_EVENT") == ["rate-limited"])
    assert one(limited, "MESSAGE_ID") == logs.MESSAGE_IDS["rate-limited"]
    with journal.cond:
        assert all(token not in str(entry) for entry in journal.entries)


def test_newlines_go_length_prefixed_and_secrets_are_redacted(journal_logging, journal):
    try:
        raise ValueError("boom")
    except ValueError:
        journal_logging.exception("Posting to https://h/hooks/id/S3CR3T-T0KEN failed",
                                  extra=logs.fields("retrying", route="critical", group_key="{}:{a=\"x\ny\"}",
                                                    hook="https://h/hooks/id/S3CR3T-T0KEN", outcome="failed"))
    entry = journal.wait_for("of the exception", lambda e: e.get("RCWEBHOOK_EVENT") == ["retrying"])
    message = one(entry, "MESSAGE")
    assert message.startswith("Posting to https://h/hooks/id/*** failed\nTraceback")
    assert "ValueError: boom" in message
    assert one(entry, "RCWEBHOOK_GROUP_KEY") == '{}:{a="x\ny"}'  # sent whole, newline and all
    assert one(entry, "RCWEBHOOK_HOOK") == "https://h/hooks/id/***"
    assert one(entry, "PRIORITY") == "3"
    assert "S3CR3T-T0KEN" not in str(journal.entries)


def test_a_client_value_is_escaped_in_message_as_on_stderr(journal_logging, journal):
    journal_logging.info("Notification received: groupKey=%s", "g\nAlert sent successfully")
    entry = journal.wait_for("of the line", lambda e: "groupKey" in (one(e, "MESSAGE") or ""))
    assert one(entry, "MESSAGE") == "Notification received: groupKey=g\\nAlert sent successfully"
    assert "MESSAGE_ID" not in entry  # an entry without fields is a plain one


def test_an_entry_too_large_for_a_datagram_goes_in_a_memfd(journal_logging, journal):
    [handler] = [h for h in journal_logging.handlers if isinstance(h, logs.JournalHandler)]
    handler.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # a host whose datagrams are small
    big = "x" * 60000  # a dry run's rendered message, which is logged whole
    journal_logging.warning("large %s", logs.Whole(big), extra=logs.fields("given-up", route="info"))
    entry = journal.wait_for("of the large line", lambda e: e.get("RCWEBHOOK_EVENT") == ["given-up"])
    assert one(entry, "MESSAGE") == "large " + big and one(entry, "RCWEBHOOK_ROUTE") == "info"


def test_client_values_are_cut_in_message_and_fields(journal_logging, journal):
    big = "<" * (2 * 1024 * 1024)
    journal_logging.info("Notification received: groupKey=%s", big,
                         extra=logs.fields("received", group_key=big, route=["critical"], alerts="a" * 5000))
    entry = journal.wait_for("of the line", lambda e: e.get("RCWEBHOOK_EVENT") == ["received"])
    message = one(entry, "MESSAGE")
    assert message == f"Notification received: groupKey={'<' * logs.VALUE_LIMIT}\u2026 (2097152 characters)"
    assert one(entry, "RCWEBHOOK_GROUP_KEY") == f"{'<' * logs.VALUE_LIMIT}\u2026 (2097152 characters)"
    assert one(entry, "RCWEBHOOK_ALERTS") == f"{'a' * logs.VALUE_LIMIT}\u2026 (5000 characters)"
    assert one(entry, "RCWEBHOOK_ROUTE") == "critical"


def test_stderr_when_the_socket_is_missing_or_refuses(tmp_path):
    stream, environ = journal_stream(tmp_path)
    missing = logs.build_handlers(stream=stream, environ=environ, journal_socket=str(tmp_path / "none"))
    assert [type(h) for h in missing] == [logging.StreamHandler]
    assert not any(isinstance(h, logs.JournalHandler) for h in logs.build_handlers(
        stream=stream, environ={}, journal_socket=str(tmp_path / "none")))

    # A socket file no one reads (journald stopped): each line falls back to stderr, its priority prefixed.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(tmp_path / "dead"))
    dead.close()
    [handler] = logs.build_handlers(stream=stream, environ=environ, journal_socket=str(tmp_path / "dead"))
    assert isinstance(handler, logs.JournalHandler)
    logger = logging.getLogger("rcwebhook.test-journal-fallback")
    logger.addHandler(handler)
    try:
        logger.error("Rocket.Chat refused the post", extra=logs.fields("refused", route="critical"))
    finally:
        logger.removeHandler(handler)
        handler.close()
    stream.close()
    assert (tmp_path / "stderr").read_text() == "<3>Rocket.Chat refused the post\n"


def test_message_ids_are_fixed_128_bit_ids_one_per_kind():
    ids = logs.MESSAGE_IDS
    assert set(ids) >= {"delivered", "refused", "retrying", "rate-limited", "reload", "given-up"}
    assert len(set(ids.values())) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids.values())


def full_pipe() -> Tuple[int, int]:
    """Return a pipe (read end, write end) whose buffer is full: the next write to it blocks."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"x" * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    return read_end, write_end


def stalled_journal(path: str) -> socket.socket:
    """Return a datagram socket bound at `path` whose queue is full: journald not reading."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    # One sender stops at its own send buffer, which may come before the queue is full (journald's
    # net.unix.max_dgram_qlen is 512 where systemd sets it, 10 by the kernel's default): senders are
    # added until a new one cannot send at all.
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as filler:
            filler.setblocking(False)
            sent = 0
            try:
                while True:
                    filler.sendto(b"MESSAGE=filler\n", path)
                    sent += 1
            except BlockingIOError:
                if sent == 0:
                    break
    return sock


def drain(fd: int) -> threading.Thread:
    """Read `fd` until it is closed, in a thread."""
    def read() -> None:
        try:
            while os.read(fd, 65536):
                pass
        except OSError:
            pass
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def dropped(daemon, destination: str) -> float:
    """Return rcwebhook_log_entries_dropped_total of `destination`, as /metrics shows it."""
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
    finally:
        conn.close()
    prefix = f'rcwebhook_log_entries_dropped_total{{destination="{destination}"}} '
    return float(next((line[len(prefix):] for line in body.splitlines() if line.startswith(prefix)), "0"))


def fired(i: int) -> Dict:
    payload = load_example()
    for alert in payload["alerts"]:
        alert["startsAt"] = f"2030-01-01T00:{i:02d}:00Z"
    return payload


def test_a_stalled_journal_holds_up_no_answer_and_the_loss_is_counted_and_told(tmp_path, restore_logger,
                                                                               start_daemon, rocketchat):
    path = str(tmp_path / "journal-socket")
    sock = stalled_journal(path)
    read_end, write_end = full_pipe()  # stderr, the journal's stream under systemd: as stalled
    stream = open(write_end, "w")
    status = os.fstat(write_end)
    environ = {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}
    try:
        logs.install(logs.build_handlers(stream=stream, environ=environ, journal_socket=path), "INFO")
        hook = rocketchat.add_hook("critical")
        daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=hook, ROCKETCHAT_WEBHOOK_WARNING=hook,
                              ROCKETCHAT_RATE_LIMIT="0", DELIVERY_DEADLINE="5")
        before = dropped(daemon, "journal")
        took = []
        for i in range(20):
            started = time.monotonic()
            assert daemon.post_json(fired(i), timeout=6)[0] == 200, i
            took.append(time.monotonic() - started)
        assert max(took) < 5, took
        assert len(rocketchat.messages("critical")) >= 20
        deadline = time.monotonic() + 10  # the writer waits JOURNAL_PATIENCE before it drops the first
        while dropped(daemon, "journal") <= before:
            assert time.monotonic() < deadline, "no entry counted as dropped"
            logs.flush(0.1)

        journal = Journal(path, sock)  # journald reads again: the next entry says how many were lost
        deadline = time.monotonic() + 10
        while not any(STALLED_NOTICE in (one(e, "MESSAGE") or "") for e in list(journal.entries)):
            assert time.monotonic() < deadline, "no entry told of the entries dropped"
            restore_logger.info("still logging")
            logs.flush()
        notice = journal.wait_for("telling of the loss", lambda e: STALLED_NOTICE in (one(e, "MESSAGE") or ""))
        lost = int(one(notice, "MESSAGE").split()[0])
        assert lost > 0 and one(notice, "PRIORITY") == "4"
    finally:
        drain(read_end)
        sock.close()
    logs.flush()
    stream.close()
    os.close(read_end)


def test_a_stalled_stderr_holds_up_no_answer_and_is_written_when_it_drains(tmp_path, restore_logger, start_daemon,
                                                                           rocketchat):
    read_end, write_end = full_pipe()
    stream = open(write_end, "w")
    try:
        logs.install(logs.build_handlers(stream=stream, environ={}), "INFO")
        hook = rocketchat.add_hook("critical")
        daemon = start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=hook, ROCKETCHAT_WEBHOOK_WARNING=hook,
                              ROCKETCHAT_RATE_LIMIT="0", DELIVERY_DEADLINE="5")
        for i in range(20):
            started = time.monotonic()
            assert daemon.post_json(fired(i), timeout=6)[0] == 200, i
            assert time.monotonic() - started < 5
    finally:
        chunks: List[bytes] = []

        def read() -> None:
            while True:
                chunk = os.read(read_end, 65536)
                if not chunk:
                    return
                chunks.append(chunk)
        threading.Thread(target=read, daemon=True).start()
    # What the queue held is written once stderr drains.
    deadline = time.monotonic() + 10
    while b"".join(chunks).count(b"Alert sent successfully to Rocket.Chat: 200") < 20:
        assert time.monotonic() < deadline, b"".join(chunks)[-3000:]
        logs.flush(0.1)
