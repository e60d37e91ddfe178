"""The template functions of Alertmanager 0.30 to 0.34, each at the compat level (TEMPLATE_COMPAT) that has it.

No binary of those versions is at hand, so the expected outputs are facts taken from Alertmanager's own sources:

- safeUrl, urlUnescape, toJson (0.30): the cases of TestTemplateExpansion and TestTemplateFuncs in
  template/template_test.go as it stands in the release line that added them (the file version whose
  DefaultFuncs end with toJson); the outputs below are those cases' expected strings.
- list, append, dict (0.32): their definitions in template/template.go of that line (list of no argument is an
  empty list, append adds to a copy, dict wants string keys and an even count, with those two error texts) and
  the cases of pull request 5093 that added them (`list 1 2 3`, `append (list 1 2 3) 4`).
- now (0.33): time.Now, in the process's zone.
- toDate, mustToDate (0.34): time.ParseInLocation(layout, value, time.UTC), toDate giving the zero time on a
  value that does not fit (pull request 5327), the case `toDate "2006-01-02" "2023-12-31" | date "01/02/2006"`
  giving 12/31/2023; the error texts are Go's time.ParseError's.
- base64encode, base64decode (0.34): base64.URLEncoding, padded, with the URL-safe alphabet (pull request 5413:
  its tests check an input whose encoding differs between the two alphabets, and the error of a bad input).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rcwebhook.amtemplate import data as amdata
from rcwebhook.amtemplate import functions as amfunctions
from rcwebhook.amtemplate.compat import COMPATS, level
from rcwebhook import cli
from rcwebhook.config import loading
from rcwebhook.config.settings import ConfigError
from rcwebhook.gotemplate.template import TemplateError
from rcwebhook.amtemplate.render import render_text
from tests.conftest import ROOT

ENTRY = str(ROOT / "rcwebhook.py")


def render(text: str, data=None, compat: str = "0.34") -> str:
    return render_text(amfunctions.new_template(compat), text, data)


def error(text: str, data=None, compat: str = "0.34") -> str:
    with pytest.raises(TemplateError) as caught:
        render(text, data, compat)
    return str(caught.value)


DATA = amdata.data_from_json({"commonLabels": {"severity": "critical", "job": "foo"},
                              "alerts": [{"status": "firing", "labels": {"alertname": "test"}},
                                         {"status": "resolved"}]})

# (function, compat level it came with, a template using it, what Alertmanager renders)
CASES = [
    ("urlUnescape", "0.30", '{{ "search?q=test%20foo" | urlUnescape }}', "search?q=test foo"),
    ("safeUrl", "0.30", '{{ "q=test%20foo" | safeUrl }}', "q=test%20foo"),
    ("toJson", "0.30", '{{ "test" | toJson }}', '"test"'),
    ("toJson", "0.30", "{{ 42 | toJson }}", "42"),
    ("toJson", "0.30", "{{ true | toJson }}", "true"),
    ("toJson", "0.30", "{{ .CommonLabels | toJson }}", '{"job":"foo","severity":"critical"}'),
    ("toJson", "0.30", "{{ .Alerts.Firing | toJson }}",
     '[{"status":"firing","labels":{"alertname":"test"},"annotations":null,"startsAt":"0001-01-01T00:00:00Z",'
     '"endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":""}]'),
    ("list", "0.32", "{{ list 1 2 3 }}", "[1 2 3]"),
    ("list", "0.32", "{{ list | len }}", "0"),
    ("append", "0.32", "{{ append (list 1 2 3) 4 }}", "[1 2 3 4]"),
    ("dict", "0.32", '{{ (dict "name1" "value1" "name2" 2).name1 }}', "value1"),
    ("dict", "0.32", '{{ dict "b" (list 1 2) "a" "x" | toJson }}', '{"a":"x","b":[1,2]}'),
    ("now", "0.33", '{{ now | printf "%T" }}', "time.Time"),
    ("toDate", "0.34", '{{ toDate "2006-01-02" "2023-12-31" | date "01/02/2006" }}', "12/31/2023"),
    ("toDate", "0.34", '{{ toDate "2006-01-02" "not a date" }}', "0001-01-01 00:00:00 +0000 UTC"),
    ("mustToDate", "0.34", '{{ mustToDate "2006-01-02" "2023-12-31" | date "01/02/2006" }}', "12/31/2023"),
    ("mustToDate", "0.34", '{{ mustToDate "2006-01-02T15:04:05Z07:00" "2023-12-31T10:11:12+02:00" }}',
     "2023-12-31 10:11:12 +0200 +0200"),
    ("base64encode", "0.34", '{{ "hello" | base64encode }}', "aGVsbG8="),
    ("base64encode", "0.34", '{{ "??>" | base64encode }}', "Pz8-"),  # the standard alphabet would give Pz8+
    ("base64decode", "0.34", '{{ "Pz8-" | base64decode }}', "??>"),
]


@pytest.mark.parametrize("name, since, text, expected", CASES)
def test_each_function_renders_as_alertmanager_does_from_its_version_on(name, since, text, expected):
    for compat in COMPATS:
        if level(compat) >= level(since):
            assert render(text, DATA, compat) == expected, compat
        else:
            assert f'function "{name}" not defined' in error(text, DATA, compat), compat


@pytest.mark.parametrize("text, message", [
    ('{{ "a%zz" | urlUnescape }}', 'error calling urlUnescape: invalid URL escape "%zz"'),
    ('{{ dict "a" }}', "error calling dict: dict requires an even number of arguments"),
    ("{{ dict 1 2 }}", "error calling dict: dict keys must be strings"),
    ('{{ append (stringSlice "a") "b" }}', "wrong type for value; expected []interface {}; got []string"),
    ('{{ mustToDate "2006-01-02" "2023/12/31" }}',
     'error calling mustToDate: parsing time "2023/12/31" as "2006-01-02": cannot parse "/12/31" as "-"'),
    ('{{ mustToDate "2006-01-02" "2023-02-30" }}',
     'error calling mustToDate: parsing time "2023-02-30": day out of range'),
    ('{{ mustToDate "2006-01-02" "2023-12-31 x" }}',
     'error calling mustToDate: parsing time "2023-12-31 x": extra text: " x"'),
    ('{{ "Pz8+" | base64decode }}', "error calling base64decode: illegal base64 data at input byte 3"),
    ('{{ "aGVsbG8" | base64decode }}', "error calling base64decode: illegal base64 data at input byte 4"),
])
def test_the_new_functions_fail_with_gos_messages(text, message):
    assert message in error(text)


def test_a_list_grown_by_append_in_a_loop_is_bounded():
    """Each append copies its list (so that no two lists share elements): a template's loop of them is cut at
    MAX_ITEMS elements, an error like a too long value's, instead of a quadratic run."""
    text = f'{{{{ $l := list }}}}{{{{ range {amfunctions.MAX_ITEMS + 1} }}}}{{{{ $l = append $l . }}}}{{{{ end }}}}'
    assert f"result longer than {amfunctions.MAX_ITEMS} elements" in error(text)
    assert render(f'{{{{ $l := list }}}}{{{{ range 100 }}}}{{{{ $l = append $l . }}}}{{{{ end }}}}{{{{ len $l }}}}') == "100"


