"""Settings: one immutable object, built and validated once from an env file and the environment."""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from datetime import timezone as dt_timezone, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import AbstractSet, Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from . import envfile
from ..messages import mentions
from . import tls

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
    # Who each route's firing messages mention: @USER, @TEAM, @here or @all words.
    "MENTION_CRITICAL": "",
    "MENTION_WARNING": "",
    "MENTION_INFO": "",
    "ROCKETCHAT_USERNAME": "",
    "ROCKETCHAT_ICON_EMOJI": "",
    # Hook sets besides the default one: each has the SET_KEYS, prefixed with its name (DB_...),
    # and receives on POST /webhook/<name>.
    "RECEIVERS": "",
    "ROUTE_LABEL": "rocketchat_receiver",
    "CHANNEL_LABEL": "rocketchat_channel",
    "DEFAULT_SEVERITY": "warning",
    "SEVERITY_LABEL": "severity",
    "SEVERITY_ALIASES": DEFAULT_SEVERITY_ALIASES,
    "MAX_ALERTS_PER_MESSAGE": "20",
    "TIMEZONE": "UTC",
    "DELIVERY_TIMEOUT": "5",
    "DELIVERY_DEADLINE": "10",
    "ROCKETCHAT_RATE_LIMIT": "10/60",
    "DEDUP_WINDOW": "60",
    "STATE_DIR": "",
    "THREADS": "true",
    "THREAD_TTL": "604800",
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
    # Proxies for the posts to Rocket.Chat; the lower-case forms (https_proxy...) are read too.
    "HTTPS_PROXY": "",
    "HTTP_PROXY": "",
    "NO_PROXY": "",
    "TEMPLATE_FILES": "",
    "TEMPLATE_TEXT": "",
    "TEMPLATE_ATTACHMENT_TITLE": "",
    "TEMPLATE_ATTACHMENT_TEXT": "",
    # Seconds of CPU time the templates may take for one message; past them the built-in rendering is used.
    "TEMPLATE_CPU_BUDGET": "0.25",
    # The Alertmanager whose template functions and output are followed (amdata.COMPATS); also for
    # `rcwebhook template render`. RCWEBHOOK_TEMPLATE_COMPAT in the environment is read as an alias.
    "TEMPLATE_COMPAT": "0.28",
    # Each secret can also come from KEY_FILE (a file holding it) or a systemd credential
    # named KEY ($CREDENTIALS_DIRECTORY/KEY).
    **{f"{key}_FILE": "" for key in ("ROCKETCHAT_WEBHOOK_CRITICAL", "ROCKETCHAT_WEBHOOK_WARNING",
                                     "ROCKETCHAT_WEBHOOK_INFO", "API_KEY")},
})
PROXY_KEYS = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY")
URL_KEYS = tuple(f"ROCKETCHAT_WEBHOOK_{name.upper()}" for name in ROUTES)
SECRET_KEYS = URL_KEYS + ("API_KEY",)
# The keys each hook set named in RECEIVERS has of its own, prefixed with its name in upper case
# (`-` as `_`): DB_ROCKETCHAT_WEBHOOK_CRITICAL. The default set's are these keys unprefixed. A
# set's route is built from them exactly as the default set's is (see _routes).
SET_KEYS = (
    *URL_KEYS,
    *(f"{key}_FILE" for key in URL_KEYS),
    *(f"ROCKETCHAT_CHANNEL_{name.upper()}" for name in ROUTES),
    *(f"MENTION_{name.upper()}" for name in ROUTES),
    "ROCKETCHAT_USERNAME",
    "ROCKETCHAT_ICON_EMOJI",
)
MAX_RECEIVERS = 100
COMPAT_ALIAS = "RCWEBHOOK_TEMPLATE_COMPAT"  # TEMPLATE_COMPAT's name before it was a setting
_RECEIVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


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


def key_prefix(receiver: str) -> str:
    """Return the prefix of a hook set's keys: `DB_` for `db`, `TEAM_WEB_` for `team-web`, "" for the default."""
    return receiver.upper().replace("-", "_") + "_" if receiver else ""


def receiver_names(text: str) -> List[str]:
    """Return the hook set names RECEIVERS lists, as written, without checking them."""
    return list(dict.fromkeys(filter(None, (name.strip() for name in text.split(",")))))


def set_keys(receivers: Iterable[str]) -> List[str]:
    """Return every key of the hook sets `receivers` names."""
    return [key_prefix(name) + key for name in receivers for key in SET_KEYS]


def _set_key_suffix(key: str) -> str:
    """Return the set key that `key` is a prefixed form of (ROCKETCHAT_WEBHOOK_INFO for DB_ROCKETCHAT_WEBHOOK_INFO),
    or ""."""
    if key in DEFAULTS:
        return ""
    return next((k for k in SET_KEYS if key.endswith("_" + k) and len(key) > len(k) + 1), "")


