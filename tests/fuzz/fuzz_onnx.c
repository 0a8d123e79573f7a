/* fuzz_onnx.c - libFuzzer target: the ONNX importer must return an error or
 * a valid graph for any byte string, and a valid graph must plan and run on
 * zero-filled inputs without memory errors. Build: make fuzz. */
#include <stdlib.h>
#include <string.h>

#include "io/onnx.h"
#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    qf_graph *g = NULL;
    qf_err err;
    if (qf_onnx_import(data, size, "fuzz.onnx", NULL, &g, &err) != QF_OK) return 0;
    qf_model *m = NULL;
    if (qf_model_from_graph(g, "fuzz.onnx", &m, &err) != QF_OK) {
        qf_graph_free(g);
        return 0;
    }
    /* bind small zero inputs of the declared shapes (dynamic dims -> 1) */
    int n = qf_model_num_inputs(m);
    if (n <= 8) {
        qf_tensor in[8];
        void *bufs[8] = {0};
        bool ok = true;
        for (int i = 0; i < n && ok; i++) {
            if (qf_model_input_info(m, i, &in[i]) != QF_OK) ok = false;
            for (int k = 0; ok && k < in[i].rank; k++) {
                if (in[i].dims[k] < 0) in[i].dims[k] = 1;
                if (in[i].dims[k] > 64) ok = false;
            }
            int64_t numel = ok ? qf_tensor_numel(&in[i]) : -1;
            size_t es = qf_dtype_size(in[i].dtype);
            if (numel < 0 || numel > 65536 || es == 0) ok = false;
            if (ok) bufs[i] = in[i].data = calloc((size_t)numel + 1, es);
        }
        if (ok) {
            qf_session *s = NULL;
            if (qf_session_create(m, NULL, &s, &err) == QF_OK) {
                qf_tensor out[4];
                int no = qf_model_num_outputs(m);
                (void)qf_session_run(s, in, n, out, no < 4 ? no : 4, &err);
            }
            qf_session_free(s);
        }
        for (int i = 0; i < n; i++) free(bufs[i]);
    }
    qf_model_free(m);
    return 0;
}
