"""README and the example env file stay true to the code."""

from __future__ import annotations

import re

from rcwebhook import config
from rcwebhook.cli import parse_args
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
EXAMPLE_ENV = ROOT / "examples" / "rcwebhook.env"


def test_every_key_is_documented_in_the_readme():
    documented = set(re.findall(r"`([A-Z][A-Z_]+)`", README))
    channel_keys = {k for k in config.DEFAULTS if k.startswith("ROCKETCHAT_CHANNEL_")}
    assert set(config.DEFAULTS) - channel_keys - documented == set()
    assert "ROCKETCHAT_CHANNEL_CRITICAL" in README


def test_every_key_is_in_the_example_env_file_and_it_is_valid():
    text = EXAMPLE_ENV.read_text()
    for key in config.DEFAULTS:
        assert re.search(rf"^#?{key}=", text, re.M), key
    settings, warnings = config.load(EXAMPLE_ENV, {"DRY_RUN": "true"})
    assert warnings == []
    assert settings.port == 8093


def test_example_aliases_comment_matches_the_default():
    assert config.DEFAULT_SEVERITY_ALIASES in EXAMPLE_ENV.read_text()


def test_every_option_is_in_the_readme():
    for option in ("--config", "--dry-run", "--check-config", "--version", "--help"):
        assert option in README
    assert parse_args([]).config is None


MAN_PAGE = (ROOT / "packaging" / "debian" / "rcwebhook.8").read_text()


def test_man_page_matches_help():
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        parse_args(["--help"])
    man = MAN_PAGE.replace("\\-", "-")
    for option in set(re.findall(r"--[a-z][a-z-]+", out.getvalue())):
        assert option in man, option
    for key in config.DEFAULTS:
        assert f".B {key}\n" in MAN_PAGE, key
    from rcwebhook import __version__
    assert f'"rcwebhook {__version__}"' in MAN_PAGE.splitlines()[0]


def test_debian_changelog_version_matches_the_code():
    from rcwebhook import __version__
    first = (ROOT / "packaging" / "debian" / "changelog").read_text().splitlines()[0]
    assert first.startswith(f"rcwebhook ({__version__}) ")


def help_text() -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        parse_args(["--help"])
    return " ".join(out.getvalue().split())


def test_the_readme_layout_names_every_module():
    layout = README.split("## Layout", 1)[1]
    for module in sorted((ROOT / "rcwebhook").glob("*.py")):
        if module.stem != "__init__":
            assert f"`{module.stem}`" in layout, module.stem


# One description of each timeout, the same wherever it is told.
TIMEOUTS = {
    "DELIVERY_TIMEOUT": "seconds to connect to Rocket.Chat and send one post; its answer is then "
                        "awaited up to 60 s, or twice this, before the post is sent again",
    "REQUEST_TIMEOUT": "seconds a client may take to send a request, from its first byte to its last; "
                       "a kept-alive connection may also sit idle this long",
}


def test_the_timeouts_are_described_alike_everywhere():
    example = " ".join(EXAMPLE_ENV.read_text().replace("#", " ").split()).lower()
    man = " ".join(MAN_PAGE.replace("\\-", "-").split()).lower()
    readme = " ".join(README.split()).lower()
    helped = help_text().lower()
    for key, text in TIMEOUTS.items():
        for name, place in (("README", readme), ("examples/rcwebhook.env", example), ("man page", man),
                            ("--help", helped)):
            assert text.lower() in place, f"{key} in {name}"


def test_every_exit_status_is_documented_alike():
    man = MAN_PAGE.replace("\\-", "-")
    helped = help_text()
    for status in ("0", "1", "2", "78"):
        assert f".B {status}\n" in man, status
    assert "2 when the command line is wrong" in helped
    assert "2 when the command line is wrong" in " ".join(README.split())