class Settings(NamedTuple):
    """Everything rcwebhook needs to run, validated."""

    host: str = "127.0.0.1"
    port: int = 8093
    routes: Mapping[str, Route] = MappingProxyType({})  # by name: the default set's, then each set's
    receivers: Tuple[str, ...] = ()  # the hook sets besides the default one, as RECEIVERS names them
    route_label: str = "rocketchat_receiver"
    channel_label: str = "rocketchat_channel"
    default_severity: str = "warning"
    severity_label: str = "severity"
    severity_aliases: Mapping[str, str] = MappingProxyType({})
    username: str = ""
    icon_emoji: str = ""
    max_alerts_per_message: int = 20
    timezone: tzinfo = dt_timezone.utc  # TIMEZONE: the zone of the times messages show
    delivery_timeout: float = 5.0
    delivery_deadline: float = 10.0
    template_cpu_budget: float = 0.25  # seconds of CPU time the templates may take for one message
    rate_limit: Tuple[int, float] = (10, 60.0)  # posts per seconds, per hook; (0, 0) is off
    dedup_window: float = 60.0  # seconds: a copy of a posted state is not posted again; later, a reminder is
    state_dir: str = ""  # where the state database lives; "" keeps the state in memory only
    threads: bool = True  # follow-ups in the thread of an incident's first message
    thread_ttl: float = 604800.0  # seconds a thread is kept after its last post
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
    # urllib's form: {"https": URL, "http": URL, "no": "host,..."}, only the ones set
    proxies: Mapping[str, str] = MappingProxyType({})
    source: str = ""  # the env file read, or "" for none
    templates: Any = None  # templating.Templates from TEMPLATE_FILES, or None: the built-in messages
    template_compat: str = "0.28"  # TEMPLATE_COMPAT: the Alertmanager whose template functions are followed

    def secrets(self) -> Tuple[str, ...]:
        """Return every secret string in these settings, for redaction."""
        tokens = {url_token(r.url) for r in self.routes.values()} | {self.api_key}
        tokens |= {urlsplit(url).password or "" for scheme, url in self.proxies.items() if scheme != "no"}
        return tuple(sorted(t for t in tokens if t))


