"""--send-test: post a clearly labelled test alert through each configured route and report."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timezone
from typing import IO, Optional

from . import delivery, message
from .alertmanager import Alert, Notification
from .config import ROUTES, Settings, redact, redact_url
from .routing import Batch


def test_notification(route: str, now: datetime) -> Notification:
    """Return a firing notification of one test alert for `route`."""
    host = socket.gethostname()
    alert = Alert(
        status="firing",
        labels={"alertname": "RcwebhookTest", "severity": route, "host": host},
        annotations={
            "summary": f"Test alert from rcwebhook on {host}: ignore it",
            "description": f"rcwebhook --send-test posted this through the {route} route at "
                           f"{now.strftime('%Y-%m-%d %H:%M:%S UTC')}. If it is in this channel, alerts of "
                           f"severity {route} reach it. No action is needed.",
        },
        starts_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        fingerprint=f"rcwebhook-test-{route}",
    )
    return Notification(alerts=(alert,), status="firing", receiver="rcwebhook --send-test",
                        group_key=f"rcwebhook-send-test-{route}")


def run(settings: Settings, only: Optional[str], out: IO[str], transport: Optional[delivery.Transport] = None) -> int:
    """Post the test alert through each route (or `only`), print one line per route; return 0 if all were taken."""
    transport = transport or delivery.make_transport(settings)
    secrets = settings.secrets()

    def say(line: str) -> None:
        # Every line, whatever it quotes (an error may quote a URL), goes out redacted.
        print(redact(line, secrets), file=out)

    now = datetime.now(timezone.utc)
    failed = 0
    for name in ROUTES if only is None else (only,):
        route = settings.routes[name]
        notification = test_notification(name, now)
        rendered = message.render(notification, Batch(route, notification.alerts), settings)
        target = (redact_url(route.url) or "(no URL)") + (f" (the {route.url_from} URL)" if route.url_from else "")
        if settings.dry_run:
            say(f"{name}: dry run, not posted to {target}: {json.dumps(rendered, ensure_ascii=False)}")
            continue
        answer = transport(route.url, json.dumps(rendered, ensure_ascii=False).encode("utf-8"),
                           settings.delivery_timeout)
        if answer.accepted:
            say(f"{name}: delivered ({answer.status}) to {target}")
        else:
            failed += 1
            say(f"{name}: FAILED ({answer.status or 'no answer'}: {answer.error}) to {target}; "
                f"{delivery.advice(route, answer)}")
    return 1 if failed else 0
