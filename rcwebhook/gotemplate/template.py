"""Go's text/template, as Alertmanager runs it, in pure Python: lexer, parser and executor.

Nothing in a template is ever evaluated as Python: a template is parsed into nodes, and the
executor walks them, calling only the functions given to it (Go's built-ins and Alertmanager's).
Parse and execution errors carry Go's own wording ("template: NAME:LINE: ..." and
"template: NAME:LINE:COL: executing ..."), and every execution is bounded in steps, depth and
output size.
"""

from __future__ import annotations

import re
import time
import unicodedata
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import regexp as goregexp
from . import values as gv
from .funcs import MAX_VALUE, Func, GoError, bounded

MAX_STEPS = 1_000_000
MAX_OUTPUT = 1_000_000  # characters
MAX_DEPTH = 100  # nested {{template}} calls; Go allows 100000, which no real template needs
MAX_NESTING = 200  # nested control structures and parentheses at parse time
# With a CPU-time budget, the executors read the thread's CPU time every CHECK_STEPS steps (reading it
# costs a system call; a step costs less): a step is bounded in work (MAX_VALUE), so a budget is
# overrun by at most CHECK_STEPS steps.
CHECK_STEPS = 64


class TemplateError(Exception):
    """A parse or execution error; str() is Go's message, name/line/col locate it."""

    def __init__(self, message: str, name: str = "", line: int = 0, col: int = 0) -> None:
        super().__init__(message)
        self.name, self.line, self.col = name, line, col


class ParseError(TemplateError):
    pass


class ExecError(TemplateError):
    pass


class LimitError(ExecError):
    pass


class BudgetError(LimitError):
    """The execution used up its CPU-time budget."""


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


def lex(text: str, break_ok: bool = True, go124: bool = True) -> List[Item]:
    """Return the items of `text`; the last is EOF or an error."""
    items: List[Item] = []
    pos = start = 0
    start_line = 1
    n = len(text)

    def emit(typ: int, end: int) -> None:
        nonlocal start, start_line
        items.append(Item(typ, start, text[start:end], start_line))
        start_line += text.count("\n", start, end)
        start = end

    def error(msg: str) -> List[Item]:
        items.append(Item(T_ERROR, start, msg, start_line))
        return items

    def ignore(end: int) -> None:
        nonlocal start, start_line
        start_line += text.count("\n", start, end)
        start = end

    def at_terminator(i: int) -> bool:
        if i >= n:
            return True
        c = text[i]
        if c in SPACE or c in ".,|:)(":
            return True
        return text.startswith("}}", i)

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
                trim_space = True
            elif text.startswith("}}", pos):
                trim_space = False
            else:
                return error("comment ends before closing delimiter")
            if trim_space:
                pos += 2
            pos += 2
            if trim_space:
                rest = text[pos:]
                pos += len(rest) - len(rest.lstrip(SPACE))
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
                    rest = text[pos:]
                    pos += len(rest) - len(rest.lstrip(SPACE))
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
            elif c == '"':
                end = _quoted_end(text, pos, '"')
                if end is None:
                    return error("unterminated quoted string")
                pos = end
                emit(T_STRING, pos)
            elif c == "`":
                i = text.find("`", pos)
                if i < 0:
                    return error("unterminated raw quoted string")
                pos = i + 1
                emit(T_RAWSTRING, pos)
            elif c == "$":
                if not at_terminator(pos):
                    while pos < n and _is_alnum(text[pos]):
                        pos += 1
                    if not at_terminator(pos):
                        return error(f"bad character {_rune(text[pos])}")
                emit(T_VARIABLE, pos)
            elif c == "'":
                end = _quoted_end(text, pos, "'")
                if end is None:
                    return error("unterminated character constant")
                pos = end
                emit(T_CHARCONST, pos)
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
                if kw is not None and kw > T_KEYWORD and word != ".":
                    if kw in (T_BREAK, T_CONTINUE) and not break_ok:
                        emit(T_IDENT, pos)
                    else:
                        emit(kw, pos)
                elif word in ("true", "false"):
                    emit(T_BOOL, pos)
                else:
                    emit(T_IDENT, pos)
            elif c == "(":
                emit(T_LPAREN, pos)
                depth += 1
            elif c == ")":
                depth -= 1
                if depth < 0 and go124:  # Go 1.20 and later: the error instead of the paren
                    return error("unexpected right paren")
                emit(T_RPAREN, pos)
                if depth < 0:
                    return error("unexpected right paren U+0029 ')'")
            elif ord(c) < 0x80 and c.isprintable():
                emit(T_CHAR, pos)
            else:
                return error(f"unrecognized character in action: {_rune(c)}")
        pos = start


def _rune(c: str) -> str:
    """Go's %#U of a character."""
    o = ord(c)
    if c.isprintable():
        return f"U+{o:04X} '{c}'"
    return f"U+{o:04X}"


def _scan_number(text: str, pos: int) -> Tuple[bool, int]:
    n = len(text)

    def accept(valid: str) -> bool:
        nonlocal pos
        if pos < n and text[pos] in valid:
            pos += 1
            return True
        return False

    def run(valid: str) -> None:
        nonlocal pos
        while pos < n and text[pos] in valid:
            pos += 1

    accept("+-")
    digits = "0123456789_"
    if accept("0"):
        if accept("xX"):
            digits = "0123456789abcdefABCDEF_"
        elif accept("oO"):
            digits = "01234567_"
        elif accept("bB"):
            digits = "01_"
    run(digits)
    if accept("."):
        run(digits)
    if len(digits) == 11 and accept("eE"):
        accept("+-")
        run("0123456789_")
    if len(digits) == 23 and accept("pP"):
        accept("+-")
        run("0123456789_")
    accept("i")
    if pos < n and _is_alnum(text[pos]):
        return False, pos + 1
    return True, pos


# ---------------------------------------------------------------------------------------------
# Nodes


class Node:
    __slots__ = ("pos", "tree")

    def __init__(self, pos: int) -> None:
        self.pos = pos
        self.tree: Optional[Tree] = None


class ListNode(Node):
    __slots__ = ("nodes",)

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.nodes: List[Node] = []

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


class TextNode(Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str) -> None:
        super().__init__(pos)
        self.text = text

    def __str__(self) -> str:
        return gv.go_quote(self.text)


class PipeNode(Node):
    __slots__ = ("decl", "is_assign", "cmds")

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.decl: List[VariableNode] = []
        self.is_assign = False
        self.cmds: List[CommandNode] = []

    def __str__(self) -> str:
        s = ""
        if self.decl:
            s = ", ".join(str(v) for v in self.decl) + " := "
        return s + " | ".join(str(c) for c in self.cmds)


class ActionNode(Node):
    __slots__ = ("pipe",)

    def __init__(self, pos: int, pipe: PipeNode) -> None:
        super().__init__(pos)
        self.pipe = pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class CommandNode(Node):
    __slots__ = ("args",)

    def __init__(self, pos: int) -> None:
        super().__init__(pos)
        self.args: List[Node] = []

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


class IdentifierNode(Node):
    __slots__ = ("ident",)

    def __init__(self, pos: int, ident: str) -> None:
        super().__init__(pos)
        self.ident = ident

    def __str__(self) -> str:
        return self.ident


class VariableNode(Node):
    __slots__ = ("ident",)

    def __init__(self, pos: int, ident: str) -> None:
        super().__init__(pos)
        self.ident = ident.split(".")

    def __str__(self) -> str:
        return ".".join(self.ident)


