/* Baselines for benchmarks/maps.py: the fastest C reads of a whole map we know.
 *
 *   maps_baseline hash-batch MAP_ID KEY_SIZE VALUE_SIZE ROWS RUNS
 *       Reads every entry of a hash map with ONE BPF_MAP_LOOKUP_BATCH call into key
 *       and value buffers allocated and touched before timing; prints
 *       "rows N median S" (median seconds of RUNS reads).
 *
 *   maps_baseline array-mmap MAP_ID VALUE_SIZE ROWS RUNS
 *       Maps a BPF_F_MMAPABLE array and copies all of its values (slots of
 *       round_up(VALUE_SIZE, 8) bytes) with memcpy into a touched buffer; prints
 *       "rows N median S".
 *
 * Written for bpfnb's benchmarks; built by benchmarks/maps.py with the system C
 * compiler (`cc -O2`), needing only the kernel's UAPI headers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *t, int n)
{
	qsort(t, n, sizeof(*t), cmp);
	return t[n / 2];
}

static int map_fd_by_id(unsigned int id)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_id = id;
	return syscall(__NR_bpf, BPF_MAP_GET_FD_BY_ID, &attr, sizeof(attr));
}

static void *touched(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (p)
		memset(p, 1, size);
	return p;
}

static int hash_batch(int fd, size_t key_size, size_t value_size, size_t rows, int runs)
{
	uint8_t *keys = touched(key_size * rows), *values = touched(value_size * rows);
	double t[64];
	uint64_t batch_out = 0;
	uint32_t got = 0;

	if (!keys || !values)
		return 1;
	for (int r = 0; r < runs; r++) {
		union bpf_attr attr;
		double t0 = now();

		memset(&attr, 0, sizeof(attr));
		attr.batch.map_fd = fd;
		attr.batch.in_batch = 0;
		attr.batch.out_batch = (uint64_t)(uintptr_t)&batch_out;
		attr.batch.keys = (uint64_t)(uintptr_t)keys;
		attr.batch.values = (uint64_t)(uintptr_t)values;
		attr.batch.count = rows;
		if (syscall(__NR_bpf, BPF_MAP_LOOKUP_BATCH, &attr, sizeof(attr)) < 0 &&
		    errno != ENOENT) {
			perror("BPF_MAP_LOOKUP_BATCH");
			return 1;
		}
		t[r] = now() - t0;
		got = attr.batch.count;
	}
	printf("rows %u median %.6f\n", got, median(t, runs));
	return 0;
}

static int array_mmap(int fd, size_t value_size, size_t rows, int runs)
{
	size_t slot = (value_size + 7) & ~(size_t)7, size = slot * rows;
	void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	uint8_t *out = touched(size);
	double t[64];

	if (map == MAP_FAILED || !out) {
		perror("mmap");
		return 1;
	}
	for (int r = 0; r < runs; r++) {
		double t0 = now();

		memcpy(out, map, size);
		t[r] = now() - t0;
	}
	printf("rows %zu median %.6f\n", rows, median(t, runs));
	return 0;
}

int main(int argc, char **argv)
{
	int fd, runs;

	if (argc == 7 && !strcmp(argv[1], "hash-batch")) {
		fd = map_fd_by_id(strtoul(argv[2], NULL, 10));
		runs = atoi(argv[6]);
		if (fd < 0 || runs < 1 || runs > 64)
			return 2;
		return hash_batch(fd, strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
				  strtoul(argv[5], NULL, 10), runs);
	}
	if (argc == 6 && !strcmp(argv[1], "array-mmap")) {
		fd = map_fd_by_id(strtoul(argv[2], NULL, 10));
		runs = atoi(argv[5]);
		if (fd < 0 || runs < 1 || runs > 64)
			return 2;
		return array_mmap(fd, strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10), runs);
	}
	fprintf(stderr,
		"usage: %s hash-batch MAP_ID KEY_SIZE VALUE_SIZE ROWS RUNS | "
		"array-mmap MAP_ID VALUE_SIZE ROWS RUNS\n",
		argv[0]);
	return 2;
}
