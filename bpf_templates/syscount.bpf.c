// Count syscalls per process and per syscall name (hash map keyed by pid, comm and syscall).
// Set `target_pid` (--set target_pid=PID) to count one process only; 0 counts every process.
const volatile u32 target_pid = 0;

struct syscount_key {
	u32 pid;
	bpfnb_syscall_t syscall;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct syscount_key);
	__type(value, u64);
	__uint(max_entries, 10240);
} counts SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int syscount_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct syscount_key key = {};
	u64 one = 1, *n;

	key.pid = bpf_get_current_pid_tgid() >> 32;
	if (target_pid && key.pid != target_pid)
		return 0;
	if (ctx->id < 0)
		return 0;
	key.syscall = (u32)ctx->id;
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST))
		/* another CPU inserted the key first: count on its entry */
		if ((n = bpf_map_lookup_elem(&counts, &key)))
			__sync_fetch_and_add(n, 1);
	return 0;
}