class DotNode(Node):
    def __str__(self) -> str:
        return "."


class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


class FieldNode(Node):
    __slots__ = ("ident",)

    def __init__(self, pos: int, ident: str) -> None:
        super().__init__(pos)
        self.ident = [p for p in ident.split(".") if p]

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


class ChainNode(Node):
    __slots__ = ("node", "field")

    def __init__(self, pos: int, node: Node) -> None:
        super().__init__(pos)
        self.node = node
        self.field: List[str] = []

    def add(self, field: str) -> None:
        self.field.extend(p for p in field.split(".") if p)  # a field item starts with its dot

    def __str__(self) -> str:
        s = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return s + "".join("." + f for f in self.field)


class BoolNode(Node):
    __slots__ = ("value",)

    def __init__(self, pos: int, value: bool) -> None:
        super().__init__(pos)
        self.value = value

    def __str__(self) -> str:
        return "true" if self.value else "false"


class NumberNode(Node):
    __slots__ = ("text", "is_int", "is_uint", "is_float", "is_complex", "int64", "uint64", "float64",
                 "complex128")

    def __init__(self, pos: int, text: str) -> None:
        super().__init__(pos)
        self.text = text
        self.is_int = self.is_uint = self.is_float = self.is_complex = False
        self.int64 = self.uint64 = 0
        self.float64 = 0.0
        self.complex128 = 0j

    def __str__(self) -> str:
        return self.text


class StringNode(Node):
    __slots__ = ("quoted", "text")

    def __init__(self, pos: int, quoted: str, text: str) -> None:
        super().__init__(pos)
        self.quoted, self.text = quoted, text

    def __str__(self) -> str:
        return self.quoted


class _EndNode(Node):
    def __str__(self) -> str:
        return "{{end}}"


class _ElseNode(Node):
    __slots__ = ("line",)

    def __init__(self, pos: int, line: int) -> None:
        super().__init__(pos)
        self.line = line

    def __str__(self) -> str:
        return "{{else}}"


class BranchNode(Node):
    __slots__ = ("pipe", "list", "else_list")
    NAME = ""

    def __init__(self, pos: int, pipe: PipeNode, lst: ListNode, else_list: Optional[ListNode]) -> None:
        super().__init__(pos)
        self.pipe, self.list, self.else_list = pipe, lst, else_list

    def __str__(self) -> str:
        s = "{{" + self.NAME + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            s += "{{else}}" + str(self.else_list)
        return s + "{{end}}"


class IfNode(BranchNode):
    NAME = "if"


class RangeNode(BranchNode):
    NAME = "range"


class WithNode(BranchNode):
    NAME = "with"


class BreakNode(Node):
    def __str__(self) -> str:
        return "{{break}}"


class ContinueNode(Node):
    def __str__(self) -> str:
        return "{{continue}}"


class TemplateNode(Node):
    __slots__ = ("name", "pipe")

    def __init__(self, pos: int, name: str, pipe: Optional[PipeNode]) -> None:
        super().__init__(pos)
        self.name, self.pipe = name, pipe

    def __str__(self) -> str:
        s = "{{template " + gv.go_quote(self.name)
        if self.pipe is not None:
            s += " " + str(self.pipe)
        return s + "}}"


# ---------------------------------------------------------------------------------------------
# Parser


