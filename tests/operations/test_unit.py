"""What the package runs beside the daemon: whether it is configured, and the synchronous reload."""

from __future__ import annotations

import io
import os
import re
import signal
import time
from typing import List

import pytest

from rcwebhook.operations import unit
from tests.conftest import ROOT
from tests.test_operations import NotifySocket, Process

EXAMPLE_ENV = (ROOT / "examples" / "rcwebhook.env").read_text()
HOOK = "https://chat.example.com/hooks/abc123/SECRETTOKEN"


@pytest.fixture
def daemons():
    """Start rcwebhook processes (test_operations.Process); stop them at the end."""
    started: List[Process] = []

    def start(*args, **kwargs) -> Process:
        started.append(Process(*args, **kwargs))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def configured(tmp_path, text: str, **environ: str):
    path = tmp_path / "rcwebhook.env"
    path.write_text(text)
    path.chmod(0o640)
    err = io.StringIO()
    return unit.main(["configured", "--config", str(path)], environ=environ, err=err), err.getvalue()


def test_a_fresh_install_is_not_configured_and_is_told_what_to_set(tmp_path):
    status, said = configured(tmp_path, EXAMPLE_ENV)
    assert status == 1  # the postinst neither enables nor starts the service
    assert "rcwebhook is not configured yet, so it is neither enabled nor started" in said
    assert "ROCKETCHAT_WEBHOOK_WARNING" in said and str(tmp_path / "rcwebhook.env") in said
    assert "systemctl enable --now rcwebhook" in said


