"""Go's regular expressions (RE2 syntax and semantics) in linear time, in pure Python.

    rx = regexp.compile(r"(?P<host>[a-z0-9.-]+):(\\d+)")
    rx.match_string("web-1:9100")            # Go's MatchString: True
    rx.replace_all_string(s, "${host}")      # Go's ReplaceAllString, with Go's $-expansion
    rx.find_string_submatch_index(s)         # Go's FindStringSubmatchIndex (None where Go has nil)

What Go's regexp.Compile accepts is accepted here and what it refuses is refused with Go's own
message (`error parsing regexp: ...: `x``; the parser is regexp_syntax's); (?<name>...) is Go 1.22's
and is refused when `angle_names=False` (Go 1.19 and 1.21). Matching is leftmost-first, as Go's (and
Perl's) is.

No input makes a match take more than time linear in the length of the text times the size of the
pattern's program: there is no backtracking. A search runs a lazily built DFA forward to find where
the leftmost-first match ends, a DFA of the reversed pattern backwards to find where it starts, and,
only when submatches are wanted, a Pike VM (a Thompson NFA simulation carrying submatches) from that
start. A pattern that is a plain literal is found with str.find. Each DFA keeps at most DFA_STATES
states, DFA_TRANSITIONS transitions and DFA_THREADS instructions in its states; when full it starts
again, so memory is bounded whatever the text, and compiled patterns are kept within CACHE_UNITS
(characters plus instructions).

Cancellation: every call takes `check`, a callable given the number of steps (characters scanned or
VM steps) done since its last call, called every CHECK_EVERY steps and once at the end of each scan
(a plain literal's str.find is not counted); it may raise any exception to stop the match, which then
propagates. `checking(fn)` sets one for the current thread for calls that pass none.

Differences from Go: the text is Python code points, not UTF-8 bytes (the same thing for valid
UTF-8); Unicode data is Python's unicodedata (Go 1.19 has Unicode 13, 1.24 has 15); Unicode
scripts (\\p{Greek}) are not known here and refused with RegexpError(unsupported=True).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .regexp_syntax import (ALT, ASSERT, BOT, CHAR, EDGE, MATCH, SAVE, Parser, Prog, RegexpError, children,
                            compile_program, holds, side_kind, syntax_error)

__all__ = ["compile", "Regexp", "RegexpError", "checking", "CHECK_EVERY"]

CHECK_EVERY = 2048
DFA_STATES = 2000  # per direction and pattern: then the DFA starts again
DFA_TRANSITIONS = 20_000  # the same, for transitions (one per state and distinct character seen)
DFA_THREADS = 100_000  # the same, for the instructions its states list (some 8 bytes each)

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


# ---------------------------------------------------------------------------------------------
# The lazy DFA


class _State:
    __slots__ = ("kernel", "before", "starts", "trans", "final", "dead")

    def __init__(self, key: tuple) -> None:
        self.kernel, self.before, self.starts = key
        self.trans: Dict[str, Tuple["_State", bool]] = {}
        self.final: Dict[int, bool] = {}
        self.dead = not self.kernel and not self.starts


class _DFA:
    """States are the ordered instructions waiting for a character (and what came before, and
    whether a match may still start); leftmost-first drops every thread after a match, longest keeps
    them all."""

    def __init__(self, prog: Prog, longest: bool) -> None:
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
        stack: List[int] = []
        for root in st.kernel + ((self.prog.start,) if st.starts else ()):
            stack.append(root)
            while stack:
                pc = stack.pop()
                if pc in seen:
                    continue
                seen.add(pc)
                o = op[pc]
                if o == CHAR:
                    found.append(pc)
                elif o == ALT:
                    stack.append(arg[pc])  # type: ignore[arg-type]
                    stack.append(out[pc])
                elif o == MATCH:
                    matched = True
                    if not self.longest:
                        return found, True
                elif o == ASSERT:
                    if holds(arg[pc], before, after):
                        stack.append(out[pc])
                else:
                    stack.append(out[pc])
        return found, matched

    def step(self, st: _State, c: str) -> Tuple[_State, bool]:
        with self.lock:
            found, matched = self.closure(st, side_kind(c))
            arg, out = self.prog.arg, self.prog.out
            nxt = dict.fromkeys(out[pc] for pc in found if arg[pc].has(c))  # type: ignore
            starts = st.starts and not matched and not self.longest
            if self.transitions >= DFA_TRANSITIONS:
                self.reset()
            result = (self.state(tuple(nxt), side_kind(c), starts), matched)
            st.trans[c] = result
            self.transitions += 1
            return result

    def final(self, st: _State, after: int) -> bool:
        r = st.final.get(after)
        if r is None:
            with self.lock:
                r = st.final[after] = self.closure(st, after)[1]
        return r


def _no_check(steps: int) -> None:
    pass


def _checker(check: Check) -> Callable[[int], None]:
    """`check`, else the thread's (see checking), else one that does nothing."""
    return check if check is not None else getattr(_local, "check", None) or _no_check


