"""Loading: the env file, the process environment and the credentials, read into Settings.

The environment wins over the file; a secret may also come from KEY_FILE or a systemd credential.
Unknown keys are told: a near-miss of a known key is an error (its alerts would quietly go
elsewhere), another unknown key a warning.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from . import envfile
from .keys import DEFAULTS, PROXY_KEYS, SET_KEYS, URL_KEYS, key_prefix, receiver_names, \
    set_key_suffix, set_keys
from .secrets import secrets_in
from .settings import ConfigError, Settings, TemplateCompiler, Where, build

SYSTEM_CONFIG = "/etc/rcwebhook/rcwebhook.env"
LOCAL_CONFIG = ".env"
COMPAT_ALIAS = "RCWEBHOOK_TEMPLATE_COMPAT"  # TEMPLATE_COMPAT's name before it was a setting


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
    compile_templates: Optional[TemplateCompiler] = None,
) -> Tuple[Settings, List[str]]:
    """Return the settings from `path` and `environ` (which wins) and the warnings; raise ConfigError.
    `compile_templates` is as settings.build takes it."""
    errors: List[str] = []
    warnings: List[str] = []
    values: Dict[str, str] = {}
    unknown: List[Tuple[str, int]] = []
    where = Where(str(path) if path is not None else "(no config file)")
    if path is not None:
        values.update(_read_file(path, errors, warnings, where, unknown))
    _from_environ(DEFAULTS, environ, values, where, path is not None)
    if "TEMPLATE_COMPAT" not in environ and COMPAT_ALIAS in environ:
        values["TEMPLATE_COMPAT"] = environ[COMPAT_ALIAS]
        where.origins["TEMPLATE_COMPAT"] = f"the environment's {COMPAT_ALIAS}"
        where.broken.discard("TEMPLATE_COMPAT")
    values.update(overrides or {})
    # RECEIVERS, wherever it was set, says which prefixed keys exist: only now can they be read
    # from the environment and the file's unknown keys be told.
    receivers = receiver_names(values.get("RECEIVERS", ""))
    _from_environ(set_keys(receivers), environ, values, where, path is not None)
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
        _warn_if_world_readable(path, [k for k in values if (k == "API_KEY" or k.endswith(URL_KEYS))
                                       and values[k].strip() and k not in environ], warnings)
    if not values.get("STATE_DIR", "").strip() and environ.get("STATE_DIRECTORY"):
        values["STATE_DIR"] = environ["STATE_DIRECTORY"].split(":")[0]  # systemd's StateDirectory=
    _resolve_secrets(values, environ.get("CREDENTIALS_DIRECTORY", ""), errors, where,
                     [key_prefix(name) + key for name in [""] + receivers for key in URL_KEYS] + ["API_KEY"])
    settings = build(values, errors, warnings, source=str(path or ""), where=where,
                     compile_templates=compile_templates)
    if errors:
        raise ConfigError(errors, warnings, secrets_in(values))
    if settings.rocketchat_ca_file:
        from .certs import ca_file_warnings  # only with a CA file

        warnings.extend(where.say(w, "ROCKETCHAT_CA_FILE") for w in ca_file_warnings(settings.rocketchat_ca_file))
    return settings, warnings


def _from_environ(keys: Iterable[str], environ: Mapping[str, str], values: Dict[str, str], where: Where,
                  file_read: bool) -> None:
    """Take the values `environ` sets of `keys` over the file's."""
    for key in keys:
        # A proxy key's lower-case form wins, as in curl and urllib.
        name = key.lower() if key in PROXY_KEYS and key.lower() in environ else key
        if name in environ:
            values[key] = environ[name]
            where.origins[key] = f"{where.general} (overridden by the environment's {key})" if file_read \
                else "the environment"
            where.broken.discard(key)


def _resolve_secrets(values: Dict[str, str], credentials: str, errors: List[str], where: Where,
                     keys: Sequence[str]) -> None:
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
    with contextlib.suppress(OSError):
        if keys and path.stat().st_mode & 0o004:
            warnings.append(f"{path} holds secrets ({', '.join(keys)}) and every user on this host can read it: "
                            f"chmod 0640 {path} (owner root, group rcwebhook), or move them to *_FILE keys or "
                            "systemd credentials")


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
        if entry.key not in DEFAULTS and not set_key_suffix(entry.key):
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
# What rcwebhook reads from its environment besides the keys.
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
    slips = [candidate for candidate in known if _one_slip(upper, candidate)]
    if slips:
        return min(slips, key=lambda candidate: _edits(upper, candidate, 2))  # the first of the closest
    _, sep, rest = upper.partition("_")
    while sep and rest:  # SET_ + a set key, the prefix being any run of words
        if rest in SET_KEYS:  # a well-formed key of a hook set (named in RECEIVERS or not): no misspelling
            return ""
        suffix = next((suffix for suffix in SET_KEYS if _one_slip(rest, suffix)), "")
        if suffix:
            return f"{upper[:len(upper) - len(rest)]}{suffix}"
        _, sep, rest = rest.partition("_")
    return ""


def _one_slip(key: str, known: str) -> bool:
    """Return whether `key` is one edit from `known`, or two when `known` has 16 characters or more."""
    allowed = 2 if len(known) >= 16 else 1
    return abs(len(known) - len(key)) <= allowed and _edits(key, known, allowed) <= allowed


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


def _suggest(key: str, known: Iterable[str]) -> str:
    """Return `, did you mean X?` for the known key closest to `key`, or ''."""
    import difflib  # only for a misspelt key

    close = difflib.get_close_matches(key.upper(), list(known), n=1, cutoff=0.6)
    return f", did you mean {close[0]}?" if close else " (ignored)"
