"""Go's regexp/syntax: a pattern parsed as Go's regexp.Compile parses it (Perl flags, RE2 syntax),
refused with Go's own message (`error parsing regexp: ...: `x``), and compiled to a program of
instructions that the matchers (regexp) run.

Nodes of a parsed pattern: ("set", _Set) ("any", dotnl) ("assert", kind) ("cap", index, node)
("group", node) ("cat", [nodes]) ("alt", [nodes]) ("rep", min, max, greedy, node) ("empty",).
Unicode scripts (\\p{Greek}) are known by name but not runnable here (the standard library has no
script data): they are refused with RegexpError(unsupported=True).
"""

from __future__ import annotations

import threading
import unicodedata
from bisect import bisect_right
from typing import Callable, Dict, List, Optional, Sequence, Tuple

MAX_INSTRUCTIONS = 200_000  # a bigger program is refused as "expression too large"
MAX_NESTING = 1000
MAX_REPEAT = 1000


class RegexpError(ValueError):
    """A pattern Go refuses (message as Go words it), or one Go accepts that this engine cannot run
    (unsupported=True: Unicode scripts)."""

    def __init__(self, message: str, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


def syntax_error(code: str, expr: str) -> RegexpError:
    return RegexpError(f"error parsing regexp: {code}: `{expr}`")


# ---------------------------------------------------------------------------------------------
# Character sets

EDGE, NEWLINE, WORD, OTHER = 0, 1, 2, 3  # what lies on one side of a position (for ^ $ \b)


def side_kind(c: str) -> int:
    """What the character `c` is beside a position: NEWLINE, WORD or OTHER."""
    if c == "\n":
        return NEWLINE
    if c < "\x80" and (c.isalnum() or c == "_"):
        return WORD
    return OTHER


_fold_orbits: Optional[Dict[str, Tuple[str, ...]]] = None
_fold_lock = threading.Lock()


def _orbits() -> Dict[str, Tuple[str, ...]]:
    """Each character with simple case folding partners, to the tuple of its orbit (Go's SimpleFold)."""
    global _fold_orbits
    if _fold_orbits is None:
        with _fold_lock:
            if _fold_orbits is None:
                groups: Dict[str, List[str]] = {}
                for cp in range(0x1F000):
                    ch = chr(cp)
                    if 0xD800 <= cp < 0xE000:
                        continue
                    f = ch.casefold()
                    if len(f) != 1:
                        f = ch.lower()
                        if len(f) != 1:
                            continue
                    groups.setdefault(f, []).append(ch)
                orbits = {}
                for key, members in groups.items():
                    t = tuple(sorted(set(members) | {key}))
                    if len(t) > 1:
                        for m in t:
                            orbits[m] = t
                _fold_orbits = orbits
    return _fold_orbits


def _orbit(c: str) -> Tuple[str, ...]:
    return _orbits().get(c, (c,))


_CATEGORIES = {"C", "Cc", "Cf", "Co", "Cs", "L", "Ll", "Lm", "Lo", "Lt", "Lu", "M", "Mc", "Me", "Mn", "N", "Nd",
               "Nl", "No", "P", "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S", "Sc", "Sk", "Sm", "So", "Z", "Zl",
               "Zp", "Zs"}
# Go's unicode.Scripts names: accepted by Go, not runnable here (no script data in the standard library)
_SCRIPTS = set("""Adlam Ahom Anatolian_Hieroglyphs Arabic Armenian Avestan Balinese Bamum Bassa_Vah Batak Bengali
Bhaiksuki Bopomofo Brahmi Braille Buginese Buhid Canadian_Aboriginal Carian Caucasian_Albanian Chakma Cham
Cherokee Chorasmian Common Coptic Cuneiform Cypriot Cypro_Minoan Cyrillic Deseret Devanagari Dives_Akuru Dogra
Duployan Egyptian_Hieroglyphs Elbasan Elymaic Ethiopic Georgian Glagolitic Gothic Grantha Greek Gujarati
Gunjala_Gondi Gurmukhi Han Hangul Hanifi_Rohingya Hanunoo Hatran Hebrew Hiragana Imperial_Aramaic Inherited
Inscriptional_Pahlavi Inscriptional_Parthian Javanese Kaithi Kannada Kawi Katakana Kayah_Li Kharoshthi
Khitan_Small_Script Khmer Khojki Khudawadi Lao Latin Lepcha Limbu Linear_A Linear_B Lisu Lycian Lydian Mahajani
Makasar Malayalam Mandaic Manichaean Marchen Masaram_Gondi Medefaidrin Meetei_Mayek Mende_Kikakui
Meroitic_Cursive Meroitic_Hieroglyphs Miao Modi Mongolian Mro Multani Myanmar Nabataean Nag_Mundari Nandinagari
New_Tai_Lue Newa Nko Nushu Nyiakeng_Puachue_Hmong Ogham Ol_Chiki Old_Hungarian Old_Italic Old_North_Arabian
Old_Permic Old_Persian Old_Sogdian Old_South_Arabian Old_Turkic Old_Uyghur Oriya Osage Osmanya Pahawh_Hmong
Palmyrene Pau_Cin_Hau Phags_Pa Phoenician Psalter_Pahlavi Rejang Runic Samaritan Saurashtra Sharada Shavian
Siddham SignWriting Sinhala Sogdian Sora_Sompeng Soyombo Sundanese Syloti_Nagri Syriac Tagalog Tagbanwa Tai_Le
Tai_Tham Tai_Viet Takri Tamil Tangsa Tangut Telugu Thaana Thai Tibetan Tifinagh Tirhuta Toto Ugaritic Vai
Vithkuqi Wancho Warang_Citi Yezidi Yi Zanabazar_Square""".split())


class _Set:
    """A set of characters: ranges of code points and Unicode categories, each possibly negated and
    case folded (Go folds, then negates, item by item), the whole possibly negated."""

    __slots__ = ("items", "negated", "single", "memo")

    def __init__(self) -> None:
        self.items: List[Tuple[str, object, bool, bool]] = []  # (kind, data, negated, folded)
        self.negated = False
        self.single: Optional[str] = None  # a set of exactly this one character (the fast case)
        self.memo: Dict[str, bool] = {}

    def add_range(self, lo: int, hi: int, fold: bool) -> None:
        self.items.append(("r", (lo, hi), False, fold))

    def add_ranges(self, ranges: Sequence[Tuple[int, int]], negated: bool, fold: bool) -> None:
        starts = [lo for lo, _ in ranges]
        self.items.append(("rs", (starts, list(ranges)), negated, fold))

    def _item_has(self, kind: str, data: object, c: str) -> bool:
        if kind == "r":
            lo, hi = data  # type: ignore[misc]
            return lo <= ord(c) <= hi
        if kind == "rs":
            starts, ranges = data  # type: ignore[misc]
            k = bisect_right(starts, ord(c)) - 1
            return k >= 0 and ord(c) <= ranges[k][1]
        if data == "Any":
            return True
        cat = unicodedata.category(c)
        if cat == "Cn":
            return False
        return cat == data or (len(data) == 1 and cat[0] == data)  # type: ignore[arg-type]

    def has(self, c: str) -> bool:
        if self.single is not None:
            return c == self.single
        r = self.memo.get(c)
        if r is not None:
            return r
        r = any((any(self._item_has(kind, data, o) for o in _orbit(c)) if fold else
                 self._item_has(kind, data, c)) != neg for kind, data, neg, fold in self.items)
        r = r != self.negated
        if len(self.memo) > 4096:
            self.memo.clear()
        self.memo[c] = r
        return r


def _literal_set(c: str, fold: bool) -> _Set:
    s = _Set()
    orbit = _orbit(c) if fold else (c,)
    if len(orbit) == 1:
        s.single = c
    for o in orbit:
        s.add_range(ord(o), ord(o), False)
    return s


_PERL = {"d": [(0x30, 0x39)], "s": [(0x9, 0xA), (0xC, 0xD), (0x20, 0x20)],
         "w": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]}