def test_now_is_the_current_time():
    import time
    before = int(time.time())
    shown = int(render('{{ now.Unix }}'))
    assert before <= shown <= int(time.time())


# --- TEMPLATE_COMPAT, for the daemon and `template render` alike -----------------------------------------

def _env_file(tmp_path: Path, text: str) -> Path:
    templates = tmp_path / "json.tmpl"
    templates.write_text('{{ define "j" }}{{ .CommonLabels | toJson }}{{ end }}')
    path = tmp_path / "rcwebhook.env"
    path.write_text(f"DRY_RUN=true\nTEMPLATE_FILES={templates}\nTEMPLATE_TEXT=j\n{text}")
    return path


def test_template_compat_lets_the_daemons_templates_use_a_later_alertmanagers_functions(tmp_path):
    path = _env_file(tmp_path, "TEMPLATE_COMPAT=0.34\n")
    settings, _ = loading.load(path, {}, compile_templates=cli.compile_templates)
    assert settings.template_compat == "0.34"
    data = amdata.MessageData(CommonLabels=amdata.KV({"team": "db"}))
    assert settings.templates.render("text", data) == '{"team":"db"}'


def test_without_template_compat_a_later_function_is_refused_saying_which_setting_allows_it(tmp_path):
    path = _env_file(tmp_path, "")
    with pytest.raises(ConfigError) as caught:
        loading.load(path, {}, compile_templates=cli.compile_templates)
    [problem] = caught.value.problems
    assert 'function "toJson" not defined (toJson exists from Alertmanager 0.30 on: set TEMPLATE_COMPAT=0.30 or ' \
           "later, if your Alertmanager is that recent; it is 0.28 now)" in problem


