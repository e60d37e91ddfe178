"""The two ways rcwebhook runs a template give the same result.

A template runs as generated Python (codegen), which defers to the tree walker (exec), the reference,
for a pipeline or a statement it cannot decide from the tree, and leaves the whole execution to the
walker whenever it meets something it does not handle. The differential test proves the whole against
amtool; this one proves, without amtool and in seconds, that generated code gives exactly the walker's
output or error on the same seeded templates and data, with its deferrals where the generator puts
them and everywhere it could put them, including templates cut short by the limits on steps and output.
"""

from __future__ import annotations

import random
from typing import Any, Callable, List, Tuple

import pytest

from rcwebhook.amtemplate import data as amdata
from rcwebhook.amtemplate import functions as amfunctions
from rcwebhook.gotemplate import codegen
from rcwebhook.gotemplate import template as gotemplate
from tests.gotemplate import corpus as gen

CASES = 500
SEED = 20261127


def _walk(tmpl: gotemplate.Template, name: str, data: Any, max_steps: int, max_output: int) -> str:
    tree = tmpl.trees[name]
    st = gotemplate._State(tmpl, tree, data, max_steps, max_output)
    st.walk(data, tree.root)
    return "".join(st.out)


def _compiled(tmpl: gotemplate.Template, name: str, data: Any, max_steps: int, max_output: int) -> str:
    """The compiled path alone (no walker after it): what it gives, or the exception it stops with."""
    tree = tmpl.trees[name]
    st = gotemplate._State(tmpl, tree, data, max_steps, max_output)
    tmpl.compile(tree)(st, data)
    return "".join(st.out)


def _generated(fn: Callable[..., Any]) -> bool:
    """Whether a tree runs as generated Python (its code compiled from the source codegen made)."""
    return fn.__code__.co_filename.startswith("<template ")


def _deferrals(tmpl: gotemplate.Template, name: str) -> int:
    source = codegen.source_of(tmpl.trees[name], tmpl)
    return source.count("walk_statement(") + source.count("walk_pipeline(")


@pytest.fixture(params=["generated", "statements deferred", "pipelines deferred"])
def deferring(request, monkeypatch):
    """The generator as it is, or made to leave every statement (every pipeline) to the walker, so that
    the deferrals are proved on every construct and not only where the generator puts them."""
    if request.param == "statements deferred":
        plain = codegen._Generator.generated

        def generated(self, node, depth, dot):
            if type(node) is codegen.TextNode:
                return plain(self, node, depth, dot)
            raise codegen._Deferred()
        monkeypatch.setattr(codegen._Generator, "generated", generated)
    elif request.param == "pipelines deferred":
        def command(self, cmd, dot, final):
            raise codegen._Deferred()
        monkeypatch.setattr(codegen._Generator, "command", command)
    return request.param


def _outcome(run: Callable[[], str]) -> Tuple[str, str]:
    try:
        return "ok", run()
    except RecursionError:
        return "error", "depth"
    except Exception as exc:  # noqa: BLE001 - the kind of failure is what is compared
        return "error", type(exc).__name__


def _cases(compat: str) -> List[Tuple[str, Any]]:
    rng = random.Random(f"{SEED}-{compat}")
    datas = [amdata.data_from_json(gen.data_set(rng)) for _ in range(6)]
    datas.append(amdata.data_from_json(gen.data_set(rng, with_alerts=False)))
    return [(gen.valid_case(rng, compat) if i % 6 else gen.invalid_case(rng, compat), datas[i % len(datas)])
            for i in range(CASES)]


def _template(body: str, compat: str) -> gotemplate.Template:
    tmpl = amfunctions.new_template(compat)
    tmpl.parse("helpers.tmpl", gen.helpers_file())
    tmpl.parse("case", body)
    amfunctions.check_regexps(tmpl)
    return tmpl


