"""Seeded generators of Go templates and Alertmanager data for the differential test.

Templates are built from typed expressions so that most of them are valid (and then must render
identically in rcwebhook and in amtool), and mutated into invalid ones (which must fail in both).
Every construct of the template language that rcwebhook supports is drawn: text with unicode,
actions, comments, trim markers, if/else if/else, range (lists, maps, $i, $v, else, break,
continue), with/else, variables (:= and =), template, block, define, pipelines, parenthesised
pipelines, chained fields and methods, literals of every Go form, Go's built-in functions and
Alertmanager's.
"""

from __future__ import annotations

import json
import random
from typing import Dict, List, Optional, Tuple

TEXTS = ["", " ", "\n", "x", "Alert ", " — ", "é", "日本語", "🔥", "a\tb", "  \n  ", "[", "]", ":", "-",
         "}", "{ ", "$", "%", "\\", "'", '"', "<b>&</b>", "line1\nline2", "\u00a0", "Ω≈ç", "‮rtl", "0", "a\r\n", " \r\n\t"]
LABEL_NAMES = ["alertname", "severity", "instance", "job", "team", "env", "zone", "ünïcode", "a", "b"]
LABEL_VALUES = ["HighCPU", "DiskFull", "critical", "warning", "info", "web-1:9100", "node", "", "a b",
                "x\"y", "<tag>", "Ünïcödé ✓", "100%", "multi\nline", "  padded  ", "a=b,c", "$1", "\\d+",
                "http://example.com/?a=1&b=2", "MiXeD cAsE", "hello world foo_bar", "3.14", "42"]
TIMES = ["2026-01-30T10:00:00Z", "2026-01-30T10:00:00.5+02:00", "2026-06-15T23:59:59.123456789Z",
         "0001-01-01T00:00:00Z", "2025-12-31T23:00:00-05:30", "2026-03-29T01:30:00Z", "2000-02-29T12:00:00+00:00",
         "2026-11-01T05:06:07.000001Z"]
