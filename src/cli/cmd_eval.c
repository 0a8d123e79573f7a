/* cmd_eval.c - `qforge eval MODEL --data D`: top-1 (and top-5) accuracy and
 * throughput of a classifier over a labelled dataset. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/qfm.h"
#include "io/data.h"
#include "runtime/runtime.h"

static const cli_opt eval_opts[] = {
    {"data", 'd', "D",
     "fashion-mnist, mnist, a directory of IDX/NPY files, an image folder "
     "(DIR/<class>/<image>: PNG, JPEG, BMP, PGM/PPM), or an images file (then give LABELS too)"},
    {"labels", 0, "FILE", "labels file when --data names an images file"},
    {"split", 0, "test|train", "which split of a named dataset or directory (default test)"},
    {"limit", 'n', "N", "evaluate only the first N samples"},
    {"batch", 'b', "B", "batch size when the model's batch dim is dynamic (default 32)"},
    {"threads", 't', "T", "worker threads (default 1)"},
    {"scale", 0, "S", "multiply raw values by S first (default 1/255 for uint8 data, else 1)"},
    {"mean", 0, "M[,M...]", "subtract a mean per channel (after scaling)"},
    {"std", 0, "S[,S...]", "divide by a std per channel (after the mean)"},
    {"nhwc", 0, NULL, "rank-4 images are stored N,H,W,C (fed as NCHW)"},
    {"size", 0, "HxW", "image folders: resize every image to HxW (bilinear; 'N' = NxN)"},
    {"resize-short", 0, "S",
     "image folders: resize the shorter side to S, keeping the aspect, then center-crop "
     "--size (default SxS)"},
    {"channels", 0, "1|3", "image folders: 1 = grayscale, 3 = RGB (default: as the first image)"},
    {"layout", 0, "nchw|nhwc", "layout of the samples fed to the model (default nchw)"},
    {"json", 0, NULL, "print the result as JSON on stdout"},
    {"float", 0, "M.onnx", "for a .qfm: the float model to compare with (default: its source)"},
    {"report", 0, "R.html", "for a .qfm: also write a self-contained HTML report"},
};

/* Parse "0.5,0.25" into vals; returns the count or -1. */
static int parse_floats(const char *s, float *vals, int cap) {
    int n = 0;
    while (*s) {
        if (n == cap) return -1;
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || !isfinite(v)) return -1;
        vals[n++] = (float)v;
        s = end;
        if (*s == ',') {
            s++;
            if (!*s) return -1;
        } else if (*s) {
            return -1;
        }
    }
    return n;
}

/* "224x160" or "224" (square) into h, w. */
static bool parse_size(const char *s, int64_t *h, int64_t *w) {
    char *end;
    errno = 0;
    long long a = strtoll(s, &end, 10), b = a;
    if (errno || end == s || a < 1 || a > QF_IMAGE_MAX_SIDE) return false;
    if (*end == 'x' || *end == 'X') {
        const char *t = end + 1;
        b = strtoll(t, &end, 10);
        if (errno || end == t || b < 1 || b > QF_IMAGE_MAX_SIDE) return false;
    }
    if (*end) return false;
    *h = a;
    *w = b;
    return true;
}

/* Image-folder options; a verb without them in its table reads defaults. */
static bool image_options(const cli_args *a, qf_dataset_options *o) {
    const char *sz = cli_get(a, "size");
    if (sz && !parse_size(sz, &o->height, &o->width)) {
        cli_usage_error(a->cmd, "--size expects HxW or N (1..%d), got '%s'", QF_IMAGE_MAX_SIDE, sz);
        return false;
    }
    long long rs;
    if (!cli_get_int(a, "resize-short", 1, QF_IMAGE_MAX_SIDE, 0, &rs)) return false;
    o->resize_short = rs;
    const char *cs = cli_get(a, "channels");
    if (cs && strcmp(cs, "1") != 0 && strcmp(cs, "3") != 0) {
        cli_usage_error(a->cmd, "--channels must be 1 or 3, not '%s'", cs);
        return false;
    }
    o->channels = cs ? atoi(cs) : 0;
    const char *lay = cli_get(a, "layout");
    if (lay && strcmp(lay, "nchw") != 0 && strcmp(lay, "nhwc") != 0) {
        cli_usage_error(a->cmd, "--layout must be nchw or nhwc, not '%s'", lay);
        return false;
    }
    o->out_nhwc = lay && strcmp(lay, "nhwc") == 0;
    return true;
}

