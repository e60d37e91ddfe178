"""Operating it: /metrics, SIGHUP reload, graceful stop, systemd notify and watchdog, --send-test."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import ROOT, load_example

ENTRY = str(ROOT / "rcwebhook.py")


def parse_metrics(text: str) -> Dict[str, float]:
    """Return {'name{labels}': value} for every sample line."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def one_alert(name="A", severity="critical", group="g"):
    return {"groupKey": group, "alerts": [{"status": "firing", "fingerprint": name,
                                           "labels": {"alertname": name, "severity": severity}}]}


# --- /metrics --------------------------------------------------------------------------------

def test_metrics_count_known_traffic_exactly(start_daemon, rocketchat):
    hooks = {f"ROCKETCHAT_WEBHOOK_{n.upper()}": rocketchat.add_hook(n) for n in ("critical", "warning", "info")}
    daemon = start_daemon(**hooks)
    assert daemon.post_json(load_example())[0] == 200                     # critical + warning posted
    assert daemon.post_json(load_example())[0] == 200                     # both skipped as duplicates
    assert daemon.post_json(b"{broken")[0] == 400
    assert daemon.request("POST", "/webhook", b"a=b", {"Content-Type": "text/plain"})[0] == 415
    rocketchat.fail_next("critical", 1, status=400, error="Invalid href value provided")
    assert daemon.post_json(one_alert("Refused", group="r"))[0] == 502
    rocketchat.fail_next("info", 1, status=503)
    assert daemon.post_json(one_alert("Retried", severity="info", group="i"))[0] == 200

    status, headers, _ = daemon.request("HEAD", "/metrics")
    assert status == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    with urllib.request.urlopen(daemon.url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = parse_metrics(text)
    expected = {
        'webhook_requests_total{code="200"}': 3,
        'webhook_requests_total{code="400"}': 1,
        'webhook_requests_total{code="415"}': 1,
        'webhook_requests_total{code="502"}': 1,
        'webhook_errors_total{reason="bad_request"}': 1,
        'webhook_errors_total{reason="unsupported_media_type"}': 1,
        'webhook_errors_total{reason="rocketchat_refused"}': 1,
        'webhook_errors_total{reason="rocketchat_unavailable"}': 0,
        "webhook_request_duration_seconds_count": 6,
        'rcwebhook_alerts_received_total{status="firing",severity="critical"}': 3,
        'rcwebhook_alerts_received_total{status="firing",severity="warning"}': 2,
        'rcwebhook_alerts_received_total{status="firing",severity="info"}': 1,
        'rcwebhook_rocketchat_posts_total{route="critical",outcome="accepted"}': 1,
        'rcwebhook_rocketchat_posts_total{route="critical",outcome="refused"}': 1,
        'rcwebhook_rocketchat_posts_total{route="warning",outcome="accepted"}': 1,
        'rcwebhook_rocketchat_posts_total{route="info",outcome="failed"}': 1,
        'rcwebhook_rocketchat_posts_total{route="info",outcome="accepted"}': 1,
        'rcwebhook_rocketchat_retries_total{route="info",reason="server_error"}': 1,
        'rcwebhook_duplicates_skipped_total{route="critical"}': 1,
        'rcwebhook_duplicates_skipped_total{route="warning"}': 1,
        'rcwebhook_rocketchat_post_duration_seconds_count{route="info"}': 2,
        "rcwebhook_pending_posts": 0,
        'rcwebhook_build_info{version="2.0.0"}': 1,
        "rcwebhook_config_last_reload_successful": 1,
    }
    assert {k: samples.get(k) for k in expected} == expected
    for name in ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds",
                 "process_start_time_seconds"):
        assert samples[name] > 0
    assert abs(samples["process_start_time_seconds"] - time.time()) < 3600
    buckets = [(k, v) for k, v in samples.items() if k.startswith("webhook_request_duration_seconds_bucket")]
    values = [v for _, v in buckets]
    assert values == sorted(values) and buckets[-1][0].endswith('{le="+Inf"}') and values[-1] == 6
    for token in (rocketchat.token(n) for n in ("critical", "warning", "info")):
        assert token not in text
    assert "/hooks/" not in text


# --- the daemon as a process -------------------------------------------------------------------

