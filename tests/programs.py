"""Helpers for tests that run a real program (Alertmanager, Prometheus) on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import List, Optional


# One Alertmanager receiver, rcwebhook, grouping by service with 1 s waits so that tests are quick.
ALERTMANAGER_CONFIG = """\
route:
  receiver: rcwebhook
  group_by: ['service']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: rcwebhook
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


def free_port() -> int:
    """Return a loopback port that was free a moment ago (the caller retries if it got taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProgramOnPort:
    """A program run as a subprocess on a free loopback port; subclasses give its command line."""

    ready_timeout = 10.0  # seconds each attempt may take to answer 200 on the ready path
    start_attempts = 3  # attempts when the port was taken meanwhile
    poll_interval = 0.05
    stop_timeout = 5.0  # seconds between terminate and kill
    tail_lines = 40  # stderr lines explain() shows

    def __init__(self, name: str, workdir: Path, ready_path: str) -> None:
        self.name = name
        self.workdir = workdir
        self.ready_path = ready_path
        self.process: Optional[subprocess.Popen] = None
        self.stderr_path = workdir / f"{name.lower()}.stderr"
        self.port = 0

    def arguments(self, attempt: int) -> List[str]:
        """Return the command line for start attempt `attempt`, listening on self.port."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the program on a free port and wait until it is ready; retry if the port was taken."""
        for attempt in range(self.start_attempts):
            self.port = free_port()
            self.stderr_path = self.workdir / f"{self.name.lower()}-{attempt}.stderr"
            with self.stderr_path.open("wb") as stderr:
                self.process = subprocess.Popen(self.arguments(attempt), stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL, stderr=stderr)
            if self._wait_ready():
                return
            port_taken = "address already in use" in self.stderr()
            self.stop()
            if not port_taken:
                break
        raise AssertionError(f"{self.name} did not become ready within {self.ready_timeout:g}s.{self.explain()}")

    def _wait_ready(self) -> bool:
        """Return True once GET ready_path answers 200, False if the process exits or the deadline passes."""
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            self.pause(self.poll_interval)
        return False

    def pause(self, seconds: float) -> None:
        """Wait up to `seconds` between polls; returns early if the program exits."""
        if self.process is None:
            return
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        """Terminate the program, killing it if it does not exit within stop_timeout."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def stderr(self) -> str:
        """Return what the program wrote to stderr in its latest start attempt."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def explain(self, tail_lines: Optional[int] = None) -> str:
        """Return the program's state and the tail of its stderr, for assertion messages."""
        state = "stopped"
        if self.process is not None:
            code = self.process.poll()
            state = "running" if code is None else f"exited with {code}"
        tail = "\n".join(self.stderr().splitlines()[-(tail_lines or self.tail_lines):])
        return f"\n--- {self.name} on port {self.port} ({state}), stderr tail:\n{tail}"