bool cli_dataset_options(const cli_args *a, const char *default_split, qf_dataset_options *o) {
    memset(o, 0, sizeof *o);
    o->split = cli_get(a, "split") ? cli_get(a, "split") : default_split;
    if (strcmp(o->split, "test") != 0 && strcmp(o->split, "train") != 0) {
        cli_usage_error(a->cmd, "--split must be test or train, not '%s'", o->split);
        return false;
    }
    long long limit;
    if (!cli_get_int(a, "limit", 1, INT64_MAX, 0, &limit)) return false;
    o->limit = limit;
    o->nhwc = cli_flag(a, "nhwc");
    const char *sc = cli_get(a, "scale");
    if (sc) {
        float v;
        if (parse_floats(sc, &v, 1) != 1 || v == 0) {
            cli_usage_error(a->cmd, "--scale expects a non-zero number, got '%s'", sc);
            return false;
        }
        o->scale = v;
    }
    const char *ms = cli_get(a, "mean"), *ss = cli_get(a, "std");
    if (ms || ss) {
        float mean[QF_DATASET_MAX_NORM], sd[QF_DATASET_MAX_NORM];
        int nm = ms ? parse_floats(ms, mean, QF_DATASET_MAX_NORM) : 0;
        int ns = ss ? parse_floats(ss, sd, QF_DATASET_MAX_NORM) : 0;
        if (nm < 0 || ns < 0) {
            cli_usage_error(a->cmd, "--mean/--std expect comma-separated numbers");
            return false;
        }
        /* one of them alone: the other is the identity */
        if (!ms)
            for (nm = 0; nm < ns; nm++)
                mean[nm] = 0;
        if (!ss)
            for (ns = 0; ns < nm; ns++)
                sd[ns] = 1;
        if (nm != ns) {
            cli_usage_error(a->cmd, "--mean has %d values but --std has %d", nm, ns);
            return false;
        }
        o->n_norm = nm;
        memcpy(o->mean, mean, sizeof(float) * (size_t)nm);
        memcpy(o->std, sd, sizeof(float) * (size_t)nm);
    }
    return image_options(a, o);
}

typedef struct eval_result {
    long long n, top1, top5;
    int classes;
    double seconds;
    int batch;
    bool batch_fixed;
} eval_result;

/* Rank of the label's score among the row (0 = the argmax; ties go to the
 * lower class index, as argmax does; a row with NaN ranks last). */
static int label_rank(const float *row, int classes, int label) {
    float s = row[label];
    int rank = 0;
    for (int c = 0; c < classes; c++) {
        if (isnan(row[c])) return classes; /* NaN scores never count as a hit */
        if (row[c] > s || (row[c] == s && c < label)) rank++;
    }
    return rank;
}

/* Shape fed to the model for a batch of `rows`: the model's own dims when
 * they hold exactly one sample (e.g. [N,784] for 28x28 images), else the
 * dataset's sample shape. Returns false after reporting a mismatch. */
