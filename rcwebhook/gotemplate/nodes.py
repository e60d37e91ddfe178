"""The nodes of a parsed template (Go's text/template/parse nodes), as the parser makes them."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from . import values as gv

class Node:
    """A node at `pos`, with its own slots given in their order after it."""

    __slots__ = ("pos", "tree")
    TEXT = ""  # how a node without content prints

    def __init__(self, pos: int, *fields: Any) -> None:
        self.pos = pos
        self.tree: Optional[Tree] = None
        for name, value in zip(self.__slots__, fields):
            setattr(self, name, value)

    def __str__(self) -> str:
        return self.TEXT


class ListNode(Node):
    __slots__ = ("nodes",)

    def __init__(self, pos: int) -> None:
        super().__init__(pos, [])

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


class TextNode(Node):
    __slots__ = ("text",)

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

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class CommandNode(Node):
    __slots__ = ("args",)

    def __init__(self, pos: int) -> None:
        super().__init__(pos, [])

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


class IdentifierNode(Node):
    __slots__ = ("ident",)

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
    TEXT = "."


class NilNode(Node):
    TEXT = "nil"


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
        super().__init__(pos, node)
        self.field: List[str] = []

    def add(self, field: str) -> None:
        self.field.extend(p for p in field.split(".") if p)  # a field item starts with its dot

    def __str__(self) -> str:
        s = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return s + "".join("." + f for f in self.field)


class BoolNode(Node):
    __slots__ = ("value",)

    def __str__(self) -> str:
        return "true" if self.value else "false"


class NumberNode(Node):
    __slots__ = ("text", "is_int", "is_uint", "is_float", "is_complex", "int64", "uint64", "float64",
                 "complex128")

    def __init__(self, pos: int, text: str) -> None:
        super().__init__(pos, text)
        self.is_int = self.is_uint = self.is_float = self.is_complex = False
        self.int64 = self.uint64 = 0
        self.float64 = 0.0
        self.complex128 = 0j

    def __str__(self) -> str:
        return self.text


class StringNode(Node):
    __slots__ = ("quoted", "text")

    def __str__(self) -> str:
        return self.quoted


class _EndNode(Node):
    TEXT = "{{end}}"


class _ElseNode(Node):
    TEXT = "{{else}}"


class BranchNode(Node):
    __slots__ = ("pipe", "list", "else_list")
    NAME = ""

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
    TEXT = "{{break}}"


class ContinueNode(Node):
    TEXT = "{{continue}}"


class TemplateNode(Node):
    __slots__ = ("name", "pipe")

    def __str__(self) -> str:
        s = "{{template " + gv.go_quote(self.name)
        if self.pipe is not None:
            s += " " + str(self.pipe)
        return s + "}}"


def _byte_col(text: str, pos: int) -> Tuple[int, int]:
    """Go's line and byte column (0-based on line 1, as ErrorContext counts) of character `pos`."""
    before = text[:pos]
    line = 1 + before.count("\n")
    return line, len(before[before.rfind("\n") + 1:].encode("utf-8", "surrogatepass"))
