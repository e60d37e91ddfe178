"""The env-file syntax: every rule and every error message."""

from __future__ import annotations

import pytest

from rcwebhook.config import envfile


def values(text: str) -> dict:
    entries, errors = envfile.parse(text, "rcwebhook.env")
    assert errors == []
    return {e.key: e.value for e in entries}


def errors(text: str) -> list:
    return envfile.parse(text, "rcwebhook.env")[1]


def test_plain_key_value_lines_are_read():
    assert values("PORT=8093\nHOST=127.0.0.1\n") == {"PORT": "8093", "HOST": "127.0.0.1"}


def test_blank_lines_and_comments_are_skipped():
    assert values("\n# a comment\n   # indented comment\n\nPORT=1\n") == {"PORT": "1"}


def test_export_prefix_is_optional():
    assert values("export PORT=9000\nexport\tHOST=::1") == {"PORT": "9000", "HOST": "::1"}


def test_key_named_export_is_still_a_key():
    assert values("exporter=1") == {"exporter": "1"}


def test_unquoted_values_are_trimmed():
    assert values("PORT =   9000   ") == {"PORT": "9000"}


def test_unquoted_value_ends_at_space_hash_comment():
    assert values("PORT=9000 # the port") == {"PORT": "9000"}


def test_hash_inside_unquoted_value_is_kept():
    url = "https://chat.example.com/hooks/abc/def#frag"
    assert values(f"URL={url}") == {"URL": url}


def test_value_that_is_only_a_comment_is_empty():
    assert values("LOG_FILE= # none") == {"LOG_FILE": ""}


def test_empty_value():
    assert values("LOG_FILE=") == {"LOG_FILE": ""}


def test_single_quoted_values_are_literal():
    assert values(r"""A='a \n "b" $HOME # not a comment'""") == {"A": r'a \n "b" $HOME # not a comment'}


def test_double_quoted_values_know_three_escapes():
    assert values(r'A="say \"hi\"\\ and\nnext"') == {"A": 'say "hi"\\ and\nnext'}


def test_other_backslashes_in_double_quotes_stay():
    assert values(r'A="C:\temp\x"') == {"A": r"C:\temp\x"}


def test_comment_after_closing_quote_is_allowed():
    assert values("A='x' # note\nB=\"y\"   # note") == {"A": "x", "B": "y"}


def test_no_variable_expansion_or_command_substitution():
    text = 'A=$HOME\nB="${HOME}"\nC=$(id -u)\nD=`id -u`'
    assert values(text) == {"A": "$HOME", "B": "${HOME}", "C": "$(id -u)", "D": "`id -u`"}


def test_equals_sign_in_value_is_kept():
    assert values("A=b=c==") == {"A": "b=c=="}


def test_entries_carry_their_line_numbers():
    entries, _ = envfile.parse("# c\n\nA=1\nB=2\n", "x.env")
    assert [(e.key, e.line) for e in entries] == [("A", 3), ("B", 4)]


def test_windows_line_endings_are_accepted():
    assert values("A=1\r\nB='2'\r\n") == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    "line, message",
    [
        ("JUSTAKEY", "expected KEY=VALUE"),
        ("export", "expected KEY=VALUE"),
        ("=value", "invalid key ''"),
        ("1PORT=8093", "invalid key '1PORT'"),
        ("MY-KEY=1", "invalid key 'MY-KEY'"),
        ("A='unterminated", "unterminated single-quoted value"),
        ('A="unterminated', "unterminated double-quoted value"),
        ('A="ends with escape\\"', "unterminated double-quoted value"),
        ("A='x' trailing", "unexpected text after the closing quote: 'trailing'"),
        ('A="x"y', "unexpected text after the closing quote: 'y'"),
    ],
)
def test_errors_name_file_line_and_problem(line, message):
    found = errors(f"# header\n{line}\n")
    assert len(found) == 1
    assert found[0].startswith("rcwebhook.env:2: ")
    assert message in found[0]


def test_every_error_in_a_file_is_reported():
    found = errors("A\nB=1\nC\n'D'=2\n")
    assert [e.split(":")[1] for e in found] == ["1", "3", "4"]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"])
def test_lines_end_at_newline_only_so_a_value_cannot_smuggle_in_a_key(separator):
    entries, _ = envfile.parse(f"API_KEY=secret{separator}ALLOW_UNAUTHENTICATED=true\nPORT=1\n", "rcwebhook.env")
    assert "ALLOW_UNAUTHENTICATED" not in [e.key for e in entries]
    assert [(e.key, e.line) for e in entries if e.key == "PORT"] == [("PORT", 2)]
