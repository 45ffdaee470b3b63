/* bpfnb/types.h: typedefs that choose how bpfnb shows a value in Python.
 *
 * Declare a map key/value, struct field or event field with one of these types and
 * the DataFrame shows something readable instead of a number. The choice is made from
 * the BTF typedef name alone (bpfnb/codec/decoders.py); plain __u32/__u64 stay numbers.
 * Programs that keep such values in plain types can choose the same decoders from
 * Python by name (Codec.with_decoders: "ipv4", "ipv6", "argv", "open_flags", ...).
 *
 *   bpfnb_syscall_t     syscall number (x86_64)    -> "getpid"
 *   bpfnb_errno_t       errno, negative or not     -> "ENOENT"
 *   bpfnb_ktime_t       bpf_ktime_get_ns() value   -> wall-clock pandas.Timestamp
 *   bpfnb_ipv4_t        IPv4 in network order      -> "10.0.0.1"
 *   bpfnb_ipv6_t        IPv6 (16 bytes, network)   -> "fe80::1"
 *   bpfnb_stackid_t     bpf_get_stackid() result   -> the number (symbolised later)
 *   bpfnb_ksym_t        kernel text address        -> "do_sys_openat2+0x1c"
 *   bpfnb_open_flags_t  open(2) flags (x86_64)     -> "O_WRONLY|O_CREAT|O_CLOEXEC"
 *
 * Units: these stay numbers (sums and rates still work) but the column carries a unit
 * (Codec.units) and a role (Codec.column_roles) for the dashboard:
 *
 *   bpfnb_ns_t, bpfnb_us_t, bpfnb_ms_t   durations in ns, us, ms   (role "duration")
 *   bpfnb_bytes_t                        a number of bytes         (role "counter")
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
typedef __u32 bpfnb_open_flags_t;

typedef __u64 bpfnb_ns_t;
typedef __u64 bpfnb_us_t;
typedef __u64 bpfnb_ms_t;
typedef __u64 bpfnb_bytes_t;

#endif /* __BPFNB_TYPES_H__ */
