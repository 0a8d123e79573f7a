/* dispatch.h - which instruction set the integer kernels use.
 *
 * The CPU is probed once (base/cpu.c: cpuid + xgetbv, so a vector unit only
 * counts when the OS saves its registers). qf_isa_active() is the best ISA
 * available, or the one named by the environment variable
 * QF_ISA=scalar|avx2|avx512vnni (for tests and benchmarks). A name the CPU
 * cannot run, or an unknown name, falls back to the best available with a
 * warning through qf_log. The integer results are identical for every ISA. */
#ifndef QF_KERNELS_DISPATCH_H
#define QF_KERNELS_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

typedef enum qf_isa {
    QF_ISA_SCALAR = 0,     /* portable C (kernels/portable) */
    QF_ISA_AVX2 = 1,       /* AVX2 int8 kernels (kernels/x86) */
    QF_ISA_AVX512VNNI = 2, /* AVX-512 F/BW/VL + VNNI int8 kernels (kernels/x86) */
    QF_ISA_COUNT
} qf_isa;

/* "scalar", "avx2", "avx512vnni"; "?" for anything else. */
const char *qf_isa_name(qf_isa isa);
/* True when this CPU and OS can run isa (scalar always). */
bool qf_isa_supported(qf_isa isa);
/* The fastest supported ISA. */
qf_isa qf_isa_best(void);
/* The ISA a QF_ISA value asks for: NULL or "" -> best; a supported name ->
 * that ISA; an unknown or unsupported name -> best, with a one-line reason
 * written to msg (msg_len > 0; msg[0] == 0 when there is nothing to say). */
qf_isa qf_isa_resolve(const char *request, char *msg, size_t msg_len);
/* qf_isa_resolve(getenv("QF_ISA")) computed once (its warning logged once). */
qf_isa qf_isa_active(void);

#endif /* QF_KERNELS_DISPATCH_H */
