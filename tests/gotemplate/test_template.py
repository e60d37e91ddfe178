"""The template engine as a template author sees it: outputs, errors with their positions, limits.

The outputs and messages here are those of Alertmanager's amtool (see the differential test for
the proof at scale)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Dict, Optional

import pytest

from rcwebhook.amtemplate import data as amdata
from rcwebhook.amtemplate import functions as amfunctions
from rcwebhook import cli
from rcwebhook.gotemplate import template as gotemplate
from rcwebhook.amtemplate import render as templaterender
from rcwebhook.gotemplate.template import ExecError, LimitError, ParseError

DATA = {
    "receiver": "rocketchat", "status": "firing", "externalURL": "http://am:9093",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "HighCPU", "severity": "critical", "instance": "web-1"},
         "annotations": {"summary": "CPU at 97%"}, "startsAt": "2026-01-30T10:00:00Z",
         "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "a1"},
        {"status": "resolved", "labels": {"alertname": "DiskFull", "severity": "warning"},
         "annotations": {}, "startsAt": "2026-01-30T08:00:00.5+02:00", "endsAt": "2026-01-30T09:30:00Z",
         "generatorURL": "", "fingerprint": "b2"},
    ],
    "groupLabels": {"alertname": "HighCPU"},
    "commonLabels": {"b": "2", "alertname": "X", "a": "1"},
    "commonAnnotations": {},
}


def render(text: str, files: Optional[Dict[str, str]] = None, compat: str = "0.28", data=DATA) -> str:
    tmpl = amfunctions.new_template(compat)
    for name, body in (files or {}).items():
        tmpl.parse(name, body)
    amfunctions.check_regexps(tmpl)
    return templaterender.render_text(tmpl, text, amdata.data_from_json(data))


@pytest.mark.parametrize("text, expected", [
    ("{{ .Receiver }}/{{ .Status }}", "rocketchat/firing"),
    ("{{ range .Alerts }}{{ .Labels.alertname }} {{ end }}", "HighCPU DiskFull "),
    ("{{ range $i, $a := .Alerts.Firing }}{{ $i }}={{ $a.Annotations.summary }}{{ end }}", "0=CPU at 97%"),
    ("{{ len .Alerts.Resolved }}", "1"),
    ("{{ range $k, $v := .CommonLabels }}{{ $k }}:{{ $v }},{{ end }}", "a:1,alertname:X,b:2,"),
    ("{{ .CommonLabels.SortedPairs.Names }}", "[alertname a b]"),
    ("{{ .CommonLabels.Values }}", "[X 1 2]"),
    ("{{ (.CommonLabels.Remove (stringSlice \"a\" \"b\")).Names }}", "[alertname]"),
    ("{{ .CommonLabels.missing }}|", "|"),
    ("{{ index .CommonLabels \"a\" }}", "1"),
    ("{{ if eq .Status \"firing\" \"x\" }}yes{{ else }}no{{ end }}", "yes"),
    ("{{ if not .Alerts }}none{{ else if gt (len .Alerts) 1 }}many{{ else }}one{{ end }}", "many"),
    ("{{ with .GroupLabels.alertname }}<{{ . }}>{{ else }}-{{ end }}", "<HighCPU>"),
    ("{{ with .GroupLabels.nope }}<{{ . }}>{{ else with .Receiver }}[{{ . }}]{{ end }}", "[rocketchat]"),
    ("{{ range .Alerts }}{{ if eq .Status \"resolved\" }}{{ break }}{{ end }}{{ .Fingerprint }}{{ end }}", "a1"),
    ("{{ range .Alerts }}{{ if eq .Status \"firing\" }}{{ continue }}{{ end }}{{ .Fingerprint }}{{ end }}", "b2"),
    ("{{ range .Alerts.Nothing }}x{{ else }}empty{{ end }}", None),
    ("{{ range 3 }}{{ . }}{{ end }}", "012"),
    ("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", "2"),
    ("a  {{- \" b \" -}}  c", "a b c"),
    ("x {{/* a comment */}} y {{- /* trimmed */ -}} z", "x  yz"),
    ("{{ \"\\u00e9\\t\\x41\" }}{{ `raw\\n` }}{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ 1_000 }} {{ -2.5 }}", "é\tAraw\\n97 31 1000 1000 -2.5"),
    ("{{ true }} {{ false }} {{ print nil }}", "true false <nil>"),
    ("{{ printf \"%s=%d %q %.2f %5s|%-5s| %x %v %T\" \"a\" 42 \"q\" 3.14159 \"r\" \"l\" 255 .GroupLabels .Alerts }}",
     "a=42 \"q\" 3.14     r|l    | ff alertname=HighCPU template.Alerts"),
    ("{{ print 1 2 \"a\" \"b\" 3 }}", "1 2ab3"),
    ("{{ println \"a\" 1 }}", "a 1\n"),
    ("{{ html \"<b>&'\\\"\" }} {{ js \"a'b<\" }} {{ urlquery \"a b&c\" }}", "&lt;b&gt;&amp;&#39;&#34; a\\'b\\u003C a+b%26c"),
    ("{{ index \"abc\" 1 }} {{ slice \"abcdef\" 1 3 }} {{ index (stringSlice \"x\" \"y\") 1 }}", "98 bc y"),
    ("{{ and 1 0 2 }} {{ or 0 \"\" \"z\" }} {{ not 0 }}", "0 z true"),
    ("{{ lt 1 2 }} {{ le \"a\" \"a\" }} {{ gt 2.5 1.5 }} {{ ge 1 2 }} {{ ne \"a\" \"b\" }}", "true true true false true"),
    ("{{ toUpper \"abc\" }} {{ toLower \"ÀB\" }} {{ title \"hello wORLD\" }} {{ trimSpace \"  x \" }}", "ABC àb Hello World x"),
    ("{{ join \", \" .CommonLabels.Names }}", "alertname, a, b"),
    ("{{ match \"^High\" .GroupLabels.alertname }} {{ reReplaceAll \"(\\\\w+)-(\\\\d+)\" \"$2:$1\" \"web-1\" }}", "true 1:web"),
    ("{{ reReplaceAll \"x*\" \"-\" \"abc\" }}", "-a-b-c-"),
    ("{{ safeHtml \"<b>\" }}", "<b>"),
    ("{{ (index .Alerts 0).StartsAt }}", "2026-01-30 10:00:00 +0000 UTC"),
    ("{{ (index .Alerts 1).StartsAt }}", "2026-01-30 08:00:00.5 +0200 +0200"),
    ("{{ (index .Alerts 0).StartsAt.Format \"Mon Jan 2 15:04:05 MST 2006\" }}", "Fri Jan 30 10:00:00 UTC 2026"),
    ("{{ date \"2006-01-02 15:04\" (tz \"Europe/Berlin\" (index .Alerts 0).StartsAt) }}", "2026-01-30 11:00"),
    ("{{ (tz \"America/New_York\" (index .Alerts 0).StartsAt) }}", "2026-01-30 05:00:00 -0500 EST"),
    ("{{ humanizeDuration 3725 }} {{ humanizeDuration 0.25 }} {{ humanizeDuration \"90061\" }}", "1h 2m 5s 250ms 1d 1h 1m 1s"),
    ("{{ ((index .Alerts 1).EndsAt.Sub (index .Alerts 1).StartsAt) }}", "3h29m59.5s"),
    ("{{ (index .Alerts 0).EndsAt.IsZero }} {{ (index .Alerts 0).StartsAt.Unix }}", "true 1769767200"),
    ("{{ .CommonLabels }}", "alertname=X, a=1, b=2"),
    ("{{ . | printf \"%T\" }}", "template.Data"),
    ("{{ .Alerts.Firing | len }}", "1"),
    ("{{ (len .Alerts) | printf \"%d alerts\" }}", "2 alerts"),
    ("{{ .GroupLabels.alertname | toLower | printf \"%q\" }}", "\"highcpu\""),
])
def test_outputs(text: str, expected: Optional[str]) -> None:
    if expected is None:  # an invalid field on the Alerts type is an error
        with pytest.raises(ExecError):
            render(text)
        return
    assert render(text) == expected


def test_zero_point_25_prints_labels_as_maps_and_lacks_the_newer_functions() -> None:
    assert render("{{ .CommonLabels }}", compat="0.25") == "map[a:1 alertname:X b:2]"
    with pytest.raises(ParseError, match='function "trimSpace" not defined'):
        render("{{ trimSpace . }}", compat="0.25")
    with pytest.raises(ParseError):
        render("{{ with 1 }}{{ else with 2 }}{{ end }}", compat="0.25")


@pytest.mark.parametrize("go_version, else_with, paren", [
    ((1, 19), 'unexpected <with> in else', 'unexpected ")" in command'),
    ((1, 20), 'unexpected <with> in else', "unexpected right paren"),
    ((1, 23), None, "unexpected right paren"),
])
def test_a_template_set_parses_the_syntax_of_the_go_release_it_is_given(go_version, else_with, paren) -> None:
    """{{else with}} is Go 1.23's; an unmatched right paren has been its own error since Go 1.20. By
    default a set follows the Go that built the Alertmanager of its compat level (0.25: Go 1.19)."""
    for tmpl in (gotemplate.Template(gotemplate.BUILTINS, go_version=go_version),
                 amfunctions.new_template("0.25" if go_version < (1, 20) else "0.28")):
        if go_version == (1, 20) and tmpl.compat == "0.28":
            continue  # no compat level is Go 1.20's
        for text, error in (("{{ with 1 }}{{ else with 2 }}{{ end }}", else_with), ("{{ print 1) }}", paren)):
            if error is None:
                tmpl.parse("x", text)
                continue
            with pytest.raises(ParseError) as raised:
                tmpl.parse("x", text)
            assert str(raised.value) == f"template: x:1: {error}"


def test_define_template_and_block() -> None:
    files = {"a.tmpl": '{{ define "title" }}[{{ .Status | toUpper }}] {{ .GroupLabels.alertname }}{{ end }}'
                       '{{ define "list" }}{{ range . }}- {{ .Labels.alertname }}\n{{ end }}{{ end }}'}
    assert render('{{ template "title" . }}\n{{ template "list" .Alerts }}', files) == \
        "[FIRING] HighCPU\n- HighCPU\n- DiskFull\n"
    assert render('{{ block "b" .Receiver }}<{{ . }}>{{ end }}') == "<rocketchat>"
    # a later file's define replaces an earlier one, as Alertmanager's glob order has it
    files["b.tmpl"] = '{{ define "title" }}other{{ end }}'
    assert render('{{ template "title" . }}', files) == "other"


@pytest.mark.parametrize("text, message", [
    ("{{ if }}", "template: :1: missing value for if"),
    ("{{ .Receiver", "template: :1: unclosed action"),
    ("a\n{{ end }}", "template: :2: unexpected {{end}}"),
    ("{{ nofunc }}", 'template: :1: function "nofunc" not defined'),
    ("{{ $x }}", 'template: :1: undefined variable "$x"'),
    ("{{ break }}", "template: :1: {{break}} outside {{range}}"),
    ("{{ \"abc }}", "template: :1: unterminated quoted string"),
    ("{{ 1x }}", 'template: :1: bad number syntax: "1x"'),
    ("{{ range .Alerts }}", "template: :1: unexpected EOF"),
    ("x\n\n{{ 3 | .Receiver | 4 }}", "template: :3: non executable command in pipeline stage 3"),
])
def test_parse_errors_have_gos_wording_and_line(text: str, message: str) -> None:
    with pytest.raises(ParseError) as info:
        render(text)
    assert str(info.value) == message


@pytest.mark.parametrize("text, message", [
    ("{{ .Nope }}", 'template: :1:3: executing "" at <.Nope>: can\'t evaluate field Nope in type template.Data'),
    ('x\n  {{ template "missing" }}', 'template: :2:14: executing "" at <{{template "missing"}}>: '
                                      'template "missing" not defined'),
    ("{{ index .Alerts 5 }}", 'template: :1:3: executing "" at <index .Alerts 5>: error calling index: '
                              "index out of range: 5"),
    ("{{ toUpper 1 }}", 'template: :1:11: executing "" at <1>: expected string; found 1'),
    ("{{ eq 1 \"a\" }}", 'template: :1:3: executing "" at <eq 1 "a">: error calling eq: '
                         "incompatible types for comparison"),
    ("{{ .Receiver.X }}", 'template: :1:12: executing "" at <.Receiver.X>: can\'t evaluate field X in type string'),
    ('{{ tz "No/Where" (index .Alerts 0).StartsAt }}', 'template: :1:3: executing "" at <tz "No/Where" (index .Alerts 0).StartsAt>: '
                                                       "error calling tz: unknown time zone No/Where"),
])
def test_execution_errors_have_gos_wording_and_position(text: str, message: str) -> None:
    with pytest.raises(ExecError) as info:
        render(text)
    assert str(info.value) == message


# What amtool 0.25 and 0.28.1 answer for each (strconv's underscoreOK: an underscore only between
# digits, a base prefix counting as one; `0` alone is a digit, not a prefix).
@pytest.mark.parametrize("number, shown", [
    ("0_17", "15"), ("00_1", "1"), ("0x_1", "1"), ("0b_1", "1"), ("1_000.5", "1000.5"), ("0x_1p2", "4"),
    ("0__17", None), ("-0__1", None), ("0__1.5", None), ("1__0.5", None), ("1_.5", None), ("0_.5", None),
    ("1._5", None), ("1_e3", None), ("1e_3", None), ("0x__1", None),
])
def test_underscores_in_numbers_follow_gos_rule(number: str, shown: Optional[str]) -> None:
    text = "{{ %s }}" % number
    if shown is not None:
        assert render(text) == shown
        return
    with pytest.raises(ParseError) as info:
        render(text)
    assert str(info.value) == f'template: :1: illegal number syntax: "{number}"'


def test_errors_in_a_file_name_the_file_and_its_line_and_column() -> None:
    with pytest.raises(ParseError) as info:
        render("", {"msg.tmpl": '{{ define "x" }}\nok\n{{ if }}{{ end }}{{ end }}'})
    assert str(info.value) == "template: msg.tmpl:3: missing value for if"
    assert (info.value.name, info.value.line, info.value.col) == ("msg.tmpl", 3, 6)
    tmpl = amfunctions.new_template()
    tmpl.parse("msg.tmpl", '{{ define "x" }}\n  {{ .Nope }}{{ end }}')
    with pytest.raises(ExecError) as info:
        tmpl.execute("x", amdata.data_from_json(DATA))
    assert str(info.value).startswith('template: msg.tmpl:2:5: executing "x" at <.Nope>')
    assert (info.value.line, info.value.col) == (2, 5)


def test_regular_expressions_go_cannot_translate_are_refused_at_load() -> None:
    with pytest.raises(ParseError, match=r"msg.tmpl:1:\d+: .*unsupported regexp syntax"):
        render("", {"msg.tmpl": '{{ define "x" }}{{ match "\\\\p{Greek}" . }}{{ end }}'})
    # Go's own syntax errors fail when they run, as in Go
    assert render('{{ if false }}{{ match "(" "x" }}{{ end }}ok') == "ok"
    with pytest.raises(ExecError, match="error parsing regexp: missing closing \\)"):
        render('{{ match "(" "x" }}')
    with pytest.raises(ExecError, match="invalid or unsupported Perl syntax"):
        render('{{ match "(?=x)" "x" }}')


@pytest.mark.parametrize("pattern, text, expected", [
    ("^a.c$", "abc", "true"), ("\\d+", "x12", "true"), ("\\bfoo\\b", "a foo b", "true"),
    ("(?i)HIGH", "high", "true"), ("[[:upper:]]", "abc", "false"), ("a$", "a\n", "false"),
    ("\\Qa.b\\E", "a.b", "true"), ("x{,2}", "x{,2}", "true"), ("\\s", "\v", "false"),
])
def test_go_regexp_semantics(pattern: str, text: str, expected: str) -> None:
    assert render(f"{{{{ match {json.dumps(pattern)} {json.dumps(text)} }}}}") == expected


def test_step_limit_stops_a_runaway_template() -> None:
    tmpl = amfunctions.new_template()
    tmpl.parse("x", '{{ define "loop" }}{{ range $.A }}{{ range $.A }}{{ range $.A }}.{{ end }}{{ end }}{{ end }}{{ end }}')
    data = {"A": list(range(200))}
    started = time.monotonic()
    with pytest.raises(LimitError, match="execution stopped after 10000 steps"):
        tmpl.execute("loop", data, max_steps=10_000)
    assert time.monotonic() - started < 5


def test_output_limit() -> None:
    tmpl = amfunctions.new_template()
    tmpl.parse("x", '{{ range .Alerts }}{{ printf "%1000s" "x" }}{{ end }}')
    with pytest.raises(LimitError, match="output larger than 1500 characters"):
        tmpl.execute("x", amdata.data_from_json(DATA), max_output=1500)


def test_recursion_is_bounded() -> None:
    with pytest.raises(ExecError, match="exceeded maximum template depth"):
        render('{{ template "r" . }}', {"r.tmpl": '{{ define "r" }}{{ template "r" . }}{{ end }}'})


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(ParseError):
        render("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}")
    with pytest.raises(ParseError):
        render("{{ if true }}" * 3000 + "{{ end }}" * 3000)


def test_no_python_is_ever_evaluated() -> None:
    for text in ('{{ __import__ }}', '{{ .__class__ }}', '{{ .Receiver.__len__ }}', '{{ "".join }}'):
        with pytest.raises(gotemplate.TemplateError):
            render(text)


def test_the_render_command_has_amtools_flags_and_output(tmp_path: Path) -> None:
    (tmp_path / "a.tmpl").write_text('{{ define "t" }}{{ .Receiver }}{{ end }}', encoding="utf-8")
    data = tmp_path / "d.json"
    data.write_text(json.dumps(DATA), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(["template", "render", f"--template.glob={tmp_path}/*.tmpl", "--template.text",
                   '{{ template "t" . }}!', f"--template.data={data}"], environ={}, stdout=out, stderr=err)
    assert (rc, out.getvalue(), err.getvalue()) == (0, "rocketchat!", "")
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(["template", "render", "--template.text={{ if }}", f"--template.data={data}"],
                  environ={}, stdout=out, stderr=err)
    assert (rc, out.getvalue()) == (1, "")
    assert err.getvalue() == "rcwebhook: error: template: :1: missing value for if\n"
    rc = cli.main(["template", "render"], environ={}, stdout=out, stderr=err)
    assert rc == 2


@pytest.mark.parametrize("text, out", [
    ('{{ printf "%#v" .CommonLabels }}', 'template.KV{"a":"1", "alertname":"X", "b":"2"}'),
    ('{{ printf "%#v" .CommonAnnotations }}', "template.KV{}"),
    ('{{ printf "%#v" .Receiver }}|{{ printf "%#v" "a\\"b\\n" }}', '"rocketchat"|"a\\"b\\n"'),
    ('{{ printf "%#v %#v %#v %#v" 3 1.0 true nil }}', "3 1 true <nil>"),
    ('{{ printf "%#v" (stringSlice "a" "b") }}|{{ printf "%#v" (stringSlice) }}', '[]string{"a", "b"}|[]string{}'),
    ('{{ printf "%#v" (index .Alerts 0).Labels.SortedPairs }}',
     'template.Pairs{template.Pair{Name:"alertname", Value:"HighCPU"}, template.Pair{Name:"instance", '
     'Value:"web-1"}, template.Pair{Name:"severity", Value:"critical"}}'),
    ('{{ printf "%#v" (index .Alerts 0).StartsAt }}', "time.Date(2026, time.January, 30, 10, 0, 0, 0, time.UTC)"),
    ('{{ printf "%#v" (index .Alerts 1).StartsAt }}',
     'time.Date(2026, time.January, 30, 8, 0, 0, 500000000, time.Location(""))'),
    ('{{ printf "%#v %#v %#v" (index .Alerts 0).StartsAt.Month (index .Alerts 0).StartsAt.Unix '
     '((index .Alerts 0).StartsAt.Sub (index .Alerts 1).StartsAt) }}', "1 1769767200 14399500000000"),
])
def test_printf_sharp_v_writes_values_as_go_source(text: str, out: str) -> None:
    assert render(text) == out


def test_printf_sharp_v_of_an_alert_names_every_field() -> None:
    assert render('{{ printf "%#v" (index .Alerts 1) }}') == (
        'template.Alert{Status:"resolved", Labels:template.KV{"alertname":"DiskFull", "severity":"warning"}, '
        'Annotations:template.KV{}, StartsAt:time.Date(2026, time.January, 30, 8, 0, 0, 500000000, '
        'time.Location("")), EndsAt:time.Date(2026, time.January, 30, 9, 30, 0, 0, time.UTC), GeneratorURL:"", '
        'Fingerprint:"b2"}')


def test_in_and_location_move_a_time_between_zones() -> None:
    text = ('{{ $berlin := (tz "Europe/Berlin" (index .Alerts 0).StartsAt).Location }}{{ $berlin }}|'
            '{{ (index .Alerts 0).StartsAt.In $berlin }}|{{ printf "%#v" ((index .Alerts 0).StartsAt.In $berlin) }}|'
            '{{ (index .Alerts 0).StartsAt.Location }}')
    assert render(text) == ('Europe/Berlin|2026-01-30 11:00:00 +0100 CET|'
                            'time.Date(2026, time.January, 30, 11, 0, 0, 0, time.Location("Europe/Berlin"))|UTC')


@pytest.mark.parametrize("environ, shown", [
    ({"TZ": "Europe/Berlin"}, "2026-01-30 11:00:00 +0100 CET Europe/Berlin"),
    ({"TZ": "America/New_York"}, "2026-01-30 05:00:00 -0500 EST America/New_York"),
    ({"TZ": ""}, "2026-01-30 10:00:00 +0000 UTC UTC"),
])
def test_template_render_puts_local_times_in_amtools_zone(tmp_path: Path, environ: dict, shown: str) -> None:
    data = tmp_path / "d.json"
    data.write_text(json.dumps(DATA))
    out, err = io.StringIO(), io.StringIO()
    text = "{{ (index .Alerts 0).StartsAt.Local }} {{ (index .Alerts 0).StartsAt.Local.Location }}"
    assert cli.main(["template", "render", f"--template.text={text}", f"--template.data={data}"],
                    environ=environ, stdout=out, stderr=err) == 0, err.getvalue()
    assert out.getvalue() == shown


def test_humanize_duration_of_a_long_label_value_fails_at_once(tmp_path: Path) -> None:
    """A 60,000-digit value is refused as Go refuses it (its check backtracked quadratically: minutes)."""
    import subprocess
    import sys
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"commonLabels": {"x": "1" * 60_000 + "x"}}), encoding="utf-8")
    glob = tmp_path / "empty.tmpl"
    glob.write_text("", encoding="utf-8")
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[2] / "rcwebhook.py"), "template",
                           "render", f"--template.glob={glob}", "--template.text={{ humanizeDuration .CommonLabels.x }}",
                           f"--template.data={data}"], capture_output=True, text=True, timeout=30,
                          env={"RCWEBHOOK_TEMPLATE_COMPAT": "0.28", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1
    assert "error calling humanizeDuration: strconv.ParseFloat: parsing \"111" in proc.stderr
    assert proc.stderr.rstrip().endswith('1x": invalid syntax')
