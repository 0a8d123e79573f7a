/* dataset.c - labelled sample sets for evaluation and calibration: a named
 * Debian dataset, a directory of IDX/NPY files, an image folder (read by
 * image_folder.c), or an explicit images + labels pair. Raw arrays stay in
 * their stored dtype; qf_dataset_fill turns a range of samples into
 * preprocessed NCHW (or NHWC) floats on demand, so a 60000-image training
 * split costs its uint8 size, not four times that. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/data.h"

/* Where Debian's dataset packages install (a system location). */
#define QF_SYSTEM_DATASETS_DIR "/usr/share/datasets"

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool path_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* No entries besides hidden ones. */
static bool dir_is_empty(const char *p) {
    DIR *d = opendir(p);
    if (!d) return false;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = e->d_name[0] == '.';
    closedir(d);
    return empty;
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = qf_malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Which split a file name belongs to: 1 test, 2 train, 0 neither. */
static int name_split(const char *name) {
    if (strstr(name, "t10k") || strstr(name, "test")) return 1;
    if (strstr(name, "train")) return 2;
    return 0;
}

typedef struct name_list {
    char *names[8];
    int n; /* may exceed 8: only the first 8 are kept */
} name_list;

static void name_list_free(name_list *l) {
    for (int i = 0; i < QF_MIN(l->n, 8); i++)
        qf_free(l->names[i]);
    l->n = 0;
}

/* Pick the images and labels files of `split` in dir. Names containing
 * "images"/"labels" are candidates; when any candidate carries a split
 * marker (t10k, test, train) only those of the requested split count. */
static qf_status find_pair(const char *dir, int split, const char *split_name, char **images,
                           char **labels, qf_err *err) {
    *images = *labels = NULL;
    DIR *d = opendir(dir);
    if (!d) return qf_errf(err, QF_ERR_IO, "%s: cannot open directory", dir);
    name_list cand[2] = {{{0}, 0}, {{0}, 0}}; /* [0] images, [1] labels */
    bool any_marked = false;
    qf_status st = QF_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        if (nm[0] == '.') continue;
        int kind = strstr(nm, "images") ? 0 : strstr(nm, "labels") ? 1 : -1;
        if (kind < 0) continue;
        if (name_split(nm)) any_marked = true;
        name_list *l = &cand[kind];
        if (l->n < 8) {
            l->names[l->n] = qf_strdup(nm);
            if (!l->names[l->n]) {
                st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
                break;
            }
        }
        l->n++;
    }
    closedir(d);
    for (int k = 0; k < 2 && st == QF_OK; k++) {
        const char *what = k == 0 ? "images" : "labels";
        const char *pick = NULL;
        int matches = 0;
        for (int i = 0; i < QF_MIN(cand[k].n, 8); i++) {
            if (any_marked && name_split(cand[k].names[i]) != split) continue;
            if (!pick) pick = cand[k].names[i];
            matches++;
        }
        if (cand[k].n > 8 && matches > 0) matches = 2; /* unseen names may match too */
        if (matches == 0) {
            st = qf_errf(err, QF_ERR_IO,
                         "%s: no %s file for the %s split (looked for names containing '%s'%s)",
                         dir, what, split_name, what,
                         any_marked ? (split == 1 ? " and 't10k' or 'test'" : " and 'train'") : "");
        } else if (matches > 1) {
            st = qf_errf(err, QF_ERR_INVALID_ARG,
                         "%s: several %s files for the %s split; name the files explicitly", dir,
                         what, split_name);
        } else {
            char *full = join_path(dir, pick);
            if (!full) st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
            if (k == 0)
                *images = full;
            else
                *labels = full;
        }
    }
    name_list_free(&cand[0]);
    name_list_free(&cand[1]);
    if (st) {
        qf_free(*images);
        qf_free(*labels);
        *images = *labels = NULL;
    }
    return st;
}

static bool is_integer_dtype(qf_dtype t) {
    switch (t) {
    case QF_DT_U8:
    case QF_DT_I8:
    case QF_DT_U16:
    case QF_DT_I16:
    case QF_DT_I32:
    case QF_DT_U32:
    case QF_DT_I64:
    case QF_DT_U64: return true;
    default: return false;
    }
}