def unquote(s: str) -> str:
    """strconv.Unquote of a Go string, raw string or character literal; ValueError when invalid."""
    if len(s) < 2:
        raise ValueError("invalid syntax")
    q = s[0]
    if q != s[-1]:
        raise ValueError("invalid syntax")
    body = s[1:-1]
    if q == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
    if q not in "\"'":
        raise ValueError("invalid syntax")
    if "\n" in body:
        raise ValueError("invalid syntax")
    out: List[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == q and q == '"':
            raise ValueError("invalid syntax")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("invalid syntax")
        c = body[i]
        i += 1
        simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
        if c in simple:
            out.append(simple[c])
        elif c == q:
            out.append(c)
        elif c in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[c]
            hexs = body[i:i + size]
            if len(hexs) < size or not all(h in "0123456789abcdefABCDEF" for h in hexs):
                raise ValueError("invalid syntax")
            i += size
            v = int(hexs, 16)
            if c == "x":
                if q == "'":
                    out.append(chr(v))
                else:
                    out.append(_byte_char(v))
            else:
                if v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
                    raise ValueError("invalid syntax")
                out.append(chr(v))
        elif c in "01234567":
            octs = body[i - 1:i + 2]
            if len(octs) < 3 or not all(o in "01234567" for o in octs):
                raise ValueError("invalid syntax")
            v = int(octs, 8)
            if v > 255:
                raise ValueError("invalid syntax")
            i += 2
            out.append(chr(v) if q == "'" else _byte_char(v))
        else:
            raise ValueError("invalid syntax")
    result = "".join(out)
    if q == "'":
        if len(result) != 1:
            raise ValueError("invalid syntax")
    return _join_bytes(result)


_BYTE_BASE = 0xF0000  # private-use stand-ins for raw bytes of \x escapes, joined after unquoting


def _byte_char(v: int) -> str:
    return chr(v) if v < 0x80 else chr(_BYTE_BASE + v)


def _join_bytes(s: str) -> str:
    """Decode runs of raw-byte stand-ins as UTF-8 (invalid bytes become U+FFFD, as Go prints them)."""
    if not any(_BYTE_BASE + 0x80 <= ord(c) <= _BYTE_BASE + 0xFF for c in s):
        return s
    out, raw = [], bytearray()
    for c in s:
        o = ord(c)
        if _BYTE_BASE + 0x80 <= o <= _BYTE_BASE + 0xFF:
            raw.append(o - _BYTE_BASE)
            continue
        if raw:
            out.append(raw.decode("utf-8", "replace"))
            raw = bytearray()
        out.append(c)
    if raw:
        out.append(raw.decode("utf-8", "replace"))
    return "".join(out)


def _byte_col(text: str, pos: int) -> Tuple[int, int]:
    """Go's line and byte column (0-based on line 1, as ErrorContext counts) of character `pos`."""
    before = text[:pos]
    line = 1 + before.count("\n")
    nl = before.rfind("\n")
    seg = before if nl < 0 else before[nl + 1:]
    return line, len(seg.encode("utf-8", "surrogatepass"))


class Tree:
    """One parsed template: its name, the text it came from, its root list."""

    def __init__(self, name: str, parse_name: str, text: str) -> None:
        self.name, self.parse_name, self.text = name, parse_name, text
        self.root: Optional[ListNode] = None
        self.compiled: Optional[Callable[[Any, Any], None]] = None  # gocodegen's function or gocompile's closure, once run


class _Parser:
    def __init__(self, name: str, text: str, funcs: Dict[str, Any], tree_set: Dict[str, Tree]) -> None:
        self.name = name
        self.text = text
        self.funcs = funcs
        self.items = lex(text, "break" not in funcs, bool(funcs.get("\0else_with", False)))
        self.i = 0
        self.tree_set = tree_set
        self.vars: List[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.last: Item = self.items[0]
        self.tree = Tree(name, name, text)
        self.nesting = 0

    # tokens
    def next(self) -> Item:
        item = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        self.last = item
        return item

    def backup(self, k: int = 1) -> None:
        self.i -= k

    def peek(self) -> Item:
        return self.items[min(self.i, len(self.items) - 1)]

    def next_non_space(self) -> Item:
        while True:
            t = self.next()
            if t.typ != T_SPACE:
                return t

    def peek_non_space(self) -> Item:
        t = self.next_non_space()
        self.backup()
        return t

    def errorf(self, msg: str, item: Optional[Item] = None) -> None:
        item = item or self.last
        line, col = _byte_col(self.text, min(item.pos, len(self.text)))
        raise ParseError(f"template: {self.tree.parse_name}:{item.line}: {msg}", self.tree.parse_name, item.line, col)

    def unexpected(self, token: Item, context: str) -> None:
        if token.typ == T_ERROR:
            extra = ""
            if self.action_line and self.action_line != token.line:
                extra = f" in action started at {self.tree.parse_name}:{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            self.errorf(f"{token}{extra}", token)
        self.errorf(f"unexpected {token} in {context}", token)

    def expect(self, typ: int, context: str) -> Item:
        t = self.next_non_space()
        if t.typ != typ:
            self.unexpected(t, context)
        return t

    def new(self, node: Node) -> Any:
        node.tree = self.tree
        return node

    # structure
    def parse(self) -> None:
        tree = self.tree
        tree.root = self.new(ListNode(self.peek().pos))
        while self.peek().typ != T_EOF:
            if self.peek().typ == T_LDELIM:
                start = self.i
                self.next()
                if self.next_non_space().typ == T_DEFINE:
                    self.parse_definition()
                    continue
                self.i = start
            n = self.text_or_action()
            if isinstance(n, (_EndNode, _ElseNode)):
                self.errorf(f"unexpected {n}")
            tree.root.nodes.append(n)
        self.add(tree)

    def add(self, tree: Tree) -> None:
        old = self.tree_set.get(tree.name)
        if old is None or is_empty_tree(old.root):
            self.tree_set[tree.name] = tree
            return
        if not is_empty_tree(tree.root):
            self.errorf(f"template: multiple definition of template {gv.go_quote(tree.name)}")

    def _sub(self, name: str, fn: Callable[[], Any]) -> Tree:
        outer, outer_vars, outer_range = self.tree, self.vars, self.range_depth
        self.tree = Tree(name, outer.parse_name, self.text)
        self.vars = ["$"]
        self.range_depth = 0
        try:
            fn()
            return self.tree
        finally:
            self.tree, self.vars, self.range_depth = outer, outer_vars, outer_range

    def parse_definition(self) -> None:
        context = "define clause"

        def body() -> None:
            name = self.next_non_space()
            if name.typ not in (T_STRING, T_RAWSTRING):
                self.unexpected(name, context)
            try:
                self.tree.name = unquote(name.val)
            except ValueError as exc:
                self.errorf(str(exc))
            self.expect(T_RDELIM, context)
            self.tree.root, end = self.item_list()
            if not isinstance(end, _EndNode):
                self.errorf(f"unexpected {end} in {context}")
            self.add(self.tree)
        self._sub("definition", body)

    def item_list(self) -> Tuple[ListNode, Node]:
        lst = self.new(ListNode(self.peek_non_space().pos))
        while self.peek_non_space().typ != T_EOF:
            n = self.text_or_action()
            if isinstance(n, (_EndNode, _ElseNode)):
                return lst, n
            lst.nodes.append(n)
        self.errorf("unexpected EOF")
        raise AssertionError

    def text_or_action(self) -> Node:
        token = self.next_non_space()
        if token.typ == T_TEXT:
            return self.new(TextNode(token.pos, token.val))
        if token.typ == T_LDELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(token, "input")
        raise AssertionError

    def action(self) -> Node:
        token = self.next_non_space()
        typ = token.typ
        if typ in (T_IF, T_RANGE, T_WITH, T_BLOCK):
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                self.errorf(f"nesting deeper than {MAX_NESTING}")
        try:
            if typ == T_BLOCK:
                return self.block_control()
            if typ == T_BREAK:
                return self.branch_control(token, "{{break}}", BreakNode)
            if typ == T_CONTINUE:
                return self.branch_control(token, "{{continue}}", ContinueNode)
            if typ == T_ELSE:
                return self.else_control()
            if typ == T_END:
                return self.new(_EndNode(self.expect(T_RDELIM, "end").pos))
            if typ == T_IF:
                return self.new(IfNode(*self.parse_control(True, "if")))
            if typ == T_RANGE:
                return self.new(RangeNode(*self.parse_control(False, "range")))
            if typ == T_TEMPLATE:
                return self.template_control()
            if typ == T_WITH:
                return self.new(WithNode(*self.parse_control(self.funcs.get("\0else_with", False), "with")))
        finally:
            if typ in (T_IF, T_RANGE, T_WITH, T_BLOCK):
                self.nesting -= 1
        self.backup()
        token = self.peek()
        return self.new(ActionNode(token.pos, self.pipeline("command", T_RDELIM)))

    def branch_control(self, token: Item, name: str, cls: type) -> Node:
        t = self.next_non_space()
        if t.typ != T_RDELIM:
            self.unexpected(t, name)
        if self.range_depth == 0:
            self.errorf(f"{name} outside {{{{range}}}}")
        return self.new(cls(token.pos))

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ == T_IF or (peek.typ == T_WITH and self.funcs.get("\0else_with", False)):
            return self.new(_ElseNode(peek.pos, peek.line))
        token = self.expect(T_RDELIM, "else")
        return self.new(_ElseNode(token.pos, token.line))

    def parse_control(self, allow_else_if: bool, context: str) -> Tuple[int, PipeNode, ListNode, Optional[ListNode]]:
        nvars = len(self.vars)
        try:
            pipe = self.pipeline(context, T_RDELIM)
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(nxt, _ElseNode):
                chain = T_IF if context == "if" else T_WITH
                if allow_else_if and self.peek().typ == chain:
                    self.next()
                    else_list = self.new(ListNode(nxt.pos))
                    self.nesting += 1
                    try:
                        cls = IfNode if context == "if" else WithNode
                        else_list.nodes.append(self.new(cls(*self.parse_control(allow_else_if, context))))
                    finally:
                        self.nesting -= 1
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, _EndNode):
                        self.errorf(f"expected end; found {nxt}")
            return pipe.pos, pipe, lst, else_list
        finally:
            del self.vars[nvars:]

    def block_control(self) -> Node:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, T_RDELIM)

        def body() -> None:
            self.tree.root, end = self.item_list()
            if not isinstance(end, _EndNode):
                self.errorf(f"unexpected {end} in {context}")
            self.add(self.tree)
        self._sub(name, body)
        return self.new(TemplateNode(token.pos, name, pipe))

    def template_control(self) -> Node:
        context = "template clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.next_non_space().typ != T_RDELIM:
            self.backup()
            pipe = self.pipeline(context, T_RDELIM)
        return self.new(TemplateNode(token.pos, name, pipe))

    def template_name(self, token: Item, context: str) -> str:
        if token.typ in (T_STRING, T_RAWSTRING):
            try:
                return unquote(token.val)
            except ValueError as exc:
                self.errorf(str(exc))
        self.unexpected(token, context)
        raise AssertionError

    def pipeline(self, context: str, end: int) -> PipeNode:
        token = self.peek_non_space()
        pipe = self.new(PipeNode(token.pos))
        while True:  # decls
            v = self.peek_non_space()
            if v.typ != T_VARIABLE:
                break
            start = self.i
            self.next_non_space()
            after = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ in (T_ASSIGN, T_DECLARE):
                pipe.is_assign = nxt.typ == T_ASSIGN
                self.next_non_space()
                pipe.decl.append(self.new(VariableNode(v.pos, v.val)))
                self.vars.append(v.val)
            elif nxt.typ == T_CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(self.new(VariableNode(v.pos, v.val)))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (T_VARIABLE, T_RDELIM, T_RPAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            elif after.typ == T_SPACE:
                self.i = start
            else:
                self.i = start
            break
        while True:
            token = self.next_non_space()
            if token.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ in (T_BOOL, T_CHARCONST, T_COMPLEX, T_DOT, T_FIELD, T_IDENT, T_NUMBER, T_NIL,
                             T_RAWSTRING, T_STRING, T_VARIABLE, T_LPAREN):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(token, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> CommandNode:
        cmd = self.new(CommandNode(self.peek_non_space().pos))
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ == T_SPACE:
                continue
            if token.typ in (T_RDELIM, T_RPAREN):
                self.backup()
            elif token.typ == T_PIPE:
                pass
            else:
                self.unexpected(token, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> Optional[Node]:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == T_FIELD:
            chain = self.new(ChainNode(self.peek().pos, node))
            while self.peek().typ == T_FIELD:
                chain.add(self.next().val)
            if isinstance(node, FieldNode):
                node = self.new(FieldNode(chain.pos, str(chain)))
            elif isinstance(node, VariableNode):
                node = self.new(VariableNode(chain.pos, str(chain)))
            elif isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                self.errorf(f"unexpected . after term {gv.go_quote(str(node))}")
            else:
                node = chain
        return node

    def term(self) -> Optional[Node]:
        token = self.next_non_space()
        typ = token.typ
        if typ == T_IDENT:
            if token.val not in self.funcs:
                self.errorf(f"function {gv.go_quote(token.val)} not defined")
            return self.new(IdentifierNode(token.pos, token.val))
        if typ == T_DOT:
            return self.new(DotNode(token.pos))
        if typ == T_NIL:
            return self.new(NilNode(token.pos))
        if typ == T_VARIABLE:
            name = token.val.split(".")[0]
            if name not in self.vars:
                self.errorf(f"undefined variable {gv.go_quote(name)}")
            return self.new(VariableNode(token.pos, token.val))
        if typ == T_FIELD:
            return self.new(FieldNode(token.pos, token.val))
        if typ == T_BOOL:
            return self.new(BoolNode(token.pos, token.val == "true"))
        if typ in (T_CHARCONST, T_COMPLEX, T_NUMBER):
            return self.new(self.number(token))
        if typ == T_LPAREN:
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                self.errorf(f"nesting deeper than {MAX_NESTING}")
            try:
                return self.pipeline("parenthesized pipeline", T_RPAREN)
            finally:
                self.nesting -= 1
        if typ in (T_STRING, T_RAWSTRING):
            try:
                s = unquote(token.val)
            except ValueError as exc:
                self.errorf(str(exc))
            return self.new(StringNode(token.pos, token.val, s))
        self.backup()
        return None

    def number(self, token: Item) -> NumberNode:
        text = token.val
        n = NumberNode(token.pos, text)
        if token.typ == T_CHARCONST:
            try:
                ch = unquote(text)
            except ValueError as exc:
                first = _first_char_end(text)
                if first is None:
                    self.errorf(str(exc))
                self.errorf(f"malformed character constant: {text}")
            if len(ch) != 1:
                self.errorf(f"malformed character constant: {text}")
            r = ord(ch)
            n.int64 = n.uint64 = r
            n.float64 = float(r)
            n.is_int = n.is_uint = n.is_float = True
            return n
        if token.typ == T_COMPLEX:
            self.errorf(f"complex constants are not supported: {text}")
        if text.endswith("i"):
            f = _parse_float(text[:-1])
            if f is not None:
                n.is_complex = True
                n.complex128 = complex(0, f)
                _simplify_complex(n)
                return n
        u = _parse_int(text, unsigned=True)
        if u is not None:
            n.is_uint, n.uint64 = True, u
        i = _parse_int(text, unsigned=False)
        if i is not None:
            n.is_int, n.int64 = True, i
            if i == 0:
                n.is_uint, n.uint64 = True, u or 0
        if n.is_int:
            n.is_float, n.float64 = True, float(n.int64)
        elif n.is_uint:
            n.is_float, n.float64 = True, float(n.uint64)
        else:
            f = _parse_float(text)
            if f is not None:
                if not any(c in text for c in ".eEpP"):
                    self.errorf(f"integer overflow: {gv.go_quote(text)}")
                n.is_float, n.float64 = True, f
                if f == f and abs(f) != float("inf") and float(int(f)) == f:
                    if -(1 << 63) <= int(f) < (1 << 63):
                        n.is_int, n.int64 = True, int(f)
                    if 0 <= int(f) < (1 << 64):
                        n.is_uint, n.uint64 = True, int(f)
        if not (n.is_int or n.is_uint or n.is_float):
            self.errorf(f"illegal number syntax: {gv.go_quote(text)}")
        return n


def _first_char_end(text: str) -> Optional[int]:
    """Where the first character (or escape) of a character literal ends, or None when it is invalid."""
    for end in range(2, min(len(text), 12)):
        try:
            unquote("'" + text[1:end] + "'")
            return end
        except ValueError:
            continue
    return None


def _simplify_complex(n: NumberNode) -> None:
    n.is_float = n.complex128.imag == 0
    if n.is_float:
        n.float64 = n.complex128.real
        n.is_int = float(int(n.float64)) == n.float64
        if n.is_int:
            n.int64 = int(n.float64)
        n.is_uint = n.is_int and n.int64 >= 0
        if n.is_uint:
            n.uint64 = n.int64


_INT_RE = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)\Z")


def _underscores_ok(s: str) -> bool:
    """Go's rule: underscores only between digits (or after a base prefix)."""
    body = s.lstrip("+-")
    if "_" not in body:
        return True
    if body[:2].lower() in ("0x", "0o", "0b"):
        body = "0" + body[2:] if False else body[2:]
        if body.startswith("_"):
            body = body[1:]
    elif body.startswith("0") and len(body) > 1:
        body = body[1:].lstrip("_") if body[1] == "_" else body[1:]
    return not ("__" in body or body.startswith("_") or body.endswith("_"))


def _parse_int(text: str, unsigned: bool) -> Optional[int]:
    if not _INT_RE.match(text) or not _underscores_ok(text):
        return None
    if unsigned and text[0] in "+-":
        return None
    body = text.replace("_", "")
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
    low = body.lower()
    if low.startswith("0x"):
        v = int(low[2:], 16)
    elif low.startswith("0o"):
        v = int(low[2:], 8)
    elif low.startswith("0b"):
        v = int(low[2:], 2)
    elif low.startswith("0") and len(low) > 1:
        v = int(low[1:], 8)
    else:
        v = int(low)
    v *= sign
    if unsigned:
        return v if 0 <= v < (1 << 64) else None
    return v if -(1 << 63) <= v < (1 << 63) else None


_FLOAT_RE = re.compile(r"[+-]?(([0-9][0-9_]*)?\.?[0-9_]*([eE][+-]?[0-9_]+)?|0[xX][0-9a-fA-F_]*\.?[0-9a-fA-F_]*[pP][+-]?[0-9_]+)\Z")


def _parse_float(text: str) -> Optional[float]:
    if not _FLOAT_RE.match(text) or not any(c.isdigit() for c in text):
        return None
    body = text.replace("_", "") if _underscores_ok(text.split(".")[0]) else None
    if body is None:
        return None
    try:
        if body.lstrip("+-")[:2].lower() == "0x":
            v = float.fromhex(body)
        else:
            v = float(body)
    except (ValueError, OverflowError):
        return None
    if v in (float("inf"), float("-inf")):
        return None  # strconv.ParseFloat: value out of range
    return v


def is_empty_tree(n: Optional[Node]) -> bool:
    if n is None:
        return True
    if isinstance(n, ListNode):
        return all(is_empty_tree(x) for x in n.nodes)
    if isinstance(n, TextNode):
        return n.text.strip(" \t\n\r\v\f\x85\xa0") == "" if n.text.isascii() else n.text.strip() == ""
    return False


# ---------------------------------------------------------------------------------------------
# Templates


class Template:
    """A set of named templates parsed together (Go's *template.Template and its associates)."""

    def __init__(self, funcs: Dict[str, Func], compat: str = "0.28") -> None:
        self.funcs = dict(funcs)
        self.trees: Dict[str, Tree] = {}
        self.compat = compat
        self.local = gv.Location("UTC", None, True)  # Go's time.Local, for times' .Local
        if compat != "0.25":
            self.funcs["\0else_with"] = True  # Go 1.23 and later: {{else with}}

    def parse(self, name: str, text: str) -> None:
        """Parse `text` as template `name` (its defines join the set); raise ParseError."""
        tree_set: Dict[str, Tree] = {}
        parser = _Parser(name, text, self.funcs, tree_set)
        try:
            parser.parse()
        except RecursionError:
            raise ParseError(f"template: {name}:1: template nested too deeply", name, 1, 0) from None
        for tname, tree in tree_set.items():  # Go's associate: an empty tree never replaces a full one
            old = self.trees.get(tname)
            if old is not None and is_empty_tree(tree.root) and old.root is not None:
                continue
            self.trees[tname] = tree

    def execute(self, name: str, data: Any, max_steps: int = MAX_STEPS, max_output: int = MAX_OUTPUT,
                cpu_deadline: Optional[float] = None) -> str:
        """Return the output of template `name` for `data`; raise ExecError. `cpu_deadline` is a time on
        the time.thread_time() clock: past it, the execution stops with BudgetError."""
        tree = self.trees.get(name)
        if tree is None or tree.root is None:
            raise ExecError(f"template: {name}: {gv.go_quote(name)} is an incomplete or empty template", name)
        if cpu_deadline is None:
            return self._execute(name, tree, data, max_steps, max_output, None)
        # A single regular expression can run long inside one step: the matcher checks the budget too.
        def check(steps: int) -> None:
            if time.thread_time() > cpu_deadline:
                raise BudgetError(f"template: {name}: a regular expression was stopped after {steps} steps: "
                                  "its CPU-time budget is used up", name)
        with goregexp.checking(check):
            return self._execute(name, tree, data, max_steps, max_output, cpu_deadline)

    def _execute(self, name: str, tree: "Tree", data: Any, max_steps: int, max_output: int,
                 cpu_deadline: Optional[float]) -> str:
        st = _State(self, tree, data, max_steps, max_output, cpu_deadline)
        try:
            (tree.compiled or _compile(tree, self))(st, data)
            return "".join(st.out)
        except BudgetError:
            raise
        except Exception:  # noqa: BLE001 - any failure: the walker runs it again and says why, in Go's words
            pass
        st = _State(self, tree, data, max_steps, max_output, cpu_deadline)
        try:
            st.walk(data, tree.root)
        except RecursionError:
            raise LimitError(f"template: {name}: exceeded maximum template depth", name) from None
        return "".join(st.out)


def _compile(tree: Tree, tmpl: "Template") -> Callable[[Any, Any], None]:
    from . import closures as gocompile  # it builds on this module
    return gocompile.root_of(tree, tmpl)


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_MISSING = object()


def number_value(c: NumberNode) -> Any:
    """A number literal's value where it is printed or passed untyped (Go's idealConstant): complex,
    float when written as one, else int; _MISSING when none fits (an unsigned beyond int64)."""
    text = c.text
    is_hex_int = len(text) > 2 and text[0] == "0" and text[1] in "xX" and not any(x in text for x in "pP")
    if c.is_complex:
        return c.complex128
    if c.is_float and not is_hex_int and not text.startswith("'") and any(x in text for x in ".eEpP"):
        return c.float64
    if c.is_int:
        return c.int64
    return _MISSING


def truth(v: Any) -> Tuple[bool, bool]:
    """Go's isTrue: (truth, ok)."""
    if v is None:
        return False, True
    if isinstance(v, (str, list, dict)):
        return len(v) > 0, True
    if isinstance(v, bool):
        return v, True
    if isinstance(v, (int, float, complex)):
        return v != 0, True
    if isinstance(v, Ptr):
        return True, True
    return True, True


Ptr = gv.Ptr


def indirect(v: Any) -> Any:
    while isinstance(v, Ptr):
        v = v.elem
    return v


class _State:
    __slots__ = ("tmpl", "tree", "vars", "node", "out", "size", "steps", "max_steps", "max_output", "depth", "compat",
                 "step_limit", "cpu_deadline")

    def __init__(self, tmpl: Template, tree: Optional[Tree], data: Any, max_steps: int, max_output: int,
                 cpu_deadline: Optional[float] = None) -> None:
        self.tmpl = tmpl
        self.tree = tree
        self.vars: List[List[Any]] = [["$", data]]
        self.node: Optional[Node] = None
        self.out: List[str] = []
        self.size = 0
        self.steps = 0
        # max_steps is where the executors next stop to check: the step limit, or before it the next
        # reading of the CPU time
        self.step_limit = max_steps
        self.cpu_deadline = cpu_deadline
        self.max_steps = max_steps if cpu_deadline is None else min(max_steps, CHECK_STEPS)
        self.max_output = max_output
        self.depth = 0
        self.compat = tmpl.compat

    # errors
    def errorf(self, msg: str) -> None:
        tree = self.tree
        name = tree.name if tree else ""
        if self.node is None or self.node.tree is None:
            raise ExecError(f"template: {name}: {msg}", name)
        ntree = self.node.tree
        line, col = _byte_col(ntree.text, self.node.pos)
        context = str(self.node)
        raise ExecError(f"template: {ntree.parse_name}:{line}:{col}: executing {gv.go_quote(name)} at "
                        f"<{_context(context)}>: {msg}", ntree.parse_name, line, col)

    def limit(self, msg: str) -> None:
        name = self.tree.name if self.tree else ""
        line = col = 0
        if self.node is not None and self.node.tree is not None:
            line, col = _byte_col(self.node.tree.text, self.node.pos)
        raise LimitError(f"template: {name}:{line}:{col}: {msg}", name, line, col)

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            self.over()

    def over(self) -> None:
        """Stop at the step limit or past the CPU-time budget, else set the next check."""
        if self.steps > self.step_limit:
            self.limit(f"execution stopped after {self.step_limit} steps")
        self.max_steps = self.next_check(self.steps)

    def next_check(self, steps: int) -> int:
        """Return the step count of the next check; raise BudgetError past the CPU-time budget."""
        if self.cpu_deadline is not None:
            if time.thread_time() > self.cpu_deadline:
                name = self.tree.name if self.tree else ""
                raise BudgetError(f"template: {name}: execution stopped after {steps} steps: "
                                  "its CPU-time budget is used up", name)
            return min(self.step_limit, steps + CHECK_STEPS)
        return self.step_limit

    def write(self, s: str) -> None:
        self.size += len(s)
        if self.size > self.max_output:
            self.limit(f"output larger than {self.max_output} characters")
        self.out.append(s)

    # variables
    def push(self, name: str, value: Any) -> None:
        self.vars.append([name, value])

    def mark(self) -> int:
        return len(self.vars)

    def pop(self, mark: int) -> None:
        del self.vars[mark:]

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i][1] = value
                return
        self.errorf(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                return self.vars[i][1]
        self.errorf(f"undefined variable: {name}")

    # walking
    def walk(self, dot: Any, node: Node) -> None:
        self.node = node
        self.steps += 1
        if self.steps > self.max_steps:
            self.over()
        kind = type(node)
        if kind is TextNode:
            self.write(node.text)
            return
        if kind is ListNode:
            for n in node.nodes:
                self.walk(dot, n)
            return
        if isinstance(node, ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, val)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, TextNode):
            self.write(node.text)
        elif isinstance(node, IfNode):
            self.walk_if_with(False, dot, node)
        elif isinstance(node, WithNode):
            self.walk_if_with(True, dot, node)
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break()
        elif isinstance(node, ContinueNode):
            raise _Continue()
        else:
            self.errorf(f"unknown node: {node}")

    def walk_if_with(self, is_with: bool, dot: Any, node: BranchNode) -> None:
        mark = self.mark()
        try:
            val = self.eval_pipeline(dot, node.pipe)
            t, ok = truth(val)
            if not ok:
                self.errorf(f"if/with can't use {gv.format_v(val, self.compat)}")
            if t:
                self.walk(val if is_with else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            self.pop(mark)

    def walk_range(self, dot: Any, r: RangeNode) -> None:
        self.node = r
        mark0 = self.mark()
        try:
            val = indirect(self.eval_pipeline(dot, r.pipe))
            mark = self.mark()

            def one(index: Any, elem: Any) -> None:
                if r.pipe.decl:
                    if r.pipe.is_assign and self.compat != "0.25":
                        if len(r.pipe.decl) > 1:
                            self.set_var(r.pipe.decl[0].ident[0], index)
                            self.set_var(r.pipe.decl[1].ident[0], elem)
                        else:
                            self.set_var(r.pipe.decl[0].ident[0], elem)
                    else:
                        self.vars[-1][1] = elem
                        if len(r.pipe.decl) > 1:
                            self.vars[-2][1] = index
                try:
                    self.walk(elem, r.list)
                except _Continue:
                    pass
                finally:
                    self.pop(mark)

            try:
                if isinstance(val, list):
                    if val:
                        for i, elem in enumerate(val):
                            one(i, elem)
                        return
                elif isinstance(val, dict):
                    if val:
                        for key in sorted(val):
                            one(key, val[key])
                        return
                elif val is None:
                    pass
                elif isinstance(val, int) and not isinstance(val, bool) and self.compat != "0.25" \
                        and type(val) is int:
                    if len(r.pipe.decl) > 1:
                        self.errorf("can't use {} to iterate over more than one variable".format(val))
                    if val > 0:
                        for i in range(val):
                            one(i, i)
                        return
                else:
                    self.errorf(f"range can't iterate over {gv.format_v(val, self.compat)}")
                if r.else_list is not None:
                    self.walk(dot, r.else_list)
            except _Break:  # as in Go, a break in the else list ends that list too
                return
        finally:
            self.pop(mark0)

    def walk_template(self, dot: Any, t: TemplateNode) -> None:
        self.node = t
        tree = self.tmpl.trees.get(t.name)
        if tree is None or tree.root is None:
            self.errorf(f"template {gv.go_quote(t.name)} not defined")
        if self.depth >= MAX_DEPTH:
            self.errorf(f"exceeded maximum template depth ({MAX_DEPTH})")
        dot = self.eval_pipeline(dot, t.pipe)
        saved = (self.tree, self.vars, self.depth)
        self.tree, self.vars, self.depth = tree, [["$", dot]], self.depth + 1
        try:
            self.walk(dot, tree.root)
        finally:
            self.tree, self.vars, self.depth = saved

    def eval_pipeline(self, dot: Any, pipe: Optional[PipeNode]) -> Any:
        if pipe is None:
            return None
        self.node = pipe
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.ident[0], value)
            else:
                self.push(var.ident[0], value)
        return value

    def not_a_function(self, args: List[Node], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        self.steps += 1
        if self.steps > self.max_steps:
            self.over()
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.node = first
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        self.errorf(f"can't evaluate command {gv.go_quote(str(first))}")

    def ideal_constant(self, c: NumberNode) -> Any:
        self.node = c
        value = number_value(c)
        if value is not _MISSING:
            return value
        if c.is_uint:
            self.errorf(f"{c.text} overflows int")
        return None

    def eval_chain(self, dot: Any, chain: ChainNode, args: List[Node], final: Any) -> Any:
        self.node = chain
        if isinstance(chain.node, NilNode):
            self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.field, args, final)

    def eval_variable(self, dot: Any, var: VariableNode, args: List[Node], final: Any) -> Any:
        self.node = var
        value = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.ident[1:], args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: Node, ident: List[str], args: List[Node],
                         final: Any) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(dot, name, node, None, _MISSING, receiver)
        return self.eval_field(dot, ident[-1], node, args, final, receiver)

    def eval_function(self, dot: Any, node: IdentifierNode, cmd: Node, args: Optional[List[Node]],
                      final: Any) -> Any:
        self.node = node
        fn = self.tmpl.funcs.get(node.ident)
        if not isinstance(fn, Func):
            self.errorf(f"{gv.go_quote(node.ident)} is not a defined function")
        return self.eval_call(dot, fn, cmd, node.ident, args, final)

    def eval_field(self, dot: Any, name: str, node: Node, args: Optional[List[Node]], final: Any,
                   receiver: Any) -> Any:
        if receiver is None:
            return None
        methods = _methods(receiver, self.compat)
        method = methods.get(name)
        if method is None and isinstance(receiver, Ptr):
            method = _methods(receiver.elem, self.compat).get(name)
        if method is not None:
            return self.eval_call(dot, method, node, name, args, final, receiver=indirect(receiver))
        rv = indirect(receiver)
        has_args = (args is not None and len(args) > 1) or final is not _MISSING
        if isinstance(rv, gv.GoStruct):
            if name in rv.FIELDS:
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return rv.field(name)
        elif isinstance(rv, dict):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name in rv:
                return rv[name]
            return getattr(rv, "ELEM_ZERO", None)
        self.errorf(f"can't evaluate field {name} in type {gv.type_name(receiver)}")

    def eval_call(self, dot: Any, fn: Func, node: Node, name: str, args: Optional[List[Node]], final: Any,
                  receiver: Any = _MISSING) -> Any:
        args = args[1:] if args is not None else []
        params = fn.params
        num_in = len(args) + (0 if final is _MISSING else 1)
        if fn.variadic:
            num_fixed = len(params) - 1
            if num_in < num_fixed:
                self.errorf(f"wrong number of args for {name}: want at least {len(params) - 1} got {len(args)}")
        else:
            num_fixed = len(args)
            if num_in != len(params):
                self.errorf(f"wrong number of args for {name}: want {len(params)} got {num_in}")
        if fn.name in ("and", "or"):
            v: Any = None
            for arg in args:
                v = self.eval_arg(dot, "value", arg)
                if truth(v)[0] == (fn.name == "or"):
                    return v
            if final is not _MISSING:
                v = final
            return v
        argv: List[Any] = []
        i = 0
        while i < num_fixed and i < len(args):
            argv.append(self.eval_arg(dot, params[i], args[i]))
            i += 1
        if fn.variadic:
            while i < len(args):
                argv.append(self.eval_arg(dot, params[-1], args[i]))
                i += 1
        if final is not _MISSING:
            t = params[-1] if params else "value"
            if fn.variadic and num_in - 1 < num_fixed:
                t = params[num_in - 1]
            argv.append(self.validate_type(final, t))
        try:
            if receiver is not _MISSING:
                result = fn.fn(self, receiver, *argv) if fn.wants_state else fn.fn(receiver, *argv)
            else:
                result = fn.fn(self, *argv) if fn.wants_state else fn.fn(*argv)
        except GoError as exc:
            self.node = node
            self.errorf(f"error calling {name}: {exc}")
        return result

    def validate_type(self, value: Any, typ: Optional[str]) -> Any:
        if value is None:
            if typ is None or typ in ("value", "any"):
                return None
            if typ.startswith("[]") or typ.startswith("map[") or typ.startswith("*"):
                return gv.StringSlice() if typ == "[]string" else None
            self.errorf(f"invalid value; expected {typ}")
        if typ is None or typ in ("value", "any"):
            return value
        vt = gv.type_name(value)
        if vt == typ:
            return value
        if isinstance(value, Ptr) and gv.type_name(value.elem) == typ:
            return value.elem
        self.errorf(f"wrong type for value; expected {typ}; got {vt}")

    def eval_arg(self, dot: Any, typ: Optional[str], n: Node) -> Any:
        self.node = n
        if isinstance(n, DotNode):
            return self.validate_type(dot, typ)
        if isinstance(n, NilNode):
            if typ in ("value", "any") or (typ and typ.startswith(("[]", "map[", "*"))):
                return None
            self.errorf(f"cannot assign nil to {typ}")
        if isinstance(n, FieldNode):
            return self.validate_type(self.eval_field_chain(dot, dot, n, n.ident, [n], _MISSING), typ)
        if isinstance(n, VariableNode):
            return self.validate_type(self.eval_variable(dot, n, [], _MISSING), typ)
        if isinstance(n, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), typ)
        if isinstance(n, IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, None, _MISSING), typ)
        if isinstance(n, ChainNode):
            return self.validate_type(self.eval_chain(dot, n, [], _MISSING), typ)
        if typ == "bool":
            if isinstance(n, BoolNode):
                return n.value
            self.errorf(f"expected bool; found {n}")
        if typ in ("int", "time.Duration"):
            if isinstance(n, NumberNode) and n.is_int:
                return n.int64 if typ == "int" else gv.Duration(n.int64)
            self.errorf(f"expected integer; found {n}")
        if typ == "float64":
            if isinstance(n, NumberNode) and n.is_float:
                return n.float64
            self.errorf(f"expected float; found {n}")
        if typ == "string":
            if isinstance(n, StringNode):
                return n.text
            self.errorf(f"expected string; found {n}")
        if typ in ("value", "any", None):
            if isinstance(n, BoolNode):
                return n.value
            if isinstance(n, NumberNode):
                return self.ideal_constant(n)
            if isinstance(n, StringNode):
                return n.text
        self.errorf(f"can't handle {n} for arg of type {typ}")

    def print_value(self, node: Node, v: Any) -> None:
        self.node = node
        v = indirect(v)
        if v is None:
            self.write("<no value>")
            return
        self.write(gv.format_v(v, self.compat))


