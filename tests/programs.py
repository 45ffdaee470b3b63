"""C sources shared by the kernel tests."""

from __future__ import annotations

GETPID_COUNTER = """\
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);                 /* pid */
    __type(value, u64);               /* count */
    __uint(max_entries, 10240);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    return 0;
}
"""

# Line 12 dereferences a lookup result without a NULL check.
MISSING_NULL_CHECK = """\
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 1024);
} counts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 *n = bpf_map_lookup_elem(&counts, &pid);
    *n += 1;
    return 0;
}
"""
MISSING_NULL_CHECK_LINE = 13

# Line 4 has a syntax error.
SYNTAX_ERROR = """\
SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32
    return pid;
}
"""
SYNTAX_ERROR_LINE = 4
