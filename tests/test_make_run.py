"""`make run` on a fresh clone: dry-run on loopback, with directions to send the sample alert."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_ALERT, ROOT, require_program
from tests.programs import free_port


@pytest.mark.skipif(Path("/etc/rcwebhook/rcwebhook.env").exists(), reason="a system configuration exists here")
def test_make_run_without_configuration_runs_in_dry_run(tmp_path):
    require_program("make")
    tree = tmp_path / "clone"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".git", ".env", "__pycache__", ".deps", "build"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROCKETCHAT_", "RCWEBHOOK_", "DRY_RUN"))}
    env["PORT"] = str(port)
    proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=tree, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    seen = []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if "listening on" in line or not line:
                break
        output = "".join(seen)
        assert "running in dry-run" in output
        assert f"--data @examples/test-alert.json http://127.0.0.1:{port}/webhook" in output
        assert re.search(rf"listening on http://127\.0\.0\.1:{port}\b", output), output
        request = urllib.request.Request(f"http://127.0.0.1:{port}/webhook", data=EXAMPLE_ALERT.read_bytes(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["alerts"] == ["HighCPUUsage", "HighMemoryUsage"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        rest, _ = proc.communicate(timeout=10)
    assert "Dry run: would post to route critical" in rest
    assert "Dry run: would post to route warning" in rest


def test_make_run_uses_the_checkouts_dotenv_even_when_the_package_is_installed(tmp_path):
    """With /etc/rcwebhook/rcwebhook.env present (made in a private mount namespace, over /etc), `make run`
    in a checkout still runs ./.env, and its curl hint names the PORT set there."""
    require_program("make")
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to put a system configuration in a private /etc")
    tree = tmp_path / "clone"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".git", ".env", "__pycache__", ".deps", "build"))
    port, system_port = free_port(), free_port()
    (tree / ".env").write_text(f"DRY_RUN=true\nPORT={port}\n")
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir(), work.mkdir()
    script = (f"mount --make-rprivate / && mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},"
              f"workdir={work} /etc && mkdir -p /etc/rcwebhook && "
              f"printf 'DRY_RUN=true\\nPORT={system_port}\\n' > /etc/rcwebhook/rcwebhook.env && "
              "exec make --no-print-directory run")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ROCKETCHAT_", "RCWEBHOOK_", "DRY_RUN", "PORT"))}
    proc = subprocess.Popen(["unshare", "-m", "sh", "-c", script], cwd=tree, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    seen = []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if "listening on" in line or not line:
                break
        output = "".join(seen)
        if "overlay" in output and "listening on" not in output:
            pytest.skip(f"cannot mount an overlay here: {output}")
        assert re.search(rf"listening on http://127\.0\.0\.1:{port}\b", output), output
        assert f"--data @examples/test-alert.json http://127.0.0.1:{port}/webhook" in output
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=10)


def _make_with_a_system_configuration(tmp_path, target: str, dotenv: str, system: str) -> str:
    """Run `make TARGET` in a copy of the checkout holding `dotenv` as ./.env, with /etc/rcwebhook/rcwebhook.env
    holding `system` (made in a private mount namespace, over /etc); return its output."""
    require_program("make")
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to put a system configuration in a private /etc")
    tree = tmp_path / "clone"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".git", ".env", "__pycache__", ".deps", "build"))
    (tree / ".env").write_text(dotenv)
    (tmp_path / "system.env").write_text(system)
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir(), work.mkdir()
    script = (f"mount --make-rprivate / && mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},"
              f"workdir={work} /etc && mkdir -p /etc/rcwebhook && "
              f"cp {tmp_path / 'system.env'} /etc/rcwebhook/rcwebhook.env && "
              f"exec make --no-print-directory {target}")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ROCKETCHAT_", "RCWEBHOOK_", "DRY_RUN", "PORT"))}
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=tree, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if "overlay" in result.stdout and "config file" not in result.stdout:
        pytest.skip(f"cannot mount an overlay here: {result.stdout}")
    return result.stdout


def test_make_check_config_checks_the_dotenv_make_run_runs_even_when_the_package_is_installed(tmp_path):
    port, system_port = free_port(), free_port()
    output = _make_with_a_system_configuration(tmp_path, "check-config", f"DRY_RUN=true\nPORT={port}\n",
                                               f"DRY_RUN=true\nPORT={system_port}\n")
    assert "# config file: .env" in output, output
    assert f"PORT={port}\n" in output and f"PORT={system_port}" not in output, output
    assert "the configuration is valid" in output


def test_make_check_config_fails_on_the_dotenv_make_run_would_refuse(tmp_path):
    """The package's file is valid, the checkout's is not: `make check-config` says so (exit 78 from rcwebhook)."""
    output = _make_with_a_system_configuration(tmp_path, "check-config", "PORT=not-a-port\n", "DRY_RUN=true\n")
    assert "PORT='not-a-port' is not a whole number" in output, output
    assert "the configuration is invalid" in output
