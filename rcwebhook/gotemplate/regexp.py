"""Go's regular expressions (RE2 syntax and semantics) in linear time, in pure Python.

    rx = goregexp.compile(r"(?P<host>[a-z0-9.-]+):(\\d+)")
    rx.match_string("web-1:9100")            # Go's MatchString: True
    rx.replace_all_string(s, "${host}")      # Go's ReplaceAllString, with Go's $-expansion
    rx.find_string_submatch(s)               # Go's FindStringSubmatch (None where Go has nil)

What Go's regexp.Compile accepts is accepted here and what it refuses is refused with Go's own
message (`error parsing regexp: ...: `x``); (?<name>...) is Go 1.22's and is refused when
`angle_names=False` (Go 1.19 and 1.21). Matching is leftmost-first, as Go's (and Perl's) is.

No input makes a match take more than time linear in the length of the text times the size of the
pattern's program: there is no backtracking. A search runs a lazily built DFA forward to find where
the leftmost-first match ends, a DFA of the reversed pattern backwards to find where it starts, and,
only when submatches are wanted, a Pike VM (a Thompson NFA simulation carrying submatches) from that
start. A pattern that is a plain literal is found with str.find. Each DFA keeps at most DFA_STATES states, DFA_TRANSITIONS transitions and DFA_THREADS
instructions in its states; when full it starts again, so memory is bounded whatever the text, and
compiled patterns are kept within CACHE_UNITS (characters plus instructions).

Cancellation: every call takes `check`, a callable given the number of steps (characters scanned or
VM steps) done since its last call, called every CHECK_EVERY steps and once at the end of each scan
(a plain literal's str.find is not counted); it may raise any exception to stop the match, which then
propagates. `checking(fn)` sets one for the current
thread for calls that pass none.

Differences from Go: the text is Python code points, not UTF-8 bytes (the same thing for valid
UTF-8); Unicode data is Python's unicodedata (Go 1.19 has Unicode 13, 1.24 has 15); Unicode
scripts (\\p{Greek}) are not known here and refused with RegexpError(unsupported=True).
"""

from __future__ import annotations

import threading
import unicodedata
from bisect import bisect_right
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = ["compile", "Regexp", "RegexpError", "checking", "CHECK_EVERY"]

CHECK_EVERY = 2048
DFA_STATES = 2000  # per direction and pattern: then the DFA starts again
DFA_TRANSITIONS = 20_000  # the same, for transitions (one per state and distinct character seen)
DFA_THREADS = 100_000  # the same, for the instructions its states list (some 8 bytes each)
MAX_INSTRUCTIONS = 200_000  # a bigger program is refused as "expression too large"
MAX_NESTING = 1000
MAX_REPEAT = 1000

MEMO_TEXT = 256  # match_string's answers are kept for texts of at most this many characters...
MEMO_ENTRIES = 1024  # ...this many of them for all patterns together (256 K characters at most)

_local = threading.local()
_matched: Dict[Tuple["Regexp", str], bool] = {}
Check = Optional[Callable[[int], None]]


@contextmanager
def checking(check: Callable[[int], None]) -> Iterator[None]:
    """Use `check` for matches in this thread that are given none (see the module's docstring)."""
    saved = getattr(_local, "check", None)
    _local.check = check
    try:
        yield
    finally:
        _local.check = saved


