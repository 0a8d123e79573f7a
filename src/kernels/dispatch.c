/* dispatch.c - ISA detection and the QF_ISA override (dispatch.h). */
#include "kernels/dispatch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

static const char *const k_names[QF_ISA_COUNT] = {"scalar", "avx2", "avx512vnni"};

const char *qf_isa_name(qf_isa isa) {
    return (int)isa >= 0 && isa < QF_ISA_COUNT ? k_names[isa] : "?";
}

/* AVX-512VL is not in qf_cpu_features; every VNNI part has it, but check. */
static bool has_avx512vl(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (__get_cpuid_max(0, NULL) < 7) return false;
    __cpuid_count(7, 0, a, b, c, d);
    return (b & (1u << 31)) != 0;
#else
    return false;
#endif
}

/* cpuid is slow (a VM exit under virtualization): probe every ISA once. */
static bool g_supported[QF_ISA_COUNT];
static pthread_once_t g_probe_once = PTHREAD_ONCE_INIT;
static bool probe_isa(qf_isa isa);
static void probe_all(void) {
    for (int i = 0; i < QF_ISA_COUNT; i++) g_supported[i] = probe_isa((qf_isa)i);
}

bool qf_isa_supported(qf_isa isa) {
    if ((int)isa < 0 || isa >= QF_ISA_COUNT) return false;
    pthread_once(&g_probe_once, probe_all);
    return g_supported[isa];
}

static bool probe_isa(qf_isa isa) {
#if defined(__x86_64__)
    const uint32_t f = qf_cpu_features();
    switch (isa) {
    case QF_ISA_SCALAR: return true;
    case QF_ISA_AVX2: return (f & QF_CPU_AVX2) != 0;
    case QF_ISA_AVX512VNNI: {
        const uint32_t need = QF_CPU_AVX2 | QF_CPU_AVX512F | QF_CPU_AVX512BW | QF_CPU_AVX512VNNI;
        return (f & need) == need && has_avx512vl();
    }
    default: return false;
    }
#else
    return isa == QF_ISA_SCALAR;
#endif
}

qf_isa qf_isa_best(void) {
    for (int i = QF_ISA_COUNT - 1; i > 0; i--)
        if (qf_isa_supported((qf_isa)i)) return (qf_isa)i;
    return QF_ISA_SCALAR;
}

qf_isa qf_isa_resolve(const char *request, char *msg, size_t msg_len) {
    if (msg && msg_len) msg[0] = 0;
    qf_isa best = qf_isa_best();
    if (!request || !request[0]) return best;
    for (int i = 0; i < QF_ISA_COUNT; i++) {
        if (strcmp(request, k_names[i]) != 0) continue;
        if (qf_isa_supported((qf_isa)i)) return (qf_isa)i;
        if (msg && msg_len)
            snprintf(msg, msg_len, "QF_ISA=%s: this CPU cannot run %s; using %s", request,
                     k_names[i], k_names[best]);
        return best;
    }
    if (msg && msg_len)
        snprintf(msg, msg_len, "QF_ISA=%s: unknown (scalar, avx2, avx512vnni); using %s",
                 request, k_names[best]);
    return best;
}

static qf_isa g_active;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_active(void) {
    char msg[160];
    g_active = qf_isa_resolve(getenv("QF_ISA"), msg, sizeof msg);
    if (msg[0]) qf_log(QF_LOG_WARN, "%s", msg);
}

qf_isa qf_isa_active(void) {
    pthread_once(&g_once, init_active);
    return g_active;
}