def _context(s: str) -> str:
    return s


def _methods(v: Any, compat: str) -> Dict[str, Func]:
    methods = getattr(v, "METHODS", None)
    if not methods:
        if isinstance(v, gv.GoTime):
            from .gotime import TIME_METHODS
            return TIME_METHODS
        if isinstance(v, gv.Duration):
            from .gotime import DURATION_METHODS
            return DURATION_METHODS
        return {}
    if compat == "0.25":
        return {k: m for k, m in methods.items() if not getattr(m, "since_026", False)}
    return methods


# ---------------------------------------------------------------------------------------------
# Go's built-in functions


def _html_escape(s: str) -> str:
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("\0", "\ufffd"))


def _js_escape(s: str) -> str:
    out = []
    for c in s:
        o = ord(c)
        if c == "\\":
            out.append("\\\\")
        elif c == "'":
            out.append("\\'")
        elif c == '"':
            out.append('\\"')
        elif c == "<":
            out.append("\\u003C")
        elif c == ">":
            out.append("\\u003E")
        elif c == "&":
            out.append("\\u0026")
        elif c == "=":
            out.append("\\u003D")
        elif o < 0x20:
            out.append(f"\\u00{o:02X}")
        elif o < 0x80:
            out.append(c)
        elif c.isprintable() or c == "\u00a0" and False:
            out.append(c)
        else:
            out.append(f"\\u{o:04X}")
    return "".join(out)