@pytest.mark.parametrize("compat", ["0.25", "0.28"])
def test_compiled_templates_give_the_walkers_output_or_leave_it_to_the_walker(deferring, compat):
    compared = agreed = generated = deferred = 0
    mismatches = []
    for body, data in _cases(compat):
        try:
            tmpl = _template(body, compat)
        except gotemplate.TemplateError:
            continue
        limits = (gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT)
        walker = _outcome(lambda: _walk(tmpl, "case", data, *limits))
        compiled = _outcome(lambda: _compiled(tmpl, "case", data, *limits))
        generated += _generated(tmpl.trees["case"].compiled)
        deferred += _deferrals(tmpl, "case") > 0
        compared += 1
        if compiled[0] == "ok":
            # a compiled result must be the walker's; a compiled failure is the walker's to explain
            if walker != compiled:
                mismatches.append((body, walker, compiled))
            else:
                agreed += 1
        # and through execute, the way rcwebhook runs it: always the walker's outcome
        executed = _outcome(lambda: _template(body, compat).execute("case", data))
        if executed[0] != walker[0] or (walker[0] == "ok" and executed != walker):
            mismatches.append((body, walker, executed))
    assert not mismatches, mismatches[:3]
    print(f"{compat} {deferring}: {compared} templates, {agreed} compiled results equal to the walker's, "
          f"{generated} trees generated as Python, {deferred} of them deferring to the walker somewhere")
    assert compared > CASES // 2 and agreed > compared // 2
    assert generated == compared  # every tree (none is too large here)
    assert (deferred < compared // 10) if deferring == "generated" else deferred > compared * 9 // 10


def test_a_compiled_template_stops_no_later_than_the_walker_at_the_step_and_output_limits(deferring):
    body = ('{{ range $i, $a := .Alerts }}{{ range .Labels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}'
            '{{ template "helper_data" $ }}{{ end }}x')
    rng = random.Random(7)
    data = amdata.data_from_json(gen.data_set(rng))
    while len(data.Alerts) < 2:
        data = amdata.data_from_json(gen.data_set(rng))
    full = _walk(_template(body, "0.28"), "case", data, gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT)
    for max_steps in range(1, 200):
        for max_output in (0, 5, len(full) - 1, len(full), 10 ** 6):
            tmpl = _template(body, "0.28")
            walker = _outcome(lambda: _walk(tmpl, "case", data, max_steps, max_output))
            compiled = _outcome(lambda: _compiled(tmpl, "case", data, max_steps, max_output))
            if compiled[0] == "ok":
                assert compiled == walker, (max_steps, max_output)
            assert _outcome(lambda: _template(body, "0.28").execute("case", data, max_steps, max_output))[0] == \
                walker[0]


def test_no_text_of_a_template_is_written_into_the_generated_source():
    hostile = ['"); import os; os.system("true"); ("', "'''", "\\", "\n", "{0}", "__import__('os')"]
    text = "".join(f'{{{{ $x := {gotemplate.gv.go_quote(h)} }}}}[{{{{ $x }}}}]{{{{ .Labels.{name} }}}}{h}'
                   for h, name in zip(hostile, ["a", "b", "c", "d", "e", "f"]))
    tmpl = amfunctions.new_template()
    tmpl.parse("case", text)
    source = codegen.source_of(tmpl.trees["case"], tmpl)
    for h in hostile[:1] + hostile[4:]:
        assert h not in source
    assert "os" not in source.replace("pos", "")
    expected = "".join(f"[{h}]" + h for h in hostile)
    alert = amdata.data_from_json({"alerts": [{"labels": {}}]}).Alerts[0]
    assert tmpl.execute("case", alert) == expected


@pytest.mark.parametrize("body, expected", [
    # Go's range catches a break in its own else: it ends that range, and the enclosing one goes on
    ('{{ range .Alerts }}a{{ range $.GroupLabels }}{{ else }}b{{ if true }}{{ break }}{{ end }}c{{ end }}d{{ end }}',
     "abdabd"),
    # a continue there goes on with the enclosing range's next round
    ('{{ range .Alerts }}a{{ range $.GroupLabels }}{{ else }}b{{ continue }}c{{ end }}d{{ end }}', "abab"),
    ('{{ range .Alerts }}a{{ range $.GroupLabels }}{{ else }}{{ if eq .Labels.x "2" }}{{ break }}{{ end }}b'
     '{{ continue }}{{ end }}d{{ end }}', "abad"),
    # ... from however many ranges' elses it is in
    ('{{ range .Alerts }}a{{ range $.GroupLabels }}{{ else }}{{ if false }}{{ break }}{{ end }}'
     '{{ range $.GroupLabels }}{{ else }}{{ continue }}{{ end }}X{{ end }}Y{{ end }}', "aa"),
    ('{{ range .Alerts }}a{{ range $.GroupLabels }}{{ else }}{{ if false }}{{ break }}{{ end }}{{ range $.GroupLabels }}'
     '{{ else }}{{ range $.GroupLabels }}{{ else }}{{ continue }}{{ end }}{{ end }}X{{ end }}Y{{ end }}', "aa"),
    ('{{ range $i, $a := .Alerts }}{{ if $i }}{{ break }}{{ end }}{{ $a.Labels.x }}{{ end }}', "1"),
    ('{{ range .Alerts }}{{ with .Labels.x }}{{ if eq . "1" }}{{ continue }}{{ end }}{{ . }}{{ end }}{{ end }}', "2"),
])
def test_break_and_continue_leave_the_range_go_says(deferring, body, expected):
    data = amdata.data_from_json({"alerts": [{"labels": {"x": "1"}}, {"labels": {"x": "2"}}], "groupLabels": {}})
    tmpl = _template(body, "0.28")
    assert _walk(tmpl, "case", data, gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT) == expected
    assert _compiled(tmpl, "case", data, gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT) == expected


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_the_example_templates_run_as_generated_python_without_falling_back(status):
    """The examples are what operators start from: every template they define is generated as Python
    and renders a notification without leaving it to the slower ways."""
    from pathlib import Path

    from rcwebhook.messages import notification as alertmanager
    from rcwebhook.messages import templates as templating
    from rcwebhook.amtemplate.render import load_globs

    examples = Path(__file__).resolve().parents[2] / "examples"
    tmpl = load_globs([str(examples / "templates" / "*.tmpl")])
    body = (examples / "test-alert.json").read_text().replace('"firing"', f'"{status}"')
    notification = alertmanager.parse(body.encode())
    items = [templating._alert(a) for a in notification.alerts]
    for data in (templating._data(items, notification.external_url, "team", amdata.KV({}), "critical"),
                 templating._data(items[:1], notification.external_url, "team", amdata.KV({}), "critical")):
        for name, tree in tmpl.trees.items():
            if tree.root is None or not name:
                continue
            out = _compiled(tmpl, name, data if name not in ("rc.filter",) else data.CommonLabels,
                            gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT)
            assert _generated(tree.compiled) and not _deferrals(tmpl, name), name
            assert out == _walk(tmpl, name, data if name != "rc.filter" else data.CommonLabels,
                                gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT)


@pytest.mark.parametrize("grow", [
    '{{ $x = printf "%s%s" $x $x }}',
    '{{ $x = printf "%q%v" $x $x }}',
    '{{ $x = print $x $x }}',
    '{{ $x = join $x (stringSlice "" "" "") }}',
    '{{ $x = reReplaceAll "a" "aa" $x }}',
    '{{ $x = urlquery $x $x }}',
    '{{ $x = html $x $x }}',
])
def test_a_template_cannot_make_a_string_longer_than_the_value_limit(deferring, grow):
    """Doubling a variable at every step would take a few dozen steps to exhaust memory: every function
    that can lengthen a string refuses a result over MAX_VALUE, in each way a template runs."""
    text = '{{ $x := "ab" }}{{ range $i := 25 }}' + grow + '{{ end }}{{ len $x }}'
    tmpl = _template(text, "0.28")
    with pytest.raises(gotemplate.TemplateError, match=f"result longer than {gotemplate.MAX_VALUE} characters"):
        tmpl.execute("case", amdata.Data())
    with pytest.raises(gotemplate.TemplateError):
        _walk(_template(text, "0.28"), "case", amdata.Data(), gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT)


@pytest.mark.parametrize("text, expected", [
    # Go's fmt reads no width or precision past a million: the rest of the format goes with it
    ('{{ printf "%999999999d|" 1 }}', "%!(NOVERB)%!(EXTRA int=1)"),
    ('{{ printf "%.99999999f|" 1.0 }}', "%!(NOVERB)%!(EXTRA float64=1)"),
    ('{{ printf "%999998d|" 1 | len }}', "999999"),
    ('{{ printf "%.f|%5.d|%-08.3f|" 1.5 3 2.25 }}', "2|    3|2.250   |"),
])
def test_printf_reads_widths_and_precisions_as_go_does(text, expected):
    assert _template(text, "0.28").execute("case", amdata.Data()) == expected


@pytest.mark.parametrize("text", [
    "{{ (index .Alerts 0).StartsAt.Add -3600000000000 }}",
    "{{ ((index .Alerts 0).StartsAt.Round 3600000000000).Format \"15:04\" }}",
    '{{ (index .Alerts 0).StartsAt.Format "2006-01-02" }}',
    '{{ range (.CommonLabels.Remove (stringSlice "alertname")).SortedPairs }}{{ .Name }};{{ end }}',
    '{{ (index .Alerts 0).StartsAt.Truncate 60000000000 | printf "%v" }}',
])
def test_method_calls_with_literal_arguments_run_compiled(text):
    """A literal argument of a method takes the type of its parameter (a time.Duration here), as in Go,
    without leaving the template to the walker."""
    data = amdata.data_from_json({"alerts": [{"labels": {"alertname": "A", "x": "1"},
                                              "startsAt": "2026-11-27T10:31:45Z"}],
                                  "commonLabels": {"alertname": "A", "x": "1"}})
    tmpl = _template(text, "0.28")
    compiled = _compiled(tmpl, "case", data, gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT)
    assert _generated(tmpl.trees["case"].compiled) and not _deferrals(tmpl, "case")
    assert compiled == _walk(tmpl, "case", data, gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT)


def test_a_very_large_template_is_run_on_the_walker_and_gives_the_same_text():
    text = "".join(f'{{{{ if .Receiver }}}}{{{{ .Status }}}}{i}{{{{ end }}}}' for i in range(2000))
    tmpl = _template(text, "0.28")
    data = amdata.data_from_json({"receiver": "team", "status": "firing"})
    assert tmpl.execute("case", data) == "".join(f"firing{i}" for i in range(2000))
    assert not _generated(tmpl.trees["case"].compiled)  # left to the walker: too long to compile


DEFERRED_DATA = {"alerts": [{"labels": {"x": "1"}}, {"labels": {"x": "2"}}], "commonLabels": {"a": "1"}}


@pytest.mark.parametrize("body", [
    # calls the walker refuses (arity, arguments to a non-function): an error only where they run
    '{{ if false }}{{ len "a" "b" }}{{ end }}ok',
    '{{ len "a" "b" }}',
    '{{ if .Receiver }}{{ slice }}{{ end }}[{{ slice "abc" 1 }}]',
    '{{ if false }}{{ "x" 1 }}{{ end }}ok',
    '{{ "x" 1 }}',
    '{{ print (len 1 2) }}',
    '{{ range $i, $a := .Alerts }}{{ $i }}{{ if $i }}{{ break }}{{ end }}{{ len 1 2 | not | and false }}{{ end }}',
    # nil for a []string parameter: Go gives the method an empty slice
    '{{ .CommonLabels.Remove nil }}',
    # a variable declared in one branch, assigned in the other: undefined there when it runs
    '{{ if .Receiver }}{{ $a := 1 }}{{ else }}{{ $a = 3 }}{{ end }}after',
    # a range that assigns the variables of its pipeline: the walker sets them, the code after reads them
    '{{ $v := 0 }}{{ range $v = .Alerts }}{{ .Labels.x }}{{ end }}{{ $v.Labels.x }}',
])
def test_a_tree_the_generator_cannot_decide_everywhere_runs_generated_deferring_to_the_walker(body):
    """Such trees were once refused whole and run by a third engine: now they are generated, and the
    pipeline or statement the generator cannot decide runs on the walker, with the variables in scope;
    the output, or Go's error at the template's line and column, is the walker's."""
    data = amdata.data_from_json(DEFERRED_DATA)

    def walker() -> Tuple[str, str]:
        try:
            return "ok", _walk(_template(body, "0.28"), "case", data, gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT)
        except gotemplate.TemplateError as exc:
            return "error", str(exc)

    def executed() -> Tuple[str, str]:
        try:
            return "ok", _template(body, "0.28").execute("case", data)
        except gotemplate.TemplateError as exc:
            return "error", str(exc)

    expected = walker()
    assert executed() == expected
    tmpl = _template(body, "0.28")
    assert _generated(tmpl.compile(tmpl.trees["case"])) and _deferrals(tmpl, "case") > 0
    if expected[0] == "ok":  # the generated code alone gives it, deferring where it must
        assert _compiled(tmpl, "case", data, gotemplate.MAX_STEPS, gotemplate.MAX_OUTPUT) == expected[1]


@pytest.mark.parametrize("body, expected", [
    ('{{ $x := (print "a" ($y := "b")) }}{{ $x }}', "ab"),
    ('{{ $x := (print "a" ($y := "b")) }}{{ $x }}{{ $y }}{{ if true }}{{ $z := (print ($w := 1)) }}{{ $w }}{{ end }}',
     "abb1"),
    ('{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" $y := 1 }}{{ $y }}', "[1]1"),
])
def test_a_tree_declaring_a_variable_inside_a_pipeline_runs_on_the_walker(body, expected):
    """Where such a variable is declared, and whether, is known only when the pipeline runs: the walker
    runs these trees, as it does the very large ones."""
    tmpl = _template(body, "0.28")
    assert tmpl.execute("case", amdata.Data()) == expected
    assert not _generated(tmpl.trees["case"].compiled)


def test_a_range_over_a_large_integer_stops_at_the_step_limit_without_holding_its_rounds():
    # Go 1.22's range over an integer: the rounds are counted as they run, never made ahead (a template
    # that ranges over 30 million once took 3 GB and 22 s before its step limit stopped it).
    import tracemalloc

    tmpl = _template("{{ range 2000000 }}{{ end }}", "0.28")
    tracemalloc.start()
    try:
        outcome = _outcome(lambda: tmpl.execute("case", None, 10_000, 1000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome == ("error", "LimitError")
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"
