/* data.h - array files (IDX, NPY) and datasets for evaluation/calibration.
 *
 * Arrays come back as a qf_tensor whose data is qf_malloc_aligned'd and
 * owned by the caller (release with qf_free_aligned(t->data)). Every size in
 * a file is checked against the file's real length before anything is
 * allocated from it; errors name the file ("x.gz: truncated: ...").
 */
#ifndef QF_IO_DATA_H
#define QF_IO_DATA_H

#include "base/base.h"

/* ---- IDX (MNIST family) ----------------------------------------------- */
/* Decode an IDX file image: magic 00 00 <type> <ndim>, big-endian u32 dims,
 * big-endian data. Types: u8 (0x08), i8 (0x09), i16 (0x0B), i32 (0x0C),
 * f32 (0x0D), f64 (0x0E). A gzip stream (1f 8b) is inflated first. */
qf_status qf_idx_decode(const void *buf, size_t len, const char *name_for_errors, qf_tensor *out,
                        qf_err *err);
qf_status qf_idx_read(const char *path, qf_tensor *out, qf_err *err);

/* ---- NPY -------------------------------------------------------------- */
/* Decode NPY v1/v2/v3 (little-endian, C order). dtypes: <f2 <f4 <f8 |u1 |i1
 * <i2 <u2 <i4 <u4 <i8 <u8 |b1. fortran_order True, big-endian data and
 * structured dtypes are rejected. */
qf_status qf_npy_decode(const void *buf, size_t len, const char *name_for_errors, qf_tensor *out,
                        qf_err *err);
qf_status qf_npy_read(const char *path, qf_tensor *out, qf_err *err);
/* Serialize t (rank <= QF_MAX_DIMS, a dtype listed above) as NPY v1 (v2 if
 * the header would not fit); *buf is qf_malloc'd. */
qf_status qf_npy_encode(const qf_tensor *t, void **buf, size_t *len, qf_err *err);
/* Encode and write through qf_write_file_atomic: no half-written file. */
qf_status qf_npy_write(const char *path, const qf_tensor *t, qf_err *err);

/* Read an array file of either format, chosen by content (NPY magic, IDX
 * magic, or gzip magic wrapping IDX), never by file name. */
qf_status qf_array_read(const char *path, qf_tensor *out, qf_err *err);

/* ---- datasets --------------------------------------------------------- */
#define QF_DATASET_MAX_NORM 16 /* channels that may carry their own mean/std */

/* Samples as float tensors plus int32 labels. The raw arrays are kept in
 * their stored dtype; qf_dataset_fill converts a range of samples on demand
 * (scale, then (x - mean) / std per channel) into NCHW floats. */
typedef struct qf_dataset {
    int64_t n;                 /* number of samples (after any limit) */
    int rank;                  /* per-sample shape rank */
    int64_t dims[QF_MAX_DIMS]; /* per-sample shape; [1,H,W] for [N,H,W] images */
    int64_t sample_numel;      /* product of dims */
    int num_classes;           /* max label + 1 */
    qf_tensor images;          /* raw array as stored (owned) */
    int32_t *labels;           /* n labels (owned) */
    float scale;               /* multiplier applied first */
    int n_norm;                /* 0, 1 or dims[0] channels of mean/std */
    float mean[QF_DATASET_MAX_NORM];
    float std[QF_DATASET_MAX_NORM];
    bool src_nhwc; /* images stored [N,H,W,C]: transposed on fill */
    char *source;  /* short description for messages (owned) */
} qf_dataset;

typedef struct qf_dataset_options {
    const char *split; /* "test" (default) or "train": directories and names */
    float scale;       /* 0 = default: 1/255 for uint8 images, 1 otherwise */
    int n_norm;        /* 0 = none; 1 = same for all channels; else per channel */
    float mean[QF_DATASET_MAX_NORM];
    float std[QF_DATASET_MAX_NORM];
    int64_t limit; /* 0 = all samples; else keep the first `limit` */
    bool nhwc;     /* rank-4 images are stored NHWC (convert to NCHW) */
} qf_dataset_options;

/* Open a dataset. `spec` is one of
 *  - "fashion-mnist" or "mnist": the Debian dataset package directory
 *    /usr/share/datasets/<name>/ (unless a path of that name exists);
 *  - a directory holding an images file and a labels file (IDX or NPY; MNIST
 *    names "t10k-images-idx3-ubyte[.gz]" are matched to the split);
 *  - an images file, with `labels_path` naming the labels file.
 * `labels_path` must be NULL for the first two forms. opt may be NULL. */
qf_status qf_dataset_open(const char *spec, const char *labels_path, const qf_dataset_options *opt,
                          qf_dataset **out, qf_err *err);
void qf_dataset_free(qf_dataset *d);

/* Convert samples [first, first + count) into dst (count * sample_numel
 * floats, NCHW) and, if labels != NULL, copy their labels. */
qf_status qf_dataset_fill(const qf_dataset *d, int64_t first, int64_t count, float *dst,
                          int32_t *labels, qf_err *err);

#endif /* QF_IO_DATA_H */
