"""The env-file format: KEY=VALUE lines, parsed without a shell.

No variable expansion and no command substitution, ever: a `$` or a backtick is
just a character. The syntax is the common subset of systemd's EnvironmentFile,
docker's --env-file and python-dotenv, so one file serves all three. Lines end at
\n or \r\n, nowhere else.
"""

from __future__ import annotations

import re
from typing import List, NamedTuple, Tuple

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_EXPORT = re.compile(r"(?:export\s+)?")
_DOUBLE_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}  # a backslash before another character is kept
# Alternatives that cannot both match at one place: linear, whatever the line.
_DOUBLE_QUOTED = re.compile(r'"((?:\\.|[^"\\])*)"')
_DOUBLE_ESCAPE = re.compile(r'\\(["\\n])')


class Entry(NamedTuple):
    """One KEY=VALUE assignment and the line it came from."""

    key: str
    value: str
    line: int
    valid: bool = True  # False: the line names this key but its value could not be read (see the errors)


def parse(text: str, name: str) -> Tuple[List[Entry], List[str]]:
    """Return the assignments in `text` and the errors found, each as `name:line: what`."""
    entries: List[Entry] = []
    errors: List[str] = []
    # Lines end at \n (or \r\n) only: str.splitlines would also end them at U+2028, U+0085 and
    # other separators, letting a value smuggle in a key that no editor shows on a line of its own.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()  # and the \r of \r\n
        if not line or line.startswith("#"):
            continue
        key, sep, rest = line[_EXPORT.match(line).end():].partition("=")
        key = key.strip()
        try:
            if not sep:
                raise ValueError("expected KEY=VALUE")
            if not _KEY.match(key):
                raise ValueError(f"invalid key {key!r}: keys are letters, digits and underscores, not starting "
                                 "with a digit")
            entries.append(Entry(key, _parse_value(rest), number))
        except ValueError as exc:
            errors.append(f"{name}:{number}: {exc}")
            if sep and _KEY.match(key):  # so that what follows from this line's error is not reported again
                entries.append(Entry(key, "", number, valid=False))
    return entries, errors


def _parse_value(rest: str) -> str:
    """Return the value written in `rest`, the text after `=`."""
    quoted = rest.lstrip()
    if quoted.startswith("'"):
        end = quoted.find("'", 1)
        if end < 0:
            raise ValueError("unterminated single-quoted value (add the closing ')")
        _only_comment_after(quoted[end + 1:])
        return quoted[1:end]
    if quoted.startswith('"'):
        match = _DOUBLE_QUOTED.match(quoted)
        if not match:
            raise ValueError('unterminated double-quoted value (add the closing ")')
        _only_comment_after(quoted[match.end():])
        return _DOUBLE_ESCAPE.sub(lambda m: _DOUBLE_ESCAPES[m.group(1)], match.group(1))
    return re.split(r"\s#", rest, maxsplit=1)[0].strip()  # a comment after a blank ends the value


def _only_comment_after(tail: str) -> None:
    """Raise ValueError unless `tail`, the text after a closing quote, is blank or a comment."""
    tail = tail.strip()
    if tail and not tail.startswith("#"):
        raise ValueError(f"unexpected text after the closing quote: {tail!r}")
