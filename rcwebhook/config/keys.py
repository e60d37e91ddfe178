"""The table of keys: every key rcwebhook reads, with its default, how its value is read, what it means.

One entry per key drives the defaults, the reading and checking of its value, `--check-config`'s
lines, `--help`'s list of keys and the unknown-key suggestions; docs/configuration.md, the man page
and examples/rcwebhook.env name exactly these keys (tests/test_docs.py checks it). A key with a
Settings field is read by its kind alone; the others (the routes' keys, RECEIVERS, LOG_LEVEL, the
proxies) are read by `settings.build`, which checks what spans several keys.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Iterable, List, Mapping, NamedTuple, Optional

from . import values

ROUTES = ("critical", "warning", "info")
URL_KEYS = tuple(f"ROCKETCHAT_WEBHOOK_{name.upper()}" for name in ROUTES)
DEFAULT_COMPAT = "0.28"  # amtemplate.data.DEFAULT_COMPAT, named here so that reading it loads no template engine
DEFAULT_SEVERITY_ALIASES = (
    "page:critical,pager:critical,emergency:critical,alert:critical,crit:critical,"
    "fatal:critical,error:critical,err:critical,high:critical,disaster:critical,"
    "warn:warning,medium:warning,average:warning,"
    "low:info,none:info,debug:info,notice:info,informational:info,information:info,ok:info"
)


class Key(NamedTuple):
    """One key of the configuration."""

    name: str
    default: str
    section: str  # where `--help` lists it
    doc: str  # one line, for `--help`
    kind: Optional[values.Kind] = None  # how its value is read and shown; None: read as text by settings.build
    field: str = ""  # the Settings field its value fills; "": build reads it with others
    secret: bool = False  # never shown, never logged
    restart: bool = False  # a reload keeps the running value until the next restart
    blank: str = ""  # what `--check-config` shows for an empty value


KEYS = (
    Key("HOST", "127.0.0.1", "server", "address to listen on", values.TEXT, "host", restart=True),
    Key("PORT", "8093", "server", "port to listen on (0: any free port)", values.Whole(0, 65535), "port",
        restart=True),
    *(Key(key, "", "hooks", f"incoming-webhook URL for {name} alerts", values.WEBHOOK_URL, secret=True)
      for key, name in zip(URL_KEYS, ROUTES)),
    *(Key(f"ROCKETCHAT_CHANNEL_{name.upper()}", "", "hooks",
          f"post {name} alerts to this channel instead of the integration's own") for name in ROUTES),
    *(Key(f"MENTION_{name.upper()}", "", "hooks", f"whom a firing {name} message mentions: @USER @here",
          values.MENTIONS) for name in ROUTES),
    Key("ROCKETCHAT_USERNAME", "", "hooks", "display name of the posts", values.TEXT, "username"),
    Key("ROCKETCHAT_ICON_EMOJI", "", "hooks", "emoji of the posts, such as :bell:", values.EMOJI, "icon_emoji"),
    Key("RECEIVERS", "", "hook sets", "other hook sets, such as db,web, each received on POST /webhook/NAME"),
    Key("ROUTE_LABEL", "rocketchat_receiver", "hook sets", "the alert label that names an alert's hook set",
        values.LABEL, "route_label"),
    Key("CHANNEL_LABEL", "rocketchat_channel", "hook sets", "the alert label that names an alert's channel",
        values.LABEL, "channel_label"),
    Key("DEFAULT_SEVERITY", "warning", "messages", "the route of alerts whose severity is missing or unknown",
        values.OneOf(ROUTES), "default_severity"),
    Key("SEVERITY_LABEL", "severity", "messages", "the label that holds the severity", values.LABEL,
        "severity_label"),
    Key("SEVERITY_ALIASES", DEFAULT_SEVERITY_ALIASES, "messages", "other severity names, ALIAS:SEVERITY,...",
        values.Aliases(ROUTES), "severity_aliases"),
    Key("MAX_ALERTS_PER_MESSAGE", "20", "messages", "attachments per message; the rest are counted",
        values.Whole(1, 100), "max_alerts_per_message"),
    Key("TIMEZONE", "UTC", "messages", "time zone of the times messages show", values.ZONE, "timezone"),
    Key("DELIVERY_TIMEOUT", "5", "delivery", "seconds to connect to Rocket.Chat and send one post",
        values.Seconds(0.1, 300), "delivery_timeout"),
    Key("DELIVERY_DEADLINE", "10", "delivery", "seconds from a notification's arrival to its answer",
        values.Seconds(0.1, 3600), "delivery_deadline"),
    Key("ROCKETCHAT_RATE_LIMIT", "10/60", "delivery", "posts per seconds to each hook (0: no pacing)", values.RATE,
        "rate_limit"),
    Key("DEDUP_WINDOW", "60", "delivery", "seconds in which another copy of a posted alert state is not posted",
        values.Seconds(0, 86400), "dedup_window"),
    Key("STATE_DIR", "", "delivery", "directory of the state database (empty: memory only)", values.TEXT,
        "state_dir", blank="(none: state in memory only)"),
    Key("THREADS", "true", "delivery", "follow-ups in the thread of an incident's first message", values.SWITCH,
        "threads"),
    Key("THREAD_TTL", "604800", "delivery", "seconds a thread is kept after its last post",
        values.Seconds(60, 90 * 86400), "thread_ttl"),
    Key("DRY_RUN", "false", "delivery", "render and log messages instead of posting them", values.SWITCH,
        "dry_run"),
    Key("DEBUG", "false", "logging", "log every request (LOG_LEVEL DEBUG unless it is set)", values.SWITCH),
    Key("LOG_LEVEL", "", "logging", "DEBUG, INFO, WARNING, ERROR or CRITICAL (empty: INFO)"),
    Key("LOG_FILE", "", "logging", "also log to this file, rotated", values.TEXT, "log_file"),
    Key("LOG_MAX_BYTES", "10485760", "logging", "rotate LOG_FILE at this size (0: never)", values.Whole(0, 2**40),
        "log_max_bytes"),
    Key("LOG_BACKUP_COUNT", "5", "logging", "rotated files kept", values.Whole(0, 1000), "log_backup_count"),
    Key("MAX_BODY_BYTES", "4194304", "server", "largest request body", values.Whole(1024, 2**31), "max_body_bytes"),
    Key("REQUEST_TIMEOUT", "10", "server", "seconds a client may take to send a request",
        values.Seconds(0.1, 3600), "request_timeout"),
    Key("API_KEY", "", "server", "the key /webhook requires, when set", values.TEXT, "api_key", secret=True),
    Key("ALLOW_UNAUTHENTICATED", "false", "server", "allow a non-loopback HOST without API_KEY", values.SWITCH,
        "allow_unauthenticated"),
    Key("MAX_CONNECTIONS", "64", "server", "requests served at once", values.Whole(1, 10000), "max_connections"),
    Key("CLIENT_RATE_LIMIT", "20", "server", "/webhook requests per second per client address (0: off)",
        values.Seconds(0, 1e6), "client_rate_limit"),
    Key("CLIENT_RATE_BURST", "100", "server", "requests a client may send at once", values.Whole(1, 1000000),
        "client_rate_burst"),
    Key("CLIENT_RATE_LIMIT_LOOPBACK", "false", "server", "apply CLIENT_RATE_LIMIT to loopback clients too",
        values.SWITCH, "client_rate_limit_loopback"),
    Key("TLS_CERT_FILE", "", "TLS", "serve HTTPS with this certificate chain", values.TEXT, "tls_cert_file",
        restart=True),
    Key("TLS_KEY_FILE", "", "TLS", "and this private key", values.TEXT, "tls_key_file", restart=True),
    Key("ROCKETCHAT_CA_FILE", "", "TLS", "also trust this CA for Rocket.Chat's certificate", values.TEXT,
        "rocketchat_ca_file"),
    # The lower-case forms (https_proxy...) are read too.
    Key("HTTPS_PROXY", "", "proxies", "the HTTP proxy of posts to https:// hooks", values.PROXY_URL),
    Key("HTTP_PROXY", "", "proxies", "the HTTP proxy of posts to http:// hooks", values.PROXY_URL),
    Key("NO_PROXY", "", "proxies", "hosts reached without the proxy, comma-separated", values.TEXT),
    Key("TEMPLATE_FILES", "", "templates", "globs of Go template files (Alertmanager's language)", values.TEXT,
        "template_files"),
    Key("TEMPLATE_TEXT", "", "templates", "the template that renders a message's text", values.TEXT,
        "template_text"),
    Key("TEMPLATE_ATTACHMENT_TITLE", "", "templates", "the template that renders each attachment's title",
        values.TEXT, "template_attachment_title"),
    Key("TEMPLATE_ATTACHMENT_TEXT", "", "templates", "the template that renders each attachment's text",
        values.TEXT, "template_attachment_text"),
    Key("TEMPLATE_CPU_BUDGET", "0.25", "templates", "seconds of CPU time the templates may take for one post",
        values.Seconds(0.01, 60), "template_cpu_budget"),
    # Also for `rcwebhook template render`; RCWEBHOOK_TEMPLATE_COMPAT in the environment is read as an alias.
    Key("TEMPLATE_COMPAT", DEFAULT_COMPAT, "templates", "the Alertmanager whose template functions are followed",
        values.Compat(DEFAULT_COMPAT), "template_compat"),
    # Each secret can also come from KEY_FILE, or a systemd credential named KEY ($CREDENTIALS_DIRECTORY/KEY).
    *(Key(f"{key}_FILE", "", "secrets", f"a file holding {key} instead") for key in (*URL_KEYS, "API_KEY")),
)
BY_NAME: Mapping[str, Key] = MappingProxyType({key.name: key for key in KEYS})
DEFAULTS: Mapping[str, str] = MappingProxyType({key.name: key.default for key in KEYS})

PROXY_KEYS = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")
# The keys each hook set named in RECEIVERS has of its own, prefixed with its name in upper case
# (`-` as `_`): DB_ROCKETCHAT_WEBHOOK_CRITICAL. The default set's are these keys unprefixed. A
# set's route is built from them exactly as the default set's is.
SET_KEYS = (
    *URL_KEYS,
    *(f"{key}_FILE" for key in URL_KEYS),
    *(f"ROCKETCHAT_CHANNEL_{name.upper()}" for name in ROUTES),
    *(f"MENTION_{name.upper()}" for name in ROUTES),
    "ROCKETCHAT_USERNAME",
    "ROCKETCHAT_ICON_EMOJI",
)


def key_prefix(receiver: str) -> str:
    """Return the prefix of a hook set's keys: `DB_` for `db`, `TEAM_WEB_` for `team-web`, "" for the default."""
    return receiver.upper().replace("-", "_") + "_" if receiver else ""


