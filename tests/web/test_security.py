"""Hostile input and untrusted networks: authentication, connection limits, secrets, TLS."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

from rcwebhook.web import auth
from rcwebhook.config import loading
from rcwebhook.config.describe import describe
from rcwebhook.config.settings import ConfigError, build
from rcwebhook.web.admission import STALL_GRACE, Phase, Seat
from tests.conftest import ROOT, load_example, make_settings, require_program
from tests.faults import wait_until
from tests.rocketchat_standin import RocketChatStandin

KEY = "k3y-0f-the-test-Zq8xW"


@pytest.fixture
def hooks(rocketchat):
    return {f"ROCKETCHAT_WEBHOOK_{n.upper()}": rocketchat.add_hook(n) for n in ("critical", "warning", "info")}


# --- authentication ---------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"X-API-Key": KEY},
    {"Authorization": f"Bearer {KEY}"},
    {"Authorization": "Basic " + base64.b64encode(f"alertmanager:{KEY}".encode()).decode()},
    {"Authorization": "Basic " + base64.b64encode(f":{KEY}".encode()).decode()},
])
def test_each_way_alertmanager_can_send_the_key_is_accepted(start_daemon, hooks, rocketchat, headers):
    daemon = start_daemon(API_KEY=KEY, **hooks)
    status, _, body = daemon.request("POST", "/webhook", json.dumps(load_example()).encode(),
                                     {"Content-Type": "application/json", **headers})
    assert status == 200, body
    assert len(rocketchat.messages("critical")) == 1


@pytest.mark.parametrize("headers", [
    {},
    {"X-API-Key": "wrong"},
    {"X-API-Key": KEY[:-1]},
    {"Authorization": f"Bearer {KEY}x"},
    {"Authorization": "Basic " + base64.b64encode(f"{KEY}:nope".encode()).decode()},
    {"Authorization": "Basic !!!not-base64!!!"},
    {"Authorization": KEY},
])
def test_missing_or_wrong_key_is_401_with_challenges(start_daemon, hooks, rocketchat, logs, headers):
    daemon = start_daemon(API_KEY=KEY, **hooks)
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request("POST", "/webhook", json.dumps(load_example()), {"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    body = json.loads(response.read())
    assert response.status == 401
    challenges = response.headers.get_all("WWW-Authenticate")
    assert challenges == ['Bearer realm="rcwebhook"', 'Basic realm="rcwebhook", charset="UTF-8"']
    assert "X-API-Key" in body["error"]
    assert rocketchat.all_messages() == {"critical": [], "warning": [], "info": []}
    assert KEY not in logs.text() + json.dumps(body)
    assert any(line.startswith("Refused a notification from 127.0.0.1") for line in logs.lines())


def test_health_stays_open_with_a_key(start_daemon, hooks):
    daemon = start_daemon(API_KEY=KEY, **hooks)
    assert daemon.request("GET", "/health")[0] == 200


def test_no_key_set_means_no_check_on_loopback(start_daemon, hooks):
    assert start_daemon(**hooks).post_json(load_example())[0] == 200


def test_key_comparison_is_constant_time(monkeypatch):
    calls = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert auth.authorized({"X-API-Key": "guess", "Authorization": f"Bearer {KEY}"}, KEY)
    assert calls == [(b"guess", KEY.encode()), (KEY.encode(), KEY.encode())]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "rcwebhook.example.com"])
def test_public_address_without_key_is_refused(host):
    errors = []
    build({"HOST": host, "DRY_RUN": "true"}, errors, [])
    assert any("API_KEY is not set" in e and "ALLOW_UNAUTHENTICATED=true" in e for e in errors)


@pytest.mark.parametrize("values", [{"API_KEY": KEY}, {"ALLOW_UNAUTHENTICATED": "true"}])
def test_public_address_with_key_or_explicit_consent_is_allowed(values):
    errors = []
    build({"HOST": "0.0.0.0", "DRY_RUN": "true", **values}, errors, [])
    assert errors == []


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_key(host):
    errors = []
    build({"HOST": host, "DRY_RUN": "true"}, errors, [])
    assert errors == []


def test_public_address_without_key_exits_78():
    result = subprocess.run([sys.executable, str(ROOT / "rcwebhook.py"), "--config", "/dev/null", "--dry-run"],
                            capture_output=True, text=True, timeout=30,
                            env={"PATH": os.environ["PATH"], "HOST": "0.0.0.0"})
    assert result.returncode == 78
    assert "HOST=0.0.0.0 lets other hosts reach rcwebhook, and API_KEY is not set" in result.stderr


# --- limits that keep it alive ------------------------------------------------------------------

def open_stalled(port: int, count: int):
    """Open `count` connections that each send half a request and then stall."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Len")
        sockets.append(sock)
    return sockets