class RegexpError(ValueError):
    """A pattern Go refuses (message as Go words it), or one Go accepts that this engine cannot run
    (unsupported=True: Unicode scripts)."""

    def __init__(self, message: str, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


def _error(code: str, expr: str) -> RegexpError:
    return RegexpError(f"error parsing regexp: {code}: `{expr}`")


# ---------------------------------------------------------------------------------------------
# Character sets

_NONE, _NL, _WORD, _OTHER = 0, 1, 2, 3  # what lies on one side of a position (for ^ $ \b)


def _kind(c: str) -> int:
    if c == "\n":
        return _NL
    if c < "\x80" and (c.isalnum() or c == "_"):
        return _WORD
    return _OTHER


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
                    if key not in members:
                        members.append(key)
                    if len(members) > 1:
                        t = tuple(sorted(set(members)))
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

    def add_category(self, name: str, negated: bool, fold: bool) -> None:
        self.items.append(("c", name, negated, fold))

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
        r = False
        for kind, data, neg, fold in self.items:
            inside = any(self._item_has(kind, data, o) for o in _orbit(c)) if fold else self._item_has(kind, data, c)
            if inside != neg:
                r = True
                break
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
# Parsing: Go's regexp/syntax with the Perl flags regexp.Compile uses, node by node.
# Nodes: ("set", _Set) ("any", dotnl) ("assert", kind) ("cap", index, node) ("cat", [nodes])
# ("alt", [nodes]) ("rep", min, max, greedy, node) ("empty",)

_BOT, _EOT, _BOL, _EOL, _WB, _NWB = range(6)
_FOLD, _DOTNL, _MULTI, _UNGREEDY = 1, 2, 4, 8
_HEX = "0123456789abcdefABCDEF"


def _is_name_char(c: str) -> bool:
    return c == "_" or (c < "\x80" and c.isalnum())


class _Parser:
    def __init__(self, pattern: str, angle_names: bool) -> None:
        self.p = pattern
        self.angle_names = angle_names
        self.ncap = 0
        self.names: List[str] = [""]

    def parse(self) -> tuple:
        node, i, _ = self.alternation(0, 0, 0)
        if i < len(self.p):  # a ')' with no group open
            raise _error("unexpected )", self.p)
        return node

    def alternation(self, i: int, flags: int, depth: int) -> Tuple[tuple, int, int]:
        """Parse alternatives from i up to an unmatched ')' or the end; return node, index, flags."""
        if depth > MAX_NESTING:
            raise _error("expression nests too deeply", self.p)
        branches = []
        while True:
            seq, i, flags = self.sequence(i, flags, depth)
            branches.append(seq)
            if i < len(self.p) and self.p[i] == "|":
                i += 1
                continue
            break
        node = branches[0] if len(branches) == 1 else ("alt", branches)
        return node, i, flags

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
                if i + 1 < n and p[i + 1] == "?":
                    named = self.named_group(i)
                    if named is not None:
                        name, j = named
                        self.ncap += 1
                        index = self.ncap
                        self.names.append(name)
                        sub, j, _ = self.alternation(j, flags, depth + 1)
                        if j >= n:
                            raise _error("missing closing )", p)
                        items.append(("cap", index, sub))
                        i = j + 1
                    else:
                        new_flags, j, opens = self.perl_flags(i, flags)
                        if opens:
                            sub, j, _ = self.alternation(j, new_flags, depth + 1)
                            if j >= n:
                                raise _error("missing closing )", p)
                            items.append(("group", sub))
                            i = j + 1
                        else:
                            flags = new_flags
                            i = j
                            last_repeat = -1
                            continue
                else:
                    self.ncap += 1
                    index = self.ncap
                    self.names.append("")
                    sub, j, _ = self.alternation(i + 1, flags, depth + 1)
                    if j >= n:
                        raise _error("missing closing )", p)
                    items.append(("cap", index, sub))
                    i = j + 1
            elif c == "^":
                items.append(("assert", _BOL if flags & _MULTI else _BOT))
                i += 1
            elif c == "$":
                items.append(("assert", _EOL if flags & _MULTI else _EOT))
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
                        raise _error("invalid repeat count", p[i:after])
                else:
                    lo, hi, after = {"*": (0, -1), "+": (1, -1), "?": (0, 1)}[c] + (i + 1,)
                greedy = not flags & _UNGREEDY
                if after < n and p[after] == "?":
                    after += 1
                    greedy = not greedy
                if last_repeat >= 0:
                    raise _error("invalid nested repetition operator", p[last_repeat:after])
                if not items:
                    raise _error("missing argument to repetition operator", p[i:after])
                node = ("rep", lo, hi, greedy, items[-1])
                if c == "{" and (lo >= 2 or hi >= 2) and not _repeat_valid(node, MAX_REPEAT):
                    raise _error("invalid repeat count", p[i:after])
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
            hi = MAX_REPEAT + 1 if hi == -1 else hi
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
            raise _error("invalid named capture", t)
        name = t[begin:end]
        if not name or not all(_is_name_char(ch) for ch in name):
            raise _error("invalid named capture", t[:end + 1])
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
                if sign > 0:
                    on |= bit
                else:
                    off |= bit
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
        raise _error("invalid or unsupported Perl syntax", p[i:j])

    def escape(self, i: int, flags: int, items: List[tuple]) -> int:
        p, n = self.p, len(self.p)
        if i + 1 < n:
            e = p[i + 1]
            simple = {"A": _BOT, "z": _EOT, "b": _WB, "B": _NWB}.get(e)
            if simple is not None:
                items.append(("assert", simple))
                return i + 2
            if e == "C":
                raise _error("invalid escape sequence", p[i:i + 2])
            if e == "Q":
                end = p.find("\\E", i + 2)
                lit = p[i + 2:] if end < 0 else p[i + 2:end]
                for ch in lit:
                    items.append(("set", _literal_set(ch, bool(flags & _FOLD))))
                return n if end < 0 else end + 2
        s = _Set()
        j = self.unicode_class(i, flags, s)
        if j is None:
            j = self.perl_class(i, flags, s)
        if j is not None:
            items.append(("set", s))
            return j
        ch, j = self.single_escape(i)
        items.append(("set", _literal_set(ch, bool(flags & _FOLD))))
        return j

    def unicode_class(self, i: int, flags: int, s: _Set) -> Optional[int]:
        p, n = self.p, len(self.p)
        if i + 1 >= n or p[i] != "\\" or p[i + 1] not in "pP":
            return None
        negated = p[i + 1] == "P"
        if i + 2 < n and p[i + 2] == "{":
            end = p.find("}", i)
            if end < 0:
                raise _error("invalid character class range", p[i:])
            seq, name, j = p[i:end + 1], p[i + 3:end], end + 1
        else:
            j = min(i + 3, n)
            seq, name = p[i:j], p[i + 2:j]
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        if name in _SCRIPTS:
            raise RegexpError(f"unsupported regexp syntax (Unicode script {seq}): `{p}`", True)
        if name != "Any" and name not in _CATEGORIES:
            raise _error("invalid character class range", seq)
        s.add_category(name, negated, bool(flags & _FOLD) and name != "Any")
        return j

    def perl_class(self, i: int, flags: int, s: _Set) -> Optional[int]:
        p = self.p
        if i + 1 < len(p) and p[i] == "\\" and p[i + 1] in "dDsSwW":
            e = p[i + 1]
            s.add_ranges(_PERL[e.lower()], e.isupper(), bool(flags & _FOLD))
            return i + 2
        return None

    def single_escape(self, i: int) -> Tuple[str, int]:  # noqa: C901 - Go's parseEscape
        p, n = self.p, len(self.p)
        if i + 1 >= n:
            raise _error("trailing backslash at end of expression", "")
        c = p[i + 1]
        j = i + 2
        if c < "\x80" and not (c.isalnum() or c == "_"):
            return c, j
        if c == "_":
            return c, j
        if c in "1234567" and not (j < n and "0" <= p[j] <= "7"):
            raise _error("invalid escape sequence", p[i:j])
        if c in "01234567":
            v = int(c)
            for _ in range(2):
                if j < n and "0" <= p[j] <= "7":
                    v = v * 8 + int(p[j])
                    j += 1
            return chr(v), j
        if c == "x":
            if j >= n:
                raise _error("invalid escape sequence", p[i:j])
            if p[j] == "{":
                j += 1
                v = 0
                digits = 0
                while True:
                    if j >= n:
                        raise _error("invalid escape sequence", p[i:j])
                    h = p[j]
                    j += 1
                    if h == "}":
                        break
                    if h not in _HEX:
                        raise _error("invalid escape sequence", p[i:j])
                    v = v * 16 + int(h, 16)
                    if v > 0x10FFFF:
                        raise _error("invalid escape sequence", p[i:j])
                    digits += 1
                if not digits:
                    raise _error("invalid escape sequence", p[i:j])
                return chr(v), j
            x = p[j]
            j += 1
            y = p[j] if j < n else ""
            j = min(j + 1, n)
            if x not in _HEX or not y or y not in _HEX:
                raise _error("invalid escape sequence", p[i:j])
            return chr(int(x + y, 16)), j
        c_escapes = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
        if c in c_escapes:
            return c_escapes[c], j
        raise _error("invalid escape sequence", p[i:j])

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
                        raise _error("invalid character class range", name)
                    s.add_ranges(ranges, neg, fold)
                    j = end + 2
                    continue
            k = self.unicode_class(j, flags, s)
            if k is None:
                k = self.perl_class(j, flags, s)
            if k is not None:
                j = k
                continue
            start = j
            lo, j = self.class_char(j, whole)
            hi = lo
            if j + 1 < n and p[j] == "-" and p[j + 1] != "]":
                hi, j = self.class_char(j + 1, whole)
                if hi < lo:
                    raise _error("invalid character class range", p[start:j])
            s.add_range(ord(lo), ord(hi), fold)
        return s, j + 1

    def class_char(self, j: int, whole: str) -> Tuple[str, int]:
        if j >= len(self.p):
            raise _error("missing closing ]", whole)
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
    for sub in _children(node):
        if not _repeat_valid(sub, n):
            return False
    return True


def _children(node: tuple) -> Sequence[tuple]:
    kind = node[0]
    if kind in ("cat", "alt"):
        return node[1]
    if kind == "cap":
        return (node[2],)
    if kind == "group":
        return (node[1],)
    if kind == "rep":
        return (node[4],)
    return ()


# ---------------------------------------------------------------------------------------------
# Programs

_CHAR, _ALT, _SAVE, _ASSERT, _MATCH, _NOP = range(6)
_ANY = _Set()
_ANY.negated = True
_NOT_NL = _Set()
_NOT_NL.negated = True
_NOT_NL.add_range(10, 10, False)


class _Prog:
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


def _compile(node: tuple, reverse: bool) -> _Prog:
    """A program for node; reversed (for matching backwards, without submatches) when asked."""
    prog = _Prog()
    match = prog.emit(_MATCH)

    swap = {_BOT: _EOT, _EOT: _BOT, _BOL: _EOL, _EOL: _BOL}

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
        return nullable(_children(nd)[0])

    # Compiled back to front: each call takes where to go next and returns its entry instruction.
    def comp(nd: tuple, nxt: int) -> int:
        k = nd[0]
        if k == "set":
            return prog.emit(_CHAR, nxt, nd[1])
        if k == "any":
            return prog.emit(_CHAR, nxt, _ANY if nd[1] else _NOT_NL)
        if k == "empty":
            return nxt
        if k == "assert":
            return prog.emit(_ASSERT, nxt, swap.get(nd[1], nd[1]) if reverse else nd[1])
        if k == "cat":
            subs = nd[1] if reverse else list(reversed(nd[1]))
            for sub in subs:
                nxt = comp(sub, nxt)
            return nxt
        if k == "alt":
            entries = [comp(sub, nxt) for sub in nd[1]]
            entry = entries[-1]
            for e in reversed(entries[:-1]):
                entry = prog.emit(_ALT, e, entry)
            return entry
        if k == "group":
            return comp(nd[1], nxt)
        if k == "cap":
            if reverse:
                return comp(nd[2], nxt)
            close = prog.emit(_SAVE, nxt, 2 * nd[1] + 1)
            return prog.emit(_SAVE, comp(nd[2], close), 2 * nd[1])
        lo, hi, greedy, sub = nd[1], nd[2], nd[3], nd[4]
        if lo == 0 and hi == 0:
            return nxt
        # Go's simplify: x{n,m} is n copies of x then (x(x(...)?)?)?; x{n,} is n-1 copies then x+
        tail = nxt
        if hi < 0:
            if lo == 0:
                tail = star(sub, nxt, greedy, nullable(sub))
            else:
                tail = plus(sub, nxt, greedy)
                lo -= 1
        else:
            for _ in range(hi - lo):
                tail = quest(lambda t: comp(sub, t), tail, nxt, greedy)
        for _ in range(lo):
            tail = comp(sub, tail)
        return tail

    def quest(body: Callable[[int], int], into: int, nxt: int, greedy: bool) -> int:
        alt = prog.emit(_ALT)
        entry = body(into)
        prog.out[alt], prog.arg[alt] = (entry, nxt) if greedy else (nxt, entry)
        return alt

    def plus(sub: tuple, nxt: int, greedy: bool) -> int:
        alt = prog.emit(_ALT)
        entry = comp(sub, alt)
        prog.out[alt], prog.arg[alt] = (entry, nxt) if greedy else (nxt, entry)
        return entry

    def star(sub: tuple, nxt: int, greedy: bool, sub_nullable: bool) -> int:
        if sub_nullable:  # (x+)? keeps Go's priorities when x matches empty (golang.org/issue/46123)
            return quest(lambda t: plus(sub, t, greedy), nxt, nxt, greedy)
        alt = prog.emit(_ALT)
        entry = comp(sub, alt)
        prog.out[alt], prog.arg[alt] = (entry, nxt) if greedy else (nxt, entry)
        return alt

    prog.start = comp(node, match)
    return prog


def _holds(kind: object, before: int, after: int) -> bool:
    if kind == _BOT:
        return before == _NONE
    if kind == _EOT:
        return after == _NONE
    if kind == _BOL:
        return before in (_NONE, _NL)
    if kind == _EOL:
        return after in (_NONE, _NL)
    if kind == _WB:
        return (before == _WORD) != (after == _WORD)
    return (before == _WORD) == (after == _WORD)


# ---------------------------------------------------------------------------------------------
# The lazy DFA


class _State:
    __slots__ = ("key", "kernel", "before", "starts", "trans", "final", "dead")

    def __init__(self, key: tuple) -> None:
        self.key = key
        self.kernel, self.before, self.starts = key
        self.trans: Dict[str, Tuple["_State", bool]] = {}
        self.final: Dict[int, bool] = {}
        self.dead = not self.kernel and not self.starts


class _DFA:
    """States are the ordered instructions waiting for a character (and what came before, and
    whether a match may still start); leftmost-first drops every thread after a match, longest keeps
    them all."""

    def __init__(self, prog: _Prog, longest: bool) -> None:
        self.prog = prog
        self.longest = longest
        self.states: Dict[tuple, _State] = {}
        self.transitions = self.threads = 0
        self.lock = threading.Lock()
        self.initial: List[Optional[_State]] = [None] * 4  # the unanchored start after each kind

    def start(self, before: int) -> _State:
        st = self.initial[before]
        if st is None:
            st = self.initial[before] = self.state((), before, True)
        return st

    def reset(self) -> None:
        self.states, self.transitions, self.threads = {}, 0, 0
        self.initial = [None] * 4

    def state(self, kernel: tuple, before: int, starts: bool) -> _State:
        key = (kernel, before, starts)
        st = self.states.get(key)
        if st is None:
            if len(self.states) >= DFA_STATES or self.threads >= DFA_THREADS:
                self.reset()
            st = self.states[key] = _State(key)
            self.threads += len(kernel)
        return st

    def closure(self, st: _State, after: int) -> Tuple[List[int], bool]:
        """The character-consuming instructions reached from st at a position whose next character
        is of kind `after`, in priority order, and whether a match is reached before any is cut."""
        op, out, arg = self.prog.op, self.prog.out, self.prog.arg
        before = st.before
        seen = set()
        found: List[int] = []
        matched = False
        roots = list(st.kernel)
        if st.starts:
            roots.append(self.prog.start)
        stack: List[int] = []
        for root in roots:
            stack.append(root)
            while stack:
                pc = stack.pop()
                if pc in seen:
                    continue
                seen.add(pc)
                o = op[pc]
                if o == _CHAR:
                    found.append(pc)
                elif o == _ALT:
                    stack.append(arg[pc])  # type: ignore[arg-type]
                    stack.append(out[pc])
                elif o == _MATCH:
                    matched = True
                    if not self.longest:
                        return found, True
                elif o == _ASSERT:
                    if _holds(arg[pc], before, after):
                        stack.append(out[pc])
                else:
                    stack.append(out[pc])
        return found, matched

    def step(self, st: _State, c: str) -> Tuple[_State, bool]:
        with self.lock:
            found, matched = self.closure(st, _kind(c))
            arg, out = self.prog.arg, self.prog.out
            nxt: List[int] = []
            seen = set()
            for pc in found:
                if arg[pc].has(c):  # type: ignore[union-attr]
                    t = out[pc]
                    if t not in seen:
                        seen.add(t)
                        nxt.append(t)
            starts = st.starts and not matched and not self.longest
            if self.transitions >= DFA_TRANSITIONS:
                self.reset()
            result = (self.state(tuple(nxt), _kind(c), starts), matched)
            st.trans[c] = result
            self.transitions += 1
            return result

    def final(self, st: _State, after: int) -> bool:
        r = st.final.get(after)
        if r is None:
            with self.lock:
                r = st.final[after] = self.closure(st, after)[1]
        return r


def _run_check(check: Check, steps: int) -> None:
    if check is None:
        check = getattr(_local, "check", None)
    if check is not None:
        check(steps)


# ---------------------------------------------------------------------------------------------
# The compiled expression


class Regexp:
    """A compiled Go regular expression (see the module's docstring)."""

    def __init__(self, pattern: str, node: tuple, ncap: int, names: List[str]) -> None:
        self.pattern = pattern
        self.num_subexp = ncap
        self.subexp_names = names
        self._node = node
        self._forward = _DFA(_compile(node, False), longest=False)
        self._backward = _DFA(_compile(node, True), longest=True)
        self._anchored = _starts_with_bot(node)
        self._prefix = _literal_prefix(node)
        self._anchored_prefix = _literal_prefix(node, skip_bot=True) if self._anchored else ""
        self._width = _fixed_width(node)  # every match's length, when they all have the same
        # a pattern that is only a non-empty literal: its matches are str.find's (the common `\\+`, `,`)
        self._literal = self._prefix if self._prefix and _is_literal(node) else None

    def __repr__(self) -> str:
        return f"goregexp.compile({self.pattern!r})"

    # -- Go's API --------------------------------------------------------------------------------

    def match_string(self, s: str, check: Check = None) -> bool:
        """Go's MatchString: whether s holds a match anywhere."""
        if self._literal is not None:
            return self._literal in s
        if len(s) > MEMO_TEXT:
            return self._end(s, 0, True, check) >= 0
        # Templates test the same short values again and again (an ExternalURL against "^https?://" for
        # every alert): the answers for short texts are kept, a few of them, for all patterns together.
        key = (self, s)
        matched = _matched.get(key)
        if matched is None:
            matched = self._end(s, 0, True, check) >= 0
            if len(_matched) >= MEMO_ENTRIES:
                _matched.clear()
            _matched[key] = matched
        return matched

    def find_string_index(self, s: str, pos: int = 0, check: Check = None) -> Optional[Tuple[int, int]]:
        """Go's FindStringIndex from pos (what lies before pos still counts for ^, \\b): (start, end)."""
        end = self._end(s, pos, False, check)
        if end < 0:
            return None
        return self._start(s, pos, end, check), end

    def find_string_submatch_index(self, s: str, pos: int = 0, check: Check = None) -> Optional[List[int]]:
        """Go's FindStringSubmatchIndex from pos: [start, end, start1, end1, ...], -1 for unset."""
        span = self.find_string_index(s, pos, check)
        if span is None:
            return None
        if not self.num_subexp:
            return list(span)
        return self._submatches(s, span[0], check)

    def find_string_submatch(self, s: str, check: Check = None) -> Optional[List[str]]:
        """Go's FindStringSubmatch: the match and each group's text ("" for a group that took no part)."""
        m = self.find_string_submatch_index(s, 0, check)
        if m is None:
            return None
        return [s[m[k]:m[k + 1]] if m[k] >= 0 else "" for k in range(0, len(m), 2)]

    def replace_all_string(self, src: str, repl: str, check: Check = None) -> str:
        """Go's ReplaceAllString: every match replaced by repl with $1, ${1}, $name, ${name}, $$ expanded
        (an empty match right after a match is not replaced)."""
        expand = "$" in repl
        if self._literal is not None and not expand:
            return src.replace(self._literal, repl)
        if self._anchored:  # one match at most, at 0
            m = self.find_string_submatch_index(src, 0, check) if expand else self.find_string_index(src, 0, check)
            if m is None:
                return src
            return (self.expand(repl, src, m) if expand else repl) + src[m[1]:]
        out: List[str] = []
        last = 0
        search = 0
        n = len(src)
        while search <= n:
            if expand:
                m = self.find_string_submatch_index(src, search, check)
            else:
                span = self.find_string_index(src, search, check)
                m = list(span) if span else None
            if m is None:
                break
            a, b = m[0], m[1]
            out.append(src[last:a])
            if b > last or a == 0:
                out.append(self.expand(repl, src, m) if expand else repl)
            last = b
            search = search + 1 if search + 1 > b else b
        if not out:
            return src
        out.append(src[last:])
        return "".join(out)

    def expand(self, template: str, src: str, m: Sequence[int]) -> str:
        """Go's Regexp.ExpandString: template with $-references to the match m of src."""
        out: List[str] = []
        while template:
            k = template.find("$")
            if k < 0:
                break
            out.append(template[:k])
            template = template[k + 1:]
            if template.startswith("$"):
                out.append("$")
                template = template[1:]
                continue
            name, num, rest = _extract(template)
            if name is None:
                out.append("$")
                continue
            template = rest
            if num >= 0:
                if 2 * num + 1 < len(m) and m[2 * num] >= 0:
                    out.append(src[m[2 * num]:m[2 * num + 1]])
            else:
                for i, sub in enumerate(self.subexp_names):
                    if name == sub and 2 * i + 1 < len(m) and m[2 * i] >= 0:
                        out.append(src[m[2 * i]:m[2 * i + 1]])
                        break
        out.append(template)
        return "".join(out)

    # -- the search ------------------------------------------------------------------------------

    def _end(self, s: str, pos: int, first: bool, check: Check) -> int:
        """Where the leftmost-first match at or after pos ends (-1: none); with `first`, any match
        position as soon as one is known (only whether there is one matters)."""
        if self._anchored and (pos > 0 or not s.startswith(self._anchored_prefix)):
            return -1
        if check is None:
            check = getattr(_local, "check", None)
        n = len(s)
        dfa = self._forward
        prefix = self._prefix
        i = pos
        st = dfa.start(_kind(s[i - 1]) if i > 0 else _NONE)
        last = -1
        steps = 0
        while True:
            if st.dead:
                break
            if prefix and not st.kernel and st.starts:  # no thread alive, no match yet: skip to the prefix
                j = s.find(prefix, i)
                if j < 0:
                    break
                if j > i:
                    steps += (j - i) >> 4
                    i = j
                    st = dfa.start(_kind(s[i - 1]))
            if i >= n:
                if dfa.final(st, _NONE):
                    last = n
                break
            c = s[i]
            t = st.trans.get(c)
            if t is None:
                t = dfa.step(st, c)
            st, matched = t
            if matched:
                last = i
                if first:
                    break
            i += 1
            steps += 1
            if steps >= CHECK_EVERY and check is not None:
                check(steps)
                steps = 0
        if check is not None:
            check(steps)
        return last

    def _start(self, s: str, bound: int, end: int, check: Check) -> int:
        """Where the leftmost match ending at end starts (no earlier than bound): the longest match of
        the reversed expression read backwards from end."""
        if self._width is not None:
            return end - self._width
        dfa = self._backward
        st = dfa.state((dfa.prog.start,), _kind(s[end]) if end < len(s) else _NONE, False)
        best = end
        i = end
        steps = 0
        while not st.dead:
            if i <= bound:
                if dfa.final(st, _kind(s[i - 1]) if i > 0 else _NONE):
                    best = i
                break
            c = s[i - 1]
            t = st.trans.get(c)
            if t is None:
                t = dfa.step(st, c)
            st, matched = t
            if matched:
                best = i
            i -= 1
            steps += 1
            if steps >= CHECK_EVERY:
                _run_check(check, steps)
                steps = 0
        _run_check(check, steps)
        return best

    def _submatches(self, s: str, start: int, check: Check) -> List[int]:  # noqa: C901 - the Pike VM
        """The leftmost-first match starting at start, with its submatches (a Pike VM)."""
        prog = self._forward.prog
        op, out, arg = prog.op, prog.out, prog.arg
        n = len(s)
        nslots = 2 * (self.num_subexp + 1)
        best: Optional[List[int]] = None
        steps = 0

        def add(threads: List[Tuple[int, tuple]], seen: set, pc: int, caps: tuple, i: int,
                before: int, after: int) -> bool:
            """Add pc's closure to threads in priority order; True when a match was reached."""
            stack: List[Tuple[int, tuple]] = [(pc, caps)]
            while stack:
                pc, caps = stack.pop()
                if pc in seen:
                    continue
                seen.add(pc)
                o = op[pc]
                if o == _CHAR:
                    threads.append((pc, caps))
                elif o == _ALT:
                    stack.append((arg[pc], caps))  # type: ignore[arg-type]
                    stack.append((out[pc], caps))
                elif o == _SAVE:
                    slot = arg[pc]
                    stack.append((out[pc], caps[:slot] + (i,) + caps[slot + 1:]))  # type: ignore[operator]
                elif o == _ASSERT:
                    if _holds(arg[pc], before, after):
                        stack.append((out[pc], caps))
                elif o == _MATCH:
                    threads.append((-1, caps))
                    return True
                else:
                    stack.append((out[pc], caps))
            return False

        i = start
        before = _kind(s[i - 1]) if i > 0 else _NONE
        after = _kind(s[i]) if i < n else _NONE
        caps0 = (start,) + (-1,) * (nslots - 1)
        clist: List[Tuple[int, tuple]] = []
        add(clist, set(), prog.start, caps0, i, before, after)
        while clist:
            nlist: List[Tuple[int, tuple]] = []
            seen: set = set()
            c = s[i] if i < n else None
            nb = after
            na = _kind(s[i + 1]) if i + 1 < n else _NONE
            for pc, caps in clist:
                if pc < 0:
                    best = list(caps)
                    best[1] = i
                    break  # the threads after a match have lower priority
                if c is not None and arg[pc].has(c):  # type: ignore[union-attr]
                    if add(nlist, seen, out[pc], caps, i + 1, nb, na):
                        pass
            steps += len(clist)
            if steps >= CHECK_EVERY:
                _run_check(check, steps)
                steps = 0
            if c is None:
                break
            clist = nlist
            i += 1
            after = na
        _run_check(check, steps)
        assert best is not None
        return best


def _extract(s: str) -> Tuple[Optional[str], int, str]:
    """Go's extract: the name after a '$' ($name or ${name}), its number (-1: not a number), the rest."""
    if not s:
        return None, -1, s
    brace = s[0] == "{"
    t = s[1:] if brace else s
    i = 0
    while i < len(t) and (t[i] == "_" or t[i].isalpha() or t[i].isdecimal()):
        i += 1
    if i == 0:
        return None, -1, s
    name = t[:i]
    if brace:
        if i >= len(t) or t[i] != "}":
            return None, -1, s
        i += 1
    num = 0
    for ch in name:
        if not ("0" <= ch <= "9") or num >= 100_000_000:
            num = -1
            break
        num = num * 10 + ord(ch) - 48
    if name[0] == "0" and len(name) > 1:
        num = -1
    return name, num, t[i:]


def _starts_with_bot(node: tuple) -> bool:
    """Whether every match must start at the beginning of the text (the pattern begins with \\A or ^)."""
    k = node[0]
    if k == "assert":
        return node[1] == _BOT
    if k == "cat":
        return bool(node[1]) and _starts_with_bot(node[1][0])
    if k in ("cap", "group"):
        return _starts_with_bot(_children(node)[0])
    if k == "alt":
        return all(_starts_with_bot(x) for x in node[1])
    return False


def _is_literal(node: tuple) -> bool:
    if node[0] == "cat":
        return all(_is_literal(x) for x in node[1])
    return node[0] == "set" and node[1].single is not None


def _fixed_width(node: tuple) -> Optional[int]:
    k = node[0]
    if k in ("set", "any"):
        return 1
    if k in ("assert", "empty"):
        return 0
    if k in ("cat", "alt"):
        widths = [_fixed_width(x) for x in node[1]]
        if None in widths:
            return None
        if k == "cat":
            return sum(widths)  # type: ignore[arg-type]
        return widths[0] if len(set(widths)) == 1 else None
    if k == "rep":
        w = _fixed_width(node[4])
        return None if w is None or (node[1] != node[2] and w) else w * node[1]
    return _fixed_width(_children(node)[0])


def _literal_prefix(node: tuple, skip_bot: bool = False) -> str:
    """The characters every match begins with (case-sensitive literals only), after a leading \\A or ^
    when asked."""
    out: List[str] = []

    def walk(nd: tuple) -> bool:  # False once the prefix ends
        k = nd[0]
        if skip_bot and k == "assert" and nd[1] == _BOT and not out:
            return True
        if k == "set" and nd[1].single is not None:
            out.append(nd[1].single)
            return True
        if k == "cat":
            return all(walk(x) for x in nd[1])
        if k == "group":
            return walk(nd[1])
        if k == "cap":
            return walk(nd[2])
        return False

    walk(node)
    return "".join(out)


_cache: Dict[Tuple[str, bool], Regexp] = {}
_cache_units = 0
_cache_lock = threading.Lock()
CACHE_UNITS = 1_000_000  # what the compiled patterns kept may hold: their characters and instructions


def compile(pattern: str, angle_names: bool = True) -> Regexp:  # noqa: A001 - Go's name
    """Go's regexp.Compile (angle_names: whether (?<name>...) is known, as from Go 1.22);
    RegexpError when Go would refuse the pattern. Compiled patterns are kept, within CACHE_UNITS."""
    global _cache_units
    key = (pattern, angle_names)
    rx = _cache.get(key)
    if rx is not None:
        return rx
    parser = _Parser(pattern, angle_names)
    try:
        node = parser.parse()
        rx = Regexp(pattern, node, parser.ncap, parser.names)
    except OverflowError:
        raise _error("expression too large", pattern) from None
    except RecursionError:
        raise _error("expression nests too deeply", pattern) from None
    units = len(pattern) + 2 * len(rx._forward.prog.op)
    with _cache_lock:
        if _cache_units + units > CACHE_UNITS:
            _cache.clear()
            _cache_units = 0
        if units <= CACHE_UNITS:
            _cache[key] = rx
            _cache_units += units
    return rx
