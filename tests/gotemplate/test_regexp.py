"""goregexp: Go's regular expressions, as Go runs them (RE2 semantics), in linear time.

Expected values are what Go 1.19 and 1.24 give (checked with amtool 0.25 and 0.28.1, which
tests/amtemplate/test_amtool_differential.py does again for a corpus of its own)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from rcwebhook.gotemplate import regexp as goregexp
from rcwebhook.gotemplate.regexp import RegexpError
from rcwebhook.gotemplate.regexp_syntax import Parser

ROOT = Path(__file__).resolve().parents[2]


def rx(pattern: str) -> goregexp.Regexp:
    return goregexp.compile(pattern)


def submatch(r: goregexp.Regexp, text: str) -> Optional[List[str]]:
    """Go's FindStringSubmatch: the first match and each group's text ("" for a group that took no part)."""
    m = r.find_string_submatch_index(text)
    return None if m is None else [text[m[k]:m[k + 1]] if m[k] >= 0 else "" for k in range(0, len(m), 2)]


@pytest.mark.parametrize("pattern, text, expected", [
    # leftmost-first: the first alternative that matches wins, not the longest
    ("a|ab", "ab", ["a"]),
    ("ab|a", "ab", ["ab"]),
    ("(a|ab)(c|bcd)(d*)", "abcd", ["abcd", "a", "bcd", ""]),
    ("x*", "xxy", ["xx"]),
    ("(a+)(a*)", "aaa", ["aaa", "aaa", ""]),
    # lazy quantifiers and (?U)
    ("a+?", "aaa", ["a"]),
    ("(a*?)(a*)", "aaa", ["aaa", "", "aaa"]),
    ("<.*?>", "<a><b>", ["<a>"]),
    ("(?U)a+", "aaa", ["a"]),
    ("(?U)a+?", "aaa", ["aaa"]),
    ("a{2,3}?", "aaaa", ["aa"]),
    # a group repeated keeps its last iteration; a group that took no part is ""
    ("(a|b)*", "abab", ["abab", "b"]),
    ("(a)|(b)", "b", ["b", "", "b"]),
    ("(a*)*", "b", ["", ""]),
    ("(a*)+", "b", ["", ""]),
    ("(a|)*", "aa", ["aa", "a"]),  # Go compiles x* as (x+)? when x can match empty
    # anchors: $ is the end of the text only (not before a final newline) without (?m)
    ("a$", "a\n", None),
    ("(?m)a$", "a\n", ["a"]),
    ("(?m)^b", "a\nb", ["b"]),
    ("^b", "a\nb", None),
    ("\\Aa", "ba", None),
    ("a\\z", "a", ["a"]),
    ("\\bfoo\\b", "a foo.", ["foo"]),
    ("\\Boo\\B", "foo", None),
    ("\\Boo", "foo", ["oo"]),
    ("\\bé", "é", None),  # \b is ASCII: é is no word character
    # . and newlines
    ("a.b", "a\nb", None),
    ("(?s)a.b", "a\nb", ["a\nb"]),
    ("[^x]", "\n", ["\n"]),
    # classes
    ("[[:alpha:]]+", "12abC3", ["abC"]),
    ("[[:^alpha:]]+", "ab12c", ["12"]),
    ("[[:word:]]+", "a_1-", ["a_1"]),
    ("\\d+", "x٣12", ["12"]),
    ("\\w+", "éa_1", ["a_1"]),
    ("\\s+", "a\t\n b", ["\t\n "]),
    ("\\s", "\v", None),
    ("[\\D]+", "12ab3", ["ab"]),
    ("[]a]+", "]a]", ["]a]"]),
    ("[a-]+", "-a-", ["-a-"]),
    ("[\\x41-\\x{43}]+", "ABCD", ["ABC"]),
    ("\\101\\0", "A\x00", ["A\x00"]),
    ("\\Qa.b*\\E+", "a.b**", ["a.b**"]),
    ("x{,2}", "x{,2}", ["x{,2}"]),
    ("a{01}", "a{01}", ["a{01}"]),
    # Unicode classes
    ("\\pL+", "1héllo2", ["héllo"]),
    ("\\p{Lu}+", "abÉCd", ["ÉC"]),
    ("\\PL+", "ab12é", ["12"]),
    ("\\p{^L}+", "ab12é", ["12"]),
    ("[\\p{Nd}x]+", "ax٣1b", ["x٣1"]),
    ("\\p{Any}", "\n", ["\n"]),
    # case folding, as Go's simple folding orbits
    ("(?i)straSSe", "STRASSE", ["STRASSE"]),
    ("(?i)k", "\u212a", ["\u212a"]),
    ("(?i)[a-c]+", "xBcA", ["BcA"]),
    ("(?i)σ", "ς", ["ς"]),
    ("(?i:a)b", "AB", None),
    ("a(?i)b|c", "aB C", ["aB"]),
    ("(?i)\\W", "\u212a", None),
    # named groups
    ("(?P<host>[a-z]+):(?P<port>\\d+)", "web:80", ["web:80", "web", "80"]),
    ("(?<host>[a-z]+)", "web", ["web", "web"]),
])
def test_find_string_submatch_as_go(pattern: str, text: str, expected: Optional[List[str]]) -> None:
    assert submatch(rx(pattern), text) == expected
    assert rx(pattern).match_string(text) is (expected is not None)


@pytest.mark.parametrize("pattern, repl, text, expected", [
    ("(\\w+)-(\\d+)", "$2:$1", "web-1 db-22", "1:web 22:db"),
    ("(\\w+)", "$1x", "ab", ""),  # $1x names the group "1x", which does not exist
    ("(\\w+)", "${1}x", "ab", "abx"),
    ("(?P<n>\\w)", "<$n>", "ab", "<a><b>"),
    ("(?P<n>\\w)", "<${n}>", "ab", "<a><b>"),
    ("a", "$$", "aba", "$b$"),
    ("a", "$", "a", "$"),
    ("a", "${1", "a", "${1"),
    ("(a)", "$01", "a", ""),  # a leading zero makes a name, not a number
    ("(a)", "$2", "a", ""),
    ("a(b)?", "[$1]", "a ab", "[] [b]"),
    ("a*", "X", "baaac", "XbXcX"),
    ("x*", "-", "abc", "-a-b-c-"),
    ("x*?", "-", "xxx", "-x-x-x-"),
    ("", "-", "ab", "-a-b-"),
    ("\\b", "|", "ab cd", "|ab| |cd|"),
    ("^", ">", "a\nb", ">a\nb"),
    ("(?m)^", ">", "a\nb", ">a\n>b"),
    ("(?m)$", "<", "a\nb", "a<\nb<"),
    ("é+", "e", "aééb", "aeb"),
    ("(?i)Σ", "s", "σςΣ", "sss"),
    ("[", "x", "a", None),
])
def test_replace_all_string_as_go(pattern: str, repl: str, text: str, expected: Optional[str]) -> None:
    if expected is None:
        with pytest.raises(RegexpError):
            rx(pattern)
        return
    assert rx(pattern).replace_all_string(text, repl) == expected


@pytest.mark.parametrize("pattern, message", [
    ("(", "missing closing ): `(`"),
    ("a)", "unexpected ): `a)`"),
    ("[a", "missing closing ]: `[a`"),
    ("[]", "missing closing ]: `[]`"),
    ("[z-a]", "invalid character class range: `z-a`"),
    ("[[:foo:]]", "invalid character class range: `[:foo:]`"),
    ("\\pX", "invalid character class range: `\\pX`"),
    ("\\p{Letter}", "invalid character class range: `\\p{Letter}`"),
    ("a**", "invalid nested repetition operator: `**`"),
    ("a*?+", "invalid nested repetition operator: `*?+`"),
    ("x{2}{3}", "invalid nested repetition operator: `{2}{3}`"),
    ("*", "missing argument to repetition operator: `*`"),
    ("a|+?", "missing argument to repetition operator: `+?`"),
    ("a{1001}", "invalid repeat count: `{1001}`"),
    ("a{2,1}", "invalid repeat count: `{2,1}`"),
    ("(a{100}){100}", "invalid repeat count: `{100}`"),
    ("\\8", "invalid escape sequence: `\\8`"),
    ("\\Z", "invalid escape sequence: `\\Z`"),
    ("[\\b]", "invalid escape sequence: `\\b`"),
    ("\\x{110000}", "invalid escape sequence: `\\x{110000`"),
    ("\\xg1", "invalid escape sequence: `\\xg1`"),
    ("a\\", "trailing backslash at end of expression: ``"),
    ("(?=x)", "invalid or unsupported Perl syntax: `(?=`"),
    ("(?i-)", "invalid or unsupported Perl syntax: `(?i-)`"),
    ("(?P<é>x)", "invalid named capture: `(?P<é>`"),
    ("(?P<n", "invalid named capture: `(?P<n`"),
])
def test_invalid_patterns_are_refused_in_gos_words(pattern: str, message: str) -> None:
    with pytest.raises(RegexpError) as info:
        rx(pattern)
    assert str(info.value) == "error parsing regexp: " + message
    assert not info.value.unsupported


def test_angle_bracket_names_are_go_1_22s() -> None:
    assert goregexp.compile("(?<n>a)").subexp_names == ["", "n"]
    with pytest.raises(RegexpError, match=r"^error parsing regexp: invalid or unsupported Perl syntax: `\(\?<`$"):
        goregexp.compile("(?<n>a)", angle_names=False)
    assert goregexp.compile("(?P<1>a)(?P<1>b)").subexp_names == ["", "1", "1"]  # Go allows both


def test_unicode_scripts_are_refused_as_unsupported() -> None:
    with pytest.raises(RegexpError) as info:
        rx("\\p{Greek}")
    assert info.value.unsupported


ATTACKS = [
    ("(a+)+$", "a" * 9_999 + "!"),
    ("^(\\w+\\s?)*$", "a" * 9_999 + "!"),
    ("^([a-z0-9]+(-[a-z0-9]+)*\\.?)+$", "a" * 9_999 + "!"),
]


@pytest.mark.parametrize("pattern, value", ATTACKS, ids=[p for p, _ in ATTACKS])
def test_patterns_that_backtrack_exponentially_finish_on_10000_characters(pattern: str, value: str) -> None:
    r = rx(pattern)
    assert r.match_string(value) is False
    assert r.replace_all_string(value, "x") == value
    assert r.match_string(value[:-1]) is True
    assert r.replace_all_string(value[:-1], "<$1>") == "<" + "a" * 9_999 + ">"


def test_a_check_can_stop_a_long_match() -> None:
    seen = []

    class Stop(Exception):
        pass

    def check(steps: int) -> None:
        seen.append(steps)
        if sum(seen) > 5_000:
            raise Stop

    with pytest.raises(Stop):
        rx("(a|b)*c").match_string("ab" * 50_000, check=check)
    with goregexp.checking(check):
        seen.clear()
        with pytest.raises(Stop):
            rx("(a|b)*c").replace_all_string("ab" * 50_000, "$1")
    seen.clear()
    assert rx("b").match_string("ab" * 10, check=check) and sum(seen) <= 20


def test_results_stay_right_when_the_dfa_cache_fills_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(goregexp, "DFA_STATES", 4)
    monkeypatch.setattr(goregexp, "DFA_TRANSITIONS", 8)
    r = goregexp.Regexp(*_parsed("(x+x+)+y|[a-e]{3}z"))
    text = "xx" * 500 + "abcdz" + "x" * 10 + "y"
    assert r.replace_all_string(text, "<$0>") == "xx" * 500 + "a<bcdz><xxxxxxxxxxy>"
    assert submatch(r, text) == ["bcdz", ""]
    assert len(r._forward.states) <= 4


def _parsed(pattern: str) -> tuple:
    """A pattern parsed afresh (compile() would give the one cached)."""
    p = Parser(pattern, True)
    node = p.parse()
    return pattern, node, p.ncap, p.names


def test_a_template_with_such_a_pattern_renders_at_once(tmp_path: Path) -> None:
    """The command line renders it (Python's re took minutes on this 40-character value)."""
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"commonLabels": {"instance": "a" * 39 + "!"}}), encoding="utf-8")
    glob = tmp_path / "empty.tmpl"
    glob.write_text("", encoding="utf-8")
    text = '{{ reReplaceAll "(a+)+$" "x" .CommonLabels.instance }} {{ match "^(\\\\w+\\\\s?)*$" .CommonLabels.instance }}'
    proc = subprocess.run([sys.executable, str(ROOT / "rcwebhook.py"), "template", "render", f"--template.glob={glob}",
                           f"--template.text={text}", f"--template.data={data}"],
                          capture_output=True, text=True, timeout=20)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "a" * 39 + "! false", "")


