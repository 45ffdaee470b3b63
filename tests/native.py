"""A native test process with known stacks: ``tests/data/stack_target.c``.

Python frames are invisible to ``bpf_get_stackid``, so the stack and profiling tests
drive a small C program, compiled here with clang (frame pointers on, no inlining, no
sibling calls) into a temporary folder:

- ``StackTarget("recurse", depth, n)``: ``main -> bpfnb_outer_frame -> bpfnb_recurse``
  (``depth + 1`` frames) ``-> bpfnb_leaf_syscall``, which makes exactly ``n`` getpid
  syscalls itself;
- ``StackTarget("spin", seconds)``: spins in ``bpfnb_unique_spin_9f3c``.

The process prints its pid, waits for :meth:`StackTarget.run`, and stays alive until
:meth:`StackTarget.close`, so its mappings can be read to symbolize its stacks.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import DATA

SOURCE = DATA / "stack_target.c"
SPIN_FUNCTION = "bpfnb_unique_spin_9f3c"
_BUILT: dict[str, Path] = {}


def build_stack_target() -> Path:
    """Compile the target (once per source version, shared by test runs); return it.

    The executable lives in the temp folder under a name that carries the source's
    hash, so runs reuse it and an edited source is compiled again.
    """
    found = _BUILT.get("exe")
    if found is not None and found.exists():
        return found
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / f"bpfnb-stack-target-{os.getuid()}-{digest}"
    out = folder / "stack_target"  # the name is the process's comm
    if not out.exists():
        clang = shutil.which("clang") or "clang"
        partial = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=folder.parent))
        subprocess.run(
            [
                clang,
                "-O0",
                "-g",
                "-fno-omit-frame-pointer",
                "-fno-optimize-sibling-calls",
                "-o",
                str(partial / "stack_target"),
                str(SOURCE),
            ],
            check=True,
            capture_output=True,
        )
        try:
            partial.rename(folder)  # atomic: concurrent runs never see half a file
        except OSError:  # another run made it first
            shutil.rmtree(partial, ignore_errors=True)
    _BUILT["exe"] = out
    return out


class StackTarget:
    """One run of the native target (see the module docstring)."""

    def __init__(self, *args: object) -> None:
        self.proc = subprocess.Popen(
            [str(build_stack_target()), *(str(a) for a in args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.pid = int(self.proc.stdout.readline())

    def run(self) -> None:
        """Do the work and wait until it is done (the process stays alive)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "done"

    def close(self) -> None:
        """Let the process exit."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def __enter__(self) -> StackTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