/* Element i of a numeric array as double (labels and the NHWC path). */
static double elem_f64(const qf_tensor *t, size_t i) {
    switch (t->dtype) {
    case QF_DT_F32: return ((const float *)t->data)[i];
    case QF_DT_F64: return ((const double *)t->data)[i];
    case QF_DT_F16: return qf_f16_to_f32(((const uint16_t *)t->data)[i]);
    case QF_DT_U8:
    case QF_DT_BOOL: return ((const uint8_t *)t->data)[i];
    case QF_DT_I8: return ((const int8_t *)t->data)[i];
    case QF_DT_U16: return ((const uint16_t *)t->data)[i];
    case QF_DT_I16: return ((const int16_t *)t->data)[i];
    case QF_DT_I32: return ((const int32_t *)t->data)[i];
    case QF_DT_U32: return ((const uint32_t *)t->data)[i];
    case QF_DT_I64: return (double)((const int64_t *)t->data)[i];
    case QF_DT_U64: return (double)((const uint64_t *)t->data)[i];
    default: return 0.0;
    }
}

/* Convert n contiguous elements starting at element `off` to float. */
static void load_floats(const qf_tensor *t, size_t off, size_t n, float *dst) {
    switch (t->dtype) {
    case QF_DT_F32: memcpy(dst, (const float *)t->data + off, n * sizeof(float)); return;
    case QF_DT_U8: {
        const uint8_t *s = (const uint8_t *)t->data + off;
        for (size_t i = 0; i < n; i++)
            dst[i] = s[i];
        return;
    }
    default:
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)elem_f64(t, off + i);
    }
}

static qf_status load_labels(qf_dataset *d, const qf_tensor *lt, const char *lpath,
                             const char *ipath, qf_err *err) {
    if (!is_integer_dtype(lt->dtype))
        return qf_errf(err, QF_ERR_FORMAT, "%s: labels must be integers, not %s", lpath,
                       qf_dtype_name(lt->dtype));
    bool shape_ok = lt->rank == 1 || (lt->rank == 2 && lt->dims[1] == 1);
    if (!shape_ok)
        return qf_errf(err, QF_ERR_SHAPE, "%s: labels must have shape [N] or [N,1] (rank %d)",
                       lpath, lt->rank);
    if (lt->dims[0] != d->images.dims[0])
        return qf_errf(err, QF_ERR_SHAPE, "%s: %lld labels but %s has %lld samples", lpath,
                       (long long)lt->dims[0], ipath, (long long)d->images.dims[0]);
    size_t n = (size_t)d->n;
    d->labels = qf_malloc(n ? n * sizeof(int32_t) : 1);
    if (!d->labels) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", lpath);
    int32_t maxl = -1;
    for (size_t i = 0; i < n; i++) {
        double v = elem_f64(lt, i);
        /* Labels index a class axis: reject anything no model could output. */
        if (v < 0 || v >= (double)(1 << 24))
            return qf_errf(err, QF_ERR_FORMAT, "%s: label %zu is %.0f (must be in 0..%d)", lpath, i,
                           v, (1 << 24) - 1);
        d->labels[i] = (int32_t)v;
        if (d->labels[i] > maxl) maxl = d->labels[i];
    }
    d->num_classes = maxl + 1;
    return QF_OK;
}

/* Per-sample shape from the stored array shape. */
static qf_status sample_shape(qf_dataset *d, const char *ipath, qf_err *err) {
    const qf_tensor *t = &d->images;
    if (t->rank < 2)
        return qf_errf(err, QF_ERR_SHAPE, "%s: images need rank >= 2 ([N, ...]), got rank %d",
                       ipath, t->rank);
    if (t->rank == 3) { /* [N,H,W] grayscale -> [1,H,W] */
        d->rank = 3;
        d->dims[0] = 1;
        d->dims[1] = t->dims[1];
        d->dims[2] = t->dims[2];
    } else if (t->rank == 4 && d->src_nhwc) { /* [N,H,W,C] -> [C,H,W] */
        d->rank = 3;
        d->dims[0] = t->dims[3];
        d->dims[1] = t->dims[1];
        d->dims[2] = t->dims[2];
    } else {
        d->rank = t->rank - 1;
        memcpy(d->dims, t->dims + 1, sizeof(int64_t) * (size_t)d->rank);
    }
    int64_t numel = 1;
    for (int i = 0; i < d->rank; i++)
        numel *= d->dims[i]; /* fits: the file held it */
    d->sample_numel = numel;
    return QF_OK;
}

