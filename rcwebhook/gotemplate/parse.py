"""Go's text/template parser: a template's text as trees of nodes, with Go's parse errors."""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import values as gv
from .errors import ParseError
from .lexer import (Item, T_ASSIGN, T_BLOCK, T_BOOL, T_BREAK, T_CHAR, T_CHARCONST, T_COMPLEX, T_CONTINUE,
                    T_DECLARE, T_DEFINE, T_DOT, T_ELSE, T_END, T_EOF, T_ERROR, T_FIELD, T_IDENT, T_IF,
                    T_LDELIM, T_LPAREN, T_NIL, T_NUMBER, T_PIPE, T_RANGE, T_RAWSTRING, T_RDELIM, T_RPAREN,
                    T_SPACE, T_STRING, T_TEMPLATE, T_TEXT, T_VARIABLE, T_WITH, lex)
from .nodes import (ActionNode, BoolNode, BreakNode, ChainNode, CommandNode, ContinueNode, DotNode, FieldNode,
                    IdentifierNode, IfNode, ListNode, NilNode, Node, NumberNode, PipeNode, RangeNode,
                    StringNode, TemplateNode, TextNode, VariableNode, WithNode, _ElseNode, _EndNode, _byte_col)

MAX_NESTING = 200  # nested control structures and parentheses at parse time


def unquote(s: str) -> str:
    """strconv.Unquote of a Go string, raw string or character literal; ValueError when invalid."""
    if len(s) < 2:
        raise ValueError("invalid syntax")
    q = s[0]
    if q != s[-1] or q not in "`\"'":
        raise ValueError("invalid syntax")
    body = s[1:-1]
    if q == "`":
        if "`" in body:
            raise ValueError("invalid syntax")
        return body.replace("\r", "")
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
                out.append(chr(v) if q == "'" else _byte_char(v))
            elif v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
                raise ValueError("invalid syntax")
            else:
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
    if q == "'" and len(result) != 1:
        raise ValueError("invalid syntax")
    return _join_bytes(result)


_BYTE_BASE = 0xF0000  # private-use stand-ins for raw bytes of \x escapes, joined after unquoting


def _byte_char(v: int) -> str:
    return chr(v) if v < 0x80 else chr(_BYTE_BASE + v)


_RAW_BYTES = re.compile(f"[{chr(_BYTE_BASE + 0x80)}-{chr(_BYTE_BASE + 0xFF)}]+")
_CONTROLS = {"if": IfNode, "range": RangeNode, "with": WithNode}  # the node of each control action


def _join_bytes(s: str) -> str:
    """Decode runs of raw-byte stand-ins as UTF-8 (invalid bytes become U+FFFD, as Go prints them)."""
    def decoded(run: Any) -> str:
        return bytes(ord(c) - _BYTE_BASE for c in run.group()).decode("utf-8", "replace")
    return _RAW_BYTES.sub(decoded, s)


class Tree:
    """One parsed template: its name, the text it came from, its root list."""

    def __init__(self, name: str, parse_name: str, text: str) -> None:
        self.name, self.parse_name, self.text = name, parse_name, text
        self.root: Optional[ListNode] = None
        self.compiled: Optional[Callable[[Any, Any], None]] = None  # what runs it (codegen), made on first use