def test_rcwebhook_template_compat_is_an_alias_and_template_compat_wins(tmp_path):
    path = _env_file(tmp_path, "")
    assert loading.load(path, {"RCWEBHOOK_TEMPLATE_COMPAT": "0.30"})[0].template_compat == "0.30"
    assert loading.load(path, {"RCWEBHOOK_TEMPLATE_COMPAT": "0.30", "TEMPLATE_COMPAT": "0.34"})[0].template_compat \
        == "0.34"
    with pytest.raises(ConfigError) as caught:
        loading.load(path, {"TEMPLATE_COMPAT": "0.29"})
    assert any("TEMPLATE_COMPAT='0.29' is not an Alertmanager version rcwebhook follows (0.25, 0.28, 0.30, 0.32, "
               "0.33, 0.34)" in p for p in caught.value.problems)


def test_check_config_shows_the_template_compat(tmp_path):
    result = subprocess.run([sys.executable, ENTRY, "--config", str(_env_file(tmp_path, "TEMPLATE_COMPAT=0.32\n")),
                             "--check-config"], capture_output=True, text=True, timeout=30,
                            env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    assert "TEMPLATE_COMPAT=0.32\n" in result.stdout


def test_template_render_follows_template_compat_from_the_environment_or_the_env_file(tmp_path, capsys):
    glob = tmp_path / "empty.tmpl"
    glob.write_text("")
    argv = ["template", "render", f"--template.glob={glob}", '--template.text={{ "x" | base64encode }}']
    assert cli.main(argv, environ={"TEMPLATE_COMPAT": "0.34"}) == 0
    assert capsys.readouterr().out == "eA=="
    assert cli.main(argv, environ={"RCWEBHOOK_TEMPLATE_COMPAT": "0.34"}) == 0
    assert capsys.readouterr().out == "eA=="
    env_file = tmp_path / "rcwebhook.env"
    env_file.write_text("TEMPLATE_COMPAT=0.34\n")
    assert cli.main(argv, environ={"RCWEBHOOK_CONFIG": str(env_file)}) == 0
    assert capsys.readouterr().out == "eA=="
    assert cli.main(argv, environ={"RCWEBHOOK_CONFIG": str(tmp_path / "none.env")}) == 1
    assert 'function "base64encode" not defined' in capsys.readouterr().err
    assert cli.main(argv, environ={"TEMPLATE_COMPAT": "9.9"}) == 2
    assert "TEMPLATE_COMPAT='9.9' is not an Alertmanager version rcwebhook follows" in capsys.readouterr().err


def test_a_034_notification_renders_with_034_functions(tmp_path):
    """The hand-written 0.34 payload through --render, its template using toJson and base64encode."""
    templates = tmp_path / "t.tmpl"
    templates.write_text('{{ define "t" }}{{ .CommonLabels.alertname }} {{ .GroupLabels | toJson | base64encode }}'
                         '{{ end }}')
    env_file = tmp_path / "rcwebhook.env"
    env_file.write_text(f"DRY_RUN=true\nTEMPLATE_FILES={templates}\nTEMPLATE_TEXT=t\nTEMPLATE_COMPAT=0.34\n")
    result = subprocess.run([sys.executable, ENTRY, "--config", str(env_file), "--render",
                             str(ROOT / "tests" / "fixtures" / "alertmanager-0.34.json")],
                            capture_output=True, text=True, timeout=30, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 0, result.stderr
    import base64
    import json
    payload = json.loads((ROOT / "tests" / "fixtures" / "alertmanager-0.34.json").read_text())
    group = json.dumps(payload["groupLabels"], separators=(",", ":"), sort_keys=True)
    assert base64.urlsafe_b64encode(group.encode()).decode() in result.stdout
