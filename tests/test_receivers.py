"""Hook sets (RECEIVERS): their keys, their fallbacks, POST /webhook/<set>, and the labels that pick a set
or a channel for one alert."""

from __future__ import annotations

import json
import logging
import re
import urllib.request
from pathlib import Path

import pytest

from rcwebhook import cli
from rcwebhook.config import loading
from rcwebhook.config.settings import ConfigError
from rcwebhook.messages.notification import parse
from rcwebhook.messages.routing import plan
from tests.conftest import make_settings
from tests.test_cli import run
from tests.test_operations import parse_metrics, service  # noqa: F401 - service is a fixture

HOOK = "https://chat.example.com/hooks/default-warning/SECRETTOKEN"
DB_CRIT = "https://chat.example.com/hooks/db-critical/DBTOKEN1"
DB_WARN = "https://chat.example.com/hooks/db-warning/DBTOKEN2"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rcwebhook.env"
    path.write_text(text)
    path.chmod(0o640)
    return path


def problems(path: Path, environ=None) -> list:
    with pytest.raises(ConfigError) as caught:
        loading.load(path, environ or {})
    return caught.value.problems


# --- keys and fallbacks ----------------------------------------------------------------------------

def test_a_sets_keys_are_the_default_keys_prefixed_with_its_name(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nRECEIVERS=db,web-shop\n"
                           f"DB_ROCKETCHAT_WEBHOOK_CRITICAL={DB_CRIT}\nDB_ROCKETCHAT_CHANNEL_CRITICAL=#db-oncall\n"
                           "DB_ROCKETCHAT_USERNAME=dbbot\nDB_ROCKETCHAT_ICON_EMOJI=:floppy_disk:\n"
                           "WEB_SHOP_ROCKETCHAT_CHANNEL_INFO=#shop\n")
    settings, warnings = loading.load(path, {})
    assert warnings == []
    assert settings.receivers == ("db", "web-shop")
    route = settings.routes["db/critical"]
    assert (route.url, route.channel, route.username, route.icon_emoji) == (DB_CRIT, "#db-oncall", "dbbot",
                                                                            ":floppy_disk:")
    assert (route.receiver, route.severity, route.url_key) == ("db", "critical", "DB_ROCKETCHAT_WEBHOOK_CRITICAL")
    assert settings.routes["web-shop/info"].channel == "#shop"
    assert settings.routes["critical"].username == ""


def test_a_missing_url_falls_back_to_the_sets_default_severity_then_to_the_default_set(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nROCKETCHAT_WEBHOOK_CRITICAL={HOOK}c\n"
                           "ROCKETCHAT_CHANNEL_CRITICAL=#ops\nROCKETCHAT_USERNAME=alerts\nRECEIVERS=db,web\n"
                           f"DB_ROCKETCHAT_WEBHOOK_WARNING={DB_WARN}\n")
    settings, _ = loading.load(path, {})
    routes = settings.routes
    # db has a warning URL (DEFAULT_SEVERITY): its critical and info routes take it.
    assert (routes["db/critical"].url, routes["db/critical"].url_from) == (DB_WARN, "db/warning")
    assert routes["db/critical"].channel == ""  # db's own (none), not the default set's
    assert routes["db/info"].url_key == "DB_ROCKETCHAT_WEBHOOK_WARNING"
    # web has no URL at all: each of its routes is the default set's route of its severity.
    assert (routes["web/critical"].url, routes["web/critical"].url_from) == (HOOK + "c", "critical")
    assert routes["web/critical"].channel == "#ops"
    assert (routes["web/info"].url, routes["web/info"].url_key) == (HOOK, "ROCKETCHAT_WEBHOOK_WARNING")
    assert routes["web/info"].username == "alerts"