_POSIX = {
    "alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)], "alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "ascii": [(0x0, 0x7F)], "blank": [(0x9, 0x9), (0x20, 0x20)], "cntrl": [(0x0, 0x1F), (0x7F, 0x7F)],
    "digit": [(0x30, 0x39)], "graph": [(0x21, 0x7E)], "lower": [(0x61, 0x7A)], "print": [(0x20, 0x7E)],
    "punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)], "space": [(0x9, 0xD), (0x20, 0x20)],
    "upper": [(0x41, 0x5A)], "word": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    "xdigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
}

# ---------------------------------------------------------------------------------------------
# Parsing: Go's regexp/syntax with the Perl flags regexp.Compile uses, node by node (nodes: above)

BOT, EOT, BOL, EOL, WB, NWB = range(6)
_FOLD, _DOTNL, _MULTI, _UNGREEDY = 1, 2, 4, 8
_HEX = "0123456789abcdefABCDEF"


def _is_name_char(c: str) -> bool:
    return c == "_" or (c < "\x80" and c.isalnum())


class Parser:
    """parse() gives a pattern's node; then `ncap` is its number of groups and `names` their names."""

    def __init__(self, pattern: str, angle_names: bool) -> None:
        self.p = pattern
        self.angle_names = angle_names
        self.ncap = 0
        self.names: List[str] = [""]

    def parse(self) -> tuple:
        node, i, _ = self.alternation(0, 0, 0)
        if i < len(self.p):  # a ')' with no group open
            raise syntax_error("unexpected )", self.p)
        return node

    def alternation(self, i: int, flags: int, depth: int) -> Tuple[tuple, int, int]:
        """Parse alternatives from i up to an unmatched ')' or the end; return node, index, flags."""
        if depth > MAX_NESTING:
            raise syntax_error("expression nests too deeply", self.p)
        seq, i, flags = self.sequence(i, flags, depth)
        branches = [seq]
        while i < len(self.p) and self.p[i] == "|":
            seq, i, flags = self.sequence(i + 1, flags, depth)
            branches.append(seq)
        return (branches[0] if len(branches) == 1 else ("alt", branches)), i, flags

    def sequence(self, i: int, flags: int, depth: int) -> Tuple[tuple, int, int]:  # noqa: C901 - one scanner
        p, n = self.p, len(self.p)
        items: List[tuple] = []
        last_repeat = -1  # where the repetition operator just before started (Go refuses two in a row)
        while i < n:
            c = p[i]
            repeat_at = -1
            if c == "|" or c == ")":
                break
            if c == "(":
                named = self.named_group(i) if p.startswith("(?", i) else ("", i + 1)
                if named is None:
                    new_flags, j, opens = self.perl_flags(i, flags)
                    if not opens:
                        flags, i, last_repeat = new_flags, j, -1
                        continue
                    sub, i = self.group(j, new_flags, depth)
                    items.append(("group", sub))
                else:
                    self.ncap += 1
                    index = self.ncap
                    self.names.append(named[0])
                    sub, i = self.group(named[1], flags, depth)
                    items.append(("cap", index, sub))
            elif c in "^$":
                bol, eol = (BOL, EOL) if flags & _MULTI else (BOT, EOT)
                items.append(("assert", bol if c == "^" else eol))
                i += 1
            elif c == ".":
                items.append(("any", bool(flags & _DOTNL)))
                i += 1
            elif c == "[":
                s, i = self.char_class(i, flags)
                items.append(("set", s))
            elif c in "*+?" or (c == "{" and self.counted(i) is not None):
                if c == "{":
                    lo, hi, after = self.counted(i)  # type: ignore[misc]
                    if lo < 0 or lo > MAX_REPEAT or hi > MAX_REPEAT or (hi >= 0 and lo > hi):
                        raise syntax_error("invalid repeat count", p[i:after])
                else:
                    lo, hi, after = {"*": (0, -1), "+": (1, -1), "?": (0, 1)}[c] + (i + 1,)
                greedy = not flags & _UNGREEDY
                if after < n and p[after] == "?":
                    after += 1
                    greedy = not greedy
                if last_repeat >= 0:
                    raise syntax_error("invalid nested repetition operator", p[last_repeat:after])
                if not items:
                    raise syntax_error("missing argument to repetition operator", p[i:after])
                node = ("rep", lo, hi, greedy, items[-1])
                if c == "{" and (lo >= 2 or hi >= 2) and not _repeat_valid(node, MAX_REPEAT):
                    raise syntax_error("invalid repeat count", p[i:after])
                items[-1] = node
                repeat_at = i
                i = after
            elif c == "\\":
                i = self.escape(i, flags, items)
            else:
                items.append(("set", _literal_set(c, bool(flags & _FOLD))))
                i += 1
            last_repeat = repeat_at
        node = ("empty",) if not items else items[0] if len(items) == 1 else ("cat", items)
        return node, i, flags

    def group(self, i: int, flags: int, depth: int) -> Tuple[tuple, int]:
        """The node of a group whose body starts at i, and the index after its ')'."""
        sub, j, _ = self.alternation(i, flags, depth + 1)
        if j >= len(self.p):
            raise syntax_error("missing closing )", self.p)
        return sub, j + 1

    def counted(self, i: int) -> Optional[Tuple[int, int, int]]:
        """{n}, {n,} or {n,m} at i: (min, max or -1, index after '}'), numbers too big as -1 and 1001;
        None when it is not one (then '{' is a literal)."""
        p, n = self.p, len(self.p)

        def number(j: int) -> Tuple[Optional[int], int]:
            k = j
            while k < n and p[k].isdigit() and p[k] < "\x80":
                k += 1
            if k == j or (k - j >= 2 and p[j] == "0"):
                return None, j
            return (int(p[j:k]) if k - j <= 8 else -1), k

        lo, j = number(i + 1)
        if lo is None:
            return None
        if j < n and p[j] == ",":
            if j + 1 < n and p[j + 1] == "}":
                return lo, -1, j + 2
            hi, j = number(j + 1)
            if hi is None:
                return None
        else:
            hi = lo
        if j >= n or p[j] != "}":
            return None
        return lo, (MAX_REPEAT + 1 if hi == -1 else hi), j + 1

    def named_group(self, i: int) -> Optional[Tuple[str, int]]:
        p = self.p
        t = p[i:]
        begin = 4 if len(t) > 4 and t[2] == "P" and t[3] == "<" else \
            3 if self.angle_names and len(t) > 3 and t[2] == "<" else 0
        if not begin:
            return None
        end = t.find(">")
        if end < 0:
            raise syntax_error("invalid named capture", t)
        name = t[begin:end]
        if not name or not all(_is_name_char(ch) for ch in name):
            raise syntax_error("invalid named capture", t[:end + 1])
        return name, i + end + 1

    def perl_flags(self, i: int, flags: int) -> Tuple[int, int, bool]:
        """(?flags) or (?flags: at i: the new flags, the index after, whether a group opens."""
        p, n = self.p, len(self.p)
        j = i + 2
        sign = 1
        saw = False
        on = off = 0
        while j < n:
            c = p[j]
            j += 1
            bit = {"i": _FOLD, "m": _MULTI, "s": _DOTNL, "U": _UNGREEDY}.get(c)
            if bit:
                on, off = (on | bit, off) if sign > 0 else (on, off | bit)
                saw = True
                continue
            if c == "-":
                if sign < 0:
                    break
                sign, saw = -1, False
                continue
            if c in ":)":
                if sign < 0 and not saw:
                    break
                return (flags | on) & ~off, j, c == ":"
            break
        raise syntax_error("invalid or unsupported Perl syntax", p[i:j])

    def escape(self, i: int, flags: int, items: List[tuple]) -> int:
        p, n = self.p, len(self.p)
        if i + 1 < n:
            e = p[i + 1]
            simple = {"A": BOT, "z": EOT, "b": WB, "B": NWB}.get(e)
            if simple is not None:
                items.append(("assert", simple))
                return i + 2
            if e == "C":
                raise syntax_error("invalid escape sequence", p[i:i + 2])
            if e == "Q":
                end = p.find("\\E", i + 2)
                lit = p[i + 2:] if end < 0 else p[i + 2:end]
                items.extend(("set", _literal_set(ch, bool(flags & _FOLD))) for ch in lit)
                return n if end < 0 else end + 2
        s = _Set()
        j = self.class_escape(i, flags, s)
        if j is not None:
            items.append(("set", s))
            return j
        ch, j = self.single_escape(i)
        items.append(("set", _literal_set(ch, bool(flags & _FOLD))))
        return j

    def class_escape(self, i: int, flags: int, s: _Set) -> Optional[int]:
        """\\d \\s \\w, \\pN, \\p{Name} (or negated) at i added to s: the index after, or None."""
        p, n = self.p, len(self.p)
        if i + 1 < n and p[i] == "\\" and p[i + 1] in "dDsSwW":
            s.add_ranges(_PERL[p[i + 1].lower()], p[i + 1].isupper(), bool(flags & _FOLD))
            return i + 2
        if i + 1 >= n or p[i] != "\\" or p[i + 1] not in "pP":
            return None
        negated = p[i + 1] == "P"
        if i + 2 < n and p[i + 2] == "{":
            end = p.find("}", i)
            if end < 0:
                raise syntax_error("invalid character class range", p[i:])
            seq, name, j = p[i:end + 1], p[i + 3:end], end + 1
        else:
            j = min(i + 3, n)
            seq, name = p[i:j], p[i + 2:j]
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        if name in _SCRIPTS:
            raise RegexpError(f"unsupported regexp syntax (Unicode script {seq}): `{p}`", True)
        if name != "Any" and name not in _CATEGORIES:
            raise syntax_error("invalid character class range", seq)
        s.items.append(("c", name, negated, bool(flags & _FOLD) and name != "Any"))
        return j

    def single_escape(self, i: int) -> Tuple[str, int]:  # noqa: C901 - Go's parseEscape
        p, n = self.p, len(self.p)
        if i + 1 >= n:
            raise syntax_error("trailing backslash at end of expression", "")
        c = p[i + 1]
        j = i + 2
        if c < "\x80" and not c.isalnum():  # punctuation and _ stand for themselves
            return c, j
        if c in "1234567" and not (j < n and "0" <= p[j] <= "7"):
            raise syntax_error("invalid escape sequence", p[i:j])
        if c in "01234567":
            v = int(c)
            for _ in range(2):
                if j < n and "0" <= p[j] <= "7":
                    v = v * 8 + int(p[j])
                    j += 1
            return chr(v), j
        if c == "x":
            if j >= n:
                raise syntax_error("invalid escape sequence", p[i:j])
            if p[j] == "{":  # hex digits up to }: refused at the first character that is not one
                k, v = j + 1, 0
                while k < n and p[k] in _HEX and v * 16 + int(p[k], 16) <= 0x10FFFF:
                    v = v * 16 + int(p[k], 16)
                    k += 1
                if k < n and p[k] == "}" and k > j + 1:
                    return chr(v), k + 1
                raise syntax_error("invalid escape sequence", p[i:k + 1])
            x = p[j]
            j += 1
            y = p[j] if j < n else ""
            j = min(j + 1, n)
            if x not in _HEX or not y or y not in _HEX:
                raise syntax_error("invalid escape sequence", p[i:j])
            return chr(int(x + y, 16)), j
        c_escapes = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
        if c in c_escapes:
            return c_escapes[c], j
        raise syntax_error("invalid escape sequence", p[i:j])

    def char_class(self, i: int, flags: int) -> Tuple[_Set, int]:  # noqa: C901 - Go's parseClass
        p, n = self.p, len(self.p)
        whole = p[i:]
        s = _Set()
        fold = bool(flags & _FOLD)
        j = i + 1
        if j < n and p[j] == "^":
            s.negated = True
            j += 1
        first = True
        while j >= n or p[j] != "]" or first:
            first = False
            if j + 2 < n and p[j] == "[" and p[j + 1] == ":":
                end = p.find(":]", j + 2)
                if end >= 0:
                    name = p[j:end + 2]
                    inner = name[2:-2]
                    neg = inner.startswith("^")
                    ranges = _POSIX.get(inner[1:] if neg else inner)
                    if ranges is None:
                        raise syntax_error("invalid character class range", name)
                    s.add_ranges(ranges, neg, fold)
                    j = end + 2
                    continue
            k = self.class_escape(j, flags, s)
            if k is not None:
                j = k
                continue
            start = j
            lo, j = self.class_char(j, whole)
            hi = lo
            if j + 1 < n and p[j] == "-" and p[j + 1] != "]":
                hi, j = self.class_char(j + 1, whole)
                if hi < lo:
                    raise syntax_error("invalid character class range", p[start:j])
            s.add_range(ord(lo), ord(hi), fold)
        return s, j + 1

    def class_char(self, j: int, whole: str) -> Tuple[str, int]:
        if j >= len(self.p):
            raise syntax_error("missing closing ]", whole)
        if self.p[j] == "\\":
            return self.single_escape(j)
        return self.p[j], j + 1


