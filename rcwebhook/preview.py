"""`rcwebhook --render FILE.json`: the message(s) rcwebhook would post for a notification, as it would post
them: the route's mentions in front, the channel override, a reply in the incident's thread when STATE_DIR
holds one, and any template that fails at run time told on stderr (the built-in part is what is posted)."""

from __future__ import annotations

import contextlib
import json
import logging.handlers
import sqlite3
import sys
import time
from pathlib import Path
from typing import IO, Any, Dict, Optional, Tuple

from .messages import mentions, render, routing, templates
from .messages.notification import Notification, PayloadError, parse
from .config.settings import Route, Settings
from .delivery.ledger import FIRING, RESOLVED, identity, observe
from .delivery.store import FILE_NAME, hook_id
from .delivery.threads import group_digest, thread_scope

log = logging.getLogger("rcwebhook")


def render_file(settings: Settings, path: str, route_name: Optional[str], stdout: IO[str], stderr: IO[str],
                receiver: str = "") -> int:
    """Print the message(s) rcwebhook would post for the notification in `path` posted to /webhook (or
    /webhook/RECEIVER); return 0, or 1 when it cannot be read or a template failed (the error on stderr)."""
    if receiver and receiver not in settings.receivers:
        print(f"rcwebhook: error: --receiver {receiver}: RECEIVERS names no such hook set "
              f"({', '.join(settings.receivers) or 'none'})", file=stderr)
        return 2
    try:
        with open(path, "rb") as f:
            notification = parse(f.read())
    except (OSError, PayloadError) as exc:
        print(f"rcwebhook: error: {path}: {exc}", file=stderr)
        return 1
    batches = routing.plan(notification, settings, receiver).batches
    if route_name:
        batches = [b for b in batches if b.route.severity == route_name]
    state = _State(settings, time.time())
    told = logging.handlers.BufferingHandler(sys.maxsize)  # the warnings of a failing template, as logged
    told.setLevel(logging.WARNING)
    log.addHandler(told)
    try:
        for batch in batches:
            rendered, thread = _post(notification, batch, settings, state)
            print(json.dumps({"route": batch.route.name, "thread": thread, "message": rendered},
                             ensure_ascii=False, indent=2), file=stdout)
    finally:
        log.removeHandler(told)
        state.close()
    if not batches:
        print(f"rcwebhook: no alert of {path} goes to route {route_name}", file=stderr)
    failed = [r for r in told.buffer if r.msg == templates.FAILED]
    for record in told.buffer:
        print(f"rcwebhook: {'error' if record in failed else 'warning'}: {record.getMessage()}", file=stderr)
    return 1 if failed else 0


def _post(notification: Notification, batch: routing.Batch, settings: Settings,
          state: "_State") -> Tuple[Dict[str, Any], str]:
    """Return the post for one batch as the daemon would send it, and where it goes (channel or thread)."""
    route = batch.route
    root, note = state.thread_root(route, notification, batch)
    called = () if root else mentions.called(route.mention, batch.alerts)
    mentioned = mentions.line([called], min(mentions.LINE_LIMIT, render.TEXT_LIMIT // 2))
    rendered = render.group_message(route, batch.alerts, notification.external_url, notification.truncated_alerts,
                                    settings, render.TEXT_LIMIT - (len(mentioned) + 1 if mentioned else 0),
                                    thread=root, note=note, receiver=notification.receiver,
                                    group_labels=notification.group_labels)
    if mentioned:
        rendered["text"] = f"{mentioned} {rendered['text']}"
    if settings.threads:
        rendered["separateResponse"] = True
    channel = route.channel or "the hook's own channel"
    if not settings.threads:
        where = f"a message in {channel} (THREADS=false)"
    elif root:
        where = f"a reply in the incident's thread (tmid {root}) in {channel}, as STATE_DIR knows it"
    elif settings.state_dir:
        where = f"a new message in {channel}: it opens the incident's thread"
    else:
        where = (f"a new message in {channel}: it opens the incident's thread (without STATE_DIR, no earlier "
                 "thread is known here; the running daemon may reply in one it holds in memory)")
    return rendered, where


class _State:
    """The threads and posted states in STATE_DIR's database, read only; nothing when there is none."""

    def __init__(self, settings: Settings, now: float) -> None:
        self.settings, self.now, self.db = settings, now, None
        path = Path(settings.state_dir) / FILE_NAME if settings.state_dir and settings.threads else None
        if path is not None and path.is_file():
            with contextlib.suppress(sqlite3.Error):
                self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)

    def thread_root(self, route: Route, notification: Notification,
                    batch: routing.Batch) -> Tuple[str, str]:
        """Return the root of the open thread these alerts would be a reply in ("" for a channel message: a post
        that announces a newly firing alert goes to the channel, see threads), and the reply's note when it
        resolves the incident's last alert (courier's rule, read from the database)."""
        if self.db is None or not route.url:
            return "", ""
        scope = thread_scope(notification.group_key, route.receiver, batch.channel)
        try:
            row = self.db.execute("SELECT root, last_post, alerts, started FROM thread WHERE hook = ? AND "
                                  "group_key = ?", (hook_id(route.url), group_digest(scope))).fetchone()
            if row is None or self.now - row[1] > self.settings.thread_ttl:
                return "", ""
            announced = set(json.loads(row[2]))
            posting = {}
            for alert in batch.alerts:
                key = identity(alert)
                posted = self._posted(route.name, key)  # (status, starts), or None
                posting[f"{route.name}/{key}"] = state = observe(alert, None, self.now, 0)
                if alert.status == "firing" and (f"{route.name}/{key}" not in announced
                                                 or posted != (FIRING, state.starts)):
                    return "", ""
            resolved = all((posting[key].status if key in posting else
                            (self._posted(*key.rsplit("/", 1)) or (RESOLVED,))[0]) == RESOLVED for key in announced)
        except (sqlite3.Error, ValueError):
            return "", ""
        ends = [s.ends for s in posting.values() if s.status == RESOLVED and s.ends]
        if not announced or not resolved:
            note = ""
        elif not ends or not row[3] or max(ends) < row[3]:
            note = "Incident resolved."
        else:
            note = f"Incident resolved after {render.duration(max(ends) - row[3])}."
        return row[0], note

    def _posted(self, route: str, key: str) -> Optional[Tuple[str, float]]:
        return self.db.execute("SELECT status, starts FROM alert_state WHERE route = ? AND alert = ?",
                               (route, key)).fetchone()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
