"""Odd map declarations: each refused with a short message that names the real cause
and quotes the cell line declaring the map; nothing is left loaded.
"""

from __future__ import annotations

from typing import Any

import pytest

from bpfnb.errors import LoadError

from conftest import own_bpf_fds

pytestmark = pytest.mark.kernel

USE = """
SEC("tracepoint/syscalls/sys_enter_getpid")
int odd(void *ctx) { u32 k = 0; bpf_map_lookup_elem(&m, &k); return 0; }
"""

CASES = {
    "legacy_hash_without_key": (
        'struct bpf_map_def SEC("maps") m = {\n'
        "    .type = BPF_MAP_TYPE_HASH, .key_size = 0, .value_size = 8, .max_entries = 4,\n"
        "};",
        "has no key (key size 0)",
    ),
    "legacy_array_odd_key": (
        'struct bpf_map_def SEC("maps") m = {\n'
        "    .type = BPF_MAP_TYPE_ARRAY, .key_size = 3, .value_size = 5, .max_entries = 4,\n"
        "};",
        "has a key of 3 bytes: an array's key is a 4-byte index (u32)",
    ),
    "legacy_hash_without_value": (
        'struct bpf_map_def SEC("maps") m = {\n'
        "    .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 0, .max_entries = 4,\n"
        "};",
        "has no value (value size 0)",
    ),
    "btf_hash_without_key_type": (
        "struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4);\n"
        '         __type(value, u64); } m SEC(".maps");',
        "has no key (key size 0): add __type(key, ...)",
    ),
    "unknown_type_number": (
        "struct { __uint(type, 999); __uint(max_entries, 4);\n"
        '         __type(key, u32); __type(value, u64); } m SEC(".maps");',
        "has map type 999, which is not a map type bpfnb or this kernel knows",
    ),
    "array_of_maps_without_inner": (
        "struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 4);\n"
        '         __type(key, u32); __type(value, u32); } m SEC(".maps");',
        "needs its inner map: declare the values with __array(values, struct {...})",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_odd_map_declarations_are_refused_at_their_line(
    clean_kernel: tuple[int, int, int], shell: Any, case: str
) -> None:
    declaration, cause = CASES[case]
    before = own_bpf_fds()
    result = shell.run_cell(f"%%bpf odd_{case}\n{declaration}\n{USE}")
    error = result.error_in_exec
    assert isinstance(error, LoadError), error
    message = str(error)
    assert cause in message, message
    assert "a hash needs a key" not in message or "hash" in case, message  # no stray hints
    # the line declaring m, with its gutter number (the magic line is 1)
    line = next(i for i, text in enumerate(declaration.splitlines(), 2) if " m " in text + " ")
    quoted = declaration.splitlines()[line - 2]
    assert f"{line:>4} | {quoted}" in message, message
    assert len(message.splitlines()) <= 6, message
    assert own_bpf_fds() == before and f"odd_{case}" not in shell.user_ns
