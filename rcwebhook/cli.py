"""The command line: parse arguments, load settings, run the daemon or check the configuration."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import IO, List, Mapping, Optional, Tuple

from . import __version__, sendtest
from .config import envfile
from .config.describe import describe
from .config.keys import DEFAULTS, ROUTES, help_lines
from .config.loading import COMPAT_ALIAS, SYSTEM_CONFIG, find_config, load
from .config.secrets import redact
from .config.settings import EX_CONFIG, ConfigError, Settings
from .operations import logs
from .service import Service

log = logging.getLogger("rcwebhook")

DESCRIPTION = """\
Receive Prometheus Alertmanager notifications on POST /webhook and post each alert
to the Rocket.Chat incoming webhook of its severity (critical, warning, info).
"""

EPILOG = f"""\
subcommands:
  rcwebhook template render --template.glob=GLOB... --template.text=TEXT [--template.data=FILE]
      render a template as amtool's `template render` does, with rcwebhook's template
      engine (see `rcwebhook template render --help`)

configuration:
  Settings come from an env file of KEY=VALUE lines, the first found of:
  --config PATH, $RCWEBHOOK_CONFIG, {SYSTEM_CONFIG}, ./.env.
  Variables in rcwebhook's environment override the file.

keys (KEY=DEFAULT; the man page rcwebhook(8) tells each in full):
{chr(10).join(help_lines())}

timeouts:
  DELIVERY_TIMEOUT: seconds to connect to Rocket.Chat and send one post; its answer
  is then awaited up to 60 s, or twice this, before the post is sent again.
  REQUEST_TIMEOUT: seconds a client may take to send a request, from its first
  byte to its last; a kept-alive connection may also sit idle this long.

signals:
  SIGHUP reloads the configuration (an invalid one is refused, the running one kept);
  SIGTERM and SIGINT stop accepting connections, let requests in flight finish, and exit.

exit status:
  0 on a clean stop, 1 when the daemon cannot listen or --send-test had a failure,
  2 when the command line is wrong (usage), {EX_CONFIG} (EX_CONFIG) when the
  configuration is invalid.
"""


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Return the parsed command line."""
    parser = argparse.ArgumentParser(
        prog="rcwebhook",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="read settings from this env file")
    parser.add_argument("--check-config", action="store_true",
                        help=f"validate the configuration, print the effective settings with secrets "
                             f"masked, and exit 0, or print every problem and exit {EX_CONFIG}")
    parser.add_argument("--dry-run", action="store_true",
                        help="render and log messages instead of posting them (DRY_RUN=true)")
    parser.add_argument("--send-test", nargs="?", const="all", metavar="ROUTE",
                        help="post a clearly labelled test alert through each route (or only ROUTE: critical, "
                             "warning or info, a hook set of RECEIVERS, or one of its routes such as db/critical), "
                             "print each result, and exit 0 only if all were accepted")
    parser.add_argument("--mention", action="store_true",
                        help="with --send-test: put each route's mentions (MENTION_*) in front of its test alert, "
                             "as a real alert's post has them, to check that Rocket.Chat lets the hook make them "
                             "(@here and @all need permissions)")
    parser.add_argument("--render", metavar="FILE.json",
                        help="print the Rocket.Chat message(s) rcwebhook would post for this Alertmanager "
                             "notification, as it would post them (mentions, channel, a reply in the incident's "
                             "thread that STATE_DIR holds), and exit; 1 when a template fails at run time (told "
                             "on stderr; the built-in part shown is what would be posted)")
    parser.add_argument("--route", choices=ROUTES, help="with --render: only this route's message")
    parser.add_argument("--receiver", metavar="SET", default="",
                        help="with --render: as if posted to /webhook/SET, a hook set of RECEIVERS")
    parser.add_argument("--version", action="version", version=f"rcwebhook {__version__}")
    return parser.parse_args(argv)


