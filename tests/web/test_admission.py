"""What rcwebhook sheds when it is short of room, and a connection flood that must not shut out Alertmanager.

The policy (rcwebhook.web.admission) is tested on its own with a clock the test moves; the server with real
sockets, and with a flood from a process of its own (tests/flood_client.py).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rcwebhook.web import server as server_module
from rcwebhook.web.admission import Admission, Phase, Reason, Seat, ShedTally
from rcwebhook.web.crew import Crew
from tests.conftest import load_example, require_program
from tests.web.test_security import hooks, wait_until  # noqa: F401 - hooks is a fixture

FLOOD_CLIENT = Path(__file__).resolve().parents[1] / "flood_client.py"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class OffsetClock:
    """The monotonic clock, moved forward by `offset` seconds: a running server's admission keeps counting
    in real time, and a test jumps ahead where it would otherwise wait."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def admission(max_connections=2, spares=1, request_timeout=10.0, clock=None):
    return Admission(max_connections, request_timeout, 5.0, clock=clock or Clock(), spares=spares, grace=0.5)


def seated(table: Admission, key, phase: Phase):
    """Bring connection `key` in through the lobby with a whole head, seated, then into `phase`."""
    table.arrive(key, tls=False)
    assert table.enter(key, Phase.HEAD)
    seat, shed = table.seat(key)
    assert shed == []
    if phase is not Phase.HEAD:
        assert table.enter(key, Phase.READING)
        if phase is not Phase.READING:
            assert table.enter(key, phase)
    return seat


# --- the policy, without sockets -------------------------------------------------------------------

def test_room_is_made_by_closing_an_idle_connection_before_a_slow_one():
    clock = Clock()
    table = admission(clock=clock)
    seated(table, "slow", Phase.READING)
    table.enter("slow", Phase.IDLE)  # a kept-alive connection...
    table.enter("slow", Phase.HEAD)  # ...whose next request began
    clock.now += 2
    seated(table, "idle", Phase.BUSY)
    table.enter("idle", Phase.IDLE)
    table.arrive("new", tls=False)
    table.enter("new", Phase.HEAD)
    assert table.seat("new") == (Seat.ORDINARY, [("idle", Reason.IDLE)])
    assert table.table["slow"].phase is Phase.HEAD
    table.arrive("newer", tls=False)
    table.enter("newer", Phase.HEAD)
    assert table.seat("newer") == (Seat.ORDINARY, [("slow", Reason.SLOW)])


def test_a_request_whose_head_is_whole_is_never_closed_for_another():
    table = admission(max_connections=2, spares=1)
    seated(table, "reading", Phase.READING)
    seated(table, "busy", Phase.BUSY)
    table.arrive("health", tls=False)
    table.enter("health", Phase.HEAD)
    assert table.seat("health") == (Seat.SPARE, [])  # /health still gets a spare seat
    table.arrive("third", tls=False)
    table.enter("third", Phase.HEAD)
    assert table.seat("third") == (None, [])  # every seat is real work: 503
    assert table.promote("health") == (None, [])  # a notification on the spare waits (then gets 503)
    table.enter("busy", Phase.IDLE)  # ...until the other connection's answer is sent
    assert table.promote("health") == (True, [("busy", Reason.IDLE)])
    assert table.table["reading"].phase is Phase.READING


def test_a_slow_head_is_measured_from_its_first_byte_not_from_its_last_progress():
    clock = Clock()
    table = admission(max_connections=1, spares=0, clock=clock)
    seated(table, "trickle", Phase.READING)
    table.enter("trickle", Phase.IDLE)
    table.enter("trickle", Phase.HEAD)  # the first byte of its next request
    for _ in range(6):  # a byte every 0.1 s: progress all along, but no whole head
        clock.now += 0.1
        assert table.enter("trickle", Phase.HEAD)
    table.arrive("alertmanager", tls=False)
    table.enter("alertmanager", Phase.HEAD)
    assert table.seat("alertmanager") == (Seat.ORDINARY, [("trickle", Reason.SLOW)])


