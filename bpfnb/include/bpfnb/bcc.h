/* bpfnb/bcc.h: what BCC-dialect cells need after bpfnb rewrote them.
 *
 * Not part of the prelude: bpfnb includes it (through the cell's preamble) only for
 * cells it reads as BCC's C (`%%bpf NAME --bcc`, or detected). bpfnb's rewrite
 * (bpfnb/build/bcc.py) turns `counts.increment(key)` into
 * `bpfnb_bcc_increment(&counts, key, 1)`, `events.perf_submit(ctx, &e, sizeof(e))`
 * into `bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e))` and so
 * on; the helpers and constants those rewrites and BCC programs use live here.
 */
#ifndef __BPFNB_BCC_H__
#define __BPFNB_BCC_H__

/* Constants BCC programs take from kernel headers vmlinux.h does not carry (macros). */
#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#ifndef PERF_MAX_STACK_DEPTH
#define PERF_MAX_STACK_DEPTH 127
#endif
#ifndef BPF_F_NO_PREALLOC
#define BPF_F_NO_PREALLOC 1
#endif
#ifndef TASK_RUNNING
#define TASK_RUNNING 0
#endif
/* Kernel address-space annotations (sparse's): nothing for BPF. */
#ifndef __user
#define __user
#endif
#ifndef __kernel
#define __kernel
#endif

/* BCC's atomic add (a statement in BCC programs, its value unused). */
#define lock_xadd(ptr, val) ((void)__sync_fetch_and_add((ptr), (val)))

/* BCC's log2 of a 32/64-bit value, plus one (0 stays 0): the histogram slot of
 * BPF_HISTOGRAM + dist.increment(bpf_log2l(v)), bpfnb's log2 scheme. */
static __always_inline unsigned int bpfnb_bcc_fls32(unsigned int v)
{
	unsigned int r = 0;

	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

static __always_inline unsigned int bpf_log2(unsigned int v)
{
	return v ? bpfnb_bcc_fls32(v) + 1 : 0;
}

static __always_inline unsigned int bpf_log2l(unsigned long v)
{
	unsigned int hi = v >> 32;

	return hi ? bpfnb_bcc_fls32(hi) + 33 : bpf_log2((unsigned int)v);
}

/* A key or value argument as a pointer: `&k` and pointers stay as they are; an
 * integer value is put in a temporary and its address taken, so the common slip
 * `counts.update(&cpu, ts)` works as meant. */
#define BPFNB_BCC_IS_INT(x) (__builtin_classify_type(x) == 1)
#define BPFNB_BCC_INT(x) __builtin_choose_expr(BPFNB_BCC_IS_INT(x), (x), 0)
#define BPFNB_BCC_PTR(x)                                                                 \
	__builtin_choose_expr(BPFNB_BCC_IS_INT(x),                                       \
			      (void *)&(__typeof__(BPFNB_BCC_INT(x))){ BPFNB_BCC_INT(x) }, \
			      (x))

/* map.lookup_or_try_init(&k, &zero): the value, inserted from `init` when absent. */
#define bpfnb_bcc_lookup_or_try_init(_m, _k, _init)                                   \
	({                                                                            \
		__typeof__(*(_m)->value) *__bpfnb_v = bpf_map_lookup_elem((_m), (_k)); \
		if (!__bpfnb_v) {                                                     \
			bpf_map_update_elem((_m), (_k), (_init), BPF_NOEXIST);        \
			__bpfnb_v = bpf_map_lookup_elem((_m), (_k));                  \
		}                                                                     \
		__bpfnb_v;                                                            \
	})

/* map.increment(k[, n]) / map.atomic_increment(k[, n]): k is passed by value. Both
 * add atomically, and an insert that loses a race adds to the winner's value, so no
 * count is lost. */
#define bpfnb_bcc_increment(_m, _k, _n)                                                  \
	({                                                                               \
		__typeof__(*(_m)->key) __bpfnb_k = (_k);                                 \
		__typeof__(*(_m)->value) *__bpfnb_v = bpf_map_lookup_elem((_m), &__bpfnb_k); \
		if (__bpfnb_v) {                                                         \
			__sync_fetch_and_add(__bpfnb_v, (_n));                           \
		} else {                                                                 \
			__typeof__(*(_m)->value) __bpfnb_z = (_n);                       \
			if (bpf_map_update_elem((_m), &__bpfnb_k, &__bpfnb_z, BPF_NOEXIST) == -17) { \
				__bpfnb_v = bpf_map_lookup_elem((_m), &__bpfnb_k);       \
				if (__bpfnb_v)                                           \
					__sync_fetch_and_add(__bpfnb_v, (_n));           \
			}                                                                \
		}                                                                        \
	})

/* The return value in an fexit program (a kretprobe__ function run as fexit). */
static __always_inline __u64 bpfnb_fexit_ret(void *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return ret;
}

/* __data_loc fields of TRACEPOINT_PROBE args: offset in the low 16 bits, length in
 * the high 16 (bpfnb names them data_loc_<field>, as BCC does). */
#define TP_DATA_LOC_READ_CONST(dst, field, length)                                 \
	bpf_probe_read_kernel((void *)(dst), (length),                             \
			      (char *)args + (args->data_loc_##field & 0xFFFF))
#define TP_DATA_LOC_READ(dst, field)                                               \
	bpf_probe_read_kernel((void *)(dst), (args->data_loc_##field >> 16),       \
			      (char *)args + (args->data_loc_##field & 0xFFFF))
#define TP_DATA_LOC_READ_STR(dst, field, length)                                   \
	bpf_probe_read_kernel_str((void *)(dst), (length),                         \
				  (char *)args + (args->data_loc_##field & 0xFFFF))

#endif /* __BPFNB_BCC_H__ */
