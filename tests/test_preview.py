"""`rcwebhook --render`: it prints what would be posted, as it would be posted, and tells failing templates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rcwebhook.delivery.ledger import State
from rcwebhook.delivery.store import Store, hook_id
from rcwebhook.delivery.threads import Row as ThreadRow, group_digest
from tests.conftest import EXAMPLE_ALERT, ROOT

ENTRY = str(ROOT / "rcwebhook.py")
HOOK = "https://chat.example.com/hooks/abc123/SECRETTOKEN"
CRITICAL = f"DEFAULT_SEVERITY=critical\nROCKETCHAT_WEBHOOK_CRITICAL={HOOK}\n"


def render(tmp_path: Path, config_text: str, payload: Path = EXAMPLE_ALERT, *args: str) -> subprocess.CompletedProcess:
    config = tmp_path / "rcwebhook.env"
    config.write_text(config_text)
    config.chmod(0o600)
    return subprocess.run([sys.executable, ENTRY, "--config", str(config), "--render", str(payload), *args],
                          capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})


def printed(stdout: str) -> list:
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(stdout.rstrip()):
        value, at = decoder.raw_decode(stdout, at)
        out.append(value)
        while at < len(stdout) and stdout[at].isspace():
            at += 1
    return out


def test_render_puts_the_routes_mentions_in_front_as_the_post_does(tmp_path):
    result = render(tmp_path, CRITICAL + "MENTION_CRITICAL=@here @oncall\n"
                              "ROCKETCHAT_CHANNEL_CRITICAL=#ops\n", EXAMPLE_ALERT, "--route", "critical")
    assert (result.returncode, result.stderr) == (0, "")
    [shown] = printed(result.stdout)
    assert shown["message"]["text"].startswith("@here @oncall :rotating_light: [FIRING:1] ")
    assert shown["message"]["channel"] == "#ops"
    assert shown["message"]["separateResponse"] is True
    assert shown["thread"].startswith("a new message in #ops: it opens the incident's thread")


def test_render_shows_a_reply_in_the_thread_state_dir_holds_without_mentions(tmp_path):
    payload = json.loads(EXAMPLE_ALERT.read_text())
    payload["status"] = "resolved"
    cpu = payload["alerts"][0]
    cpu["status"], cpu["endsAt"] = "resolved", "2026-01-30T10:30:00Z"
    payload["alerts"] = [cpu]
    resolved = tmp_path / "resolved.json"
    resolved.write_text(json.dumps(payload))
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    store = Store(str(state_dir))  # as the daemon left it after posting the firing alert
    starts = 1769767200.123456789
    now = time.time()
    store.save_states([("critical", cpu["fingerprint"], State("firing", starts, 0.0, starts), now, now)])
    store.save_threads([ThreadRow(hook_id(HOOK), group_digest(payload["groupKey"]), "ROOTMSGID", starts, now,
                                  json.dumps([f"critical/{cpu['fingerprint']}"]))], [])
    store.close()
    result = render(tmp_path, CRITICAL + "MENTION_CRITICAL=@here @oncall\n"
                              f"STATE_DIR={state_dir}\n", resolved)
    assert (result.returncode, result.stderr) == (0, "")
    [shown] = printed(result.stdout)
    assert shown["message"]["tmid"] == "ROOTMSGID"
    assert shown["message"]["text"].startswith(":white_check_mark: [RESOLVED")
    assert shown["message"]["text"].endswith("\nIncident resolved after 29m 59s.")  # its thread's last alert
    assert "a reply in the incident's thread (tmid ROOTMSGID)" in shown["thread"]


def test_render_tells_a_failing_template_on_stderr_and_exits_1_showing_the_fallback(tmp_path):
    templates = tmp_path / "t.tmpl"
    templates.write_text('{{ define "my.text" }}\n{{ .CommonLabels.alertname }} {{ index .Alerts 5 }}\n{{ end }}\n')
    result = render(tmp_path, CRITICAL + f"TEMPLATE_FILES={templates}\n"
                              "TEMPLATE_TEXT=my.text\n", EXAMPLE_ALERT, "--route", "critical")
    assert result.returncode == 1
    assert result.stderr.startswith("rcwebhook: error: template 'my.text' (TEMPLATE_TEXT) failed, the built-in text "
                                    "is used: template: t.tmpl:2:33: executing \"my.text\" at <index .Alerts 5>: "), \
        result.stderr
    [shown] = printed(result.stdout)
    assert shown["message"]["text"].startswith(":rotating_light: [FIRING:1] [HighCPUUsage]")


def test_render_prints_exactly_what_the_daemon_then_posts_first_in_the_channel_then_in_its_thread(tmp_path,
                                                                                                 rocketchat):
    """The real daemon, its state in STATE_DIR: --render's message for the firing alert is the body posted, and
    after the daemon stopped, its message for the resolution is the reply posted by the next daemon."""
    from tests.test_operations import Process
    hook = rocketchat.add_hook("critical", allow_mention_all=True)
    config = (f"DEFAULT_SEVERITY=critical\nROCKETCHAT_WEBHOOK_CRITICAL={hook}\nMENTION_CRITICAL=@here @oncall\n"
              f"STATE_DIR={tmp_path / 'state'}\nDEDUP_WINDOW=0\n")
    payload = json.loads(EXAMPLE_ALERT.read_text())
    payload["alerts"] = payload["alerts"][:1]
    firing = tmp_path / "firing.json"
    firing.write_text(json.dumps(payload))
    payload["status"] = "resolved"
    payload["alerts"][0].update(status="resolved", endsAt="2026-01-30T10:30:00Z")
    resolved = tmp_path / "resolved.json"
    resolved.write_text(json.dumps(payload))

    for notification, expected_thread in ((firing, "a new message in the hook's own channel"),
                                          (resolved, "a reply in the incident's thread")):
        shown = render(tmp_path, config, notification)
        assert (shown.returncode, shown.stderr) == (0, ""), shown.stderr
        [preview] = printed(shown.stdout)
        assert preview["thread"].startswith(expected_thread), preview["thread"]
        daemon = Process(tmp_path, config)
        try:
            assert daemon.post(json.loads(notification.read_text())) == 200
        finally:
            assert daemon.stop() == 0
        assert rocketchat.messages("critical")[-1] == preview["message"]
    first, reply = rocketchat.messages("critical")
    assert first["text"].startswith("@here @oncall ") and reply["tmid"] == rocketchat.message_ids("critical")[0]
