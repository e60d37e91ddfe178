"""Shared fixtures: a stand-in Rocket.Chat, an in-process rcwebhook, and log capture."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

import pytest

from rcwebhook.cli import compile_templates
from rcwebhook.config.settings import Settings, build
from rcwebhook.web import server as server_module
from rcwebhook.web.server import Server
from tests.rocketchat_standin import RocketChatStandin

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ALERT = ROOT / "examples" / "test-alert.json"


@pytest.fixture
def rocketchat() -> Iterator[RocketChatStandin]:
    """A running stand-in Rocket.Chat with no rate limit."""
    with RocketChatStandin() as standin:
        yield standin


def make_settings(**values: str) -> Settings:
    """Return Settings from KEY=value keyword arguments over the defaults; fail the test on errors."""
    errors: List[str] = []
    settings = build(values, errors, [], compile_templates=compile_templates)
    assert not errors, errors
    return settings


class Daemon:
    """An rcwebhook server on an ephemeral loopback port, serving in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.server = Server(settings)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return self.server.url

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[Mapping[str, str]] = None, timeout: float = 30) -> Tuple[int, Dict[str, str], Any]:
        """Return (status, headers, parsed JSON body) of one request on a fresh connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
        finally:
            conn.close()

    def post_json(self, payload: Any, path: str = "/webhook", **kwargs) -> Tuple[int, Dict[str, str], Any]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", path, body, {"Content-Type": "application/json"}, **kwargs)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def start_daemon(monkeypatch) -> Iterator[Callable[..., Daemon]]:
    """Start rcwebhook in-process with settings given as KEY=value keywords (PORT defaults to 0); a
    `transport` ((url, body, timeout) -> Answer) stands for the network to Rocket.Chat, in place of the one
    the settings would make."""
    daemons: List[Daemon] = []

    def start(transport=None, **values: str) -> Daemon:
        values.setdefault("PORT", "0")
        settings = make_settings(**values)
        with monkeypatch.context() as patch:
            if transport is not None:
                patch.setattr(server_module, "make_transport", lambda _settings: transport)
            daemon = Daemon(settings)
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        daemon.stop()


class LogCapture(logging.Handler):
    """Collects formatted rcwebhook log lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []
        self.lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        # The daemon turns off logging's own record of the thread (logs.install: no format uses it), so
        # the capture notes the emitting thread itself: tests pair a request's lines by it.
        record.emitted_by = threading.get_ident()
        with self.lock_:
            self.records.append(record)

    def lines(self, level: int = logging.DEBUG) -> List[str]:
        with self.lock_:
            return [r.getMessage() for r in self.records if r.levelno >= level]

    def text(self) -> str:
        return "\n".join(self.lines())


@pytest.fixture
def logs() -> Iterator[LogCapture]:
    """Capture everything the `rcwebhook` logger emits."""
    capture = LogCapture()
    logger = logging.getLogger("rcwebhook")
    old_level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(old_level)


@pytest.fixture
def restore_logger() -> Iterator[logging.Logger]:
    """The `rcwebhook` logger after the test: the handlers it added removed and closed, its level and
    propagation as before. (Handlers the test's logs.configure replaced are closed: not added again.)"""
    logger = logging.getLogger("rcwebhook")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield logger
    for handler in list(logger.handlers):
        if handler not in handlers:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(level)
    logger.propagate = propagate


def load_example() -> Dict[str, Any]:
    return json.loads(EXAMPLE_ALERT.read_text())


def require_program(path: str) -> str:
    """Return `path` if that program is installed; skip the test if not, but fail it under CI."""
    import os
    import shutil

    found = shutil.which(path)
    if found:
        return found
    message = f"{path} is not installed (.ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")
