/* bpfnb/maps.h: BCC-style shorthands for map definitions in %%bpf cells.
 *
 * Included by bpfnb.h after vmlinux.h and libbpf's bpf_helpers.h. Every macro expands
 * to an ordinary BTF-defined map (a `struct { __uint(type, ...); ... } name
 * SEC(".maps")`), so bpfnb reads the key and value types from BTF as for any
 * hand-written map, and the map is used with the usual helpers:
 *
 *     BPF_HASH(counts, u32, u64, 10240);
 *     ...
 *     u64 *n = bpf_map_lookup_elem(&counts, &pid);
 *
 * Trailing arguments may be left out, as in BCC:
 *
 *     BPF_HASH(name)                         key u64, value u64, 10240 entries
 *     BPF_HASH(name, key_type)               value u64, 10240 entries
 *     BPF_HASH(name, key_type, value_type)   10240 entries
 *     BPF_HASH(name, key_type, value_type, max_entries)
 *
 * The same holds for BPF_LRU_HASH, BPF_PERCPU_HASH and BPF_LRU_PERCPU_HASH.
 * Arrays are indexed by a u32:
 *
 *     BPF_ARRAY(name)                        value u64, 10240 entries
 *     BPF_ARRAY(name, value_type)            10240 entries
 *     BPF_ARRAY(name, value_type, max_entries)
 *
 * and likewise BPF_PERCPU_ARRAY. Events:
 *
 *     BPF_RINGBUF(name, bytes)               ring buffer (bytes: a power of 2, >= 4096)
 *     BPF_PERF_OUTPUT(name)                  perf event array, one slot per CPU
 *
 * Stacks, for bpf_get_stackid() (bpfnb symbolizes them and draws flame graphs):
 *
 *     BPF_STACK_TRACE(name, max_entries)     stack id -> up to 127 addresses
 */
#ifndef __BPFNB_MAPS_H__
#define __BPFNB_MAPS_H__

#define BPFNB_DEFAULT_MAX_ENTRIES 10240

/* One BTF map definition. */
#define BPFNB_MAP(_name, _type, _key, _value, _max)  \
	struct {                                      \
		__uint(type, _type);                  \
		__type(key, _key);                    \
		__type(value, _value);                \
		__uint(max_entries, _max);            \
	} _name SEC(".maps")

/* Pick a macro by the number of arguments (1 to 4). */
#define BPFNB__PICK4(_1, _2, _3, _4, NAME, ...) NAME

#define BPFNB__KEYED(_type, ...)                                                   \
	BPFNB__PICK4(__VA_ARGS__, BPFNB__KEYED4, BPFNB__KEYED3, BPFNB__KEYED2,     \
		     BPFNB__KEYED1, _unused)(_type, __VA_ARGS__)
#define BPFNB__KEYED1(_type, _name) \
	BPFNB_MAP(_name, _type, __u64, __u64, BPFNB_DEFAULT_MAX_ENTRIES)
#define BPFNB__KEYED2(_type, _name, _key) \
	BPFNB_MAP(_name, _type, _key, __u64, BPFNB_DEFAULT_MAX_ENTRIES)
#define BPFNB__KEYED3(_type, _name, _key, _value) \
	BPFNB_MAP(_name, _type, _key, _value, BPFNB_DEFAULT_MAX_ENTRIES)
#define BPFNB__KEYED4(_type, _name, _key, _value, _max) \
	BPFNB_MAP(_name, _type, _key, _value, _max)

#define BPFNB__INDEXED(_type, ...)                                                 \
	BPFNB__PICK4(__VA_ARGS__, _too_many_arguments, BPFNB__INDEXED3,            \
		     BPFNB__INDEXED2, BPFNB__INDEXED1, _unused)(_type, __VA_ARGS__)
#define BPFNB__INDEXED1(_type, _name) \
	BPFNB_MAP(_name, _type, __u32, __u64, BPFNB_DEFAULT_MAX_ENTRIES)
#define BPFNB__INDEXED2(_type, _name, _value) \
	BPFNB_MAP(_name, _type, __u32, _value, BPFNB_DEFAULT_MAX_ENTRIES)
#define BPFNB__INDEXED3(_type, _name, _value, _max) \
	BPFNB_MAP(_name, _type, __u32, _value, _max)

#define BPF_HASH(...) BPFNB__KEYED(BPF_MAP_TYPE_HASH, __VA_ARGS__)
#define BPF_LRU_HASH(...) BPFNB__KEYED(BPF_MAP_TYPE_LRU_HASH, __VA_ARGS__)
#define BPF_PERCPU_HASH(...) BPFNB__KEYED(BPF_MAP_TYPE_PERCPU_HASH, __VA_ARGS__)
#define BPF_LRU_PERCPU_HASH(...) BPFNB__KEYED(BPF_MAP_TYPE_LRU_PERCPU_HASH, __VA_ARGS__)

#define BPF_ARRAY(...) BPFNB__INDEXED(BPF_MAP_TYPE_ARRAY, __VA_ARGS__)
#define BPF_PERCPU_ARRAY(...) BPFNB__INDEXED(BPF_MAP_TYPE_PERCPU_ARRAY, __VA_ARGS__)

#define BPF_RINGBUF(_name, _bytes)                    \
	struct {                                      \
		__uint(type, BPF_MAP_TYPE_RINGBUF);   \
		__uint(max_entries, _bytes);          \
	} _name SEC(".maps")

#define BPF_PERF_OUTPUT(_name)                                \
	struct {                                              \
		__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);  \
		__uint(key_size, sizeof(__u32));              \
		__uint(value_size, sizeof(__u32));            \
	} _name SEC(".maps")

/* PERF_MAX_STACK_DEPTH addresses per stack. */
#define BPFNB_STACK_DEPTH 127

#define BPF_STACK_TRACE(_name, _max)                                      \
	struct {                                                          \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);                   \
		__uint(key_size, sizeof(__u32));                          \
		__uint(value_size, BPFNB_STACK_DEPTH * sizeof(__u64));    \
		__uint(max_entries, _max);                                \
	} _name SEC(".maps")

/* Dashboard markers (read back from BTF by bpfnb/object/markers.py; libbpf skips
 * their section):
 *
 *     BPFNB_HIDDEN(start);                 start is a helper (scratch) map: its live
 *                                          view starts collapsed
 *     BPFNB_UNIT(latency, bpfnb_ns_t);     the values latency counts are in ns
 *                                          (bpfnb_ns_t, bpfnb_us_t, bpfnb_ms_t,
 *                                          bpfnb_bytes_t from bpfnb/types.h)
 */
#define BPFNB_HIDDEN(_map)                                                  \
	static const char __bpfnb_hidden__##_map[]                           \
		__attribute__((used, section(".bpfnb.meta"))) = #_map
#define BPFNB_UNIT(_map, _type)                                             \
	static const _type __bpfnb_unit__##_map                              \
		__attribute__((used, section(".bpfnb.meta")))

#endif /* __BPFNB_MAPS_H__ */
