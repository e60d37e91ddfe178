"""Settings: lookup order, precedence, validation, fallbacks and masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from rcwebhook.config import loading
from rcwebhook.config.describe import describe
from rcwebhook.config.secrets import redact_url
from rcwebhook.config.settings import ConfigError

HOOK = "https://chat.example.com/hooks/abc123/SECRETTOKEN"


def write(tmp_path: Path, text: str, name: str = "rcwebhook.env", mode: int = 0o640) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(mode)
    return path


def problems(path, environ=None) -> list:
    with pytest.raises(ConfigError) as caught:
        loading.load(path, environ or {})
    return caught.value.problems


def test_defaults_with_one_url(tmp_path):
    settings, warnings = loading.load(write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\n"), {})
    assert warnings == []
    assert (settings.host, settings.port, settings.default_severity) == ("127.0.0.1", 8093, "warning")
    assert settings.delivery_timeout == 5 and settings.max_body_bytes == 4 * 1024 * 1024
    assert settings.dry_run is False and settings.log_level == "INFO" and settings.log_file == ""


def test_route_without_url_falls_back_to_default_route(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nROCKETCHAT_WEBHOOK_CRITICAL={HOOK}2\n")
    settings, _ = loading.load(path, {})
    assert settings.routes["critical"].url == HOOK + "2"
    assert settings.routes["info"].url == HOOK
    assert settings.routes["info"].url_from == "warning"
    assert settings.routes["critical"].url_from == ""


def test_process_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, f"PORT=9000\nROCKETCHAT_WEBHOOK_WARNING={HOOK}\n")
    settings, _ = loading.load(path, {"PORT": "9100", "UNRELATED": "x"})
    assert settings.port == 9100


def test_no_url_at_all_refuses_to_start_naming_the_key(tmp_path):
    found = problems(write(tmp_path, "PORT=8093\n"))
    assert len(found) == 1
    assert "ROCKETCHAT_WEBHOOK_WARNING" in found[0] and "DRY_RUN=true" in found[0]


def test_no_url_is_fine_in_dry_run(tmp_path):
    settings, _ = loading.load(write(tmp_path, "DRY_RUN=true\n"), {})
    assert settings.dry_run is True


def test_default_route_without_url_while_others_have_one_is_an_error(tmp_path):
    found = problems(write(tmp_path, f"ROCKETCHAT_WEBHOOK_CRITICAL={HOOK}\n"))
    assert any("ROCKETCHAT_WEBHOOK_WARNING is not set" in p and "DEFAULT_SEVERITY" in p for p in found)


def test_default_severity_can_point_at_a_route_with_a_url(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_CRITICAL={HOOK}\nDEFAULT_SEVERITY=critical\n")
    settings, _ = loading.load(path, {})
    assert {r.url for r in settings.routes.values()} == {HOOK}


def test_every_invalid_value_is_reported_in_one_run(tmp_path):
    text = (
        "PORT=99999\n"
        "DELIVERY_TIMEOUT=soon\n"
        "DRY_RUN=maybe\n"
        "ROCKETCHAT_WEBHOOK_CRITICAL=chat.example.com/hooks/a/b\n"
        "ROCKETCHAT_WEBHOOK_WARNING=ftp://chat.example.com/hooks/a/b\n"
        "LOG_LEVEL=loud\n"
        "MAX_BODY_BYTES=-1\n"
        "DEFAULT_SEVERITY=urgent\n"
        "SEVERITY_ALIASES=p1:critical,p2\n"
        "broken line\n"
    )
    found = problems(write(tmp_path, text))
    joined = "\n".join(found)
    for expected in (
        "rcwebhook.env:10: expected KEY=VALUE",
        "PORT='99999' is out of range (0 to 65535)",
        "DELIVERY_TIMEOUT='soon' is not a number of seconds",
        "DRY_RUN='maybe' is not true or false",
        "ROCKETCHAT_WEBHOOK_CRITICAL is not an absolute http(s) URL",
        "ROCKETCHAT_WEBHOOK_WARNING is not an absolute http(s) URL",
        "LOG_LEVEL='loud' is not one of",
        "MAX_BODY_BYTES='-1' is out of range",
        "DEFAULT_SEVERITY='urgent' is not one of critical, warning, info",
        "SEVERITY_ALIASES='p1:critical,p2' has 'p2'",
    ):
        assert expected in joined
    assert "chat.example.com/hooks/a/b" not in joined  # a URL is a secret: never echoed


def test_port_that_is_not_a_number(tmp_path):
    path = write(tmp_path, "PORT=http\nDRY_RUN=1\n")
    assert f"{path}:1: PORT='http' is not a whole number" in problems(path)


def test_a_misspelt_key_is_an_error_with_the_key_it_misses_and_an_unrelated_one_a_warning(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_CRITCAL={HOOK}\nROCKETCHAT_WEBHOOK_WARNING={HOOK}\nFOO=1\n")
    with pytest.raises(ConfigError) as caught:
        loading.load(path, {})
    assert caught.value.problems == [
        f"{path}:1: unknown key ROCKETCHAT_WEBHOOK_CRITCAL, did you mean ROCKETCHAT_WEBHOOK_CRITICAL? (a near-miss of a known key is an error: fix its spelling, or remove it)"
    ]
    assert caught.value.warnings == [f"{path}:3: unknown key FOO (ignored)"]


def test_key_set_twice_warns_and_the_last_wins(tmp_path):
    path = write(tmp_path, "DRY_RUN=true\nPORT=1\nPORT=2\n")
    settings, warnings = loading.load(path, {})
    assert settings.port == 2
    assert warnings == [f"{path}:3: PORT set again; line 2's value is ignored"]


def test_unreadable_file_is_an_error(tmp_path):
    found = problems(tmp_path / "missing.env")
    assert found[0].startswith(f"cannot read config file {tmp_path / 'missing.env'}")


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "rcwebhook.env"
    path.write_bytes(b"DRY_RUN=true\nA=\xff\n")
    assert problems(path, {"DRY_RUN": "true"}) == [f"{path}:2: not valid UTF-8 (byte 0xff)"]


def test_severity_aliases_replace_the_defaults_case_insensitively(tmp_path):
    path = write(tmp_path, "DRY_RUN=true\nSEVERITY_ALIASES=P1:Critical, sev2:warning\n")
    settings, _ = loading.load(path, {})
    assert dict(settings.severity_aliases) == {"p1": "critical", "sev2": "warning"}


def test_default_aliases_cover_common_names(tmp_path):
    settings, _ = loading.load(write(tmp_path, "DRY_RUN=true\n"), {})
    aliases = settings.severity_aliases
    assert (aliases["page"], aliases["error"], aliases["high"]) == ("critical",) * 3
    assert (aliases["warn"], aliases["medium"]) == ("warning",) * 2
    assert (aliases["low"], aliases["none"], aliases["debug"]) == ("info",) * 3


def test_debug_implies_debug_log_level_unless_set(tmp_path):
    settings, _ = loading.load(write(tmp_path, "DRY_RUN=true\nDEBUG=true\n"), {})
    assert settings.log_level == "DEBUG"
    settings, _ = loading.load(write(tmp_path, "DRY_RUN=true\nDEBUG=true\nLOG_LEVEL=warning\n"), {})
    assert settings.log_level == "WARNING"


def test_icon_emoji_must_look_like_an_emoji(tmp_path):
    path = write(tmp_path, "DRY_RUN=true\nROCKETCHAT_ICON_EMOJI=bell\n")
    assert problems(path) == [f"{path}:2: ROCKETCHAT_ICON_EMOJI='bell' is not an emoji name such as :bell:"]


def test_describe_masks_every_token(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\n")
    settings, _ = loading.load(path, {})
    text = "\n".join(describe(settings))
    assert "SECRETTOKEN" not in text
    assert "ROCKETCHAT_WEBHOOK_WARNING=https://chat.example.com/hooks/abc123/***" in text
    assert "ROCKETCHAT_WEBHOOK_INFO=https://chat.example.com/hooks/abc123/***  # from ROCKETCHAT_WEBHOOK_WARNING" in text


@pytest.mark.parametrize(
    "url, shown",
    [
        ("https://chat.example.com/hooks/abc/tok", "https://chat.example.com/hooks/abc/***"),
        ("https://chat.example.com/hooks/abc/user/tok", "https://chat.example.com/hooks/abc/***"),
        ("http://10.0.0.1:3000/rc/hooks/abc/tok", "http://10.0.0.1:3000/rc/hooks/abc/***"),
        ("https://user:pw@chat.example.com/other/path?token=x", "https://chat.example.com/***"),
    ],
)
def test_redact_url_keeps_host_and_id_only(url, shown):
    assert redact_url(url) == shown


def test_secrets_are_the_tokens_of_every_route(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\nROCKETCHAT_WEBHOOK_INFO=https://h/hooks/i/u/T2\n")
    settings, _ = loading.load(path, {})
    assert settings.secrets() == ("SECRETTOKEN", "T2")  # the legacy form's token: its last segment


class TestFindConfig:
    def test_explicit_path_wins(self, tmp_path):
        assert loading.find_config("/x.env", {"RCWEBHOOK_CONFIG": "/y.env"}, tmp_path) == Path("/x.env")

    def test_environment_variable_next(self, tmp_path):
        assert loading.find_config(None, {"RCWEBHOOK_CONFIG": "/y.env"}, tmp_path) == Path("/y.env")

    def test_local_dotenv_when_no_system_file(self, tmp_path, monkeypatch):
        monkeypatch.setattr(loading, "SYSTEM_CONFIG", str(tmp_path / "absent.env"))
        assert loading.find_config(None, {}, tmp_path) is None
        (tmp_path / ".env").write_text("")
        assert loading.find_config(None, {}, tmp_path) == tmp_path / ".env"

    def test_system_file_before_local_dotenv(self, tmp_path, monkeypatch):
        system = write(tmp_path, "", "system.env")
        monkeypatch.setattr(loading, "SYSTEM_CONFIG", str(system))
        (tmp_path / ".env").write_text("")
        assert loading.find_config(None, {}, tmp_path) == system


# --- every message names its file; hints always; no follow-on errors ---------------------------

def test_every_problem_and_warning_names_the_file_and_where_possible_the_line(tmp_path):
    path = write(tmp_path, "PORT=http\nPORTT=1\nHOST=0.0.0.0\nDELIVERY_TIMEOUT=1\nDELIVERY_TIMEOUT=-1\n")
    with pytest.raises(ConfigError) as caught:
        loading.load(path, {"LOG_LEVEL": "loud"})
    messages = caught.value.problems + caught.value.warnings
    assert f"{path}:1: PORT='http' is not a whole number" in messages
    assert f"{path}:5: DELIVERY_TIMEOUT='-1' is out of range (0.1 to 300 seconds)" in messages
    assert f"{path}:2: unknown key PORTT, did you mean PORT? (a near-miss of a known key is an error: fix its spelling, or remove it)" in messages
    assert any(m.startswith(f"{path}:3: HOST=0.0.0.0 lets other hosts reach rcwebhook") for m in messages)
    assert any(m.startswith(f"{path} (overridden by the environment's LOG_LEVEL): LOG_LEVEL='loud'")
               for m in messages)
    assert any(m.startswith(f"{path}: no Rocket.Chat webhook URL is set") for m in messages)
    assert all(str(path) in m for m in messages), messages


def test_an_unreadable_line_causes_no_follow_on_errors_about_its_key(tmp_path):
    path = write(tmp_path, f'ROCKETCHAT_WEBHOOK_WARNING="{HOOK}\nHOST=0.0.0.0\nAPI_KEY=\'k3y\nTLS_CERT_FILE="/x\n')
    assert problems(path) == [
        f'{path}:1: unterminated double-quoted value (add the closing ")',
        f"{path}:3: unterminated single-quoted value (add the closing ')",
        f'{path}:4: unterminated double-quoted value (add the closing ")',
    ]


def test_problems_about_other_keys_are_still_told_after_an_unreadable_line(tmp_path):
    found = problems(write(tmp_path, "PORT='8093\n"))
    assert len(found) == 2 and "no Rocket.Chat webhook URL is set" in found[1]


def test_dedup_window_over_a_minute_is_lowered_so_reminders_are_posted(tmp_path):
    settings, warnings = loading.load(write(tmp_path, "DRY_RUN=true\nDEDUP_WINDOW=300\n"), {})
    assert settings.dedup_window == 60
    assert any("DEDUP_WINDOW=300 is over 60" in w and "rcwebhook.env:2" in w for w in warnings), warnings


def test_state_dir_defaults_to_systemds_state_directory(tmp_path):
    path = tmp_path / "rcwebhook.env"
    path.write_text("DRY_RUN=true\n")
    settings, _ = loading.load(path, {"STATE_DIRECTORY": "/var/lib/rcwebhook"})
    assert settings.state_dir == "/var/lib/rcwebhook"
    path.write_text("DRY_RUN=true\nSTATE_DIR=/srv/state\n")
    assert loading.load(path, {"STATE_DIRECTORY": "/var/lib/rcwebhook"})[0].state_dir == "/srv/state"


@pytest.mark.parametrize("value", ["Mars/Olympus", "../../etc/passwd", "Europe", "/etc/localtime", "CET CEST"])
def test_an_unknown_timezone_is_refused_naming_the_line(tmp_path, value):
    path = write(tmp_path, f"DRY_RUN=true\nTIMEZONE={value}\n")
    assert problems(path) == [f"{path}:2: TIMEZONE={value!r} is not a time zone name such as Europe/Berlin or UTC"]


def test_timezone_defaults_to_utc_which_needs_no_zone_database(tmp_path):
    settings, _ = loading.load(write(tmp_path, "DRY_RUN=true\n"), {})
    assert str(settings.timezone) == "UTC" and settings.timezone.utcoffset(None).total_seconds() == 0
    settings, _ = loading.load(write(tmp_path, "DRY_RUN=true\nTIMEZONE=America/New_York\n"), {})
    assert str(settings.timezone) == "America/New_York"


# --- a near-miss of a known key is an error; other unknown keys stay warnings ---------------------

NEAR_MISS = " (a near-miss of a known key is an error: fix its spelling, or remove it)"


@pytest.mark.parametrize("written, meant", [
    ("ROCKETCHAT_WEBHOOK_CRITCAL", "ROCKETCHAT_WEBHOOK_CRITICAL"),
    ("ROCKETCHAT_WEBHOOK_CRTICAL", "ROCKETCHAT_WEBHOOK_CRITICAL"),  # two letters swapped
    ("ROCKETCHAT_WEBHOK_WARNNG", "ROCKETCHAT_WEBHOOK_WARNING"),  # two letters missing, in a long key
    ("WEB_ROCKETCHAT_WEBHOK_WARNING", "WEB_ROCKETCHAT_WEBHOOK_WARNING"),  # a hook set's, RECEIVERS naming it or not
    ("MENTION_CRITCAL", "MENTION_CRITICAL"),
    ("DELIVERY_TIMOUT", "DELIVERY_TIMEOUT"),
    ("TEMPLATE_FILE", "TEMPLATE_FILES"),
    ("THREAD", "THREADS"),
    ("PORTT", "PORT"),
    ("port", "PORT"),
])
def test_a_misspelt_key_in_the_env_file_is_an_error_naming_the_key_meant(tmp_path, written, meant):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\n{written}=1\n")
    with pytest.raises(ConfigError) as caught:
        loading.load(path, {})
    assert caught.value.problems == [f"{path}:2: unknown key {written}, did you mean {meant}?{NEAR_MISS}"]


@pytest.mark.parametrize("key", ["PATH", "HOME", "LANG", "TZ", "PYTHONPATH", "ALL_PROXY", "SSL_CERT_FILE",
                                 "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "HOSTNAME", "ROCKETCHAT_URL", "WEBHOOK_URL",
                                 "TIMEOUT", "LOG_FORMAT", "API_TOKEN"])
def test_an_unrelated_key_in_the_env_file_stays_a_warning(tmp_path, key):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\n{key}=1\n")
    _, warnings = loading.load(path, {})
    assert [w for w in warnings if key in w] and all("unknown key" in w for w in warnings), warnings


@pytest.mark.parametrize("key", ["FLASK_APP", "FLASK_DEBUG", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY"])
def test_the_old_scripts_keys_stay_warnings_saying_rcwebhook_has_no_use_for_them(tmp_path, key):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\n{key}=1\n")
    _, warnings = loading.load(path, {})
    assert warnings == [f"{path}:2: {key} is a key of the Flask script rcwebhook replaces; rcwebhook has no use "
                        "for it (ignored)"]


def test_a_misspelt_rcwebhook_variable_of_the_environment_is_an_error_and_other_variables_are_not_judged(tmp_path):
    path = write(tmp_path, f"ROCKETCHAT_WEBHOOK_WARNING={HOOK}\n")
    environ = {"PATH": "/usr/bin", "HOSTS": "x", "PORTT": "1", "HOME": "/root", "RCWEBHOOK_AMTOOL_028": "/x",
               "DB_ROCKETCHAT_WEBHOOK_CRITICAL": HOOK, "ROCKETCHAT_WEBHOOK_CRITCAL": HOOK}
    with pytest.raises(ConfigError) as caught:
        loading.load(path, environ)
    assert caught.value.problems == [
        "the environment's ROCKETCHAT_WEBHOOK_CRITCAL is unknown, did you mean ROCKETCHAT_WEBHOOK_CRITICAL? (a "
        "near-miss of a known key is an error: fix its spelling, or unset it)"]
    del environ["ROCKETCHAT_WEBHOOK_CRITCAL"]
    settings, warnings = loading.load(path, environ)
    assert warnings == [] and settings.port == 8093
