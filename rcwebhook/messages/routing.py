"""Routing: each alert goes to the route of its hook set and severity, and to a channel.

The hook set is the one the alert's ROUTE_LABEL label names, else the one Alertmanager's
`routeLabels` (0.34+) names under that label, else the one of the path the notification came to
(POST /webhook/<set>; the default set for POST /webhook). A name that is no hook set counts as
absent. The severity is the alert's severity label, an alias of it, or DEFAULT_SEVERITY. The
channel is the route's, unless the alert's CHANNEL_LABEL label names another.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Tuple

from ..config.keys import ROUTES
from ..config.settings import Route, Settings, route_name
from .notification import Alert, Notification


class Batch(NamedTuple):
    """The alerts of one notification that go to one route and channel, in their original order."""

    route: Route  # its channel is the one the alerts go to (CHANNEL_LABEL's, when they name one)
    alerts: Tuple[Alert, ...]
    channel: str = ""  # the channel CHANNEL_LABEL names, when it does: it overrides the route's


class Plan(NamedTuple):
    """The batches of a notification, and the label values that named nothing known."""

    batches: List[Batch]
    unknown_receivers: Tuple[str, ...]  # ROUTE_LABEL values that are no hook set, one per alert
    unknown_severities: Tuple[str, ...]  # severity values neither a severity nor an alias, one per alert


def severity_of(alert: Alert, settings: Settings) -> str:
    """Return the severity of `alert`: its severity label, an alias of it, or the default."""
    value = alert.labels.get(settings.severity_label, "").strip().lower()
    if value in ROUTES:
        return value
    return settings.severity_aliases.get(value, settings.default_severity)


def unknown_severity(alert: Alert, settings: Settings) -> str:
    """Return the alert's severity value when it is set but neither a severity nor an alias of one, else ""."""
    value = alert.labels.get(settings.severity_label, "").strip().lower()
    return value if value and value not in ROUTES and value not in settings.severity_aliases else ""


def plan(notification: Notification, settings: Settings, receiver: str = "") -> Plan:
    """Return one Batch per hook set, severity and channel that has alerts (hook sets in RECEIVERS order
    after the default one, then severities in the order critical, warning, info), for a notification that
    came to the path of hook set `receiver` ("" for the default set)."""
    order = {name: i for i, name in enumerate(("",) + tuple(settings.receivers))}
    sets = (notification.route_labels or {}).get(settings.route_label, "").strip()
    unknown_receivers: List[str] = []
    path_set = sets if sets and sets in order else receiver
    grouped: Dict[Tuple[str, str, str], List[Alert]] = {}
    for alert in notification.alerts:
        named = alert.labels.get(settings.route_label, "").strip()
        if named and named not in order:
            unknown_receivers.append(named)
        elif not named and sets and sets not in order:
            unknown_receivers.append(sets)
        chosen = named if named and named in order else path_set
        channel = alert.labels.get(settings.channel_label, "").strip()
        grouped.setdefault((chosen, severity_of(alert, settings), channel), []).append(alert)
    batches = []
    for (chosen, severity, channel), alerts in sorted(
            grouped.items(), key=lambda item: (order.get(item[0][0], 0), ROUTES.index(item[0][1]), item[0][2])):
        name = route_name(chosen, severity)
        route = settings.routes.get(name) or Route(name, "")
        if channel:
            route = route._replace(channel=channel)
        batches.append(Batch(route, tuple(alerts), channel))
    unknown_severities = filter(None, (unknown_severity(alert, settings) for alert in notification.alerts))
    return Plan(batches, tuple(unknown_receivers), tuple(unknown_severities))