def test_200_stalled_connections_do_not_lock_out_health_or_alertmanager(start_daemon, hooks, rocketchat):
    daemon = start_daemon(**hooks)
    baseline_threads = threading.active_count()
    stalled = open_stalled(daemon.port, 200)
    try:
        wait_until(lambda: len(daemon.server.connections) >= 200, what="the server to take all 200")
        peak_threads = threading.active_count()
        seats = {c.seat for c in dict(daemon.server.connections).values()}
        started = time.monotonic()
        status, _, _ = daemon.request("GET", "/health", timeout=1)
        health_took = time.monotonic() - started
        started = time.monotonic()
        status_webhook, _, _ = daemon.post_json(load_example(), timeout=1)
        webhook_took = time.monotonic() - started
    finally:
        for sock in stalled:
            sock.close()
    assert (status, status_webhook) == (200, 200)
    assert health_took < 1.0 and webhook_took < 1.0
    # Headers still arriving hold neither a seat nor a thread: they wait in the lobby.
    assert seats == {Seat.LOBBY}
    assert peak_threads - baseline_threads <= 1
    assert len(rocketchat.messages("critical")) == 1
    wait_until(lambda: not daemon.server.connections, what="every connection to close")


def connection_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("connection-"))


def test_connection_threads_start_ahead_are_reused_grow_on_reload_and_end_with_the_server(
        start_daemon, hooks, rocketchat):
    before = connection_threads()
    daemon = start_daemon(MAX_CONNECTIONS="4", DELIVERY_DEADLINE="10", **hooks)
    # Ready before the first connection: MAX_CONNECTIONS plus the 8 spare ones.
    assert connection_threads() - before == 12
    for _ in range(30):
        assert daemon.request("GET", "/health")[0] == 200
    assert connection_threads() - before == 12  # reused, not one per connection

    daemon.server.apply(make_settings(MAX_CONNECTIONS="20", DELIVERY_DEADLINE="10", **hooks))
    assert connection_threads() - before == 28
    rocketchat.set_delay("critical", 3)  # each post waits: the 20 notifications are in flight together
    answers = []
    workers = [threading.Thread(target=lambda: answers.append(daemon.post_json(load_example(), timeout=20)[0]))
               for _ in range(20)]
    for worker in workers:
        worker.start()
    wait_until(lambda: sum(c.phase is Phase.BUSY for c in daemon.server.connections.values()) == 20,
               what="20 notifications in flight at once")
    assert daemon.request("GET", "/health", timeout=2)[0] == 200
    for worker in workers:
        worker.join(20)
    assert answers == [200] * 20
    assert daemon.server.metrics.errors.value(reason="busy") == 0

    daemon.stop()
    wait_until(lambda: connection_threads() == before, what="the connection threads to end")


def test_one_connection_after_another_is_served_by_the_same_thread(start_daemon, hooks, logs):
    # The thread idle the shortest takes the next connection: taken in turn, each of the 72 threads
    # kept the C allocator's memory of its last request (70 MiB after 300 notifications of 1 MB).
    daemon = start_daemon(**hooks)
    crew = daemon.server.crew
    for _ in range(20):
        # The next connection comes once the last one's thread is idle again (it closes the connection after
        # answering): on a busy machine it came earlier, and up to four threads served the twenty.
        wait_until(lambda: len(crew.idle) == crew.size, what="every connection thread idle")
        assert daemon.request("GET", "/health")[0] == 200
    # (logging's record.threadName is None once the daemon's logs are installed: the capture notes the thread)
    served_by = {r.emitted_by for r in logs.records if r.name == "rcwebhook.access" and "/health" in r.getMessage()}
    assert len(served_by) == 1, served_by


def test_request_must_arrive_within_request_timeout(start_daemon, hooks):
    daemon = start_daemon(REQUEST_TIMEOUT="1", **hooks)
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
    sock.sendall(b"POST /webhook HTTP/1.1\r\n")
    started = time.monotonic()
    closed = False
    try:
        while time.monotonic() - started < 4:  # a byte every 0.2 s: each read is quick, the whole is not
            sock.sendall(b"X")
            sock.settimeout(0.2)
            try:
                if sock.recv(1024) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    finally:
        sock.close()
    assert closed
    assert time.monotonic() - started < 2.5


