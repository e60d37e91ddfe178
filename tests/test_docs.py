"""README, the docs/ pages, the man page and the example env file stay true to the code and to each other."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from rcwebhook.config import loading
from rcwebhook.config.keys import BY_NAME, DEFAULT_SEVERITY_ALIASES, KEYS
from rcwebhook.cli import parse_args
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
EXAMPLE_ENV = ROOT / "examples" / "rcwebhook.env"
CONFIGURATION = (DOCS / "configuration.md").read_text()
OPERATIONS = (DOCS / "operations.md").read_text()
DEVELOPMENT = (DOCS / "development.md").read_text()
MAN_PAGE = (ROOT / "packaging" / "debian" / "rcwebhook.8").read_text()


def markdown_files() -> List[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


# --- README: what an operator reads first -------------------------------------------------------

def test_the_readme_reads_in_five_minutes():
    lines = README.splitlines()
    assert len(lines) < 250, f"README.md has {len(lines)} lines; move reference text to docs/"


def test_the_readme_starts_with_the_two_set_up_commands():
    first_block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[:2] == [
        "make run     # the daemon on 127.0.0.1:8093; in dry-run until you configure it",
        "make test    # the test suite; installs pytest first if it is missing"]
    assert README.index("```sh\nmake run") < README.index("\n## ")


def test_the_readme_tells_alertmanager_to_send_resolved_explicitly():
    section = README.split("## Alertmanager\n", 1)[1].split("\n## ", 1)[0]
    assert "send_resolved: true" in section and "explicitly" in section


def test_the_readme_says_what_rocketchat_needs():
    section = README.split("## Configuring Rocket.Chat\n", 1)[1].split("\n## ", 1)[0]
    for fact in ("incoming webhook", "Post as", "message-impersonate", "mention-here", "mention-all"):
        assert fact in section, fact


def test_the_readme_links_every_docs_page():
    linked = {target for _, target, _ in links(ROOT / "README.md")}
    for page in sorted(DOCS.glob("*.md")):
        assert f"docs/{page.name}" in linked, f"README.md does not link docs/{page.name}"


# --- links ----------------------------------------------------------------------------------------

def links(page: Path) -> Iterator[Tuple[int, str, str]]:
    """Yield (line, path, anchor) of every relative Markdown link and image of `page`."""
    for number, line in enumerate(page.read_text().splitlines(), 1):
        for target in re.findall(r"\]\(([^)\s]+)\)", line):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            yield number, path, anchor


def anchors(page: Path) -> List[str]:
    """Return the anchors of `page`'s headings, as GitHub makes them."""
    found = []
    for heading in re.findall(r"^#+ (.*)$", page.read_text(), re.M):
        found.append(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return found


def test_every_link_in_the_readme_and_docs_resolves():
    broken = []
    for page in markdown_files():
        for number, path, anchor in links(page):
            target = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(ROOT)}:{number}: {path}{'#' + anchor if anchor else ''}"
            if not target.is_file():
                broken.append(f"{where}: no such file")
            elif anchor and anchor not in anchors(target):
                broken.append(f"{where}: no such heading in {target.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def shipped_documents() -> List[str]:
    """Return what packaging/debian/rcwebhook.docs installs in /usr/share/doc/rcwebhook, as file paths."""
    shipped = []
    for entry in (ROOT / "packaging" / "debian" / "rcwebhook.docs").read_text().split():
        source = ROOT / entry
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        shipped += [str(f.relative_to(ROOT)) for f in files]
    return shipped


def test_the_package_ships_every_document_the_readme_links_to():
    shipped = shipped_documents()
    for number, path, _ in links(ROOT / "README.md"):
        if path:
            assert path in shipped, f"README.md:{number} links {path}, which packaging/debian/rcwebhook.docs leaves out"
    # Installed under the same names: dh_compress would make README.md's docs/*.md links point at nothing.
    assert re.search(r"^\tdh_compress -X\.md$", (ROOT / "packaging" / "debian" / "rules").read_text(), re.M)


# --- the key reference ----------------------------------------------------------------------------

def documented_keys() -> Dict[str, List[str]]:
    """Return each key of docs/configuration.md's table with its cells: default, meaning, on reload."""
    table = CONFIGURATION.split("## Every key\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    keys: Dict[str, List[str]] = {}
    for row in rows:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
        for key in re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]):
            keys[key] = cells[1:]
    return keys


def test_every_documented_key_has_its_default_meaning_and_reload():
    for key, cells in documented_keys().items():
        assert len(cells) == 3, f"{key}: expected default, meaning, on reload; got {cells}"
        default, meaning, reload = cells
        assert meaning, f"{key} has no meaning in docs/configuration.md"
        assert reload in ("applied", "restart"), f"{key}: on reload must be applied or restart, not {reload!r}"
        value = BY_NAME[key].default if key in BY_NAME else ""
        if value and len(value) <= 40:
            assert default == f"`{value}`", f"{key}: docs/configuration.md says default {default!r}, the code {value!r}"