static bool batch_shape(const qf_model *m, bool info_ok, const qf_tensor *want, const qf_dataset *d,
                        qf_tensor *shape) {
    memset(shape, 0, sizeof *shape);
    shape->dtype = QF_DT_F32;
    if (info_ok && want->rank >= 1) {
        int64_t numel = 1;
        bool known = true;
        for (int i = 1; i < want->rank; i++) {
            if (want->dims[i] < 0)
                known = false;
            else
                numel *= want->dims[i];
        }
        if (known && numel == d->sample_numel) {
            *shape = *want;
            shape->dtype = QF_DT_F32;
            return true;
        }
        bool fits = want->rank - 1 == d->rank;
        for (int i = 1; fits && i < want->rank; i++)
            if (want->dims[i] >= 0 && want->dims[i] != d->dims[i - 1]) fits = false;
        if (!fits) {
            char ws[256], ds[256];
            cli_format_shape(ws, sizeof ws, want->rank, want->dims);
            cli_format_shape(ds, sizeof ds, d->rank, d->dims);
            cli_error("%s: model input '%s' expects %s, but %s has samples of shape %s", m->path,
                      qf_model_input_name(m, 0), ws, d->source, ds);
            return false;
        }
    }
    shape->rank = d->rank + 1;
    memcpy(shape->dims + 1, d->dims, sizeof(int64_t) * (size_t)d->rank);
    return true;
}

static int evaluate(qf_model *m, const qf_dataset *d, int threads, long long batch_opt,
                    eval_result *r) {
    qf_tensor want;
    bool info_ok = qf_model_input_info(m, 0, &want) == QF_OK;
    if (info_ok && want.dtype != QF_DT_UNDEF && want.dtype != QF_DT_F32) {
        cli_error("%s: input '%s' is %s; eval feeds float32 images", m->path,
                  qf_model_input_name(m, 0), qf_dtype_name(want.dtype));
        return CLI_EXIT_USAGE;
    }
    qf_tensor in;
    if (!batch_shape(m, info_ok, &want, d, &in)) return CLI_EXIT_USAGE;
    r->batch_fixed = info_ok && want.rank >= 1 && want.dims[0] >= 0;
    int64_t B = r->batch_fixed ? want.dims[0] : batch_opt;
    if (B < 1) {
        cli_error("%s: input '%s' has a batch dim of 0", m->path, qf_model_input_name(m, 0));
        return CLI_EXIT_USAGE;
    }
    if (!r->batch_fixed && B > d->n && d->n > 0) B = d->n;
    r->batch = (int)B;
    size_t per = (size_t)d->sample_numel, nfloats;
    if (!qf_mul_size(per, (size_t)B, &nfloats) || nfloats > ((size_t)1 << 32)) {
        cli_error("%s: batch of %lld samples is too large", d->source, (long long)B);
        return CLI_EXIT_USAGE;
    }
    float *x = qf_malloc_aligned(nfloats * sizeof(float) + 1);
    int32_t *labels = qf_malloc(sizeof(int32_t) * (size_t)B);
    qf_session *s = NULL;
    qf_err e = {0};
    qf_session_options so = {.num_threads = threads};
    qf_status st = QF_OK;
    int rc = CLI_EXIT_OK;
    if (!x || !labels) {
        cli_error("out of memory (batch of %lld)", (long long)B);
        rc = CLI_EXIT_FAIL;
    } else if ((st = qf_session_create(m, &so, &s, &e)) != QF_OK) {
        rc = cli_fail(&e, st);
    }
    cli_progress prog;
    cli_progress_start(&prog, "eval", d->n);
    double t0 = cli_now();
    for (int64_t i = 0; i < d->n && rc == CLI_EXIT_OK; i += B) {
        int64_t cnt = QF_MIN(B, d->n - i);
        st = qf_dataset_fill(d, i, cnt, x, labels, &e);
        if (st) {
            rc = cli_fail(&e, st);
            break;
        }
        int64_t rows = cnt;
        if (r->batch_fixed && cnt < B) {
            /* a fixed batch dim: pad the last batch with zeros, ignore those rows */
            memset(x + (size_t)cnt * per, 0, sizeof(float) * (size_t)(B - cnt) * per);
            rows = B;
        }
        in.dims[0] = rows;
        in.data = x;
        qf_tensor out;
        st = qf_session_run(s, &in, 1, &out, 1, &e);
        if (st) {
            rc = cli_fail(&e, st);
            break;
        }
        int64_t onumel = qf_tensor_numel(&out);
        if (out.dtype != QF_DT_F32 || out.rank < 1 || out.dims[0] != rows || onumel <= 0 ||
            onumel / rows > INT32_MAX) {
            char os[256];
            cli_format_shape(os, sizeof os, out.rank, out.dims);
            cli_error("%s: output '%s' is %s %s; eval needs float32 scores [%lld, classes]",
                      m->path, qf_model_output_name(m, 0), qf_dtype_name(out.dtype), os,
                      (long long)rows);
            rc = CLI_EXIT_USAGE;
            break;
        }
        int classes = (int)(onumel / rows);
        r->classes = classes;
        const float *scores = out.data;
        for (int64_t k = 0; k < cnt; k++) {
            if (labels[k] < 0) {
                cli_error("%s: sample %lld has no label; eval needs labelled data", d->source,
                          (long long)(i + k));
                rc = CLI_EXIT_USAGE;
                break;
            }
            if (labels[k] >= classes) {
                cli_error("%s: sample %lld has label %d, but the model outputs %d classes",
                          d->source, (long long)(i + k), labels[k], classes);
                rc = CLI_EXIT_USAGE;
                break;
            }
            int rank = label_rank(scores + (size_t)k * (size_t)classes, classes, labels[k]);
            r->top1 += rank == 0;
            r->top5 += rank < 5;
        }
        if (rc != CLI_EXIT_OK) break;
        r->n += cnt;
        cli_progress_update(&prog, r->n);
    }
    r->seconds = cli_now() - t0;
    if (rc == CLI_EXIT_OK)
        cli_progress_finish(&prog);
    else if (prog.tty)
        fputc('\n', stderr); /* leave the bar's line before the error */
    qf_session_free(s);
    qf_free_aligned(x);
    qf_free(labels);
    return rc;
}

