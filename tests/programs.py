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

# getpid calls of one process (the const volatile target_pid, set per host on a
# fleet), and a ring buffer of getppid events with the caller's comm.
FILTERED_GETPID_COUNTER = """\
const volatile u32 target_pid = 0;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);                 /* pid */
    __type(value, u64);               /* count */
    __uint(max_entries, 64);
} counts SEC(".maps");

struct call {
    u32 pid;
    char comm[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} calls SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target_pid)
        return 0;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target_pid)
        return 0;
    struct call *c = bpf_ringbuf_reserve(&calls, sizeof(*c), 0);
    if (!c)
        return 0;
    c->pid = pid;
    bpf_get_current_comm(c->comm, sizeof(c->comm));
    bpf_ringbuf_submit(c, 0);
    return 0;
}
"""

# Every getppid call as an event with the caller's pid and comm.
COMM_CALLS = """\
struct call {
    u32 pid;
    char comm[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, u32);                 /* pid */
    __type(value, u64);               /* calls */
    __uint(max_entries, 10240);
} per_pid SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n = bpf_map_lookup_elem(&per_pid, &pid);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&per_pid, &pid, &one, BPF_NOEXIST);
    struct call *c = bpf_ringbuf_reserve(&events, sizeof(*c), 0);
    if (!c)
        return 0;
    c->pid = pid;
    bpf_get_current_comm(c->comm, sizeof(c->comm));
    bpf_ringbuf_submit(c, 0);
    return 0;
}
"""

# A log2 histogram and a per-CPU counter of one process's getpid calls.
FILTERED_HIST_AND_PERCPU = """\
const volatile u32 target_pid = 0;

BPFNB_HIST(sizes);

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __type(key, u32);
    __type(value, u64);
    __uint(max_entries, 1);
} hits SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
        return 0;
    bpfnb_hist_log2(&sizes, 5);
    u32 zero = 0;
    u64 *n = bpf_map_lookup_elem(&hits, &zero);
    if (n)
        *n += 1;
    return 0;
}
"""


def slow_verifier_source(programs: int = 2, branches: int = 15) -> str:
    """A cell whose verification takes long: ~1.3 s here for the defaults.

    Each program takes ``branches`` random branches, each adding a distinct power of two
    to ``idx`` (an ``asm`` add, so clang cannot turn the branch into arithmetic); ``idx``
    then sizes a ``bpf_probe_read_kernel``, which makes the verifier track it precisely,
    so no two paths can be pruned: every program is verified along 2**branches paths
    (``verified_insns`` 425,999 for 15 branches). The programs count getppid calls of
    the process ``target_tgid`` in ``slow_seen[0]``, each program once per call.
    """
    steps = "\n".join(
        f'    if (bpf_get_prandom_u32() & 1)\n        asm volatile("%0 += {1 << i}" : "+r"(idx));'
        for i in range(branches)
    )
    parts = [
        "const volatile u32 target_tgid = 0;\n\n"
        "struct {\n"
        "    __uint(type, BPF_MAP_TYPE_ARRAY);\n"
        "    __uint(max_entries, 1);\n"
        "    __type(key, u32);\n"
        "    __type(value, u64);\n"
        '} slow_seen SEC(".maps");\n'
    ]
    for j in range(programs):
        parts.append(
            '\nSEC("tracepoint/syscalls/sys_enter_getppid")\n'
            f"int slow_verify_{j}(void *ctx)\n"
            "{\n"
            "    u32 key = 0, idx = 0;\n"
            "    u8 buf[64] = {};\n"
            "    u64 *seen = bpf_map_lookup_elem(&slow_seen, &key);\n"
            "    if (!seen || (bpf_get_current_pid_tgid() >> 32) != target_tgid)\n"
            "        return 0;\n"
            f"{steps}\n"
            "    bpf_probe_read_kernel(buf, (idx & 63) + 1, seen);\n"
            "    __sync_fetch_and_add(seen, 1);\n"
            "    return 0;\n"
            "}\n"
        )
    return "".join(parts)