LAYOUTS = ["2006-01-02 15:04:05", "Jan 2, 2006 at 3:04pm (MST)", "Monday 02/01/06", "15:04:05.000",
           "2006-01-02T15:04:05Z07:00", "_2 January 2006", "3:04PM -0700", "15h04 MST", "2006.002",
           ".999999999", "Mon Jan _2 15:04:05 2006", "Z0700 -07 -07:00:00", "06 1 2 3 4 5 PM pm"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Etc/GMT+3"]
PRINTF = ["%s", "%q", "%v", "%d", "%5d", "%-6s|", "%x", "%X", "%t", "%.2f", "%e", "%g", "%T", "%%",
          "%08.3f", "%+d", "%6.1f", "%c", "%o", "%b", "[%3s]", "%.3s", "%#x", "%+q", "%U", "%10.4v", "%#v",
          "<%#v>"]
# Go-syntax (%#v) of each kind of value templates see; a time's location only where Go's output is
# not its zone's transition tables (UTC's).
SHARP_V = ["$.CommonLabels", "$.GroupLabels", "$.CommonAnnotations", "$.Alerts", "$.Alerts.Firing", ".",
           "(index $.Alerts 0)", "(index $.Alerts 0).Labels.SortedPairs", "(index (index $.Alerts 0).Labels.SortedPairs 0)",
           "(index $.Alerts 0).StartsAt", "(index $.Alerts 0).EndsAt", "(index $.Alerts 0).StartsAt.Local",
           "(index $.Alerts 0).StartsAt.UTC.Location", "(index $.Alerts 0).StartsAt.Month",
           "(index $.Alerts 0).StartsAt.Weekday", "(index $.Alerts 0).StartsAt.Unix", "$.Receiver",
           "(stringSlice)", "(stringSlice \"a\" \"b\\\"c\")", "(index $.Alerts 0).Labels.Names", "nil", "true", "-0.0",
           "1e21", "42", "'x'", "(index \"abc\" 1)", "(safeHtml \"<b>\")", "$.ExternalURL",
           "((index $.Alerts 0).EndsAt.Sub (index $.Alerts 0).StartsAt)", "($.CommonLabels.Remove (stringSlice \"job\"))"]
REGEXPS = [("[a-z]+", "<$0>"), ("(\\w+)-(\\d+)", "${2}_$1"), ("^(.)", "$1$1"), ("\\s+", " "),
           ("x*", "-"), ("(?i)high", "LOW"), ("(?P<word>[A-Z])", "[${word}]"), ("$", "!"), ("a|b", "$$"),
           ("[[:digit:]]+", "#"), ("\\.", "\\"), ("(a)(b)?", "$2|$1"), ("é", "e"), ("(?s).", "."),
           ("\\bfoo", "bar"), ("[^a-z ]", ""), ("o{2,}", "0"), ("\\Qa.b\\E", "q"), ("(?m)^x", "y"),
           ("", "_"), ("(\\d)(\\d)", "$1x"), ("a{,2}", "Z")]
PIPE_STAGES = ["toUpper", "toLower", "html", 'printf "<%s>"', "js", "urlquery", "len"]
HUMANIZE_ARGS = ["0", "1", "59.5", "3600", "90061", "-75", "0.0123", "0.5", "1e-7", "86400.9", '"42"', '"1e3"']
REPLS_TO_TEST = ["$1", "${1}", "$1x", "$$", "$", "${nope}", "${", "$word"]


class Ctx:
    def __init__(self, rng: random.Random, compat: str) -> None:
        self.rng = rng
        self.compat = compat
        self.vars: List[Tuple[str, str]] = [("$", "data")]
        self.dot = "data"
        self.in_range = 0
        self.counter = 0
        self.helpers: Dict[str, str] = {}
        self.blocks: List[str] = []

    def new_var(self) -> str:
        self.counter += 1
        return f"$v{self.counter}"

    def var_of(self, typ: str) -> Optional[str]:
        names = [n for n, t in self.vars if t == typ]
        return self.rng.choice(names) if names else None


def _str_literal(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return "`" + rng.choice(["raw \\n text", "", "multi\nline", "tab\there", "ü"]) + "`"
    if kind == 1:
        return rng.choice(['"\\u00e9\\t\\"q\\""', '"\\x41\\101\\n"', '"\\U0001F600"', '"a\\\\b"', '"\\a\\b\\f\\v"'])
    return json.dumps(rng.choice(LABEL_VALUES + TEXTS), ensure_ascii=rng.random() < 0.5)


def _int_literal(rng: random.Random) -> str:
    return rng.choice(["0", "1", "2", "7", "42", "-3", "0x1F", "0o17", "017", "0b101", "1_000", "'a'", "'\\n'",
                       "'é'", "+5", "1e3", "3.0"])


def _float_literal(rng: random.Random) -> str:
    return rng.choice(["1.5", "0.1", "1e3", ".5", "-2.25", "1e21", "1e-7", "0x1p-2", "3.0", "123456789.0",
                       "1_0.5", "100000000000000000000.0", "2.5e-5", "0.000001"])


def expr(c: Ctx, typ: str, depth: int = 0) -> str:  # noqa: C901 - a grammar
    """An expression (operand or parenthesised pipeline) of the given type."""
    rng = c.rng
    deep = depth > 2
    r = rng.random()
    v = c.var_of(typ)
    if v and r < 0.2:
        return v
    if typ == "str":
        choices = ["lit", "lit", "field", "kvget", "index"]
        if not deep:
            choices += ["upper", "lower", "title", "printf", "print", "html", "js", "urlquery", "join",
                        "rerepl", "pipe", "slice", "timefmt", "alertfield", "pairfield"]
            if c.compat != "0.25":
                choices += ["trim", "date", "humanize"]
        k = rng.choice(choices)
        if k == "lit":
            return _str_literal(rng)
        if k == "field":
            return rng.choice(["$.Receiver", "$.Status", "$.ExternalURL"])
        if k == "kvget":
            return f"{expr(c, 'kv', depth + 1)}.{rng.choice(['alertname', 'severity', 'missing', 'job', 'a'])}"
        if k == "index":
            return f"(index {expr(c, 'kv', depth + 1)} {json.dumps(rng.choice(LABEL_NAMES))})"
        if k == "upper":
            return f"(toUpper {expr(c, 'str', depth + 1)})"
        if k == "lower":
            return f"(toLower {expr(c, 'str', depth + 1)})"
        if k == "title":
            return f"(title {expr(c, 'str', depth + 1)})"
        if k == "trim":
            return f"(trimSpace {expr(c, 'str', depth + 1)})"
        if k == "printf":
            fmt = " ".join(rng.choice(PRINTF) for _ in range(rng.randint(1, 3)))
            args = " ".join(expr(c, rng.choice(["str", "int", "float", "bool", "strs", "kv"]), depth + 1)
                            for _ in range(rng.randint(0, 3)))
            return f"(printf {json.dumps(fmt)} {args})"
        if k == "print":
            args = " ".join(expr(c, rng.choice(["str", "int", "float", "bool"]), depth + 1)
                            for _ in range(rng.randint(1, 3)))
            return f"(print {args})"
        if k in ("html", "js", "urlquery"):
            return f"({k} {expr(c, 'str', depth + 1)})"
        if k == "join":
            return f"(join {json.dumps(rng.choice([', ', '', '|', ' & ']))} {expr(c, 'strs', depth + 1)})"
        if k == "rerepl":
            pat, repl = rng.choice(REGEXPS)
            if rng.random() < 0.3:
                repl = rng.choice(REPLS_TO_TEST)
            return f"(reReplaceAll {json.dumps(pat)} {json.dumps(repl)} {expr(c, 'str', depth + 1)})"
        if k == "pipe":
            stage = rng.choice(PIPE_STAGES)
            return f"({expr(c, 'str', depth + 1)} | {stage})"
        if k == "slice":
            return f"(slice {json.dumps(rng.choice(['abcdef', 'hello world']))} {rng.randint(0, 2)} {rng.randint(3, 5)})"
        if k == "timefmt":
            return f"({expr(c, 'time', depth + 1)}.Format {json.dumps(rng.choice(LAYOUTS))})"
        if k == "date":
            return f"(date {json.dumps(rng.choice(LAYOUTS))} {expr(c, 'time', depth + 1)})"
        if k == "humanize":
            return f"(humanizeDuration {rng.choice(HUMANIZE_ARGS)})"
        if k == "alertfield":
            return f"{expr(c, 'alert', depth + 1)}.{rng.choice(['Status', 'Fingerprint', 'GeneratorURL'])}"
        if k == "pairfield":
            return f"(index {expr(c, 'pairs', depth + 1)} 0).{rng.choice(['Name', 'Value'])}" \
                if False else f"{expr(c, 'str', depth + 1)}"
    if typ == "int":
        k = rng.choice(["lit", "lit", "len", "len"] + (["idx"] if not deep else []))
        if k == "lit":
            return _int_literal(rng)
        if k == "len":
            return f"(len {expr(c, rng.choice(['str', 'strs', 'kv', 'alerts', 'pairs']), depth + 1)})"
        return f"(index {json.dumps(rng.choice(['abc', 'xyz']))} {rng.randint(0, 2)})"
    if typ == "float":
        return _float_literal(rng)
    if typ == "bool":
        k = rng.choice(["lit", "eq", "eqn", "cmp", "and", "or", "not", "match", "eqm"] if not deep else ["lit", "eq"])
        if k == "lit":
            return rng.choice(["true", "false"])
        if k == "eq":
            t = rng.choice(["str", "int", "bool"])
            return f"(eq {expr(c, t, depth + 1)} {expr(c, t, depth + 1)})"
        if k == "eqm":
            return f"(eq {expr(c, 'str', depth + 1)} {' '.join(expr(c, 'str', depth + 1) for _ in range(rng.randint(1, 3)))})"
        if k == "eqn":
            t = rng.choice(["str", "int", "float"])
            return f"(ne {expr(c, t, depth + 1)} {expr(c, t, depth + 1)})"
        if k == "cmp":
            t = rng.choice(["str", "int", "float"])
            return f"({rng.choice(['lt', 'le', 'gt', 'ge'])} {expr(c, t, depth + 1)} {expr(c, t, depth + 1)})"
        if k in ("and", "or"):
            n = rng.randint(1, 3)
            return f"({k} {' '.join(expr(c, rng.choice(['bool', 'str', 'int', 'strs']), depth + 1) for _ in range(n))})"
        if k == "not":
            return f"(not {expr(c, rng.choice(['bool', 'str', 'int', 'kv']), depth + 1)})"
        pat = rng.choice(REGEXPS)[0]
        return f"(match {json.dumps(pat)} {expr(c, 'str', depth + 1)})"
    if typ == "kv":
        k = rng.choice(["root", "root", "alert"] + (["remove"] if not deep else []))
        if k == "root":
            return rng.choice(["$.CommonLabels", "$.GroupLabels", "$.CommonAnnotations"])
        if k == "alert":
            return f"{expr(c, 'alert', depth + 1)}.{rng.choice(['Labels', 'Annotations'])}"
        return f"({expr(c, 'kv', depth + 1)}.Remove {expr(c, 'strs', depth + 1)})"
    if typ == "strs":
        k = rng.choice(["names", "values", "slice", "pnames"])
        if k == "names":
            return f"{expr(c, 'kv', depth + 1)}.Names"
        if k == "values":
            return f"{expr(c, 'kv', depth + 1)}.Values"
        if k == "pnames":
            return f"{expr(c, 'pairs', depth + 1)}.{rng.choice(['Names', 'Values'])}"
        return f"(stringSlice {' '.join(expr(c, 'str', depth + 2) for _ in range(rng.randint(0, 3)))})"
    if typ == "alerts":
        return rng.choice(["$.Alerts", "$.Alerts.Firing", "$.Alerts.Resolved"])
    if typ == "pairs":
        return f"{expr(c, 'kv', depth + 1)}.SortedPairs"
    if typ == "pair":
        v = c.var_of("pair")
        return v if v else f"(index {expr(c, 'kv', depth + 1)}.SortedPairs 0)"
    if typ == "alert":
        v = c.var_of("alert")
        return v if v else "(index $.Alerts 0)"
    if typ == "time":
        base = f"{expr(c, 'alert', depth + 1)}.{rng.choice(['StartsAt', 'EndsAt'])}"
        if not deep and c.compat != "0.25" and rng.random() < 0.3:
            return f"(tz {json.dumps(rng.choice(ZONES))} {base})"
        if not deep and rng.random() < 0.2:
            return f"{base}.UTC"
        return base
    raise ValueError(typ)


def printable(c: Ctx) -> str:
    rng = c.rng
    r = rng.random()
    if r < 0.08:
        return f"{expr(c, 'time', 1)}.{rng.choice(['Unix', 'Year', 'Month', 'Day', 'Hour', 'Weekday', 'YearDay', 'IsZero', 'Nanosecond', 'Minute', 'Second', 'UnixMilli', 'Local', 'Location', 'Local.Location', 'UTC.Location'])}"
    if r < 0.11:
        t1, t2 = expr(c, 'time', 1), expr(c, 'time', 1)
        return rng.choice([f"({t1}.Sub {t2})", f"({t1}.Sub {t2}).Seconds", f"({t1}.Sub {t2}).Hours",
                           f"({t1}.Add {rng.choice(['3600000000000', '-90000000000', '1500000000', '0'])})",
                           f"({t1}.Round 3600000000000)", f"({t1}.Truncate 60000000000)", f"({t1}.Before {t2})",
                           f"({t1}.After {t2})", f"({t1}.Equal {t2})", f"(printf \"%v|%s|%d\" {t1}.Month {t1}.Weekday {t1}.Month)"])
    if r < 0.13:
        return rng.choice(["(slice (stringSlice \"a\" \"b\" \"c\") 1 2)", "(slice (stringSlice \"a\" \"b\") 0)",
                           "(index $.CommonLabels \"nope\")", "(eq $.Status nil)", "(ne nil nil)",
                           "(len $.CommonLabels.SortedPairs)", "-0.0", "9223372036854775807", "(print -0.0 1e100 5e-324)",
                           "(printf \"%v %v\" (index $.Alerts 0).StartsAt.UTC (index $.Alerts 0).Labels)",
                           "(and $.Alerts.Firing $.Receiver)", "(or $.Alerts.Resolved $.CommonLabels)",
                           "(index (index $.Alerts 0).Labels.SortedPairs 0)", "(index $.Alerts 0).Labels.SortedPairs.Values"])
    if r < 0.12:
        return "."
    if r < 0.145:
        return f"(printf {json.dumps(rng.choice(['%#v', '[%#v]', '%#v|%v']))} {rng.choice(SHARP_V)} {rng.choice(SHARP_V)})"
    if r < 0.155 and c.compat != "0.25":
        t1, t2 = expr(c, 'time', 1), expr(c, 'time', 1)
        zone = json.dumps(rng.choice(ZONES))
        return rng.choice([f"({t1}.In (tz {zone} {t2}).Location)", f"({t1}.In {t2}.Location)",
                           f"(printf \"%#v\" ({t1}.In (tz {zone} {t2}).Location))",
                           f"({t1}.In (tz {zone} {t2}).Location).Location", f"(({t1}.In {t2}.Local.Location).Format \"15:04 MST\")"])
    typ = rng.choice(["str", "str", "str", "int", "float", "bool", "kv", "strs", "pairs", "alerts", "time", "alert"])
    e = expr(c, typ)
    if typ in ("alerts", "alert") and rng.random() < 0.7:
        e = f"(len {expr(c, 'alerts')})" if typ == "alerts" else f"{e}.Labels"
    return e


OPENS = ["{{- ", "{{ ", "{{ ", "{{ ", "{{", "{{-\n", "{{\t", "{{\n  ", "{{-\r\n"]
CLOSES = [" -}}", " }}", " }}", " }}", "}}", "\n-}}", "\n}}", "\t -}}"]


def _open(c: Ctx) -> str:
    return c.rng.choice(OPENS)


def _close(c: Ctx) -> str:
    return c.rng.choice(CLOSES)


def stmts(c: Ctx, depth: int, n: Optional[int] = None) -> str:
    n = c.rng.randint(1, 4) if n is None else n
    return "".join(stmt(c, depth) for _ in range(n))


def stmt(c: Ctx, depth: int) -> str:  # noqa: C901 - a grammar
    rng = c.rng
    choices = ["text", "text", "print", "print", "print", "comment", "var"]
    if depth < 3:
        choices += ["if", "range", "with", "template", "assign", "declctl", "counter"]
        if depth < 2:
            choices += ["block"]
    if c.in_range:
        choices += ["brk"]
    k = rng.choice(choices)
    o, cl = _open(c), _close(c)
    if k == "text":
        return rng.choice(TEXTS)
    if k == "print":
        return f"{o}{printable(c)}{cl}"
    if k == "comment":
        return rng.choice(["{{/* note */}}", "{{- /* trimmed */ -}}", "{{/* multi\nline */ -}}", "{{- /**/}}"])
    if k == "var":
        name = c.new_var()
        typ = rng.choice(["str", "int", "bool", "kv", "strs", "alerts", "time"])
        out = f"{o}{name} := {expr(c, typ)}{cl}"
        c.vars.append((name, typ))
        return out
    if k == "assign":
        names = [(n, t) for n, t in c.vars if n != "$"]
        if not names:
            return ""
        name, typ = rng.choice(names)
        return f"{o}{name} = {expr(c, typ) if typ != 'alert' else expr(c, 'alert')}{cl}"
    if k == "declctl":
        name = c.new_var()
        typ = rng.choice(["str", "kv", "strs", "int"])
        kw = rng.choice(["if", "with"])
        mark = len(c.vars)
        head = f"{o}{kw} {name} := {expr(c, typ)}{cl}"
        c.vars.append((name, typ))
        out = head + f"<{{{{ {name} }}}}>" + stmts(c, depth + 1)
        del c.vars[mark:]
        if rng.random() < 0.5:
            out += "{{ else }}" + stmts(c, depth + 1)
        return out + "{{ end }}"
    if k == "counter":
        name = c.new_var()
        c.vars.append((name, "int"))
        return (f"{{{{ {name} := 0 }}}}{{{{ range $.Alerts }}}}{{{{ if eq .Status \"firing\" }}}}"
                f"{{{{ {name} = len $.Alerts.Firing }}}}{{{{ end }}}}{{{{ end }}}}[{{{{ {name} }}}}]")
    if k == "noarg":
        return rng.choice(['{{ template "helper_data" }}', '{{ template "helper_kv" }}', '{{ template "helper_alerts" }}'])
    if k == "brk":
        return f"{{{{ if {expr(c, 'bool')} }}}}{{{{ {rng.choice(['break', 'continue'])} }}}}{{{{ end }}}}"
    if k == "if":
        mark = len(c.vars)
        cond = expr(c, rng.choice(["bool", "bool", "str", "int", "kv", "strs", "alerts"]))
        out = f"{o}if {cond}{cl}{stmts(c, depth + 1)}"
        del c.vars[mark:]
        for _ in range(rng.choice([0, 0, 1, 2])):
            out += f"{{{{ else if {expr(c, 'bool')} }}}}{stmts(c, depth + 1)}"
            del c.vars[mark:]
        if rng.random() < 0.5:
            out += f"{_open(c)}else{_close(c)}{stmts(c, depth + 1)}"
        del c.vars[mark:]
        return out + f"{_open(c)}end{_close(c)}"
    if k == "with":
        mark = len(c.vars)
        typ = rng.choice(["str", "kv", "strs", "alerts", "bool", "int"])
        saved = c.dot
        out = f"{o}with {expr(c, typ)}{cl}"
        c.dot = typ
        out += f"{{{{ . }}}}{stmts(c, depth + 1)}"
        c.dot = saved
        del c.vars[mark:]
        if c.compat != "0.25" and rng.random() < 0.3:
            out += f"{{{{ else with {expr(c, 'str')} }}}}{{{{ . }}}}{stmts(c, depth + 1)}"
        if rng.random() < 0.5:
            out += f"{{{{ else }}}}{stmts(c, depth + 1)}"
        del c.vars[mark:]
        return out + "{{ end }}"
    if k == "range":
        mark = len(c.vars)
        typ = rng.choice(["alerts", "kv", "strs", "pairs", "alerts"] + (["int"] if c.compat != "0.25" else []))
        if typ == "int":
            src = str(rng.randint(0, 4))
            elem = "int"
        else:
            src = expr(c, typ)
            elem = {"alerts": "alert", "kv": "str", "strs": "str", "pairs": "pair"}[typ]
        form = rng.randrange(4 if typ != "int" else 2)
        if form == 0:
            head = f"range {src}"
        elif form == 1:
            ev = c.new_var()
            head = f"range {ev} := {src}"
            c.vars.append((ev, elem))
        else:
            iv, ev = c.new_var(), c.new_var()
            head = f"range {iv}, {ev} := {src}"
            c.vars.append((iv, "str" if typ == "kv" else "int"))
            c.vars.append((ev, elem))
        saved = c.dot
        c.dot = elem
        c.in_range += 1
        body = stmts(c, depth + 1)
        if elem == "alert":
            body = "{{ .Labels.alertname }}={{ .Status }};" + body
        elif elem == "pair":
            body = "{{ .Name }}:{{ .Value }}," + body
        else:
            body = "[{{ . }}]" + body
        c.in_range -= 1
        c.dot = saved
        out = f"{o}{head}{cl}{body}"
        if rng.random() < 0.4:
            out += f"{{{{ else }}}}{stmts(c, depth + 1)}"
        del c.vars[mark:]
        return out + f"{_open(c)}end{_close(c)}"
    if k == "template":
        typ = rng.choice(["str", "kv", "alerts", "alert", "strs", "data"])
        name = f"helper_{typ}"
        arg = "$" if typ == "data" else expr(c, typ)
        return f"{{{{ template {json.dumps(name)} {arg} }}}}"
    if k == "block":
        c.counter += 1
        name = f"blk_{c.rng.randrange(1 << 30)}_{c.counter}"
        saved_vars, saved_dot, saved_range = c.vars, c.dot, c.in_range
        c.vars, c.dot, c.in_range = [("$", "data")], "data", 0
        body = stmts(c, depth + 1)
        c.vars, c.dot, c.in_range = saved_vars, saved_dot, saved_range
        return f"{{{{ block {json.dumps(name)} $ }}}}{body}{{{{ end }}}}"
    raise ValueError(k)


HELPERS = {
    "helper_str": "<{{ . }}|{{ printf \"%q\" . }}|{{ len . }}>",
    "helper_kv": "{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}{{ .SortedPairs.Names }}",
    "helper_alerts": "{{ len . }}:{{ range . }}{{ .Status }}/{{ .Labels.alertname }} {{ end }}",
    "helper_alert": "{{ .Status }} {{ .Labels }} {{ .StartsAt }} {{ .Annotations.SortedPairs }}",
    "helper_strs": "{{ join \",\" . }}{{ range $i, $s := . }}{{ $i }}{{ $s }}{{ end }}",
    "helper_data": "{{ .Receiver }}/{{ .Status }}/{{ len .Alerts }}/{{ .GroupLabels }}",
}


def helpers_file() -> str:
    return "".join(f'{{{{ define "{name}" }}}}{body}{{{{ end }}}}\n' for name, body in HELPERS.items())


def valid_case(rng: random.Random, compat: str) -> str:
    """The body of one template meant to be valid."""
    c = Ctx(rng, compat)
    return stmts(c, 0, rng.randint(1, 6))


MUTATIONS = [
    "{{", "}}", "{{ end }}", "{{ else }}", "{{ if }}", "{{ nofunc }}", "{{ $nope }}", "{{ .Receiver.X }}",
    "{{ index $.Alerts 99 }}", '{{ template "missing" }}', "{{ toUpper }}", '{{ eq 1 "a" }}', "{{ lt true false }}",
    "{{ break }}", "{{ continue }}", "{{ 1x }}", '{{ "unterminated }}', "{{ range 1.5 }}{{ end }}",
    '{{ reReplaceAll "(" "" "x" }}', '{{ match "(?=x)" "x" }}', "{{ printf }}", "{{ nil }}", "{{ len 3 }}",
    '{{ slice "abc" 2 1 }}', "{{ .Alerts.Nope }}", "{{ $.Receiver | 3 }}", "{{ (1) 2 }}", "{{ .Status.Foo.Bar }}",
    "{{ if true }}", "{{ range $.Alerts }}", "{{ with }}{{ end }}", "{{ define \"x\" }}{{ end }}", "{{ $x := }}",
    "{{ $x = 1 }}", "{{ index 1 2 }}", '{{ join "," $.CommonLabels }}', '{{ toUpper $.Alerts }}',
    "{{ true.X }}", "{{ /* bad comment */ }}", "{{/* unclosed ", "{{ 'ab' }}", "{{ 0x }}", "{{ 99999999999999999999 }}",
    "{{ $.Alerts.Firing 1 }}", "{{ html | 1 }}", '{{ template 1 }}', "{{ block }}", "{{ else if }}",
    '{{ "a" "b" }}', "{{ .Receiver 1 }}", "{{ ( }}", "{{ ) }}", "{{ range $a, $b, $c := $.Alerts }}{{ end }}",
    "{{ $.CommonLabels.Remove 1 }}", "{{ and }}", "{{ not 1 2 }}", '{{ stringSlice 1 }}', "{{ ne 1 }}",
'{{ match "a**" "a" }}', '{{ match "[z-a]" "a" }}',
    "{{ @ }}", "{{ .Alerts | len | toUpper }}", "{{ eq (index $.Alerts 0) (index $.Alerts 0) }}",
    "{{ eq $.CommonLabels $.CommonLabels }}", "{{ lt $.Alerts 1 }}", "{{ index $.CommonLabels 1 }}",
    "{{ slice $.CommonLabels 1 }}", "{{ (index $.Alerts 0).StartsAt.Add \"x\" }}", "{{ call 1 }}",
    "{{ template \"helper_str\" }}", '{{ template "helper_data" }}', '{{ template "helper_kv" }}', "{{ 'a }}", "{{ `x }}", "{{ - }}", "{{ $.Alerts.Firing.Labels }}", "{{ printf \"%d\" | 1 }}", "{{ $.Alerts.Firing.Foo }}",
]
MUTATIONS_028 = ['{{ tz "No/Such_Zone" (index $.Alerts 0).StartsAt }}', '{{ date "2006" "x" }}',
                 '{{ humanizeDuration "abc" }}', '{{ trimSpace 1 }}', "{{ range 3.5 }}{{ end }}"]


def invalid_case(rng: random.Random, compat: str) -> str:
    body = valid_case(rng, compat)
    bad = rng.choice(MUTATIONS + (MUTATIONS_028 if compat != "0.25" else []))
    at = rng.randint(0, len(body))
    # insert at a boundary between items so the mutation is what breaks it
    cut = body.rfind("}}", 0, at)
    at = 0 if cut < 0 else cut + 2
    return body[:at] + bad + body[at:]


def data_set(rng: random.Random, with_alerts: bool = True) -> dict:
    """A template.Data as Alertmanager's webhook sends it (JSON)."""
    alerts = []
    for _ in range(rng.choice([1, 1, 2, 3, 5]) if with_alerts else 0):
        labels = {name: rng.choice(LABEL_VALUES) for name in rng.sample(LABEL_NAMES, rng.randint(0, 5))}
        if rng.random() < 0.8:
            labels["alertname"] = rng.choice(["HighCPU", "DiskFull", "Watchdog", "ÜberAlert", "a@b"])
        annotations = {name: rng.choice(LABEL_VALUES)
                       for name in rng.sample(["summary", "description", "runbook_url", "value"], rng.randint(0, 3))}
        alerts.append({
            "status": rng.choice(["firing", "firing", "resolved"]),
            "labels": labels, "annotations": annotations,
            "startsAt": rng.choice(TIMES), "endsAt": rng.choice(TIMES),
            "generatorURL": rng.choice(["", "http://prometheus:9090/graph?g0.expr=up"]),
            "fingerprint": f"{rng.randrange(1 << 64):016x}",
        })
    common = dict(alerts[0]["labels"]) if alerts else {}
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    common_ann = dict(alerts[0]["annotations"]) if alerts else {}
    for a in alerts[1:]:
        common_ann = {k: v for k, v in common_ann.items() if a["annotations"].get(k) == v}
    group = {k: v for k, v in common.items() if k in ("alertname", "job")}
    if rng.random() < 0.3:  # what Go's JSON decoding makes of other shapes: nulls, missing keys, other cases
        for a in alerts:
            for key in rng.sample(["labels", "annotations", "endsAt", "generatorURL", "fingerprint"], 2):
                if rng.random() < 0.5:
                    a[key] = None
                else:
                    a.pop(key)
            if rng.random() < 0.3:
                a["StartsAt"] = a.pop("startsAt")
            if rng.random() < 0.3 and a.get("labels"):
                a["labels"]["nullvalue"] = None
    return {
        "receiver": rng.choice(["rocketchat", "team-X", ""]),
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": alerts, "groupLabels": group, "commonLabels": common, "commonAnnotations": common_ann,
        "externalURL": rng.choice(["http://alertmanager:9093", ""]),
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0,
    }


# --- regular expressions (match, reReplaceAll): Go's RE2 against goregexp -------------------------

RE_ATOMS = ["a", "b", "ab", ".", "[ab]", "[^a]", r"\d", r"\w", r"\s", r"\W", r"\S", r"\D", r"\b", r"\B", "^", "$",
            "é", "A", r"\pL", r"\p{Lu}", r"\PL", r"\p{^Ll}", r"\pN", r"\p{Zs}", r"[[:alpha:]]", r"[[:^digit:]]",
            r"[[:punct:]]", "[a-c]", r"[\d_]", r"[^\s-]", r"\x41", r"\x{e9}", r"\n", "-", r"\.", r"\101", r"\Q.*\E",
            "(?i:a)", "(?i:é)", r"\A", r"\z", "[é-ü]", r"\p{Nd}", "[^\\n]", "[]a]", "[a-]", "x{,2}", r"[\pL\d]",
            "(?i:σ)", "(?i:k)", "(?i:[a-c])", r"(?i:\W)", "1", " "]
RE_QUANTS = ["", "", "", "*", "+", "?", "*?", "+?", "??", "{2}", "{1,2}", "{0,}", "{1,3}?", "{2,}", "{0}", "{3,5}"]
RE_TEXTS = "aab b\n1é_-AÉ.xσΣς\u212a2 ٣\t"
RE_REPLACEMENTS = ["X", "", "<$0>", "$1", "${1}x", "$1x", "$$", "${n}", "$n", "[$2|$1]", "$", "${", "${1", "$01",
                   "$name", "$0$0", "${0}", "$2$", "é$1é", "${n}${1}"]
INVALID_PATTERNS = [
    "(", ")", "a)", "(a", "a(b|c", "[a", "[]", "[^]", "[z-a]", "a**", "a*?*", "a+*", "x{2}{3}", "x{2}*", "*", "+a",
    "?", "{1}", "a{1001}", "a{2,1}", "(a{100}){100}", "(?:a{2}){501}", "a{123456789}", "\\", "a\\", "\\8", "\\1",
    "\\x", "\\x1", "\\xg1", "\\x{", "\\x{}", "\\x{zz}", "\\x{110000}", "\\Z", "\\C", "\\é", "\\pX", "\\p{Foo}",
    "\\p", "\\p{L", "\\p{Letter}", "[\\pX]", "[[:foo:]]", "[[:alpha:]", "[\\b]", "[\\Q]", "(?z)", "(?i-)", "(?-)",
    "(?--i)", "(?i", "(?P<>a)", "(?P<a-b>a)", "(?P<n", "(?P=n)", "(?P", "(?#c)", "(?=a)", "(?!a)", "(?<=a)",
    "a|*", "(*)", "(?i)*", "(?P<é>x)", "[a-\\d]",
]
INVALID_PATTERNS_025 = ["(?<n>a)", "(?<n"]  # Go 1.22's named groups: refused by Go 1.19


def regexp_pattern(rng: random.Random, compat: str, depth: int = 0) -> str:
    """A random pattern that Go accepts."""
    parts = []
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.2 and depth < 2:
            kinds = ["(", "(?:", "(?P<n>", "(?i:", "(?s:", "(?m:", "(?U:", "(?i-s:"] + (["(?<n>"] if compat != "0.25" else [])
            atom = f"{rng.choice(kinds)}{regexp_pattern(rng, compat, depth + 1)})"
        else:
            atom = rng.choice(RE_ATOMS)
        parts.append(atom + rng.choice(RE_QUANTS))
    p = "".join(parts)
    if rng.random() < 0.25:
        p += "|" + regexp_pattern(rng, compat, depth + 1)
    if depth == 0 and rng.random() < 0.1:
        p = rng.choice(["(?i)", "(?m)", "(?s)", "(?U)", "(?ms)"]) + p
    return p


def regexp_case(rng: random.Random, compat: str) -> str:
    """One template of match and reReplaceAll calls on a random pattern, replacement and text."""
    pattern = json.dumps(regexp_pattern(rng, compat), ensure_ascii=False)
    text = json.dumps("".join(rng.choice(RE_TEXTS) for _ in range(rng.randint(0, 14))), ensure_ascii=False)
    repl = json.dumps(rng.choice(RE_REPLACEMENTS))
    return f"{{{{ match {pattern} {text} }}}}|{{{{ reReplaceAll {pattern} {repl} {text} }}}}"


# patterns whose corners a random draw seldom reaches: empty branches and loops, case folding's
# special orbits (K and the Kelvin sign, ſ, ς, ǅ), classes that match all or nothing, non-BMP text
RE_EDGE_PATTERNS = [
    "a||b", "(|a)+", "(a|)+?", "(a*)+$", "(a*|b)*", "(?:)", "()", "(?i)ǅ", "[^\\x00-\\x{10FFFF}]", "\\P{Any}",
    "[\\P{L}]", "(?i)[^k]", "(?i)\\p{Lu}", "(?i)\\P{Lu}", "\\pN", "x{0}", "x{0}y", "(x){0}", "(?s).", ".*", "(?m)$",
    "(?m)^$", "\\b", "\\B", "(a)(b)?(c)*", "(?U)(a+)(a*?)", "(a+?)(b*)", "((a)|b)+", "(a|ab)(c|bcd)(d*)", "(?i)ſ+",
    "[[:^space:]]+", "[^[:alpha:]]", "(?i)[[:upper:]]+", "(?i)[^[:upper:]]", "\\Q\\E", "\\Qab", "a\\Q\\E*",
    "(?:a{2}){2,3}", "a{2,}?", "(?:(?:a)*)*", "(?:a+|b+)*c", "[\\d-z]", "[a\\-z]", "[\\]]", "[\\[]", "[.]", "[$^]", "^*",
    "$+", "\\b*", "(?i)Σ+", "(?-i)a", "(?i)(?-i:a)A", "(?sm)^.$", "x*y*z*", "(?:x|xy)(?:z|yz)", "é|e\u0301",
    "\\x{1F525}+", "🔥+", "[🔥-🔧]", "(?i)ß", "(?i)ẞ", "(?i)ǆ", "(?i)ΐ", "(?i)ﬀ", "\\w+é", "(?i)[k-k]",
]
RE_EDGE_TEXTS = ["", "a", "ab", "abc", "aab\nb", "KkK\u212aſsS", "a\nb\n", "\n", "ǄǅǆĲ", "xyz yxz", "é e\u0301 🔥🔥🔦",
                 "ßẞss ΐ ﬀ", "aaa bbb", "  ", "Σσς", "c"]


def regexp_edge_cases() -> List[str]:
    """Each edge pattern on each edge text, through match and reReplaceAll."""
    repls = ["<$0>", "[$1|$2|$3]", "$$-", "${1}", ""]
    return [f"{{{{ match {json.dumps(p, ensure_ascii=False)} {json.dumps(t, ensure_ascii=False)} }}}}|"
            f"{{{{ reReplaceAll {json.dumps(p, ensure_ascii=False)} {json.dumps(repls[i % len(repls)])} "
            f"{json.dumps(t, ensure_ascii=False)} }}}}"
            for i, p in enumerate(RE_EDGE_PATTERNS) for t in RE_EDGE_TEXTS]
