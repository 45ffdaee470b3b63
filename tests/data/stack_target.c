/* A process whose stacks the tests know (built by tests/kernel/test_stacks.py).
 *
 *   stack_target recurse DEPTH N   main -> bpfnb_outer_frame -> bpfnb_recurse x (DEPTH+1)
 *                                  -> bpfnb_leaf_syscall, which makes N getpid syscalls
 *                                  with the syscall instruction itself (so the innermost
 *                                  user frame is bpfnb_leaf_syscall, not libc)
 *   stack_target spin SECONDS      spins in bpfnb_unique_spin_9f3c for SECONDS
 *
 * It prints its pid, waits for a line on stdin, does the work, prints "done", and
 * exits at the next line (or end of file) on stdin, so its mappings can be read. Built with frame pointers and without inlining or sibling calls, so
 * bpf_get_stackid(BPF_F_USER_STACK) walks every frame.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile long sink;
static volatile sig_atomic_t stop;

__attribute__((noinline)) long bpfnb_leaf_syscall(long n)
{
	long ret = 0;

	for (long i = 0; i < n; i++) {
		__asm__ volatile("syscall" : "=a"(ret) : "0"(39L) : "rcx", "r11", "memory");
		sink += ret;
	}
	return sink;
}

__attribute__((noinline)) long bpfnb_recurse(int depth, long n)
{
	long r = depth == 0 ? bpfnb_leaf_syscall(n) : bpfnb_recurse(depth - 1, n);

	sink += r;
	return r + 1;
}

__attribute__((noinline)) long bpfnb_outer_frame(int depth, long n)
{
	long r = bpfnb_recurse(depth, n);

	sink += r;
	return r;
}

static void on_alarm(int sig)
{
	(void)sig;
	stop = 1;
}

__attribute__((noinline)) void bpfnb_unique_spin_9f3c(unsigned seconds)
{
	long i = 0;

	signal(SIGALRM, on_alarm);
	alarm(seconds);
	while (!stop)
		sink += ++i * 7;
}

int main(int argc, char **argv)
{
	char line[64];

	if (argc < 3)
		return 2;
	printf("%d\n", getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	if (strcmp(argv[1], "recurse") == 0 && argc == 4)
		bpfnb_outer_frame(atoi(argv[2]), atol(argv[3]));
	else if (strcmp(argv[1], "spin") == 0)
		bpfnb_unique_spin_9f3c((unsigned)atoi(argv[2]));
	else
		return 2;
	printf("done\n");
	fflush(stdout);
	(void)!fgets(line, sizeof(line), stdin);
	return 0;
}
