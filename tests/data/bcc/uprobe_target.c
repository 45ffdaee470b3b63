/* A program whose functions only the tests call: uprobes on them count exactly.
 *
 *     uprobe_target N PATH    calls target_exec() N times, then target_openat(AT_FDCWD, PATH)
 */
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) int target_exec(int i)
{
	__asm__ volatile("" ::: "memory");
	return i + 1;
}

__attribute__((noinline)) int target_openat(int dirfd, const char *path)
{
	__asm__ volatile("" ::: "memory");
	return dirfd + (path[0] != 0);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 0, sum = 0;

	for (int i = 0; i < n; i++)
		sum += target_exec(i);
	if (argc > 2)
		sum += target_openat(-100, argv[2]);
	printf("%d\n", sum);
	return 0;
}
