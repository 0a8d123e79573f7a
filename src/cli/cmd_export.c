/* cmd_export.c - `qforge export`: a quantized .qfm model to a standard
 * ONNX QDQ model that ONNX Runtime runs with its integer kernels. */
#include <string.h>

#include "cli/cli.h"
#include "io/qfm.h"
#include "quant/qdq_export.h"

static const cli_opt export_opts[] = {
    {"format", 'f', "onnx|c", "output format (default onnx; c: standalone C, not yet available)"},
    {"act-type", 0, "uint8|int8",
     "activation type in the ONNX file (default uint8: ONNX Runtime fuses it into integer "
     "kernels on x86; int8 runs too)"},
    {"opset", 0, "N", "ONNX opset to declare (default 13)"},
    {"output", 'o', "OUT", "where to write"},
};

static int export_run(const cli_args *a) {
    const char *out = cli_get(a, "output");
    if (!out) return cli_usage_error(a->cmd, "missing -o OUT");
    const char *fmt = cli_get(a, "format") ? cli_get(a, "format") : "onnx";
    if (strcmp(fmt, "c") == 0) {
        cli_error("export --format c: standalone C export is not implemented yet");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(fmt, "onnx") != 0)
        return cli_usage_error(a->cmd, "--format must be onnx or c, not '%s'", fmt);
    qf_qdq_export_options o;
    qf_qdq_export_options_init(&o);
    o.act_type = QF_QDQ_ACT_UINT8;
    const char *at = cli_get(a, "act-type");
    if (at) {
        if (strcmp(at, "uint8") == 0)
            o.act_type = QF_QDQ_ACT_UINT8;
        else if (strcmp(at, "int8") == 0)
            o.act_type = QF_QDQ_ACT_INT8;
        else
            return cli_usage_error(a->cmd, "--act-type must be uint8 or int8, not '%s'", at);
    }
    long long opset;
    if (!cli_get_int(a, "opset", 10, 21, 13, &opset)) return CLI_EXIT_USAGE;
    o.opset = (int)opset;
    qf_err e = {0};
    qf_graph *g = NULL;
    qf_status st = qf_qfm_load(a->pos[0], &g, NULL, &e);
    if (st) return cli_fail(&e, st);
    st = qf_qdq_export(g, out, &o, &e);
    qf_graph_free(g);
    if (st) return cli_fail(&e, st);
    printf("wrote %s (ONNX QDQ, %s activations, opset %d or the higher one its nodes need)\n", out,
           o.act_type == QF_QDQ_ACT_UINT8 ? "uint8" : "int8", o.opset);
    return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_export = {
    .name = "export",
    .summary = "export a quantized .qfm model to ONNX (QDQ) for other runtimes",
    .usage = "MODEL.qfm --format onnx -o OUT.onnx",
    .description =
        "Writes QuantizeLinear/DequantizeLinear around each integer op with int8 weights and\n"
        "per-channel scales, which ONNX Runtime fuses into its integer kernels. Outputs agree\n"
        "with qforge's integer runtime to within one quantization step where those kernels\n"
        "are exact: on x86 CPUs without VNNI (AVX-512 VNNI or AVX-VNNI), ONNX Runtime's fused\n"
        "int8 kernels add byte products in saturating 16-bit pairs (vpmaddubsw), so layers\n"
        "with large weights may differ by many steps there (qforge's own kernels stay exact).",
    .opts = export_opts,
    .n_opts = (int)(sizeof export_opts / sizeof export_opts[0]),
    .min_pos = 1,
    .max_pos = 1,
    .example = "qforge export model.qfm --format onnx -o model.qdq.onnx",
    .run = export_run,
};
