"""Templates in the messages: TEMPLATE_FILES and the parts they render, load errors, run-time
fallback, the example templates and `rcwebhook --render`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rcwebhook.cli import compile_templates
from rcwebhook.config.settings import Settings, build
from rcwebhook.messages import render
from rcwebhook.messages import templates
from rcwebhook.messages.notification import parse
from rcwebhook.messages.routing import plan
from tests.conftest import EXAMPLE_ALERT, ROOT, load_example, make_settings
from tests.rocketchat_standin import check_message as _check


def check_message(body: dict) -> None:
    assert _check(body, max_message_size=5000, allow_channel_override=False, allow_impersonate=False) is None

TEMPLATES = ROOT / "examples" / "templates"


def settings_with(**values: str) -> Settings:
    return make_settings(DRY_RUN="true", **values)


def rendered(settings: Settings, route_name: str = "critical") -> dict:
    notification = parse(EXAMPLE_ALERT.read_bytes())
    batch = next(b for b in plan(notification, settings).batches if b.route.name == route_name)
    return render.render(notification, batch, settings)


BUILTIN_LOOK = dict(TEMPLATE_FILES=str(TEMPLATES / "builtin.tmpl"), TEMPLATE_TEXT="rc.text",
                   TEMPLATE_ATTACHMENT_TITLE="rc.title", TEMPLATE_ATTACHMENT_TEXT="rc.attachment")


@pytest.mark.parametrize("route_name", ["critical", "warning"])
def test_the_builtin_look_template_gives_the_builtin_message(route_name: str) -> None:
    builtin = rendered(settings_with(), route_name)
    templated = rendered(settings_with(**BUILTIN_LOOK), route_name)
    assert templated == builtin
    assert templated["text"].startswith(f"{render.EMOJI[route_name]} [FIRING:1] [High")
    check_message(templated)


def test_the_builtin_look_template_gives_the_builtin_resolved_message() -> None:
    body = load_example()
    body["alerts"][0].update(status="resolved", endsAt="2026-01-30T11:02:03Z")
    notification = parse(json.dumps(body).encode())
    out = {}
    for name, settings in (("builtin", settings_with()), ("templated", settings_with(**BUILTIN_LOOK))):
        batch = next(b for b in plan(notification, settings).batches if b.route.name == "critical")
        out[name] = render.render(notification, batch, settings)
    assert out["templated"] == out["builtin"]
    assert out["builtin"]["text"].endswith(" (critical)") and "Silence" not in out["builtin"]["attachments"][0]["text"]


def test_templates_see_the_receiver_and_group_labels(tmp_path: Path) -> None:
    path = tmp_path / "group.tmpl"
    path.write_text('{{ define "t" }}{{ .Receiver }} got {{ .GroupLabels.instance }} '
                    '({{ .GroupLabels.SortedPairs }}){{ end }}')
    out = rendered(settings_with(TEMPLATE_FILES=str(path), TEMPLATE_TEXT="t", TEMPLATE_ATTACHMENT_TITLE="t"))
    assert out["text"] == "rocketchat got server1:9100 (instance=server1:9100)"
    assert out["attachments"][0]["title"] == "rocketchat got server1:9100 (instance=server1:9100)"


def test_posted_messages_carry_the_receiver_and_group_labels(tmp_path: Path, start_daemon, rocketchat) -> None:
    path = tmp_path / "group.tmpl"
    path.write_text('{{ define "t" }}{{ .Receiver }}: {{ .GroupLabels.job }}{{ end }}')
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=rocketchat.add_hook("warning"),
                          ROCKETCHAT_WEBHOOK_CRITICAL=rocketchat.add_hook("critical"), TEMPLATE_FILES=str(path),
                          TEMPLATE_TEXT="t")
    body = dict(load_example(), receiver="team\\.db", groupLabels={"job": "node"})
    status, _, answer = daemon.post_json(body)
    assert status == 200, answer
    assert [m["text"] for m in rocketchat.messages("warning")] == ["team\\.db: node"]
    assert [m["text"] for m in rocketchat.messages("critical")] == ["team\\.db: node"]


def test_posted_messages_carry_the_route_and_severity_of_their_hook_set(tmp_path: Path, start_daemon,
                                                                        rocketchat) -> None:
    path = tmp_path / "route.tmpl"
    path.write_text('{{ define "t" }}{{ .Route }} {{ .Severity }} for {{ .Receiver }}{{ end }}')
    daemon = start_daemon(ROCKETCHAT_WEBHOOK_WARNING=rocketchat.add_hook("warning"), RECEIVERS="db",
                          DB_ROCKETCHAT_WEBHOOK_CRITICAL=rocketchat.add_hook("db"), TEMPLATE_FILES=str(path),
                          TEMPLATE_TEXT="t")
    body = dict(load_example(), receiver="team\\.db")
    assert daemon.post_json(body, "/webhook/db")[0] == 200
    assert daemon.post_json(body)[0] == 200
    assert [m["text"] for m in rocketchat.messages("db")] == ["db/critical critical for team\\.db"]
    lines = sorted(line for m in rocketchat.messages("warning") for line in m["text"].split("\n"))
    assert lines == ["critical critical for team\\.db", "db/warning warning for team\\.db",
                     "warning warning for team\\.db"]


def test_the_compact_variant() -> None:
    settings = settings_with(TEMPLATE_FILES=str(TEMPLATES / "compact.tmpl"), TEMPLATE_TEXT="compact.text",
                             TEMPLATE_ATTACHMENT_TITLE="compact.title", TEMPLATE_ATTACHMENT_TEXT="compact.none")
    out = rendered(settings, "warning")
    assert out["text"] == "🔥 HighMemoryUsage on server1:9100\n"
    assert out["attachments"][0]["title"] == "HIGHMEMORYUSAGE (firing)"
    assert "text" not in out["attachments"][0]
    check_message(out)


def test_the_detailed_variant() -> None:
    settings = settings_with(TEMPLATE_FILES=f"{TEMPLATES}/builtin.tmpl,{TEMPLATES}/detailed.tmpl",
                             TEMPLATE_TEXT="detailed.text", TEMPLATE_ATTACHMENT_TITLE="rc.title",
                             TEMPLATE_ATTACHMENT_TEXT="detailed.attachment")
    out = rendered(settings, "critical")
    assert out["text"] == ("*FIRING*: 1 firing, 0 resolved — instance=server1:9100 job=node severity=critical ")
    assert out["attachments"][0]["text"] == (
        "• *alertname*: HighCPUUsage\n• *instance*: server1:9100\n• *job*: node\n• *severity*: critical\n"
        "Started: Fri 30 Jan 2026 11:00 CET")
    check_message(out)


def test_a_resolved_alert_in_the_detailed_variant_shows_how_long_it_lasted() -> None:
    settings = settings_with(TEMPLATE_FILES=str(TEMPLATES / "detailed.tmpl"),
                             TEMPLATE_ATTACHMENT_TEXT="detailed.attachment")
    body = load_example()
    body["alerts"][0].update(status="resolved", endsAt="2026-01-30T11:02:03Z")
    notification = parse(json.dumps(body).encode())
    batch = next(b for b in plan(notification, settings).batches if b.route.name == "critical")
    out = render.render(notification, batch, settings)
    assert out["attachments"][0]["text"].endswith("\nLasted: 1h 2m 2s")


def test_an_invalid_template_file_stops_the_start_with_its_path_and_gos_own_message(tmp_path: Path) -> None:
    bad = tmp_path / "msg.tmpl"
    bad.write_text('{{ define "t" }}\nok\n{{ if }}{{ end }}{{ end }}')
    errors: list = []
    build({"DRY_RUN": "true", "TEMPLATE_FILES": str(bad), "TEMPLATE_TEXT": "t"}, errors, [],
          compile_templates=compile_templates)
    assert errors == [f"TEMPLATE_FILES: {bad}: template: msg.tmpl:3: missing value for if"]
    result = subprocess.run([sys.executable, str(ROOT / "rcwebhook.py"), "--check-config"], capture_output=True,
                            text=True, timeout=30, cwd=tmp_path,
                            env={"DRY_RUN": "true", "TEMPLATE_FILES": str(bad), "TEMPLATE_TEXT": "t", "PATH": "/usr/bin"})
    assert result.returncode == 78
    assert f"{bad}: template: msg.tmpl:3: missing value for if" in result.stderr


def test_a_parse_error_at_the_end_of_a_file_is_told_as_amtool_tells_it_without_column_0(tmp_path: Path) -> None:
    """amtool 0.25 and 0.28.1 both print `template: b1.tmpl:5: unexpected EOF` for this file (checked by
    hand, and by test_gotemplate_differential where amtool is installed): Go gives a parse error a line only."""
    bad = tmp_path / "b1.tmpl"
    bad.write_text('{{ define "x" }}\nhello\n{{ if .Status }}\nyes\n')
    errors: list = []
    build({"DRY_RUN": "true", "TEMPLATE_FILES": str(bad), "TEMPLATE_TEXT": "x"}, errors, [],
          compile_templates=compile_templates)
    assert errors == [f"TEMPLATE_FILES: {bad}: template: b1.tmpl:5: unexpected EOF"]
    assert ":5:0" not in errors[0]


def run_check_config(env_file: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "rcwebhook.py"), "--config", str(env_file), "--check-config"],
                          capture_output=True, text=True, timeout=30, cwd=cwd, env={"PATH": "/usr/bin"})


def test_a_relative_template_files_is_read_from_the_env_files_directory(tmp_path: Path) -> None:
    """As Alertmanager reads `templates:` relative to its configuration file: under systemd the working
    directory is /, which a relative glob must not depend on."""
    etc = tmp_path / "etc"
    (etc / "templates").mkdir(parents=True)
    (etc / "templates" / "msg.tmpl").write_text('{{ define "t" }}{{ .Status }}{{ end }}')
    env_file = etc / "rcwebhook.env"
    env_file.write_text("DRY_RUN=true\nTEMPLATE_FILES=templates/*.tmpl\nTEMPLATE_TEXT=t\n")
    result = run_check_config(env_file, Path("/"))
    assert result.returncode == 0, result.stderr
    assert "TEMPLATE_FILES=templates/*.tmpl" in result.stdout


def test_a_template_files_glob_that_matches_nothing_is_one_error_naming_where_it_looked(tmp_path: Path) -> None:
    env_file = tmp_path / "rcwebhook.env"
    env_file.write_text("DRY_RUN=true\nTEMPLATE_FILES=templates/*.tmpl\nTEMPLATE_TEXT=rc.text\n"
                        "TEMPLATE_ATTACHMENT_TITLE=rc.title\nTEMPLATE_ATTACHMENT_TEXT=rc.body\n")
    result = run_check_config(env_file, Path("/"))
    assert result.returncode == 78
    problems = [line for line in result.stderr.splitlines() if line.startswith("rcwebhook: error: ")]
    assert problems == [f"rcwebhook: error: TEMPLATE_FILES: no file matches 'templates/*.tmpl' (read as "
                        f"'{tmp_path}/templates/*.tmpl': relative to the env file's directory)"], result.stderr
    assert "(1 problem)" in result.stderr


@pytest.mark.parametrize("values, problem", [
    ({"TEMPLATE_TEXT": "x"}, "TEMPLATE_TEXT='x' names a template, but TEMPLATE_FILES is not set"),
    ({"TEMPLATE_FILES": "/nonexistent/*.tmpl", "TEMPLATE_TEXT": "x"}, "TEMPLATE_FILES: no file matches '/nonexistent/*.tmpl'"),
    ({"TEMPLATE_FILES": str(TEMPLATES / "compact.tmpl"), "TEMPLATE_TEXT": "nope"},
     "TEMPLATE_TEXT='nope': no such template in TEMPLATE_FILES (defined: compact.none, compact.text, "
     "compact.title, compact.tmpl)"),
    ({"TEMPLATE_FILES": str(TEMPLATES / "compact.tmpl")}, "TEMPLATE_FILES is set but none of TEMPLATE_TEXT"),
])
def test_configuration_problems(values: dict, problem: str) -> None:
    errors: list = []
    build({"DRY_RUN": "true", **values}, errors, [], compile_templates=compile_templates)
    assert any(e.startswith(problem) for e in errors), errors


def test_a_template_failing_at_run_time_falls_back_to_the_builtin_part(tmp_path: Path, logs) -> None:
    path = tmp_path / "t.tmpl"
    path.write_text('{{ define "t" }}{{ index .Alerts 5 }}{{ end }}{{ define "ok" }}T {{ len .Alerts }}{{ end }}')
    settings = settings_with(TEMPLATE_FILES=str(path), TEMPLATE_TEXT="t", TEMPLATE_ATTACHMENT_TITLE="ok")
    before = templates.ERRORS.value(part="text")
    out = rendered(settings)
    assert out["text"] == rendered(settings_with())["text"]
    assert out["attachments"][0]["title"] == "T 1"
    assert templates.ERRORS.value(part="text") == before + 1
    assert "template 't' (TEMPLATE_TEXT) failed, the built-in text is used: template: t.tmpl:1:19: " \
           'executing "t" at <index .Alerts 5>: error calling index: index out of range: 5' in logs.text()
    from rcwebhook.operations.metrics import Metrics
    assert b'rcwebhook_template_errors_total{part="text"}' in Metrics().expose()


def test_template_output_is_kept_within_rocketchats_limits(tmp_path: Path) -> None:
    path = tmp_path / "big.tmpl"
    path.write_text('{{ define "big" }}{{ range .Alerts }}{{ printf "%9000s" "x" }}{{ end }}{{ end }}')
    settings = settings_with(TEMPLATE_FILES=str(path), TEMPLATE_TEXT="big", TEMPLATE_ATTACHMENT_TITLE="big",
                             TEMPLATE_ATTACHMENT_TEXT="big")
    out = rendered(settings)
    assert render.units(out["text"]) <= render.TEXT_LIMIT
    assert len(out["attachments"][0]["title"]) <= render.TITLE_LIMIT
    check_message(out)


def test_render_prints_the_messages_it_would_post() -> None:
    env = {"DRY_RUN": "true", "TEMPLATE_FILES": str(TEMPLATES / "compact.tmpl"), "TEMPLATE_TEXT": "compact.text",
           "PATH": "/usr/bin"}
    result = subprocess.run([sys.executable, str(ROOT / "rcwebhook.py"), "--render", str(EXAMPLE_ALERT),
                             "--route", "warning"], capture_output=True, text=True, timeout=30, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["route"] == "warning"
    assert out["message"]["text"] == "🔥 HighMemoryUsage on server1:9100\n"


def test_render_as_posted_to_a_hook_sets_path(tmp_path: Path) -> None:
    path = tmp_path / "route.tmpl"
    path.write_text('{{ define "t" }}{{ .Route }}{{ end }}')
    env = {"DRY_RUN": "true", "TEMPLATE_FILES": str(path), "TEMPLATE_TEXT": "t", "RECEIVERS": "db",
           "PATH": "/usr/bin"}
    command = [sys.executable, str(ROOT / "rcwebhook.py"), "--render", str(EXAMPLE_ALERT)]
    result = subprocess.run(command + ["--receiver", "db", "--route", "critical"], capture_output=True, text=True,
                            timeout=30, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["route"], out["message"]["text"]) == ("db/critical", "db/critical")
    result = subprocess.run(command + ["--receiver", "web"], capture_output=True, text=True, timeout=30, env=env,
                            cwd=ROOT)
    assert result.returncode == 2 and "RECEIVERS names no such hook set (db)" in result.stderr


def test_a_runaway_template_fails_fast_and_the_builtin_part_is_used(tmp_path: Path, logs) -> None:
    import time
    path = tmp_path / "loop.tmpl"
    path.write_text('{{ define "loop" }}{{ range $.Alerts }}{{ range (stringSlice "a" "b" "c" "d" "e" "f" "g" "h") }}'
                    '{{ range (stringSlice "a" "b" "c" "d" "e" "f" "g" "h") }}{{ range (stringSlice "a" "b" "c" "d" "e" "f" "g" "h") }}'
                    '{{ range (stringSlice "a" "b" "c" "d" "e" "f" "g" "h") }}{{ range (stringSlice "a" "b" "c" "d" "e" "f" "g" "h") }}'
                    '{{ range (stringSlice "a" "b" "c" "d" "e" "f" "g" "h") }}.{{ end }}'
                    '{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}')
    # The step limit is what stops it here, not the CPU budget: 200,000 steps take 0.16 s of CPU time on
    # the development machine and took more than the default budget's 0.25 s on a slower CI machine, which
    # then counted it as over budget instead (a test of the budget is in test_template_budget.py).
    settings = settings_with(TEMPLATE_FILES=str(path), TEMPLATE_TEXT="loop", TEMPLATE_CPU_BUDGET="60")
    before = templates.ERRORS.value(part="text")
    started = time.monotonic()
    out = rendered(settings)
    assert time.monotonic() - started < 5
    assert out["text"] == rendered(settings_with())["text"]
    assert templates.ERRORS.value(part="text") == before + 1
    assert "template 'loop' (TEMPLATE_TEXT) failed, the built-in text is used: " in logs.text()
    assert "stopped after 200000 steps" in logs.text()


def test_local_times_in_templates_are_in_timezone(tmp_path: Path) -> None:
    path = tmp_path / "local.tmpl"
    path.write_text('{{ define "t" }}{{ range .Alerts }}{{ .StartsAt.Local.Format "15:04 MST" }} '
                    '{{ printf "%#v" .StartsAt.Local }}{{ end }}{{ end }}')
    out = rendered(settings_with(TEMPLATE_FILES=str(path), TEMPLATE_TEXT="t", TIMEZONE="Europe/Berlin"))
    assert out["text"] == "11:00 CET time.Date(2026, time.January, 30, 11, 0, 0, 123456789, time.Local)"
    out = rendered(settings_with(TEMPLATE_FILES=str(path), TEMPLATE_TEXT="t"))
    assert out["text"] == "10:00 UTC time.Date(2026, time.January, 30, 10, 0, 0, 123456789, time.Local)"


def test_a_reload_to_a_broken_template_is_refused_and_the_running_templates_go_on(tmp_path, rocketchat, logs):
    from rcwebhook import cli
    from rcwebhook.service import Service
    from tests.conftest import Daemon

    template = tmp_path / "msg.tmpl"
    template.write_text('{{ define "t" }}before the reload{{ end }}')
    env = tmp_path / "rcwebhook.env"
    env.write_text(f"ROCKETCHAT_WEBHOOK_CRITICAL={rocketchat.add_hook('critical')}\nDEFAULT_SEVERITY=critical\n"
                   f"TEMPLATE_FILES={template}\nTEMPLATE_TEXT=t\n")
    env.chmod(0o600)
    args = cli.parse_args(["--config", str(env)])
    settings, _ = cli.load_settings(args, {})
    daemon = Daemon(settings)
    try:
        service = Service(lambda: cli.load_settings(args, {}), {})
        service.server = daemon.server
        template.write_text('{{ define "t" }}{{ if }}{{ end }}')
        assert service.reload() is False
        assert any(line.startswith(f"Reload refused: TEMPLATE_FILES: {template}: template: msg.tmpl:1:")
                   for line in logs.lines()), logs.lines()
        assert daemon.post_json(load_example())[0] == 200
        headlines = [line for m in rocketchat.messages("critical") for line in m["text"].splitlines()]
        assert headlines and set(headlines) == {"before the reload"}, headlines
    finally:
        daemon.stop()
