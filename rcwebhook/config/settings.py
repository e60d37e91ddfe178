"""Settings: one immutable object, built and validated once from the keys' values (keys.py: which `build` reads how)."""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from datetime import tzinfo
from types import MappingProxyType
from typing import Any, Callable, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Set, Tuple
from urllib.parse import urlsplit

from . import tls
from .keys import DEFAULTS, KEYS, PROXY_KEYS, ROUTES, URL_KEYS, key_prefix, kind_of, receiver_names, set_key_suffix, \
    set_keys
from .secrets import redact, url_token
from .values import TEXT

EX_CONFIG = 78
MAX_DEDUP_WINDOW = 60.0
MAX_RECEIVERS = 100
# The problem of a configuration that sets no URL at all, as a fresh install has it.
NO_URL = "no Rocket.Chat webhook URL is set"
TEMPLATE_NAME_KEYS = ("TEMPLATE_TEXT", "TEMPLATE_ATTACHMENT_TITLE", "TEMPLATE_ATTACHMENT_TEXT")
_RECEIVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """The configuration is unusable; `problems` lists every reason, each a line an operator can act on."""

    def __init__(self, problems: List[str], warnings: Sequence[str] = (), secrets: Iterable[str] = ()) -> None:
        # Redacted here, once, for everyone who shows them: --check-config, the start, a reload.
        secrets = tuple(secrets)
        self.problems = [redact(problem, secrets) for problem in problems]
        self.warnings = [redact(warning, secrets) for warning in warnings]
        super().__init__("\n".join(self.problems))


class Route(NamedTuple):
    """Where the alerts of one hook set and severity go."""

    name: str  # the severity for the default set (`critical`), else SET/SEVERITY (`db/critical`)
    url: str
    channel: str = ""
    url_from: str = ""  # the route whose URL this one borrows, when it has none of its own
    username: str = ""
    icon_emoji: str = ""
    url_key: str = ""  # the key the URL was read from: ROCKETCHAT_WEBHOOK_INFO, DB_ROCKETCHAT_WEBHOOK_WARNING
    mention: str = ""  # the mentions its firing messages make, checked, separated by spaces

    @property
    def receiver(self) -> str:
        """Return the hook set's name; "" for the default set."""
        return self.name.rpartition("/")[0]

    @property
    def severity(self) -> str:
        return self.name.rpartition("/")[2]


def route_name(receiver: str, severity: str) -> str:
    """Return the name of a route: its severity in the default set, SET/SEVERITY in another."""
    return f"{receiver}/{severity}" if receiver else severity


class Settings(NamedTuple):
    """Everything rcwebhook needs to run, validated. The fields named in the table of keys hold their key's value."""

    host: str
    port: int
    routes: Mapping[str, Route]  # by name: the default set's, then each set's
    receivers: Tuple[str, ...]  # the hook sets besides the default one, as RECEIVERS names them
    route_label: str
    channel_label: str
    default_severity: str
    severity_label: str
    severity_aliases: Mapping[str, str]
    username: str
    icon_emoji: str
    max_alerts_per_message: int
    timezone: tzinfo  # the zone of the times messages show
    delivery_timeout: float
    delivery_deadline: float
    template_cpu_budget: float  # seconds of CPU time the templates may take for one message
    rate_limit: Tuple[int, float]  # posts per seconds, per hook; (0, 0) is off
    dedup_window: float  # seconds: a copy of a posted state is not posted again; later, a reminder is
    state_dir: str  # where the state database lives; "" keeps the state in memory only
    threads: bool  # follow-ups in the thread of an incident's first message
    thread_ttl: float  # seconds a thread is kept after its last post
    dry_run: bool
    log_level: str  # LOG_LEVEL, else DEBUG when DEBUG=true, else INFO
    log_file: str
    log_max_bytes: int
    log_backup_count: int
    max_body_bytes: int
    request_timeout: float
    api_key: str
    allow_unauthenticated: bool
    max_connections: int
    client_rate_limit: float  # requests per second per client address; 0 is off
    client_rate_burst: int
    client_rate_limit_loopback: bool
    tls_cert_file: str
    tls_key_file: str
    rocketchat_ca_file: str
    # urllib's form: {"https": URL, "http": URL, "no": "host,..."}, only the ones set
    proxies: Mapping[str, str]
    template_files: str
    template_text: str
    template_attachment_title: str
    template_attachment_text: str
    template_compat: str  # the Alertmanager whose template functions are followed
    source: str = ""  # the env file read, or "" for none
    # The templates of TEMPLATE_FILES, compiled by the messages layer when the settings are built (see build's
    # `compile_templates`); None: the built-in messages.
    templates: Any = None

    def secrets(self) -> Tuple[str, ...]:
        """Return every secret string in these settings, for redaction."""
        tokens = {url_token(r.url) for r in self.routes.values()} | {self.api_key}
        tokens |= {urlsplit(url).password or "" for scheme, url in self.proxies.items() if scheme != "no"}
        return tuple(sorted(t for t in tokens if t))


