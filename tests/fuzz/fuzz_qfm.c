/* fuzz_qfm.c - libFuzzer target: qf_qfm_load_mem must return an error or a
 * valid graph for any bytes. Checksums are recomputed first (when the table
 * can be located) so mutations reach the structural checks. */
#include <stdlib.h>
#include <string.h>

#include "io/qfm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rd32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    unsigned char *f = malloc(size ? size : 1);
    if (!f) return 0;
    memcpy(f, data, size);
    if (size >= 64) {
        uint32_t n = rd32(f + 20);
        uint64_t tab = rd64(f + 24);
        if (tab <= size && (uint64_t)n * 32 <= size - tab) {
            for (uint32_t i = 0; i < n; i++) {
                unsigned char *e = f + tab + 32 * (uint64_t)i;
                uint64_t off = rd64(e + 8), sz = rd64(e + 16);
                if (off <= size && sz <= size - off) wr32(e + 24, qf_crc32c(0, f + off, sz));
            }
            wr32(f + 40, qf_crc32c(0, f + tab, (size_t)n * 32));
        }
        wr32(f + 60, qf_crc32c(0, f, 60));
    }
    qf_graph *g = NULL;
    char *meta = NULL;
    qf_err err;
    if (qf_qfm_load_mem(f, size, "fuzz.qfm", &g, &meta, &err) == QF_OK) {
        qf_graph_free(g);
        qf_free(meta);
    }
    free(f);
    return 0;
}
