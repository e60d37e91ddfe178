"""Settings: one immutable object, built and validated once from an env file and the environment."""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from pathlib import Path
from types import MappingProxyType
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

from . import envfile

EX_CONFIG = 78
MAX_DEDUP_WINDOW = 60.0
ROUTES = ("critical", "warning", "info")
SYSTEM_CONFIG = "/etc/rcwebhook/rcwebhook.env"
LOCAL_CONFIG = ".env"
# The problem of a configuration that sets no URL at all, as a fresh install has it.
NO_URL = "no Rocket.Chat webhook URL is set"

DEFAULT_SEVERITY_ALIASES = (
    "page:critical,pager:critical,emergency:critical,alert:critical,crit:critical,"
    "fatal:critical,error:critical,err:critical,high:critical,disaster:critical,"
    "warn:warning,medium:warning,average:warning,"
    "low:info,none:info,debug:info,notice:info,informational:info,information:info,ok:info"
)

# Every key rcwebhook reads, with its default. The README and the example env
# file document each; `unknown key` warnings suggest the closest of these.
DEFAULTS: Mapping[str, str] = MappingProxyType({
    "HOST": "127.0.0.1",
    "PORT": "8093",
    "ROCKETCHAT_WEBHOOK_CRITICAL": "",
    "ROCKETCHAT_WEBHOOK_WARNING": "",
    "ROCKETCHAT_WEBHOOK_INFO": "",
    "ROCKETCHAT_CHANNEL_CRITICAL": "",
    "ROCKETCHAT_CHANNEL_WARNING": "",
    "ROCKETCHAT_CHANNEL_INFO": "",
    "ROCKETCHAT_USERNAME": "",
    "ROCKETCHAT_ICON_EMOJI": "",
    "DEFAULT_SEVERITY": "warning",
    "SEVERITY_LABEL": "severity",
    "SEVERITY_ALIASES": DEFAULT_SEVERITY_ALIASES,
    "MAX_ALERTS_PER_MESSAGE": "20",
    "DELIVERY_TIMEOUT": "5",
    "DELIVERY_DEADLINE": "10",
    "ROCKETCHAT_RATE_LIMIT": "10/60",
    "DEDUP_WINDOW": "60",
    "STATE_DIR": "",
    "DRY_RUN": "false",
    "DEBUG": "false",
    "LOG_LEVEL": "",
    "LOG_FILE": "",
    "LOG_MAX_BYTES": "10485760",
    "LOG_BACKUP_COUNT": "5",
    "MAX_BODY_BYTES": "4194304",
    "REQUEST_TIMEOUT": "10",
    "API_KEY": "",
    "ALLOW_UNAUTHENTICATED": "false",
    "MAX_CONNECTIONS": "64",
    "CLIENT_RATE_LIMIT": "20",
    "CLIENT_RATE_BURST": "100",
    "CLIENT_RATE_LIMIT_LOOPBACK": "false",
    "TLS_CERT_FILE": "",
    "TLS_KEY_FILE": "",
    "ROCKETCHAT_CA_FILE": "",
    # Each secret can also come from KEY_FILE (a file holding it) or a systemd credential
    # named KEY ($CREDENTIALS_DIRECTORY/KEY).
    **{f"{key}_FILE": "" for key in ("ROCKETCHAT_WEBHOOK_CRITICAL", "ROCKETCHAT_WEBHOOK_WARNING",
                                     "ROCKETCHAT_WEBHOOK_INFO", "API_KEY")},
})
SECRET_KEYS = ("ROCKETCHAT_WEBHOOK_CRITICAL", "ROCKETCHAT_WEBHOOK_WARNING", "ROCKETCHAT_WEBHOOK_INFO", "API_KEY")

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class ConfigError(Exception):
    """The configuration is unusable; `problems` lists every reason, each a line an operator can act on."""

    def __init__(self, problems: List[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Route(NamedTuple):
    """Where the alerts of one severity go."""

    name: str
    url: str
    channel: str = ""
    url_from: str = ""  # the route whose URL this one borrows, when it has none of its own


class Settings(NamedTuple):
    """Everything rcwebhook needs to run, validated."""

    host: str = "127.0.0.1"
    port: int = 8093
    routes: Mapping[str, Route] = MappingProxyType({})
    default_severity: str = "warning"
    severity_label: str = "severity"
    severity_aliases: Mapping[str, str] = MappingProxyType({})
    username: str = ""
    icon_emoji: str = ""
    max_alerts_per_message: int = 20
    delivery_timeout: float = 5.0
    delivery_deadline: float = 10.0
    rate_limit: Tuple[int, float] = (10, 60.0)  # posts per seconds, per hook; (0, 0) is off
    dedup_window: float = 60.0  # seconds: a copy of a posted state is not posted again; later, a reminder is
    state_dir: str = ""  # where the state database lives; "" keeps the state in memory only
    dry_run: bool = False
    debug: bool = False
    log_level: str = "INFO"
    log_file: str = ""
    log_max_bytes: int = 10485760
    log_backup_count: int = 5
    max_body_bytes: int = 4194304
    request_timeout: float = 10.0
    api_key: str = ""
    allow_unauthenticated: bool = False
    max_connections: int = 64
    client_rate_limit: float = 20.0  # requests per second per client address; 0 is off
    client_rate_burst: int = 100
    client_rate_limit_loopback: bool = False
    tls_cert_file: str = ""
    tls_key_file: str = ""
    rocketchat_ca_file: str = ""
    source: str = ""  # the env file read, or "" for none

    def secrets(self) -> Tuple[str, ...]:
        """Return every secret string in these settings, for redaction."""
        tokens = {url_token(r.url) for r in self.routes.values()} | {self.api_key}
        return tuple(sorted(t for t in tokens if t))


def url_token(url: str) -> str:
    """Return the secret part of a Rocket.Chat hook URL (everything after the integration id)."""
    parts = urlsplit(url)
    segments = parts.path.split("/hooks/", 1)
    if len(segments) == 2 and "/" in segments[1]:
        return segments[1].split("/", 1)[1]
    # Not a /hooks/ URL: treat the whole path and query as secret.
    return (parts.path.lstrip("/") + ("?" + parts.query if parts.query else "")) or ""


def redact_url(url: str) -> str:
    """Return `url` with its token replaced by ***: `https://host/hooks/<id>/***`."""
    if not url:
        return ""
    parts = urlsplit(url)
    segments = parts.path.split("/hooks/", 1)
    if len(segments) == 2:
        hook_id = segments[1].split("/", 1)[0]
        path = f"{segments[0]}/hooks/{hook_id}/***"
    else:
        path = "/***"
    return f"{parts.scheme}://{parts.hostname or ''}{':%d' % parts.port if _port(parts) else ''}{path}"


def _port(parts) -> Optional[int]:
    """Return the explicit port of a split URL, or None when absent or invalid."""
    try:
        return parts.port
    except ValueError:
        return None


def find_config(explicit: Optional[str], environ: Mapping[str, str], cwd: Path) -> Optional[Path]:
    """Return the env file to read: --config, $RCWEBHOOK_CONFIG, the system file, ./.env, or None."""
    if explicit:
        return Path(explicit)
    if environ.get("RCWEBHOOK_CONFIG"):
        return Path(environ["RCWEBHOOK_CONFIG"])
    for candidate in (Path(SYSTEM_CONFIG), cwd / LOCAL_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def load(
    path: Optional[Path],
    environ: Mapping[str, str],
    overrides: Optional[Mapping[str, str]] = None,
) -> Tuple[Settings, List[str]]:
    """Return the settings from `path` and `environ` (which wins) and the warnings; raise ConfigError."""
    errors: List[str] = []
    warnings: List[str] = []
    values: Dict[str, str] = {}
    if path is not None:
        values.update(_read_file(path, errors, warnings))
        in_file = [k for k in SECRET_KEYS if values.get(k, "").strip() and k not in environ]
        if in_file:
            _warn_if_world_readable(path, in_file, warnings)
    for key in DEFAULTS:
        if key in environ:
            values[key] = environ[key]
    values.update(overrides or {})
    if not values.get("STATE_DIR", "").strip() and environ.get("STATE_DIRECTORY"):
        values["STATE_DIR"] = environ["STATE_DIRECTORY"].split(":")[0]  # systemd's StateDirectory=
    _resolve_secrets(values, environ.get("CREDENTIALS_DIRECTORY", ""), errors)
    settings = build(values, errors, warnings, source=str(path or ""))
    if errors:
        raise ConfigError(errors)
    if settings.rocketchat_ca_file:
        from .certs import ca_file_warnings  # only with a CA file

        warnings.extend(ca_file_warnings(settings.rocketchat_ca_file))
    return settings, warnings


def _resolve_secrets(values: Dict[str, str], credentials: str, errors: List[str]) -> None:
    """Fill each secret key from KEY, else KEY_FILE, else the systemd credential named KEY."""
    for key in SECRET_KEYS:
        value, file_name = values.get(key, "").strip(), values.pop(f"{key}_FILE", "").strip()
        if value and file_name:
            errors.append(f"both {key} and {key}_FILE are set: set only one")
            continue
        if value:
            continue
        source = file_name
        if not source and credentials and (Path(credentials) / key).is_file():
            source = str(Path(credentials) / key)
        if source:
            try:
                values[key] = Path(source).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(f"{key}_FILE={source!r} cannot be read: {getattr(exc, 'strerror', None) or exc}")
            else:
                if not values[key]:
                    errors.append(f"{key}_FILE={source!r} is empty")


def _warn_if_world_readable(path: Path, keys: List[str], warnings: List[str]) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & 0o004:
        warnings.append(
            f"{path} holds secrets ({', '.join(keys)}) and every user on this host can read it: "
            f"chmod 0640 {path} (owner root, group rcwebhook), or move them to *_FILE keys or systemd credentials"
        )


def _read_file(path: Path, errors: List[str], warnings: List[str]) -> Dict[str, str]:
    """Return the known keys set in the env file at `path`, adding its problems to the lists."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        errors.append(f"cannot read config file {path}: {exc.strerror or exc}")
        return {}
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        errors.append(f"{path.name}:{line}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})")
        return {}
    entries, parse_errors = envfile.parse(text, path.name)
    errors.extend(parse_errors)
    values: Dict[str, str] = {}
    seen: Dict[str, int] = {}
    for entry in entries:
        if entry.key not in DEFAULTS:
            warnings.append(f"{path.name}:{entry.line}: unknown key {entry.key}{_suggest(entry.key)}")
            continue
        if entry.key in seen:
            warnings.append(
                f"{path.name}:{entry.line}: {entry.key} set again; line {seen[entry.key]}'s value is ignored"
            )
        seen[entry.key] = entry.line
        values[entry.key] = entry.value
    return values


def _suggest(key: str) -> str:
    """Return `, did you mean X?` for the known key closest to `key`, or ''."""
    import difflib  # only for a misspelt key

    close = difflib.get_close_matches(key.upper(), DEFAULTS.keys(), n=1, cutoff=0.6)
    return f", did you mean {close[0]}?" if close else " (ignored)"


def build(values: Mapping[str, str], errors: List[str], warnings: List[str], source: str = "") -> Settings:
    """Return Settings from raw key values over DEFAULTS, adding every problem found to `errors`."""
    raw = dict(DEFAULTS)
    raw.update(values)
    get = _Reader(raw, errors)

    severity_aliases = get.aliases("SEVERITY_ALIASES")
    default_severity = get.choice("DEFAULT_SEVERITY", ROUTES)
    routes = _routes(raw, get, default_severity, errors)
    dry_run = get.boolean("DRY_RUN")
    if not dry_run and routes is not None and not any(r.url for r in routes.values()):
        errors.append(
            f"{NO_URL}: set ROCKETCHAT_WEBHOOK_"
            f"{default_severity.upper()} (used for every severity that has no URL of its own), "
            "or DRY_RUN=true to only log the messages"
        )
    debug = get.boolean("DEBUG")
    log_level = raw["LOG_LEVEL"].strip().upper() or ("DEBUG" if debug else "INFO")
    if log_level not in _LOG_LEVELS:
        errors.append(f"LOG_LEVEL={raw['LOG_LEVEL']!r} is not one of {', '.join(_LOG_LEVELS)}")
    host = raw["HOST"].strip()
    if not host:
        errors.append("HOST is empty: set an address to listen on, such as 127.0.0.1")
    api_key = raw["API_KEY"].strip()
    allow_unauthenticated = get.boolean("ALLOW_UNAUTHENTICATED")
    if host and not is_loopback(host) and not api_key and not allow_unauthenticated:
        errors.append(
            f"HOST={host} lets other hosts reach rcwebhook, and API_KEY is not set: set API_KEY (or "
            "API_KEY_FILE) and send it from Alertmanager's http_config, or set ALLOW_UNAUTHENTICATED=true"
        )
    tls_cert, tls_key = raw["TLS_CERT_FILE"].strip(), raw["TLS_KEY_FILE"].strip()
    if bool(tls_cert) != bool(tls_key):
        errors.append("TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve TLS, or neither")
    for key in ("TLS_CERT_FILE", "TLS_KEY_FILE", "ROCKETCHAT_CA_FILE"):
        if raw[key].strip() and not os.access(raw[key].strip(), os.R_OK):
            errors.append(f"{key}={raw[key].strip()!r} cannot be read")
    if routes:
        for route in routes.values():
            if route.url and not route.url_from and urlsplit(route.url).scheme == "http" \
                    and not is_loopback(urlsplit(route.url).hostname or ""):
                warnings.append(
                    f"ROCKETCHAT_WEBHOOK_{route.name.upper()} uses plain http to {urlsplit(route.url).hostname}: "
                    "its token crosses the network readable by anyone on the path; use https"
                )

    return Settings(
        host=host,
        port=get.integer("PORT", 0, 65535),
        routes=MappingProxyType(routes or {}),
        default_severity=default_severity,
        severity_label=raw["SEVERITY_LABEL"].strip() or "severity",
        severity_aliases=severity_aliases,
        username=raw["ROCKETCHAT_USERNAME"].strip(),
        icon_emoji=get.emoji("ROCKETCHAT_ICON_EMOJI"),
        max_alerts_per_message=get.integer("MAX_ALERTS_PER_MESSAGE", 1, 100),
        delivery_timeout=get.number("DELIVERY_TIMEOUT", 0.1, 300),
        delivery_deadline=get.number("DELIVERY_DEADLINE", 0.1, 3600),
        rate_limit=get.rate("ROCKETCHAT_RATE_LIMIT"),
        dedup_window=_dedup_window(get, warnings),
        state_dir=raw["STATE_DIR"].strip(),
        dry_run=dry_run,
        debug=debug,
        log_level=log_level,
        log_file=raw["LOG_FILE"].strip(),
        log_max_bytes=get.integer("LOG_MAX_BYTES", 0, 2**40),
        log_backup_count=get.integer("LOG_BACKUP_COUNT", 0, 1000),
        max_body_bytes=get.integer("MAX_BODY_BYTES", 1024, 2**31),
        request_timeout=get.number("REQUEST_TIMEOUT", 0.1, 3600),
        api_key=api_key,
        allow_unauthenticated=allow_unauthenticated,
        max_connections=get.integer("MAX_CONNECTIONS", 1, 10000),
        client_rate_limit=get.number("CLIENT_RATE_LIMIT", 0, 1e6),
        client_rate_burst=get.integer("CLIENT_RATE_BURST", 1, 1000000),
        client_rate_limit_loopback=get.boolean("CLIENT_RATE_LIMIT_LOOPBACK"),
        tls_cert_file=tls_cert,
        tls_key_file=tls_key,
        rocketchat_ca_file=raw["ROCKETCHAT_CA_FILE"].strip(),
        source=source,
    )


def _dedup_window(get: "_Reader", warnings: List[str]) -> float:
    """Return DEDUP_WINDOW, at most a minute: Alertmanager's reminders come at repeat_interval, which may
    be as short as a minute, and must be posted."""
    value = get.number("DEDUP_WINDOW", 0, 86400)
    if value > MAX_DEDUP_WINDOW:
        warnings.append(f"DEDUP_WINDOW={value:g} is over {MAX_DEDUP_WINDOW:g}: reminders sent more often than that "
                        f"(repeat_interval) would not be posted; using {MAX_DEDUP_WINDOW:g}")
        value = MAX_DEDUP_WINDOW
    return value


def _routes(
    raw: Mapping[str, str], get: "_Reader", default_severity: str, errors: List[str]
) -> Optional[Dict[str, Route]]:
    """Return the three routes, each with its URL or the default route's."""
    own = {name: get.webhook_url(f"ROCKETCHAT_WEBHOOK_{name.upper()}") for name in ROUTES}
    if any(url is None for url in own.values()):
        return None
    routes = {}
    fallback = own[default_severity]
    for name in ROUTES:
        url, url_from = own[name], ""
        if not url and fallback:
            url, url_from = fallback, default_severity
        routes[name] = Route(name, url, raw[f"ROCKETCHAT_CHANNEL_{name.upper()}"].strip(), url_from)
    if any(own.values()) and not fallback:
        missing = [n for n in ROUTES if not own[n]]
        errors.append(
            f"ROCKETCHAT_WEBHOOK_{default_severity.upper()} is not set, so alerts of severity "
            f"{', '.join(missing)} would have nowhere to go: set it, or set DEFAULT_SEVERITY "
            f"to a severity that has a URL ({', '.join(n for n in ROUTES if own[n])})"
        )
    return routes


class _Reader:
    """Typed access to raw values; each bad value adds one error naming the key."""

    def __init__(self, raw: Mapping[str, str], errors: List[str]) -> None:
        self.raw = raw
        self.errors = errors

    def _fail(self, key: str, why: str):
        self.errors.append(f"{key}={self.raw[key]!r} {why}")
        return None

    def integer(self, key: str, low: int, high: int) -> int:
        text = self.raw[key].strip()
        try:
            value = int(text)
        except ValueError:
            self._fail(key, "is not a whole number")
            return int(DEFAULTS[key])
        if not low <= value <= high:
            self._fail(key, f"is out of range ({low} to {high})")
            return int(DEFAULTS[key])
        return value

    def number(self, key: str, low: float, high: float) -> float:
        text = self.raw[key].strip()
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if value != value:  # NaN, or not a number at all
            self._fail(key, "is not a number of seconds")
            return float(DEFAULTS[key])
        if not low <= value <= high:
            self._fail(key, f"is out of range ({low:g} to {high:g} seconds)")
            return float(DEFAULTS[key])
        return value

    def rate(self, key: str) -> Tuple[int, float]:
        text = self.raw[key].strip()
        if text in ("0", "off", ""):
            return (0, 0.0)
        posts, sep, seconds = text.partition("/")
        try:
            limit, window = int(posts), float(seconds)
        except ValueError:
            limit, window = 0, 0.0
        if not sep or limit < 1 or not 0 < window <= 86400:
            self._fail(key, "is not POSTS/SECONDS such as 10/60 (Rocket.Chat's default), or 0 for no pacing")
            return (10, 60.0)
        return (limit, window)

    def boolean(self, key: str) -> bool:
        text = self.raw[key].strip().lower()
        if text in _TRUE:
            return True
        if text not in _FALSE:
            self._fail(key, "is not true or false")
        return False

    def choice(self, key: str, options: Tuple[str, ...]) -> str:
        text = self.raw[key].strip().lower()
        if text in options:
            return text
        self._fail(key, f"is not one of {', '.join(options)}")
        return DEFAULTS[key]

    def emoji(self, key: str) -> str:
        text = self.raw[key].strip()
        if text and not re.fullmatch(r":[\w+-]+:", text):
            self._fail(key, "is not an emoji name such as :bell:")
            return ""
        return text

    def webhook_url(self, key: str) -> Optional[str]:
        text = self.raw[key].strip()
        if not text:
            return ""
        parts = urlsplit(text)
        try:
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number
            valid = False
        if not valid:
            # The value is a secret: name the key, never echo it.
            self.errors.append(
                f"{key} is not an absolute http(s) URL; expected https://HOST/hooks/ID/TOKEN "
                "as shown by Rocket.Chat's incoming integration"
            )
            return None
        return text

    def aliases(self, key: str) -> Mapping[str, str]:
        result: Dict[str, str] = {}
        for item in filter(None, (p.strip() for p in self.raw[key].split(","))):
            alias, sep, target = (s.strip().lower() for s in item.partition(":"))
            if not sep or not alias or target not in ROUTES:
                self._fail(key, f"has {item!r}; expected ALIAS:SEVERITY pairs with SEVERITY one of {', '.join(ROUTES)}")
                continue
            result[alias] = target
        return MappingProxyType(result)


@functools.lru_cache(maxsize=1024)  # asked for every client address, which repeat
def is_loopback(host: str) -> bool:
    """Return whether `host` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def describe(settings: Settings) -> List[str]:
    """Return the effective settings as KEY=VALUE lines, every secret masked."""
    lines = [f"# config file: {settings.source or '(none)'}"]
    values = {
        "HOST": settings.host,
        "PORT": settings.port,
        "DEFAULT_SEVERITY": settings.default_severity,
        "SEVERITY_LABEL": settings.severity_label,
        "SEVERITY_ALIASES": ",".join(f"{a}:{t}" for a, t in settings.severity_aliases.items()),
        "ROCKETCHAT_USERNAME": settings.username,
        "ROCKETCHAT_ICON_EMOJI": settings.icon_emoji,
        "MAX_ALERTS_PER_MESSAGE": settings.max_alerts_per_message,
        "DELIVERY_TIMEOUT": f"{settings.delivery_timeout:g}",
        "DELIVERY_DEADLINE": f"{settings.delivery_deadline:g}",
        "ROCKETCHAT_RATE_LIMIT": f"{settings.rate_limit[0]}/{settings.rate_limit[1]:g}" if settings.rate_limit[0] else "0",
        "DEDUP_WINDOW": f"{settings.dedup_window:g}",
        "STATE_DIR": settings.state_dir or "(none: state in memory only)",
        "DRY_RUN": str(settings.dry_run).lower(),
        "DEBUG": str(settings.debug).lower(),
        "LOG_LEVEL": settings.log_level,
        "LOG_FILE": settings.log_file,
        "LOG_MAX_BYTES": settings.log_max_bytes,
        "LOG_BACKUP_COUNT": settings.log_backup_count,
        "MAX_BODY_BYTES": settings.max_body_bytes,
        "REQUEST_TIMEOUT": f"{settings.request_timeout:g}",
        "API_KEY": "***" if settings.api_key else "(not set)",
        "ALLOW_UNAUTHENTICATED": str(settings.allow_unauthenticated).lower(),
        "MAX_CONNECTIONS": settings.max_connections,
        "CLIENT_RATE_LIMIT": f"{settings.client_rate_limit:g}",
        "CLIENT_RATE_BURST": settings.client_rate_burst,
        "CLIENT_RATE_LIMIT_LOOPBACK": str(settings.client_rate_limit_loopback).lower(),
        "TLS_CERT_FILE": settings.tls_cert_file,
        "TLS_KEY_FILE": settings.tls_key_file,
        "ROCKETCHAT_CA_FILE": settings.rocketchat_ca_file,
    }
    for route in settings.routes.values():
        shown = redact_url(route.url) if route.url else "(not set)"
        if route.url_from:
            shown += f"  # from ROCKETCHAT_WEBHOOK_{route.url_from.upper()}"
        values[f"ROCKETCHAT_WEBHOOK_{route.name.upper()}"] = shown
        values[f"ROCKETCHAT_CHANNEL_{route.name.upper()}"] = route.channel
    lines.extend(f"{key}={values[key]}" for key in DEFAULTS if key in values)
    return lines

