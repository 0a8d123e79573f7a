/* config.c - parse and resolve the quantization config (see config.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ops.h"
#include "quant/config.h"

void qf_qconfig_default(qf_qconfig *c) {
    memset(c, 0, sizeof *c);
    c->default_w_bits = 8;
    c->default_act_bits = 8;
    c->per_channel = true;
    c->symmetric_weights = true;
    c->calib = QF_CALIB_MINMAX;
    c->percentile = 99.99f;
    c->requant = QF_REQUANT_FP32;
    c->rounding = QF_ROUND_NEAREST;
    c->gptq_samples = 256;
}

static const char *const calib_names[] = {"minmax", "percentile", "entropy", "mse"};

const char *qf_calib_method_name(qf_calib_method m) {
    if ((unsigned)m >= QF_ARRAY_LEN(calib_names)) return "?";
    return calib_names[m];
}

qf_status qf_calib_method_parse(const char *s, qf_calib_method *out, qf_err *err) {
    for (size_t i = 0; i < QF_ARRAY_LEN(calib_names); i++)
        if (strcmp(s, calib_names[i]) == 0) {
            *out = (qf_calib_method)i;
            return QF_OK;
        }
    return qf_errf(err, QF_ERR_INVALID_ARG,
                   "unknown calibration method '%s' (use minmax, percentile, entropy or mse)", s);
}

/* An integer JSON number with no fractional part, within [lo, hi]. */
static bool json_int_in(const cJSON *j, int lo, int hi, int *out) {
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= lo && v <= hi) || v != floor(v)) return false;
    *out = (int)v;
    return true;
}

static qf_status parse_bits_map(const cJSON *j, const char *path, const char *key, int lo, int hi,
                                int *dflt, qf_qconfig_entry *entries, int *n, bool *is_list,
                                qf_err *err) {
    *n = 0;
    if (is_list) *is_list = false;
    if (cJSON_IsNumber(j)) {
        if (!json_int_in(j, lo, hi, dflt))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: \"%s\": bits must be an integer in %d..%d",
                           path, key, lo, hi);
        return QF_OK;
    }
    if (cJSON_IsArray(j)) {
        if (!is_list)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: \"%s\" cannot be a list", path, key);
        *is_list = true;
        const cJSON *it;
        cJSON_ArrayForEach(it, j) {
            if (*n >= QF_QCONFIG_MAX_LAYERS)
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: \"%s\": more than %d entries", path,
                               key, QF_QCONFIG_MAX_LAYERS);
            if (!json_int_in(it, lo, hi, &entries[*n].bits))
                return qf_errf(err, QF_ERR_INVALID_ARG,
                               "%s: \"%s\"[%d]: bits must be an integer in %d..%d", path, key, *n,
                               lo, hi);
            entries[*n].name[0] = 0;
            (*n)++;
        }
        return QF_OK;
    }
    if (cJSON_IsObject(j)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, j) {
            int b;
            if (!json_int_in(it, lo, hi, &b))
                return qf_errf(err, QF_ERR_INVALID_ARG,
                               "%s: \"%s\".\"%s\": bits must be an integer in %d..%d", path, key,
                               it->string, lo, hi);
            if (strcmp(it->string, "default") == 0) {
                *dflt = b;
                continue;
            }
            if (*n >= QF_QCONFIG_MAX_LAYERS)
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: \"%s\": more than %d entries", path,
                               key, QF_QCONFIG_MAX_LAYERS);
            if (strlen(it->string) >= sizeof entries[0].name)
                return qf_errf(err, QF_ERR_INVALID_ARG, "%s: \"%s\": layer name too long", path,
                               key);
            snprintf(entries[*n].name, sizeof entries[0].name, "%s", it->string);
            entries[*n].bits = b;
            (*n)++;
        }
        return QF_OK;
    }
    return qf_errf(err, QF_ERR_INVALID_ARG, "%s: \"%s\" must be a number, a list or an object",
                   path, key);
}