_QUERY_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_QUERY_ASCII = {c: ("+" if c == 32 else None if chr(c) in _QUERY_SAFE else f"%{c:02X}") for c in range(128)}
_QUERY_ASCII = {c: v for c, v in _QUERY_ASCII.items() if v is not None}


def _query_escape(s: str) -> str:
    """Go's url.QueryEscape: all but letters, digits and -_.~ as %XX of their UTF-8, a space as +."""
    if s.isascii():
        return s.translate(_QUERY_ASCII)
    out = []
    for b in s.encode("utf-8", "surrogatepass"):
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "-_.~"):
            out.append(c)
        elif c == " ":
            out.append("+")
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def _eval_args(st: _State, args: List[Any]) -> str:
    if len(args) == 1 and type(args[0]) is str:
        return args[0]
    printable = ["<no value>" if indirect(a) is None else a for a in args]
    return gv.sprint(printable, st.compat)


def _index_arg(st: _State, index: Any, cap: int) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        if index is None:
            raise GoError("cannot index slice/array with nil")
        raise GoError(f"cannot index slice/array with type {gv.type_name(index)}")
    x = int(index)
    if x < 0 or x > cap:
        raise GoError(f"index out of range: {x}")
    return x


def _index(st: _State, item: Any, *indexes: Any) -> Any:
    if item is None:
        raise GoError("index of untyped nil")
    for index in indexes:
        item = indirect(item)
        if isinstance(item, (list, str)):
            n = len(item.encode("utf-8", "surrogatepass")) if isinstance(item, str) else len(item)
            x = _index_arg(st, index, n)
            if x == n:  # within the capacity, past the length: reflect's own panic
                raise GoError(f"reflect: {'string' if isinstance(item, str) else 'slice'} index out of range")
            if isinstance(item, str):
                item = item.encode("utf-8", "surrogatepass")[x]  # a byte (uint8)
                item = _Uint8(item)
            else:
                item = item[x]
        elif isinstance(item, dict):
            if index is None:
                raise GoError("value is nil; should be of type string")
            if not isinstance(index, str) or isinstance(index, gv.HTML):
                raise GoError(f"value has type {gv.type_name(index)}; should be string")
            item = item.get(index, getattr(item, "ELEM_ZERO", None))
        elif item is None:
            raise GoError("index of untyped nil")
        else:
            raise GoError(f"can't index item of type {gv.type_name(item)}")
    return item