static void print_result(const cli_args *a, const char *model, const qf_dataset *d, int threads,
                         const eval_result *r) {
    double ips = r->seconds > 0 ? (double)r->n / r->seconds : 0;
    double top1 = r->n ? (double)r->top1 / (double)r->n : 0;
    double top5 = r->n ? (double)r->top5 / (double)r->n : 0;
    bool has5 = r->classes >= 5;
    if (cli_flag(a, "json")) {
        fputs("{\"model\": ", stdout);
        cli_json_str(stdout, model);
        fputs(", \"data\": ", stdout);
        cli_json_str(stdout, d->source);
        printf(", \"samples\": %lld, \"classes\": %d, \"top1\": %.6f, \"top1_correct\": %lld", r->n,
               r->classes, top1, r->top1);
        if (has5) printf(", \"top5\": %.6f, \"top5_correct\": %lld", top5, r->top5);
        printf(", \"images_per_second\": %.1f, \"seconds\": %.3f, \"batch\": %d, "
               "\"batch_fixed\": %s, \"threads\": %d}\n",
               ips, r->seconds, r->batch, r->batch_fixed ? "true" : "false", threads);
        return;
    }
    printf("model:       %s\n", model);
    printf("data:        %s: %lld samples, %d classes\n", d->source, r->n, r->classes);
    printf("top-1:       %.2f%% (%lld/%lld)\n", 100 * top1, r->top1, r->n);
    if (has5) printf("top-5:       %.2f%% (%lld/%lld)\n", 100 * top5, r->top5, r->n);
    printf("throughput:  %.1f images/s (batch %d%s, %d thread%s, %.2f s)\n", ips, r->batch,
           r->batch_fixed ? " fixed by the model" : "", threads, threads == 1 ? "" : "s",
           r->seconds);
}

