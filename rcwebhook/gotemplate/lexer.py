"""Go's text/template lexer: a template's text as items (text, delimiters, words, literals)."""

from __future__ import annotations

import re
import unicodedata
from typing import List, Tuple

from . import values as gv

# ---------------------------------------------------------------------------------------------
# Lexer

(T_ERROR, T_BOOL, T_CHAR, T_CHARCONST, T_COMPLEX, T_ASSIGN, T_DECLARE, T_EOF, T_FIELD, T_IDENT,
 T_LDELIM, T_LPAREN, T_NUMBER, T_PIPE, T_RAWSTRING, T_RDELIM, T_RPAREN, T_SPACE, T_STRING, T_TEXT,
 T_VARIABLE, T_KEYWORD, T_BLOCK, T_BREAK, T_CONTINUE, T_DOT, T_DEFINE, T_ELSE, T_END, T_IF, T_NIL,
 T_RANGE, T_TEMPLATE, T_WITH) = range(34)

KEYWORDS = {".": T_DOT, "block": T_BLOCK, "break": T_BREAK, "continue": T_CONTINUE, "define": T_DEFINE,
            "else": T_ELSE, "end": T_END, "if": T_IF, "range": T_RANGE, "nil": T_NIL,
            "template": T_TEMPLATE, "with": T_WITH}
SPACE = " \t\r\n"


class Item:
    __slots__ = ("typ", "pos", "val", "line")

    def __init__(self, typ: int, pos: int, val: str, line: int) -> None:
        self.typ, self.pos, self.val, self.line = typ, pos, val, line

    def __str__(self) -> str:
        if self.typ == T_EOF:
            return "EOF"
        if self.typ == T_ERROR:
            return self.val
        if self.typ > T_KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return gv.go_quote(self.val[:10])[:-1] + '"...'
        return gv.go_quote(self.val)


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or unicodedata.category(c) == "Nd" if c else False


def _has_left_trim(s: str, i: int) -> bool:
    return len(s) >= i + 2 and s[i] == "-" and s[i + 1] in SPACE


def _has_right_trim(s: str, i: int) -> bool:
    return len(s) >= i + 2 and s[i] in SPACE and s[i + 1] == "-"