_Uint8 = gv.Uint8


def _slice(st: _State, item: Any, *indexes: Any) -> Any:
    if item is None:
        raise GoError("slice of untyped nil")
    if len(indexes) > 3:
        raise GoError(f"too many slice indexes: {len(indexes)}")
    item = item if not isinstance(item, Ptr) else item
    if isinstance(item, str):
        if len(indexes) == 3:
            raise GoError("cannot 3-index slice a string")
        data = item.encode("utf-8", "surrogatepass")
        cap = len(data)
    elif isinstance(item, list):
        cap = len(item)
    else:
        raise GoError(f"can't slice item of type {gv.type_name(item)}")
    idx = [0, cap if not isinstance(item, str) else len(data), 0]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(st, index, cap)
    if idx[0] > idx[1]:
        raise GoError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise GoError(f"invalid slice index: {idx[1]} > {idx[2]}")
    if isinstance(item, str):
        out = data[idx[0]:idx[1]].decode("utf-8", "replace")
        return type(item)(out) if isinstance(item, gv.HTML) else out
    return type(item)(item[idx[0]:idx[1]])


def _len(st: _State, item: Any) -> int:
    item = indirect(item)
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogatepass"))
    if isinstance(item, (list, dict)):
        return len(item)
    if item is None:
        raise GoError("reflect: call of reflect.Value.Type on zero Value")
    raise GoError(f"len of type {gv.type_name(item)}")


