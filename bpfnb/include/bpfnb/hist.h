/* bpfnb/hist.h: bpftrace-style histograms in BPF maps.
 *
 * Included by bpfnb.h after vmlinux.h and bpf/bpf_helpers.h.
 *
 *   BPFNB_HIST(lat);                          // 65 log2 buckets, array map
 *   BPFNB_PERCPU_HIST(lat);                   // same, per-CPU array
 *   bpfnb_hist_log2(&lat, delta_ns);          // record one value
 *
 *   BPFNB_LINEAR_HIST(sz, 0, 4096, 512);      // linear buckets of 512 in [0, 4096)
 *   bpfnb_hist_linear(sz, bytes);             // record (bare map name, no &)
 *
 * Log2 buckets: slot 0 holds the value 0, slot 1 the value 1, slot k (k >= 2) the
 * values [2^(k-1), 2^k); slot 64 ends at 2^64, so every u64 has a slot.
 *
 * Linear buckets: slot 0 holds values below MIN, slot i (1 <= i <= N) holds
 * [MIN + (i-1)*STEP, MIN + i*STEP), slot N+1 holds values >= MAX, where
 * N = ceil((MAX - MIN) / STEP). MIN, MAX and STEP must be non-negative integer
 * literals (decimal or hex): they are pasted into the key typedef's name
 * (bpfnb_lhist__MIN_MAX_STEP) so bpfnb reads the bucket bounds back from BTF.
 *
 * Python recognises a histogram by its key type: the typedef bpfnb_log2_bucket_t
 * (log2) or a typedef of bpfnb_linear_bucket_t (linear). Slot computation is
 * branch-free and loop-free, so the verifier has nothing to explore.
 */
#ifndef BPFNB_HIST_H
#define BPFNB_HIST_H

/* Key types: both are u32 array indexes, told apart by name in BTF. */
typedef __u32 bpfnb_log2_bucket_t;
typedef __u32 bpfnb_linear_bucket_t;

#define BPFNB_LOG2_SLOTS 65

/* Slot of a value in a log2 histogram: 0 for 0, else floor(log2(v)) + 1. */
static __always_inline __u32 bpfnb_log2_slot(__u64 v)
{
	__u64 x = v;
	__u32 r, shift;

	r = (__u32)(x > 0xFFFFFFFFULL) << 5;
	x >>= r;
	shift = (__u32)(x > 0xFFFFULL) << 4;
	x >>= shift;
	r |= shift;
	shift = (__u32)(x > 0xFFULL) << 3;
	x >>= shift;
	r |= shift;
	shift = (__u32)(x > 0xFULL) << 2;
	x >>= shift;
	r |= shift;
	shift = (__u32)(x > 0x3ULL) << 1;
	x >>= shift;
	r |= shift;
	r |= (__u32)(x >> 1);
	return r + (__u32)(v != 0);
}

/* Number of in-range linear buckets: ceil((max - min) / step). */
#define BPFNB_LINEAR_BUCKETS(min, max, step) \
	((__u32)((((__u64)(max)) - ((__u64)(min)) + ((__u64)(step)) - 1) / ((__u64)(step))))

/* Slot of a value in a linear histogram (see the header comment). */
static __always_inline __u32 bpfnb_linear_slot(__u64 v, __u64 min, __u64 max, __u64 step)
{
	if (v < min)
		return 0;
	if (v >= max)
		return (__u32)((max - min + step - 1) / step) + 1;
	return (__u32)((v - min) / step) + 1;
}

/* Add one to a slot of a histogram map (array or per-CPU array). */
static __always_inline void bpfnb_hist_add(void *map, __u32 slot)
{
	__u64 *count = bpf_map_lookup_elem(map, &slot);

	if (count)
		__sync_fetch_and_add(count, 1);
}

/* Record a value into a log2 histogram declared with BPFNB_HIST / BPFNB_PERCPU_HIST. */
static __always_inline void bpfnb_hist_log2(void *map, __u64 value)
{
	bpfnb_hist_add(map, bpfnb_log2_slot(value));
}

/* Record a value into a linear histogram whose bounds are given again here. */
static __always_inline void bpfnb_hist_linear_add(void *map, __u64 value, __u64 min, __u64 max,
						  __u64 step)
{
	bpfnb_hist_add(map, bpfnb_linear_slot(value, min, max, step));
}

#define __BPFNB_HIST(name, maptype)                          \
	struct {                                              \
		__uint(type, maptype);                        \
		__type(key, bpfnb_log2_bucket_t);             \
		__type(value, __u64);                         \
		__uint(max_entries, BPFNB_LOG2_SLOTS);        \
	} name SEC(".maps")

/* A log2 histogram: an array map of 65 u64 counts keyed by bpfnb_log2_bucket_t. */
#define BPFNB_HIST(name) __BPFNB_HIST(name, BPF_MAP_TYPE_ARRAY)
/* A log2 histogram in a per-CPU array (no cross-CPU contention; bpfnb sums CPUs). */
#define BPFNB_PERCPU_HIST(name) __BPFNB_HIST(name, BPF_MAP_TYPE_PERCPU_ARRAY)

#define __BPFNB_LINEAR_HIST(name, min, max, step, maptype)                                \
	typedef bpfnb_linear_bucket_t bpfnb_lhist__##min##_##max##_##step;                 \
	_Static_assert((step) > 0, "BPFNB_LINEAR_HIST: step must be positive");            \
	_Static_assert((max) > (min), "BPFNB_LINEAR_HIST: max must be above min");         \
	struct {                                                                           \
		__uint(type, maptype);                                                     \
		__type(key, bpfnb_lhist__##min##_##max##_##step);                          \
		__type(value, __u64);                                                      \
		__uint(max_entries, BPFNB_LINEAR_BUCKETS(min, max, step) + 2);             \
	} name SEC(".maps");                                                               \
	static __always_inline __u32 name##__bpfnb_slot(__u64 value)                       \
	{                                                                                  \
		return bpfnb_linear_slot(value, (min), (max), (step));                     \
	}

/* A linear histogram of [MIN, MAX) in buckets of STEP, plus under/overflow slots. */
#define BPFNB_LINEAR_HIST(name, min, max, step) \
	__BPFNB_LINEAR_HIST(name, min, max, step, BPF_MAP_TYPE_ARRAY)
/* Same in a per-CPU array. */
#define BPFNB_PERCPU_LINEAR_HIST(name, min, max, step) \
	__BPFNB_LINEAR_HIST(name, min, max, step, BPF_MAP_TYPE_PERCPU_ARRAY)

/* Record a value into a linear histogram (give the bare map name, without &). */
#define bpfnb_hist_linear(name, value) bpfnb_hist_add(&(name), name##__bpfnb_slot(value))

#endif /* BPFNB_HIST_H */