class _Parser:
    def __init__(self, name: str, text: str, funcs: Dict[str, Any], tree_set: Dict[str, Tree],
                 go_version: Tuple[int, int] = (1, 24)) -> None:
        self.name = name
        self.text = text
        self.funcs = funcs
        self.items = lex(text, "break" not in funcs, go_version >= (1, 20))
        self.else_with = go_version >= (1, 23)  # {{else with}}
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
        item = self.last = self.peek()
        self.i += 1
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
                    self._sub(None, "define clause")
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

    def _sub(self, name: Optional[str], context: str) -> None:
        """A {{define}}'s (name None: read here) or {{block}}'s body up to its end, as a tree."""
        outer, outer_vars, outer_range = self.tree, self.vars, self.range_depth
        self.tree = Tree("definition" if name is None else name, outer.parse_name, self.text)
        self.vars = ["$"]
        self.range_depth = 0
        try:
            if name is None:
                self.tree.name = self.template_name(self.next_non_space(), context)
                self.expect(T_RDELIM, context)
            self.tree.root, end = self.item_list()
            if not isinstance(end, _EndNode):
                self.errorf(f"unexpected {end} in {context}")
            self.add(self.tree)
        finally:
            self.tree, self.vars, self.range_depth = outer, outer_vars, outer_range

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
            if typ == T_BREAK or typ == T_CONTINUE:
                return self.branch_control(token, BreakNode if typ == T_BREAK else ContinueNode)
            if typ == T_ELSE:
                return self.else_control()
            if typ == T_END:
                return self.new(_EndNode(self.expect(T_RDELIM, "end").pos))
            if typ in (T_IF, T_RANGE, T_WITH):
                return self.control(token.val)
            if typ == T_TEMPLATE:
                return self.template_control()
        finally:
            if typ in (T_IF, T_RANGE, T_WITH, T_BLOCK):
                self.nesting -= 1
        self.backup()
        return self.new(ActionNode(self.peek().pos, self.pipeline("command", T_RDELIM)))

    def branch_control(self, token: Item, cls: type) -> Node:
        name = f"{{{{{token.val}}}}}"
        t = self.next_non_space()
        if t.typ != T_RDELIM:
            self.unexpected(t, name)
        if self.range_depth == 0:
            self.errorf(f"{name} outside {{{{range}}}}")
        return self.new(cls(token.pos))

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.typ == T_IF or (peek.typ == T_WITH and self.else_with):
            return self.new(_ElseNode(peek.pos))
        return self.new(_ElseNode(self.expect(T_RDELIM, "else").pos))

    def control(self, context: str) -> Node:
        """An if, range or with up to its end; {{else if}}, {{else with}} chained in its else."""
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
                # `else if` chains in an if, `else with` in a with where the language version has it
                chain = T_IF if context == "if" else T_WITH if context == "with" and self.else_with else None
                if self.peek().typ == chain:
                    self.next()
                    else_list = self.new(ListNode(nxt.pos))
                    self.nesting += 1
                    try:
                        else_list.nodes.append(self.control(context))
                    finally:
                        self.nesting -= 1
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, _EndNode):
                        self.errorf(f"expected end; found {nxt}")
            return self.new(_CONTROLS[context](pipe.pos, pipe, lst, else_list))
        finally:
            del self.vars[nvars:]

    def block_control(self) -> Node:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, T_RDELIM)
        self._sub(name, context)
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
            nxt = self.peek_non_space()
            if nxt.typ not in (T_ASSIGN, T_DECLARE) and not (nxt.typ == T_CHAR and nxt.val == ","):
                self.i = start
                break
            self.next_non_space()
            pipe.decl.append(self.new(VariableNode(v.pos, v.val)))
            self.vars.append(v.val)
            if nxt.typ != T_CHAR:
                pipe.is_assign = nxt.typ == T_ASSIGN
                break
            if context == "range" and len(pipe.decl) < 2:
                if self.peek_non_space().typ in (T_VARIABLE, T_RDELIM, T_RPAREN):
                    continue
                self.errorf("range can only initialize variables")
            self.errorf(f"too many declarations in {context}")
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
                if _first_char_end(text) is None:
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
                n.is_float = n.is_int = n.is_uint = f == 0  # 0i is also the number 0 (its values are 0)
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


_INT_RE = re.compile(r"[+-]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)\Z")


def _underscores_ok(s: str) -> bool:
    """Go's strconv.underscoreOK: each underscore between digits, a base prefix counting as one."""
    body = s.lstrip("+-")
    hexdigits = "0123456789abcdefABCDEF" if body[:2].lower() == "0x" else "0123456789"
    saw = "0" if body[:2].lower() in ("0x", "0o", "0b") else "^"  # ^ start, 0 digit, _, ! other
    for c in body[2:] if saw == "0" else body:
        if c == "_" and saw != "0" or saw == "_" and c not in hexdigits + "_":
            return False  # an underscore not after a digit, or not followed by one
        saw = "0" if c in hexdigits else "_" if c == "_" else "!"
    return saw != "_"


def _parse_int(text: str, unsigned: bool) -> Optional[int]:
    if not _INT_RE.match(text) or not _underscores_ok(text):
        return None
    if unsigned and text[0] in "+-":
        return None
    body = text.replace("_", "")
    sign = -1 if body.startswith("-") else 1
    body = body.lstrip("+-")
    if body[:1] == "0" and body[1:2].isdigit():  # Go's 017 is octal; Python's int(.., 0) refuses it
        body = "0o" + body[1:]
    v = sign * int(body, 0)
    if unsigned:
        return v if 0 <= v < (1 << 64) else None
    return v if -(1 << 63) <= v < (1 << 63) else None


_FLOAT_RE = re.compile(  # each part optional once, so that a long non-number is refused in linear time
    r"[+-]?([0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9_]+)?|0[xX][0-9a-fA-F_]*(\.[0-9a-fA-F_]*)?[pP][+-]?[0-9_]+)\Z")


def parse_float(text: str) -> float:
    """Go's strconv.ParseFloat(text, 64), its error's reason the ValueError's message."""
    body = text[1:] if text.startswith(("+", "-")) else text
    if body.lower() in ("inf", "infinity") or text.lower() == "nan":  # a sign before inf, none before nan
        return float(text)
    if not _FLOAT_RE.match(text) or not any(c.isdigit() for c in text) or not _underscores_ok(text):
        raise ValueError("invalid syntax")
    digits = text.replace("_", "")
    try:
        value = float.fromhex(digits) if body[:2].lower() == "0x" else float(digits)
    except OverflowError:
        raise ValueError("value out of range") from None
    except ValueError:
        raise ValueError("invalid syntax") from None
    if value in (float("inf"), float("-inf")):
        raise ValueError("value out of range")
    return value


def _parse_float(text: str) -> Optional[float]:
    try:
        return parse_float(text)
    except ValueError:
        return None


def is_empty_tree(n: Optional[Node]) -> bool:
    if n is None:
        return True
    if isinstance(n, ListNode):
        return all(is_empty_tree(x) for x in n.nodes)
    if isinstance(n, TextNode):
        return n.text.strip(" \t\n\r\v\f\x85\xa0") == "" if n.text.isascii() else n.text.strip() == ""
    return False