def test_when_every_connection_is_busy_health_answers_and_a_notification_gets_a_quick_503(
        start_daemon, hooks, rocketchat):
    daemon = start_daemon(MAX_CONNECTIONS="2", DELIVERY_DEADLINE="5", **hooks)
    rocketchat.fail_next("critical", 1, mode="stall")
    workers = [threading.Thread(target=daemon.post_json, args=(load_example(),), kwargs={"timeout": 10})
               for _ in range(2)]
    for worker in workers:
        worker.start()
    wait_until(lambda: [c.phase for c in daemon.server.connections.values()] == [Phase.BUSY, Phase.BUSY],
               what="two busy connections")
    started = time.monotonic()
    assert daemon.request("GET", "/health", timeout=2)[0] == 200  # a spare connection
    with urllib.request.urlopen(daemon.url + "/metrics", timeout=2) as response:
        assert response.status == 200
    status, headers, body = daemon.post_json(load_example(), timeout=2)
    # Quick against DELIVERY_DEADLINE (5 s): the notification waits STALL_GRACE for a seat, the rest is
    # room for a slow machine (0.51 s in all on the development machine).
    assert time.monotonic() - started < STALL_GRACE + 2
    assert status == 503 and headers["Retry-After"] == "1"
    assert "busy" in body["error"]
    assert daemon.server.metrics.errors.value(reason="busy") == 1
    # Connections that say nothing take no spare seat: they wait in the lobby, and /health still answers.
    silent = [socket.create_connection(("127.0.0.1", daemon.port), timeout=5) for _ in range(20)]
    try:
        wait_until(lambda: sum(c.phase is Phase.NEW for c in daemon.server.connections.values()) == 20,
                   what="the silent connections in the lobby")
        assert raw(daemon.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n") == 200
        assert sum(c.phase is Phase.NEW for c in daemon.server.connections.values()) == 20  # none closed for it
    finally:
        for sock in silent:
            sock.close()
    rocketchat.release_stalled()
    for worker in workers:
        worker.join(10)


def test_neither_health_nor_a_new_notification_closes_a_notification_being_read(
        start_daemon, hooks, rocketchat):
    daemon = start_daemon(MAX_CONNECTIONS="2", **hooks)
    # 3 MB: the lobby waits for small bodies itself, and a body this size keeps its seat for 3 s at
    # least (MIN_BODY_RATE) however slowly it comes, longer than this test takes.
    payload = load_example()
    payload["alerts"][0]["annotations"]["description"] = "d" * 3_000_000
    body = json.dumps(payload).encode()
    head = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    halfway = [socket.create_connection(("127.0.0.1", daemon.port), timeout=10) for _ in range(2)]
    try:
        for sock in halfway:
            sock.sendall(head + body[:20])
        reading = lambda: [c.phase for c in daemon.server.connections.values() if not c.spare]  # noqa: E731
        wait_until(lambda: reading() == [Phase.READING] * 2, what="two notifications half sent")
        # Every connection is in the middle of a request: /health gets a spare one and closes neither.
        assert daemon.request("GET", "/health", timeout=2)[0] == 200
        assert daemon.request("GET", "/health", timeout=2)[0] == 200
        assert reading() == [Phase.READING] * 2
        halfway[1].sendall(body[20:])
        assert halfway[1].recv(12) == b"HTTP/1.1 200"
        halfway[1].close()
        wait_until(lambda: reading() == [Phase.READING], what="the answered connection to close")
        halfway.append(socket.create_connection(("127.0.0.1", daemon.port), timeout=10))
        halfway[2].sendall(head + body[:20])
        wait_until(lambda: reading() == [Phase.READING] * 2, what="two notifications half sent again")
        # A new notification does not close either: it is answered 503 (Alertmanager retries), and both
        # half-sent notifications are still answered once their bodies come.
        status, headers, _ = daemon.post_json(load_example(), timeout=5)
        assert (status, headers["Retry-After"]) == (503, "1")
        for sock in (halfway[0], halfway[2]):
            sock.sendall(body[20:])
            assert sock.recv(12) == b"HTTP/1.1 200"
    finally:
        for sock in halfway:
            sock.close()
    assert daemon.server.metrics.errors.value(reason="busy") == 1


def raw(port: int, data: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        answer = sock.recv(65536)
    return int(answer.split(b" ")[1])


def test_too_many_headers_is_431(start_daemon, hooks):
    daemon = start_daemon(**hooks)
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
    assert raw(daemon.port, b"GET /health HTTP/1.1\r\n" + headers + b"\r\n") == 431


def test_headers_over_32_kib_are_431(start_daemon, hooks):
    daemon = start_daemon(**hooks)
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(40))
    assert raw(daemon.port, b"GET /health HTTP/1.1\r\n" + headers + b"\r\n") == 431


def test_client_over_its_rate_gets_503_with_retry_after(start_daemon, hooks):
    daemon = start_daemon(CLIENT_RATE_LIMIT="0.5", CLIENT_RATE_BURST="2", CLIENT_RATE_LIMIT_LOOPBACK="true",
                          DEDUP_WINDOW="0", **hooks)
    answers = [daemon.post_json({"alerts": []}) for _ in range(3)]
    assert [a[0] for a in answers] == [200, 200, 503]
    assert answers[2][1]["Retry-After"] == "2"
    assert "CLIENT_RATE_LIMIT" in answers[2][2]["error"]
    assert daemon.server.metrics.errors.value(reason="client_rate_limited") == 1
    assert daemon.request("GET", "/health")[0] == 200  # only /webhook is limited


def test_loopback_clients_are_not_limited_by_default(start_daemon, hooks):
    daemon = start_daemon(CLIENT_RATE_LIMIT="0.5", CLIENT_RATE_BURST="1", **hooks)
    assert [daemon.post_json({"alerts": []})[0] for _ in range(5)] == [200] * 5


# --- secrets --------------------------------------------------------------------------------------

def test_secrets_from_files_and_credentials(tmp_path):
    (tmp_path / "critical").write_text("https://rc.example.com/hooks/c/FILETOKEN\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "API_KEY").write_text(KEY + "\n")
    (creds / "ROCKETCHAT_WEBHOOK_WARNING").write_text("https://rc.example.com/hooks/w/CREDTOKEN")
    settings, _ = loading.load(None, {"ROCKETCHAT_WEBHOOK_CRITICAL_FILE": str(tmp_path / "critical"),
                                     "CREDENTIALS_DIRECTORY": str(creds)})
    assert settings.routes["critical"].url == "https://rc.example.com/hooks/c/FILETOKEN"
    assert settings.routes["warning"].url == "https://rc.example.com/hooks/w/CREDTOKEN"
    assert settings.api_key == KEY
    assert set(settings.secrets()) == {"FILETOKEN", "CREDTOKEN", KEY}


def test_key_and_key_file_together_is_an_error(tmp_path):
    (tmp_path / "key").write_text(KEY)
    with pytest.raises(ConfigError) as caught:
        loading.load(None, {"DRY_RUN": "true", "API_KEY": KEY, "API_KEY_FILE": str(tmp_path / "key")})
    assert caught.value.problems == ["the environment: both API_KEY and API_KEY_FILE are set: set only one"]


def test_unreadable_secret_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        loading.load(None, {"DRY_RUN": "true", "API_KEY_FILE": str(tmp_path / "missing")})
    assert "API_KEY_FILE=" in caught.value.problems[0] and "cannot be read" in caught.value.problems[0]


def test_world_readable_env_file_with_secrets_warns(tmp_path):
    path = tmp_path / "rcwebhook.env"
    path.write_text("ROCKETCHAT_WEBHOOK_WARNING=https://rc.example.com/hooks/w/T\n")
    path.chmod(0o644)
    _, warnings = loading.load(path, {})
    assert any("every user on this host can read it" in w and "chmod 0640" in w for w in warnings)
    path.chmod(0o640)
    assert loading.load(path, {})[1] == []


def test_plain_http_to_another_host_warns():
    warnings = []
    build({"ROCKETCHAT_WEBHOOK_WARNING": "http://rc.example.com/hooks/w/T"}, [], warnings)
    assert any("uses plain http to rc.example.com" in w for w in warnings)
    warnings.clear()
    build({"ROCKETCHAT_WEBHOOK_WARNING": "http://127.0.0.1:3000/hooks/w/T"}, [], warnings)
    assert warnings == []


def test_check_config_masks_the_api_key(tmp_path):
    path = tmp_path / "rcwebhook.env"
    path.write_text(f"API_KEY={KEY}\nDRY_RUN=true\n")
    path.chmod(0o600)
    result = subprocess.run([sys.executable, str(ROOT / "rcwebhook.py"), "--check-config", "--config", str(path)],
                            capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0
    assert "API_KEY=***" in result.stdout
    assert KEY not in result.stdout + result.stderr


def test_no_token_or_key_anywhere_in_a_full_run(start_daemon, rocketchat, hooks, logs):
    daemon = start_daemon(API_KEY=KEY, DELIVERY_DEADLINE="0.5", **hooks)
    auth_header = {"X-API-Key": KEY, "Content-Type": "application/json"}
    rocketchat.fail_next("critical", 2, status=503)
    rocketchat.fail_next("warning", 1, status=400, error="Invalid href value provided")
    body = json.dumps(load_example()).encode()
    answers = [daemon.request("POST", "/webhook", body, auth_header) for _ in range(3)]
    answers.append(daemon.request("POST", "/webhook", body, {"X-API-Key": "wrong"}))
    answers.append(daemon.request("GET", "/health"))
    seen = logs.text() + json.dumps([a[2] for a in answers]) + json.dumps([a[1] for a in answers])
    seen += "\n".join(describe(daemon.server.settings))
    for secret in [rocketchat.token(n) for n in ("critical", "warning", "info")] + [KEY]:
        assert secret not in seen


# --- TLS ------------------------------------------------------------------------------------------

@pytest.fixture
def certificate(tmp_path):
    openssl = require_program("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def tls_health(port: int, cert: Path) -> int:
    """Return the status of GET /health over TLS, verifying the server's certificate."""
    context = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        assert json.loads(response.read())["status"] == "healthy"
        assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
        return response.status
    finally:
        conn.close()


def test_tls_listener_serves_https(start_daemon, hooks, certificate):
    cert, key = certificate
    daemon = start_daemon(TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(key), **hooks)
    assert daemon.url.startswith("https://127.0.0.1:")
    assert tls_health(daemon.port, cert) == 200


def test_tls_listener_refuses_tls_1_1(start_daemon, hooks, certificate):
    cert, key = certificate
    daemon = start_daemon(TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(key), **hooks)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # Python itself deprecates TLS 1.1
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1_1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as sock:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            context.wrap_socket(sock).do_handshake()
    assert tls_health(daemon.port, cert) == 200  # the server lives on


def test_tls_certificate_mismatch_needs_both_files():
    errors = []
    build({"DRY_RUN": "true", "TLS_CERT_FILE": "/etc/hostname"}, errors, [])
    assert "TLS_CERT_FILE and TLS_KEY_FILE go together" in errors[0]


def test_private_ca_for_rocketchat(start_daemon, certificate):
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(str(cert), str(key))
    with RocketChatStandin(tls=server_context) as standin:
        url = standin.add_hook("critical")
        assert url.startswith("https://127.0.0.1:")
        untrusting = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=url)
        status, _, body = untrusting.post_json(load_example())
        assert status == 502  # retrying cannot fix an untrusted certificate
        assert "ROCKETCHAT_CA_FILE" in body["routes"]["critical"]["error"]
        trusting = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=url, ROCKETCHAT_CA_FILE=str(cert))
        assert trusting.post_json(load_example())[0] == 200
        assert len(standin.messages("critical")) == 1


# --- webhook URLs are validated whole; secrets stay out of every answer and printed error -------

TOKEN = "Tk9xQ2mZ7vLr4P8sWn3Yb6Hd1Fc5Jg0Ke2Ua7Ri9Oq4Et6Mw"


@pytest.mark.parametrize("url", [
    f"https://chat.example.com/hooks/abc123/{TOKEN} oops",      # a stray word after a paste
    f"https://chat.example.com/hooks/abc123/{TOKEN}\tx",
    f"https://chat.example.com/hooks/abc123/{TOKEN}\x01",
    f"https://chat.example.com/hooks/abc123/{TOKEN}\u2028x",
    f"https://chat.example.com/hooks/abc123/{TOKEN}?x=1",
    f"https://chat.example.com/hooks/abc123/{TOKEN}#part",
    f"https://user:{TOKEN}@chat.example.com/hooks/abc123/x",
    f"https://chat.example.com/{TOKEN}",
    f"https://chat.example.com/hooks/{TOKEN}",
    f"https://chat.example.com/hooks/abc123/{TOKEN}/",
    f"https://chat.example.com/hooks/a/b/{TOKEN}/d",
    f"https://chat.example.com:99999/hooks/abc123/{TOKEN}",
    f"ftp://chat.example.com/hooks/abc123/{TOKEN}",
])
def test_a_webhook_url_that_is_not_a_hook_url_is_refused_naming_the_key_only(tmp_path, url):
    path = tmp_path / "rcwebhook.env"
    path.write_text(f'ROCKETCHAT_WEBHOOK_CRITICAL="{url}"\nDEFAULT_SEVERITY=critical\n')
    result = subprocess.run([sys.executable, str(ROOT / "rcwebhook.py"), "--config", str(path), "--check-config"],
                            capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 78, result.stdout + result.stderr
    assert "ROCKETCHAT_WEBHOOK_CRITICAL" in result.stderr
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("url", [
    f"https://chat.example.com/hooks/abc123/{TOKEN}",
    f"http://127.0.0.1:3000/hooks/abc123/{TOKEN}",
    f"https://chat.example.com/hooks/abc123/userid456/{TOKEN}",   # the legacy form with the user id
    f"https://example.com/chat/hooks/abc123/{TOKEN}",              # Rocket.Chat under a path
    f"https://[::1]:3000/hooks/abc123/{TOKEN}",
])
def test_hook_urls_as_rocketchat_shows_them_are_accepted(url):
    errors = []
    settings = build({"ROCKETCHAT_WEBHOOK_WARNING": url}, errors, [])
    assert errors == []
    assert settings.routes["warning"].url == url and TOKEN in settings.secrets()


def test_answers_never_carry_a_secret_even_when_an_error_quotes_it(start_daemon):
    from rcwebhook.delivery.transport import Answer

    url = f"https://chat.example.com/hooks/abc123/{TOKEN}"
    daemon = start_daemon(lambda target, body, timeout: Answer(0, f"cannot reach {target}: it said {KEY}"),
                          ROCKETCHAT_WEBHOOK_WARNING=url, DELIVERY_DEADLINE="0.3", API_KEY=KEY)
    status, _, body = daemon.request("POST", "/webhook", json.dumps(load_example()).encode(),
                                     {"Content-Type": "application/json", "X-API-Key": KEY})
    assert status == 503
    text = json.dumps(body)
    assert TOKEN not in text and KEY not in text
    assert "https://chat.example.com/hooks/abc123/***" in text


def test_send_test_output_never_carries_a_secret():
    import io

    from rcwebhook import sendtest
    from rcwebhook.delivery.transport import Answer

    url = f"https://chat.example.com/hooks/abc123/{TOKEN}"
    settings = build({"ROCKETCHAT_WEBHOOK_WARNING": url}, [], [])
    out = io.StringIO()
    code = sendtest.run(settings, "warning", out, transport=lambda target, body, timeout: Answer(
        0, f"URL can't contain control characters. {target!r}"))
    assert code == 1
    assert TOKEN not in out.getvalue() and "***" in out.getvalue()


def test_printed_configuration_errors_never_carry_a_secret(tmp_path):
    path = tmp_path / "rcwebhook.env"
    url = f"https://chat.example.com/hooks/abc123/{TOKEN}"
    # Pasted on the wrong lines: the values show up in the errors about PORT and LOG_LEVEL.
    path.write_text(f"ROCKETCHAT_WEBHOOK_WARNING={url}\nAPI_KEY={KEY}\nPORT=8093{url}\nLOG_LEVEL={KEY}\n")
    result = subprocess.run([sys.executable, str(ROOT / "rcwebhook.py"), "--config", str(path), "--check-config"],
                            capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 78
    assert "PORT=" in result.stderr and "LOG_LEVEL=" in result.stderr
    assert TOKEN not in result.stderr and KEY not in result.stderr


# --- every structure bounded: what no Alertmanager sends is refused, what it sends costs little ---

def dense(count: int, item: str = "{}") -> bytes:
    return ('{"groupKey":"g","alerts":[' + ",".join([item] * count) + "]}").encode()


def test_a_notification_denser_than_any_alertmanager_sends_is_refused_413_at_once(start_daemon):
    daemon = start_daemon(DRY_RUN="true", LOG_LEVEL="WARNING")
    body = dense(1_398_000)  # 4 MiB of empty alerts
    status, _, answer = daemon.post_json(body, timeout=30)
    assert status == 413
    assert "Alertmanager" in answer["error"]
    assert daemon.request("GET", "/health", timeout=5)[0] == 200


@pytest.mark.parametrize("item", ['"ab"', "0", "[]", '{"labels":{}}'])
def test_bodies_of_many_tiny_values_are_refused_before_parsing(start_daemon, item):
    daemon = start_daemon(DRY_RUN="true", LOG_LEVEL="WARNING")
    status, _, answer = daemon.post_json(dense(4_000_000 // (len(item) + 1), item), timeout=30)
    assert status == 413, answer


@pytest.mark.parametrize("count", [340_000, 1001])
def test_a_label_map_of_thousands_of_entries_is_refused(start_daemon, count):
    daemon = start_daemon(DRY_RUN="true", LOG_LEVEL="WARNING")
    labels = ",".join(f'"{i:x}":"v"' for i in range(count))  # 340,000: 4 MB, one value per 12 bytes
    status, _, _ = daemon.post_json(('{"alerts":[{"labels":{' + labels + "}}]}").encode(), timeout=30)
    assert status == 413


def test_the_answer_echoes_a_bounded_list_of_names(start_daemon):
    daemon = start_daemon(DRY_RUN="true", LOG_LEVEL="WARNING")
    alert = {"status": "firing", "labels": {"alertname": "N" * 400, "severity": "info"}, "annotations": {},
             "startsAt": "2026-01-30T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus.example.com/graph", "fingerprint": "0123456789abcdef"}
    status, _, answer = daemon.post_json({"groupKey": "g", "status": "firing", "alerts": [alert] * 3000}, timeout=30)
    assert status == 200
    assert answer["processed"] == 3000 and answer["status"] == "ok"
    assert len(answer["alerts"]) <= 1000 and all(len(name) <= 200 for name in answer["alerts"])


def test_the_url_cache_keeps_no_long_client_urls():
    import gc
    import tracemalloc

    from rcwebhook.messages import render as message

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(20):
            assert message.absolute_url(f"http://prometheus.example.com/graph?g0.expr={n}{'x' * 1_000_000}")
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 2_000_000, f"{kept} bytes kept after 20 URLs of 1 MB"


def test_health_answers_while_64_large_notifications_are_processed(start_daemon):
    daemon = start_daemon(DRY_RUN="true", LOG_LEVEL="WARNING", MAX_CONNECTIONS="64")
    body = dense(6000, '{"status":"firing","labels":{"alertname":"NodeDown","severity":"info"},"annotations":{},'
                       '"startsAt":"2026-01-30T10:00:00Z","fingerprint":"0123456789abcdef"}')
    statuses = []
    started = threading.Barrier(65)

    def send():
        started.wait()
        statuses.append(daemon.post_json(body, timeout=120)[0])

    threads = [threading.Thread(target=send) for _ in range(64)]
    for thread in threads:
        thread.start()
    started.wait()
    health = daemon.request("GET", "/health", timeout=10)[0]
    for thread in threads:
        thread.join(120)
    assert health == 200
    assert statuses == [200] * 64


def test_refusals_for_want_of_a_seat_or_a_key_are_said_once_a_minute_not_once_each(start_daemon, hooks, logs):
    # A flood of requests whose bodies trickle in holds every seat: each newcomer answered 503 was one
    # WARNING (45,732 lines, 4.5 MB in 30 s); without the key, each refusal one too (48,893 lines in 30 s).
    daemon = start_daemon(API_KEY=KEY, **hooks)
    for _ in range(50):
        ours, theirs = socket.socketpair()
        with theirs:
            daemon.server.refuse_busy(ours)
            assert theirs.recv(12) == b"HTTP/1.1 503"
    for _ in range(50):
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
        conn.request("POST", "/webhook", json.dumps(load_example()), {"Content-Type": "application/json"})
        assert conn.getresponse().status == 401
        conn.close()
    assert daemon.server.metrics.errors.value(reason="busy") == 50
    busy = [r for r in logs.records if "are busy with requests" in r.getMessage()]
    refused = [r for r in logs.records if r.getMessage().startswith("Refused a notification from")]
    assert [r.levelname for r in busy if r.levelno >= logging.INFO] == ["WARNING"], [r.getMessage() for r in busy]
    assert [r.levelname for r in refused if r.levelno >= logging.INFO] == ["WARNING"], len(refused)
