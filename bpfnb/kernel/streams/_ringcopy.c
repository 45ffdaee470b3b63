/* bpfnb's ring buffer copy loop: the one piece of the consumer written in C.
 *
 * Built as an optional extension (setup.py; a failed build leaves bpfnb on its numpy
 * path) and called through ctypes, without the GIL, by bpfnb.kernel.streams.ringcopy.
 * It walks the committed records of a BPF ring buffer and copies each payload straight
 * into the rows of the stream's store: one pass over the ring, one memcpy per record.
 * The numpy path does the same in two vectorised passes (scan the headers, then copy)
 * and costs about three times the CPU per record (see README, Performance).
 *
 * Ring format (kernel/bpf/ringbuf.c): 8-byte header (u32 length with bit 31 busy and
 * bit 30 discard, u32 page offset), payload, next record at the next multiple of 8;
 * the data area is mapped twice in a row, so a record that wraps is contiguous.
 */
#include <stdint.h>
#include <string.h>

#define BUSY_BIT (1U << 31)
#define DISCARD_BIT (1U << 30)
#define HDR_SIZE 8

/* Copy committed records from position `cons` (up to `prod`) into at most `max_rows`
 * rows of `width` bytes (payloads cut or zero-padded), their lengths into `sizes`.
 * Stops at a busy record, at `prod`, or when the rows are full. Returns the number of
 * records copied; `*pos` receives the position after the last record consumed
 * (discarded records included) and `*discarded` adds the discarded ones skipped.
 * When `publish` is not NULL (the ring's consumer position), the position is stored
 * there every `every` bytes, so producers get space back during a long copy (the
 * records before it are copied already). */
long bpfnb_ring_copy(const uint8_t *data, uint64_t mask, uint64_t cons, uint64_t prod,
		     uint8_t *rows, uint64_t width, uint32_t *sizes, uint64_t max_rows,
		     uint64_t *pos, uint64_t *discarded, uint64_t *publish, uint64_t every)
{
	uint64_t n = 0, published = cons;

	while (cons < prod && n < max_rows) {
		const uint8_t *rec = data + (cons & mask);
		uint32_t hdr = __atomic_load_n((const uint32_t *)rec, __ATOMIC_ACQUIRE);
		uint32_t len = hdr & ~(BUSY_BIT | DISCARD_BIT);
		uint64_t next = cons + ((len + HDR_SIZE + 7) & ~7ULL);

		if (hdr & BUSY_BIT || next > prod)
			break;
		if (hdr & DISCARD_BIT) {
			(*discarded)++;
		} else {
			uint8_t *row = rows + n * width;

			if (len >= width) {
				memcpy(row, rec + HDR_SIZE, width);
			} else {
				memcpy(row, rec + HDR_SIZE, len);
				memset(row + len, 0, width - len);
			}
			sizes[n++] = len;
		}
		cons = next;
		if (publish && cons - published >= every) {
			__atomic_store_n(publish, cons, __ATOMIC_RELEASE);
			published = cons;
		}
	}
	*pos = cons;
	return (long)n;
}
