"""`rcwebhook template render`: amtool's `template render`, its flags and output, with rcwebhook's template
engine (HELP below says how)."""

from __future__ import annotations

import glob as globmod
import os
import sys
import time
from typing import IO, List, Mapping, Optional, Tuple

from ..gotemplate.gotime import GoTime, Location, local_location, time_in
from ..gotemplate.template import Template, TemplateError
from .compat import COMPATS, DEFAULT_COMPAT
from .data import Data, DataError, data_from_json, load_data
from .functions import check_regexps, new_template

USAGE = ("usage: rcwebhook template render --template.glob=GLOB... --template.text=TEXT "
         "[--template.data=FILE] [--template.type=text]")


HELP = f"""{USAGE}

Render TEXT with the templates the globs name, as amtool's `template render` does, with
rcwebhook's template engine: the rendered text on stdout (no newline added); for an invalid
template or data, the error on stderr and exit status 1.

flags:
  -h, --help               show this help and exit
  --template.glob=GLOB     files of templates (`define`s), in order; may be repeated
  --template.text=TEXT     the template to render, such as '{{{{ template "my.text" . }}}}'
  --template.data=FILE     Alertmanager's template data (JSON), as amtool reads it; without it,
                           the sample data of the Alertmanager followed
  --template.type=text     only text templates are supported

settings:
  TEMPLATE_COMPAT   the Alertmanager whose functions and output are followed: {", ".join(COMPATS)}
                    (default {DEFAULT_COMPAT}); from the environment (RCWEBHOOK_TEMPLATE_COMPAT is
                    read as an alias), else from the env file rcwebhook would read, as the daemon
  TZ                the zone of times' .Local, as for amtool (else /etc/localtime)
"""


class UsageError(Exception):
    pass


def _parse_flags(argv: List[str]) -> Optional[dict]:
    """Return the flags of `template render`, or None when help is asked for."""
    flags = {"glob": [], "text": None, "data": None, "type": "text"}
    args = iter(argv)
    for arg in args:
        if arg in ("--help", "-h"):
            return None
        if not arg.startswith("--template."):
            raise UsageError(f"unexpected {arg}")
        key, eq, value = arg[len("--template."):].partition("=")
        if key not in flags:
            raise UsageError(f"unknown long flag '--template.{key}'")
        if not eq:
            value = next(args, None)
            if value is None:
                raise UsageError(f"expected argument for flag '--template.{key}'")
        if key == "glob":
            flags["glob"].append(value)
        else:
            flags[key] = value
    if flags["text"] is None:
        raise UsageError("required flag --template.text not provided")
    if flags["type"] != "text":
        raise UsageError("only --template.type=text is supported")
    return flags


def load_globs(globs: List[str], compat: str = DEFAULT_COMPAT) -> Template:
    """A template set from files matching the globs, in Alertmanager's order (sorted within a glob),
    each file parsed under its base name; TemplateError on the first invalid one."""
    tmpl = new_template(compat)
    for pattern in globs:
        for path in sorted(globmod.glob(pattern)):
            if os.path.isdir(path):
                raise TemplateError(f"read {path}: is a directory")
            with open(path, encoding="utf-8", errors="replace", newline="") as f:  # keep \r\n as Go does
                text = f.read()
            try:
                tmpl.parse(os.path.basename(path), text)
            except TemplateError as exc:
                exc.path = path  # type: ignore[attr-defined]  # Go's message names the base name only
                raise
    check_regexps(tmpl)
    return tmpl


def render_text(tmpl: Template, text: str, data: object) -> str:
    """Alertmanager's ExecuteTextString: `text` parsed as the template "" among the others."""
    if text == "":
        return ""
    tmpl.parse("", text)
    check_regexps(tmpl)
    return tmpl.execute("", data)


def default_data(compat: str, now_ns: int, local: Location) -> Data:
    """The data amtool renders with when no --template.data is given, as the Alertmanager `compat` has
    them: its alerts' status is `alertstatus` in 0.25, `firing` and `resolved` from 0.28 on (so that
    .Alerts.Firing and .Alerts.Resolved hold one each); their times are now (`now_ns`, in `local`) and 5 and
    10 minutes before."""
    first, second = ("alertstatus", "alertstatus") if compat == "0.25" else ("firing", "resolved")
    common_labels = {"commonlabelkey1": "commonlabelvalue1", "commonlabelkey2": "commonlabelvalue2"}
    common_annotations = {"commonannotationkey1": "commonannotationvalue1",
                          "commonannotationkey2": "commonannotationvalue2"}
    data = data_from_json({
        "receiver": "receiver", "status": "alertstatus",
        "alerts": [
            {"status": first,
             "labels": {"label1": "value1", "label2": "value2", "instance": "foo.bar:1234", **common_labels},
             "annotations": {"annotation1": "value1", "annotation2": "value2", **common_annotations},
             "generatorURL": "https://generatorurl.com", "fingerprint": "fingerprint1"},
            {"status": second,
             "labels": {"foo": "bar", "baz": "qux", **common_labels},
             "annotations": {"aaa": "bbb", "ccc": "ddd", **common_annotations},
             "generatorURL": "https://generatorurl.com", "fingerprint": "fingerprint2"},
        ],
        "groupLabels": {"grouplabelkey1": "grouplabelvalue1", "grouplabelkey2": "grouplabelvalue2"},
        "commonLabels": common_labels, "commonAnnotations": common_annotations,
        "externalURL": "https://example.com",
    })

    def at(ns: int) -> GoTime:
        return time_in(GoTime(ns // 1_000_000_000, ns % 1_000_000_000), local)

    for alert, minutes in zip(data.Alerts, (5, 10)):
        alert.StartsAt, alert.EndsAt = at(now_ns - minutes * 60_000_000_000), at(now_ns)
    return data


def main(argv: List[str], environ: Mapping[str, str], stdout: Optional[IO[str]], stderr: Optional[IO[str]],
         compat_setting: Tuple[str, str]) -> int:
    """Run `template render ARGS` following the Alertmanager `compat_setting` names (where it was read, the
    version); return the exit status."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if not argv or argv[0] not in ("render", "--help", "-h", "help"):
        print(USAGE, file=stderr)
        return 2
    try:
        flags = _parse_flags(argv[1:]) if argv[0] == "render" else None
    except UsageError as exc:
        print(f"rcwebhook: error: {exc}, try --help\n{USAGE}", file=stderr)
        return 2
    if flags is None:
        stdout.write(HELP)
        return 0
    key, compat = compat_setting
    if compat not in COMPATS:
        print(f"rcwebhook: error: {key}={compat!r} is not an Alertmanager version rcwebhook follows "
              f"({', '.join(COMPATS)})", file=stderr)
        return 2
    try:
        tmpl = load_globs(flags["glob"], compat)
        tmpl.local = local_location(environ)  # as amtool's: $TZ, else /etc/localtime
        if flags["data"] is None:
            data = default_data(compat, time.time_ns(), tmpl.local)
        else:
            with open(flags["data"], encoding="utf-8") as f:
                data = load_data(f.read())
        out = render_text(tmpl, flags["text"], data)
    except (TemplateError, DataError, OSError, UnicodeDecodeError) as exc:
        print(f"rcwebhook: error: {exc}", file=stderr)
        return 1
    stdout.write(out)
    stdout.flush()
    return 0
