"""The webhook pipeline: request body in, parsed notification, routed alerts, rendered
messages, delivery outcomes, HTTP answer out."""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any, Dict, List, Mapping, NamedTuple, Tuple

from ..messages.notification import Alert, Body, PayloadError, PayloadTooDense, names as alert_names, parse
from ..operations import logs
from ..messages import mentions
from ..messages.render import render as render_message
from ..messages import routing
from ..config.settings import Route, Settings
from ..config.values import mention_problem, mention_words
from ..delivery.deliverer import Deliverer, Result
from ..delivery.transport import one_line
from ..delivery.ledger import Context, Item, identity, sender_tag
from ..operations.metrics import Metrics
from .board import Board

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


def handle(body: Body, settings: Settings, deliverer: Deliverer, arrived: float, metrics: Metrics,
           board: Board, receiver: str = "", sender: str = "") -> Reply:
    """Return the answer to one POST /webhook (or /webhook/<receiver>, for that hook set) that arrived at
    `arrived` (monotonic) from the address `sender`, posting on the way; `board` records it for /status."""
    with _preparing:
        prepared = _prepare(body, settings, metrics, receiver, sender)
    if isinstance(prepared, Reply):
        board.refusal(prepared.status, str(prepared.body.get("error", "")),
                      f"/webhook/{receiver}" if receiver else "/webhook")
        return prepared
    # Only what the answer and the alert states need is kept from here on, not the parsed body, while
    # the posts are waited for.
    names, processed, batches, results, group_key, am_receiver = prepared
    if batches:
        results.extend(deliverer.deliver(batches, arrived + settings.delivery_deadline))
    reply = answer(names, processed, results)
    board.notification(group_key, names, {r.route: r.status for r in results}, f"{reply.status} {reply.body['status']}",
                       am_receiver, receiver, str(reply.body.get("error", "")))
    return reply


def _prepare(body: Body, settings: Settings, metrics: Metrics, receiver: str = "", sender: str = ""):
    """Return the refusal of `body`, or (answer's names, alert count, each route's alert states, results so
    far, groupKey, Alertmanager's receiver)."""
    try:
        notification = parse(body)
    except PayloadError as exc:  # too dense (413): no retry can help, and no Alertmanager sends it
        log.warning("Rejected a notification: %s", exc)
        return error(413 if isinstance(exc, PayloadTooDense) else 400, str(exc))
    plan = routing.plan(notification, settings, receiver)
    _tell_unknown(plan, settings, metrics)
    batches = plan.batches
    # Counts per route; a route whose alerts go to several channels (CHANNEL_LABEL) is told once.
    counts: Dict[str, int] = {}
    for batch in batches:
        counts[batch.route.name] = counts.get(batch.route.name, 0) + len(batch.alerts)
        for alert in batch.alerts:
            metrics.alerts.inc(status=alert.status, severity=batch.route.severity)
            if mentions.ANNOTATION in alert.annotations and alert.status == "firing":
                _check_mentions(alert)
    log.info(
        "Notification received: receiver=%s%s%s groupKey=%s status=%s alerts=%d routes=%s",
        notification.receiver_name or "-",
        f" path=/webhook/{receiver}" if receiver else "",
        # notification_reason (Alertmanager 0.32+) tells a reminder from a retry, which look the same.
        f" reason={json.dumps(notification.reason[:100], ensure_ascii=False)}" if notification.reason else "",
        notification.group_key or "-",
        notification.status,
        len(notification.alerts),
        ",".join(f"{name}:{count}" for name, count in counts.items()) or "-",
        extra=logs.fields("received", route=list(counts), group_key=notification.group_key,
                          outcome=notification.status),
    )
    per_route: Dict[str, Tuple[Route, List[str], List[Item]]] = {}
    dry_names: Dict[str, List[str]] = {}
    context = Context(notification.group_key, notification.external_url, notification.truncated_alerts,
                      notification.reason, notification.receiver, notification.group_labels or {},
                      sender_tag(sender, notification.external_url))
    for batch in batches:
        names = [a.name for a in batch.alerts]
        if settings.dry_run:
            if log.isEnabledFor(logging.INFO):
                rendered = render_message(notification, batch, settings)
                mentions.put_in_front(rendered, batch.route.mention, batch.alerts)
                log.info("Dry run: would post to route %s (%d alerts): %s", batch.route.name, len(names),
                         logs.Whole(json.dumps(rendered, ensure_ascii=False, separators=(",", ":"))))
            dry_names.setdefault(batch.route.name, []).extend(names)
            continue
        # One request's claim per route: the channels of a route's alerts part only in their posts.
        route, route_names, items = per_route.setdefault(
            batch.route.name, (settings.routes.get(batch.route.name) or batch.route._replace(channel=""), [], []))
        route_names.extend(names)
        items.extend(Item(batch.route.name, identity(alert), alert, context, batch.channel) for alert in batch.alerts)
    results = [Result(name, tuple(names), "dry-run") for name, names in dry_names.items()]
    batches_out: Batches = [(route, tuple(names), items) for route, names, items in per_route.values()]
    return (alert_names(notification), len(notification.alerts), batches_out, results, notification.group_key,
            notification.receiver_name)


