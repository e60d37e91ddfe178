"""End to end with hook sets: a real Alertmanager (Debian 12's 0.25 and Debian 13's 0.28), configured as
examples/alertmanager-teams.yml says, notifies /webhook, /webhook/db and /webhook/web of an rcwebhook
configured as examples/rcwebhook-teams.env says; each post reaches its team's hook and channel, with
its team's mention.

Debian 13's Alertmanager is the one .ci/fetch-amtool-trixie unpacks (its path is in $RCWEBHOOK_AMTOOL_028
under CI); the alertmanager binary is beside that amtool. A missing program skips, and fails under CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from tests.conftest import ROOT
from tests.test_alertmanager_e2e import (NOTIFY_TIMEOUT, Alertmanager, AlertSpec, assert_only,
                                         firing_with, wait_for_log, wait_for_message)

TEAMS_EXAMPLE = ROOT / "examples" / "alertmanager-teams.yml"


def _candidates() -> List[Tuple[str, str]]:
    """Return the (alertmanager, amtool) pairs found: the system's, and Debian 13's unpacked one."""
    found = []
    system = shutil.which("prometheus-alertmanager"), shutil.which("amtool")
    if all(system):
        found.append(system)
    for amtool in (os.environ.get("RCWEBHOOK_AMTOOL_028"), str(ROOT / ".deps/alertmanager-trixie/usr/bin/amtool")):
        binary = str(Path(amtool).parent / "prometheus-alertmanager") if amtool else ""
        if amtool and os.access(amtool, os.X_OK) and os.access(binary, os.X_OK):
            found.append((binary, amtool))
    return found


def _version(binary: str) -> str:
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"version (\d+\.\d+)", result.stdout + result.stderr)
    return match.group(1) if match else "?"


@pytest.fixture(params=["0.25", "0.28"])
def programs(request) -> Dict[str, str]:
    """Return the Alertmanager of one Debian release: 0.25 (Debian 12's package) or 0.28 (Debian 13's)."""
    for binary, amtool in _candidates():
        if _version(binary) == request.param:
            return {"alertmanager": binary, "amtool": amtool}
    message = (f"no Alertmanager {request.param} here: Debian 12's is `apt-get install prometheus-alertmanager`, "
               "Debian 13's is unpacked by `bash .ci/fetch-amtool-trixie` (CI sets RCWEBHOOK_AMTOOL_028)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError("unreachable")


def teams_config(rcwebhook_url: str) -> str:
    """Return examples/alertmanager-teams.yml calling `rcwebhook_url`, with 1 s waits for a quick test."""
    text = TEAMS_EXAMPLE.read_text().replace("http://127.0.0.1:8093", rcwebhook_url)
    text = re.sub(r"(group_wait|group_interval): \S+", r"\1: 1s", text)
    assert text.count(rcwebhook_url) == 3, text
    return text


def test_alertmanager_routes_each_team_to_its_hook_set(programs, rocketchat, start_daemon, tmp_path, logs):
    for name in ("ops", "db-oncall", "db-alerts", "web-alerts"):
        rocketchat.add_hook(name, allow_channel_override=True, allow_impersonate=True)
    # examples/rcwebhook-teams.env, with the stand-in's hooks.
    daemon = start_daemon(
        ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("ops"), ROCKETCHAT_CHANNEL_CRITICAL="#ops", RECEIVERS="db,web",
        DB_ROCKETCHAT_WEBHOOK_CRITICAL=rocketchat.url("db-oncall"),
        DB_ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("db-alerts"), DB_ROCKETCHAT_CHANNEL_CRITICAL="#db-oncall", DB_MENTION_CRITICAL="@dba-oncall",
        DB_ROCKETCHAT_USERNAME="db-alerts", WEB_ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("web-alerts"))
    workdir = tmp_path / "alertmanager"
    workdir.mkdir()
    manager = Alertmanager(programs["alertmanager"], programs["amtool"], workdir, f"{daemon.url}/webhook")
    manager.config.write_text(teams_config(daemon.url))
    check = subprocess.run([programs["amtool"], "check-config", str(manager.config)], capture_output=True,
                           text=True, timeout=30)
    assert check.returncode == 0 and "3 receivers" in check.stdout, check.stdout + check.stderr
    manager.start()
    try:
        manager.fire(
            AlertSpec("DiskFull", {"team": "db", "severity": "critical", "instance": "db1"}),
            AlertSpec("ReplicaLag", {"team": "db", "severity": "warning", "instance": "db2",
                                     "rocketchat_channel": "#db-replicas"}),
            AlertSpec("CheckoutErrors", {"team": "web", "severity": "critical", "instance": "web1"},
                      {"mention": "@alice"}),
            AlertSpec("CacheMisses", {"team": "db", "severity": "warning", "instance": "cache1",
                                      "rocketchat_receiver": "web"}),
            AlertSpec("NodeDown", {"severity": "critical", "instance": "node7"}),
        )
        oncall = wait_for_message(rocketchat, "db-oncall", firing_with("DiskFull"), "firing DiskFull", manager)
        replicas = wait_for_message(rocketchat, "db-alerts", firing_with("ReplicaLag"), "firing ReplicaLag",
                                    manager)
        web = [wait_for_message(rocketchat, "web-alerts", firing_with(name), f"firing {name}", manager)
               for name in ("CheckoutErrors", "CacheMisses")]
        ops = wait_for_message(rocketchat, "ops", firing_with("NodeDown"), "firing NodeDown", manager)
        assert (oncall["channel"], oncall["username"]) == ("#db-oncall", "db-alerts")
        # Mentions: the db set's own for its critical alerts, and an alert's mention annotation.
        assert oncall["text"].startswith("@dba-oncall ")
        assert all(m["text"].startswith("@alice ") == ("CheckoutErrors" in m["text"]) for m in web)
        assert not ops["text"].startswith("@") and not replicas["text"].startswith("@")
        assert replicas["channel"] == "#db-replicas" and replicas["username"] == "db-alerts"
        assert all("channel" not in message and "username" not in message for message in web)
        assert ops["channel"] == "#ops"
        for hook, names in (("db-oncall", ["DiskFull"]), ("db-alerts", ["ReplicaLag"]),
                            ("web-alerts", ["CheckoutErrors", "CacheMisses"]), ("ops", ["NodeDown"])):
            assert_only(rocketchat, hook, names, manager)
        # Alertmanager called each team's path with its receiver's name; every answer was 200.
        wait_for_log(logs, r"^Notification received: receiver=rocketchat-db path=/webhook/db .*"
                           r"routes=web/warning:1$", manager)
        wait_for_log(logs, r"^Notification received: receiver=rocketchat-web path=/webhook/web .*"
                           r"routes=web/critical:1$", manager)
        _assert_every_request_answered_200(manager, logs, 5)
    finally:
        manager.stop()


def _assert_every_request_answered_200(manager: Alertmanager, logs, groups: int) -> None:
    """Wait until rcwebhook answered as many requests (to any /webhook path) as Alertmanager sent, at least
    one per group; assert each answer was 200 and Alertmanager counted no failure."""
    deadline = time.monotonic() + NOTIFY_TIMEOUT
    while True:
        answers = [line for line in logs.lines() if re.search(r'"POST /webhook(/[\w-]+)? ', line)]
        metrics = manager.webhook_metrics()
        sent = metrics.get("alertmanager_notification_requests_total", 0)
        if sent >= groups and len(answers) == sent:
            break
        if time.monotonic() >= deadline:
            raise AssertionError(f"Alertmanager sent {sent:g} requests, rcwebhook answered {len(answers)}: "
                                 f"{answers}{manager.explain()}")
        manager.pause(0.05)
    assert all(re.search(r'" 200 \d+ ', line) for line in answers), answers
    assert not {k: v for k, v in metrics.items() if "failed" in k and v}, metrics
