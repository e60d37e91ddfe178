"""The command line as an operator runs it: real processes, exit codes, output, signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ALERT, ROOT

ENTRY = str(ROOT / "rcwebhook.py")
HOOK = "https://chat.example.com/hooks/abc123/SECRETTOKEN"


def clean_env(**extra: str) -> dict:
    """Return an environment without rcwebhook keys or a journal, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME", "PYTHONPATH")}
    env.update(extra)
    return env


def run(*args: str, cwd=None, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, ENTRY, *args], capture_output=True, text=True, timeout=30,
                          cwd=cwd or ROOT, env=clean_env(**env))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rcwebhook.env"
    path.write_text(text)
    path.chmod(0o640)
    return path


def test_version():
    result = run("--version")
    assert (result.returncode, result.stdout.strip()) == (0, "rcwebhook 2.0.0")


def test_help_lists_options_and_config_lookup():
    result = run("--help")
    assert result.returncode == 0
    for text in ("--config PATH", "--check-config", "--dry-run", "--version", "/etc/rcwebhook/rcwebhook.env",
                 "EX_CONFIG"):
        assert text in result.stdout


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run([sys.executable, "-m", "rcwebhook", "--version"], capture_output=True, text=True,
                            cwd=ROOT, env=clean_env(), timeout=30)
    assert result.stdout.strip() == "rcwebhook 2.0.0"


