"""The daemon in-process against the stand-in Rocket.Chat: every status code, dry-run, log lines."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import socketserver
import subprocess
import sys

import pytest

from tests.conftest import ROOT, load_example
from tests.programs import free_port
from rcwebhook.web.admission import Phase
from tests.web.test_admission import OffsetClock
from tests.web.test_security import wait_until


@pytest.fixture
def hooks(rocketchat):
    """Three hooks on the stand-in, as settings."""
    return {
        f"ROCKETCHAT_WEBHOOK_{name.upper()}": rocketchat.add_hook(name) for name in ("critical", "warning", "info")
    }


@pytest.fixture
def daemon(start_daemon, hooks):
    return start_daemon(**hooks)


def raw_exchange(port: int, data: bytes, shut_write: bool = False) -> bytes:
    """Send raw bytes and return everything the server answers before it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_and_body(raw: bytes):
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body), head.decode("latin-1")


# --- the seed's endpoints ----------------------------------------------------------------------

def test_health_answers_the_seed_json(daemon):
    status, headers, body = daemon.request("GET", "/health")
    assert status == 200
    assert body == {"service": "rocketchat-webhook-adapter", "status": "healthy", "version": "2.0.0"}
    assert headers["Content-Type"] == "application/json"


def test_head_health_has_no_body(daemon):
    status, headers, body = daemon.request("HEAD", "/health")
    assert (status, body) == (200, None)
    assert int(headers["Content-Length"]) > 0


def test_example_alert_reaches_the_right_hooks(daemon, rocketchat, logs):
    status, _, body = daemon.post_json(load_example())
    assert status == 200
    assert body["alerts"] == ["HighCPUUsage", "HighMemoryUsage"]
    assert (body["processed"], body["status"]) == (2, "ok")
    assert body["routes"] == {"critical": {"status": "delivered", "alerts": 1, "code": 200},
                              "warning": {"status": "delivered", "alerts": 1, "code": 200}}
    [critical] = rocketchat.messages("critical")
    [warning] = rocketchat.messages("warning")
    assert rocketchat.messages("info") == []
    assert [a["title"] for a in critical["attachments"]] == ["HighCPUUsage: CPU usage above 90% on server1"]
    assert [a["title"] for a in warning["attachments"]] == ["HighMemoryUsage: Memory usage above 80% on server1"]
    sent = sorted(line for line in logs.lines() if line.startswith("Alert sent successfully to Rocket.Chat: 200"))
    assert len(sent) == 2
    assert "route=critical alerts=HighCPUUsage" in sent[0]
    assert "route=warning alerts=HighMemoryUsage" in sent[1]


def test_seed_response_is_byte_compatible_in_its_keys(daemon):
    _, _, body = daemon.post_json(load_example())
    assert list(body) == ["alerts", "processed", "routes", "status"]


def test_received_notification_is_logged_once(daemon, logs):
    daemon.post_json(load_example())
    received = [line for line in logs.lines() if line.startswith("Notification received")]
    assert received == [
        'Notification received: receiver=rocketchat groupKey={}:{alertname=~"HighCPUUsage|HighMemoryUsage"} '
        "status=firing alerts=2 routes=critical:1,warning:1"
    ]


def test_one_post_per_route_with_one_attachment_per_alert(daemon, rocketchat):
    alerts = [{"labels": {"alertname": f"C{i}", "severity": "critical"}} for i in range(3)]
    alerts += [{"labels": {"alertname": f"I{i}", "severity": "info"}} for i in range(2)]
    status, _, body = daemon.post_json({"alerts": alerts})
    assert status == 200 and body["processed"] == 5
    assert [len(m["attachments"]) for m in rocketchat.messages("critical")] == [3]
    assert [len(m["attachments"]) for m in rocketchat.messages("info")] == [2]
    assert rocketchat.messages("warning") == []


