"""--send-test: post a clearly labelled test alert through each configured route and report."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timezone, tzinfo
from typing import IO, List, Optional

from .delivery.transport import Answer, Transport, advice, make_transport
from .messages import mentions
from .messages.notification import Alert, Notification
from .messages.render import local_time, render
from .config.keys import ROUTES, key_prefix
from .config.secrets import redact, redact_url
from .config.settings import Settings, route_name
from .messages.routing import Batch


def test_notification(route: str, now: datetime, zone: tzinfo = timezone.utc) -> Notification:
    """Return a firing notification of one test alert for `route` (a severity, or SET/SEVERITY), its time told
    in `zone` (TIMEZONE), as the message's Started field tells it."""
    host = socket.gethostname()
    alert = Alert(
        status="firing",
        labels={"alertname": "RcwebhookTest", "severity": route.rpartition("/")[2], "host": host},
        annotations={
            "summary": f"Test alert from rcwebhook on {host}: ignore it",
            "description": f"rcwebhook --send-test posted this through the {route} route at "
                           f"{local_time(now, zone)}. If it is in this channel, alerts of "
                           f"severity {route.rpartition('/')[2]} reach it. No action is needed.",
        },
        starts_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        fingerprint=f"rcwebhook-test-{route.replace('/', '-')}",
    )
    return Notification(alerts=(alert,), status="firing", receiver="rcwebhook --send-test",
                        group_key=f"rcwebhook-send-test-{route}")


def chosen(settings: Settings, only: Optional[str]) -> List[str]:
    """Return the names of the routes `only` names: every route for None or `all`, a severity's in the default
    set, a hook set's three, or one route by its name (db/critical); [] for a name that is none of these."""
    if only in (None, "all"):
        return list(settings.routes)
    if only in ROUTES or only in settings.routes:
        return [only]
    if only in settings.receivers:
        return [route_name(only, severity) for severity in ROUTES]
    return []


def run(settings: Settings, only: Optional[str], out: IO[str], transport: Optional[Transport] = None,
        mention: bool = False) -> int:
    """Post the test alert through each route (or those `only` names), print one line per route; return 0 if all
    were taken, 2 when `only` names no route. With `mention`, each post carries its route's mentions in front,
    as a real alert's does, so that a refused @here or @all shows now."""
    names = chosen(settings, only)
    if not names:
        print(f"rcwebhook: --send-test {only}: no such route; use all, critical, warning, info, a hook set of "
              f"RECEIVERS ({', '.join(settings.receivers) or 'none'}) or one of its routes such as SET/critical",
              file=out)
        return 2
    transport = transport or make_transport(settings)
    secrets = settings.secrets()

    def say(line: str) -> None:
        # Every line, whatever it quotes (an error may quote a URL), goes out redacted.
        print(redact(line, secrets), file=out)

    now = datetime.now(timezone.utc)
    failed = 0
    for name in names:
        route = settings.routes[name]
        notification = test_notification(name, now, settings.timezone)
        rendered = render(notification, Batch(route, notification.alerts), settings)
        called = mentions.put_in_front(rendered, route.mention, notification.alerts) if mention else ""
        left_out = f"; its mentions ({route.mention}) left out: add --mention to test them" \
            if route.mention and not mention else ""
        target = (redact_url(route.url) or "(no URL)") + (f" (the {route.url_from} URL)" if route.url_from else "")
        if settings.dry_run:
            say(f"{name}: dry run, not posted to {target}{left_out}: {json.dumps(rendered, ensure_ascii=False)}")
            continue
        answer = transport(route.url, json.dumps(rendered, ensure_ascii=False).encode("utf-8"),
                           settings.delivery_timeout)
        if answer.accepted:
            say(f"{name}: delivered ({answer.status}) to {target}" + (f", mentioning {called}" if called else left_out))
        else:
            failed += 1
            say(f"{name}: FAILED ({answer.status or 'no answer'}: {answer.error}) to {target}; "
                f"{_advice(route, answer, called)}")
    return 1 if failed else 0


def _advice(route, answer: Answer, called: str) -> str:
    """Return what to check after a refused test post: for a refused @here or @all, the permission to grant."""
    special = mentions.special(called)
    if mentions.REFUSAL in answer.error and special:
        said = " or ".join(f"@{name}" for name in special)
        grant = " and ".join(mentions.permissions(special))
        return (f"the integration's user may not mention {said}: grant it {grant} "
                f"(or its bot role) in Rocket.Chat, Administration > Workspace > Permissions, or take {said} out of "
                f"{key_prefix(route.receiver)}MENTION_{route.severity.upper()}")
    return advice(route, answer)
