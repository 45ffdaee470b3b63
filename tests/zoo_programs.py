"""C sources of the map zoo tests (kernel and UI): one cell per group of map types.

Every program reads the pid it watches from ``const volatile u32 target`` (set with
``globals={"target": pid}``) and counts that process's getpid calls.
"""

from __future__ import annotations

QUEUES = r"""
struct {
    __uint(type, BPF_MAP_TYPE_QUEUE);
    __type(value, u32);
    __uint(max_entries, 256);
} fifo SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_STACK);
    __type(value, u32);
    __uint(max_entries, 256);
} lifo SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
    __type(value, u32);
    __uint(max_entries, 4096);
    __uint(map_extra, 5);
} seen SEC(".maps");

const volatile u32 target = 0;
u32 calls = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    u32 n = __sync_add_and_fetch(&calls, 1);
    u32 marked = 1000 + n;
    bpf_map_push_elem(&fifo, &n, 0);
    bpf_map_push_elem(&lifo, &n, 0);
    bpf_map_push_elem(&seen, &marked, 0);
    return 0;
}
"""

LPM = r"""
struct v4_key { u32 prefixlen; u8 addr[4]; };
struct v6_key { u32 prefixlen; u8 addr[16]; };
struct raw_key { u32 prefixlen; u8 data[2]; };

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct v4_key);
    __type(value, u32);
    __uint(max_entries, 64);
} routes SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct v6_key);
    __type(value, u32);
    __uint(max_entries, 64);
} routes6 SEC(".maps");
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct raw_key);
    __type(value, u32);
    __uint(max_entries, 8);
} tags SEC(".maps");
BPF_ARRAY(found, u32, 2);

const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    struct v4_key add = { .prefixlen = 12, .addr = {172, 16, 0, 0} };
    u32 nine = 9, zero = 0, one = 1, none = 0;
    bpf_map_update_elem(&routes, &add, &nine, BPF_ANY);

    struct v4_key probe = { .prefixlen = 32, .addr = {10, 1, 2, 3} };
    u32 *v = bpf_map_lookup_elem(&routes, &probe);
    bpf_map_update_elem(&found, &zero, v ? v : &none, BPF_ANY);
    struct v4_key miss = { .prefixlen = 32, .addr = {192, 168, 7, 7} };
    v = bpf_map_lookup_elem(&routes, &miss);
    bpf_map_update_elem(&found, &one, v ? v : &none, BPF_ANY);
    return 0;
}
"""

MAP_IN_MAP = r"""
struct inner {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, u32);
    __type(value, u64);
};
struct inner inner_a SEC(".maps");
struct inner inner_b SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 4);
    __type(key, u32);
    __array(values, struct inner);
} outer SEC(".maps") = {
    .values = { [0] = (void *)&inner_a, [1] = (void *)&inner_b },
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
    __uint(max_entries, 8);
    __type(key, u32);
    __array(values, struct inner);
} by_pid SEC(".maps");

const volatile u32 target = 0;

static void add(void *inner, u32 index, u64 n)
{
    u64 *v = bpf_map_lookup_elem(inner, &index);
    if (v)
        __sync_fetch_and_add(v, n);
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != target)
        return 0;
    u32 slot = 0;
    void *m = bpf_map_lookup_elem(&outer, &slot);
    if (m)
        add(m, 0, 1);
    slot = 1;
    m = bpf_map_lookup_elem(&outer, &slot);
    if (m)
        add(m, 1, 2);
    slot = 2;
    m = bpf_map_lookup_elem(&outer, &slot);
    if (m)
        add(m, 3, 5);
    m = bpf_map_lookup_elem(&by_pid, &pid);
    if (m)
        add(m, 0, 1);
    return 0;
}
"""

TAIL_CALLS = r"""
u64 hops = 0;
const volatile u32 target = 0;

int step0(void *ctx);
int step1(void *ctx);
int step2(void *ctx);

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 4);
    __uint(key_size, sizeof(u32));
    __array(values, int (void *));
} jumps SEC(".maps") = {
    .values = { [0] = (void *)&step0, [1] = (void *)&step1, [2] = (void *)&step2 },
};

SEC("tracepoint")
int step2(void *ctx)
{
    __sync_fetch_and_add(&hops, 1);
    return 0;
}

SEC("tracepoint")
int step1(void *ctx)
{
    __sync_fetch_and_add(&hops, 1);
    bpf_tail_call(ctx, &jumps, 2);
    return 0;
}

SEC("tracepoint")
int step0(void *ctx)
{
    __sync_fetch_and_add(&hops, 1);
    bpf_tail_call(ctx, &jumps, 1);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int entry(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    bpf_tail_call(ctx, &jumps, 0);
    return 0;
}
"""

STORAGE = r"""
struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, u64);
} per_task SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, u64);
} per_cgroup SEC(".maps");

struct sk_stat { u32 changes; u32 state; };
struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct sk_stat);
} per_socket SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_INODE_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, u64);
} per_inode SEC(".maps");

const volatile u32 target = 0;

SEC("tp_btf/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
    if (id != 39 || (bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    struct task_struct *task = bpf_get_current_task_btf();
    u64 *v = bpf_task_storage_get(&per_task, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (v)
        *v += 1;
    v = bpf_cgrp_storage_get(&per_cgroup, task->cgroups->dfl_cgrp, 0,
                             BPF_LOCAL_STORAGE_GET_F_CREATE);
    if (v)
        *v += 1;
    return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, const struct sock *sk, const int oldstate, const int newstate)
{
    if (sk->__sk_common.skc_family != 2)
        return 0;
    struct sk_stat *s = bpf_sk_storage_get(&per_socket, (void *)sk, 0,
                                           BPF_SK_STORAGE_GET_F_CREATE);
    if (s) {
        s->changes += 1;
        s->state = newstate;
    }
    return 0;
}
"""

USER_RING = r"""
struct order { u32 pid; u32 weight; u64 amount; };
BPFNB_EVENT_TYPE(requests, struct order);

struct {
    __uint(type, BPF_MAP_TYPE_USER_RINGBUF);
    __uint(max_entries, 4096);
} requests SEC(".maps");

const volatile u32 target = 0;
u64 total = 0;
u64 drained = 0;

static long on_request(struct bpf_dynptr *dynptr, void *ctx)
{
    struct order r;

    if (bpf_dynptr_read(&r, sizeof(r), dynptr, 0, 0))
        return 1;
    total += (u64)r.weight * r.amount;
    drained += 1;
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    if ((bpf_get_current_pid_tgid() >> 32) != target)
        return 0;
    bpf_user_ringbuf_drain(&requests, on_request, NULL, 0);
    return 0;
}
"""

STACK_COUNTER = r"""
BPF_STACK_TRACE(stacks, 1024);

struct stack_key {
    u32 pid;
    bpfnb_stackid_t ustack;
    bpfnb_stackid_t kstack;
    char comm[16];
};
BPF_HASH(counts, struct stack_key, u64, 1024);

const volatile u32 target = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
    struct stack_key k = {};

    k.pid = bpf_get_current_pid_tgid() >> 32;
    if (k.pid != target)
        return 0;
    k.ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
    k.kstack = bpf_get_stackid(ctx, &stacks, 0);
    bpf_get_current_comm(&k.comm, sizeof(k.comm));
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &k);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, &k, &one, BPF_NOEXIST);
    return 0;
}
"""