def test_empty_alert_list_is_ok_and_posts_nothing(daemon, rocketchat):
    status, _, body = daemon.post_json({"alerts": [], "status": "firing"})
    assert (status, body["alerts"], body["processed"]) == (200, [], 0)
    assert rocketchat.all_messages() == {"critical": [], "warning": [], "info": []}


def test_route_without_url_posts_to_the_default_routes_hook(start_daemon, rocketchat):
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=rocketchat.add_hook("warning"))
    status, _, _ = daemon.post_json({"alerts": [{"labels": {"alertname": "X", "severity": "info"}}]})
    assert status == 200
    [posted] = rocketchat.messages("warning")
    assert posted["text"] == ":information_source: [FIRING:1] X"


# --- what the request itself gets wrong: 4xx ---------------------------------------------------

def test_invalid_json_is_400_saying_so(daemon, rocketchat):
    status, _, body = daemon.post_json(b"{not json")
    assert status == 400
    assert body["error"].startswith("body is not valid JSON")
    assert rocketchat.all_messages()["critical"] == []


def test_non_notification_is_400_saying_where(daemon):
    status, _, body = daemon.post_json({"alerts": [{"labels": {}}, {"labels": ["x"]}]})
    assert status == 400
    assert body == {"status": "error", "error": "alerts[1].labels must be an object, not a list"}


def test_non_json_content_type_is_415(daemon):
    status, _, body = daemon.request("POST", "/webhook", b"a=b", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    assert "send application/json" in body["error"]


def test_json_content_type_with_charset_is_fine(daemon):
    status, _, _ = daemon.request("POST", "/webhook", b'{"alerts": []}', {"Content-Type": "application/json; charset=utf-8"})
    assert status == 200


def test_body_over_max_is_413_without_reading_it(start_daemon, hooks):
    daemon = start_daemon(MAX_BODY_BYTES="2048", **hooks)
    # Announce 100 MB and send none of it: the answer must come without waiting for the body.
    raw = raw_exchange(daemon.port, b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    b"Content-Length: 100000000\r\n\r\n")
    status, body, head = status_and_body(raw)
    assert status == 413
    assert "over MAX_BODY_BYTES (2048)" in body["error"]
    assert "Connection: close" in head


def test_missing_content_length_is_411(daemon):
    raw = raw_exchange(daemon.port, b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n{}",
                       shut_write=True)
    assert status_and_body(raw)[0] == 411


def test_body_shorter_than_announced_is_400(daemon):
    raw = raw_exchange(daemon.port, b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    b"Content-Length: 100\r\n\r\n{\"alerts\": []}", shut_write=True)
    status, body, _ = status_and_body(raw)
    assert status == 400
    assert body["error"] == "body ended after 14 of 100 bytes"


def test_unknown_path_is_404_json(daemon):
    status, _, body = daemon.request("GET", "/nope")
    assert status == 404
    assert body["status"] == "error" and "/health and /webhook" in body["error"]


@pytest.mark.parametrize("method, path, allow", [("GET", "/webhook", "POST"), ("PUT", "/webhook", "POST"),
                                                 ("POST", "/health", "GET, HEAD"), ("DELETE", "/health", "GET, HEAD")])
def test_wrong_method_is_405_with_allow(daemon, method, path, allow):
    status, headers, body = daemon.request(method, path, b"" if method != "GET" else None)
    assert status == 405
    assert headers["Allow"] == allow
    assert body["status"] == "error"


def test_garbage_request_line_is_json_400(daemon):
    status, body, _ = status_and_body(raw_exchange(daemon.port, b"HELLO\r\n\r\n"))
    assert status == 400 and body["status"] == "error"


# --- what Rocket.Chat makes of the posts: 5xx when it did not take them -----------------------

def test_rocketchat_refusal_is_502_with_its_reason_and_no_url(daemon, rocketchat, hooks, logs):
    rocketchat.fail_next("critical", 1, status=400, error="Invalid href value provided")
    status, _, body = daemon.post_json(load_example())
    assert status == 502
    assert body["status"] == "error"
    assert body["routes"]["critical"] == {"status": "failed", "alerts": 1, "code": 400,
                                          "error": "Invalid href value provided", "retryable": False}
    assert body["routes"]["warning"]["status"] == "delivered"
    assert "route critical: Rocket.Chat answered 400: Invalid href value provided" in body["error"]
    text = json.dumps(body)
    assert all(url not in text for url in hooks.values()) and "/hooks/" not in text
    errors = logs.lines(logging.ERROR)
    assert len(errors) == 1
    assert "route critical: 400 Invalid href value provided" in errors[0]


def test_wrong_token_is_502_and_the_log_says_what_to_check(start_daemon, rocketchat, logs):
    url = rocketchat.add_hook("critical")
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=url[: -len(rocketchat.token("critical"))] + "wrongtoken")
    status, _, body = daemon.post_json(load_example())
    assert status == 502
    assert body["routes"]["warning"]["error"] == "Invalid integration id or token provided."
    assert body["routes"]["critical"]["error"] == "Invalid integration id or token provided."
    # Both routes use the warning route's URL, so their messages went out as one post.
    [error] = logs.lines(logging.ERROR)
    assert "route critical,warning: 404 Invalid integration id or token provided." in error
    assert error.endswith("check ROCKETCHAT_WEBHOOK_WARNING: Rocket.Chat does not know this integration id or token")