def test_a_head_within_its_grace_is_not_slow():
    clock = Clock()
    table = admission(max_connections=1, spares=0, clock=clock)
    seated(table, "sending", Phase.READING)
    table.enter("sending", Phase.IDLE)
    table.enter("sending", Phase.HEAD)
    clock.now += 0.4
    table.arrive("other", tls=False)
    table.enter("other", Phase.HEAD)
    assert table.seat("other") == (None, [])
    clock.now += 0.2
    assert table.seat("other") == (Seat.ORDINARY, [("sending", Reason.SLOW)])



def test_a_request_that_came_whole_takes_the_seat_of_one_whose_body_lags_behind_its_pace():
    clock = Clock()
    table = admission(max_connections=1, spares=0, clock=clock)
    table.arrive("dragging", tls=False)
    assert table.enter("dragging", Phase.HEAD)
    assert table.seat("dragging") == (Seat.ORDINARY, [])
    assert table.enter("dragging", Phase.READING, body_bytes=1024 * 1024)  # 1 MiB: due after 0.5 + 1 s

    def newcomer(key: str, whole: bool):
        table.arrive(key, tls=False)
        table.table[key].head = b"POST /webhook HTTP/1.1\r\n"
        table.table[key].whole = whole
        assert table.enter(key, Phase.HEAD)
        return table.seat(key)

    clock.now += 1.4
    assert newcomer("early", whole=True) == (None, [])  # a body that keeps its pace keeps its seat
    clock.now += 0.2
    assert newcomer("partial", whole=False) == (None, [])  # only a request that came whole may take it
    assert newcomer("whole", whole=True) == (Seat.ORDINARY, [("dragging", Reason.SLOW)])
    assert table.table["dragging"].phase is Phase.CLOSED

def test_request_timeout_counts_from_the_first_byte_for_head_and_body_alike():
    clock = Clock()
    table = admission(clock=clock, request_timeout=10)
    table.arrive("c", tls=False)
    clock.now += 3  # idle before its first byte: not counted against the request
    table.enter("c", Phase.HEAD)
    first_byte = clock.now
    clock.now += 4
    table.seat("c")
    table.enter("c", Phase.READING)  # the body's read has no clock of its own
    assert table.deadline("c") == first_byte + 10
    clock.now = first_byte + 9.9
    assert table.expired() == []
    clock.now = first_byte + 10.1
    assert table.expired() == [("c", Reason.SLOW)]


def test_a_request_closed_after_its_body_was_read_is_not_acted_on():
    clock = Clock()
    table = admission(clock=clock, request_timeout=1)
    seated(table, "c", Phase.READING)
    clock.now += 1.5  # its body came just as its deadline passed, and the sweep ran first
    assert table.expired() == [("c", Reason.SLOW)]
    assert table.enter("c", Phase.BUSY) is False


def test_stopping_closes_who_waits_on_the_client_but_not_a_request_being_read():
    table = admission(max_connections=4)
    table.arrive("lobby", tls=True)
    seated(table, "reading", Phase.READING)
    seated(table, "idle", Phase.BUSY)
    table.enter("idle", Phase.IDLE)
    closing, in_flight = table.stopping()
    assert sorted(closing) == ["idle", "lobby"]
    assert in_flight == 1
    assert table.enter("reading", Phase.BUSY)


def test_a_full_lobby_sheds_the_longest_silent_then_a_slow_head_never_a_fresh_one():
    clock = Clock()
    table = admission(clock=clock)
    table.arrive("silent", tls=False)
    clock.now += 1
    table.arrive("handshaking", tls=True)
    table.arrive("sending", tls=False)
    table.enter("sending", Phase.HEAD)
    assert table.lobby_victim(4) == []
    assert table.lobby_victim(3) == [("silent", Reason.IDLE)]
    assert table.lobby_victim(2) == [("handshaking", Reason.IDLE)]
    assert table.lobby_victim(1) == []  # its head began 0 s ago
    clock.now += 0.6
    assert table.lobby_victim(1) == [("sending", Reason.SLOW)]