def receiver_names(text: str) -> List[str]:
    """Return the hook set names RECEIVERS lists, as written, without checking them."""
    return list(dict.fromkeys(filter(None, (name.strip() for name in text.split(",")))))


def set_keys(receivers: Iterable[str]) -> List[str]:
    """Return every key of the hook sets `receivers` names."""
    return [key_prefix(name) + key for name in receivers for key in SET_KEYS]


def set_key_suffix(key: str) -> str:
    """Return the set key that `key` is a prefixed form of (ROCKETCHAT_WEBHOOK_INFO for DB_ROCKETCHAT_WEBHOOK_INFO),
    or ""."""
    return "" if key in BY_NAME else next((k for k in SET_KEYS if key.endswith("_" + k) and len(key) > len(k) + 1), "")


def kind_of(key: str) -> Optional[values.Kind]:
    """Return how `key`'s value is read, a hook set's key as the default set's of its name."""
    entry = BY_NAME.get(key) or BY_NAME.get(set_key_suffix(key))
    return entry.kind if entry else None


def help_lines() -> List[str]:
    """Return `--help`'s list of keys, by section: `  KEY=DEFAULT  what it means`."""
    lines = []
    for section in dict.fromkeys(key.section for key in KEYS):
        lines.append(f"  {section}:")
        lines.extend(f"    {key.name}={key.default if len(key.default) <= 20 else '...'}  {key.doc}"
                     for key in KEYS if key.section == section)
    return lines
