"""Rendering never stops other work: templates render outside the delivery lock, within a CPU-time
budget per message (TEMPLATE_CPU_BUDGET), and a stop during a render is not held up by it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import List

import pytest

from rcwebhook.config.settings import build
from rcwebhook.gotemplate import template as gotemplate
from rcwebhook.messages import templates as templating
from rcwebhook.amtemplate.render import load_globs
from tests.conftest import ROOT
from tests.test_operations import Process, one_alert

UNIT = ROOT / "packaging" / "systemd" / "rcwebhook.service"
# A template that takes minutes of CPU time for the warning route (each step upper-cases half a million
# characters) and renders at once for the others. Nothing in it is a regular expression.
SLOW = ('{{ define "t" }}{{ if eq .Severity "warning" }}{{ $s := printf "%0500000d" 0 }}'
        '{{ range 1000000 }}{{ $u := toUpper $s }}{{ end }}{{ end }}[{{ .Status }}] rendered by t{{ end }}')


def timeout_stop_sec() -> float:
    """Return the unit's TimeoutStopSec=, in seconds."""
    return float(re.search(r"^TimeoutStopSec=(\d+)s?$", UNIT.read_text(), re.M).group(1))


def slow_daemon(tmp_path: Path, processes, rocketchat, budget: str) -> Process:
    template = tmp_path / "slow.tmpl"
    template.write_text(SLOW)
    return processes(tmp_path, "\n".join([
        f"ROCKETCHAT_WEBHOOK_WARNING={rocketchat.add_hook('warning')}",
        f"ROCKETCHAT_WEBHOOK_CRITICAL={rocketchat.add_hook('critical')}",
        f"TEMPLATE_FILES={template}", "TEMPLATE_TEXT=t", f"TEMPLATE_CPU_BUDGET={budget}",
        "DELIVERY_DEADLINE=2", "ROCKETCHAT_RATE_LIMIT=0", ""]))


