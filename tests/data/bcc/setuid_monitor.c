/*
 * setuid_monitor    A setuid syscall monitor, as the example of
 *                   utilizing kernel tracepoint.
 *
 * Copyright 2025 HardenedLinux
 * Licensed under the Apache License, Version 2.0 (the "License")
 *
 * From iovisor/bcc examples/tracing/setuid_monitor.py: the BPF text, unchanged
 */

#include <linux/sched.h>

// define output data structure in C
struct data_t {
    u32 pid;
    u32 uid;
    u64 ts;
    char comm[TASK_COMM_LEN];
};
BPF_PERF_OUTPUT(events);

TRACEPOINT_PROBE(syscalls, sys_enter_setuid) {
    struct data_t data = {};

    // Check /sys/kernel/debug/tracing/events/syscalls/sys_enter_setuid/format
    // for the args format
    data.uid = args->uid;
    data.ts = bpf_ktime_get_ns();
    data.pid = bpf_get_current_pid_tgid();
    bpf_get_current_comm(&data.comm, sizeof(data.comm));

    events.perf_submit(args, &data, sizeof(data));

    return 0;
}
