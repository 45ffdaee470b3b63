/* bpfnb/compat.h: what programs written for a newer libbpf expect from its headers.
 *
 * Included by bpfnb.h after libbpf's bpf_helpers.h, bpf_tracing.h and
 * bpf_core_read.h, whichever release of them the machine has. It adds
 *   - bpf/bpf_endian.h (bpf_htons, bpf_ntohl... are macros: without the header a
 *     call compiles to an unresolvable extern function);
 *   - macros newer libbpf releases define, each only when the headers lack it.
 */
#ifndef __BPFNB_COMPAT_H__
#define __BPFNB_COMPAT_H__

#include <bpf/bpf_endian.h>

/* Whether a __weak __ksym kfunc or variable exists on the running kernel (libbpf
 * resolves a missing weak ksym to 0, and the verifier drops the dead branch). */
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym) (!!(sym))
#endif

#ifndef __arg_ctx
#define __arg_ctx __attribute__((btf_decl_tag("arg:ctx")))
#endif

#ifndef __arg_nonnull
#define __arg_nonnull __attribute__((btf_decl_tag("arg:nonnull")))
#endif

#endif /* __BPFNB_COMPAT_H__ */
