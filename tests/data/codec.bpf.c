/* Types the codec must read the way real programs store them: byte arrays next to
 * text, addresses in plain integers and arrays (libbpf-tools tcpconnect/tcplife
 * style), execsnoop's NUL-separated argv buffer, open flags and unit typedefs.
 * Self-contained (no vmlinux.h); rebuild with ./rebuild.sh. */
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef __u8 uint8_t;
#include "../../bpfnb/include/bpfnb/types.h"

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

/* u8[N] is bytes, char[N] text, s8[N] small ints. */
struct blob {
	__u8 data[4];
	unsigned char raw[20];
	uint8_t mac[6];
	char name[8];
	__s8 deltas[3];
};

/* How libbpf-tools keep addresses: __u32 (network order), __u8[16], __u32[4],
 * unsigned __int128, or a union of the IPv4 and IPv6 forms. */
struct conn {
	__u32 saddr;
	__u8 saddr4[4];
	__u8 daddr_v6[16];
	__u32 saddr_v6[4];
	unsigned __int128 daddr128;
	union {
		__u32 v4;
		__u8 v6[16];
	} peer;
	__u16 dport;
	__u32 pid;
	__u64 ts_us;
	__u64 delta_ns;
	__u64 rx_bytes;
	__u32 flags;
	char task[16];
};

/* execsnoop's event: argv strings one after the other, each ending with NUL. */
struct exec_event {
	__u32 pid;
	__s32 args_count;
	__u32 args_size;
	char args[64];
};

/* Flags and units chosen by typedef. */
struct open_stat {
	bpfnb_open_flags_t flags;
	bpfnb_ns_t lat;
	bpfnb_us_t wait;
	bpfnb_ms_t slept;
	bpfnb_bytes_t moved;
	bpfnb_ktime_t when;
	bpfnb_syscall_t nr;
	bpfnb_errno_t err;
	__u64 count;
	float ratio;
};

struct {
	__uint(type, 1);
	__type(key, __u32);
	__type(value, struct blob);
	__uint(max_entries, 8);
} blobs SEC(".maps");

struct {
	__uint(type, 1);
	__type(key, struct conn);
	__type(value, struct exec_event);
	__uint(max_entries, 8);
} conns SEC(".maps");

struct {
	__uint(type, 5); /* BPF_MAP_TYPE_PERCPU_HASH */
	__type(key, __u32);
	__type(value, struct open_stat);
	__uint(max_entries, 8);
} stats SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int on_enter(void *ctx)
{
	void *(*lookup)(void *, const void *) = (void *)1;
	__u32 k = 0;
	lookup(&blobs, &k);
	lookup(&stats, &k);
	return lookup(&conns, &k) != 0;
}

char LICENSE[] SEC("license") = "GPL";