def test_rocketchat_down_past_the_deadline_is_503_with_retry_after(start_daemon):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=f"http://127.0.0.1:{port}/hooks/a/b", DELIVERY_DEADLINE="0.5")
    status, headers, body = daemon.post_json(load_example())
    assert status == 503
    assert 1 <= int(headers["Retry-After"]) <= 300
    assert body["routes"]["critical"]["status"] == "pending"
    assert body["routes"]["critical"]["retryable"] is True
    assert "connection refused by Rocket.Chat" in body["routes"]["critical"]["error"]
    assert "/hooks/a/b" not in json.dumps(body)


def test_redirect_is_not_followed(start_daemon, rocketchat, hooks):
    rocketchat.fail_next("critical", 1, status=301, error="moved")
    daemon = start_daemon(**hooks)
    status, _, body = daemon.post_json({"alerts": [{"labels": {"severity": "critical"}}]})
    assert status == 502
    assert body["routes"]["critical"]["code"] == 301


# --- dry run, logging, keep-alive ---------------------------------------------------------------

def test_dry_run_logs_the_messages_and_posts_nothing(start_daemon, rocketchat, logs):
    daemon = start_daemon(DRY_RUN="true", ROCKETCHAT_WEBHOOK_WARNING=rocketchat.add_hook("warning"))
    status, _, body = daemon.post_json(load_example())
    assert status == 200
    assert body["routes"]["critical"] == {"status": "dry-run", "alerts": 1}
    assert rocketchat.messages("warning") == []
    dry = [line for line in logs.lines() if line.startswith("Dry run: would post")]
    assert len(dry) == 2
    assert json.loads(dry[0].split(": ", 2)[2])["attachments"][0]["title"].startswith("HighCPUUsage")


def test_tokens_never_reach_logs_or_responses(daemon, rocketchat, hooks, logs):
    rocketchat.fail_next("critical", 1, status=400, error="Invalid href value provided")
    answers = [daemon.post_json(load_example())[2], daemon.post_json(load_example())[2],
               daemon.request("GET", "/health")[2]]
    everything = logs.text() + json.dumps(answers)
    for name in ("critical", "warning"):
        assert rocketchat.token(name) not in everything
        assert f"/hooks/{rocketchat.integration_id(name)}/***" in logs.text()


def test_access_log_goes_through_logging(daemon, logs, capfd):
    daemon.request("GET", "/nope")
    assert any('"GET /nope HTTP/1.1" 404' in line for line in logs.lines())
    assert capfd.readouterr().err == ""


def test_keep_alive_serves_many_requests_on_one_connection(daemon):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    ports = set()
    for _ in range(5):
        conn.request("GET", "/health")
        response = conn.getresponse()
        assert response.status == 200
        response.read()
        ports.add(conn.sock.getsockname()[1])
    conn.close()
    assert len(ports) == 1


