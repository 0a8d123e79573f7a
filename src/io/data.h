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
    /* Added for image folders and NHWC output: */
    bool out_nhwc;                  /* fill writes [H,W,C] samples (dims say so too) */
    struct qf_image_folder *folder; /* non-NULL: an image folder (owned); images unused */
} qf_dataset;

typedef struct qf_dataset_options {
    const char *split; /* "test" (default) or "train": directories and names */
    float scale;       /* 0 = default: 1/255 for uint8 images, 1 otherwise */
    int n_norm;        /* 0 = none; 1 = same for all channels; else per channel */
    float mean[QF_DATASET_MAX_NORM];
    float std[QF_DATASET_MAX_NORM];
    int64_t limit; /* 0 = all samples; else keep the first `limit` */
    bool nhwc;     /* rank-4 images are stored NHWC (convert to NCHW) */
    /* Added for image folders (zero = default everywhere): */
    int64_t height, width; /* output size (both or neither); 0 = the images' own size,
                              which must then agree across the folder */
    int64_t resize_short;  /* > 0: scale so the shorter side is this (aspect kept), then
                              center-crop height x width (default resize_short square);
                              0: resize straight to height x width */
    int channels;          /* 0 = from the first image (gray -> 1, color -> 3); 1 or 3 */
    bool out_nhwc;         /* fill writes [H,W,C] per sample instead of [C,H,W] (any
                              dataset whose samples are [C,H,W]) */
} qf_dataset_options;

/* Open a dataset. `spec` is one of
 *  - "fashion-mnist" or "mnist": the Debian dataset package directory
 *    /usr/share/datasets/<name>/ (unless a path of that name exists);
 *  - a directory holding an images file and a labels file (IDX or NPY; MNIST
 *    names "t10k-images-idx3-ubyte[.gz]" are matched to the split);
 *  - an image folder (told apart from the above by content: no IDX/NPY/gzip
 *    file at its top, and class subfolders or image files): DIR/<class>/<img>
 *    gives labels by sorted class name, or DIR/<img> gives unlabeled samples
 *    (label -1, num_classes 0) for calibration. PNG, JPEG, BMP, binary PGM/PPM
 *    via stb_image; hidden files are skipped, any other file must decode.
 *    Headers are checked on open; pixels are decoded lazily by fill. `split`
 *    does not apply;
 *  - an images file, with `labels_path` naming the labels file.
 * `labels_path` must be NULL for the first three forms. opt may be NULL. */
qf_status qf_dataset_open(const char *spec, const char *labels_path, const qf_dataset_options *opt,
                          qf_dataset **out, qf_err *err);
void qf_dataset_free(qf_dataset *d);

/* Convert samples [first, first + count) into dst (count * sample_numel
 * floats, NCHW) and, if labels != NULL, copy their labels. */
qf_status qf_dataset_fill(const qf_dataset *d, int64_t first, int64_t count, float *dst,
                          int32_t *labels, qf_err *err);

/* ---- image folders (added) ------------------------------------------ */
/* Per image on fill: decode (samples brought to 0..255: 16-bit ones / 257,
 * PGM/PPM ones by their maxval) -> channel conversion (gray replicated to
 * RGB; RGB to gray as 0.299 R + 0.587 G + 0.114 B; alpha dropped) -> resize
 * in float with PIL's bilinear filter (half-pixel centers; a triangle
 * widened by the scale factor when shrinking, i.e. antialiased) -> center
 * crop -> scale -> (x - mean) / std -> layout. */
#define QF_IMAGE_MAX_SIDE 16384 /* larger images are rejected before decoding */

typedef struct qf_image_folder qf_image_folder;

/* True when dir should be read as an image folder (see qf_dataset_open). */
bool qf_image_folder_detect(const char *dir);
/* Fill an image-folder dataset: n, rank, dims, sample_numel, num_classes,
 * labels, scale, mean/std, out_nhwc, folder. d->source must be set already. */
qf_status qf_image_folder_open(const char *dir, const qf_dataset_options *o, qf_dataset *d,
                               qf_err *err);
/* Decode samples [first, first + count) into dst (range already checked). */
qf_status qf_image_folder_fill(const qf_dataset *d, int64_t first, int64_t count, float *dst,
                               qf_err *err);
void qf_image_folder_free(qf_image_folder *f);
/* Path of sample i of an image folder (NULL otherwise or out of range). */
const char *qf_image_folder_path(const qf_dataset *d, int64_t i);

/* Name of class `label` (the subfolder name for image folders); NULL when
 * the dataset has no names or label is out of range. */
const char *qf_dataset_class_name(const qf_dataset *d, int label);

#endif /* QF_IO_DATA_H */
