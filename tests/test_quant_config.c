/* test_quant_config.c - the JSON quantization config: parsing, defaults,
 * validation errors, and resolution onto a graph's layers. */
#include "ir/graph.h"
#include "ir/ops.h"
#include "qtest.h"
#include "quant/config.h"

static qf_qconfig cfg; /* large: keep off the stack */

static qf_status parse(const char *json, qf_err *e) {
    qf_qconfig_default(&cfg);
    return qf_qconfig_parse_json(&cfg, json, strlen(json), "c.json", e);
}

/* conv1 -> relu -> conv2 -> flatten -> fc (Gemm) -> mm (MatMul const) */
static qf_graph *small_graph(void) {
    qf_graph *g = qf_graph_create();
    g->source_path = "net.onnx";
    int64_t xd[4] = {1, 1, 4, 4}, w1d[4] = {2, 1, 3, 3}, w2d[4] = {2, 2, 1, 1}, fd[2] = {3, 32},
            md[2] = {3, 2};
    static float w1[18], w2[4], fw[96], mw[6];
    int x = qf_graph_add_value(g, "x", QF_DT_F32, 4, xd);
    qf_graph_add_input(g, x);
    qf_tensor t1 = {QF_DT_F32, 4, {2, 1, 3, 3}, w1}, t2 = {QF_DT_F32, 4, {2, 2, 1, 1}, w2},
              t3 = {QF_DT_F32, 2, {3, 32}, fw}, t4 = {QF_DT_F32, 2, {3, 2}, mw};
    (void)w1d, (void)w2d, (void)fd, (void)md;
    int v1 = qf_graph_add_value(g, "w1", QF_DT_F32, 0, NULL);
    int v2 = qf_graph_add_value(g, "w2", QF_DT_F32, 0, NULL);
    int v3 = qf_graph_add_value(g, "fw", QF_DT_F32, 0, NULL);
    int v4 = qf_graph_add_value(g, "mw", QF_DT_F32, 0, NULL);
    qf_graph_set_const(g, v1, &t1, NULL);
    qf_graph_set_const(g, v2, &t2, NULL);
    qf_graph_set_const(g, v3, &t3, NULL);
    qf_graph_set_const(g, v4, &t4, NULL);
    int a = qf_graph_add_value(g, "a", 0, -1, NULL), b = qf_graph_add_value(g, "b", 0, -1, NULL),
        c = qf_graph_add_value(g, "c", 0, -1, NULL), d = qf_graph_add_value(g, "d", 0, -1, NULL),
        f = qf_graph_add_value(g, "f", 0, -1, NULL), y = qf_graph_add_value(g, "y", 0, -1, NULL);
    int i1[2] = {x, v1}, i2[2] = {b, v2}, i3[2] = {d, v3}, i4[2] = {f, v4};
    qf_attr tb = {.name = "transB", .type = QF_ATTR_INT, .i = 1};
    qf_graph_add_node(g, "conv1", "Conv", "", 13, i1, 2, &a, 1, NULL, 0);
    qf_graph_add_node(g, "relu", "Relu", "", 13, &a, 1, &b, 1, NULL, 0);
    qf_graph_add_node(g, "conv2", "Conv", "", 13, i2, 2, &c, 1, NULL, 0);
    qf_graph_add_node(g, "flat", "Flatten", "", 13, &c, 1, &d, 1, NULL, 0);
    qf_graph_add_node(g, "fc", "Gemm", "", 13, i3, 2, &f, 1, &tb, 1);
    qf_graph_add_node(g, "mm", "MatMul", "", 13, i4, 2, &y, 1, NULL, 0);
    qf_graph_add_output(g, y);
    return g;
}

static void defaults_and_full_config(void) {
    qf_err e;
    CHECK_OK(parse("{}", &e));
    CHECK_EQ_INT(cfg.default_w_bits, 8);
    CHECK_EQ_INT(cfg.default_act_bits, 8);
    CHECK(cfg.per_channel && cfg.symmetric_weights);
    CHECK(cfg.calib == QF_CALIB_MINMAX && cfg.requant == QF_REQUANT_FP32);
    CHECK(cfg.rounding == QF_ROUND_NEAREST && cfg.gptq_samples == 256);
    CHECK(!cfg.reduce_range);
    CHECK_OK(parse("{\"reduce_range\": true}", &e));
    CHECK(cfg.reduce_range);
    CHECK_OK(parse("{\"rounding\": \"gptq\", \"gptq_samples\": 0}", &e));
    CHECK(cfg.rounding == QF_ROUND_GPTQ && cfg.gptq_samples == 0);
    CHECK_OK(parse("{\"num_bits\": {\"default\": 4, \"conv1\": 8}, \"per_channel\": false,"
                   " \"symmetric\": false, \"calibration\": \"entropy\", \"percentile\": 99.9,"
                   " \"requant\": \"fixed\", \"act_bits\": {\"fc\": 16}}",
                   &e));
    CHECK_EQ_INT(cfg.default_w_bits, 4);
    CHECK_EQ_INT(cfg.n_w, 1);
    CHECK(strcmp(cfg.w[0].name, "conv1") == 0 && cfg.w[0].bits == 8);
    CHECK(!cfg.per_channel && !cfg.symmetric_weights);
    CHECK(cfg.calib == QF_CALIB_ENTROPY && cfg.requant == QF_REQUANT_FIXED);
    CHECK_NEAR(cfg.percentile, 99.9, 1e-4);
    CHECK_EQ_INT(cfg.n_act, 1);
    CHECK_EQ_INT(cfg.act[0].bits, 16);
}