def test_each_response_is_one_write(daemon, monkeypatch):
    writes = []
    original = socketserver._SocketWriter.write

    def counting(self, data):
        writes.append(bytes(data))
        return original(self, data)

    monkeypatch.setattr(socketserver._SocketWriter, "write", counting)
    daemon.post_json({"alerts": []})
    daemon.request("GET", "/health")
    assert len(writes) == 2
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") and w.endswith(b"}\n") for w in writes)


@pytest.mark.parametrize("version", [b"HTTP/-1.1", b"HTTP/1.-1", b"HTTP/+1.1", b"HTTP/1_1.1", b"HTTP/1"])
def test_malformed_http_version_is_400(daemon, version):
    status, body, _ = status_and_body(raw_exchange(daemon.port, b"GET /health " + version + b"\r\nHost: x\r\n\r\n"))
    assert status == 400
    assert body["status"] == "error"


# --- HTTP: idle and request timeouts, 100 Continue, refusals that arrive, framing ------------------

KEY = "k3y-0f-the-http-tests"


def dawdle(seconds: float) -> None:
    """Be a slow client for `seconds`: part of the scenario, not a wait for the server."""
    import threading

    threading.Event().wait(seconds)


def read_response(sock: socket.socket) -> bytes:
    """Return one whole response (head and Content-Length body) from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed in the middle of a response"
        body += chunk
    return head + b"\r\n\r\n" + body


def webhook_request(body: bytes, *headers: str) -> bytes:
    return ("POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode() + body


def wait_for_idle(daemon) -> None:
    """Wait until the one connection, answered, waits for its next request (its idle time counts from then)."""
    wait_until(lambda: [c.phase for c in dict(daemon.server.connections).values()] == [Phase.IDLE],
               what="the connection to wait idle for its next request")


def test_a_request_after_an_idle_spell_gets_its_whole_request_timeout(start_daemon, monkeypatch):
    daemon = start_daemon(DRY_RUN="true", REQUEST_TIMEOUT="2")
    clock = OffsetClock()
    monkeypatch.setattr(daemon.server.admission, "clock", clock)
    body = json.dumps(load_example()).encode()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(webhook_request(body))
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        wait_for_idle(daemon)
        clock.offset += 1.5  # kept alive, idle: within REQUEST_TIMEOUT
        request = webhook_request(body)
        sock.sendall(request[:40])
        clock.offset += 0.8  # the request takes 0.8 s from its first byte, within REQUEST_TIMEOUT...
        dawdle(0.3)  # ...and the deadlines are looked at meanwhile (every 0.1 s)
        sock.sendall(request[40:])
        assert read_response(sock).startswith(b"HTTP/1.1 200")


def test_an_idle_kept_alive_connection_is_closed_after_its_idle_timeout(start_daemon, monkeypatch):
    daemon = start_daemon(DRY_RUN="true", REQUEST_TIMEOUT="5")
    clock = OffsetClock()
    monkeypatch.setattr(daemon.server.admission, "clock", clock)
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        wait_for_idle(daemon)
        clock.offset += 5.1
        sock.settimeout(3)  # well within the 5 s the connection's thread itself waits for a next request
        assert sock.recv(1) == b""  # closed by the server at its idle timeout


def test_100_continue_only_after_authentication(start_daemon):
    daemon = start_daemon(DRY_RUN="true", API_KEY=KEY)
    body = json.dumps(load_example()).encode()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(webhook_request(body, "Expect: 100-continue")[: -len(body)])
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 401"), first
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(webhook_request(body, "Expect: 100-continue", f"X-API-Key: {KEY}")[: -len(body)])
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        assert read_response(sock).startswith(b"HTTP/1.1 200")


def test_100_continue_only_after_the_size_check(start_daemon):
    daemon = start_daemon(DRY_RUN="true", MAX_BODY_BYTES="2048")
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize("refusal", ["401", "413"])
def test_a_refusal_of_a_large_body_reaches_the_client(start_daemon, refusal):
    # Bodies larger than what the kernel's socket buffers hold, so the client is still sending when
    # rcwebhook answers: closing then would reset the connection and lose the answer.
    daemon = start_daemon(DRY_RUN="true", API_KEY=KEY, MAX_BODY_BYTES=str(24 * 1024 * 1024 if refusal == "401" else 2048))
    body = b"x" * (20 * 1024 * 1024)
    request = webhook_request(body, *(() if refusal == "401" else (f"X-API-Key: {KEY}",)))
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=20) as sock:
        sock.sendall(request)  # all of it first, as http.client and Go's client do
        answer = read_response(sock)
    assert answer.startswith(f"HTTP/1.1 {refusal}".encode()), answer[:100]


@pytest.mark.parametrize("encoding", ["gzip", "chunked, gzip", "identity", "gzip, chunked"])
def test_an_unsupported_transfer_encoding_is_400_and_closes(daemon, encoding):
    raw = raw_exchange(daemon.port, ("POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     f"Transfer-Encoding: {encoding}\r\nContent-Length: 2\r\n\r\n{{}}"
                                     "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").encode())
    status, body, head = status_and_body(raw)
    assert status == 400 and "Transfer-Encoding" in body["error"]
    assert "Connection: close" in head and raw.count(b"HTTP/1.1 ") == 1


def test_http_1_0_keep_alive_is_honoured(daemon):
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as sock:
        for _ in range(2):
            sock.sendall(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            answer = read_response(sock)
            assert answer.startswith(b"HTTP/1.1 200") and b"\r\nConnection: keep-alive\r\n" in answer, answer


def test_http_1_0_without_keep_alive_is_closed_after_the_answer(daemon):
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert sock.recv(1) == b""


# --- what a daemon loads ----------------------------------------------------------------------------

# The daemon, started by its command line as a user starts it, says at exit which of these it had loaded.
LOADED_PROBE = """
import atexit, json, runpy, sys
watched = ("rcwebhook.gotemplate", "rcwebhook.amtemplate", "rcwebhook.messages.templates", "rcwebhook.web.status")
atexit.register(lambda: print(json.dumps(sorted({w for w in watched for m in sys.modules if m.startswith(w)}))))
sys.argv = [sys.argv[1], "--config", "/dev/null", "--dry-run"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def loaded_by_a_daemon(tmp_path, asks, **settings: str):
    """Start rcwebhook, send it the requests `asks` (method, path), stop it; return the watched modules it
    had loaded."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", LOADED_PROBE, str(ROOT / "rcwebhook.py")],
                               env={**os.environ, "PORT": str(port), **settings}, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_until(lambda: http_status(port, "GET", "/health") == 200, what="the daemon to answer /health")
        for method, path in asks:
            assert http_status(port, method, path) == 200
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    return json.loads(out.strip().splitlines()[-1])


def http_status(port: int, method: str, path: str):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = json.dumps(load_example()).encode() if method == "POST" else None
        connection.request(method, path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


def test_a_daemon_without_templates_loads_neither_the_template_language_nor_the_status_page(tmp_path):
    assert loaded_by_a_daemon(tmp_path, [("POST", "/webhook"), ("GET", "/metrics")]) == []


def test_the_status_page_loads_when_first_asked_for(tmp_path):
    assert loaded_by_a_daemon(tmp_path, [("GET", "/status")]) == ["rcwebhook.web.status"]


def test_configured_templates_load_the_template_language(tmp_path):
    (tmp_path / "t.tmpl").write_text('{{ define "t" }}{{ len .Alerts }} alerts{{ end }}')
    assert loaded_by_a_daemon(tmp_path, [("POST", "/webhook")], TEMPLATE_FILES="t.tmpl", TEMPLATE_TEXT="t") == [
        "rcwebhook.amtemplate", "rcwebhook.gotemplate", "rcwebhook.messages.templates"]