def url_token(url: str) -> str:
    """Return the secret part of a Rocket.Chat hook URL: its token, the last segment of its path."""
    parts = urlsplit(url)
    segments = parts.path.split("/hooks/", 1)
    if len(segments) == 2 and "/" in segments[1]:
        return segments[1].rsplit("/", 1)[1]
    # Not a /hooks/ URL: treat the whole path and query as secret.
    return (parts.path.lstrip("/") + ("?" + parts.query if parts.query else "")) or ""


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return `text` with every secret replaced by ***: the one rule for logs, answers and printed errors."""
    # A secret counts where it is not part of a longer run of letters and digits, so that a short
    # token (such as `b` in a test) does not turn `retryable` into `retrya***le`.
    present = tuple(s for s in secrets if s and s in text)  # a plain search first: most text holds none
    return _secrets_pattern(present).sub("***", text) if present else text


@functools.lru_cache(maxsize=64)
def _secrets_pattern(secrets: Tuple[str, ...]) -> "re.Pattern[str]":
    """Return the pattern that finds any of `secrets` standing alone, the longest first."""
    ordered = sorted(secrets, key=len, reverse=True)  # a longer one may hold a shorter
    return re.compile("(?<![A-Za-z0-9])(?:%s)(?![A-Za-z0-9])" % "|".join(map(re.escape, ordered)))


def _secrets_in(values: Mapping[str, str]) -> Tuple[str, ...]:
    """Return the secrets among raw key values, for redacting problems found before Settings exist."""
    found = {values.get("API_KEY", "").strip()}
    for key in ("HTTPS_PROXY", "HTTP_PROXY"):
        try:
            found.add(urlsplit(values.get(key, "").strip()).password or "")
        except ValueError:
            pass
    for key, value in values.items():
        if key.endswith(URL_KEYS):  # the default set's and every hook set's
            url = value.strip()
            found.add(url if _hook_url_problem(url) else url_token(url))  # an invalid URL: all of it
    return tuple(s for s in found if s)


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
    unknown: List[Tuple[str, int]] = []
    where = Where(str(path) if path is not None else "(no config file)")
    if path is not None:
        values.update(_read_file(path, errors, warnings, where, unknown))
    for key in DEFAULTS:
        # A proxy key's lower-case form wins, as in curl and urllib.
        name = key.lower() if key in PROXY_KEYS and key.lower() in environ else key
        if name in environ:
            values[key] = environ[name]
            where.origins[key] = f"{where.general} (overridden by the environment's {key})" \
                if path is not None else "the environment"
            where.broken.discard(key)
    if "TEMPLATE_COMPAT" not in environ and COMPAT_ALIAS in environ:
        values["TEMPLATE_COMPAT"] = environ[COMPAT_ALIAS]
        where.origins["TEMPLATE_COMPAT"] = f"the environment's {COMPAT_ALIAS}"
        where.broken.discard("TEMPLATE_COMPAT")
    values.update(overrides or {})
    # RECEIVERS, wherever it was set, says which prefixed keys exist: only now can they be read
    # from the environment and the file's unknown keys be told.
    receivers = receiver_names(values.get("RECEIVERS", ""))
    for key in set_keys(receivers):
        if key in environ:
            values[key] = environ[key]
            where.origins[key] = f"{where.general} (overridden by the environment's {key})" \
                if path is not None else "the environment"
            where.broken.discard(key)
    known = list(DEFAULTS) + set_keys(receivers)
    for key, line in unknown:
        meant = near_miss(key, known)
        if meant:  # a misspelt key: its value would be quietly ignored, and its alerts go elsewhere
            errors.append(f"{path}:{line}: unknown key {key}, did you mean {meant}? (a near-miss of a known key is "
                          "an error: fix its spelling, or remove it)")
        elif key in LEGACY_KEYS:
            warnings.append(f"{path}:{line}: {key} is a key of the Flask script rcwebhook replaces; rcwebhook has no "
                            "use for it (ignored)")
        else:
            warnings.append(f"{path}:{line}: unknown key {key}{_suggest(key, known)}")
    for key in environ:
        if key not in values and key not in ENVIRONMENT_KEYS and key.upper() not in PROXY_KEYS and _owned(key):
            meant = near_miss(key, known + list(ENVIRONMENT_KEYS))
            if meant:
                errors.append(f"the environment's {key} is unknown, did you mean {meant}? (a near-miss of a known key "
                              "is an error: fix its spelling, or unset it)")
    if path is not None:
        in_file = [k for k in values if (k == "API_KEY" or k.endswith(URL_KEYS)) and values[k].strip()
                   and k not in environ]
        if in_file:
            _warn_if_world_readable(path, in_file, warnings)
    if not values.get("STATE_DIR", "").strip() and environ.get("STATE_DIRECTORY"):
        values["STATE_DIR"] = environ["STATE_DIRECTORY"].split(":")[0]  # systemd's StateDirectory=
    _resolve_secrets(values, environ.get("CREDENTIALS_DIRECTORY", ""), errors, where,
                     [key_prefix(name) + key for name in [""] + receivers for key in URL_KEYS] + ["API_KEY"])
    settings = build(values, errors, warnings, source=str(path or ""), where=where)
    if errors:
        raise ConfigError(errors, warnings, _secrets_in(values))
    if settings.rocketchat_ca_file:
        from .certs import ca_file_warnings  # only with a CA file

        warnings.extend(where.say(w, "ROCKETCHAT_CA_FILE") for w in ca_file_warnings(settings.rocketchat_ca_file))
    return settings, warnings


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


def _resolve_secrets(values: Dict[str, str], credentials: str, errors: List[str], where: Where,
                     keys: Sequence[str] = SECRET_KEYS) -> None:
    """Fill each secret key from KEY, else KEY_FILE, else the systemd credential named KEY."""
    for key in keys:
        value, file_name = values.get(key, "").strip(), values.pop(f"{key}_FILE", "").strip()
        if value and file_name:
            errors.append(where.say(f"both {key} and {key}_FILE are set: set only one", f"{key}_FILE"))
            continue
        if value or where.unsure(key):
            continue
        source = file_name
        if not source and credentials and (Path(credentials) / key).is_file():
            source = str(Path(credentials) / key)
        if source:
            try:
                values[key] = Path(source).read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(where.say(f"{key}_FILE={source!r} cannot be read: "
                                        f"{getattr(exc, 'strerror', None) or exc}", f"{key}_FILE"))
            else:
                if not values[key]:
                    errors.append(where.say(f"{key}_FILE={source!r} is empty", f"{key}_FILE"))


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


def _read_file(path: Path, errors: List[str], warnings: List[str], where: Where,
               unknown: List[Tuple[str, int]]) -> Dict[str, str]:
    """Return the known keys and the prefixed keys of hook sets set in the env file at `path`, adding its
    problems to the lists and its unknown keys (with their lines) to `unknown`."""
    where.broken.update(DEFAULTS)  # until the file is read: what follows from not reading it is not told
    try:
        text = path.read_bytes().decode("utf-8")
    except PermissionError:
        errors.append(f"cannot read config file {path}: permission denied; " + _PERMISSION_HINT)
        return {}
    except OSError as exc:
        errors.append(f"cannot read config file {path}: {exc.strerror or exc}")
        return {}
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        errors.append(f"{path}:{line}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x})")
        return {}
    where.broken.clear()
    entries, parse_errors = envfile.parse(text, str(path))
    errors.extend(parse_errors)
    values: Dict[str, str] = {}
    seen: Dict[str, int] = {}
    for entry in entries:
        if entry.key.upper() in PROXY_KEYS:  # https_proxy and friends, as commonly written
            entry = entry._replace(key=entry.key.upper())
        if entry.key not in DEFAULTS and not _set_key_suffix(entry.key):
            unknown.append((entry.key, entry.line))  # told once RECEIVERS is known: it may be a set's
            continue
        if not entry.valid:
            where.broken.add(entry.key)
            continue
        if entry.key in seen:
            warnings.append(f"{path}:{entry.line}: {entry.key} set again; line {seen[entry.key]}'s value is ignored")
        seen[entry.key] = entry.line
        values[entry.key] = entry.value
        where.origins[entry.key] = f"{path}:{entry.line}"
        where.broken.discard(entry.key)
    return values


# How to read a config file this user may not: as root, or as the service's user.
_PERMISSION_HINT = ("the package installs it readable by root and the group rcwebhook only: run "
                    "`sudo rcwebhook --check-config`, or `sudo -u rcwebhook rcwebhook --check-config`")


# Keys that the env files of the Flask + gunicorn script rcwebhook replaces may hold: read by neither,
# they stay warnings even where one resembles a key of rcwebhook's.
LEGACY_KEYS = frozenset((
    "FLASK_APP", "FLASK_ENV", "FLASK_DEBUG", "FLASK_RUN_HOST", "FLASK_RUN_PORT", "GUNICORN_CMD_ARGS",
    "WEB_CONCURRENCY", "WORKERS", "BIND", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE",
))
# What rcwebhook reads from its environment besides DEFAULTS' keys.
ENVIRONMENT_KEYS = ("RCWEBHOOK_CONFIG", COMPAT_ALIAS, "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY",
                    "NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM")


def _owned(key: str) -> bool:
    """Return whether a variable of the process environment names itself as rcwebhook's: the environment holds
    every program's variables, and only these are judged."""
    return key.startswith(("RCWEBHOOK_", "ROCKETCHAT_")) or "_ROCKETCHAT_" in key