class Where:
    """Where each key's value came from (file:line, the environment, the file), to name in its problems."""

    def __init__(self, general: str = "") -> None:
        self.general = general  # the config file; "" names nothing (Settings built from values)
        self.origins: Dict[str, str] = {}
        self.broken: set = set()  # keys on a line with an error: problems that follow from it are not told

    def unsure(self, *keys: str) -> bool:
        """Return whether a problem about `keys` may only follow from a line already reported."""
        return any(key in self.broken for key in keys)

    def say(self, text: str, *keys: str) -> str:
        """Return `text` prefixed with where the first of `keys` with a known origin was set."""
        prefix = next((self.origins[key] for key in keys if key in self.origins), self.general)
        return f"{prefix}: {text}" if prefix else text


class _Reader:
    """Each key's value read by its kind, once; a bad value adds its problems, where it was set, and reads as
    the key's default."""

    def __init__(self, raw: Mapping[str, str], errors: List[str], where: Where) -> None:
        self.raw, self.errors, self.where = raw, errors, where
        self.done: Dict[str, Any] = {}
        self.failed: Set[str] = set()

    def __call__(self, key: str) -> Any:
        if key in self.done:
            return self.done[key]
        kind = kind_of(key) or TEXT
        default = DEFAULTS.get(key, "")
        text = self.raw.get(key, "")
        if getattr(kind, "blank_is_default", False) and not text.strip():
            text = default
        value, problems = kind.read(key, text)
        if problems:
            self.errors.extend(self.where.say(problem, key) for problem in problems)
            self.failed.add(key)
            value = kind.read(key, default)[0]
        self.done[key] = value
        return value


# What compiles the templates TEMPLATE_FILES holds (the messages layer's, which config cannot import): it
# returns them, adding each problem to the list.
TemplateCompiler = Callable[["Settings", List[str]], Any]


def build(values: Mapping[str, str], errors: List[str], warnings: List[str], source: str = "",
          where: Optional[Where] = None, compile_templates: Optional[TemplateCompiler] = None) -> Settings:
    """Return Settings from raw key values over the defaults, adding every problem found to `errors`.

    With `compile_templates`, the settings hold the templates TEMPLATE_FILES names, compiled, and their
    problems are among the others; without, the templates are not looked at."""
    where = where or Where()
    raw = dict(DEFAULTS)
    raw.update(values)
    read = _Reader(raw, errors, where)

    receivers = _receivers(raw, errors, where)
    errors.extend(_stray_set_keys(values, receivers, where))
    for key in set_keys(receivers):
        raw.setdefault(key, "")
    read("SEVERITY_ALIASES")
    default_severity = read("DEFAULT_SEVERITY")
    routes = _routes(read, default_severity, receivers, errors, where)
    if not read("DRY_RUN") and routes is not None and not any(routes[name].url for name in ROUTES) \
            and not where.unsure(*URL_KEYS, "DEFAULT_SEVERITY", "DRY_RUN"):
        errors.append(where.say(
            f"{NO_URL}: set ROCKETCHAT_WEBHOOK_"
            f"{default_severity.upper()} (used for every severity that has no URL of its own), "
            "or DRY_RUN=true to only log the messages"
        ))
    log_level = raw["LOG_LEVEL"].strip().upper() or ("DEBUG" if read("DEBUG") else "INFO")  # DEBUG's one effect
    if log_level not in _LOG_LEVELS:
        errors.append(where.say(f"LOG_LEVEL={raw['LOG_LEVEL']!r} is not one of {', '.join(_LOG_LEVELS)}",
                                "LOG_LEVEL"))
    host = read("HOST")
    if not host and not where.unsure("HOST"):
        errors.append(where.say("HOST is empty: set an address to listen on, such as 127.0.0.1", "HOST"))
    allow_unauthenticated = read("ALLOW_UNAUTHENTICATED")
    if not where.unsure("HOST", "API_KEY", "ALLOW_UNAUTHENTICATED"):
        errors.extend(where.say(problem, "HOST")
                      for problem in exposure_problems(host, read("API_KEY"), allow_unauthenticated))
    errors.extend(_tls_problems(read, where))
    for route in (routes or {}).values():
        parts = urlsplit(route.url)
        if route.url and not route.url_from and parts.scheme == "http" and not is_loopback(parts.hostname or ""):
            warnings.append(where.say(f"{route.url_key} uses plain http to {parts.hostname}: its token crosses the "
                                      "network readable by anyone on the path; use https", route.url_key))
    read("TIMEZONE")
    read("TEMPLATE_COMPAT")
    fields = {key.field: read(key.name) for key in KEYS if key.field}  # the simple keys, in the table's order
    fields["dedup_window"] = _dedup_window(fields["dedup_window"], warnings, where)
    proxies = MappingProxyType({key[:-len("_PROXY")].lower(): read(key) for key in PROXY_KEYS if read(key)})
    if not fields["template_files"]:
        errors.extend(f"{key}={read(key)!r} names a template, but TEMPLATE_FILES is not set"
                      for key in TEMPLATE_NAME_KEYS if read(key))
    settings = Settings(**fields, routes=MappingProxyType(routes or {}), receivers=receivers, log_level=log_level,
                        proxies=proxies, source=source)
    if compile_templates is not None and settings.template_files:
        settings = settings._replace(templates=compile_templates(settings, errors))
    return settings