def test_expiry_names_failed_handshakes_and_not_a_kept_alive_connection():
    clock = Clock()
    table = admission(clock=clock, request_timeout=10)
    table.arrive("tls", tls=True)
    seated(table, "kept", Phase.BUSY)
    table.enter("kept", Phase.IDLE)
    clock.now += 11
    assert sorted(table.expired(), key=str) == [("kept", None), ("tls", Reason.TLS)]


def test_shed_connections_are_summed_up_once_a_minute_at_most():
    tally = ShedTally(every=60)
    assert tally.due(0) is None
    for reason in [Reason.IDLE] * 3 + [Reason.SLOW, Reason.TLS]:
        tally.add(reason, 10)
    assert tally.due(10) == ("Shed 5 connections in the last 1 s: 3 idle, 1 slow, 0 refused while sending their "
                             "body, 1 failed TLS handshakes")
    tally.add(Reason.IDLE, 20)
    assert tally.due(30) is None
    assert tally.due(70).startswith("Shed 1 connections in the last 60 s: 1 idle")
    assert tally.due(200) is None


def test_a_notification_on_a_spare_seat_waits_its_grace_for_an_ordinary_one_then_gives_up():
    clock = Clock()
    table = admission(max_connections=1, spares=1, clock=clock)
    seated(table, "busy", Phase.BUSY)
    table.arrive("notification", tls=False)
    table.enter("notification", Phase.HEAD)
    assert table.seat("notification") == (Seat.SPARE, [])
    outcomes = []
    # The clock moves only once the waiter has read it for its deadline and waits: had it moved first, the
    # deadline would start 0.4 s later and the waiter never give up (seen once in 75 runs under load).
    waits, entered = table.wait_for_change, threading.Event()
    table.wait_for_change = lambda timeout: (entered.set(), waits(timeout))
    waiting = threading.Thread(target=lambda: outcomes.append(table.promote_within("notification")), daemon=True)
    waiting.start()
    assert entered.wait(5)
    clock.now += 0.4  # within its grace (0.5 s): still waiting
    waiting.join(0.2)
    assert waiting.is_alive() and outcomes == []
    clock.now += 0.2
    waiting.join(5)
    assert outcomes == [(False, [])]  # answered 503: nothing was shed for it


def test_a_notification_waiting_on_a_spare_seat_takes_one_that_frees_within_its_grace():
    clock = Clock()
    table = admission(max_connections=1, spares=1, clock=clock)
    seated(table, "busy", Phase.BUSY)
    table.arrive("notification", tls=False)
    table.enter("notification", Phase.HEAD)
    table.seat("notification")
    outcomes = []
    waiting = threading.Thread(target=lambda: outcomes.append(table.promote_within("notification")))
    waiting.start()
    clock.now += 0.3
    table.enter("busy", Phase.IDLE)  # its answer is sent: the kept-alive connection waits on its client
    waiting.join(5)
    assert outcomes == [(True, [("busy", Reason.IDLE)])]
    assert table.table["notification"].seat is Seat.ORDINARY


def test_connections_waiting_for_a_thread_at_stop_are_closed():
    release, started = threading.Event(), threading.Event()
    served, closed = [], []

    def serve(request, address):
        served.append(request)
        started.set()
        release.wait(5)

    crew = Crew(serve, closed.append)
    crew.ensure(1)
    crew.hand("first", ())
    assert started.wait(5)
    crew.hand("queued", ())
    crew.stop()
    release.set()
    assert served == ["first"]
    assert closed == ["queued"]
    crew.hand("after", ())
    assert closed == ["queued", "after"]


# --- the server, with sockets --------------------------------------------------------------------