def near_miss(key: str, known: Iterable[str]) -> str:
    """Return the known key that `key` is a misspelling of, or "": one edit away (a letter missing, added, changed,
    or two swapped; two in a key of 16 characters or more), or the same but for case. A hook set's key is
    judged by its part after the set's prefix, so that WEB_ROCKETCHAT_WEBHOK_WARNING means
    WEB_ROCKETCHAT_WEBHOOK_WARNING whether or not RECEIVERS names the set."""
    upper = key.upper()
    known = list(known)
    if upper in known:
        return upper
    best = ""
    for candidate in known:
        allowed = 2 if len(candidate) >= 16 else 1
        if abs(len(candidate) - len(upper)) <= allowed and _edits(upper, candidate, allowed) <= allowed:
            if not best or _edits(upper, candidate, 2) < _edits(upper, best, 2):
                best = candidate
    if best:
        return best
    head, sep, rest = upper.partition("_")
    while sep and rest:  # SET_ + a set key, the prefix being any run of words
        if rest in SET_KEYS:  # a well-formed key of a hook set (named in RECEIVERS or not): no misspelling
            return ""
        for suffix in SET_KEYS:
            allowed = 2 if len(suffix) >= 16 else 1
            if abs(len(suffix) - len(rest)) <= allowed and _edits(rest, suffix, allowed) <= allowed:
                return f"{upper[:len(upper) - len(rest)]}{suffix}"
        more, sep, rest = rest.partition("_")
        head += "_" + more
    return ""


def _edits(a: str, b: str, most: int) -> int:
    """Return the edit distance of `a` and `b` (insertions, deletions, substitutions and swaps of neighbours),
    or `most` + 1 once it is sure to be more than `most`."""
    previous2: List[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], previous2[j - 2] + 1)
        if min(row) > most:
            return most + 1
        previous2, previous = previous, row
    return previous[-1]


def _suggest(key: str, known: Iterable[str] = DEFAULTS) -> str:
    """Return `, did you mean X?` for the known key closest to `key`, or ''."""
    import difflib  # only for a misspelt key

    close = difflib.get_close_matches(key.upper(), list(known), n=1, cutoff=0.6)
    return f", did you mean {close[0]}?" if close else " (ignored)"


