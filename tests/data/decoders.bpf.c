/* Decoder typedefs of bpfnb/include/bpfnb/types.h surviving into BTF.
 * Self-contained (no vmlinux.h); rebuild with ./rebuild.sh. */
typedef unsigned char __u8;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
#include "../../bpfnb/include/bpfnb/types.h"

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

struct event {
	bpfnb_syscall_t nr;
	bpfnb_errno_t err;
	bpfnb_ktime_t ts;
	bpfnb_ipv4_t saddr;
	bpfnb_ipv6_t daddr;
	bpfnb_stackid_t stack;
	bpfnb_ksym_t func;
	__u32 plain;
};

struct {
	__uint(type, 1);
	__type(key, bpfnb_syscall_t);
	__type(value, __u64);
	__uint(max_entries, 512);
} by_syscall SEC(".maps");

struct {
	__uint(type, 1);
	__type(key, __u32);
	__type(value, struct event);
	__uint(max_entries, 16);
} last_event SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int on_enter(void *ctx)
{
	void *(*lookup)(void *, const void *) = (void *)1;
	__u32 k = 0;
	lookup(&by_syscall, &k);
	return lookup(&last_event, &k) != 0;
}

char LICENSE[] SEC("license") = "GPL";