static qf_status set_preprocessing(qf_dataset *d, const qf_dataset_options *o, qf_err *err) {
    d->scale = o->scale != 0 ? o->scale : d->images.dtype == QF_DT_U8 ? 1.0f / 255.0f : 1.0f;
    if (o->n_norm == 0) return QF_OK;
    int64_t channels = d->rank >= 2 ? d->dims[0] : 1;
    if (o->n_norm < 0 || o->n_norm > QF_DATASET_MAX_NORM ||
        (o->n_norm != 1 && o->n_norm != channels))
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: %d mean/std values given, samples have %lld channels", d->source,
                       o->n_norm, (long long)channels);
    for (int c = 0; c < o->n_norm; c++) {
        if (!(o->std[c] != 0))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: std[%d] must be non-zero", d->source, c);
        d->mean[c] = o->mean[c];
        d->std[c] = o->std[c];
    }
    d->n_norm = o->n_norm;
    return QF_OK;
}

/* [C,H,W] samples written as [H,W,C]: dims describe what fill writes. */
static qf_status set_out_layout(qf_dataset *d, const qf_dataset_options *o, qf_err *err) {
    if (!o->out_nhwc) return QF_OK;
    if (d->rank != 3)
        return qf_errf(err, QF_ERR_SHAPE, "%s: NHWC output needs [C,H,W] samples (rank %d)",
                       d->source, d->rank);
    int64_t c = d->dims[0];
    d->dims[0] = d->dims[1];
    d->dims[1] = d->dims[2];
    d->dims[2] = c;
    d->out_nhwc = true;
    return QF_OK;
}

static qf_status open_image_folder(const char *dir, const qf_dataset_options *o, qf_dataset **out,
                                   qf_err *err) {
    qf_dataset *d = qf_calloc(1, sizeof *d);
    if (!d) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
    size_t n = strlen(dir) + 16;
    d->source = qf_malloc(n);
    qf_status st = d->source ? QF_OK : qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
    if (!st) {
        snprintf(d->source, n, "%s (images)", dir);
        st = qf_image_folder_open(dir, o, d, err);
    }
    if (st) {
        qf_dataset_free(d);
        return st;
    }
    *out = d;
    return QF_OK;
}

/* Resolve spec into the two file paths (qf_malloc'd) and a description. */
static qf_status resolve(const char *spec, const char *labels_path, const char *split_name,
                         char **ipath, char **lpath, char *desc, size_t desc_len, qf_err *err) {
    *ipath = *lpath = NULL;
    if (labels_path) {
        if (is_dir(spec))
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: a directory, but a labels file was given too", spec);
        *ipath = qf_strdup(spec);
        *lpath = qf_strdup(labels_path);
        if (!*ipath || !*lpath) {
            qf_free(*ipath);
            qf_free(*lpath);
            *ipath = *lpath = NULL;
            return qf_errf(err, QF_ERR_NOMEM, "out of memory");
        }
        snprintf(desc, desc_len, "%s", spec);
        return QF_OK;
    }
    int split = strcmp(split_name, "train") == 0 ? 2 : 1;
    if (is_dir(spec)) {
        snprintf(desc, desc_len, "%s (%s)", spec, split_name);
        return find_pair(spec, split, split_name, ipath, lpath, err);
    }
    if (!path_exists(spec) && (strcmp(spec, "fashion-mnist") == 0 || strcmp(spec, "mnist") == 0)) {
        char dir[256];
        snprintf(dir, sizeof dir, "%s/%s", QF_SYSTEM_DATASETS_DIR, spec);
        if (!is_dir(dir))
            return qf_errf(err, QF_ERR_IO, "%s: dataset not installed (no directory %s)", spec,
                           dir);
        snprintf(desc, desc_len, "%s (%s)", spec, split_name);
        return find_pair(dir, split, split_name, ipath, lpath, err);
    }
    if (path_exists(spec))
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: an images file needs a labels file too (IMAGES LABELS)", spec);
    return qf_errf(err, QF_ERR_IO, "%s: no such dataset, directory or file", spec);
}