def _tell_unknown(plan: routing.Plan, settings: Settings, metrics: Metrics) -> None:
    """Count the label values that named nothing known, and warn once per value."""
    for values, counter, what, line, label, known in (
            (plan.unknown_severities, metrics.unknown_severities, "severity",
             "An alert's %s label is %r, which is neither critical, warning nor info nor one of SEVERITY_ALIASES: "
             "routed as DEFAULT_SEVERITY=%s (a typo in an alerting rule?); told once per value, counted in "
             "rcwebhook_unknown_severity_total", settings.severity_label, settings.default_severity),
            (plan.unknown_receivers, metrics.unknown_receivers, settings.route_label,
             "An alert's %s (label or routeLabels) is %r, which is no hook set (RECEIVERS=%s): routed by the path "
             "it came to; told once per value, counted in rcwebhook_unknown_receiver_label_total",
             settings.route_label, ",".join(settings.receivers) or "(none)")):
        for value in values:
            seen = counter.count(value)
            if seen == "new":
                log.warning(line, label, value[:100], known)
            elif seen == "overflow":
                log.warning("More than %d distinct unknown %s values: further ones are counted as `other` and "
                            "not told", counter.max_values, what)


def unknown_receiver(name: str, settings: Settings, first: str) -> Reply:
    """Return the 404 answer to POST /webhook/<name> for a hook set RECEIVERS does not name, logging it when
    `first` says it is the first time ("new") or the first beyond those remembered ("overflow")."""
    shown = name[:64]
    if first == "new":
        log.error("Notifications came to /webhook/%s, but RECEIVERS names no hook set %r (it names: %s): answered "
                  "404, which Alertmanager does not retry; add the set to RECEIVERS or fix the receiver's url "
                  "in Alertmanager (told once per name)", shown, shown, ", ".join(settings.receivers) or "none")
    elif first == "overflow":
        log.error("Notifications came to more unknown /webhook/<name> paths than are told one by one; answered 404")
    return Reply(404, {"status": "error", "error": f"no hook set {shown!r}: RECEIVERS names "
                       f"{', '.join(settings.receivers) or 'none'}; POST /webhook uses the default set",
                       "receivers": list(settings.receivers)}, reason="unknown_receiver")


def _check_mentions(alert: Alert) -> None:
    """Log each word of a firing alert's `mention` annotation that is not a mention: it is left out."""
    for word in mention_words(mentions.annotation(alert))[1]:
        log.warning("Alert %s, %s annotation: %s; left out of the message", one_line(alert.name),
                    mentions.ANNOTATION, one_line(mention_problem(word)))


def describe(result: Result) -> Dict[str, Any]:
    """Return one route's outcome as the response body shows it: no URL, Rocket.Chat's reason."""
    shown: Dict[str, Any] = {"status": result.status, "alerts": len(result.alerts)}
    answer = result.answer
    if answer is not None:
        shown["code"] = answer.status
    if result.status == "failed":
        shown.update(error=answer.error if answer else "", retryable=bool(answer and answer.transient))
    elif result.status == "pending":
        last = "" if answer is None else f"; last answer: {answer.status} {answer.error}" if answer.status \
            else f"; last attempt: {answer.error}"
        shown.update(error=f"{result.reason}{last}", retryable=True, retry_in=round(result.retry_in, 1))
    return shown


def answer(names: List[str], processed: int, results: List[Result]) -> Reply:
    """Return the HTTP answer for a notification: 200 when every route's alert states were posted, else 502
    (refused) or 503 (still waiting), both of which Alertmanager retries (see delivery/deliverer.py)."""
    body: Dict[str, Any] = {"alerts": names, "processed": processed, "status": "ok",
                            "routes": {r.route: describe(r) for r in results}}
    failed = [r for r in results if not r.ok]
    if not failed:
        return Reply(200, body)
    body["status"] = "error"
    body["error"] = "; ".join(_failure(r, body["routes"][r.route]) for r in failed)
    if any(r.status == "failed" for r in failed):
        return Reply(502, body, reason="rocketchat_refused")
    log.warning("Answering 503, to be retried by Alertmanager: %s", body["error"])
    retry_after = min(300, max(1, math.ceil(max(r.retry_in for r in failed))))
    return Reply(503, body, (("Retry-After", str(retry_after)),), reason="rocketchat_unavailable")


def _failure(result: Result, shown: Mapping[str, Any]) -> str:
    if result.status == "failed" and result.answer is not None:
        return f"route {result.route}: Rocket.Chat answered {result.answer.status or 'nothing'}: {result.answer.error}"
    return f"route {result.route}: not delivered yet: {shown['error']}"


def health(version: str) -> Reply:
    """Return the seed-compatible /health answer."""
    return Reply(200, {"service": "rocketchat-webhook-adapter", "status": "healthy", "version": version})


REASONS = {401: "unauthorized", 408: "request_timeout", 411: "length_required", 413: "too_large",
           414: "headers_too_large", 415: "unsupported_media_type", 431: "headers_too_large", 500: "internal"}


def error(status: int, text: str, headers: Tuple[Tuple[str, str], ...] = (), reason: str = "") -> Reply:
    """Return a JSON error answer."""
    return Reply(status, {"status": "error", "error": text}, headers, reason or REASONS.get(status, "bad_request"))


def to_json(data: Mapping[str, Any]) -> bytes:
    """Return the JSON bytes of an answer's body, as Flask's jsonify wrote them (sorted, compact)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"