def _quoted_end(text: str, pos: int, quote: str) -> Optional[int]:
    """Return the index just after the `quote` that closes a quoted string or character constant
    whose body starts at `pos`, or None when it is unterminated (the end, or a newline, comes first)."""
    n = len(text)
    while pos < n:
        ch = text[pos]
        pos += 1
        if ch == "\\":
            if pos < n and text[pos] != "\n":
                pos += 1
                continue
            return None
        if ch == "\n":
            return None
        if ch == quote:
            return pos
    return None


def _basic_kind(v: Any) -> str:
    if type(v) is str:
        return "string"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, _Uint8):
        return "uint"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, complex):
        return "complex"
    if isinstance(v, str):
        return "string"
    return "invalid"


_BAD_TYPE = "invalid type for comparison"
_BAD_CMP = "incompatible types for comparison"


def _eq(st: _State, arg1: Any, *arg2: Any) -> bool:
    if len(arg2) == 1 and type(arg1) is str and type(arg2[0]) is str:  # the commonest: two strings
        return arg1 == arg2[0]
    if not arg2:
        raise GoError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in arg2:
        k2 = _basic_kind(arg)
        if k1 != k2:
            if {k1, k2} == {"int", "uint"}:
                t = int(arg1) == int(arg)
            elif arg1 is not None and arg is not None:
                raise GoError(_BAD_CMP)
            else:
                t = False
        elif k1 == "string":
            t = str(arg1) == str(arg)
        elif k1 != "invalid":
            t = arg1 == arg
        else:
            if arg1 is not None and arg is not None and gv.kind(arg1) != gv.kind(arg):
                raise GoError(f"non-comparable types {gv.format_v(arg1, st.compat)}: {gv.type_name(arg1)}, "
                              f"{gv.type_name(arg)}: {gv.format_v(arg, st.compat)}")
            if arg1 is None or arg is None:
                t = arg1 is None and arg is None
            elif isinstance(arg, (list, dict)) or (isinstance(arg, gv.GoStruct) and not _comparable_struct(arg)):
                raise GoError(f"non-comparable type {gv.format_v(arg, st.compat)}: {gv.type_name(arg)}")
            else:
                t = gv.type_name(arg1) == gv.type_name(arg) and arg1 == arg
        if t:
            return True
    return False