static void resolve_list_and_names(void) {
    qf_graph *g = small_graph();
    int wb[6], ab[6];
    qf_err e;
    CHECK_OK(parse("{\"num_bits\": [8, 4, 2, 8]}", &e));
    CHECK_MSG(qf_qconfig_resolve(&cfg, g, "c.json", wb, ab, &e) == QF_OK, "%s", e.msg);
    int expect[6] = {8, 0, 4, 0, 2, 8};
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(wb[i], expect[i]);
    CHECK_OK(parse("{\"num_bits\": {\"default\": 4, \"mm\": 8}, \"act_bits\": {\"fc\": 16}}", &e));
    CHECK_OK(qf_qconfig_resolve(&cfg, g, "c.json", wb, ab, &e));
    int expect2[6] = {4, 0, 4, 0, 4, 8};
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(wb[i], expect2[i]);
    CHECK_EQ_INT(ab[4], 16);
    CHECK_EQ_INT(ab[0], 8);
    /* reduce_range caps every layer at 7 bits, whatever set it */
    CHECK_OK(parse("{\"num_bits\": {\"default\": 8, \"conv2\": 3}, \"reduce_range\": true}", &e));
    CHECK_OK(qf_qconfig_resolve(&cfg, g, "c.json", wb, ab, &e));
    int expect3[6] = {7, 0, 3, 0, 7, 7};
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(wb[i], expect3[i]);
    CHECK_EQ_INT(ab[0], 8); /* activations keep theirs */
    /* wrong list length, unknown layer, non-layer name */
    CHECK_OK(parse("{\"num_bits\": [8, 4]}", &e));
    CHECK(qf_qconfig_resolve(&cfg, g, "c.json", wb, ab, &e) == QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "2 values") && strstr(e.msg, "4 quantizable layers") &&
          strstr(e.msg, "conv1, conv2, fc, mm"));
    CHECK_OK(parse("{\"num_bits\": {\"conv9\": 4}}", &e));
    CHECK(qf_qconfig_resolve(&cfg, g, "c.json", wb, ab, &e) == QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "c.json") && strstr(e.msg, "'conv9' does not exist"));
    CHECK_OK(parse("{\"num_bits\": {\"relu\": 4}}", &e));
    CHECK(qf_qconfig_resolve(&cfg, g, "c.json", wb, ab, &e) == QF_ERR_INVALID_ARG);
    CHECK(strstr(e.msg, "not a quantizable layer"));
    qf_graph_free(g);
}

static void bad_configs(void) {
    static const struct {
        const char *json, *needle;
    } cases[] = {
        {"{\"num_bits\": 9}", "2..8"},
        {"{\"num_bits\": 1}", "2..8"},
        {"{\"num_bits\": [8, 4.5]}", "[1]"},
        {"{\"num_bits\": {\"conv1\": 0}}", "conv1"},
        {"{\"num_bits\": \"8\"}", "number, a list or an object"},
        {"{\"act_bits\": 12}", "8 or 16"},
        {"{\"act_bits\": [8]}", "cannot be a list"},
        {"{\"per_channel\": 1}", "true or false"},
        {"{\"reduce_range\": \"yes\"}", "\"reduce_range\" must be true or false"},
        {"{\"calibration\": \"kl\"}", "minmax, percentile, entropy or mse"},
        {"{\"percentile\": 101}", "(50, 100]"},
        {"{\"requant\": \"int\"}", "fp32"},
        {"{\"rounding\": \"adaround\"}", "\"nearest\" or \"gptq\""},
        {"{\"gptq_samples\": -1}", "whole number"},
        {"{\"gptq_samples\": 2.5}", "whole number"},
        {"{\"num_bitz\": 8}", "unknown key \"num_bitz\""},
        {"[8, 4]", "JSON object"},
        {"{\"num_bits\": [8,", "invalid JSON"},
        {"", "invalid JSON"},
    };
    for (size_t i = 0; i < QF_ARRAY_LEN(cases); i++) {
        qf_err e;
        e.msg[0] = 0;
        qf_status s = parse(cases[i].json, &e);
        CHECK_MSG(s != QF_OK, "accepted %s", cases[i].json);
        CHECK_MSG(strstr(e.msg, "c.json") && strstr(e.msg, cases[i].needle), "%s -> %s",
                  cases[i].json, e.msg);
    }
}

QT_MAIN(QT_CASE(defaults_and_full_config), QT_CASE(resolve_list_and_names), QT_CASE(bad_configs))