qf_status qf_qconfig_parse_json(qf_qconfig *c, const char *text, size_t len, const char *path,
                                qf_err *err) {
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = (at && at >= text && at <= text + len) ? (long)(at - text) : -1;
        return qf_errf(err, QF_ERR_FORMAT, "%s: invalid JSON near byte %ld", path, off);
    }
    qf_status st = QF_OK;
    if (!cJSON_IsObject(root)) {
        st = qf_errf(err, QF_ERR_FORMAT, "%s: the config must be a JSON object", path);
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, root) {
        const char *k = it->string;
        if (strcmp(k, "num_bits") == 0 || strcmp(k, "weight_bits") == 0) {
            st = parse_bits_map(it, path, k, 2, 8, &c->default_w_bits, c->w, &c->n_w, &c->w_list,
                                err);
        } else if (strcmp(k, "act_bits") == 0 || strcmp(k, "activation_bits") == 0) {
            /* 2..8 (int8 containers clamped to the narrower range) or 16 */
            st = parse_bits_map(it, path, k, 2, 16, &c->default_act_bits, c->act, &c->n_act, NULL,
                                err);
            if (!st && c->default_act_bits > 8 && c->default_act_bits != 16)
                st = qf_errf(err, QF_ERR_INVALID_ARG, "%s: activation bits must be 2..8 or 16",
                             path);
            for (int i = 0; !st && i < c->n_act; i++)
                if (c->act[i].bits > 8 && c->act[i].bits != 16)
                    st = qf_errf(err, QF_ERR_INVALID_ARG,
                                 "%s: \"%s\".\"%s\": activation bits must be 2..8 or 16", path, k,
                                 c->act[i].name);
        } else if (strcmp(k, "per_channel") == 0 || strcmp(k, "symmetric") == 0 ||
                   strcmp(k, "bias_correction") == 0 || strcmp(k, "reduce_range") == 0) {
            if (!cJSON_IsBool(it)) {
                st = qf_errf(err, QF_ERR_INVALID_ARG, "%s: \"%s\" must be true or false", path, k);
            } else if (k[0] == 'p') {
                c->per_channel = cJSON_IsTrue(it);
            } else if (k[0] == 'b') {
                c->bias_correction = cJSON_IsTrue(it);
            } else if (k[0] == 'r') {
                c->reduce_range = cJSON_IsTrue(it);
            } else {
                c->symmetric_weights = cJSON_IsTrue(it);
            }
        } else if (strcmp(k, "calibration") == 0) {
            if (!cJSON_IsString(it))
                st = qf_errf(err, QF_ERR_INVALID_ARG, "%s: \"calibration\" must be a string", path);
            else if ((st = qf_calib_method_parse(it->valuestring, &c->calib, err)) != QF_OK)
                qf_err_prefix(err, "%s", path);
        } else if (strcmp(k, "percentile") == 0) {
            if (!cJSON_IsNumber(it) || !(it->valuedouble > 50.0 && it->valuedouble <= 100.0))
                st = qf_errf(err, QF_ERR_INVALID_ARG,
                             "%s: \"percentile\" must be a number in (50, 100]", path);
            else
                c->percentile = (float)it->valuedouble;
        } else if (strcmp(k, "requant") == 0) {
            if (cJSON_IsString(it) && strcmp(it->valuestring, "fp32") == 0)
                c->requant = QF_REQUANT_FP32;
            else if (cJSON_IsString(it) && strcmp(it->valuestring, "fixed") == 0)
                c->requant = QF_REQUANT_FIXED;
            else
                st = qf_errf(err, QF_ERR_INVALID_ARG,
                             "%s: \"requant\" must be \"fp32\" or \"fixed\"", path);
        } else if (strcmp(k, "rounding") == 0) {
            if (cJSON_IsString(it) && strcmp(it->valuestring, "nearest") == 0)
                c->rounding = QF_ROUND_NEAREST;
            else if (cJSON_IsString(it) && strcmp(it->valuestring, "gptq") == 0)
                c->rounding = QF_ROUND_GPTQ;
            else
                st = qf_errf(err, QF_ERR_INVALID_ARG,
                             "%s: \"rounding\" must be \"nearest\" or \"gptq\"", path);
        } else if (strcmp(k, "gptq_samples") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 1e9 ||
                it->valuedouble != floor(it->valuedouble))
                st = qf_errf(err, QF_ERR_INVALID_ARG,
                             "%s: \"gptq_samples\" must be a whole number >= 0 (0: all)", path);
            else
                c->gptq_samples = (int)it->valuedouble;
        } else {
            st = qf_errf(err, QF_ERR_INVALID_ARG,
                         "%s: unknown key \"%s\" (known: num_bits, act_bits, per_channel, "
                         "symmetric, calibration, percentile, requant, bias_correction, "
                         "rounding, gptq_samples, reduce_range)",
                         path, k);
        }
        if (st) goto out;
    }