# ---------------------------------------------------------------------------------------------
# The compiled expression


class Regexp:
    """A compiled Go regular expression (see the module's docstring)."""

    def __init__(self, pattern: str, node: tuple, ncap: int, names: List[str]) -> None:
        self.pattern = pattern
        self.num_subexp = ncap
        self.subexp_names = names
        self._forward = _DFA(compile_program(node, False), longest=False)
        self._backward = _DFA(compile_program(node, True), longest=True)
        self._anchored = _starts_with_bot(node)
        self._prefix = _literal_prefix(node)
        self._anchored_prefix = _literal_prefix(node, skip_bot=True) if self._anchored else ""
        self._width = _fixed_width(node)  # every match's length, when they all have the same
        # a pattern that is only a non-empty literal: its matches are str.find's (the common `\\+`, `,`)
        self._literal = self._prefix if self._prefix and _is_literal(node) else None

    def __repr__(self) -> str:
        return f"regexp.compile({self.pattern!r})"

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
        return None if end < 0 else (self._start(s, pos, end, check), end)

    def find_string_submatch_index(self, s: str, pos: int = 0, check: Check = None) -> Optional[List[int]]:
        """Go's FindStringSubmatchIndex from pos: [start, end, start1, end1, ...], -1 for unset."""
        span = self.find_string_index(s, pos, check)
        if span is None:
            return None
        if not self.num_subexp:
            return list(span)
        return self._submatches(s, span[0], check)

    def replace_all_string(self, src: str, repl: str, check: Check = None) -> str:
        """Go's ReplaceAllString: every match replaced by repl with $1, ${1}, $name, ${name}, $$ expanded
        (an empty match right after a match is not replaced)."""
        expand = "$" in repl
        if self._literal is not None and not expand:
            return src.replace(self._literal, repl)
        out: List[str] = []
        last = search = 0
        find = self.find_string_submatch_index if expand else self.find_string_index
        while search <= len(src):
            m = find(src, search, check)
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
        check = _checker(check)
        n = len(s)
        dfa = self._forward
        prefix = self._prefix
        i = pos
        st = dfa.start(side_kind(s[i - 1]) if i > 0 else EDGE)
        last = -1
        steps = 0
        while not st.dead:
            if prefix and not st.kernel and st.starts:  # no thread alive, no match yet: skip to the prefix
                j = s.find(prefix, i)
                if j < 0:
                    break
                if j > i:
                    steps += (j - i) >> 4
                    i = j
                    st = dfa.start(side_kind(s[i - 1]))
            if i >= n:
                if dfa.final(st, EDGE):
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
            if steps >= CHECK_EVERY:
                check(steps)
                steps = 0
        check(steps)
        return last

    def _start(self, s: str, bound: int, end: int, check: Check) -> int:
        """Where the leftmost match ending at end starts (no earlier than bound): the longest match of
        the reversed expression read backwards from end."""
        if self._width is not None:
            return end - self._width
        dfa, check = self._backward, _checker(check)
        st = dfa.state((dfa.prog.start,), side_kind(s[end]) if end < len(s) else EDGE, False)
        best = i = end
        steps = 0
        while not st.dead:
            if i <= bound:
                if dfa.final(st, side_kind(s[i - 1]) if i > 0 else EDGE):
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
                check(steps)
                steps = 0
        check(steps)
        return best

    def _submatches(self, s: str, start: int, check: Check) -> List[int]:  # noqa: C901 - the Pike VM
        """The leftmost-first match starting at start, with its submatches (a Pike VM)."""
        prog, check = self._forward.prog, _checker(check)
        op, out, arg = prog.op, prog.out, prog.arg
        n = len(s)
        nslots = 2 * (self.num_subexp + 1)
        best: Optional[List[int]] = None
        steps = 0

        def add(threads: List[Tuple[int, tuple]], seen: set, pc: int, caps: tuple, i: int,
                before: int, after: int) -> None:
            """Add pc's closure to threads in priority order, up to a match (what follows it ranks lower)."""
            stack: List[Tuple[int, tuple]] = [(pc, caps)]
            while stack:
                pc, caps = stack.pop()
                if pc in seen:
                    continue
                seen.add(pc)
                o = op[pc]
                if o == CHAR:
                    threads.append((pc, caps))
                elif o == ALT:
                    stack.append((arg[pc], caps))  # type: ignore[arg-type]
                    stack.append((out[pc], caps))
                elif o == SAVE:
                    slot = arg[pc]
                    stack.append((out[pc], caps[:slot] + (i,) + caps[slot + 1:]))  # type: ignore[operator]
                elif o == ASSERT:
                    if holds(arg[pc], before, after):
                        stack.append((out[pc], caps))
                elif o == MATCH:
                    threads.append((-1, caps))
                    return
                else:
                    stack.append((out[pc], caps))

        i = start
        before = side_kind(s[i - 1]) if i > 0 else EDGE
        after = side_kind(s[i]) if i < n else EDGE
        caps0 = (start,) + (-1,) * (nslots - 1)
        clist: List[Tuple[int, tuple]] = []
        add(clist, set(), prog.start, caps0, i, before, after)
        while clist:
            nlist: List[Tuple[int, tuple]] = []
            seen: set = set()
            c = s[i] if i < n else None
            na = side_kind(s[i + 1]) if i + 1 < n else EDGE
            for pc, caps in clist:
                if pc < 0:
                    best = list(caps)
                    best[1] = i
                    break  # the threads after a match have lower priority
                if c is not None and arg[pc].has(c):  # type: ignore[union-attr]
                    add(nlist, seen, out[pc], caps, i + 1, after, na)
            steps += len(clist)
            if steps >= CHECK_EVERY:
                check(steps)
                steps = 0
            if c is None:
                break
            clist = nlist
            i += 1
            after = na
        check(steps)
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
    # Go reads a number of at most nine ASCII digits, without a leading 0
    number = name.isascii() and name.isdigit() and len(name) <= 9
    return name, int(name) if number and (name == "0" or name[0] != "0") else -1, t[i:]