def _comparable_struct(v: Any) -> bool:
    return all(not isinstance(v.field(f), (list, dict)) for f in v.FIELDS)


def _can_be_nil(v: Any) -> bool:
    return isinstance(v, (list, dict, Ptr))


def _is_nil(v: Any) -> bool:
    return v is None


def _ne(st: _State, a: Any, b: Any) -> bool:
    return not _eq(st, a, b)


def _lt(st: _State, a: Any, b: Any) -> bool:
    k1, k2 = _basic_kind(a), _basic_kind(b)
    if k1 == "invalid" or k2 == "invalid":
        raise GoError(_BAD_TYPE)
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return int(a) < int(b)
        raise GoError(_BAD_CMP)
    if k1 in ("bool", "complex"):
        raise GoError(_BAD_TYPE)
    if k1 == "string":
        return str(a).encode("utf-8", "surrogatepass") < str(b).encode("utf-8", "surrogatepass")
    return a < b


def _le(st: _State, a: Any, b: Any) -> bool:
    return _lt(st, a, b) or _eq(st, a, b)


def _gt(st: _State, a: Any, b: Any) -> bool:
    return not _le(st, a, b)


def _ge(st: _State, a: Any, b: Any) -> bool:
    return not _lt(st, a, b)


def _not(st: _State, a: Any) -> bool:
    return not truth(a)[0]


def _call(st: _State, fn: Any, *args: Any) -> Any:
    if fn is None:
        raise GoError("call of nil")
    if st.compat == "0.25":
        raise GoError(f"non-function of type {gv.type_name(fn)}")
    raise GoError(f"non-function {gv.format_v(fn, st.compat)} of type {gv.type_name(fn)}")


def _printf(st: _State, fmt: str, *args: Any) -> str:
    return gv.sprintf(fmt, list(args), st.compat)


def _state_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn.wants_state = True  # type: ignore[attr-defined]
    return fn


BUILTINS: Dict[str, Func] = {
    "and": Func(lambda *a: None, ("value", "value"), True, "and"),
    "or": Func(lambda *a: None, ("value", "value"), True, "or"),
    "call": Func(_state_fn(_call), ("value", "value"), True, "call"),
    "html": Func(bounded(_state_fn(lambda st, *a: _html_escape(_eval_args(st, list(a))))), ("any",), True, "html"),
    "js": Func(bounded(_state_fn(lambda st, *a: _js_escape(_eval_args(st, list(a))))), ("any",), True, "js"),
    "urlquery": Func(bounded(_state_fn(lambda st, *a: _query_escape(_eval_args(st, list(a))))), ("any",), True),
    "index": Func(_state_fn(_index), ("value", "value"), True, "index"),
    "slice": Func(_state_fn(_slice), ("value", "value"), True, "slice"),
    "len": Func(_state_fn(_len), ("value",), False, "len"),
    "not": Func(_state_fn(_not), ("value",), False, "not"),
    "print": Func(bounded(_state_fn(lambda st, *a: gv.sprint(list(a), st.compat))), ("any",), True),
    "printf": Func(bounded(_state_fn(_printf)), ("string", "any"), True),
    "println": Func(bounded(_state_fn(lambda st, *a: gv.sprintln(list(a), st.compat))), ("any",), True),
    "eq": Func(_state_fn(_eq), ("value", "value"), True),
    "ne": Func(_state_fn(_ne), ("value", "value")),
    "lt": Func(_state_fn(_lt), ("value", "value")),
    "le": Func(_state_fn(_le), ("value", "value")),
    "gt": Func(_state_fn(_gt), ("value", "value")),
    "ge": Func(_state_fn(_ge), ("value", "value")),
}