def test_threads_sharing_a_pattern_get_the_results_one_thread_gets(monkeypatch: pytest.MonkeyPatch) -> None:
    import random
    from concurrent.futures import ThreadPoolExecutor
    monkeypatch.setattr(goregexp, "DFA_STATES", 16)  # the cache starts again often while others read it
    pattern = "(?i)([a-c]+)(x|y[0-9]*)?|\\b[d-f]{2}\\b"
    rng = random.Random(5)
    texts = ["".join(rng.choice("abcdefxy0129 K") for _ in range(rng.randint(0, 60))) for _ in range(400)]
    alone = goregexp.Regexp(*_parsed(pattern))
    expected = [alone.replace_all_string(t, "<$1|$2>") for t in texts]
    shared = goregexp.Regexp(*_parsed(pattern))
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda t: shared.replace_all_string(t, "<$1|$2>"), texts * 5))
    assert got == expected * 5


def test_answers_kept_for_short_texts_stay_right_and_bounded():
    rx = goregexp.compile("^https?://")
    for i in range(3 * goregexp.MEMO_ENTRIES):
        text = f"http://host{i}" if i % 2 else f"ftp://host{i}"
        assert rx.match_string(text) is bool(i % 2)
        assert rx.match_string(text) is bool(i % 2)  # the kept answer
    assert len(goregexp._matched) <= goregexp.MEMO_ENTRIES
    long_text = "http://" + "h" * goregexp.MEMO_TEXT
    assert rx.match_string(long_text)
    assert (rx, long_text) not in goregexp._matched
