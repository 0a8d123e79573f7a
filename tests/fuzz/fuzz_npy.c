/* fuzz_npy.c - libFuzzer target: the NPY decoder must return an error or a
 * well-formed tensor for any bytes. Build: make fuzz. */
#include <stdlib.h>

#include "io/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qf_tensor t;
    qf_err err;
    if (qf_npy_decode(data, size, "fuzz.npy", &t, &err) != QF_OK) return 0;
    /* touch every byte so a wrong size shows up under ASan */
    int64_t n = qf_tensor_numel(&t);
    if (n < 0) abort(); /* a decoder must never return an unsized tensor */
    size_t bytes = (size_t)n * qf_dtype_size(t.dtype);
    volatile unsigned char sink = 0;
    for (size_t i = 0; i < bytes; i++) sink ^= ((const unsigned char *)t.data)[i];
    (void)sink;
    qf_free_aligned(t.data);
    return 0;
}