def build(values: Mapping[str, str], errors: List[str], warnings: List[str], source: str = "",
          where: Optional[Where] = None) -> Settings:
    """Return Settings from raw key values over DEFAULTS, adding every problem found to `errors`."""
    where = where or Where()
    raw = dict(DEFAULTS)
    raw.update(values)
    get = _Reader(raw, errors, where)
    url_keys = tuple(f"ROCKETCHAT_WEBHOOK_{name.upper()}" for name in ROUTES)

    receivers = _receivers(raw, errors, where)
    errors.extend(_stray_set_keys(values, receivers, where))
    for key in set_keys(receivers):
        raw.setdefault(key, "")
    severity_aliases = get.aliases("SEVERITY_ALIASES")
    default_severity = get.choice("DEFAULT_SEVERITY", ROUTES)
    icon_emoji = get.emoji("ROCKETCHAT_ICON_EMOJI")
    routes = _routes(raw, get, default_severity, receivers, icon_emoji, errors, where)
    dry_run = get.boolean("DRY_RUN")
    if not dry_run and routes is not None and not any(routes[name].url for name in ROUTES) \
            and not where.unsure(*url_keys, "DEFAULT_SEVERITY", "DRY_RUN"):
        errors.append(where.say(
            f"{NO_URL}: set ROCKETCHAT_WEBHOOK_"
            f"{default_severity.upper()} (used for every severity that has no URL of its own), "
            "or DRY_RUN=true to only log the messages"
        ))
    debug = get.boolean("DEBUG")
    log_level = raw["LOG_LEVEL"].strip().upper() or ("DEBUG" if debug else "INFO")
    if log_level not in _LOG_LEVELS:
        errors.append(where.say(f"LOG_LEVEL={raw['LOG_LEVEL']!r} is not one of {', '.join(_LOG_LEVELS)}",
                                "LOG_LEVEL"))
    host = raw["HOST"].strip()
    if not host and not where.unsure("HOST"):
        errors.append(where.say("HOST is empty: set an address to listen on, such as 127.0.0.1", "HOST"))
    api_key = raw["API_KEY"].strip()
    allow_unauthenticated = get.boolean("ALLOW_UNAUTHENTICATED")
    if not where.unsure("HOST", "API_KEY", "ALLOW_UNAUTHENTICATED"):
        errors.extend(where.say(problem, "HOST") for problem in exposure_problems(host, api_key, allow_unauthenticated))
    tls_cert, tls_key = raw["TLS_CERT_FILE"].strip(), raw["TLS_KEY_FILE"].strip()
    if bool(tls_cert) != bool(tls_key) and not where.unsure("TLS_CERT_FILE", "TLS_KEY_FILE"):
        errors.append(where.say("TLS_CERT_FILE and TLS_KEY_FILE go together: set both to serve TLS, or neither",
                                "TLS_CERT_FILE" if tls_cert else "TLS_KEY_FILE"))
    unreadable = set()
    for key in ("TLS_CERT_FILE", "TLS_KEY_FILE", "ROCKETCHAT_CA_FILE"):
        if raw[key].strip() and not os.access(raw[key].strip(), os.R_OK):
            errors.append(where.say(f"{key}={raw[key].strip()!r} cannot be read", key))
            unreadable.add(key)
    errors.extend(_tls_problems(raw, unreadable, where))
    if routes:
        for route in routes.values():
            if route.url and not route.url_from and urlsplit(route.url).scheme == "http" \
                    and not is_loopback(urlsplit(route.url).hostname or ""):
                key = route.url_key
                warnings.append(where.say(
                    f"{key} uses plain http to {urlsplit(route.url).hostname}: "
                    "its token crosses the network readable by anyone on the path; use https", key))

    zone = get.zone("TIMEZONE")
    compat = template_compat(raw, get)
    return Settings(
        host=host,
        port=get.integer("PORT", 0, 65535),
        routes=MappingProxyType(routes or {}),
        receivers=receivers,
        route_label=raw["ROUTE_LABEL"].strip() or DEFAULTS["ROUTE_LABEL"],
        channel_label=raw["CHANNEL_LABEL"].strip() or DEFAULTS["CHANNEL_LABEL"],
        default_severity=default_severity,
        severity_label=raw["SEVERITY_LABEL"].strip() or "severity",
        severity_aliases=severity_aliases,
        username=raw["ROCKETCHAT_USERNAME"].strip(),
        icon_emoji=icon_emoji,
        max_alerts_per_message=get.integer("MAX_ALERTS_PER_MESSAGE", 1, 100),
        timezone=zone,
        delivery_timeout=get.number("DELIVERY_TIMEOUT", 0.1, 300),
        delivery_deadline=get.number("DELIVERY_DEADLINE", 0.1, 3600),
        template_cpu_budget=get.number("TEMPLATE_CPU_BUDGET", 0.01, 60),
        rate_limit=get.rate("ROCKETCHAT_RATE_LIMIT"),
        dedup_window=_dedup_window(get, warnings, where),
        state_dir=raw["STATE_DIR"].strip(),
        threads=get.boolean("THREADS"),
        thread_ttl=get.number("THREAD_TTL", 60, 90 * 86400),
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
        proxies=get.proxies(),
        source=source,
        templates=_templates(raw, errors, zone, source, compat),
        template_compat=compat,
    )