qf_status qf_dataset_open(const char *spec, const char *labels_path, const qf_dataset_options *opt,
                          qf_dataset **out, qf_err *err) {
    *out = NULL;
    qf_dataset_options defaults;
    memset(&defaults, 0, sizeof defaults);
    const qf_dataset_options *o = opt ? opt : &defaults;
    const char *split_name = o->split ? o->split : "test";
    if (strcmp(split_name, "test") != 0 && strcmp(split_name, "train") != 0)
        return qf_errf(err, QF_ERR_INVALID_ARG, "unknown split '%s' (test or train)", split_name);
    if (o->limit < 0) return qf_errf(err, QF_ERR_INVALID_ARG, "negative sample limit");
    if (!labels_path && is_dir(spec)) {
        if (dir_is_empty(spec))
            return qf_errf(err, QF_ERR_IO,
                           "%s: no images found: empty directory (no image files or class "
                           "folders, no images file for the %s split)",
                           spec, split_name);
        if (qf_image_folder_detect(spec)) return open_image_folder(spec, o, out, err);
    }
    if (o->height || o->width || o->resize_short || o->channels)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: size, resize and channel options apply to image folders only", spec);

    char desc[512];
    char *ipath, *lpath;
    qf_status st = resolve(spec, labels_path, split_name, &ipath, &lpath, desc, sizeof desc, err);
    if (st) return st;

    qf_dataset *d = qf_calloc(1, sizeof *d);
    qf_tensor lt;
    memset(&lt, 0, sizeof lt);
    if (!d) {
        st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", spec);
        goto done;
    }
    d->src_nhwc = o->nhwc;
    d->source = qf_strdup(desc);
    if (!d->source) {
        st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", spec);
        goto done;
    }
    st = qf_array_read(ipath, &d->images, err);
    if (st) goto done;
    if (d->images.dtype == QF_DT_UNDEF || qf_dtype_size(d->images.dtype) == 0) {
        st = qf_errf(err, QF_ERR_FORMAT, "%s: images must be numeric", ipath);
        goto done;
    }
    st = sample_shape(d, ipath, err);
    if (st) goto done;
    st = qf_array_read(lpath, &lt, err);
    if (st) goto done;
    d->n = d->images.dims[0];
    if (o->limit > 0 && o->limit < d->n) d->n = o->limit;
    st = load_labels(d, &lt, lpath, ipath, err);
    if (st) goto done;
    st = set_preprocessing(d, o, err);
    if (!st) st = set_out_layout(d, o, err);

done:
    qf_free_aligned(lt.data);
    qf_free(ipath);
    qf_free(lpath);
    if (st) {
        qf_dataset_free(d);
        return st;
    }
    *out = d;
    return QF_OK;
}

void qf_dataset_free(qf_dataset *d) {
    if (!d) return;
    qf_free_aligned(d->images.data);
    qf_free(d->labels);
    qf_free(d->source);
    qf_image_folder_free(d->folder);
    qf_free(d);
}

qf_status qf_dataset_fill(const qf_dataset *d, int64_t first, int64_t count, float *dst,
                          int32_t *labels, qf_err *err) {
    if (first < 0 || count < 0 || first > d->n || count > d->n - first)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: samples [%lld, %lld) out of range (%lld)",
                       d->source, (long long)first, (long long)(first + count), (long long)d->n);
    if (d->folder) {
        qf_status st = qf_image_folder_fill(d, first, count, dst, err);
        if (st) return st;
        if (labels && count) memcpy(labels, d->labels + first, (size_t)count * sizeof(int32_t));
        return QF_OK;
    }
    size_t per = (size_t)d->sample_numel;
    int64_t channels = d->out_nhwc ? d->dims[2] : d->rank >= 2 ? d->dims[0] : 1;
    size_t inner = channels > 0 ? per / (size_t)channels : 0;
    float *chw = NULL; /* NHWC output: each sample is built CHW here, then transposed */
    if (d->out_nhwc && count > 0 && !(chw = qf_malloc(per * sizeof(float) + 1)))
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", d->source);
    for (int64_t s = 0; s < count; s++) {
        float *o = chw ? chw : dst + (size_t)s * per;
        size_t src0 = (size_t)(first + s) * per;
        if (d->src_nhwc && d->images.rank == 4) {
            /* stored h, w, c -> written c, h, w */
            for (size_t c = 0; c < (size_t)channels; c++)
                for (size_t i = 0; i < inner; i++)
                    o[c * inner + i] = (float)elem_f64(&d->images, src0 + i * (size_t)channels + c);
        } else {
            load_floats(&d->images, src0, per, o);
        }
        for (size_t c = 0; c < (size_t)channels; c++) {
            float *p = o + c * inner;
            float mean = 0, inv_std = 1;
            if (d->n_norm) {
                int k = d->n_norm == 1 ? 0 : (int)c;
                mean = d->mean[k];
                inv_std = 1.0f / d->std[k];
            }
            for (size_t i = 0; i < inner; i++)
                p[i] = (p[i] * d->scale - mean) * inv_std;
        }
        if (chw) {
            float *t = dst + (size_t)s * per;
            for (size_t c = 0; c < (size_t)channels; c++)
                for (size_t i = 0; i < inner; i++)
                    t[i * (size_t)channels + c] = chw[c * inner + i];
        }
    }
    qf_free(chw);
    if (labels && count) memcpy(labels, d->labels + first, (size_t)count * sizeof(int32_t));
    return QF_OK;
}
