// Off-CPU time: where threads block (sched_switch), in microseconds per stack, drawn as a live flame graph.
// Set `target_pid` (--set target_pid=PID) for one process (0: every process); blocks shorter than
// `min_block_us` are left out. Kernel threads are skipped.
const volatile u32 target_pid = 0;
const volatile u64 min_block_us = 1;

struct offcpu_start {
	u64 ts;
	bpfnb_stackid_t kstack;
	bpfnb_stackid_t ustack;
};

struct offcpu_key {
	u32 pid;
	char comm[16];
	bpfnb_stackid_t kstack;
	bpfnb_stackid_t ustack;
};

BPF_HASH(start, u32, struct offcpu_start, 16384);   /* thread id -> when and where it blocked */
BPF_STACK_TRACE(stacks, 16384);
BPF_HASH(offcpu, struct offcpu_key, bpfnb_us_t, 16384);

SEC("tp_btf/sched_switch")
int BPF_PROG(offcpu_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u64 now = bpf_ktime_get_ns();
	struct offcpu_start *s;
	struct offcpu_key key = {};
	u64 delta, *total;
	u32 tid;

	/* prev leaves the CPU: remember when, and its stacks (it is still current) */
	tid = prev->pid;
	if (tid && !(prev->flags & 0x00200000 /* PF_KTHREAD */) &&
	    (!target_pid || prev->tgid == target_pid)) {
		struct offcpu_start st = { .ts = now };

		st.kstack = bpf_get_stackid(ctx, &stacks, 0);
		st.ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
		bpf_map_update_elem(&start, &tid, &st, BPF_ANY);
	}

	/* next comes back: add the time it was away to the stack it blocked in */
	tid = next->pid;
	s = bpf_map_lookup_elem(&start, &tid);
	if (!s)
		return 0;
	delta = (now - s->ts) / 1000;
	key.pid = next->tgid;
	key.kstack = s->kstack;
	key.ustack = s->ustack;
	__builtin_memcpy(key.comm, next->comm, sizeof(key.comm));
	bpf_map_delete_elem(&start, &tid);
	if (delta < min_block_us)
		return 0;
	total = bpf_map_lookup_elem(&offcpu, &key);
	if (total)
		__sync_fetch_and_add(total, delta);
	else
		bpf_map_update_elem(&offcpu, &key, &delta, BPF_NOEXIST);
	return 0;
}