def template_compat(raw: Mapping[str, str], get: Optional["_Reader"] = None) -> str:
    """Return TEMPLATE_COMPAT, checked against the levels amdata knows (a problem added through `get`)."""
    text = raw.get("TEMPLATE_COMPAT", "").strip() or DEFAULTS["TEMPLATE_COMPAT"]
    if text == DEFAULTS["TEMPLATE_COMPAT"]:
        return text
    from ..amtemplate.compat import COMPATS
    if text in COMPATS:
        return text
    if get is not None:
        get._fail("TEMPLATE_COMPAT", f"is not an Alertmanager version rcwebhook follows ({', '.join(COMPATS)})")
    return DEFAULTS["TEMPLATE_COMPAT"]


def _templates(raw: Mapping[str, str], errors: List[str], zone: tzinfo, source: str = "",
               compat: str = DEFAULTS["TEMPLATE_COMPAT"]) -> Any:
    """The templates TEMPLATE_FILES holds, when the TEMPLATE_* keys ask for them (else None); their
    times' .Local is in `zone` (TIMEZONE); relative globs are read from the env file's directory."""
    if not any(raw.get(k, "").strip() for k in ("TEMPLATE_FILES", "TEMPLATE_TEXT", "TEMPLATE_ATTACHMENT_TITLE",
                                                  "TEMPLATE_ATTACHMENT_TEXT")):
        return None
    from ..messages import templates as templating  # only when templates are configured
    base = str(Path(source).parent) if source and Path(source).is_file() else ""  # not /dev/null's /dev
    return templating.load(raw, errors, zone, base, compat)


def _dedup_window(get: "_Reader", warnings: List[str], where: "Where") -> float:
    """Return DEDUP_WINDOW, at most a minute: Alertmanager's reminders come at repeat_interval, which may
    be as short as a minute, and must be posted."""
    value = get.number("DEDUP_WINDOW", 0, 86400)
    if value > MAX_DEDUP_WINDOW:
        warnings.append(where.say(f"DEDUP_WINDOW={value:g} is over {MAX_DEDUP_WINDOW:g}: reminders sent more often "
                                  f"than that (repeat_interval) would not be posted; using {MAX_DEDUP_WINDOW:g}",
                                  "DEDUP_WINDOW"))
        value = MAX_DEDUP_WINDOW
    return value
def _tls_problems(raw: Mapping[str, str], unreadable: AbstractSet[str], where: Where) -> List[str]:
    """Return why the TLS files cannot be used, loading them as the daemon will (tls module)."""
    import ssl

    problems = []
    ca_file = raw["ROCKETCHAT_CA_FILE"].strip()
    if ca_file and "ROCKETCHAT_CA_FILE" not in unreadable:
        try:
            tls.client_context(ca_file)
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(where.say(f"ROCKETCHAT_CA_FILE={ca_file!r} holds no usable CA certificate in PEM "
                                      f"form: {tls.problem(exc)}", "ROCKETCHAT_CA_FILE"))
    cert, key = raw["TLS_CERT_FILE"].strip(), raw["TLS_KEY_FILE"].strip()
    if cert and key and not unreadable & {"TLS_CERT_FILE", "TLS_KEY_FILE"}:
        try:
            tls.server_context(cert, key)
        except (ssl.SSLError, OSError, ValueError) as exc:
            problems.append(where.say(f"TLS_CERT_FILE={cert!r} and TLS_KEY_FILE={key!r} are not a PEM certificate "
                                      f"chain and its private key: {tls.problem(exc)}", "TLS_CERT_FILE"))
    return problems


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
        suffix = _set_key_suffix(key)
        prefix = key[: len(key) - len(suffix)] if suffix else ""
        if suffix and prefix not in known:
            name = prefix[:-1].lower()
            listed = ",".join(list(receivers) + [name])
            problems.append(where.say(
                f"{key} is a key of the hook set {name!r}, which RECEIVERS does not name: add it "
                f"(RECEIVERS={listed}), or remove the key", key))
    return problems


class _SetView(Mapping[str, str]):
    """A hook set's keys, read by their default-set names: DB_ROCKETCHAT_WEBHOOK_INFO as ROCKETCHAT_WEBHOOK_INFO."""

    def __init__(self, raw: Mapping[str, str], receiver: str) -> None:
        self.raw, self.prefix = raw, key_prefix(receiver)

    def __getitem__(self, key: str) -> str:
        return self.raw.get(self.prefix + key, "")

    def __iter__(self):
        return iter(SET_KEYS)

    def __len__(self) -> int:
        return len(SET_KEYS)