def _dedup_window(value: float, warnings: List[str], where: Where) -> float:
    """Return DEDUP_WINDOW, at most a minute: Alertmanager's reminders come at repeat_interval, which may
    be as short as a minute, and must be posted."""
    if value > MAX_DEDUP_WINDOW:
        warnings.append(where.say(f"DEDUP_WINDOW={value:g} is over {MAX_DEDUP_WINDOW:g}: reminders sent more often "
                                  f"than that (repeat_interval) would not be posted; using {MAX_DEDUP_WINDOW:g}",
                                  "DEDUP_WINDOW"))
        value = MAX_DEDUP_WINDOW
    return value


def _tls_problems(read: _Reader, where: Where) -> List[str]:
    """Return why the TLS files cannot be used, loading them as the daemon will (tls module)."""
    problems = []
    cert, key, ca_file = read("TLS_CERT_FILE"), read("TLS_KEY_FILE"), read("ROCKETCHAT_CA_FILE")
    if bool(cert) != bool(key) and not where.unsure("TLS_CERT_FILE", "TLS_KEY_FILE"):
        problems.append(where.say("TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve TLS, or neither",
                                  "TLS_CERT_FILE" if cert else "TLS_KEY_FILE"))
    unreadable = [name for name in ("TLS_CERT_FILE", "TLS_KEY_FILE", "ROCKETCHAT_CA_FILE")
                  if read(name) and not os.access(read(name), os.R_OK)]
    problems.extend(where.say(f"{name}={read(name)!r} cannot be read", name) for name in unreadable)
    import ssl

    if ca_file and "ROCKETCHAT_CA_FILE" not in unreadable:
        try:
            tls.client_context(ca_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(where.say(f"ROCKETCHAT_CA_FILE={ca_file!r} holds no usable CA certificate in PEM "
                                      f"form: {tls.problem(exc)}", "ROCKETCHAT_CA_FILE"))
    if cert and key and {"TLS_CERT_FILE", "TLS_KEY_FILE"}.isdisjoint(unreadable):
        try:
            tls.server_context(cert, key)
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(where.say(f"TLS_CERT_FILE={cert!r} and TLS_KEY_FILE={key!r} are not a PEM certificate "
                                      f"chain and its private key: {tls.problem(exc)}", "TLS_CERT_FILE"))
    return problems


@functools.lru_cache(maxsize=1024)  # asked for every client address, which repeat
def is_loopback(host: str) -> bool:
    """Return whether `host` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_problems(host: str, api_key: str, allow_unauthenticated: bool) -> List[str]:
    """Return the problem with listening on `host` without authentication, if any (checked at start and reload)."""
    if host and not is_loopback(host) and not api_key and not allow_unauthenticated:
        return [f"HOST={host} lets other hosts reach rcwebhook, and API_KEY is not set: set API_KEY (or "
                "API_KEY_FILE) and send it from Alertmanager's http_config, or set ALLOW_UNAUTHENTICATED=true"]
    return []


def _receivers(raw: Mapping[str, str], errors: List[str], where: Where) -> Tuple[str, ...]:
    """Return the hook sets RECEIVERS names, each checked."""
    names: List[str] = []
    prefixes: Dict[str, str] = {}
    for name in receiver_names(raw["RECEIVERS"]):
        if not _RECEIVER_NAME.fullmatch(name):
            errors.append(where.say(f"RECEIVERS has {name!r}: a hook set's name is 1 to 64 letters, digits, - and _ "
                                    "(it is the end of the path /webhook/NAME)", "RECEIVERS"))
            continue
        prefix = key_prefix(name)
        if prefix in prefixes:
            errors.append(where.say(f"RECEIVERS has {prefixes[prefix]!r} and {name!r}, whose keys would both start "
                                    f"with {prefix}: rename one", "RECEIVERS"))
            continue
        prefixes[prefix] = name
        names.append(name)
    if len(names) > MAX_RECEIVERS:
        errors.append(where.say(f"RECEIVERS names {len(names)} hook sets; at most {MAX_RECEIVERS}", "RECEIVERS"))
        names = names[:MAX_RECEIVERS]
    return tuple(names)


def _stray_set_keys(values: Mapping[str, str], receivers: Sequence[str], where: Where) -> List[str]:
    """Return a problem for each prefixed key of a hook set that RECEIVERS does not name."""
    known = {key_prefix(name) for name in receivers}
    problems = []
    for key in values:
        suffix = set_key_suffix(key)
        if suffix and key[:-len(suffix)] not in known:
            name = key[:-len(suffix) - 1].lower()
            problems.append(where.say(
                f"{key} is a key of the hook set {name!r}, which RECEIVERS does not name: add it "
                f"(RECEIVERS={','.join([*receivers, name])}), or remove the key", key))
    return problems


def _routes(read: _Reader, default_severity: str, receivers: Sequence[str], errors: List[str], where: Where
            ) -> Optional[Dict[str, Route]]:
    """Return the routes of every hook set, each with its URL or the one it falls back to; None for a bad URL.

    A route without a URL of its own takes its set's DEFAULT_SEVERITY URL; in a hook set other than the
    default one, a route still without one takes the default set's route of its severity (URL, and its
    channel when the set names none)."""
    routes: Dict[str, Route] = {}
    emoji = read("ROCKETCHAT_ICON_EMOJI")
    username = read("ROCKETCHAT_USERNAME")
    for receiver in ("",) + tuple(receivers):
        prefix = key_prefix(receiver)
        url_keys = {name: f"{prefix}ROCKETCHAT_WEBHOOK_{name.upper()}" for name in ROUTES}
        own = {name: read(key) for name, key in url_keys.items()}
        # A route's mentions are its own: one that borrows another route's URL does not borrow them.
        mention = {name: read(f"{prefix}MENTION_{name.upper()}") for name in ROUTES}
        if read.failed & set(url_keys.values()):
            return None
        set_username = read(f"{prefix}ROCKETCHAT_USERNAME") or username
        set_emoji = (read(f"{prefix}ROCKETCHAT_ICON_EMOJI") if receiver else "") or emoji
        for name in ROUTES:
            url, url_from, url_key = own[name], "", url_keys[name]
            channel = read(f"{prefix}ROCKETCHAT_CHANNEL_{name.upper()}")
            if not url and own[default_severity]:
                url, url_from, url_key = own[default_severity], route_name(receiver, default_severity), \
                    url_keys[default_severity]
            elif not url and receiver:
                borrowed = routes[name]
                url, url_from, url_key = borrowed.url, borrowed.name, borrowed.url_key
                channel = channel or borrowed.channel
            routes[route_name(receiver, name)] = Route(route_name(receiver, name), url, channel, url_from,
                                                       set_username, set_emoji, url_key if url else "",
                                                       mention[name])
        if not receiver and any(own.values()) and not own[default_severity] \
                and not where.unsure(*URL_KEYS):
            missing = [n for n in ROUTES if not own[n]]
            errors.append(where.say(
                f"ROCKETCHAT_WEBHOOK_{default_severity.upper()} is not set, so alerts of severity "
                f"{', '.join(missing)} would have nowhere to go: set it, or set DEFAULT_SEVERITY "
                f"to a severity that has a URL ({', '.join(n for n in ROUTES if own[n])})", "DEFAULT_SEVERITY"
            ))
    return routes
