/*
 * softirqs  Summarize soft IRQ (interrupt) event time.
 *
 * Copyright (c) 2015 Brendan Gregg.
 * Licensed under the Apache License, Version 2.0 (the "License")
 *
 * From iovisor/bcc tools/softirqs.py: the BPF text of `softirqs -C` (event counts) with its default substitutions
 */

#include <uapi/linux/ptrace.h>

typedef struct entry_key {
    u32 pid;
    u32 cpu;
} entry_key_t;

typedef struct irq_key {
    u32 vec;
    u64 slot;
} irq_key_t;

typedef struct account_val {
    u64 ts;
    u32 vec;
} account_val_t;

BPF_HASH(start, entry_key_t, account_val_t);
BPF_HISTOGRAM(dist, irq_key_t);

TRACEPOINT_PROBE(irq, softirq_entry)
{
    u32 cpu = bpf_get_smp_processor_id();

    

    irq_key_t key = { .slot = 0 /* ignore */ };
    key.vec = args->vec;

    dist.atomic_increment(key);

    return 0;
}