def _repeat_valid(node: tuple, n: int) -> bool:
    """Go's repeatIsValid: nested counted repetitions make at most n copies of the innermost thing."""
    if node[0] == "rep":
        m = node[2]
        if m == 0:
            return True
        if m < 0:
            m = node[1]
        if m > n:
            return False
        if m > 0:
            n //= m
    return all(_repeat_valid(sub, n) for sub in children(node))


_CHILD_AT = {"cap": 2, "group": 1, "rep": 4}  # where the one child of these nodes is


def children(node: tuple) -> Sequence[tuple]:
    if node[0] in ("cat", "alt"):
        return node[1]
    at = _CHILD_AT.get(node[0])
    return () if at is None else (node[at],)


# ---------------------------------------------------------------------------------------------
# Programs

CHAR, ALT, SAVE, ASSERT, MATCH = range(5)
_ANY = _Set()
_ANY.negated = True
_NOT_NL = _Set()
_NOT_NL.negated = True
_NOT_NL.add_range(10, 10, False)


class Prog:
    """Instructions as parallel lists: op, out (next or first choice), arg (set, second choice,
    slot or assertion)."""

    def __init__(self) -> None:
        self.op: List[int] = []
        self.out: List[int] = []
        self.arg: List[object] = []
        self.start = 0

    def emit(self, op: int, out: int = -1, arg: object = None) -> int:
        if len(self.op) >= MAX_INSTRUCTIONS:
            raise OverflowError
        self.op.append(op)
        self.out.append(out)
        self.arg.append(arg)
        return len(self.op) - 1


