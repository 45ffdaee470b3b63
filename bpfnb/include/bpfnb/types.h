/* bpfnb/types.h: typedefs that choose how bpfnb shows a value in Python.
 *
 * Declare a map key/value, struct field or event field with one of these types and
 * the DataFrame shows something readable instead of a number. The choice is made from
 * the BTF typedef name alone (bpfnb/decoders.py); plain __u32/__u64 stay numbers.
 *
 *   bpfnb_syscall_t   syscall number (x86_64)    -> "getpid"
 *   bpfnb_errno_t     errno, negative or not     -> "ENOENT"
 *   bpfnb_ktime_t     bpf_ktime_get_ns() value   -> wall-clock pandas.Timestamp
 *   bpfnb_ipv4_t      IPv4 in network order      -> "10.0.0.1"
 *   bpfnb_ipv6_t      IPv6 (16 bytes, network)   -> "fe80::1"
 *   bpfnb_stackid_t   bpf_get_stackid() result   -> the number (symbolised later)
 *   bpfnb_ksym_t      kernel text address        -> "do_sys_openat2+0x1c"
 *
 * Needs __u8/__u32/__s32/__u64 (from vmlinux.h or linux/types.h).
 */
#ifndef __BPFNB_TYPES_H__
#define __BPFNB_TYPES_H__

typedef __u32 bpfnb_syscall_t;
typedef __s32 bpfnb_errno_t;
typedef __u64 bpfnb_ktime_t;
typedef __u32 bpfnb_ipv4_t;
typedef __u8 bpfnb_ipv6_t[16];
typedef __s32 bpfnb_stackid_t;
typedef __u64 bpfnb_ksym_t;

#endif /* __BPFNB_TYPES_H__ */