def load_settings(args: argparse.Namespace, environ: Mapping[str, str]):
    """Return (settings, warnings) for these arguments; raise ConfigError."""
    path = find_config(args.config, environ, Path.cwd())
    overrides = {"DRY_RUN": "true"} if args.dry_run else {}
    return load(path, environ, overrides, compile_templates)


def compile_templates(settings: Settings, errors: List[str]):
    """Return the templates TEMPLATE_FILES holds, compiled, adding their problems to `errors`: the settings are
    refused for a broken template as for any other problem, at start, by --check-config and on reload."""
    from .messages import templates  # the template engine, only when templates are configured

    return templates.load(settings, errors)


def compat_setting(environ: Mapping[str, str]) -> Tuple[str, str]:
    """Return where TEMPLATE_COMPAT comes from and its value, as the daemon reads it: the environment's
    TEMPLATE_COMPAT, else its RCWEBHOOK_TEMPLATE_COMPAT, else the env file rcwebhook would read (when this
    user may read it), else the default."""
    for key in ("TEMPLATE_COMPAT", COMPAT_ALIAS):
        if environ.get(key, "").strip():
            return key, environ[key].strip()
    path = find_config(None, environ, Path.cwd())
    if path is not None:
        try:
            entries, _ = envfile.parse(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError):
            entries = []
        for entry in reversed(entries):
            if entry.key == "TEMPLATE_COMPAT" and entry.value.strip():
                return f"{path}: TEMPLATE_COMPAT", entry.value.strip()
    return "TEMPLATE_COMPAT", DEFAULTS["TEMPLATE_COMPAT"]


def main(argv: Optional[List[str]] = None, environ: Mapping[str, str] = os.environ,
         stderr: Optional[IO[str]] = None, stdout: Optional[IO[str]] = None) -> int:
    """Run the command line and return the exit status."""
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["template"]:  # amtool's `template render`, with rcwebhook's template engine
        from .amtemplate import render
        return render.main(words[1:], environ, stdout, stderr, compat_setting(environ))
    args = parse_args(argv)
    stderr = stderr or sys.stderr
    if args.mention and not args.send_test:
        print("rcwebhook: error: --mention goes with --send-test", file=stderr)
        return 2
    stdout = stdout or sys.stdout
    try:
        settings, warnings = load_settings(args, environ)
    except ConfigError as exc:
        # Under systemd these lines go to the journal: at priority err, so `journalctl -p err` finds them.
        err = logs.priority_prefix(stderr, environ, logging.ERROR)
        warn = logs.priority_prefix(stderr, environ, logging.WARNING)
        for warning in exc.warnings:
            print(f"{warn}rcwebhook: warning: {warning}", file=stderr)
        for problem in exc.problems:
            print(f"{err}rcwebhook: error: {problem}", file=stderr)
        print(f"{err}rcwebhook: the configuration is invalid ({len(exc.problems)} "
              f"problem{'s' if len(exc.problems) != 1 else ''}); nothing was started", file=stderr)
        return EX_CONFIG
    if args.render:
        from . import preview
        return preview.render_file(settings, args.render, args.route, stdout, stderr, args.receiver)
    if args.check_config:
        for warning in warnings:
            print(f"rcwebhook: warning: {redact(warning, settings.secrets())}", file=stderr)
        print("\n".join(describe(settings)), file=stdout)
        print("rcwebhook: the configuration is valid", file=stderr)
        return 0
    try:
        logs.configure(settings.log_level, settings.log_file, settings.log_max_bytes,
                       settings.log_backup_count, settings.secrets(), stream=stderr, environ=environ)
    except OSError as exc:
        print(f"{logs.priority_prefix(stderr, environ, logging.ERROR)}rcwebhook: error: "
              f"LOG_FILE={settings.log_file!r} cannot be opened: {exc.strerror or exc}", file=stderr)
        return EX_CONFIG
    for warning in warnings:
        log.warning("%s", warning)
    if args.send_test:
        return sendtest.run(settings, args.send_test, stdout, mention=args.mention)
    return Service(lambda: load_settings(args, environ), environ).run(settings)
