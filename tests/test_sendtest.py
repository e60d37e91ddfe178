"""--send-test as an operator runs it: what the test post says, and --mention."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

ENTRY = str(ROOT / "rcwebhook.py")


def send_test(tmp_path: Path, config_text: str, *args: str) -> subprocess.CompletedProcess:
    config = tmp_path / "send-test.env"
    config.write_text(config_text)
    config.chmod(0o600)
    return subprocess.run([sys.executable, ENTRY, "--config", str(config), "--send-test", *args],
                          capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]})


def test_the_test_alert_tells_its_time_in_timezone_as_its_started_field_does(tmp_path, rocketchat):
    hook = rocketchat.add_hook("warning")
    result = send_test(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nTIMEZONE=Europe/Berlin\n", "warning")
    assert result.returncode == 0, result.stdout + result.stderr
    [posted] = rocketchat.messages("warning")
    attachment = posted["attachments"][0]
    [started] = [f["value"] for f in attachment["fields"] if f["title"] == "Started"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T", started), started
    said = re.search(r"route at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+)\.", attachment["text"])
    assert said and said.group(1) == started, attachment["text"]


def test_send_test_leaves_mentions_out_and_says_how_to_test_them(tmp_path, rocketchat):
    hook = rocketchat.add_hook("warning", allow_mention_all=False)
    result = send_test(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nMENTION_WARNING=@here @oncall\n", "warning")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "its mentions (@here @oncall) left out: add --mention to test them" in result.stdout
    [posted] = rocketchat.messages("warning")
    assert "@" not in posted["text"].split("RcwebhookTest")[0]


def test_send_test_mention_shows_a_refused_here_before_the_first_real_alert(tmp_path, rocketchat):
    hook = rocketchat.add_hook("warning", allow_mention_all=False)
    result = send_test(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nMENTION_WARNING=@here @oncall\n",
                       "warning", "--mention")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("warning: FAILED (400: error-action-not-allowed) to "), result.stdout
    assert "may not mention @here: grant it mention-here" in result.stdout
    assert "take @here out of MENTION_WARNING" in result.stdout
    assert rocketchat.messages("warning") == []


def test_send_test_mention_posts_the_routes_mentions_in_front(tmp_path, rocketchat):
    hook = rocketchat.add_hook("warning", allow_mention_all=True)
    result = send_test(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={hook}\nMENTION_WARNING=@here @oncall\n",
                       "warning", "--mention")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning: delivered (200)" in result.stdout and "mentioning @here @oncall" in result.stdout
    [posted] = rocketchat.messages("warning")
    assert posted["text"].startswith("@here @oncall :warning: [FIRING:1] RcwebhookTest")


def test_mention_without_send_test_is_a_usage_error(tmp_path):
    result = subprocess.run([sys.executable, ENTRY, "--mention", "--dry-run"], capture_output=True, text=True,
                            timeout=30, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 2 and "--mention goes with --send-test" in result.stderr