def test_a_url_or_dry_run_is_configured(tmp_path):
    assert configured(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\n") == (0, "")
    assert configured(tmp_path, "DRY_RUN=true\n") == (0, "")


def test_a_wrong_configuration_counts_as_configured_so_that_the_daemon_says_why(tmp_path):
    # Not a fresh install: the daemon must start, fail with exit 78 and log every problem.
    assert configured(tmp_path, "THIS LINE IS BROKEN\n") == (0, "")
    assert configured(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nPORT=many\n") == (0, "")


def test_the_message_is_a_warning_in_the_journal(tmp_path):
    path = tmp_path / "rcwebhook.env"
    path.write_text(EXAMPLE_ENV)
    with open(tmp_path / "stderr", "w") as err:
        status = os.fstat(err.fileno())
        assert unit.main(["configured", "--config", str(path)],
                         environ={"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}, err=err) == 1
    assert (tmp_path / "stderr").read_text().startswith("<4>rcwebhook is not configured yet")


def test_wrong_arguments_are_refused():
    err = io.StringIO()
    assert unit.main(["reload"], environ={}, err=err) == 2
    assert "usage:" in err.getvalue()


def wait_for_state(runtime, expected, timeout: float = 10) -> None:
    """Wait until the daemon's reload state file says `expected` (it is written just before READY=1)."""
    deadline = time.monotonic() + timeout
    while unit.read_state(runtime / "reload") != expected:
        assert time.monotonic() < deadline, unit.read_state(runtime / "reload")
        time.sleep(0.01)


def test_reload_returns_once_the_new_configuration_is_in_use(tmp_path, daemons):
    runtime = tmp_path / "run"
    runtime.mkdir()
    daemon = daemons(tmp_path, "DRY_RUN=true\n", RUNTIME_DIRECTORY=str(runtime))
    wait_for_state(runtime, (0, "ok"))
    for i in range(1, 4):
        daemon.write_config(f"DRY_RUN=true\nMAX_ALERTS_PER_MESSAGE={i}\n")
        before = daemon.metrics()["rcwebhook_config_last_reload_success_timestamp_seconds"]
        err = io.StringIO()
        mark = len(daemon.lines)
        assert unit.main(["reload", str(daemon.proc.pid)], environ={"RUNTIME_DIRECTORY": str(runtime)}, err=err) == 0
        # Synchronous: done when it returns, not up to a serving-loop tick later.
        assert daemon.metrics()["rcwebhook_config_last_reload_success_timestamp_seconds"] > before
        assert unit.read_state(runtime / "reload") == (i, "ok")
        assert err.getvalue() == ""
        daemon.wait_for("Configuration reloaded from", after=mark)  # written by the daemon's log thread
    assert len([line for line in daemon.lines if "Configuration reloaded from" in line]) == 3


def test_refused_reload_fails_and_the_daemon_runs_on(tmp_path, daemons):
    runtime = tmp_path / "run"
    runtime.mkdir()
    daemon = daemons(tmp_path, "DRY_RUN=true\n", RUNTIME_DIRECTORY=str(runtime))
    wait_for_state(runtime, (0, "ok"))
    daemon.write_config("DRY_RUN=true\nTHIS LINE IS BROKEN\n")
    err = io.StringIO()
    assert unit.main(["reload", str(daemon.proc.pid)], environ={"RUNTIME_DIRECTORY": str(runtime)}, err=err) == 1
    assert "the new configuration was refused; the daemon runs on with the previous one" in err.getvalue()
    assert unit.read_state(runtime / "reload") == (1, "refused")
    assert daemon.metrics()["rcwebhook_config_last_reload_successful"] == 0
    assert daemon.proc.poll() is None


def test_reload_waits_for_a_reload_begun_after_it(tmp_path, daemons):
    # A reload already under way read the file before the caller changed it: it does not count.
    runtime = tmp_path / "run"
    runtime.mkdir()
    (runtime / "reload").write_text("4 reloading\n")
    daemon = daemons(tmp_path, "DRY_RUN=true\n")  # writes no state: the test plays the daemon's part
    calls = []

    def clock():
        calls.append(1)
        if len(calls) == 3:
            (runtime / "reload").write_text("4 ok\n")  # the earlier reload ends: not ours
        if len(calls) == 6:
            (runtime / "reload").write_text("5 refused\n")  # ours
        return time.monotonic()

    err = io.StringIO()
    assert unit.reload(daemon.proc.pid, {"RUNTIME_DIRECTORY": str(runtime)}, err, clock=clock) == 1
    assert len(calls) >= 6
    daemon.signal(signal.SIGTERM)


def test_reload_without_the_state_file_fails_without_signalling(tmp_path, daemons):
    daemon = daemons(tmp_path, "DRY_RUN=true\n")
    err = io.StringIO()
    assert unit.main(["reload", str(daemon.proc.pid)], environ={"RUNTIME_DIRECTORY": str(tmp_path)}, err=err) == 1
    assert "is missing or unreadable" in err.getvalue()
    assert not any("Configuration reloaded" in line for line in daemon.lines)


def test_stopping_tells_systemd_how_long_the_drain_may_take(tmp_path, daemons):
    notify = NotifySocket(tmp_path / "notify")
    try:
        daemon = daemons(tmp_path, "DRY_RUN=true\nDELIVERY_DEADLINE=3600\n", NOTIFY_SOCKET=notify.path)
        notify.wait_for("READY=1")
        daemon.signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        stopping = next(m for m in notify.messages if "STOPPING=1" in m.split("\n"))
        # DELIVERY_DEADLINE + 5 s of drain, 5 s for posts being answered, 10 s to spare: more than
        # TimeoutStopSec=30 allows.
        assert re.search(r"^EXTEND_TIMEOUT_USEC=3620000000$", stopping, re.M), stopping
        assert daemon.proc.wait(15) == 0
    finally:
        notify.close()


def test_the_helpers_docstrings_name_only_what_the_unit_runs():
    unit_file = (ROOT / "packaging" / "systemd" / "rcwebhook.service").read_text()
    for source in (ROOT / "rcwebhook" / "operations" / "unit.py", ROOT / "packaging" / "debian" / "rcwebhook-unit-helper.launcher"):
        for setting in set(re.findall(r"\b(Exec[A-Za-z]+)=", source.read_text())):
            assert re.search(rf"^{setting}=\S*unit-helper", unit_file, re.M), \
                f"{source.name} speaks of {setting}=, which rcwebhook.service does not run the helper in"