def post_raw(port: int, body: bytes) -> bytes:
    """POST /webhook on a fresh connection; return all the server sent before it closed."""
    head = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head % len(body) + body)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def test_stopping_while_a_body_is_read_answers_the_notification_it_delivers(start_daemon, hooks, rocketchat,
                                                                           monkeypatch):
    daemon = start_daemon(**hooks)
    read_body = server_module.Handler._read_body

    def read_then_stop(handler, settings):
        body = read_body(handler, settings)
        daemon.server.drain(0)  # the stop begins just as the body has come
        return body

    monkeypatch.setattr(server_module.Handler, "_read_body", read_then_stop)
    answer = post_raw(daemon.port, json.dumps(load_example()).encode())
    wait_until(lambda: not daemon.server.connections, what="the request's thread to finish")
    posted = len(rocketchat.messages("critical"))
    # Either answered and delivered, or neither: never delivered behind a connection closed unanswered.
    assert (answer.startswith(b"HTTP/1.1 200"), posted) in ((True, 1), (False, 0))
    assert answer.startswith(b"HTTP/1.1 200")  # a request in flight is let finish


def test_a_request_closed_at_its_deadline_after_its_body_came_is_not_delivered(start_daemon, hooks, rocketchat,
                                                                               monkeypatch):
    daemon = start_daemon(**hooks)
    clock = OffsetClock()
    monkeypatch.setattr(daemon.server.admission, "clock", clock)
    read_body = server_module.Handler._read_body

    def read_then_stall(handler, settings):
        body = read_body(handler, settings)
        connection = daemon.server.connections[handler.request]
        # The request's deadline (REQUEST_TIMEOUT, 10 s) passes before it is marked busy, and the sweep closes it.
        clock.offset += 10.1
        wait_until(lambda: connection.phase is Phase.CLOSED, timeout=3, what="the sweep")
        return body

    monkeypatch.setattr(server_module.Handler, "_read_body", read_then_stall)
    answer = post_raw(daemon.port, json.dumps(load_example()).encode())
    wait_until(lambda: not daemon.server.connections, what="the request's thread to finish")
    assert not answer.startswith(b"HTTP/1.1 200")
    assert rocketchat.messages("critical") == []


def test_connections_in_the_lobby_are_closed_at_stop(start_daemon, hooks):
    daemon = start_daemon(**hooks)
    silent = [socket.create_connection(("127.0.0.1", daemon.port), timeout=5) for _ in range(5)]
    wait_until(lambda: sum(c.phase is Phase.NEW for c in daemon.server.connections.values()) == 5,
               what="five silent connections in the lobby")
    daemon.stop()
    for sock in silent:
        assert sock.recv(1) == b""
        sock.close()


# --- a flood -----------------------------------------------------------------------------------

def client_connection(port: int, tls: bool, timeout: float) -> http.client.HTTPConnection:
    if not tls:
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)


