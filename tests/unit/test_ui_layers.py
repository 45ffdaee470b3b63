"""The UI layer's shape, read from its source: who imports what, and no probing.

- only ``widgets`` imports ipywidgets (``livehtml`` builds on anywidget, ``plots`` on
  bqplot); IPython only ``magics``, ``widgets`` and ``dashboard``;
- the live-view modules read the kernel layer through ``sources`` only: they import
  nothing from ``bpfnb.kernel`` and never call ``getattr``/``hasattr``;
- the UI modules import each other in one direction (no circles).
"""

from __future__ import annotations

import ast

import pytest

from conftest import ROOT

UI = ROOT / "bpfnb" / "ui"
# magics.py is the %%bpf front end, rewritten over the pipeline: not a live-view module.
LIVE_VIEW_MODULES = [
    "sources",
    "refresh",
    "format",
    "svg",
    "eventfilter",
    "views",
    "top",
    "html",
    "flamegraph",
    "summary",
    "livehtml",
    "plots",
    "widgets",
    "dashboard",
]
# the pure helpers: no IPython, no widgets, no plotting library
PURE_MODULES = [
    "sources",
    "refresh",
    "format",
    "svg",
    "eventfilter",
    "views",
    "top",
    "html",
    "flamegraph",
    "summary",
]
# The front ends over them: %%bpf / %bpf, the fleet's dashboard and actions, %%bpfsql.
FRONT_END_MODULES = ["magics", "fleet", "sql"]


def _tree(module: str) -> ast.Module:
    return ast.parse((UI / f"{module}.py").read_text(), filename=f"{module}.py")


def _imports(module: str) -> set[str]:
    """Every module imported anywhere in ``bpfnb/ui/MODULE.py`` (functions included)."""
    found: set[str] = set()
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _ui_deps(module: str) -> set[str]:
    deps = set()
    for name in _imports(module):
        parts = name.split(".")
        if parts[:2] == ["bpfnb", "ui"] and len(parts) > 2 and parts[2] in LIVE_VIEW_MODULES:
            deps.add(parts[2])
    return deps - {module}


def test_every_ui_module_is_known() -> None:
    on_disk = {p.stem for p in UI.glob("*.py")} - {"__init__"}
    assert on_disk == {*LIVE_VIEW_MODULES, *FRONT_END_MODULES}


@pytest.mark.parametrize("module", ["fleet", "sql"])
def test_fleet_and_sql_front_ends_use_the_views(module: str) -> None:
    imported = _imports(module)
    assert not [n for n in imported if n.split(".")[0] in ("ipywidgets", "pylibbpf")]
    assert not [n for n in imported if n.startswith("bpfnb.kernel")]


@pytest.mark.parametrize("module", LIVE_VIEW_MODULES)
def test_frontend_imports(module: str) -> None:
    imported = _imports(module)
    roots = {n.split(".")[0] for n in imported}
    assert ("ipywidgets" in roots) == (module == "widgets")
    assert "IPython" not in roots or module in ("widgets", "dashboard")
    assert ("anywidget" in roots) == (module == "livehtml")
    assert ("bqplot" in roots) == (module == "plots")
    if module in PURE_MODULES:
        assert not roots & {"ipywidgets", "IPython", "anywidget", "bqplot", "traitlets"}


@pytest.mark.parametrize("module", LIVE_VIEW_MODULES)
def test_kernel_only_through_sources(module: str) -> None:
    imported = _imports(module)
    assert not [n for n in imported if n.startswith(("bpfnb.kernel", "pylibbpf"))]
    probes = [
        node.lineno
        for node in ast.walk(_tree(module))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr", "setattr")
    ]
    assert probes == [], f"{module}.py probes objects on lines {probes}"


def test_ui_imports_go_one_way() -> None:
    deps = {m: _ui_deps(m) for m in LIVE_VIEW_MODULES}
    # each module may import only modules listed before it
    order = {m: i for i, m in enumerate(LIVE_VIEW_MODULES)}
    backwards = {m: sorted(d for d in ds if order[d] > order[m]) for m, ds in deps.items()}
    assert all(not b for b in backwards.values()), backwards
    assert deps["views"] == {"sources", "refresh", "format", "eventfilter"}
    assert "views" not in deps["refresh"] and "widgets" not in deps["views"]
