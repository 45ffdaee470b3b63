/* Every BTF kind bpfnb decodes, without vmlinux.h or libbpf headers so it builds
 * anywhere with clang. Rebuild the committed object with ./rebuild.sh. */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;
typedef _Bool bool;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

/* typedef chain: u32 <- pid_t2 <- my_pid_t */
typedef u32 pid_t2;
typedef pid_t2 my_pid_t;

enum color { RED, GREEN = 5, BLUE = 7 };
enum sign { NEG = -2, ZERO = 0, POS = 3 };
enum big { SMALL = 1, HUGE = 0x100000000ULL };
enum tiny : unsigned char { T0, T1, T2 };

struct fwd_only;

struct key_t {
	u32 pid;
	char comm[16];
};

struct inner {
	u16 a;
	u64 b;
};

struct bits {
	unsigned int lo : 3;
	unsigned int mid : 9;
	int neg : 4;
	u8 flag : 1;
	u64 wide : 40;
};

union num {
	u32 u;
	float f;
	u8 bytes[4];
};

struct everything {
	u8 c8;                  /* 0 */
	s16 s;                  /* 2 */
	s32 i;                  /* 4 */
	u64 big;                /* 8 */
	s64 sbig;               /* 16 */
	bool ok;                /* 24 */
	char name[8];           /* 25 */
	unsigned char uname[4]; /* 33 */
	signed char sname[3];   /* 37 */
	enum color color;       /* 40 */
	enum sign sign;         /* 44 */
	enum big bigenum;       /* 48 */
	struct inner in;        /* 56 (a), 64 (b) */
	union num n;            /* 72 */
	u32 arr[3];             /* 76 */
	void *ptr;              /* 88 */
	struct fwd_only *fwd;   /* 96 */
	const volatile u32 cv;  /* 104 */
	my_pid_t pid;           /* 108 */
	float fl;               /* 112 */
	double dbl;             /* 120 */
	struct bits bf;         /* 128 */
	enum tiny tiny;         /* 136 */
	struct {
		u16 x;
		u16 y;
	} anon;                 /* 138 */
	union {
		u32 alias1;
		s32 alias2;
	};                      /* 144 */
	u16 matrix[2][2];       /* 148 */
	int __attribute__((btf_decl_tag("tagged"))) tagged;          /* 156 */
	int __attribute__((btf_type_tag("user"))) *uptr;             /* 160 */
	int *restrict rptr;                                          /* 168 */
};

struct {
	__uint(type, 1); /* BPF_MAP_TYPE_HASH */
	__type(key, struct key_t);
	__type(value, struct everything);
	__uint(max_entries, 128);
	__uint(map_flags, 1); /* BPF_F_NO_PREALLOC */
} by_key SEC(".maps");

struct {
	__uint(type, 6); /* BPF_MAP_TYPE_PERCPU_ARRAY */
	__type(key, u32);
	__type(value, u64);
	__uint(max_entries, 4);
} per_cpu SEC(".maps");

struct {
	__uint(type, 2); /* BPF_MAP_TYPE_ARRAY */
	__uint(key_size, 4);
	__uint(value_size, 12);
	__uint(max_entries, 2);
} sized SEC(".maps");

struct {
	__uint(type, 27); /* BPF_MAP_TYPE_RINGBUF */
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, 1);
	__type(key, enum color);
	__type(value, union num);
	__uint(max_entries, 8);
} colors SEC(".maps");

struct {
	__uint(type, 1);
	__type(key, my_pid_t);
	__type(value, struct bits);
	__uint(max_entries, 8);
} bitmap SEC(".maps");

const volatile u32 target_pid = 0;
const volatile char pattern[8] = "abc";
u64 counter = 7;
struct key_t last_key;
static volatile s32 hidden;

static __attribute__((noinline)) int helper(int x)
{
	return x * 2 + hidden;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	void *(*lookup)(void *, const void *) = (void *)1;
	struct key_t k = {};
	k.pid = target_pid + pattern[0];
	struct everything *e = lookup(&by_key, &k);
	u32 zero = 0;
	lookup(&per_cpu, &zero);
	lookup(&sized, &zero);
	lookup(&events, &zero);
	lookup(&colors, &zero);
	lookup(&bitmap, &zero);
	counter++;
	last_key = k;
	return e ? helper(e->i) : 0;
}

SEC("tracepoint/syscalls/sys_exit_getpid")
int on_exit_a(void *ctx)
{
	return helper(1);
}

SEC("tracepoint/syscalls/sys_exit_getpid")
int on_exit_b(void *ctx)
{
	return 0;
}

SEC("fentry/do_nanosleep")
int second_section(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
