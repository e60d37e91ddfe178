"""The package's layout: layers that import only downwards, no import cycles, modules a reader can take in.

Every import counts, the ones inside functions too: a cycle that only closes at run time is still a
cycle for the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rcwebhook"

# Lowest first. A module may import its own package or a lower layer; the top-level modules (the
# command line and the service that wires the layers together) may import anything below them.
LAYERS = ["gotemplate", "amtemplate", "config", "operations", "messages", "delivery", "web", ""]
MAX_LINES = 800


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> Dict[str, Path]:
    found = {module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert len(found) > 20, found
    return found


def imports(name: str, path: Path, known: Set[str]) -> Set[str]:
    """Return the modules of the package that the module `name` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from x import y` names the module x.y when there is one, else a name defined in x.
            targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in known else prefix
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


def layer(name: str) -> int:
    parts = name.split(".")
    return LAYERS.index(parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else "")


def graph() -> Dict[str, Set[str]]:
    found = modules()
    known = set(found)
    # A package's __init__ is imported with any of its modules; it stays a plain docstring (see below).
    # The root's __init__ holds only __version__, which every layer may name.
    inits = {n for n, p in found.items() if p.name == "__init__.py"}
    return {name: imports(name, path, known) - inits for name, path in found.items()}


def cycles(edges: Dict[str, Set[str]]) -> List[List[str]]:
    """Return the strongly connected components of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_a_higher_layer():
    upward: List[Tuple[str, str]] = [(a, b) for a, targets in graph().items() for b in sorted(targets)
                                     if layer(b) > layer(a)]
    assert not upward, "imports that run up a layer (" + " < ".join(LAYERS[:-1]) + " < top):\n" + \
        "\n".join(f"  {a} -> {b}" for a, b in upward)


def test_no_modules_import_each_other_even_through_a_third():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in found)


def test_every_package_is_a_layer_and_its_init_only_describes_it():
    for path in PACKAGE.rglob("__init__.py"):
        name = module_name(path)
        if name == "rcwebhook":
            continue  # the root: the version, and logging's library default
        assert name.split(".")[1] in LAYERS, f"{name} is not a layer of {LAYERS}"
        tree = ast.parse(path.read_text())
        assert ast.get_docstring(tree), f"{path} says what the package holds"


def test_no_module_is_longer_than_a_reader_takes_in_at_once():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_checker_sees_imports_in_functions_an_upward_import_and_a_cycle(tmp_path):
    assert layer("rcwebhook.gotemplate.template") < layer("rcwebhook.amtemplate.data") < layer("rcwebhook.cli")
    assert layer("rcwebhook.config") == layer("rcwebhook.config.settings")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    known = {"rcwebhook.config", "rcwebhook.config.settings", "rcwebhook.delivery", "rcwebhook.delivery.ledger",
             "rcwebhook.messages.routing", "rcwebhook.gotemplate.values"}
    source = tmp_path / "routing.py"
    source.write_text("from ..config.settings import Route\n"
                      "def later():\n    from ..delivery import ledger\n"
                      "import rcwebhook.gotemplate.values as gv\n")
    assert imports("rcwebhook.messages.routing", source, known) == {
        "rcwebhook.config.settings", "rcwebhook.delivery.ledger", "rcwebhook.gotemplate.values"}
