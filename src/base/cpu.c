/* cpu.c - CPU feature detection, probed once (cpuid + xgetbv so a feature
 * counts only when the OS saves its registers). */
#include <pthread.h>

#include "base/base.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static uint32_t probe(void) {
    uint32_t a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (c & (1u << 20)) f |= QF_CPU_SSE42;
    int osxsave = (c & (1u << 27)) != 0;
    int fma = (c & (1u << 12)) != 0;
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    int ymm_ok = (xcr0 & 0x6) == 0x6;
    int zmm_ok = (xcr0 & 0xe6) == 0xe6;
    if (__get_cpuid_max(0, NULL) < 7) return f;
    __cpuid_count(7, 0, a, b, c, d);
    if (ymm_ok && (b & (1u << 5))) f |= QF_CPU_AVX2;
    if (ymm_ok && fma) f |= QF_CPU_FMA;
    if (zmm_ok && (b & (1u << 16))) f |= QF_CPU_AVX512F;
    if (zmm_ok && (b & (1u << 30))) f |= QF_CPU_AVX512BW;
    if (zmm_ok && (c & (1u << 11))) f |= QF_CPU_AVX512VNNI;
    if (zmm_ok && (c & (1u << 1))) f |= QF_CPU_AVX512VBMI;
    __cpuid_count(7, 1, a, b, c, d);
    if (ymm_ok && (a & (1u << 4))) f |= QF_CPU_AVXVNNI;
    return f;
}
#else
static uint32_t probe(void) { return 0; }
#endif

static uint32_t g_features;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void init_features(void) { g_features = probe(); }

uint32_t qf_cpu_features(void) {
    pthread_once(&g_once, init_features);
    return g_features;
}