def _routes(
    raw: Mapping[str, str], get: "_Reader", default_severity: str, receivers: Sequence[str], emoji: str,
    errors: List[str], where: Where
) -> Optional[Dict[str, Route]]:
    """Return the routes of every hook set, each with its URL or the one it falls back to.

    A route without a URL of its own takes its set's DEFAULT_SEVERITY URL; in a hook set other than the
    default one, a route still without one takes the default set's route of its severity (URL, and its
    channel when the set names none)."""
    routes: Dict[str, Route] = {}
    username = raw["ROCKETCHAT_USERNAME"].strip()
    for receiver in ("",) + tuple(receivers):
        prefix = key_prefix(receiver)
        view = _SetView(raw, receiver)
        own = {name: get.webhook_url(f"{prefix}ROCKETCHAT_WEBHOOK_{name.upper()}") for name in ROUTES}
        # A route's mentions are its own: one that borrows another route's URL does not borrow them.
        mention = {name: get.mentions(f"{prefix}MENTION_{name.upper()}") for name in ROUTES}
        if any(url is None for url in own.values()):
            return None
        set_username = view["ROCKETCHAT_USERNAME"].strip() or username
        set_emoji = (get.emoji(f"{prefix}ROCKETCHAT_ICON_EMOJI") if receiver else "") or emoji
        for name in ROUTES:
            url, url_from, url_key = own[name], "", f"{prefix}ROCKETCHAT_WEBHOOK_{name.upper()}"
            channel = view[f"ROCKETCHAT_CHANNEL_{name.upper()}"].strip()
            if not url and own[default_severity]:
                url, url_from = own[default_severity], route_name(receiver, default_severity)
                url_key = f"{prefix}ROCKETCHAT_WEBHOOK_{default_severity.upper()}"
            elif not url and receiver:
                borrowed = routes[name]
                url, url_from, url_key = borrowed.url, borrowed.name, borrowed.url_key
                channel = channel or borrowed.channel
            routes[route_name(receiver, name)] = Route(route_name(receiver, name), url, channel, url_from,
                                                       set_username, set_emoji, url_key if url else "",
                                                       mention[name])
        if not receiver and any(own.values()) and not own[default_severity] \
                and not where.unsure(*(f"ROCKETCHAT_WEBHOOK_{n.upper()}" for n in ROUTES)):
            missing = [n for n in ROUTES if not own[n]]
            errors.append(where.say(
                f"ROCKETCHAT_WEBHOOK_{default_severity.upper()} is not set, so alerts of severity "
                f"{', '.join(missing)} would have nowhere to go: set it, or set DEFAULT_SEVERITY "
                f"to a severity that has a URL ({', '.join(n for n in ROUTES if own[n])})", "DEFAULT_SEVERITY"
            ))
    return routes


# A hook's path: /hooks/ID/TOKEN, or the legacy /hooks/ID/USER_ID/TOKEN, after the path Rocket.Chat
# is served under, if any. A segment is any run of URL characters but `/`, `?` and `#`.
_SEGMENT = r"[A-Za-z0-9._~%!$&'()*+,;=:@-]+"
_HOOK_PATH = re.compile(rf"(?:/{_SEGMENT})*?/hooks/{_SEGMENT}/(?:{_SEGMENT}/)?{_SEGMENT}")
_BLANK_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _hook_url_problem(url: str) -> str:
    """Return what keeps `url` from being a Rocket.Chat incoming-webhook URL, or ''."""
    if _BLANK_OR_CONTROL.search(url):
        return "holds a space or a control character (a word pasted after it?)"
    parts = urlsplit(url)
    try:
        port_ok = parts.port != 0
    except ValueError:  # a port that is not a number, or out of range
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        return "is not an absolute http(s) URL"
    if "@" in parts.netloc:
        return "holds a user name or password before the host"
    if parts.query or parts.fragment or url.endswith(("?", "#")) or not _HOOK_PATH.fullmatch(parts.path):
        return "is not an incoming-webhook URL (its path must be /hooks/ID/TOKEN and nothing after it)"
    return ""


