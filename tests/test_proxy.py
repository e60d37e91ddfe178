"""Posts to Rocket.Chat through an HTTP proxy set in the env file (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)."""

from __future__ import annotations

import http.client
import os
import select
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List

import pytest

from rcwebhook.config import loading
from rcwebhook.config.describe import describe
from rcwebhook.config.settings import ConfigError, Settings
from tests.conftest import Daemon, load_example


class Proxy(ThreadingHTTPServer):
    """A forwarding (absolute-URI requests) and CONNECT proxy on loopback that records what it carried."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.seen: List[str] = []
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.server.seen.append(f"POST {self.path}")
        target = urllib.parse.urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        upstream.request("POST", target.path, body, {"Content-Type": self.headers.get("Content-Type", "")})
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    def do_CONNECT(self) -> None:
        self.server.seen.append(f"CONNECT {self.path}")
        host, port = self.path.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        sockets = [self.connection, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 10)
            if not readable:
                break
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    upstream.close()
                    return
                (upstream if sock is self.connection else self.connection).sendall(data)


@pytest.fixture
def proxy():
    server = Proxy()
    yield server
    server.shutdown()
    server.server_close()


def load(tmp_path, text: str) -> Settings:
    path = tmp_path / "rcwebhook.env"
    path.write_text(text)
    path.chmod(0o600)
    settings, _ = loading.load(path, {})  # nothing from the test's own environment
    return settings


@pytest.mark.parametrize("key", ["HTTP_PROXY", "http_proxy"])
def test_posts_go_through_the_proxy_set_in_the_env_file(tmp_path, rocketchat, proxy, key):
    hook = rocketchat.add_hook("warning")
    settings = load(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nPORT=0\n{key}={proxy.url}\n")
    daemon = Daemon(settings)
    try:
        status, _, body = daemon.post_json(load_example())
    finally:
        daemon.stop()
    assert status == 200, body
    assert len(rocketchat.messages("warning")) == 1
    assert proxy.seen and all(line.startswith(f"POST {rocketchat.base_url}/hooks/") for line in proxy.seen)


def test_no_proxy_sends_directly(tmp_path, rocketchat, proxy):
    hook = rocketchat.add_hook("warning")
    settings = load(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nPORT=0\nHTTP_PROXY={proxy.url}\n"
                              "NO_PROXY=localhost,127.0.0.1\n")
    daemon = Daemon(settings)
    try:
        assert daemon.post_json(load_example())[0] == 200
    finally:
        daemon.stop()
    assert proxy.seen == [] and len(rocketchat.messages("warning")) == 1


def test_the_process_environment_alone_does_not_route_posts(tmp_path, rocketchat, proxy, monkeypatch):
    """The transport takes its proxies from the settings, which read the environment through the
    configuration like every other key; it does not read os.environ itself."""
    hook = rocketchat.add_hook("warning")
    settings = load(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nPORT=0\n")
    monkeypatch.setitem(os.environ, "http_proxy", proxy.url)
    daemon = Daemon(settings)
    try:
        assert daemon.post_json(load_example())[0] == 200
    finally:
        daemon.stop()
    assert proxy.seen == []


def test_https_proxy_tunnels_with_connect(tmp_path, proxy):
    from rcwebhook.delivery import transport as delivery

    settings = load(tmp_path, "DRY_RUN=true\nHTTPS_PROXY=" + proxy.url + "\n")
    with socket.socket() as unused:  # CONNECT to a closed port: the tunnel is asked for, then fails
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    answer = delivery.make_transport(settings)(f"https://127.0.0.1:{port}/hooks/a/b", b"{}", 5)
    assert not answer.accepted
    assert proxy.seen == [f"CONNECT 127.0.0.1:{port}"]


def test_proxy_urls_are_validated_and_their_passwords_kept_secret(tmp_path):
    settings = load(tmp_path, "DRY_RUN=true\nHTTPS_PROXY=http://user:pa55word@proxy.example.com:3128\n")
    assert "pa55word" in settings.secrets()
    assert "pa55word" not in "\n".join(describe(settings))
    path = tmp_path / "bad.env"
    path.write_text("DRY_RUN=true\nHTTPS_PROXY=proxy.example.com:3128 x\n")
    with pytest.raises(ConfigError) as caught:
        loading.load(path, {})
    assert any("HTTPS_PROXY" in problem for problem in caught.value.problems)
