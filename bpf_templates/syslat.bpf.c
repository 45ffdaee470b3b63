// Syscall latency as a log2 histogram in nanoseconds (raw_syscalls enter/exit), plus per-syscall counts.
// Filters (--set): target_pid=PID (0: every process), target_syscall=NR (-1: every syscall).
const volatile u32 target_pid = 0;
const volatile s32 target_syscall = -1;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, u32);          /* thread id */
	__type(value, bpfnb_ktime_t);  /* entry time (bpf_ktime_get_ns) */
	__uint(max_entries, 16384);
} start SEC(".maps");
BPFNB_HIDDEN(start);           /* scratch: collapsed in the dashboard */

BPFNB_PERCPU_HIST(latency);
BPFNB_UNIT(latency, bpfnb_ns_t);   /* buckets read in ns / µs / ms */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, bpfnb_syscall_t);
	__type(value, u64);
	__uint(max_entries, 1024);
} calls SEC(".maps");

static __always_inline bool syslat_wanted(long id)
{
	if (id < 0)
		return false;
	if (target_syscall >= 0 && id != target_syscall)
		return false;
	return !target_pid || (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int syslat_enter(struct trace_event_raw_sys_enter *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u64 now;

	if (!syslat_wanted(ctx->id))
		return 0;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int syslat_exit(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	bpfnb_syscall_t nr = (u32)ctx->id;
	u64 one = 1, *t0, *n;

	if (!syslat_wanted(ctx->id))
		return 0;
	t0 = bpf_map_lookup_elem(&start, &tid);
	if (!t0)
		return 0;
	bpfnb_hist_log2(&latency, bpf_ktime_get_ns() - *t0);
	bpf_map_delete_elem(&start, &tid);
	n = bpf_map_lookup_elem(&calls, &nr);
	if (n)
		__sync_fetch_and_add(n, 1);
	else if (bpf_map_update_elem(&calls, &nr, &one, BPF_NOEXIST))
		if ((n = bpf_map_lookup_elem(&calls, &nr)))
			__sync_fetch_and_add(n, 1);
	return 0;
}
