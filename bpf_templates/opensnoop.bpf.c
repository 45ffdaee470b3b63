// Trace file opens (openat): who opened which path, with flags and the result, from a ring buffer.
// Set `target_pid` (--set target_pid=PID) to trace one process only; 0 traces every process.
const volatile u32 target_pid = 0;

struct open_args {
	u64 flags;
	char filename[256];
};

struct open_event {
	u32 pid;
	u32 uid;
	s32 fd;                    /* the new fd, or -1 */
	bpfnb_errno_t err;         /* 0, or the errno of a failed open (ENOENT...) */
	bpfnb_open_flags_t flags;  /* shown decoded: O_RDONLY|O_CLOEXEC */
	char comm[16];
	char filename[256];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, u32);          /* thread id */
	__type(value, struct open_args);
	__uint(max_entries, 8192);
} inflight SEC(".maps");
BPFNB_HIDDEN(inflight);        /* scratch: collapsed in the dashboard */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps");

BPFNB_EVENT_TYPE(events, struct open_event);

SEC("tracepoint/syscalls/sys_enter_openat")
int opensnoop_enter(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct open_args *args;
	static const struct open_args zero;

	if (target_pid && (id >> 32) != target_pid)
		return 0;
	if (bpf_map_update_elem(&inflight, &tid, &zero, BPF_ANY))
		return 0;
	args = bpf_map_lookup_elem(&inflight, &tid);
	if (!args)
		return 0;
	args->flags = ctx->args[2];
	bpf_probe_read_user_str(&args->filename, sizeof(args->filename), (void *)ctx->args[1]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int opensnoop_exit(struct trace_event_raw_sys_exit *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct open_args *args = bpf_map_lookup_elem(&inflight, &tid);
	struct open_event *e;

	if (!args)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->pid = id >> 32;
		e->uid = (u32)bpf_get_current_uid_gid();
		e->fd = ctx->ret < 0 ? -1 : (s32)ctx->ret;
		e->err = ctx->ret < 0 ? (s32)-ctx->ret : 0;
		e->flags = (u32)args->flags;
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
		__builtin_memcpy(e->filename, args->filename, sizeof(e->filename));
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}
