"""The webhook pipeline: request body in, parsed notification, routed alerts, rendered
messages, delivery outcomes, HTTP answer out."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

from . import alertmanager, delivery, message, routing
from .alertmanager import Notification
from .config import Settings, redact_url
from .delivery import Answer, Transport

log = logging.getLogger("rcwebhook")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, JSON body, extra headers."""

    status: int
    body: Mapping[str, Any]
    headers: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Outcome:
    """What became of one route's post."""

    route: str
    alerts: Tuple[str, ...]
    answer: Answer
    dry_run: bool = False

    @property
    def delivered(self) -> bool:
        return self.dry_run or self.answer.accepted

    def describe(self) -> Dict[str, Any]:
        """Return this outcome as the response body shows it: no URL, Rocket.Chat's reason."""
        if self.dry_run:
            return {"status": "dry-run", "alerts": len(self.alerts)}
        if self.delivered:
            return {"status": "delivered", "alerts": len(self.alerts), "code": self.answer.status}
        return {
            "status": "failed",
            "alerts": len(self.alerts),
            "code": self.answer.status,
            "error": self.answer.error,
            "retryable": self.answer.transient,
        }


def handle(body: bytes, settings: Settings, transport: Transport = delivery.post) -> Reply:
    """Return the answer to one POST /webhook, posting to Rocket.Chat on the way."""
    try:
        notification = alertmanager.parse(body)
    except alertmanager.PayloadError as exc:
        log.warning("Rejected a notification: %s", exc)
        return Reply(400, {"status": "error", "error": str(exc)})
    batches = routing.route(notification, settings)
    log.info(
        "Notification received: receiver=%s groupKey=%s status=%s alerts=%d routes=%s",
        notification.receiver or "-",
        notification.group_key or "-",
        notification.status,
        len(notification.alerts),
        ",".join(f"{b.route.name}:{len(b.alerts)}" for b in batches) or "-",
    )
    outcomes = [_deliver(notification, batch, settings, transport) for batch in batches]
    return answer(notification, outcomes)


def _deliver(notification: Notification, batch: routing.Batch, settings: Settings, transport: Transport) -> Outcome:
    """Return the outcome of rendering and posting one route's message."""
    rendered = message.render(notification, batch, settings)
    names = tuple(a.name for a in batch.alerts)
    payload = json.dumps(rendered, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if settings.dry_run:
        log.info("Dry run: would post to route %s (%d alerts): %s", batch.route.name, len(names),
                 payload.decode("utf-8"))
        return Outcome(batch.route.name, names, Answer(200), dry_run=True)
    started = time.monotonic()
    result = transport(batch.route.url, payload, settings.delivery_timeout)
    took = time.monotonic() - started
    hook = redact_url(batch.route.url)
    if result.accepted:
        log.info("Alert sent successfully to Rocket.Chat: %d (route=%s alerts=%s hook=%s took=%.3fs)",
                 result.status, batch.route.name, _names(names), hook, took)
    else:
        log.error("Rocket.Chat did not take the post for route %s: %s %s (alerts=%s hook=%s took=%.3fs); %s",
                  batch.route.name, result.status or "no answer", result.error, _names(names), hook, took,
                  delivery.advice(batch.route, result))
    return Outcome(batch.route.name, names, result)


def _names(names: Tuple[str, ...]) -> str:
    return delivery.one_line(",".join(names))


def answer(notification: Notification, outcomes: List[Outcome]) -> Reply:
    """Return the HTTP answer for a notification: 200 when every post was accepted, else 5xx.

    502 when Rocket.Chat refused a post outright, 503 when what failed may succeed on retry.
    Alertmanager retries both (it gives up only on 4xx).
    """
    body: Dict[str, Any] = {
        "alerts": alertmanager.names(notification),
        "processed": len(notification.alerts),
        "routes": {o.route: o.describe() for o in outcomes},
        "status": "ok",
    }
    failed = [o for o in outcomes if not o.delivered]
    if not failed:
        return Reply(200, body)
    body["status"] = "error"
    body["error"] = "; ".join(
        f"route {o.route}: Rocket.Chat answered {o.answer.status or 'nothing'}: {o.answer.error}" for o in failed
    )
    if any(not o.answer.transient for o in failed):
        return Reply(502, body)
    return Reply(503, body, (("Retry-After", "10"),))


def health(version: str) -> Reply:
    """Return the seed-compatible /health answer."""
    return Reply(200, {"service": "rocketchat-webhook-adapter", "status": "healthy", "version": version})


def error(status: int, text: str, headers: Tuple[Tuple[str, str], ...] = ()) -> Reply:
    """Return a JSON error answer."""
    return Reply(status, {"status": "error", "error": text}, headers)


def encode(reply: Reply) -> bytes:
    """Return the JSON bytes of a reply body, as Flask's jsonify wrote them (sorted, compact)."""
    return json.dumps(reply.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"