def test_the_keys_a_reload_cannot_change_are_marked_restart():
    documented = documented_keys()
    for key in KEYS:
        assert (documented[key.name][2] == "restart") == key.restart, key.name


def test_the_example_env_file_is_valid():
    settings, warnings = loading.load(EXAMPLE_ENV, {"DRY_RUN": "true"})
    assert warnings == []
    assert settings.port == 8093


# --- every place that lists the keys lists exactly the table's -------------------------------------

def keys_of_the_reference() -> List[str]:
    """docs/configuration.md: the keys in the first cell of each row of its table of keys ("## Every key")."""
    return list(documented_keys())


def keys_of_the_man_page() -> List[str]:
    """The man page: the `.B KEY` lines of its SETTINGS section (each opens the paragraph of one key)."""
    section = MAN_PAGE.split("\n.SH SETTINGS\n", 1)[1].split("\n.SH ", 1)[0]
    return re.findall(r"^\.B ([A-Z][A-Z0-9_]*)$", section, re.M)


def keys_of_the_example() -> List[str]:
    """examples/rcwebhook.env: the keys assigned, or assigned in a comment (`#KEY=`, no blank after the #)."""
    return re.findall(r"^#?([A-Z][A-Z0-9_]*)=", EXAMPLE_ENV.read_text(), re.M)


def keys_of_the_help() -> List[str]:
    """`rcwebhook --help`: the `KEY=DEFAULT` lines of its list of keys (the section opened by `keys (`)."""
    section = help_text().split("\nkeys (", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^ +([A-Z][A-Z0-9_]*)=", section, re.M)


@pytest.mark.parametrize("place", ["reference", "man_page", "example", "help"])
def test_every_place_that_lists_the_keys_names_exactly_the_keys_of_the_table(place):
    found = globals()[f"keys_of_the_{place}"]()
    table = [key.name for key in KEYS]
    assert len(found) == len(set(found)), f"{place} names a key twice: {sorted(k for k in found if found.count(k) > 1)}"
    assert not set(table) - set(found), f"{place} leaves out {sorted(set(table) - set(found))}"
    assert not set(found) - set(table), f"{place} names {sorted(set(found) - set(table))}, which the table lacks"


def test_example_aliases_comment_matches_the_default():
    assert DEFAULT_SEVERITY_ALIASES in EXAMPLE_ENV.read_text()


# --- the command line: docs/operations.md and the man page -----------------------------------------

def help_text() -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        parse_args(["--help"])
    return out.getvalue()


def test_every_option_is_in_the_operations_page():
    for option in set(re.findall(r"--[a-z][a-z-]+", help_text())):
        assert option in OPERATIONS, option
    assert parse_args([]).config is None


def test_man_page_matches_help():
    man = MAN_PAGE.replace("\\-", "-")
    for option in set(re.findall(r"--[a-z][a-z-]+", help_text())):
        assert option in man, option
    from rcwebhook import __version__
    assert f'"rcwebhook {__version__}"' in MAN_PAGE.splitlines()[0]


def test_the_man_page_names_the_installed_documentation():
    assert "/usr/share/doc/rcwebhook/docs/" in MAN_PAGE.replace("\\-", "-")


def test_debian_changelog_version_matches_the_code():
    from rcwebhook import __version__
    first = (ROOT / "packaging" / "debian" / "changelog").read_text().splitlines()[0]
    assert first.startswith(f"rcwebhook ({__version__}) ")


def test_the_layout_names_every_package_and_module():
    layout = DEVELOPMENT.split("## Layout", 1)[1]
    readme = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    packages = sorted(p.parent.name for p in (ROOT / "rcwebhook").glob("*/__init__.py"))
    assert len(packages) >= 7
    for package in packages:
        assert f"`{package}/`" in layout and f"`{package}/`" in readme, package
        section = layout.split(f"`{package}/`", 1)[1].split("\n- ", 1)[0]
        for module in sorted((ROOT / "rcwebhook" / package).glob("*.py")):
            if module.stem != "__init__":
                assert f"`{module.stem}`" in section, f"{package}/{module.stem}"
    for module in sorted((ROOT / "rcwebhook").glob("*.py")):
        if module.stem not in ("__init__", "__main__"):
            assert f"`{module.stem}`" in layout and f"`{module.stem}`" in readme, module.stem


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
    reference = " ".join(CONFIGURATION.split()).lower()
    helped = " ".join(help_text().split()).lower()
    for key, text in TIMEOUTS.items():
        for name, place in (("docs/configuration.md", reference), ("examples/rcwebhook.env", example),
                            ("man page", man), ("--help", helped)):
            assert text.lower() in place, f"{key} in {name}"


def test_every_exit_status_is_documented_alike():
    man = MAN_PAGE.replace("\\-", "-")
    helped = " ".join(help_text().split())
    for status in ("0", "1", "2", "78"):
        assert f".B {status}\n" in man, status
    assert "2 when the command line is wrong" in helped
    assert "2 when the command line is wrong" in " ".join(OPERATIONS.split())