def test_set_keys_come_from_the_environment_and_from_files(tmp_path):
    secret = tmp_path / "db-critical"
    secret.write_text(DB_CRIT + "\n")
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nRECEIVERS=db\n"
                           f"DB_ROCKETCHAT_WEBHOOK_CRITICAL_FILE={secret}\n")
    settings, _ = loading.load(path, {"DB_ROCKETCHAT_CHANNEL_CRITICAL": "#from-env"})
    assert settings.routes["db/critical"].url == DB_CRIT
    assert settings.routes["db/critical"].channel == "#from-env"
    assert "DBTOKEN1" in settings.secrets()


def test_receivers_from_the_environment_make_the_files_set_keys_known(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nDB_ROCKETCHAT_WEBHOOK_CRITICAL={DB_CRIT}\n")
    settings, _ = loading.load(path, {"RECEIVERS": "db"})
    assert settings.routes["db/critical"].url == DB_CRIT


def test_a_misspelt_set_key_is_an_error_with_a_suggestion(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nRECEIVERS=db\nDB_ROCKETCHAT_WEBHOK_INFO={DB_WARN}\n")
    with pytest.raises(ConfigError) as caught:
        loading.load(path, {})
    assert f"{path}:3: unknown key DB_ROCKETCHAT_WEBHOK_INFO, did you mean DB_ROCKETCHAT_WEBHOOK_INFO? (a near-miss of a known key is an error: fix its spelling, or remove it)" \
        in caught.value.problems


def test_a_key_of_a_set_not_in_receivers_is_an_error_saying_to_add_it(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nRECEIVERS=db\nWEB_ROCKETCHAT_WEBHOOK_INFO={DB_WARN}\n")
    found = problems(path)
    assert found == [f"{path}:3: WEB_ROCKETCHAT_WEBHOOK_INFO is a key of the hook set 'web', which RECEIVERS does "
                     "not name: add it (RECEIVERS=db,web), or remove the key"]
    assert "DBTOKEN2" not in "\n".join(found)


def test_bad_set_names_are_errors(tmp_path):
    found = problems(write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nRECEIVERS=db/x,a-b,a_b\n"))
    assert len(found) == 2
    assert "'db/x'" in found[0] and "letters, digits, - and _" in found[0]
    assert "'a-b' and 'a_b'" in found[1] and "A_B_" in found[1]


def test_an_invalid_set_url_is_named_by_its_key_and_not_shown(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nRECEIVERS=db\n"
                           "DB_ROCKETCHAT_WEBHOOK_CRITICAL=https://chat.example.com/nothooks/SEKRIT\n")
    found = problems(path)
    assert len(found) == 1 and found[0].startswith(f"{path}:3: DB_ROCKETCHAT_WEBHOOK_CRITICAL is not an incoming")
    assert "SEKRIT" not in found[0]


def test_check_config_prints_the_route_table_with_hooks_redacted(tmp_path, capsys):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nRECEIVERS=db\n"
                           f"DB_ROCKETCHAT_WEBHOOK_CRITICAL={DB_CRIT}\nDB_ROCKETCHAT_CHANNEL_CRITICAL=#db-oncall\n"
                           "DB_MENTION_CRITICAL=@dba @here\n")
    assert cli.main(["--check-config", "--config", str(path)], environ={}) == 0
    out = capsys.readouterr().out
    table = [re.sub(r"\s+", " ", line) for line in out.splitlines() if line.startswith("# ") and "  " in line]
    assert table == [
        "# set severity hook channel mention URL from",
        "# (default) critical https://chat.example.com/hooks/default-warning/*** - - ROCKETCHAT_WEBHOOK_WARNING "
        "(fallback: DEFAULT_SEVERITY route warning)",
        "# (default) warning https://chat.example.com/hooks/default-warning/*** - - ROCKETCHAT_WEBHOOK_WARNING",
        "# (default) info https://chat.example.com/hooks/default-warning/*** - - ROCKETCHAT_WEBHOOK_WARNING "
        "(fallback: DEFAULT_SEVERITY route warning)",
        "# db critical https://chat.example.com/hooks/db-critical/*** #db-oncall @dba @here DB_ROCKETCHAT_WEBHOOK_CRITICAL",
        "# db warning https://chat.example.com/hooks/default-warning/*** - - ROCKETCHAT_WEBHOOK_WARNING "
        "(fallback: the default set route warning)",
        "# db info https://chat.example.com/hooks/default-warning/*** - - ROCKETCHAT_WEBHOOK_WARNING "
        "(fallback: the default set route info)",
    ]
    assert "DB_ROCKETCHAT_WEBHOOK_CRITICAL=https://chat.example.com/hooks/db-critical/***" in out
    assert "TOKEN" not in out


# --- routing: path, labels, channels -----------------------------------------------------------------

SETS = dict(ROCKETCHAT_WEBHOOK_WARNING=HOOK, RECEIVERS="db,web", DB_ROCKETCHAT_WEBHOOK_WARNING=DB_WARN)


def notification(*labels, **extra):
    return parse(json.dumps({"alerts": [{"labels": dict(l)} for l in labels], **extra}).encode())


def routed(result):
    return [(b.route.name, b.channel, [a.name for a in b.alerts]) for b in result.batches]


def test_the_path_picks_the_hook_set():
    settings = make_settings(**SETS)
    alerts = notification({"alertname": "A", "severity": "critical"}, {"alertname": "B"})
    assert routed(plan(alerts, settings, "db")) == [("db/critical", "", ["A"]), ("db/warning", "", ["B"])]
    assert routed(plan(alerts, settings)) == [("critical", "", ["A"]), ("warning", "", ["B"])]


def test_a_label_picks_the_set_of_its_alert_and_splits_the_group():
    settings = make_settings(**SETS)
    alerts = notification({"alertname": "A", "rocketchat_receiver": "web"}, {"alertname": "B"},
                          {"alertname": "C", "rocketchat_receiver": "nope"})
    result = plan(alerts, settings, "db")
    assert routed(result) == [("db/warning", "", ["B", "C"]), ("web/warning", "", ["A"])]
    assert result.unknown_receivers == ("nope",)


def test_route_labels_pick_the_set_below_an_alerts_own_label():
    settings = make_settings(**SETS)
    alerts = notification({"alertname": "A"}, {"alertname": "B", "rocketchat_receiver": "db"},
                          routeLabels={"rocketchat_receiver": "web", "team": "x"})
    assert routed(plan(alerts, settings)) == [("db/warning", "", ["B"]), ("web/warning", "", ["A"])]


def test_a_channel_label_overrides_the_channel_and_splits_the_batch():
    settings = make_settings(**SETS, DB_ROCKETCHAT_CHANNEL_WARNING="#db")
    alerts = notification({"alertname": "A", "rocketchat_channel": "#db-replicas"}, {"alertname": "B"})
    batches = plan(alerts, settings, "db").batches
    assert [(b.route.name, b.route.channel, b.channel) for b in batches] == [
        ("db/warning", "#db", ""), ("db/warning", "#db-replicas", "#db-replicas")]


def test_label_names_are_settings():
    settings = make_settings(**SETS, ROUTE_LABEL="team", CHANNEL_LABEL="room")
    alerts = notification({"alertname": "A", "team": "web", "room": "#r"})
    assert routed(plan(alerts, settings)) == [("web/warning", "#r", ["A"])]


def test_unknown_severities_are_reported_once_each():
    settings = make_settings(**SETS)
    alerts = notification({"alertname": "A", "severity": "critcal"}, {"alertname": "B", "severity": "Critcal"},
                          {"alertname": "C", "severity": "page"}, {"alertname": "D"})
    result = plan(alerts, settings)
    assert routed(result) == [("critical", "", ["C"]), ("warning", "", ["A", "B", "D"])]
    assert result.unknown_severities == ("critcal", "critcal")


# --- POST /webhook/<set> against the stand-in Rocket.Chat ---------------------------------------------

def alert(name, severity="critical", fingerprint=None, **labels):
    return {"status": "firing", "fingerprint": fingerprint or name, "startsAt": "2026-01-01T00:00:00Z",
            "labels": {"alertname": name, "severity": severity, **labels}}


def group(*alerts, key="g", **extra):
    return {"version": "4", "groupKey": key, "receiver": "team", "status": "firing", "alerts": list(alerts),
            **extra}


def metric_samples(daemon):
    with urllib.request.urlopen(daemon.url + "/metrics", timeout=5) as response:
        return parse_metrics(response.read().decode())


@pytest.fixture
def teams(rocketchat, start_daemon):
    """rcwebhook with a default set (one hook) and sets db (two hooks, own look) and web (no hook: falls back)."""
    for name in ("default", "db-critical", "db-warning"):
        rocketchat.add_hook(name, allow_channel_override=True, allow_impersonate=True)
    rocketchat.add_hook("strict")  # may not override its channel
    return start_daemon(
        ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("default"), RECEIVERS="db,web",
        DB_ROCKETCHAT_WEBHOOK_CRITICAL=rocketchat.url("db-critical"),
        DB_ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("db-warning"), DB_ROCKETCHAT_CHANNEL_CRITICAL="#db-oncall",
        DB_ROCKETCHAT_USERNAME="dbbot", DB_ROCKETCHAT_ICON_EMOJI=":floppy_disk:",
        WEB_ROCKETCHAT_WEBHOOK_INFO=rocketchat.url("strict"))


def test_a_sets_path_posts_to_its_hooks_with_its_channel_and_look(teams, rocketchat):
    status, _, body = teams.post_json(group(alert("DiskFull"), alert("SlowQuery", "info")), "/webhook/db")
    assert status == 200, body
    assert set(body["routes"]) == {"db/critical", "db/info"}
    [critical] = rocketchat.posted("db-critical")
    assert (critical["channel"], critical["alias"], critical["emoji"]) == ("#db-oncall", "dbbot",
                                                                                   ":floppy_disk:")
    assert critical["text"] == ":rotating_light: [FIRING:1] DiskFull"
    [info] = rocketchat.posted("db-warning")  # db's info route falls back to db's DEFAULT_SEVERITY hook
    assert "SlowQuery" in info["text"] and info["channel"] is None
    assert rocketchat.posted("default") == []


def test_the_same_alert_through_two_sets_is_posted_to_each(teams, rocketchat):
    before = metric_samples(teams)
    assert before['rcwebhook_rocketchat_posts_total{route="db/critical",outcome="accepted"}'] == 0
    assert before['rcwebhook_rocketchat_refusals_total{route="web/info",reason="bad_token"}'] == 0
    payload = group(alert("DiskFull"))
    assert teams.post_json(payload)[0] == 200
    assert teams.post_json(payload, "/webhook/db")[0] == 200
    assert teams.post_json(payload, "/webhook/web")[0] == 200  # web/critical: the default set's hook
    assert len(rocketchat.posted("db-critical")) == 1
    assert len(rocketchat.posted("default")) == 2
    samples = metric_samples(teams)
    assert samples['rcwebhook_rocketchat_posts_total{route="db/critical",outcome="accepted"}'] == 1
    assert samples['rcwebhook_rocketchat_posts_total{route="critical",outcome="accepted"}'] == 1
    assert samples['rcwebhook_rocketchat_posts_total{route="web/critical",outcome="accepted"}'] == 1
    assert samples['rcwebhook_alerts_received_total{status="firing",severity="critical"}'] == 3
    _, _, status_page = teams.request("GET", "/status.json")
    rows = {row["route"]: row for row in status_page["routes"]}
    assert rows["db/critical"]["hook"].endswith("/***") and rows["db/critical"]["state"] == "ok"
    assert [entry["path"] for entry in status_page["recent"]] == ["/webhook/web", "/webhook/db", "/webhook"]


def test_an_unknown_set_is_404_naming_the_known_ones_logged_once_and_counted(teams, rocketchat, logs):
    for _ in range(3):
        status, _, body = teams.post_json(group(alert("A")), "/webhook/dba")
        assert status == 404
        assert body["receivers"] == ["db", "web"]
        assert "no hook set 'dba'" in body["error"]
    assert teams.post_json(group(alert("A")), "/webhook/other")[0] == 404
    errors = logs.lines(logging.ERROR)
    assert len(errors) == 2
    assert errors[0].startswith("Notifications came to /webhook/dba, but RECEIVERS names no hook set 'dba'")
    assert "Alertmanager does not retry" in errors[0]
    assert metric_samples(teams)['webhook_errors_total{reason="unknown_receiver"}'] == 4
    assert rocketchat.all_messages() == {"default": [], "db-critical": [], "db-warning": [], "strict": []}
    status, headers, _ = teams.request("GET", "/webhook/db")
    assert (status, headers["Allow"]) == (405, "POST")


def test_a_label_sends_one_alert_to_another_set(teams, rocketchat, logs):
    payload = group(alert("DiskFull"), alert("Checkout", rocketchat_receiver="web", severity="info"),
                    alert("Typo", rocketchat_receiver="wbe"), alert("Typo2", rocketchat_receiver="wbe"))
    status, _, body = teams.post_json(payload, "/webhook/db")
    assert status == 200, body
    assert set(body["routes"]) == {"db/critical", "web/info"}
    [db] = rocketchat.posted("db-critical")
    assert [a["title"] for a in db["attachments"]] == ["DiskFull", "Typo", "Typo2"]
    [web] = rocketchat.posted("strict")
    assert [a["title"] for a in web["attachments"]] == ["Checkout"]
    teams.post_json(payload, "/webhook/db")
    warnings = [line for line in logs.lines(logging.WARNING) if "'wbe'" in line]
    assert len(warnings) == 1 and "no hook set" in warnings[0]
    assert metric_samples(teams)['rcwebhook_unknown_receiver_label_total{value="wbe"}'] == 4


def test_route_labels_from_alertmanager_0_34_pick_the_set(teams, rocketchat):
    payload = group(alert("DiskFull"), routeLabels={"rocketchat_receiver": "db", "team": "db"})
    assert teams.post_json(payload)[0] == 200
    assert len(rocketchat.posted("db-critical")) == 1 and rocketchat.posted("default") == []


def test_a_channel_label_posts_that_alert_to_its_channel_through_the_same_hook(teams, rocketchat):
    payload = group(alert("DiskFull"), alert("Replica", rocketchat_channel="#db-replicas"))
    status, _, body = teams.post_json(payload, "/webhook/db")
    assert status == 200, body
    posts = rocketchat.posted("db-critical")
    assert sorted((p["channel"], [a["title"] for a in p["attachments"]][0]) for p in posts) == [
        ("#db-oncall", "DiskFull"), ("#db-replicas", "Replica")]


def test_a_channel_label_the_integration_may_not_follow_is_an_error_that_says_so(teams, rocketchat, logs):
    payload = group(alert("Checkout", "info", rocketchat_channel="#shop"))
    status, _, body = teams.post_json(payload, "/webhook/web")
    assert status == 502
    assert body["routes"]["web/info"]["error"] == "overriding destination channel is disabled for this integration"
    [error] = logs.lines(logging.ERROR)
    assert "rocketchat_channel label sends it to #shop" in error
    assert "allow it to override its channel" in error


def test_an_unknown_severity_is_routed_to_the_default_counted_and_told_once(teams, rocketchat, logs):
    for name in ("A", "B"):
        assert teams.post_json(group(alert(name, "critcal")))[0] == 200
    assert len(rocketchat.posted("default")) == 2
    warnings = [line for line in logs.lines(logging.WARNING) if "'critcal'" in line]
    assert len(warnings) == 1 and "DEFAULT_SEVERITY=warning" in warnings[0]
    samples = metric_samples(teams)
    assert samples['rcwebhook_unknown_severity_total{value="critcal"}'] == 2
    assert samples['rcwebhook_alerts_received_total{status="firing",severity="warning"}'] == 2


def test_a_reload_that_removes_a_set_keeps_its_waiting_states_unposted_until_it_comes_back(
        service, rocketchat, logs):
    rocketchat.add_hook("default")
    rocketchat.add_hook("db")
    with_db = dict(ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("default"), RECEIVERS="db",
                   DB_ROCKETCHAT_WEBHOOK_CRITICAL=rocketchat.url("db"), DELIVERY_DEADLINE="2")
    svc = service(**with_db)
    rocketchat.set_outage("db", "503")
    payload = group(alert("DiskFull"))
    assert svc.daemon.post_json(payload, "/webhook/db")[0] == 503
    svc.offer(ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("default"), DELIVERY_DEADLINE="2")
    assert svc.reload() is True
    [gone] = [line for line in logs.lines(logging.WARNING) if line.startswith("Route db/critical is gone")]
    assert "with 1 alert states waiting" in gone
    rocketchat.set_outage("db", None)
    status, _, body = svc.daemon.post_json(payload, "/webhook/db")
    assert (status, body["receivers"]) == (404, [])
    assert rocketchat.posted("db") == [] and rocketchat.posted("default") == []
    svc.offer(**with_db)
    assert svc.reload() is True
    status, _, body = svc.daemon.post_json(payload, "/webhook/db")
    assert status == 200, body
    assert len(rocketchat.posted("db")) == 1 and rocketchat.posted("default") == []


def test_the_hook_sets_page_shows_the_route_table_of_the_teams_example(capsys):
    from tests.conftest import ROOT

    example = ROOT / "examples" / "rcwebhook-teams.env"
    assert cli.main(["--check-config", "--config", str(example)], environ={}) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("# ") and "  " in line]
    assert len(table) == 10
    assert "\n".join(table) in (ROOT / "docs" / "hook-sets.md").read_text()


def test_send_test_posts_through_a_hook_sets_routes(tmp_path, rocketchat):
    from tests.test_operations import send_test

    rocketchat.add_hook("default")
    rocketchat.add_hook("db", allow_channel_override=True)
    config = (f"ROCKETCHAT_WEBHOOK_WARNING={rocketchat.url('default')}\nRECEIVERS=db\n"
              f"DB_ROCKETCHAT_WEBHOOK_CRITICAL={rocketchat.url('db')}\nDB_ROCKETCHAT_CHANNEL_CRITICAL=#db\n")
    result = send_test(tmp_path, config, "db")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == ["db/critical", "db/warning", "db/info"]
    [posted] = rocketchat.posted("db")
    assert posted["text"].startswith(":rotating_light: [FIRING:1] RcwebhookTest ") and posted["channel"] == "#db"
    assert len(rocketchat.posted("default")) == 2
    assert send_test(tmp_path, config, "dba").returncode == 2


def resolved(name, fingerprint=None, **labels):
    return dict(alert(name, fingerprint=fingerprint, **labels), status="resolved", endsAt="2026-01-01T01:00:00Z")


def test_sets_sharing_a_hook_keep_their_own_threads(rocketchat, start_daemon):
    rocketchat.add_hook("shared")
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("shared"), RECEIVERS="db")
    assert daemon.post_json(group(alert("DiskFull")))[0] == 200
    assert daemon.post_json(group(alert("DiskFull")), "/webhook/db")[0] == 200
    assert daemon.post_json(group(resolved("DiskFull")))[0] == 200
    assert daemon.post_json(group(resolved("DiskFull")), "/webhook/db")[0] == 200
    first, second, default_resolution, db_resolution = rocketchat.messages("shared")
    ids = rocketchat.message_ids("shared")
    # The same group and alert through db is db's own incident: a channel message of its own, and each
    # resolution a reply in its own set's thread.
    assert "tmid" not in first and "tmid" not in second
    assert default_resolution["tmid"] == ids[0] and "[RESOLVED:1]" in default_resolution["text"]
    assert db_resolution["tmid"] == ids[1] and "[RESOLVED:1]" in db_resolution["text"]


def test_a_restart_does_not_post_a_sets_alert_again(rocketchat, start_daemon, tmp_path):
    rocketchat.add_hook("default")
    rocketchat.add_hook("db")
    settings = dict(ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("default"), RECEIVERS="db",
                    DB_ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("db"), STATE_DIR=str(tmp_path / "state"))
    first = start_daemon(**settings)
    assert first.post_json(group(alert("DiskFull")), "/webhook/db")[0] == 200
    first.stop()
    second = start_daemon(**settings)
    status, _, body = second.post_json(group(alert("DiskFull")), "/webhook/db")
    assert status == 200 and body["routes"]["db/critical"]["status"] == "already-delivered"
    status, _, body = second.post_json(group(alert("DiskFull")))  # the default set never posted it
    assert status == 200 and body["routes"]["critical"]["status"] == "delivered"
    assert len(rocketchat.posted("db")) == 1 and len(rocketchat.posted("default")) == 1


def test_unknown_severity_values_are_bounded_in_metrics(teams, logs):
    alerts = [alert(f"A{i}", f"sev{i}") for i in range(102)]
    assert teams.post_json(group(*alerts))[0] == 200
    samples = metric_samples(teams)
    values = [k for k in samples if k.startswith("rcwebhook_unknown_severity_total{")]
    assert len(values) == 101
    assert samples['rcwebhook_unknown_severity_total{value="other"}'] == 2
    told = [line for line in logs.lines(logging.WARNING) if "severity label is" in line]
    assert len(told) == 100
    assert any(line.startswith("More than 100 distinct unknown severity values") for line in logs.lines())


def test_a_sets_mentions_are_its_own_and_a_refusal_names_its_prefixed_key(rocketchat, start_daemon, logs):
    rocketchat.add_hook("ops", allow_mention_all=True)
    rocketchat.add_hook("db")  # its user may not mention @here
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=rocketchat.url("ops"), MENTION_CRITICAL="@ops-lead",
                          RECEIVERS="db", DB_ROCKETCHAT_WEBHOOK_CRITICAL=rocketchat.url("db"),
                          DB_MENTION_CRITICAL="@here @dba")
    assert daemon.post_json(group(alert("OpsDown")))[0] == 200
    assert daemon.post_json(group(alert("DbDown"), key="g2"), "/webhook/db")[0] == 200
    [ops] = rocketchat.posted("ops")
    assert ops["text"].startswith("@ops-lead ") and "@dba" not in ops["text"]
    [db] = rocketchat.posted("db")  # refused with @here, posted again without it
    assert db["text"].startswith("@dba ") and "@here" not in db["text"] and "DbDown" in db["text"]
    refused = [r.getMessage() for r in logs.records if "refused a post" in r.getMessage()]
    assert len(refused) == 1 and "DB_MENTION_CRITICAL" in refused[0] and "route=db/critical" in refused[0]
    assert metric_samples(daemon)['rcwebhook_mention_refusals_total{route="db/critical"}'] == 1


def test_check_config_shows_a_sets_mentions_and_checks_them(tmp_path):
    env = tmp_path / "rcwebhook.env"
    env.write_text("ROCKETCHAT_WEBHOOK_WARNING=https://chat.example.com/hooks/a/tok\nRECEIVERS=db\n"
                   "DB_MENTION_CRITICAL=@dba\nDB_MENTION_WARNING=dba\n")
    result = run("--config", str(env), "--check-config")
    assert result.returncode == 78
    assert f"{env}:4: DB_MENTION_WARNING='dba'" in result.stderr
    env.write_text("ROCKETCHAT_WEBHOOK_WARNING=https://chat.example.com/hooks/a/tok\nRECEIVERS=db\n"
                   "DB_MENTION_CRITICAL=@dba\n")
    result = run("--config", str(env), "--check-config")
    assert result.returncode == 0, result.stderr
    assert "DB_MENTION_CRITICAL=@dba" in result.stdout