def timed(port: int, tls: bool, method: str, path: str, body=None, timeout: float = 10.0):
    """Return (status, seconds) of one request on a new connection; status 0 when it failed."""
    started = time.monotonic()
    conn = client_connection(port, tls, timeout)
    try:
        conn.request(method, path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    except (OSError, http.client.HTTPException):
        return 0, time.monotonic() - started
    finally:
        conn.close()


@pytest.fixture
def certificate(tmp_path):
    openssl = require_program("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_connection_flood_does_not_shut_out_alertmanager(start_daemon, hooks, rocketchat, logs, tls,
                                                           request):
    extra = {}
    if tls:
        cert, key = request.getfixturevalue("certificate")
        extra = {"TLS_CERT_FILE": str(cert), "TLS_KEY_FILE": str(key)}
    deadline = 5.0
    # REQUEST_TIMEOUT short for the flood to churn. Under TLS it also bounds the handshake, and a sender's own
    # handshake can wait behind the flood's: Python 3.9 once served nothing for 3.3 s while shedding some
    # 3,000 garbage handshakes a second, and a sender missed a 2 s bound (the flood's garbage churns anyway).
    daemon = start_daemon(DELIVERY_DEADLINE=f"{deadline:g}", REQUEST_TIMEOUT="4" if tls else "2", DEDUP_WINDOW="0",
                          ROCKETCHAT_RATE_LIMIT="0", **hooks, **extra)
    flooder = subprocess.Popen([sys.executable, str(FLOOD_CLIENT), str(daemon.port), "200", "8"]
                               + (["--tls"] if tls else []), stdout=subprocess.PIPE, text=True)
    try:
        assert flooder.stdout.readline().strip() == "flooding"
        wait_until(lambda: daemon.server.accepted_connections >= 200, what="the flood to connect")
        end = time.monotonic() + 5
        notifications, probes = [], []
        body = json.dumps(load_example()).encode()

        def send():
            while time.monotonic() < end:
                notifications.append(timed(daemon.port, tls, "POST", "/webhook", body, timeout=deadline))

        def probe():
            while time.monotonic() < end:
                probes.append(timed(daemon.port, tls, "GET", "/health", timeout=5))

        workers = [threading.Thread(target=send) for _ in range(2)] + [threading.Thread(target=probe)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        flood = json.loads(flooder.stdout.readline())
    finally:
        flooder.kill()
        flooder.wait(10)
    answered = [took for status, took in notifications if status == 200 and took <= deadline]
    # Over TLS 52 notifications get through in the 5 s here on Python 3.9 and 85 on 3.11; a perturbed full run
    # managed 13. The floor says the senders kept getting through, not how fast this machine is.
    assert len(notifications) >= 10
    assert len(answered) >= 0.99 * len(notifications), notifications
    health = sorted(took if status == 200 else float("inf") for status, took in probes)
    # Shut out shows as a failed probe (infinite here) or the probe's 5 s timeout; the bound leaves room
    # for a slow machine: the TLS flood's p99 is 0.16-0.22 s on the development machine, 0.37 s at worst.
    assert health[int(0.99 * (len(health) - 1))] < 3.0, probes
    assert flood["opened"] > 200  # the flood was shed and came back
    shed = sum(daemon.server.metrics.connections_shed.value(reason=r) for r in ("idle", "slow", "tls"))
    assert shed > 0
    # Nothing above DEBUG per shed connection: one summary line at most, over these few seconds.
    loud = [r.getMessage() for r in logs.records if r.levelno > logging.DEBUG and r.module in ("server", "admission")]
    assert len(loud) <= 1 and all(line.startswith("Shed ") for line in loud), loud[:5]


def test_a_real_alertmanager_over_tls_delivers_every_group_during_a_flood(start_daemon, hooks, rocketchat,
                                                                         certificate, tmp_path):
    from tests.test_alertmanager_e2e import Alertmanager, AlertSpec

    alertmanager = require_program("prometheus-alertmanager")
    amtool = require_program("amtool")
    cert, key = certificate
    daemon = start_daemon(TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(key), ROCKETCHAT_RATE_LIMIT="0", **hooks)
    manager = Alertmanager(alertmanager, amtool, tmp_path, f"{daemon.url}/webhook")
    manager.config.write_text(manager.config.read_text().replace(
        "        send_resolved: true\n",
        "        send_resolved: true\n        http_config:\n          tls_config:\n"
        "            insecure_skip_verify: true\n"))
    manager.start()
    flooder = subprocess.Popen([sys.executable, str(FLOOD_CLIENT), str(daemon.port), "500", "25", "--tls",
                                "--only", "idle"],  # bare TCP, no ClientHello, as seen in the field
                               stdout=subprocess.PIPE, text=True)
    try:
        assert flooder.stdout.readline().strip() == "flooding"
        wait_until(lambda: daemon.server.accepted_connections >= 500, what="the flood to connect")
        groups = [AlertSpec(f"Down{n}", {"severity": "critical", "service": f"svc{n}"}) for n in range(10)]
        manager.fire(*groups)
        posted = lambda: {name for m in rocketchat.messages("critical")  # noqa: E731
                          for name in (a["title"].split(":", 1)[0] for a in m.get("attachments") or [])}
        wait_until(lambda: posted() >= {g.name for g in groups}, timeout=15,
                   what=f"every group posted during the flood{manager.explain()}")
        assert flooder.poll() is None  # still flooding when the last group was posted
        failed = {k: v for k, v in manager.webhook_metrics().items() if "failed" in k and v}
        assert failed == {}, manager.explain()  # not one request failed, not even one retried
    finally:
        flooder.kill()
        flooder.wait(10)
        manager.stop()


def test_notifications_waiting_for_a_seat_take_at_most_half_the_spare_ones_the_rest_serve_health():
    # 80 connections trickling notification bodies (no API key needed on loopback) held every ordinary
    # seat; the newcomers' notifications then filled every spare one, each waiting STALL_GRACE to be
    # promoted, so that /health was answered 503 too (154 of 155 probes in 20 s).
    table = admission(max_connections=1, spares=4)
    seated(table, "reading", Phase.READING)
    heads = {"post0": b"POST /webhook HTTP/1.1\r\n", "post1": b"POST /webhook HTTP/1.1\r\n",
             "post2": b"POST /webhook HTTP/1.1\r\n", "health": b"GET /health HTTP/1.1\r\n",
             "metrics": b"GET /metrics HTTP/1.1\r\n", "head": b"HEAD /health HTTP/1.1\r\n"}
    seats = {}
    for key, head in heads.items():
        table.arrive(key, tls=False)
        table.table[key].head = head
        assert table.enter(key, Phase.HEAD)
        seats[key] = table.seat(key)
    assert seats == {"post0": (Seat.SPARE, []), "post1": (Seat.SPARE, []), "post2": (None, []),
                     "health": (Seat.SPARE, []), "metrics": (Seat.SPARE, []), "head": (None, [])}


def test_a_notification_that_comes_whole_takes_the_seat_of_a_body_dragged_out(start_daemon, hooks, rocketchat,
                                                                              monkeypatch):
    # Without an API key (loopback), 40 connections that each sent a whole head and then a body of 1 MB at
    # 100 bytes every 0.3 s held every seat for REQUEST_TIMEOUT: not one notification got through. A
    # notification that comes whole now takes the seat of one whose body lags behind MIN_BODY_RATE (4 MB
    # is due 4.5 s after its head); until then such bodies keep their seats.
    daemon = start_daemon(MAX_CONNECTIONS="4", DELIVERY_DEADLINE="5", DEDUP_WINDOW="0", ROCKETCHAT_RATE_LIMIT="0",
                          **hooks)
    clock = OffsetClock()
    monkeypatch.setattr(daemon.server.admission, "clock", clock)
    head = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 4000000\r\n\r\n")
    dragging = [socket.create_connection(("127.0.0.1", daemon.port), timeout=10) for _ in range(4)]
    try:
        for sock in dragging:
            sock.sendall(head + b"[" * 100)  # and nothing more
        wait_until(lambda: sum(c.phase is Phase.READING for c in daemon.server.connections.values()) == 4,
                   what="four bodies dragged out, holding every seat")
        body = json.dumps(load_example()).encode()
        assert timed(daemon.port, False, "POST", "/webhook", body)[0] == 503  # within their pace: they keep it
        clock.offset += 5  # past their pace
        assert timed(daemon.port, False, "POST", "/webhook", body)[0] == 200
        assert daemon.server.metrics.connections_shed.value(reason="slow") == 1
        assert len(rocketchat.messages("critical")) == 1
        assert sum(c.phase is Phase.READING for c in daemon.server.connections.values()) == 3
    finally:
        for sock in dragging:
            sock.close()