out:
    cJSON_Delete(root);
    return st;
}

qf_status qf_qconfig_load_file(qf_qconfig *c, const char *path, qf_err *err) {
    void *buf;
    size_t len;
    qf_status st = qf_read_file(path, &buf, &len, err);
    if (st) return st;
    st = qf_qconfig_parse_json(c, buf, len, path, err);
    qf_free(buf);
    return st;
}

bool qf_node_is_quantizable_layer(const qf_graph *g, const qf_node *n) {
    if (n->op == QF_OP_CONV || n->op == QF_OP_GEMM) return n->n_inputs >= 2;
    if (n->op == QF_OP_MATMUL && n->n_inputs == 2 && n->inputs[1] >= 0)
        return (g->values[n->inputs[1]].flags & QF_VAL_CONST) != 0;
    return false;
}

/* "conv1, conv2, fc1" (truncated) for error messages. */
static void layer_list(const qf_graph *g, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < g->n_nodes && o + 8 < len; i++) {
        if (!qf_node_is_quantizable_layer(g, &g->nodes[i])) continue;
        int w = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", g->nodes[i].name);
        if (w < 0 || (size_t)w >= len - o) {
            snprintf(buf + (len > 5 ? len - 5 : 0), 5, "...");
            return;
        }
        o += (size_t)w;
    }
}

static int find_node(const qf_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i].name, name) == 0) return i;
    return -1;
}

qf_status qf_qconfig_resolve(const qf_qconfig *c, const qf_graph *g, const char *config_path,
                             int *w_bits, int *act_bits, qf_err *err) {
    const char *path = config_path ? config_path : "config";
    int n_layers = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        bool layer = qf_node_is_quantizable_layer(g, &g->nodes[i]);
        w_bits[i] = layer ? c->default_w_bits : 0;
        act_bits[i] = c->default_act_bits;
        n_layers += layer;
    }
    char names[300];
    if (c->w_list) {
        if (c->n_w != n_layers) {
            layer_list(g, names, sizeof names);
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: \"num_bits\" lists %d values but %s has %d quantizable layers (%s)",
                           path, c->n_w, g->source_path, n_layers, names);
        }
        int k = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if (qf_node_is_quantizable_layer(g, &g->nodes[i])) w_bits[i] = c->w[k++].bits;
    } else {
        for (int e = 0; e < c->n_w; e++) {
            int i = find_node(g, c->w[e].name);
            if (i < 0 || !qf_node_is_quantizable_layer(g, &g->nodes[i])) {
                layer_list(g, names, sizeof names);
                return qf_errf(
                    err, QF_ERR_INVALID_ARG, "%s: layer '%s' %s in %s (quantizable layers: %s)",
                    path, c->w[e].name, i < 0 ? "does not exist" : "is not a quantizable layer",
                    g->source_path, names);
            }
            w_bits[i] = c->w[e].bits;
        }
    }
    for (int e = 0; e < c->n_act; e++) {
        int i = find_node(g, c->act[e].name);
        if (i < 0)
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: layer '%s' does not exist in %s", path,
                           c->act[e].name, g->source_path);
        act_bits[i] = c->act[e].bits;
    }
    if (c->reduce_range)
        for (int i = 0; i < g->n_nodes; i++)
            if (w_bits[i] > 7) w_bits[i] = 7;
    return QF_OK;
}
