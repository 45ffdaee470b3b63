/* Baseline for benchmarks/ringbuf.py: a C ring buffer consumer and a getpid producer.
 *
 *   ringbuf_consumer consume MAP_ID SECONDS
 *       Opens the BPF ring buffer with id MAP_ID and consumes it with libbpf's
 *       ring_buffer__poll() for SECONDS seconds (then drains what is left), counting
 *       records; prints "received N".
 *   ringbuf_consumer produce
 *       Prints its pid, waits for a line "SECONDS" on stdin, calls getpid() in a tight
 *       loop for that long, prints "calls N".
 *
 * Built by benchmarks/ringbuf.py with the system compiler against libbpf-dev.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static unsigned long long received;

static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	received++;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int consume(unsigned int map_id, double seconds)
{
	int fd = bpf_map_get_fd_by_id(map_id);
	struct ring_buffer *rb;
	double end;

	if (fd < 0) {
		perror("bpf_map_get_fd_by_id");
		return 1;
	}
	rb = ring_buffer__new(fd, on_record, NULL, NULL);
	if (!rb) {
		perror("ring_buffer__new");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	end = now() + seconds;
	while (now() < end)
		ring_buffer__poll(rb, 100);
	ring_buffer__consume(rb);
	printf("received %llu\n", received);
	ring_buffer__free(rb);
	close(fd);
	return 0;
}

static int produce(void)
{
	double seconds, end;
	unsigned long long calls = 0;

	printf("%d\n", getpid());
	fflush(stdout);
	if (scanf("%lf", &seconds) != 1)
		return 1;
	end = now() + seconds;
	while (1) {
		for (int i = 0; i < 1000; i++)
			syscall(SYS_getpid);
		calls += 1000;
		if (now() >= end)
			break;
	}
	printf("calls %llu\n", calls);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && argv[1][0] == 'c')
		return consume((unsigned int)strtoul(argv[2], NULL, 10), atof(argv[3]));
	if (argc >= 2 && argv[1][0] == 'p')
		return produce();
	fprintf(stderr, "usage: %s consume MAP_ID SECONDS | produce\n", argv[0]);
	return 2;
}
