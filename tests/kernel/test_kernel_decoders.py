"""Decoders that read the running kernel (kernel symbols from /proc/kallsyms)."""

from __future__ import annotations

from bpfnb.codec import decoders


def test_ksym_decoder(kernel: None) -> None:
    ks = decoders.Kallsyms()
    path = decoders.KALLSYMS
    lines = [ln.split() for ln in path.read_text().splitlines()[:5000]] if path.exists() else []
    text_syms = [(int(p[0], 16), p[2]) for p in lines if len(p) >= 3 and p[1] in "tT"]
    assert text_syms and text_syms[0][0] != 0, "kernel addresses are hidden (kptr_restrict)"
    addr, name = text_syms[len(text_syms) // 2]
    assert ks.address(name) == addr or ks.name(addr) == name
    got = ks.name(addr)
    assert isinstance(got, str) and got.split("+")[0]
    assert str(ks.name(addr + 1)).endswith("+0x1")
    assert ks.name(0) == 0
