/*
 * The BCC map examples of "Mastering eBPF Maps: Design, Implementation, and
 * Real-World Use Cases" (seed 000), adapted only in how each function attaches: BCC
 * attaches them from Python (b.attach_kprobe(...)); here a SEC() line before each
 * names a uprobe on a function of the test's own target program (TARGET is replaced
 * with its path), so the counts are exact. The map code is the article's.
 */
// Define a struct for process information used as the value type
struct proc_info {
u64 start_time;
u64 cpu_time;
char comm[16];
};
// Declare a hash map named process_map with key type u32 and value type proc_info, capacity 10240
BPF_HASH(process_map, u32, struct proc_info, 10240);
SEC("uprobe/TARGET:target_exec")
int trace_exec(struct pt_regs *ctx) {
u32 pid = bpf_get_current_pid_tgid() >> 32;
struct proc_info info = {};
info.start_time = bpf_ktime_get_ns();
bpf_get_current_comm(&info.comm, sizeof(info.comm));
// Update the hash map with the pid as key and info as value
process_map.update(&pid, &info);
return 0;
}

// System call counter map
BPF_PERCPU_HASH(syscall_stats, u32, u64, 512);
SEC("uprobe/TARGET:target_exec")
int count_syscalls(struct pt_regs *ctx) {
u32 syscall_nr = ctx->orig_ax;
u64 *count = syscall_stats.lookup(&syscall_nr);
if (count) {
__sync_fetch_and_add(count, 1);
} else {
u64 initial = 1;
syscall_stats.update(&syscall_nr, &initial);
}
return 0;
}

// CPU usage monitoring array supporting 256 CPUs
BPF_ARRAY(cpu_usage, u64, 256);
SEC("uprobe/TARGET:target_exec")
int sample_cpu_usage(struct pt_regs *ctx) {
int cpu = bpf_get_smp_processor_id();
u64 timestamp = bpf_ktime_get_ns();
cpu_usage.update(&cpu, timestamp);
return 0;
}

// Define a custom file_event structure
struct file_event {
u32 pid;
u64 timestamp;
char filename[256];
};
BPF_PERF_OUTPUT(events);
SEC("uprobe/TARGET:target_openat")
int trace_openat(struct pt_regs *ctx) {
struct file_event event = {};
event.pid = bpf_get_current_pid_tgid() >> 32;
event.timestamp = bpf_ktime_get_ns();
const char __user *filename = (char *)PT_REGS_PARM2(ctx);
bpf_probe_read_user_str(&event.filename, sizeof(event.filename), filename);
events.perf_submit(ctx, &event, sizeof(event));
return 0;
}