class _Reader:
    """Typed access to raw values; each bad value adds one error naming the key."""

    def __init__(self, raw: Mapping[str, str], errors: List[str], where: Where) -> None:
        self.raw = raw
        self.errors = errors
        self.where = where

    def _fail(self, key: str, why: str):
        self.errors.append(self.where.say(f"{key}={self.raw[key]!r} {why}", key))
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

    def zone(self, key: str) -> tzinfo:
        text = self.raw[key].strip()
        if text in ("", "UTC"):
            return dt_timezone.utc  # needs no time zone database
        from zoneinfo import ZoneInfo  # only for another zone

        try:
            return ZoneInfo(text)
        except (KeyError, ValueError, OSError):  # not found (a KeyError), a path, not a TZif file
            pass
        import zoneinfo

        hint = "" if zoneinfo.available_timezones() else \
            " (this host has no time zone database: install the tzdata package)"
        self._fail(key, f"is not a time zone name such as Europe/Berlin or UTC{hint}")
        return dt_timezone.utc

    def webhook_url(self, key: str) -> Optional[str]:
        text = self.raw[key].strip()
        if not text:
            return ""
        why = _hook_url_problem(text)
        if why:
            # The value is a secret: name the key, never echo it.
            self.errors.append(self.where.say(f"{key} {why}; expected https://HOST[:PORT]/hooks/ID/TOKEN as "
                                              "Rocket.Chat's incoming integration shows it", key))
            return None
        return text

    def mentions(self, key: str) -> str:
        found, wrong = mentions.words(self.raw[key])
        for word in wrong:
            self.errors.append(self.where.say(f"{key}={self.raw[key].strip()!r}: {mentions.problem(word)}", key))
        return " ".join(found)

    def proxies(self) -> Mapping[str, str]:
        result = {}
        for key in PROXY_KEYS:
            text = self.raw[key].strip()
            if not text:
                continue
            if key != "NO_PROXY":
                parts = urlsplit(text if "://" in text else f"http://{text}")  # urllib's reading of host:port
                try:
                    valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
                except ValueError:
                    valid = False
                if not valid or _BLANK_OR_CONTROL.search(text):
                    # It may hold a password: name the key, never echo it.
                    self.errors.append(self.where.say(f"{key} is not a proxy URL such as http://proxy.example.com:3128",
                                                      key))
                    continue
            result[key[:-len("_PROXY")].lower()] = text
        return MappingProxyType(result)

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
        "TIMEZONE": str(settings.timezone),
        "DELIVERY_TIMEOUT": f"{settings.delivery_timeout:g}",
        "DELIVERY_DEADLINE": f"{settings.delivery_deadline:g}",
        "TEMPLATE_CPU_BUDGET": f"{settings.template_cpu_budget:g}",
        "ROCKETCHAT_RATE_LIMIT": f"{settings.rate_limit[0]}/{settings.rate_limit[1]:g}" if settings.rate_limit[0] else "0",
        "DEDUP_WINDOW": f"{settings.dedup_window:g}",
        "STATE_DIR": settings.state_dir or "(none: state in memory only)",
        "THREADS": str(settings.threads).lower(),
        "THREAD_TTL": f"{settings.thread_ttl:g}",
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
        **{f"{scheme.upper()}_PROXY": redact(url, settings.secrets()) for scheme, url in settings.proxies.items()},
        "TEMPLATE_COMPAT": settings.template_compat,
        **({"TEMPLATE_FILES": settings.templates.files,
            **{key: settings.templates.names.get(part, "") for key, part in (
                ("TEMPLATE_TEXT", "text"), ("TEMPLATE_ATTACHMENT_TITLE", "title"),
                ("TEMPLATE_ATTACHMENT_TEXT", "attachment_text"))}} if settings.templates else {}),
    }
    for name in ROUTES:
        route = settings.routes.get(name)
        if route is None:
            continue
        shown = redact_url(route.url) if route.url else "(not set)"
        if route.url_from:
            shown += f"  # from {route.url_key}"
        values[f"ROCKETCHAT_WEBHOOK_{name.upper()}"] = shown
        values[f"ROCKETCHAT_CHANNEL_{name.upper()}"] = route.channel
        values[f"MENTION_{name.upper()}"] = route.mention
    values["RECEIVERS"] = ",".join(settings.receivers)
    values["ROUTE_LABEL"] = settings.route_label
    values["CHANNEL_LABEL"] = settings.channel_label
    lines.extend(f"{key}={values[key]}" for key in DEFAULTS if key in values)
    for receiver in settings.receivers:
        prefix = key_prefix(receiver)
        for name in ROUTES:
            route = settings.routes[route_name(receiver, name)]
            if route.url_key == f"{prefix}ROCKETCHAT_WEBHOOK_{name.upper()}":
                lines.append(f"{route.url_key}={redact_url(route.url)}")
            if route.channel and route.url_key.startswith(prefix):
                lines.append(f"{prefix}ROCKETCHAT_CHANNEL_{name.upper()}={route.channel}")
            if route.mention:
                lines.append(f"{prefix}MENTION_{name.upper()}={route.mention}")
        first = settings.routes[route_name(receiver, ROUTES[0])]
        lines.append(f"{prefix}ROCKETCHAT_USERNAME={first.username}")
        lines.append(f"{prefix}ROCKETCHAT_ICON_EMOJI={first.icon_emoji}")
    lines.extend(route_table(settings))
    return lines


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

