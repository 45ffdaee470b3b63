/* bpfnb/events.h: counting what the kernel drops, and event types, for %%bpf cells.
 *
 * Included by bpfnb.h after libbpf's bpf_helpers.h. Two things live here:
 *
 * 1. Drop counting with no change to the user's C. The helpers that can drop data
 *    are redefined as function-like macros (a function-like macro does not expand
 *    inside its own body, so each calls the real helper):
 *      - bpf_ringbuf_reserve, bpf_ringbuf_reserve_dynptr, bpf_ringbuf_output and
 *        bpf_perf_event_output: a failed submission is a *lost event* of that map;
 *      - bpf_map_update_elem and bpf_map_push_elem: -E2BIG (no free element: the
 *        map is full, or an array index is past max_entries) or -ENOMEM (no memory
 *        for a new element) is a *dropped update* of that map.
 *    The count goes to the hidden per-CPU hash `bpfnb_drops`, keyed by the kernel's id
 *    of the map the helper was given (read from the map pointer itself, so a ring
 *    passed through a variable or with a long name is counted the same) and the
 *    reason. The macros expand wherever the helper is called after the prelude: in
 *    the cell and in every header it includes. bpfnb reads the map from Python:
 *    `prog.<ring>.lost` and `prog.<map>.dropped`.
 *    A perf buffer that is full (-ENOSPC) is not counted here: the kernel counts
 *    those samples itself and bpfnb reads the count from the perf events.
 *    The map is defined below; bpfnb does not create it for an object whose code
 *    never refers to it.
 *
 * 2. Declaring the event type of a ring explicitly:
 *        BPFNB_EVENT_TYPE(events, struct event);
 *    at file scope. bpfnb finds the declaration in the cell's text; the expansion
 *    (a pointer variable in the non-loaded section ".bpfnb.types") keeps the
 *    struct in the object's BTF even when only local variables use it.
 */
#ifndef __BPFNB_EVENTS_H__
#define __BPFNB_EVENTS_H__

#define BPFNB_DROP_LOST 0 /* an event could not be submitted */
#define BPFNB_DROP_FULL 1 /* an update found no room in the map */

struct bpfnb_drop_key {
	__u32 map_id;
	__u32 reason;
};

struct bpfnb_drops_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct bpfnb_drop_key);
	__type(value, __u64);
	__uint(max_entries, 1024);
};

struct bpfnb_drops_map bpfnb_drops SEC(".maps");

/* The kernel's struct bpf_map, reduced to the one field read here (a CO-RE "flavor":
 * libbpf matches it to struct bpf_map by name and relocates the offset of id). Naming
 * the full struct instead would put its whole type graph into every object's debug
 * info: 600 KB objects and ~140 ms more clang time per cell. */
struct bpf_map___bpfnb {
	__u32 id;
} __attribute__((preserve_access_index));

/* Defined before the macros below, so the helpers here are the real ones. */
static __always_inline void bpfnb__count_drop(void *map, __u32 reason)
{
	struct bpfnb_drop_key key = { .map_id = ((struct bpf_map___bpfnb *)map)->id,
				      .reason = reason };
	__u64 one = 1, *n = bpf_map_lookup_elem(&bpfnb_drops, &key);

	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	if (bpf_map_update_elem(&bpfnb_drops, &key, &one, BPF_NOEXIST)) {
		n = bpf_map_lookup_elem(&bpfnb_drops, &key);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
}

#define bpf_ringbuf_reserve(ringbuf, size, flags)                                    \
	({                                                                           \
		void *__bpfnb_map = (void *)(ringbuf);                               \
		void *__bpfnb_rec = bpf_ringbuf_reserve(__bpfnb_map, (size), (flags)); \
		if (!__bpfnb_rec)                                                    \
			bpfnb__count_drop(__bpfnb_map, BPFNB_DROP_LOST);             \
		__bpfnb_rec;                                                         \
	})

#define bpf_ringbuf_reserve_dynptr(ringbuf, size, flags, ptr)                         \
	({                                                                            \
		void *__bpfnb_map = (void *)(ringbuf);                                \
		long __bpfnb_err =                                                    \
			bpf_ringbuf_reserve_dynptr(__bpfnb_map, (size), (flags), (ptr)); \
		if (__bpfnb_err)                                                      \
			bpfnb__count_drop(__bpfnb_map, BPFNB_DROP_LOST);              \
		__bpfnb_err;                                                          \
	})

#define bpf_ringbuf_output(ringbuf, data, size, flags)                                   \
	({                                                                               \
		void *__bpfnb_map = (void *)(ringbuf);                                   \
		long __bpfnb_err = bpf_ringbuf_output(__bpfnb_map, (data), (size), (flags)); \
		if (__bpfnb_err)                                                         \
			bpfnb__count_drop(__bpfnb_map, BPFNB_DROP_LOST);                 \
		__bpfnb_err;                                                             \
	})

/* -28 is -ENOSPC: the perf buffer was full; the kernel counts those itself. */
#define bpf_perf_event_output(ctx, map, flags, data, size)                                      \
	({                                                                                      \
		void *__bpfnb_map = (void *)(map);                                              \
		long __bpfnb_err = bpf_perf_event_output((ctx), __bpfnb_map, (flags), (data), (size)); \
		if (__bpfnb_err && __bpfnb_err != -28)                                          \
			bpfnb__count_drop(__bpfnb_map, BPFNB_DROP_LOST);                        \
		__bpfnb_err;                                                                    \
	})

/* -7 is -E2BIG (no free element, or an array index past max_entries), -12 -ENOMEM. */
#define bpf_map_update_elem(map, key, value, flags)                                       \
	({                                                                                \
		void *__bpfnb_map = (void *)(map);                                        \
		long __bpfnb_err = bpf_map_update_elem(__bpfnb_map, (key), (value), (flags)); \
		if (__bpfnb_err == -7 || __bpfnb_err == -12)                              \
			bpfnb__count_drop(__bpfnb_map, BPFNB_DROP_FULL);                  \
		__bpfnb_err;                                                              \
	})

#define bpf_map_push_elem(map, value, flags)                                       \
	({                                                                         \
		void *__bpfnb_map = (void *)(map);                                 \
		long __bpfnb_err = bpf_map_push_elem(__bpfnb_map, (value), (flags)); \
		if (__bpfnb_err == -7 || __bpfnb_err == -12)                       \
			bpfnb__count_drop(__bpfnb_map, BPFNB_DROP_FULL);           \
		__bpfnb_err;                                                       \
	})

/* Declare the type of the events submitted to RING (at file scope):
 *     BPFNB_EVENT_TYPE(events, struct event);
 */
#define BPFNB_EVENT_TYPE(ring, type)                                        \
	type *__bpfnb_event_type__##ring                                    \
		__attribute__((section(".bpfnb.types"), used, unused))

#endif /* __BPFNB_EVENTS_H__ */
