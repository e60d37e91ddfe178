"""`--check-config`'s description of the settings: KEY=VALUE lines in the table's order, then the routes as a
table; every secret masked."""

from __future__ import annotations

from typing import Dict, List

from .keys import KEYS, ROUTES, key_prefix
from .secrets import redact, redact_url
from .settings import TEMPLATE_NAME_KEYS, Settings, route_name


def describe(settings: Settings) -> List[str]:
    """Return the effective settings as KEY=VALUE lines, every secret masked."""
    values: Dict[str, object] = {}
    for key in KEYS:
        if not key.field or (key.name in ("TEMPLATE_FILES", *TEMPLATE_NAME_KEYS) and not settings.template_files):
            continue
        value = getattr(settings, key.field)
        values[key.name] = ("***" if value else "(not set)") if key.secret else key.kind.show(value) or key.blank
    values["LOG_LEVEL"] = settings.log_level
    for scheme, url in settings.proxies.items():
        values[f"{scheme.upper()}_PROXY"] = redact(url, settings.secrets())
    for name in ROUTES:
        route = settings.routes[name]  # valid settings (the only ones described) have every route
        values[f"ROCKETCHAT_WEBHOOK_{name.upper()}"] = (redact_url(route.url) or "(not set)") + (
            f"  # from {route.url_key}" if route.url_from else "")
        values[f"ROCKETCHAT_CHANNEL_{name.upper()}"] = route.channel
        values[f"MENTION_{name.upper()}"] = route.mention
    values["RECEIVERS"] = ",".join(settings.receivers)
    return [f"# config file: {settings.source or '(none)'}",
            *(f"{key.name}={values[key.name]}" for key in KEYS if key.name in values),
            *(line for receiver in settings.receivers for line in _hook_set(settings, receiver)),
            *route_table(settings)]


def _hook_set(settings: Settings, receiver: str) -> List[str]:
    """Return the lines of the keys a hook set sets of its own."""
    prefix = key_prefix(receiver)
    lines = []
    for name in ROUTES:
        route = settings.routes[route_name(receiver, name)]
        if route.url_key == f"{prefix}ROCKETCHAT_WEBHOOK_{name.upper()}":
            lines.append(f"{route.url_key}={redact_url(route.url)}")
        if route.channel and route.url_key.startswith(prefix):
            lines.append(f"{prefix}ROCKETCHAT_CHANNEL_{name.upper()}={route.channel}")
        if route.mention:
            lines.append(f"{prefix}MENTION_{name.upper()}={route.mention}")
    first = settings.routes[route_name(receiver, ROUTES[0])]
    return [*lines, f"{prefix}ROCKETCHAT_USERNAME={first.username}",
            f"{prefix}ROCKETCHAT_ICON_EMOJI={first.icon_emoji}"]


def route_table(settings: Settings) -> List[str]:
    """Return the routes as comment lines of a table: hook set, severity, hook (redacted), channel, mentions,
    and the key its URL comes from."""
    rows = [("set", "severity", "hook", "channel", "mention", "URL from")]
    for route in settings.routes.values():
        origin = route.url_key or "-"
        if route.url_from:
            same_set = route.url_from.rpartition("/")[0] == route.receiver
            origin += f" (fallback: {'DEFAULT_SEVERITY' if same_set else 'the default set'} route {route.url_from})"
        rows.append((route.receiver or "(default)", route.severity, redact_url(route.url) or "(not set)",
                     route.channel or "-", route.mention or "-", origin))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return ["# " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[5]
            for row in rows]
