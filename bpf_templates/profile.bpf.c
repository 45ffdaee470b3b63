// CPU profile: stacks sampled on every CPU (perf_event, --sample-freq, default 99 Hz), drawn as a live flame graph.
// Set `target_pid` (--set target_pid=PID) to sample one process only; 0 samples every process.
// Idle CPUs are left out (--set skip_idle=0 keeps them). prog.stacks.to_folded(PATH) writes folded stacks.
const volatile u32 target_pid = 0;
const volatile u8 skip_idle = 1;

struct profile_key {
	u32 pid;
	char comm[16];
	bpfnb_stackid_t kstack;
	bpfnb_stackid_t ustack;
};

BPF_STACK_TRACE(stacks, 16384);
BPF_HASH(counts, struct profile_key, u64, 16384);

SEC("perf_event")
int profile_sample(struct bpf_perf_event_data *ctx)
{
	struct profile_key key = {};
	u64 id = bpf_get_current_pid_tgid();
	u64 one = 1, *n;

	key.pid = id >> 32;
	if (target_pid && key.pid != target_pid)
		return 0;
	if (skip_idle && (u32)id == 0)
		return 0;
	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	key.kstack = bpf_get_stackid(ctx, &stacks, 0);
	key.ustack = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	return 0;
}
