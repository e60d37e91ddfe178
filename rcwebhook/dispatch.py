"""The webhook pipeline: request body in, parsed notification, routed alerts, rendered
messages, delivery outcomes, HTTP answer out."""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Tuple

from . import alertmanager, logs, message, routing
from .config import Route, Settings
from .courier import Deliverer, Result
from .ledger import Context, Item, identity
from .metrics import Metrics
from .status import Board

log = logging.getLogger("rcwebhook")


class Reply(NamedTuple):
    """An HTTP answer: status, JSON body, extra headers."""

    status: int
    body: Mapping[str, Any]
    headers: Tuple[Tuple[str, str], ...] = ()
    reason: str = ""  # for webhook_errors_total, when not 2xx


# Notifications decoded and rendered at once. The work is CPU-bound under one interpreter lock, so
# more at once only multiplies the memory of their parsed bodies and slows /health (bench/hostile.py);
# the rest wait here, their deadlines running.
PREPARING_AT_ONCE = 1
_preparing = threading.BoundedSemaphore(PREPARING_AT_ONCE)

Batches = List[Tuple[Route, Tuple[str, ...], List[Item]]]  # each route's alert names and alert states


def handle(body: bytes, settings: Settings, deliverer: Deliverer, arrived: float, metrics: Metrics,
           board: Optional[Board] = None) -> Reply:
    """Return the answer to one POST /webhook that arrived at `arrived` (monotonic), posting on the way;
    `board` records it for /status."""
    with _preparing:
        prepared = _prepare(body, settings, metrics)
    if isinstance(prepared, Reply):
        return prepared
    # Only what the answer and the alert states need is kept from here on, not the parsed body, while
    # the posts are waited for.
    names, processed, batches, results, group_key = prepared
    if batches:
        results.extend(deliverer.deliver(batches, arrived + settings.delivery_deadline))
    reply = answer(names, processed, results)
    if board is not None:
        board.notification(group_key, names, {r.route: r.status for r in results},
                           f"{reply.status} {reply.body['status']}")
    return reply


def _prepare(body: bytes, settings: Settings, metrics: Metrics):
    """Return the refusal of `body`, or (answer's names, alert count, each route's alert states, results so
    far)."""
    try:
        notification = alertmanager.parse(body)
    except alertmanager.PayloadTooDense as exc:  # no retry can help, and no Alertmanager sends it: 4xx
        log.warning("Rejected a notification: %s", exc)
        return Reply(413, {"status": "error", "error": str(exc)}, reason="too_large")
    except alertmanager.PayloadError as exc:
        log.warning("Rejected a notification: %s", exc)
        return Reply(400, {"status": "error", "error": str(exc)}, reason="bad_request")
    batches = routing.route(notification, settings)
    for batch in batches:
        for alert in batch.alerts:
            metrics.alerts.inc(status=alert.status, severity=batch.route.name)
    log.info(
        "Notification received: receiver=%s groupKey=%s status=%s alerts=%d routes=%s",
        notification.receiver or "-",
        notification.group_key or "-",
        notification.status,
        len(notification.alerts),
        ",".join(f"{b.route.name}:{len(b.alerts)}" for b in batches) or "-",
        extra=logs.fields("received", route=[b.route.name for b in batches], group_key=notification.group_key,
                          outcome=notification.status),
    )
    batches_out: Batches = []
    results: List[Result] = []
    context = Context(notification.group_key, notification.external_url, notification.truncated_alerts,
                      notification.reason, notification.receiver, notification.group_labels or {})
    for batch in batches:
        names = tuple(a.name for a in batch.alerts)
        if settings.dry_run:
            if log.isEnabledFor(logging.INFO):
                rendered = message.render(notification, batch, settings)
                log.info("Dry run: would post to route %s (%d alerts): %s", batch.route.name, len(names),
                         json.dumps(rendered, ensure_ascii=False, separators=(",", ":")))
            results.append(Result(batch.route.name, names, "dry-run"))
            continue
        items = [Item(batch.route.name, identity(alert), alert, context) for alert in batch.alerts]
        batches_out.append((batch.route, names, items))
    return alertmanager.names(notification), len(notification.alerts), batches_out, results, notification.group_key


def describe(result: Result) -> Dict[str, Any]:
    """Return one route's outcome as the response body shows it: no URL, Rocket.Chat's reason."""
    shown: Dict[str, Any] = {"status": result.status, "alerts": len(result.alerts)}
    if result.answer is not None:
        shown["code"] = result.answer.status
    if result.status == "failed":
        shown["error"] = result.answer.error if result.answer else ""
        shown["retryable"] = bool(result.answer and result.answer.transient)
    elif result.status == "pending":
        last = ""
        if result.answer is not None and result.answer.status:
            last = f"; last answer: {result.answer.status} {result.answer.error}"
        elif result.answer is not None:
            last = f"; last attempt: {result.answer.error}"
        shown["error"] = f"{result.reason}{last}"
        shown["retryable"] = True
        shown["retry_in"] = round(result.retry_in, 1)
    return shown


def answer(names: List[str], processed: int, results: List[Result]) -> Reply:
    """Return the HTTP answer for a notification: 200 when every route's alert states were posted, else 5xx.

    502 when Rocket.Chat refused a post outright; 503 with Retry-After when a state is still
    waiting or being retried. Alertmanager retries both (it gives up only on 4xx), and a
    retry finds a state posted meanwhile without posting it again.
    """
    body: Dict[str, Any] = {
        "alerts": names,
        "processed": processed,
        "routes": {r.route: describe(r) for r in results},
        "status": "ok",
    }
    failed = [r for r in results if not r.ok]
    if not failed:
        return Reply(200, body)
    body["status"] = "error"
    body["error"] = "; ".join(_failure(r, body["routes"][r.route]) for r in failed)
    if any(r.status == "failed" for r in failed):
        return Reply(502, body, reason="rocketchat_refused")
    retry_in = max(r.retry_in for r in failed)
    log.warning("Answering 503, to be retried by Alertmanager: %s", body["error"])
    return Reply(503, body, (("Retry-After", str(min(300, max(1, math.ceil(retry_in))))),),
                 reason="rocketchat_unavailable")


def _failure(result: Result, shown: Mapping[str, Any]) -> str:
    if result.status == "failed" and result.answer is not None:
        return f"route {result.route}: Rocket.Chat answered {result.answer.status or 'nothing'}: {result.answer.error}"
    return f"route {result.route}: not delivered yet: {shown['error']}"


def health(version: str) -> Reply:
    """Return the seed-compatible /health answer."""
    return Reply(200, {"service": "rocketchat-webhook-adapter", "status": "healthy", "version": version})


REASONS = {400: "bad_request", 401: "unauthorized", 404: "bad_request", 405: "bad_request", 408: "request_timeout",
           411: "length_required", 413: "too_large", 414: "headers_too_large", 415: "unsupported_media_type",
           431: "headers_too_large", 500: "internal", 501: "bad_request"}


def error(status: int, text: str, headers: Tuple[Tuple[str, str], ...] = (), reason: str = "") -> Reply:
    """Return a JSON error answer."""
    return Reply(status, {"status": "error", "error": text}, headers, reason or REASONS.get(status, "bad_request"))


def encode(reply: Reply) -> bytes:
    """Return the JSON bytes of a reply body, as Flask's jsonify wrote them (sorted, compact)."""
    return json.dumps(reply.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"

