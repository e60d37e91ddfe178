"""Routing: each alert goes to the route of its own severity label."""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Tuple

from .alertmanager import Alert, Notification
from .config import ROUTES, Route, Settings


class Batch(NamedTuple):
    """The alerts of one notification that go to one route, in their original order."""

    route: Route
    alerts: Tuple[Alert, ...]


def severity_of(alert: Alert, settings: Settings) -> str:
    """Return the route name for `alert`: its severity label, an alias of it, or the default."""
    value = alert.labels.get(settings.severity_label, "").strip().lower()
    if value in ROUTES:
        return value
    return settings.severity_aliases.get(value, settings.default_severity)


def route(notification: Notification, settings: Settings) -> List[Batch]:
    """Return one Batch per route that has alerts, in the order critical, warning, info."""
    grouped: Dict[str, List[Alert]] = {name: [] for name in ROUTES}
    for alert in notification.alerts:
        grouped[severity_of(alert, settings)].append(alert)
    return [
        Batch(settings.routes.get(name) or Route(name, ""), tuple(alerts))
        for name, alerts in grouped.items()
        if alerts
    ]