def _starts_with_bot(node: tuple) -> bool:
    """Whether every match must start at the beginning of the text (the pattern begins with \\A or ^)."""
    k = node[0]
    if k == "assert":
        return node[1] == BOT
    if k == "cat":
        return bool(node[1]) and _starts_with_bot(node[1][0])
    if k in ("cap", "group"):
        return _starts_with_bot(children(node)[0])
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
    return _fixed_width(children(node)[0])


def _literal_prefix(node: tuple, skip_bot: bool = False) -> str:
    """The characters every match begins with (case-sensitive literals only), after a leading \\A or ^
    when asked."""
    out: List[str] = []

    def walk(nd: tuple) -> bool:  # False once the prefix ends
        k = nd[0]
        if skip_bot and k == "assert" and nd[1] == BOT and not out:
            return True
        if k == "set" and nd[1].single is not None:
            out.append(nd[1].single)
            return True
        if k == "cat":
            return all(walk(x) for x in nd[1])
        return k in ("group", "cap") and walk(children(nd)[0])

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
    parser = Parser(pattern, angle_names)
    try:
        node = parser.parse()
        rx = Regexp(pattern, node, parser.ncap, parser.names)
    except OverflowError:
        raise syntax_error("expression too large", pattern) from None
    except RecursionError:
        raise syntax_error("expression nests too deeply", pattern) from None
    units = len(pattern) + 2 * len(rx._forward.prog.op)
    with _cache_lock:
        if _cache_units + units > CACHE_UNITS:
            _cache.clear()
            _cache_units = 0
        if units <= CACHE_UNITS:
            _cache[key] = rx
            _cache_units += units
    return rx