def lex(text: str, break_ok: bool = True, paren_error: bool = True) -> List[Item]:
    """Return the items of `text`; the last is EOF or an error."""
    items: List[Item] = []
    pos = start = 0
    start_line = 1
    n = len(text)

    def emit(typ: int, end: int) -> None:
        items.append(Item(typ, start, text[start:end], start_line))
        ignore(end)

    def error(msg: str) -> List[Item]:
        items.append(Item(T_ERROR, start, msg, start_line))
        return items

    def ignore(end: int) -> None:
        nonlocal start, start_line
        start_line += text.count("\n", start, end)
        start = end

    def at_terminator(i: int) -> bool:
        return i >= n or text[i] in SPACE or text[i] in ".,|:)(" or text.startswith("}}", i)

    while True:
        # text
        x = text.find("{{", pos)
        if x < 0:
            if n > start:
                emit(T_TEXT, n)
            items.append(Item(T_EOF, n, "", start_line))
            return items
        trim = 0
        if _has_left_trim(text, x + 2):
            seg = text[start:x]
            trim = len(seg) - len(seg.rstrip(SPACE))
        if x - trim > start:
            emit(T_TEXT, x - trim)
        ignore(x)
        # left delim
        pos = x + 2
        after = 2 if _has_left_trim(text, pos) else 0
        if text.startswith("/*", pos + after):
            pos += after
            ignore(pos)
            pos += 2
            i = text.find("*/", pos)
            if i < 0:
                return error("unclosed comment")
            pos = i + 2
            if _has_right_trim(text, pos) and text.startswith("}}", pos + 2):
                pos = _space_end(text, pos + 4)
            elif text.startswith("}}", pos):
                pos += 2
            else:
                return error("comment ends before closing delimiter")
            ignore(pos)
            continue
        emit(T_LDELIM, pos)
        pos += after
        ignore(pos)
        depth = 0
        # inside action
        while True:
            if (_has_right_trim(text, pos) and text.startswith("}}", pos + 2)) or text.startswith("}}", pos):
                if depth:
                    return error("unclosed left paren")
                if _has_right_trim(text, pos):
                    pos += 2
                    ignore(pos)
                    pos += 2
                    emit(T_RDELIM, pos)
                    pos = _space_end(text, pos)
                    ignore(pos)
                else:
                    pos += 2
                    emit(T_RDELIM, pos)
                break
            if pos >= n:
                return error("unclosed action")
            c = text[pos]
            pos += 1
            if c in SPACE:
                pos -= 1
                spaces = 0
                while pos < n and text[pos] in SPACE:
                    pos += 1
                    spaces += 1
                if _has_right_trim(text, pos - 1) and text.startswith("}}", pos + 1):
                    pos -= 1
                    if spaces == 1:
                        continue  # at the trim marker: the right delimiter follows
                emit(T_SPACE, pos)
            elif c == "=":
                emit(T_ASSIGN, pos)
            elif c == ":":
                if pos >= n or text[pos] != "=":
                    return error("expected :=")
                pos += 1
                emit(T_DECLARE, pos)
            elif c == "|":
                emit(T_PIPE, pos)
            elif c == '"' or c == "'":
                m = _QUOTED[c].match(text, pos)
                if m is None:
                    what = "quoted string" if c == '"' else "character constant"
                    return error(f"unterminated {what}")
                pos = m.end()
                emit(T_STRING if c == '"' else T_CHARCONST, pos)
            elif c == "`":
                i = text.find("`", pos)
                if i < 0:
                    return error("unterminated raw quoted string")
                pos = i + 1
                emit(T_RAWSTRING, pos)
            elif c == "$":
                while pos < n and _is_alnum(text[pos]):
                    pos += 1
                if not at_terminator(pos):
                    return error(f"bad character {_rune(text[pos])}")
                emit(T_VARIABLE, pos)
            elif c == "." and not (pos < n and "0" <= text[pos] <= "9"):
                if at_terminator(pos):
                    emit(T_DOT, pos)
                else:
                    while pos < n and _is_alnum(text[pos]):
                        pos += 1
                    if not at_terminator(pos):
                        return error(f"bad character {_rune(text[pos])}")
                    emit(T_FIELD, pos)
            elif c in "+-." or "0" <= c <= "9":
                pos -= 1
                ok, pos = _scan_number(text, pos)
                if not ok:
                    return error(f"bad number syntax: {gv.go_quote(text[start:pos])}")
                if pos < n and text[pos] in "+-":
                    ok, pos = _scan_number(text, pos)
                    if not ok or text[pos - 1] != "i":
                        return error(f"bad number syntax: {gv.go_quote(text[start:pos])}")
                    emit(T_COMPLEX, pos)
                else:
                    emit(T_NUMBER, pos)
            elif _is_alnum(c):
                while pos < n and _is_alnum(text[pos]):
                    pos += 1
                word = text[start:pos]
                if not at_terminator(pos):
                    return error(f"bad character {_rune(text[pos])}")
                kw = KEYWORDS.get(word)
                if kw is not None and (break_ok or kw not in (T_BREAK, T_CONTINUE)):
                    emit(kw, pos)
                else:
                    emit(T_BOOL if word in ("true", "false") else T_IDENT, pos)
            elif c == "(":
                emit(T_LPAREN, pos)
                depth += 1
            elif c == ")":
                depth -= 1
                if depth < 0 and paren_error:  # Go 1.20 and later: the error instead of the paren
                    return error("unexpected right paren")
                emit(T_RPAREN, pos)
                if depth < 0:
                    return error("unexpected right paren U+0029 ')'")
            elif ord(c) < 0x80 and c.isprintable():
                emit(T_CHAR, pos)
            else:
                return error(f"unrecognized character in action: {_rune(c)}")
        pos = start


def _space_end(text: str, pos: int) -> int:
    """Where the spaces starting at `pos` end."""
    return len(text) - len(text[pos:].lstrip(SPACE))


def _rune(c: str) -> str:
    """Go's %#U of a character."""
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


# Go's lexNumber: a sign, a base prefix, digits and _, a fraction, an exponent (e, or p in hex), i
_NUMBER = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]*(\.[0-9a-fA-F_]*)?([pP][+-]?[0-9_]*)?"
                     r"|0[oO][0-7_]*(\.[0-7_]*)?|0[bB][01_]*(\.[01_]*)?"
                     r"|[0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9_]*)?)i?")


def _scan_number(text: str, pos: int) -> Tuple[bool, int]:
    """Whether a number is well formed at pos, and where it ends (after its first bad character)."""
    end = _NUMBER.match(text, pos).end()  # type: ignore[union-attr]
    if end < len(text) and _is_alnum(text[end]):
        return False, end + 1
    return True, end


# the rest of a quoted string or character constant up to its closing quote, on one line
_QUOTED = {q: re.compile(rf"(?:[^\\\n{q}]|\\[^\n])*{q}") for q in "\"'"}