class Process:
    """rcwebhook as a child process with its log lines collected by a reader thread."""

    def __init__(self, tmp_path: Path, config_text: str, *args: str, **env: str) -> None:
        self.config = tmp_path / "rcwebhook.env"
        self.write_config(config_text)
        environ = {"PATH": os.environ["PATH"], "PORT": "0", **env}
        self.proc = subprocess.Popen([sys.executable, ENTRY, "--config", str(self.config), *args],
                                     stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environ)
        self.lines: List[str] = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = int(self.wait_for(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        self.url = f"http://127.0.0.1:{self.port}"

    def write_config(self, text: str) -> None:
        self.config.write_text(text)
        self.config.chmod(0o600)

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 10, after: int = 0) -> re.Match:
        regex = re.compile(pattern)
        found = []

        def seen():
            found[:] = [m for m in (regex.search(line) for line in self.lines[after:]) if m]
            return bool(found)

        with self.cond:
            if not self.cond.wait_for(seen, timeout):
                raise AssertionError(f"no log line matching {pattern!r}:\n" + "\n".join(self.lines))
        return found[0]

    def post(self, payload, timeout: float = 15) -> int:
        request = urllib.request.Request(self.url + "/webhook", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def metrics(self) -> Dict[str, float]:
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            return parse_metrics(response.read().decode())

    def exited(self, timeout: float) -> int:
        """Wait for the daemon to exit and for the reader to take its last line; return its exit code."""
        code = self.proc.wait(timeout)
        self.reader.join(timeout)
        return code

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def processes():
    started: List[Process] = []

    def start(*args, **kwargs) -> Process:
        process = Process(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def test_reload_applies_a_valid_change_and_refuses_an_invalid_one(tmp_path, rocketchat, processes):
    first, second = rocketchat.add_hook("first"), rocketchat.add_hook("second")
    daemon = processes(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={first}\nDEDUP_WINDOW=0\n")

    def alerts(hook):
        return sum(len(m["attachments"]) for m in rocketchat.messages(hook))

    assert daemon.post(load_example()) == 200
    assert alerts("first") == 2

    daemon.write_config(f"ROCKETCHAT_WEBHOOK_WARNING={second}\nDEDUP_WINDOW=0\n")
    mark = len(daemon.lines)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("Configuration reloaded from", after=mark)
    assert daemon.post(load_example()) == 200
    assert (alerts("first"), alerts("second")) == (2, 2)

    daemon.write_config(f"ROCKETCHAT_WEBHOOK_WARNING={first}\nMAX_CONNECTIONS=many\nDELIVERY_TIMEOUT=-3\n")
    mark = len(daemon.lines)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("still running with the previous one", after=mark)
    refused = "\n".join(daemon.lines[mark:])
    assert f"Reload refused: {daemon.config}:2: MAX_CONNECTIONS='many' is not a whole number" in refused
    assert f"Reload refused: {daemon.config}:3: DELIVERY_TIMEOUT='-3' is out of range" in refused
    assert daemon.post(load_example()) == 200
    assert alerts("second") == 4  # the old settings still apply
    assert daemon.metrics()["rcwebhook_config_last_reload_successful"] == 0
    for token in (rocketchat.token("first"), rocketchat.token("second")):
        assert token not in "\n".join(daemon.lines)


def test_no_request_in_flight_fails_during_reloads(tmp_path, rocketchat, processes):
    hook = rocketchat.add_hook("warning")
    daemon = processes(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nDEDUP_WINDOW=0\nROCKETCHAT_RATE_LIMIT=0\n")
    statuses: List[int] = []
    stop = threading.Event()

    def traffic():
        i = 0
        while not stop.is_set():
            statuses.append(daemon.post(one_alert(f"R{i}", severity="warning", group=f"g{i}")))
            i += 1

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        for reload_number in range(5):
            mark = len(daemon.lines)
            daemon.signal(signal.SIGHUP)
            daemon.wait_for("Configuration reloaded from", after=mark)
    finally:
        stop.set()
        worker.join(20)
    assert len(statuses) >= 5
    assert set(statuses) == {200}
    assert len(rocketchat.messages("warning")) == len(statuses)


def test_sigterm_lets_the_request_in_flight_finish(tmp_path, rocketchat, processes):
    hook = rocketchat.add_hook("warning")
    daemon = processes(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nDELIVERY_TIMEOUT=1\n")
    rocketchat.fail_next("warning", 1, mode="slow", delay=1.0)
    answers: List[int] = []
    worker = threading.Thread(target=lambda: answers.append(daemon.post(load_example())))
    worker.start()
    rocketchat.wait_for_requests("warning", 1)  # the post is in flight, held by Rocket.Chat
    daemon.signal(signal.SIGTERM)
    daemon.wait_for("Received SIGTERM, stopping")
    daemon.wait_for("Closed the listening socket; waiting up to 15s for 1 request in flight")
    with pytest.raises(OSError):  # no new connections
        socket.create_connection(("127.0.0.1", daemon.port), timeout=2).close()
    worker.join(15)
    assert answers == [200]  # Rocket.Chat's late answer was waited for
    assert daemon.exited(15) == 0
    assert daemon.lines[-1].endswith("rcwebhook stopped")
    rocketchat.release_stalled()


# --- systemd's notify protocol -----------------------------------------------------------------

class NotifySocket:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: List[str] = []

    def wait_for(self, field: str, timeout: float = 10) -> List[str]:
        deadline = time.monotonic() + timeout
        while not any(field in m.split("\n") for m in self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {field} among {self.messages}")
            self.sock.settimeout(remaining)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return self.messages

    def close(self) -> None:
        self.sock.close()


def test_notify_ready_watchdog_reloading_and_stopping(tmp_path, processes):
    notify = NotifySocket(tmp_path / "notify")
    try:
        daemon = processes(tmp_path, "DRY_RUN=true\n", NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="400000")
        notify.wait_for("READY=1")
        ready = next(m for m in notify.messages if "READY=1" in m.split("\n"))
        assert f"STATUS=Serving on {daemon.url}" in ready
        assert f"MAINPID={daemon.proc.pid}" in ready
        start = len(notify.messages)
        deadline = time.monotonic() + 5
        while sum(m == "WATCHDOG=1" for m in notify.messages[start:]) < 4 and time.monotonic() < deadline:
            notify.wait_for("WATCHDOG=1")
            notify.messages.append(notify.sock.recv(4096).decode())
        assert sum(m == "WATCHDOG=1" for m in notify.messages[start:]) >= 4
        daemon.signal(signal.SIGHUP)
        notify.wait_for("RELOADING=1")
        reloading = next(i for i, m in enumerate(notify.messages) if "RELOADING=1" in m.split("\n"))
        assert re.search(r"^MONOTONIC_USEC=\d+$", notify.messages[reloading], re.M)
        deadline = time.monotonic() + 10
        while not any("READY=1" in m.split("\n") for m in notify.messages[reloading + 1:]):
            assert time.monotonic() < deadline, notify.messages
            notify.sock.settimeout(deadline - time.monotonic())
            notify.messages.append(notify.sock.recv(4096).decode())
        daemon.signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert daemon.proc.wait(15) == 0
    finally:
        notify.close()


def test_watchdog_meant_for_another_process_is_ignored(tmp_path, processes):
    notify = NotifySocket(tmp_path / "notify")
    try:
        daemon = processes(tmp_path, "DRY_RUN=true\n", NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="200000",
                           WATCHDOG_PID="1")
        notify.wait_for("READY=1")
        daemon.signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert not any("WATCHDOG=1" in m for m in notify.messages)
    finally:
        notify.close()


def test_without_notify_socket_nothing_is_sent(tmp_path, processes):
    daemon = processes(tmp_path, "DRY_RUN=true\n")
    assert daemon.stop() == 0


# --- --send-test ---------------------------------------------------------------------------------

def send_test(tmp_path: Path, config_text: str, *args: str) -> subprocess.CompletedProcess:
    config = tmp_path / "send-test.env"
    config.write_text(config_text)
    config.chmod(0o600)
    return subprocess.run([sys.executable, ENTRY, "--config", str(config), "--send-test", *args],
                          capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})


def test_send_test_posts_a_labelled_alert_through_each_route(tmp_path, rocketchat):
    hooks = {n: rocketchat.add_hook(n) for n in ("critical", "warning", "info")}
    config = "".join(f"ROCKETCHAT_WEBHOOK_{n.upper()}={url}\n" for n, url in hooks.items())
    result = send_test(tmp_path, config)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in hooks:
        assert f"{name}: delivered (200) to {rocketchat.base_url}/hooks/{rocketchat.integration_id(name)}/***" in lines
        [posted] = rocketchat.messages(name)
        emoji = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}[name]
        assert posted["text"].startswith(f"{emoji} [FIRING:1] RcwebhookTest host=")
        assert posted["text"].endswith(": ignore it")
        assert posted["attachments"][0]["title"].startswith("RcwebhookTest: Test alert from rcwebhook on ")
        assert "No action is needed" in posted["attachments"][0]["text"]
        assert rocketchat.token(name) not in result.stdout + result.stderr


def test_send_test_one_route(tmp_path, rocketchat):
    hooks = {n: rocketchat.add_hook(n) for n in ("critical", "warning", "info")}
    config = "".join(f"ROCKETCHAT_WEBHOOK_{n.upper()}={url}\n" for n, url in hooks.items())
    result = send_test(tmp_path, config, "info")
    assert result.returncode == 0
    assert result.stdout.startswith("info: delivered (200)")
    assert [len(rocketchat.messages(n)) for n in hooks] == [0, 0, 1]


def test_send_test_reports_a_failing_route_and_exits_1(tmp_path, rocketchat):
    good = rocketchat.add_hook("warning")
    wrong = rocketchat.add_hook("critical")[: -len(rocketchat.token("critical"))] + "not-the-token"
    result = send_test(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={good}\nROCKETCHAT_WEBHOOK_CRITICAL={wrong}\n")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("critical: FAILED (404: Invalid integration id or token provided.) to ")
    assert lines[0].endswith("check ROCKETCHAT_WEBHOOK_CRITICAL: Rocket.Chat does not know this integration id or token")
    assert lines[1].startswith("warning: delivered (200)")
    assert lines[2].startswith("info: delivered (200)") and "(the warning URL)" in lines[2]
    assert "not-the-token" not in result.stdout


# --- a reload builds everything first, changes nothing when it fails, and keeps the rules -------

def test_a_bad_ca_file_on_reload_is_refused_and_the_daemon_keeps_serving(tmp_path, rocketchat, processes):
    hook = rocketchat.add_hook("warning")
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    daemon = processes(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\n")
    daemon.write_config(f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nROCKETCHAT_CA_FILE={bad_ca}\n")
    mark = len(daemon.lines)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("still running with the previous", after=mark)
    assert any("ROCKETCHAT_CA_FILE" in line for line in daemon.lines[mark:]), daemon.lines[mark:]
    assert daemon.proc.poll() is None
    assert daemon.post(load_example()) == 200
    assert daemon.metrics()["rcwebhook_config_last_reload_successful"] == 0


def test_check_config_and_start_refuse_a_bad_ca_file_naming_it(tmp_path):
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate\n")
    path = tmp_path / "rcwebhook.env"
    path.write_text(f"DRY_RUN=true\nROCKETCHAT_CA_FILE={bad_ca}\n")
    for args in (["--check-config"], []):
        result = subprocess.run([sys.executable, ENTRY, "--config", str(path), *args], capture_output=True,
                                text=True, timeout=30, env={"PATH": os.environ["PATH"], "PORT": "0"})
        assert result.returncode == 78, result.stderr
        assert f"{path}:2: ROCKETCHAT_CA_FILE='{bad_ca}' holds no usable CA certificate" in result.stderr


@pytest.fixture
def service(start_daemon):
    """A Service around an in-process server, reloading from `service.next` (settings or an exception)."""
    from rcwebhook.service import Service
    from tests.conftest import make_settings

    holder = {}
    def loader():
        if isinstance(holder["next"], Exception):
            raise holder["next"]
        return holder["next"], []

    def make(**values):
        daemon = start_daemon(**values)
        made = Service(loader, {})
        made.server = daemon.server
        made.daemon = daemon
        made.offer = lambda **new: holder.__setitem__("next", make_settings(**{"PORT": "0", **new}))
        return made

    return make


def test_a_failed_reload_changes_nothing(service, tmp_path, monkeypatch, logs):
    import ssl

    from rcwebhook import service as service_module

    svc = service(DRY_RUN="true", LOG_LEVEL="INFO", CLIENT_RATE_LIMIT="5")
    before = svc.server.settings
    log_file = tmp_path / "new.log"
    svc.offer(DRY_RUN="true", LOG_LEVEL="DEBUG", LOG_FILE=str(log_file), CLIENT_RATE_LIMIT="7")

    def broken(settings):
        raise ssl.SSLError("the CA file changed under us")
    monkeypatch.setattr(service_module, "make_transport", broken)  # as the reload builds it
    assert svc.reload() is False
    assert svc.server.settings is before
    assert not log_file.exists()  # no log handler was swapped in either
    assert any("Reload refused" in line for line in logs.lines())


def test_reload_cannot_turn_authentication_off_on_a_public_listener(service, logs):
    svc = service(DRY_RUN="true", API_KEY="k3y-0f-the-test")
    # The listener stands for one on 0.0.0.0 (the test stays on loopback): HOST needs a restart,
    # so a reload to HOST=127.0.0.1 without API_KEY would leave 0.0.0.0 open to all.
    svc.server.settings = svc.server.settings._replace(host="0.0.0.0")
    svc.offer(DRY_RUN="true", HOST="127.0.0.1")
    assert svc.reload() is False
    refused = "\n".join(line for line in logs.lines() if line.startswith("Reload refused"))
    assert "HOST=0.0.0.0" in refused and "API_KEY" in refused and "ALLOW_UNAUTHENTICATED" in refused
    assert svc.server.settings.api_key == "k3y-0f-the-test"
    status, _, _ = svc.daemon.post_json(load_example())
    assert status == 401


def test_an_error_in_a_tick_of_the_serving_loop_does_not_end_it(start_daemon, logs):
    daemon = start_daemon(DRY_RUN="true")
    fired = threading.Event()

    def broken_tick():
        if not fired.is_set():
            fired.set()
            raise RuntimeError("a tick failed")
    daemon.server.on_tick.append(broken_tick)
    assert fired.wait(5)
    assert daemon.request("GET", "/health", timeout=5)[0] == 200
    assert any("Internal error in the serving loop" in line for line in logs.lines())


def test_client_rate_limit_changed_by_reload_takes_full_effect(service):
    svc = service(DRY_RUN="true", CLIENT_RATE_LIMIT="0.001", CLIENT_RATE_BURST="1", CLIENT_RATE_LIMIT_LOOPBACK="true")
    assert svc.daemon.post_json(load_example())[0] == 200
    assert svc.daemon.post_json(load_example())[0] == 503  # over the limit
    svc.offer(DRY_RUN="true", CLIENT_RATE_LIMIT="0.001", CLIENT_RATE_BURST="3", CLIENT_RATE_LIMIT_LOOPBACK="true")
    assert svc.reload() is True
    assert [svc.daemon.post_json(load_example())[0] for _ in range(4)] == [200, 200, 200, 503]


def test_client_limit_turned_off_during_a_request_is_no_division_by_zero(service):
    """A reload to CLIENT_RATE_LIMIT=0 lands while a request is being counted (here: just as the
    limiter takes its lock); the request is answered, not failed with a ZeroDivisionError."""
    svc = service(DRY_RUN="true", CLIENT_RATE_LIMIT="0.001", CLIENT_RATE_BURST="1", CLIENT_RATE_LIMIT_LOOPBACK="true")
    assert svc.daemon.post_json(load_example())[0] == 200
    limiter = svc.server.client_limiter
    real_lock = limiter._lock
    svc.offer(DRY_RUN="true", CLIENT_RATE_LIMIT="0", CLIENT_RATE_LIMIT_LOOPBACK="true")

    class ReloadOnEntry:
        fired = False

        def __enter__(self):
            if not ReloadOnEntry.fired:
                ReloadOnEntry.fired = True
                svc.reload()
            real_lock.acquire()

        def __exit__(self, *exc):
            real_lock.release()

        def acquire(self, *args):
            return real_lock.acquire(*args)

        def release(self):
            real_lock.release()

    limiter._lock = ReloadOnEntry()
    assert svc.daemon.post_json(load_example())[0] == 200
    assert ReloadOnEntry.fired


def test_status_shows_the_last_reload_and_whether_it_worked(service):
    from rcwebhook.config.settings import ConfigError

    svc = service(DRY_RUN="true")

    def last_reload():
        return svc.daemon.request("GET", "/status.json")[2]["last_reload"]

    assert last_reload()["kind"] == "start" and last_reload()["ok"] is True
    def invalid():
        raise ConfigError(["rcwebhook.env:2: MAX_CONNECTIONS='many' is not a whole number"])
    svc.loader = invalid
    assert svc.reload() is False
    refused = last_reload()
    assert (refused["kind"], refused["ok"]) == ("reload", False)
    assert "MAX_CONNECTIONS='many' is not a whole number" in refused["error"]
    page = svc.daemon.request("GET", "/status", headers={"Accept": "application/json"})[2]
    assert page["last_reload"]["ok"] is False
    svc.loader = lambda: (svc.server.settings._replace(max_connections=3), [])
    assert svc.reload() is True
    assert last_reload()["ok"] is True and last_reload()["error"] == ""


def test_after_a_reload_the_service_stops_with_the_new_settings(service, logs):
    svc = service(DRY_RUN="true", DELIVERY_DEADLINE="2")
    svc.offer(DRY_RUN="true", DELIVERY_DEADLINE="8")
    assert svc.reload() is True
    svc._stop()
    # The stop lets requests in flight run to DELIVERY_DEADLINE and 5 s more: the new one, 8 s.
    assert any("waiting up to 13s for 0 requests in flight" in line for line in logs.lines()), logs.lines()


def start_with_slow_log_destinations(emit, logger, destinations=("file",)) -> List[tuple]:
    """Run a Service whose log destinations (on `logger`, restored by the caller) write each line with
    `emit(line, written)`; return, for each READY=1 sent (the daemon stops at the first), the seconds since
    the start and the lines written by then. The signal handlers the Service installs are put back."""
    import logging

    from rcwebhook.operations import logs as logs_module
    from rcwebhook.service import Service
    from tests.conftest import make_settings

    written: List[str] = []

    class SlowDisk(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            emit(record.getMessage(), written)

    for destination in destinations:
        logger.addHandler(logs_module.Outbox(SlowDisk(), destination, []))
    logger.setLevel(logging.INFO)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    service = Service(lambda: (make_settings(DRY_RUN="true", PORT="0"), []), {})
    at_ready: List[tuple] = []

    def ready(status: str) -> None:
        at_ready.append((time.monotonic() - started, list(written)))
        service.stop_signal = "SIGTERM"

    service.notifier.ready = ready
    started = time.monotonic()
    try:
        assert service.run(make_settings(DRY_RUN="true", PORT="0")) == 0
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return at_ready


def test_the_listening_line_is_written_before_systemd_is_told_ready(restore_logger):
    # journalctl shows "listening on" before systemd's "Started": the line goes through a destination's
    # writer thread, and READY=1 went while a slow destination still held it (the boot test's order was a race).
    def slow(line: str, written: List[str]) -> None:
        time.sleep(0.05)
        written.append(line)

    [(_, lines)] = start_with_slow_log_destinations(slow, restore_logger)
    assert any(" listening on http://127.0.0.1:" in line for line in lines), lines


def test_stalled_log_destinations_hold_ready_back_for_ready_flush_in_all(monkeypatch, restore_logger):
    from rcwebhook import service

    monkeypatch.setattr(service, "READY_FLUSH", 0.3)
    release = threading.Event()

    def stalled(line: str, written: List[str]) -> None:
        release.wait(30)  # a journal that takes nothing (released when the test ends)
        written.append(line)

    try:
        # Two destinations (the journal and LOG_FILE), stalled: the wait is READY_FLUSH in all, not each.
        [(took, lines)] = start_with_slow_log_destinations(stalled, restore_logger, ("journal", "file"))
    finally:
        release.set()
    assert lines == []  # READY=1 went with nothing written
    assert 0.3 <= took < 0.6, took  # the flush's wait, and the start-up's own work (0.04 s here)
