"""The package's layers, asserted from its import graph (every import, also lazy ones).

object < codec < build < kernel < pipeline < fleet < ui: a module imports only from its own
layer and the ones below; ``errors``, ``diagnostics`` and ``outfile`` sit below every layer. Only
``kernel/loader.py`` imports pylibbpf; only ``ui/`` imports IPython, ipywidgets,
anywidget, bqplot and traitlets; there are no import circles. Imports under
``if TYPE_CHECKING:`` are types only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import bpfnb

PACKAGE = Path(bpfnb.__file__).parent
LAYERS = ["base", "object", "codec", "build", "kernel", "pipeline", "fleet", "ui"]
UI_ONLY = ("IPython", "ipywidgets", "traitlets", "anywidget", "bqplot")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "package"  # the composition roots: bpfnb/__init__.py and the CLI
    if parts[1] in ("errors", "diagnostics", "outfile"):
        return "base"
    if parts[1] == "pipeline":
        return "pipeline"
    return parts[1]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), outside TYPE_CHECKING blocks."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            for alias in node.names:  # "from bpfnb.kernel import bpf" imports a module
                found.add(f"{target}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path) if m in modules or not m.startswith("bpfnb")}
    return graph


def test_layers_import_only_downwards() -> None:
    graph = _graph()
    wrong = []
    for module, targets in graph.items():
        layer = _layer(module)
        if layer == "package":
            continue
        assert layer in LAYERS, f"{module} is in no layer"
        for target in targets:
            if not target.startswith("bpfnb.") or target == "bpfnb":
                continue
            tlayer = _layer(target)
            if tlayer == "package" or LAYERS.index(tlayer) > LAYERS.index(layer):
                wrong.append(f"{module} ({layer}) imports {target} ({tlayer})")
    assert not wrong, "\n".join(sorted(wrong))


def test_only_the_loader_imports_pylibbpf() -> None:
    users = {m for m, t in _graph().items() if any(x.split(".")[0] == "pylibbpf" for x in t)}
    assert users == {"bpfnb.kernel.loader"}


def test_only_the_ui_imports_ipython_and_widgets() -> None:
    users = {
        m for m, targets in _graph().items() if any(t.split(".")[0] in UI_ONLY for t in targets)
    }
    assert users and all(m.startswith("bpfnb.ui.") for m in users), sorted(users)


def test_no_import_circles() -> None:
    full = _graph()
    graph = {m: {t for t in ts if t in full} for m, ts in full.items()}
    # a package's __init__ re-exporting its modules is not a circle through them
    for module in list(graph):
        graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state and module != "bpfnb":
            visit(module)
    assert not circles, "\n".join(circles)