static int run_eval(const cli_args *a) {
    const char *spec = cli_get(a, "data");
    const char *labels = cli_get(a, "labels");
    if (!spec) return cli_usage_error(a->cmd, "no dataset: give --data D");
    if (a->n_pos == 2) {
        if (labels)
            return cli_usage_error(a->cmd, "labels given twice ('%s' and --labels)", a->pos[1]);
        labels = a->pos[1];
    }
    long long threads, batch;
    if (!cli_get_int(a, "threads", 1, 1024, 1, &threads)) return CLI_EXIT_USAGE;
    if (!cli_get_int(a, "batch", 1, 1 << 20, 32, &batch)) return CLI_EXIT_USAGE;
    qf_dataset_options o;
    if (!cli_dataset_options(a, "test", &o)) return CLI_EXIT_USAGE;

    if (qf_qfm_file_has_magic(a->pos[0]))
        return cli_eval_quant(a, &o, spec, labels, (int)threads, (int)batch);
    if (cli_get(a, "report"))
        return cli_usage_error(a->cmd, "--report compares a .qfm with its float model; "
                                       "give a .qfm");

    qf_err e = {0};
    qf_model *m = NULL;
    qf_status st = qf_model_load(a->pos[0], &m, &e);
    if (st) return cli_fail(&e, st);
    int rc = CLI_EXIT_OK;
    qf_dataset *d = NULL;
    if (qf_model_num_inputs(m) != 1) {
        cli_error("%s: eval needs a model with one input, this one has %d", a->pos[0],
                  qf_model_num_inputs(m));
        rc = CLI_EXIT_USAGE;
    } else if ((st = qf_dataset_open(spec, labels, &o, &d, &e)) != QF_OK) {
        rc = cli_fail(&e, st);
    } else if (d->folder && d->num_classes == 0) {
        cli_error("%s: images without class folders have no labels; eval needs "
                  "DIR/<class>/<image>",
                  spec);
        rc = CLI_EXIT_USAGE;
    }
    eval_result r;
    memset(&r, 0, sizeof r);
    if (rc == CLI_EXIT_OK) rc = evaluate(m, d, (int)threads, batch, &r);
    if (rc == CLI_EXIT_OK) print_result(a, a->pos[0], d, (int)threads, &r);
    qf_dataset_free(d);
    qf_model_free(m);
    return rc;
}

const cli_cmd cli_cmd_eval = {
    .name = "eval",
    .summary = "measure a classifier's top-1/top-5 accuracy and speed on a dataset",
    .usage = "MODEL.onnx --data fashion-mnist|DIR|IMAGES [LABELS] [options]",
    .description = "Run the model over a labelled dataset and report top-1 accuracy, top-5\n"
                   "when there are at least 5 classes, and images per second. uint8 images\n"
                   "are scaled by 1/255, then --mean/--std apply per channel; samples are fed\n"
                   "NCHW ([N,1,28,28] for 28x28 grayscale, or [N,784] if the model wants\n"
                   "that). A dynamic batch dim takes --batch; a fixed one is used as is (the\n"
                   "last batch is zero-padded). Output 0 must hold [N, classes] scores.\n"
                   "An image folder DIR/<class>/<image> labels images by the sorted class\n"
                   "folder names; --size, --resize-short and --channels shape its images.\n"
                   "Progress goes to stderr: a bar on a terminal, a line per 10% otherwise.",
    .opts = eval_opts,
    .n_opts = (int)QF_ARRAY_LEN(eval_opts),
    .min_pos = 1,
    .max_pos = 2,
    .example = "  qforge eval lenet.onnx --data fashion-mnist\n"
               "  qforge eval lenet.onnx --data fashion-mnist --split train --limit 5000 --json\n"
               "  qforge eval m.onnx --data x_test.npy y_test.npy --batch 64 --threads 2\n"
               "  qforge eval resnet.onnx --data val/ --resize-short 256 --size 224 \\\n"
               "      --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225",
    .run = run_eval,
};