def compile_program(node: tuple, reverse: bool) -> Prog:
    """A program for node; reversed (for matching backwards, without submatches) when asked."""
    prog = Prog()
    match = prog.emit(MATCH)

    swap = {BOT: EOT, EOT: BOT, BOL: EOL, EOL: BOL}

    def nullable(nd: tuple) -> bool:
        k = nd[0]
        if k in ("empty", "assert"):
            return True
        if k in ("set", "any"):
            return False
        if k == "cat":
            return all(nullable(x) for x in nd[1])
        if k == "alt":
            return any(nullable(x) for x in nd[1])
        if k == "rep":
            return nd[1] == 0 or nullable(nd[4])
        return nullable(children(nd)[0])

    # Compiled back to front: each call takes where to go next and returns its entry instruction.
    def comp(nd: tuple, nxt: int) -> int:
        k = nd[0]
        if k == "set":
            return prog.emit(CHAR, nxt, nd[1])
        if k == "any":
            return prog.emit(CHAR, nxt, _ANY if nd[1] else _NOT_NL)
        if k == "empty":
            return nxt
        if k == "assert":
            return prog.emit(ASSERT, nxt, swap.get(nd[1], nd[1]) if reverse else nd[1])
        if k == "cat":
            subs = nd[1] if reverse else list(reversed(nd[1]))
            for sub in subs:
                nxt = comp(sub, nxt)
            return nxt
        if k == "alt":
            entries = [comp(sub, nxt) for sub in nd[1]]
            entry = entries[-1]
            for e in reversed(entries[:-1]):
                entry = prog.emit(ALT, e, entry)
            return entry
        if k == "group":
            return comp(nd[1], nxt)
        if k == "cap":
            if reverse:
                return comp(nd[2], nxt)
            close = prog.emit(SAVE, nxt, 2 * nd[1] + 1)
            return prog.emit(SAVE, comp(nd[2], close), 2 * nd[1])
        lo, hi, greedy, sub = nd[1], nd[2], nd[3], nd[4]
        if lo == 0 and hi == 0:
            return nxt
        # Go's simplify: x{n,m} is n copies of x then (x(x(...)?)?)?; x{n,} is n-1 copies then x+
        tail = nxt
        if hi < 0:
            if lo == 0 and nullable(sub):  # (x+)? keeps Go's priorities when x matches empty (golang.org/issue/46123)
                tail = choice(lambda _: loop(sub, nxt, greedy)[1], nxt, greedy)[0]
            elif lo == 0:
                tail = loop(sub, nxt, greedy)[0]
            else:
                tail = loop(sub, nxt, greedy)[1]
                lo -= 1
        else:
            for _ in range(hi - lo):
                tail = choice(lambda _: comp(sub, tail), nxt, greedy)[0]
        for _ in range(lo):
            tail = comp(sub, tail)
        return tail

    def choice(body: Callable[[int], int], nxt: int, greedy: bool) -> Tuple[int, int]:
        """A choice of body(the choice) or nxt, and the body's entry: x?, and round itself x*."""
        alt = prog.emit(ALT)
        entry = body(alt)
        prog.out[alt], prog.arg[alt] = (entry, nxt) if greedy else (nxt, entry)
        return alt, entry

    def loop(sub: tuple, nxt: int, greedy: bool) -> Tuple[int, int]:
        """x* and x+: the choice to go round (x*'s entry) and the body's entry (x+'s)."""
        return choice(lambda alt: comp(sub, alt), nxt, greedy)

    prog.start = comp(node, match)
    return prog


def holds(kind: object, before: int, after: int) -> bool:
    if kind == BOT:
        return before == EDGE
    if kind == EOT:
        return after == EDGE
    if kind == BOL:
        return before in (EDGE, NEWLINE)
    if kind == EOL:
        return after in (EDGE, NEWLINE)
    if kind == WB:
        return (before == WORD) != (after == WORD)
    return (before == WORD) == (after == WORD)
