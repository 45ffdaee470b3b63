/* bpfnb/events.h: ring buffer and perf event array support for %%bpf cells.
 *
 * Included by bpfnb.h after libbpf's bpf_helpers.h. Two things live here:
 *
 * 1. Lost-event counting with no change to the user's C. bpf_ringbuf_reserve,
 *    bpf_ringbuf_output and bpf_perf_event_output are redefined as function-like
 *    macros: each calls the real helper (a function-like macro does not expand inside
 *    its own body) and, when the helper fails, adds one to the hidden per-CPU hash
 *    map `bpfnb_lost`, keyed by the text of the map argument (e.g. "&events").
 *    bpfnb reads that map from Python and shows the sum as `prog.<ring>.lost`.
 *    For perf event arrays a full buffer (-ENOSPC) is not counted here: the kernel
 *    reports those samples itself with PERF_RECORD_LOST records, which bpfnb adds.
 *    The map is defined by the epilogue bpfnb appends to cells that call one of
 *    these helpers, so other cells get no extra map.
 *
 * 2. Declaring the event type of a ring explicitly:
 *        BPFNB_EVENT_TYPE(events, struct event);
 *    at file scope. bpfnb finds the declaration in the cell's text; the expansion
 *    (a pointer variable in the non-loaded section ".bpfnb.types") keeps the
 *    struct in the object's BTF even when only local variables use it.
 */
#ifndef __BPFNB_EVENTS_H__
#define __BPFNB_EVENTS_H__

#define BPFNB_LOST_KEY_LEN 32

struct bpfnb_lost_key {
	char site[BPFNB_LOST_KEY_LEN];
};

struct bpfnb_lost_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct bpfnb_lost_key);
	__type(value, __u64);
	__uint(max_entries, 256);
};

/* Defined by the epilogue bpfnb appends to cells that submit events
 * (bpfnb.eventtypes.epilogue), so cells that never do get no extra map. */
extern struct bpfnb_lost_map bpfnb_lost;

static __always_inline void bpfnb__count_lost(struct bpfnb_lost_key *key)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(&bpfnb_lost, key);

	if (n) {
		*n += 1;
		return;
	}
	if (bpf_map_update_elem(&bpfnb_lost, key, &one, BPF_NOEXIST)) {
		n = bpf_map_lookup_elem(&bpfnb_lost, key);
		if (n)
			*n += 1;
	}
}

#define bpfnb__lost(map_text)                                         \
	do {                                                          \
		struct bpfnb_lost_key __bpfnb_key = { .site = map_text }; \
		bpfnb__count_lost(&__bpfnb_key);                      \
	} while (0)

#define bpf_ringbuf_reserve(ringbuf, size, flags)                             \
	({                                                                    \
		void *__bpfnb_rec = bpf_ringbuf_reserve((ringbuf), (size), (flags)); \
		if (!__bpfnb_rec)                                             \
			bpfnb__lost(#ringbuf);                                \
		__bpfnb_rec;                                                  \
	})

#define bpf_ringbuf_output(ringbuf, data, size, flags)                             \
	({                                                                         \
		long __bpfnb_err = bpf_ringbuf_output((ringbuf), (data), (size), (flags)); \
		if (__bpfnb_err)                                                   \
			bpfnb__lost(#ringbuf);                                     \
		__bpfnb_err;                                                       \
	})

/* -28 is -ENOSPC: the perf buffer was full; the kernel counts those itself. */
#define bpf_perf_event_output(ctx, map, flags, data, size)                                \
	({                                                                                \
		long __bpfnb_err = bpf_perf_event_output((ctx), (map), (flags), (data), (size)); \
		if (__bpfnb_err && __bpfnb_err != -28)                                    \
			bpfnb__lost(#map);                                                \
		__bpfnb_err;                                                              \
	})

/* Declare the type of the events submitted to RING (at file scope):
 *     BPFNB_EVENT_TYPE(events, struct event);
 */
#define BPFNB_EVENT_TYPE(ring, type)                                        \
	type *__bpfnb_event_type__##ring                                    \
		__attribute__((section(".bpfnb.types"), used, unused))

#endif /* __BPFNB_EVENTS_H__ */