def post(daemon: Process, payload, timeout: float) -> tuple:
    """Return (status, parsed body) of one notification."""
    request = urllib.request.Request(daemon.url + "/webhook", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def processes():
    started: List[Process] = []

    def start(*args, **kwargs) -> Process:
        process = Process(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()  # a render may still be running: nothing to wait for
            process.proc.wait(10)


def test_a_message_rendering_for_long_holds_up_neither_health_nor_other_routes(tmp_path, rocketchat, processes):
    daemon = slow_daemon(tmp_path, processes, rocketchat, budget="60")
    status, body = post(daemon, one_alert("Slow", severity="warning", group="slow"), timeout=10)
    # Still rendering at DELIVERY_DEADLINE: the answer says so, and does not blame Rocket.Chat.
    assert status == 503, body
    assert re.search(r"route warning: not delivered yet: rendering a message for \d+\.\ds", body["error"]), body
    assert "waiting for Rocket.Chat" not in body["error"]
    assert rocketchat.messages("warning") == []  # the render goes on

    started = time.monotonic()
    with urllib.request.urlopen(daemon.url + "/health", timeout=5) as response:
        assert response.status == 200
    status, body = post(daemon, one_alert("Quick", severity="critical", group="quick"), timeout=10)
    assert status == 200, body
    assert time.monotonic() - started < 5
    [posted] = rocketchat.messages("critical")
    assert posted["text"] == "[firing] rendered by t"
    assert rocketchat.messages("warning") == []  # it was rendering all along


def cpu_seconds(pid: int) -> float:
    """Return the CPU time a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_sigterm_during_a_render_stops_the_daemon_within_timeout_stop_sec(tmp_path, rocketchat, processes):
    daemon = slow_daemon(tmp_path, processes, rocketchat, budget="60")
    answers: list = []
    sender = threading.Thread(target=lambda: answers.append(
        post(daemon, one_alert("Slow", severity="warning", group="slow"), timeout=5)), daemon=True)
    sender.start()
    daemon.wait_for("Notification received")
    # The render is under way once the daemon has spent a second of CPU time since.
    spent = cpu_seconds(daemon.proc.pid)
    deadline = time.monotonic() + 30
    while cpu_seconds(daemon.proc.pid) < spent + 1.0:
        assert time.monotonic() < deadline, "the daemon never started rendering:\n" + "\n".join(daemon.lines)
        time.sleep(0.05)
    assert rocketchat.messages("warning") == []
    daemon.signal(signal.SIGTERM)
    limit = timeout_stop_sec()
    started = time.monotonic()
    try:
        code = daemon.exited(limit)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running {limit:g}s after SIGTERM:\n" + "\n".join(daemon.lines)) from None
    assert code == 0, daemon.lines
    assert time.monotonic() - started < limit
    assert daemon.lines[-1].endswith("rcwebhook stopped")
    assert rocketchat.messages("warning") == []


def test_a_message_over_the_cpu_budget_is_posted_with_the_builtin_text_and_said_once(tmp_path, rocketchat,
                                                                                     processes):
    daemon = slow_daemon(tmp_path, processes, rocketchat, budget="0.05")
    for n in range(2):
        status, body = post(daemon, one_alert(f"Slow{n}", severity="warning", group=f"slow{n}"), timeout=10)
        assert status == 200, body
    texts = [m["text"] for m in rocketchat.messages("warning")]
    assert [t.startswith(":warning: [FIRING:1] Slow") for t in texts] == [True, True], texts  # the built-in text
    # The error is logged before Slow0's post, and the daemon writes its lines in order: once Slow1's post is
    # logged, every error the two caused is in.
    daemon.wait_for(r"Alert sent successfully to Rocket\.Chat: 200 .*Slow1")
    errors = [line for line in daemon.lines if "TEMPLATE_CPU_BUDGET" in line]
    assert len(errors) == 1, errors
    assert " ERROR " in errors[0], errors
    assert "template 't' (TEMPLATE_TEXT) used up TEMPLATE_CPU_BUDGET (0.05s of CPU time for a message)" in errors[0]
    samples = daemon.metrics()
    assert samples['rcwebhook_template_cpu_budget_exceeded_total{part="text"}'] == 2
    assert post(daemon, one_alert("Quick", severity="critical", group="quick"), timeout=10)[0] == 200
    assert rocketchat.messages("critical")[0]["text"] == "[firing] rendered by t"

    # A reload says it again, once.
    mark = len(daemon.lines)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for("Configuration reloaded from", after=mark)
    assert post(daemon, one_alert("Slow2", severity="warning", group="slow2"), timeout=10)[0] == 200
    daemon.wait_for(r"Alert sent successfully to Rocket\.Chat: 200 .*Slow2", after=mark)
    assert len([line for line in daemon.lines[mark:] if "used up TEMPLATE_CPU_BUDGET" in line]) == 1


@pytest.mark.parametrize("engine", ["generated", "walker"])
def test_the_budget_is_checked_where_the_executors_count_steps(tmp_path, engine):
    path = tmp_path / "loop.tmpl"
    path.write_text('{{ define "loop" }}{{ range 1000000 }}{{ $u := toUpper $.s }}{{ end }}{{ end }}')
    tmpl = load_globs([str(path)])
    tree = tmpl.trees["loop"]
    if engine == "generated":
        assert tmpl.compile(tree).__code__.co_filename == "<template 'loop'>"  # generated Python
    else:
        def broken(st, dot):
            raise RuntimeError("left to the walker")
        tree.compiled = broken
    data = {"s": "x" * 100_000}
    started = time.thread_time()
    with pytest.raises(gotemplate.BudgetError):
        tmpl.execute("loop", data, max_steps=templating.MAX_STEPS, cpu_deadline=started + 0.05)
    assert time.thread_time() - started < 0.5
    # without a budget, the step limit stops it (later)
    with pytest.raises(gotemplate.LimitError, match="execution stopped after 5000 steps"):
        tmpl.execute("loop", data, max_steps=5000)


@pytest.mark.parametrize("value, problem", [("0", "TEMPLATE_CPU_BUDGET='0' is out of range (0.01 to 60 seconds)"),
                                            ("soon", "TEMPLATE_CPU_BUDGET='soon' is not a number of seconds")])
def test_a_bad_cpu_budget_is_refused_naming_the_key(value, problem):
    errors: List[str] = []
    build({"DRY_RUN": "true", "TEMPLATE_CPU_BUDGET": value}, errors, [])
    assert any(problem in e for e in errors), errors
    assert build({"DRY_RUN": "true"}, [], []).template_cpu_budget == 0.25


def test_the_budget_stops_a_regular_expression_in_the_middle_of_its_work(tmp_path):
    # One reReplaceAll call can be quadratic in Go too (it is linear per search, and `a.*z|a` searches
    # again after every `a`): 40,000 characters take many seconds of matching in a single function call,
    # so only a check inside the matcher can keep the message within its budget.
    path = tmp_path / "re.tmpl"
    path.write_text('{{ define "re" }}{{ reReplaceAll "a.*z|a" "b" .s }}{{ end }}')
    tmpl = load_globs([str(path)])
    started = time.thread_time()
    with pytest.raises(gotemplate.BudgetError):
        tmpl.execute("re", {"s": "a" * 40_000}, max_steps=templating.MAX_STEPS, cpu_deadline=started + 0.05)
    assert time.thread_time() - started < 0.5


def test_many_messages_over_budget_in_one_post_hold_up_the_hook_for_one_budget_only(tmp_path, rocketchat, processes):
    # The budget bounds one post's rendering, not each group's: a post merges the groups ready together
    # (up to hundreds), and every other notification for that hook waits for it. Twenty groups each using
    # up a 0.3 s budget held the hook for 6 s of CPU time: a quick notification arriving meanwhile was
    # answered 503 at DELIVERY_DEADLINE, and so were some of the twenty. Forty groups here: 12 s of CPU
    # time had the budget been each group's, against one budget of 0.3 s, so that a loaded machine's
    # slower clock cannot blur the two before DELIVERY_DEADLINE (8 s).
    template = tmp_path / "slow.tmpl"
    template.write_text(SLOW)
    daemon = processes(tmp_path, "\n".join([
        f"ROCKETCHAT_WEBHOOK_WARNING={rocketchat.add_hook('warning')}",
        f"TEMPLATE_FILES={template}", "TEMPLATE_TEXT=t", "TEMPLATE_CPU_BUDGET=0.3",
        "DELIVERY_DEADLINE=8", "ROCKETCHAT_RATE_LIMIT=0", ""]))
    answers: list = []
    senders = [threading.Thread(target=lambda n=n: answers.append(
        post(daemon, one_alert(f"Slow{n}", severity="warning", group=f"slow{n}"), timeout=20)))
        for n in range(40)]
    for sender in senders:
        sender.start()
    for n in range(40):
        daemon.wait_for(f"groupKey=slow{n} ")
    quick = {"groupKey": "quick", "alerts": [{"status": "firing", "fingerprint": "quick",
                                              "labels": {"alertname": "Quick", "severity": "info"}}]}
    status, body = post(daemon, quick, timeout=20)
    for sender in senders:
        sender.join()
    assert status == 200, body
    assert sorted(status for status, _ in answers) == [200] * 40, answers
    names = [a["title"] for m in rocketchat.messages("warning") for a in m["attachments"]]
    assert sorted(names) == sorted([f"Slow{n}" for n in range(40)] + ["Quick"]), names
