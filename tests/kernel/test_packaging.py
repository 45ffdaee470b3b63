"""The wheel: templates and C headers are package data, usable from any directory.

Builds a wheel of this tree (``pip wheel --no-deps``, without build isolation: the
test venv has setuptools), installs it into a fresh virtual environment whose
dependencies come from this venv through a ``.pth`` file (no network), then runs that
environment's Python from a directory outside the repository: it lists the templates,
compiles one and loads it in the kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

PIP = (sys.executable, "-m", "pip")
_SKIP_ANYWHERE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", ".mypy_cache", ".ruff_cache", ".pytest_cache"
)
_SKIP_AT_TOP = {"build", "dist", "out", "test-output"}  # build outputs, not bpfnb/build


def _skip(directory: str, names: list[str]) -> set[str]:
    skipped = set(_SKIP_ANYWHERE(directory, names))
    if Path(directory) == ROOT:
        skipped |= _SKIP_AT_TOP & set(names)
    return skipped


CHECK = r"""
import json, os, sys
import bpfnb
from bpfnb.build import compiler, templates
from bpfnb.object.spec import ObjectSpec

out = {"bpfnb": bpfnb.__file__, "cwd": os.getcwd()}
found = templates.list_templates()
out["templates"] = {t.name: [t.description, str(t.path)] for t in found}
out["headers"] = sorted(
    str(p.relative_to(compiler.INCLUDE_DIR)) for p in compiler.INCLUDE_DIR.rglob("*.h")
)
source = templates.get_template("syscount").source
result = compiler.compile_cell(source, "syscount")
spec = ObjectSpec.from_file(result.object_path)
out["maps"] = sorted(spec.user_maps)
out["programs"] = [p.section for p in spec.programs]
if sys.argv[1] == "load":
    n = 257
    with bpfnb.load(source, name="syscount", globals={"target_pid": os.getpid()}) as prog:
        for _ in range(n):
            os.getppid()
        df = prog.counts.df()
    mine = df[(df["pid"] == os.getpid()) & (df["syscall"] == "getppid")]
    out["getppid"] = int(mine["value"].sum())
    out["closed"] = prog.closed
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the python of a venv with this tree's wheel installed (not editable)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=_skip)
    dist = base / "dist"
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("bpfnb-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = {p.name for p in (ROOT / "bpf_templates").glob("*.bpf.c")}
    headers = {str(p.relative_to(ROOT)) for p in (ROOT / "bpfnb" / "include").rglob("*.h")}
    modules = {
        str(p.relative_to(ROOT))
        for p in (ROOT / "bpfnb").rglob("*.py")
        if "__pycache__" not in str(p)
    }
    assert {f"bpfnb/bpf_templates/{t}" for t in templates} <= names
    assert headers <= names and modules <= names
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies (pandas, pylibbpf...) from this venv: a path line in a .pth file
    # adds the directory but does not run its .pth files (this venv's editable bpfnb).
    (Path(purelib) / "bpfnb-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _run(python: Path, mode: str, tmp_path: Path) -> dict[str, object]:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BPFNB_TEMPLATES")}
    env["BPFNB_CACHE_DIR"] = os.environ.get("BPFNB_TEST_CACHE", "/tmp/bpfnb-test-cache")
    run = subprocess.run(
        [str(python), "-c", CHECK, mode],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out: dict[str, object] = json.loads(run.stdout)
    assert str(out["bpfnb"]).startswith(str(python.parent.parent))  # the wheel, not this tree
    assert not str(out["bpfnb"]).startswith(str(ROOT))
    return out


def test_wheel_lists_and_compiles_templates(installed: Path, tmp_path: Path, kernel: None) -> None:
    out = _run(installed, "compile", tmp_path)
    shipped = {p.name.removesuffix(".bpf.c") for p in (ROOT / "bpf_templates").glob("*.bpf.c")}
    found = out["templates"]
    assert isinstance(found, dict) and set(found) == shipped
    for description, path in found.values():
        assert description and str(installed.parent.parent) in path
    assert out["headers"] == sorted(
        str(p.relative_to(ROOT / "bpfnb" / "include"))
        for p in (ROOT / "bpfnb" / "include").rglob("*.h")
    )
    assert out["maps"] == ["counts"]
    assert out["programs"] == ["tracepoint/raw_syscalls/sys_enter"]


def test_wheel_loads_a_template_in_the_kernel(
    installed: Path, tmp_path: Path, kernel: None
) -> None:
    out = _run(installed, "load", tmp_path)
    assert out["getppid"] == 257 and out["closed"] is True
