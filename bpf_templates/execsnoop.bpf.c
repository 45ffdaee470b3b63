// Stream every exec (pid, parent, command, file name) from a ring buffer.
struct exec_event {
	u32 pid;
	u32 ppid;
	u32 uid;
	char comm[16];
	char filename[128];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

BPFNB_EVENT_TYPE(events, struct exec_event);

SEC("tracepoint/sched/sched_process_exec")
int execsnoop_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct exec_event *e;
	u32 off = ctx->__data_loc_filename & 0xFFFF;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(&e->filename, sizeof(e->filename), (void *)ctx + off);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