def test_check_config_prints_masked_settings_and_exits_0(tmp_path):
    path = write_config(tmp_path, f"ROCKETCHAT_WEBHOOK_CRITICAL={HOOK}\nDEFAULT_SEVERITY=critical\nPORT=9999\n")
    result = run("--check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "SECRETTOKEN" not in result.stdout + result.stderr
    assert "ROCKETCHAT_WEBHOOK_CRITICAL=https://chat.example.com/hooks/abc123/***" in result.stdout
    assert "PORT=9999" in result.stdout
    assert f"# config file: {path}" in result.stdout
    assert "the configuration is valid" in result.stderr


def test_check_config_prints_every_problem_and_exits_78(tmp_path):
    path = write_config(tmp_path, "PORT=0x10\nDELIVERY_TIMEOUT=-1\nnonsense\n")
    result = run("--check-config", "--config", str(path))
    assert result.returncode == 78
    lines = result.stderr.splitlines()
    assert f"rcwebhook: error: {path}:3: expected KEY=VALUE" in lines
    assert f"rcwebhook: error: {path}:1: PORT='0x10' is not a whole number" in lines
    assert f"rcwebhook: error: {path}:2: DELIVERY_TIMEOUT='-1' is out of range (0.1 to 300 seconds)" in lines
    assert any("ROCKETCHAT_WEBHOOK_WARNING" in line and "DRY_RUN=true" in line for line in lines)
    assert result.stdout == ""


def test_timezone_is_checked_and_shown(tmp_path):
    path = write_config(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nTIMEZONE=Europe/Berlin\n")
    result = run("--check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "TIMEZONE=Europe/Berlin" in result.stdout.splitlines()
    path = write_config(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nTIMEZONE=Europe/Berlim\n")
    for args in (("--check-config", "--config", str(path)), ("--config", str(path))):
        result = run(*args)
        assert result.returncode == 78
        assert (f"rcwebhook: error: {path}:2: TIMEZONE='Europe/Berlim' is not a time zone name such as "
                "Europe/Berlin or UTC") in result.stderr.splitlines()


def test_check_config_shows_unknown_key_warnings(tmp_path):
    path = write_config(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nROCKETCHAT_URL=x\n")
    result = run("--check-config", "--config", str(path))
    assert result.returncode == 0
    assert f"rcwebhook: warning: {path}:2: unknown key ROCKETCHAT_URL, did you mean ROCKETCHAT_USERNAME?" \
        in result.stderr


def test_check_config_refuses_a_misspelt_webhook_key_naming_the_right_one(tmp_path):
    path = write_config(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nROCKETCHAT_WEBHOK_INFO=x\n")
    result = run("--check-config", "--config", str(path))
    assert result.returncode == 78
    assert (f"rcwebhook: error: {path}:2: unknown key ROCKETCHAT_WEBHOK_INFO, "
            "did you mean ROCKETCHAT_WEBHOOK_INFO? (a near-miss of a known key is an error: fix its spelling, or remove it)") in result.stderr.splitlines()


def test_config_error_at_start_exits_78_with_the_same_messages(tmp_path):
    path = write_config(tmp_path, "PORT=70000\n")
    result = run("--config", str(path))
    assert result.returncode == 78
    assert f"rcwebhook: error: {path}:1: PORT='70000' is out of range (0 to 65535)" in result.stderr
    assert "nothing was started" in result.stderr


def test_environment_overrides_the_file_and_rcwebhook_config_is_used(tmp_path):
    path = write_config(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nPORT=9000\n")
    result = run("--check-config", RCWEBHOOK_CONFIG=str(path), PORT="9100")
    assert result.returncode == 0
    assert "PORT=9100" in result.stdout


def test_local_dotenv_is_found_in_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text("DRY_RUN=true\nPORT=9200\n")
    result = run("--check-config", cwd=tmp_path)
    if Path("/etc/rcwebhook/rcwebhook.env").exists():
        pytest.skip("a system config file exists here and takes precedence")
    assert "PORT=9200" in result.stdout


def test_dry_run_flag_allows_starting_without_urls():
    result = run("--check-config", "--dry-run", "--config", "/dev/null")
    assert result.returncode == 0
    assert "DRY_RUN=true" in result.stdout


class Running:
    """rcwebhook as a child process, its stderr read line by line."""

    def __init__(self, *args: str, stderr=subprocess.PIPE, **env: str) -> None:
        self.proc = subprocess.Popen([sys.executable, ENTRY, *args], stderr=stderr, text=True,
                                     env=clean_env(PORT="0", **env), cwd=ROOT)
        self.lines = []

    def wait_for_line(self, pattern: str, timeout: float = 10) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        raise AssertionError(f"no line matching {pattern!r} in {self.lines}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(10)
        if self.proc.stderr:
            self.lines.extend(self.proc.stderr.readlines())
        return code


def test_daemon_serves_and_stops_cleanly_on_sigterm():
    daemon = Running("--dry-run", "--config", "/dev/null")
    try:
        port = daemon.wait_for_line(r"listening on http://127\.0\.0\.1:(\d+)").group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert json.load(response)["status"] == "healthy"
        request = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=EXAMPLE_ALERT.read_bytes(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["processed"] == 2
        daemon.wait_for_line("Dry run: would post to route critical")
    finally:
        code = daemon.stop()
    assert code == 0
    assert any("Received SIGTERM, stopping" in line for line in daemon.lines)
    assert "rcwebhook stopped" in daemon.lines[-1]


def test_port_in_use_exits_1_with_a_message():
    import socket
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run("--dry-run", "--config", "/dev/null", PORT=str(taken.getsockname()[1]))
    assert result.returncode == 1
    assert "Cannot listen on 127.0.0.1 port" in result.stderr


def test_under_journald_lines_carry_priorities_and_no_timestamps(tmp_path):
    log_path = tmp_path / "stderr.log"
    with open(log_path, "w") as stderr:
        status = os.fstat(stderr.fileno())
        daemon = Running("--config", "/dev/null", stderr=stderr, DRY_RUN="true",
                         JOURNAL_STREAM=f"{status.st_dev}:{status.st_ino}")
        deadline = time.monotonic() + 10
        while "Dry run: messages are rendered" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        daemon.stop()
    lines = log_path.read_text().splitlines()
    assert lines[0].startswith("<6>rcwebhook 2.0.0 listening on")
    assert "<4>Dry run: messages are rendered and logged, not posted to Rocket.Chat" in lines


def test_log_file_receives_the_same_lines(tmp_path):
    log_file = tmp_path / "webhook-adapter.log"
    daemon = Running("--config", "/dev/null", DRY_RUN="true", LOG_FILE=str(log_file))
    try:
        daemon.wait_for_line("listening on")
    finally:
        daemon.stop()
    text = log_file.read_text()
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO rcwebhook 2\.0\.0 listening on", text, re.M)
    assert "rcwebhook stopped" in text


def test_unwritable_log_file_is_a_config_error(tmp_path):
    result = run("--config", "/dev/null", DRY_RUN="true", LOG_FILE=str(tmp_path / "missing" / "x.log"))
    assert result.returncode == 78
    assert "LOG_FILE=" in result.stderr and "cannot be opened" in result.stderr


def test_did_you_mean_hints_are_shown_alongside_errors(tmp_path):
    path = write_config(tmp_path, "ROCKETCHAT_WEBHOK_WARNING=x\nPORT=http\n")
    result = run("--check-config", "--config", str(path))
    assert result.returncode == 78
    assert (f"rcwebhook: error: {path}:1: unknown key ROCKETCHAT_WEBHOK_WARNING, "
            "did you mean ROCKETCHAT_WEBHOOK_WARNING? (a near-miss of a known key is an error: fix its spelling, or remove it)") in result.stderr.splitlines()
    assert f"rcwebhook: error: {path}:2: PORT='http' is not a whole number" in result.stderr.splitlines()


def test_check_config_on_a_file_it_may_not_read_explains_sudo(tmp_path):
    """The package's file is 0640 root:rcwebhook: an administrator running --check-config without
    sudo is told how to run it instead of only `Permission denied`."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="rcwebhook-perm-"))
    try:
        folder.chmod(0o755)
        path = folder / "rcwebhook.env"
        path.write_text(f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\n")
        # The sources, where the unprivileged user may read them (the checkout may be in a private folder).
        shutil.copytree(ROOT / "rcwebhook", folder / "src" / "rcwebhook",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ENTRY, folder / "src" / "rcwebhook.py")
        for place in [folder / "src", *(folder / "src").rglob("*")]:
            place.chmod(0o755 if place.is_dir() else 0o644)
        command = [sys.executable, str(folder / "src" / "rcwebhook.py"), "--check-config", "--config", str(path)]
        kwargs = {}
        if os.geteuid() == 0:  # root reads anything: check as an unprivileged user
            path.chmod(0o640)
            python = shutil.which("python3", path="/usr/bin:/bin")
            if python is None:
                pytest.skip("no system python3 an unprivileged user can run")
            command[0] = python
            kwargs.update(user=65534, group=65534, extra_groups=[])  # nobody, in no group of root's
        else:
            path.chmod(0)
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd="/", env=clean_env(), **kwargs)
    finally:
        shutil.rmtree(folder)
    assert result.returncode == 78
    assert f"cannot read config file {path}: permission denied" in result.stderr
    assert "sudo rcwebhook --check-config" in result.stderr and "sudo -u rcwebhook" in result.stderr
    assert "problem)" in result.stderr  # only this one: nothing that follows from not reading the file


def test_under_journald_a_config_error_at_start_has_priority_err(tmp_path):
    log_path = tmp_path / "stderr.log"
    with open(log_path, "w") as stderr:
        status = os.fstat(stderr.fileno())
        result = subprocess.run([sys.executable, ENTRY, "--config", "/dev/null"], stderr=stderr, timeout=30,
                                cwd=ROOT, env=clean_env(JOURNAL_STREAM=f"{status.st_dev}:{status.st_ino}"))
    assert result.returncode == 78
    lines = log_path.read_text().splitlines()
    assert lines[0].startswith("<3>rcwebhook: error: ")
    assert "no Rocket.Chat webhook URL is set: set ROCKETCHAT_WEBHOOK_WARNING" in lines[0]
    assert all(line.startswith("<3>") for line in lines), lines


def test_template_render_help_prints_the_flags_and_exits_0():
    for words in (("template", "render", "--help"), ("template", "render", "-h"), ("template", "--help"),
                  ("template", "render", "--template.glob=x.tmpl", "--help")):
        result = run(*words)
        assert (result.returncode, result.stderr) == (0, ""), words
        for flag in ("--template.glob", "--template.text", "--template.data", "RCWEBHOOK_TEMPLATE_COMPAT"):
            assert flag in result.stdout, (words, flag)


def test_main_help_names_the_template_render_subcommand():
    result = run("--help")
    assert result.returncode == 0
    assert "rcwebhook template render --template.glob=GLOB... --template.text=TEXT" in result.stdout
