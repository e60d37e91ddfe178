"""A notification from each generation of Alertmanager (0.25 to 0.34) is parsed and delivered; what a
newer one adds (notification_reason, routeLabels) is used, and keys rcwebhook does not know are ignored.

The 0.25 and 0.28 notifications were captured from Debian's Alertmanager 0.25.0 and 0.28.1 by
tests/fixtures/capture.py; the 0.32 and 0.34 ones are written by hand (see tests/fixtures/README.md)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from rcwebhook.messages.notification import parse

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VERSIONS = ("0.25", "0.28", "0.32", "0.34")


def fixture(version: str) -> bytes:
    return (FIXTURES / f"alertmanager-{version}.json").read_bytes()


@pytest.fixture
def daemon(rocketchat, start_daemon):
    for name in ("critical", "warning", "db"):
        rocketchat.add_hook(name)
    return start_daemon(ROCKETCHAT_WEBHOOK_CRITICAL=rocketchat.url("critical"),
                        ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("warning"),
                        RECEIVERS="db", DB_ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("db"))


@pytest.mark.parametrize("version", VERSIONS)
def test_each_generations_notification_is_parsed(version):
    notification = parse(fixture(version))
    assert [a.name for a in notification.alerts] == ["PostgresReplicationLag", "PostgresConnectionsHigh"]
    assert [a.status for a in notification.alerts] == ["firing", "resolved"]
    assert notification.receiver_name in ("team.db", "team.db.prod")
    # As sent: Alertmanager regex-escapes the receiver (regexp.QuoteMeta in its template.Data); 0.25 and 0.28 do.
    assert notification.receiver == ("team\\.db\\.prod" if version == "0.34" else "team\\.db")
    assert notification.group_key == '{}/{team="db"}:{team="db"}'
    assert notification.truncated_alerts == (1 if version == "0.28" else 0)  # 0.28 captured with max_alerts: 2
    assert notification.reason == {"0.32": "repeat interval elapsed", "0.34": "new alerts added"}.get(version, "")
    assert dict(notification.route_labels or {}) == (
        {"team": "db", "rocketchat_receiver": "db"} if version == "0.34" else {})


@pytest.mark.parametrize("version", ("0.25", "0.28", "0.32"))
def test_older_generations_are_delivered_by_severity_to_the_default_set(version, daemon, rocketchat, logs):
    status, _, body = daemon.post_json(fixture(version))
    assert status == 200, body
    assert set(body["routes"]) == {"critical", "warning"}
    [critical] = rocketchat.posted("critical")
    assert critical["attachments"][0]["title"] == "PostgresReplicationLag: Replica db1 is 120s behind"
    [warning] = rocketchat.posted("warning")
    assert warning["attachments"][0]["title"].startswith("Resolved: PostgresConnectionsHigh")
    [line] = [l for l in logs.lines(logging.INFO) if l.startswith("Notification received")]
    assert line.startswith("Notification received: receiver=team.db ")
    assert ('reason="repeat interval elapsed" ' in line) == (version == "0.32")
    _, _, page = daemon.request("GET", "/status.json")
    assert page["recent"][0]["receiver"] == "team.db"


def test_0_34_route_labels_pick_the_hook_set_and_unknown_keys_are_ignored(daemon, rocketchat, logs):
    status, _, body = daemon.post_json(fixture("0.34"))
    assert status == 200, body
    assert set(body["routes"]) == {"db/critical", "db/warning"}
    posts = rocketchat.posted("db")  # db has only a warning URL: both severities take it, merged
    assert [a["title"].split(":")[0] for p in posts for a in p["attachments"]] == [
        "PostgresReplicationLag", "Resolved"]
    assert rocketchat.posted("critical") == [] and rocketchat.posted("warning") == []
    [line] = [l for l in logs.lines(logging.INFO) if l.startswith("Notification received")]
    assert line.startswith('Notification received: receiver=team.db.prod reason="new alerts added" ')
    assert json.loads(fixture("0.34"))["receiver"] == "team\\.db\\.prod"
