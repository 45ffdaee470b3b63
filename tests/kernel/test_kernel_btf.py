"""The running kernel's BTF (/sys/kernel/btf/vmlinux) parses with bpfnb's BTF reader."""

from __future__ import annotations

from pathlib import Path

from bpfnb.object import btf


def test_kernel_btf_parses(kernel: None) -> None:
    path = Path("/sys/kernel/btf/vmlinux")
    t = btf.Btf.from_bytes(path.read_bytes())
    task = t.by_name("task_struct", btf.Struct)
    assert isinstance(task, btf.Struct) and task.size > 1000
    assert "pid" in [m.name for m in task.members]
    assert t.all_of(btf.Enum64), "a 6.x kernel's BTF has 64-bit enums"
