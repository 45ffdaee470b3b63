/* bpfnb.h: bpfnb's helpers for %%bpf cells.
 *
 * Included by the prelude after vmlinux.h and libbpf's bpf_helpers.h,
 * bpf_tracing.h and bpf_core_read.h. Each part lives in bpfnb/<part>.h:
 *   types.h   typedefs that choose how Python decodes a value (syscall, errno, ...)
 *   maps.h    BCC-style map shorthands: BPF_HASH, BPF_ARRAY, BPF_PERCPU_HASH, ...
 *   events.h  ring buffer / perf event array helpers and lost-event counting
 *   hist.h    log2 and linear histograms
 *   compat.h  bpf_endian.h, and macros of newer libbpf headers the machine's may lack
 */
#ifndef __BPFNB_H__
#define __BPFNB_H__

#if __has_include("bpfnb/types.h")
#include "bpfnb/types.h"
#endif
#if __has_include("bpfnb/maps.h")
#include "bpfnb/maps.h"
#endif
#if __has_include("bpfnb/events.h")
#include "bpfnb/events.h"
#endif
#if __has_include("bpfnb/hist.h")
#include "bpfnb/hist.h"
#endif
#if __has_include("bpfnb/compat.h")
#include "bpfnb/compat.h"
#endif

#endif /* __BPFNB_H__ */
