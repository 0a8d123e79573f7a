/* image_folder.c - folders of images as datasets: DIR/<class>/<image> (labels
 * from the sorted class folder names) or DIR/<image> (unlabeled, label -1,
 * for calibration). Open lists the files and reads only their headers; fill
 * decodes just the requested range with stb_image, converts channels,
 * resizes (PIL's bilinear filter), center-crops, normalizes and writes NCHW
 * or NHWC floats. PNG, BMP and PNM files are checked to be complete before
 * they are decoded (stb does not read IEND's CRC and reads zeros past the end
 * of BMP pixel data; PGM/PPM samples are read here): a truncated file must be
 * an error, not a silently wrong sample. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/data.h"

/* stb_image, compiled into this file only: static functions (no symbol
 * clashes with an application that links its own copy), memory input only,
 * the four formats we document, qforge's allocator, and stb's own size cap
 * as a second line behind the header checks below. Its warnings are not
 * ours to fix, so they are silenced for the include alone. */
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_PNM
#define STBI_MAX_DIMENSIONS QF_IMAGE_MAX_SIDE
#define STBI_MALLOC(sz) stb_malloc(sz)
#define STBI_REALLOC(p, sz) stb_realloc(p, sz)
#define STBI_FREE(p) qf_free(p)
/* stb's failure reason is overwritten when it goes on to try the other
 * formats, so allocation failures are noted here, per thread. */
static _Thread_local bool stb_oom;
static void *stb_malloc(size_t n) {
    void *p = qf_malloc(n);
    if (!p) stb_oom = true;
    return p;
}
static void *stb_realloc(void *old, size_t n) {
    void *p = qf_realloc(old, n);
    if (!p) stb_oom = true;
    return p;
}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wold-style-declaration"
#pragma GCC diagnostic ignored "-Wcast-function-type"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

typedef struct img_file {
    char *path;
    int32_t label; /* class index, or -1 when the folder has no classes */
    int32_t w, h;  /* from the header, checked again when decoding */
    int32_t comp;  /* channels stored in the file: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
} img_file;

/* How a decoded image becomes out_h x out_w. */
typedef enum { GEOM_NATIVE, GEOM_STRETCH, GEOM_SHORT_CROP } geom_mode;

struct qf_image_folder {
    int n_classes;
    char **class_names; /* n_classes names (owned) */
    int64_t n;
    img_file *files; /* n files (owned) */
    int channels;    /* 1 or 3 */
    int64_t out_h, out_w, resize_short;
    geom_mode mode;
};

/* ---- directory listing ---------------------------------------------------- */
typedef struct name_vec {
    char **v;
    size_t n, cap;
} name_vec;

static void name_vec_free(name_vec *l) {
    for (size_t i = 0; i < l->n; i++)
        qf_free(l->v[i]);
    qf_free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Non-hidden entries of dir, sorted bytewise (as Python's sorted()). */
static qf_status list_dir(const char *dir, name_vec *out, qf_err *err) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return qf_errf(err, QF_ERR_IO, "%s: cannot open directory", dir);
    qf_status st = QF_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* hidden files, "." and ".." */
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 64, bytes;
            char **v = qf_mul_size(cap, sizeof *v, &bytes) ? qf_realloc(out->v, bytes) : NULL;
            if (!v) {
                st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory listing files", dir);
                break;
            }
            out->v = v;
            out->cap = cap;
        }
        out->v[out->n] = qf_strdup(e->d_name);
        if (!out->v[out->n]) {
            st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory listing files", dir);
            break;
        }
        out->n++;
    }
    closedir(d);
    if (st) {
        name_vec_free(out);
        return st;
    }
    if (out->n > 1) qsort(out->v, out->n, sizeof *out->v, cmp_names);
    return QF_OK;
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = qf_malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ---- detection by content --------------------------------------------------- */
enum { SNIFF_OTHER, SNIFF_IMAGE, SNIFF_ARRAY };

static int sniff_bytes(const unsigned char *b, size_t n) {
    if (n >= 6 && memcmp(b, "\x93NUMPY", 6) == 0) return SNIFF_ARRAY;
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return SNIFF_ARRAY; /* gzip (IDX.gz) */
    if (n >= 4 && b[0] == 0 && b[1] == 0 && b[3] >= 1 &&
        (b[2] == 0x08 || b[2] == 0x09 || (b[2] >= 0x0B && b[2] <= 0x0E)))
        return SNIFF_ARRAY; /* IDX */
    if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return SNIFF_IMAGE;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return SNIFF_IMAGE;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return SNIFF_IMAGE;
    if (n >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return SNIFF_IMAGE;
    return SNIFF_OTHER;
}

static int sniff_at(int dfd, const char *name) {
    unsigned char b[8];
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return SNIFF_OTHER;
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    return n > 0 ? sniff_bytes(b, (size_t)n) : SNIFF_OTHER;
}

/* An image folder has class subfolders or image files at its top and no
 * IDX/NPY/gzip file there (that would be an array dataset directory).
 * Allocation-free (*at calls), so running out of memory cannot turn an
 * image folder into a confusing array-dataset error. Only regular files
 * are opened: a FIFO would block. */
bool qf_image_folder_detect(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return false;
    bool subdir = false, image = false, array = false;
    struct dirent *e;
    while (!array && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, 0) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            subdir = true;
        } else if (S_ISREG(st.st_mode)) {
            int k = sniff_at(dirfd(d), e->d_name);
            array = k == SNIFF_ARRAY;
            image = image || k == SNIFF_IMAGE;
        }
    }
    closedir(d);
    return !array && (subdir || image);
}

/* ---- completeness checks (before stb) ----------------------------------------- */
static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static unsigned le16(const unsigned char *p) { return (unsigned)p[1] << 8 | p[0]; }

/* Every chunk must lie inside the file, up to IEND (stb skips CRCs and
 * never reads IEND's, so a cut there would pass unnoticed). */
static const char *png_incomplete(const unsigned char *b, size_t len) {
    size_t pos = 8;
    for (;;) {
        if (len - pos < 12) return "truncated (no IEND chunk)";
        uint32_t n = be32(b + pos);
        if (n > 0x7fffffffu) return "bad chunk length";
        if ((size_t)n > len - pos - 12) return "truncated inside a chunk";
        if (memcmp(b + pos + 4, "IEND", 4) == 0) return NULL;
        pos += 12 + (size_t)n;
    }
}

/* Uncompressed BMP: pixel rows must all be there (stb reads zeros past the
 * end). Compressed or odd headers are left to stb, which rejects them. */
static const char *bmp_incomplete(const unsigned char *b, size_t len) {
    if (len < 26) return "truncated header";
    uint32_t off = le32(b + 10), hsz = le32(b + 14), comp = 0;
    int64_t w, h;
    unsigned bpp;
    if (hsz == 12) {
        w = le16(b + 18);
        h = le16(b + 20);
        bpp = le16(b + 24);
    } else {
        if (len < 34) return "truncated header";
        w = (int32_t)le32(b + 18);
        h = (int32_t)le32(b + 22);
        bpp = le16(b + 28);
        comp = le32(b + 30);
    }
    if (h < 0) h = -h;
    if ((comp != 0 && comp != 3) || w <= 0 || h == 0 || bpp == 0 || w > QF_IMAGE_MAX_SIDE ||
        h > QF_IMAGE_MAX_SIDE)
        return NULL;
    uint64_t row = ((uint64_t)w * bpp + 31) / 32 * 4;
    if (off > len || row * (uint64_t)h > len - off) return "truncated pixel data";
    return NULL;
}

/* Binary PGM/PPM header as stb parses it: width, height, maxval separated
 * by whitespace and # comments, one whitespace byte after maxval. Numbers
 * are bounded here because stb's parser overflows a signed int on long
 * ones. v gets width, height, maxval; *data_off where the samples start. */
static const char *pnm_header(const unsigned char *b, size_t len, uint64_t v[3], size_t *data_off) {
    size_t pos = 2;
    for (int k = 0; k < 3; k++) {
        for (;;) {
            while (pos < len && isspace(b[pos]))
                pos++;
            if (pos < len && b[pos] == '#') {
                while (pos < len && b[pos] != '\n' && b[pos] != '\r')
                    pos++;
                continue;
            }
            break;
        }
        if (pos >= len || !isdigit(b[pos])) return "truncated header";
        v[k] = 0;
        while (pos < len && isdigit(b[pos])) {
            v[k] = v[k] * 10 + (uint64_t)(b[pos++] - '0');
            if (v[k] > 65535) return "bad header (a number above 65535)";
        }
    }
    if (pos >= len) return "truncated header";
    if (v[0] > QF_IMAGE_MAX_SIDE || v[1] > QF_IMAGE_MAX_SIDE) return "image too large";
    if (v[0] == 0 || v[1] == 0 || v[2] == 0) return "bad header (zero size or maxval)";
    *data_off = pos + 1;
    return NULL;
}

/* ...then every sample must be there. */
static const char *pnm_incomplete(const unsigned char *b, size_t len) {
    uint64_t v[3];
    size_t pos;
    const char *why = pnm_header(b, len, v, &pos);
    if (why) return why;
    uint64_t ch = b[1] == '6' ? 3 : 1, bytes = v[2] > 255 ? 2 : 1;
    if (v[0] * v[1] * ch * bytes > len - pos) return "truncated pixel data";
    return NULL;
}

static const char *image_incomplete(const unsigned char *b, size_t len) {
    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return png_incomplete(b, len);
    if (len >= 2 && b[0] == 'B' && b[1] == 'M') return bmp_incomplete(b, len);
    if (len >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6')) return pnm_incomplete(b, len);
    /* JPEG: stb 2.27 itself fails when the data stops before the end-of-image
     * marker (the every-length truncation test holds it to that). Anything
     * else: stb will say it is not a supported format. */
    return NULL;
}

/* ---- headers (open) ------------------------------------------------------------- */
/* stb reads headers through these callbacks, so open touches only the first
 * bytes of each file however large it is. End of file is judged by position:
 * stb may skip past the end (a cut segment), and fseek clears feof, which
 * would leave stb's JPEG marker scan spinning forever. */
typedef struct cb_file {
    FILE *f;
    long size;
} cb_file;
static int cb_read(void *user, char *data, int size) {
    return (int)fread(data, 1, (size_t)size, ((cb_file *)user)->f);
}
static void cb_skip(void *user, int n) { fseek(((cb_file *)user)->f, n, SEEK_CUR); }
static int cb_eof(void *user) {
    cb_file *c = user;
    long pos = ftell(c->f);
    return pos < 0 || pos >= c->size || ferror(c->f);
}

static const char *stb_reason(void) {
    const char *r = stbi_failure_reason();
    return r ? r : "unknown error";
}

/* stb's allocation failures are ours (qf_malloc) and must read as such;
 * call stb_oom_reset() before the stb call in question. */
static void stb_oom_reset(void) { stb_oom = false; }
static bool stb_out_of_memory(void) { return stb_oom; }

static qf_status check_dims(const char *path, int w, int h, int comp, qf_err *err) {
    if (w <= 0 || h <= 0 || comp < 1 || comp > 4)
        return qf_errf(err, QF_ERR_FORMAT, "%s: bad image header (%dx%d, %d channels)", path, w, h,
                       comp);
    /* The side cap keeps w * h * 4 channels * sizeof(float) far from overflow. */
    if (w > QF_IMAGE_MAX_SIDE || h > QF_IMAGE_MAX_SIDE)
        return qf_errf(err, QF_ERR_FORMAT, "%s: %dx%d image is too large (limit %dx%d)", path, w, h,
                       QF_IMAGE_MAX_SIDE, QF_IMAGE_MAX_SIDE);
    return QF_OK;
}

/* Header fields stb would misread: PNM numbers that overflow its parser,
 * BMP heights whose abs() is undefined. `pre` is the file's first bytes. */
static const char *header_hazard(const unsigned char *pre, size_t n, bool whole_file) {
    if (n >= 2 && pre[0] == 'P' && (pre[1] == '5' || pre[1] == '6')) {
        uint64_t v[3];
        size_t off;
        const char *why = pnm_header(pre, n, v, &off);
        if (why && !whole_file && strcmp(why, "truncated header") == 0) return "header too long";
        return why;
    }
    if (n >= 26 && pre[0] == 'B' && pre[1] == 'M' && le32(pre + 14) != 12 &&
        (le32(pre + 18) == 0x80000000u || le32(pre + 22) == 0x80000000u))
        return "bad header (width or height -2^31)";
    return NULL;
}

/* stb reports a top-down BMP's height as negative. */
static int abs_height(int h) { return h < 0 && h != INT_MIN ? -h : h; }

static qf_status read_header(img_file *fi, qf_err *err) {
    struct stat sb;
    if (stat(fi->path, &sb) != 0) return qf_errf(err, QF_ERR_IO, "%s: cannot open", fi->path);
    if (!S_ISREG(sb.st_mode)) return qf_errf(err, QF_ERR_IO, "%s: not a regular file", fi->path);
    FILE *f = fopen(fi->path, "rb");
    if (!f) return qf_errf(err, QF_ERR_IO, "%s: cannot open", fi->path);
    unsigned char pre[4096];
    size_t n = fread(pre, 1, sizeof pre, f);
    const char *why = header_hazard(pre, n, (long long)n == (long long)sb.st_size);
    if (why) {
        fclose(f);
        return qf_errf(err, QF_ERR_FORMAT, "%s: %s", fi->path, why);
    }
    rewind(f);
    static const stbi_io_callbacks cb = {cb_read, cb_skip, cb_eof};
    cb_file cf = {f, sb.st_size > LONG_MAX ? LONG_MAX : (long)sb.st_size};
    int w = 0, h = 0, comp = 0;
    stb_oom_reset();
    int ok = stbi_info_from_callbacks(&cb, &cf, &w, &h, &comp);
    fclose(f);
    h = abs_height(h);
    if (!ok && stb_out_of_memory())
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory reading the header", fi->path);
    if (!ok)
        return qf_errf(err, QF_ERR_FORMAT,
                       "%s: not a readable image (%s); supported: PNG, JPEG, BMP, binary PGM/PPM",
                       fi->path, stb_reason());
    qf_status st = check_dims(fi->path, w, h, comp, err);
    if (st) return st;
    fi->w = w;
    fi->h = h;
    fi->comp = comp;
    return QF_OK;
}

/* ---- open ----------------------------------------------------------------------- */
typedef struct file_vec {
    img_file *v;
    size_t n, cap;
} file_vec;

static qf_status push_file(file_vec *fv, char *path, int32_t label, const char *dir, qf_err *err) {
    if (fv->n == fv->cap) {
        size_t cap = fv->cap ? fv->cap * 2 : 256, bytes;
        img_file *v = qf_mul_size(cap, sizeof *v, &bytes) ? qf_realloc(fv->v, bytes) : NULL;
        if (!v) {
            qf_free(path);
            return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory listing files", dir);
        }
        fv->v = v;
        fv->cap = cap;
    }
    memset(&fv->v[fv->n], 0, sizeof fv->v[fv->n]);
    fv->v[fv->n].path = path;
    fv->v[fv->n].label = label;
    fv->n++;
    return QF_OK;
}

/* Add the files among `names` in dir (a class folder when label >= 0).
 * Folders inside a class folder are refused rather than skipped. */
static qf_status add_files(const char *dir, const name_vec *names, int32_t label, file_vec *fv,
                           qf_err *err) {
    for (size_t i = 0; i < names->n; i++) {
        char *p = join_path(dir, names->v[i]);
        if (!p) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
        struct stat sb;
        if (stat(p, &sb) != 0) {
            qf_status st = qf_errf(err, QF_ERR_IO, "%s: cannot open", p);
            qf_free(p);
            return st;
        }
        if (S_ISDIR(sb.st_mode)) {
            qf_status st = qf_errf(err, QF_ERR_FORMAT,
                                   "%s: a folder inside a class folder (expected "
                                   "DIR/<class>/<image>; is %s the folder of classes?)",
                                   p, dir);
            qf_free(p);
            return st;
        }
        if (!S_ISREG(sb.st_mode)) {
            qf_status st = qf_errf(err, QF_ERR_FORMAT, "%s: not a regular file", p);
            qf_free(p);
            return st;
        }
        qf_status st = push_file(fv, p, label, dir, err);
        if (st) return st;
    }
    return QF_OK;
}

void qf_image_folder_free(qf_image_folder *f) {
    if (!f) return;
    for (int i = 0; i < f->n_classes; i++)
        qf_free(f->class_names[i]);
    qf_free(f->class_names);
    for (int64_t i = 0; i < f->n; i++)
        qf_free(f->files[i].path);
    qf_free(f->files);
    qf_free(f);
}

/* List the folder into f: class mode when it has subfolders (top-level
 * files are then ignored, as torchvision's ImageFolder does), else every
 * top-level file is an unlabeled image. */
static qf_status collect(const char *dir, qf_image_folder *f, file_vec *fv, qf_err *err) {
    name_vec top;
    qf_status st = list_dir(dir, &top, err);
    if (st) return st;
    size_t n_dirs = 0;
    bool *is_sub = top.n ? qf_calloc(top.n, sizeof *is_sub) : NULL;
    if (top.n && !is_sub) st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
    for (size_t i = 0; i < top.n && !st; i++) {
        char *p = join_path(dir, top.v[i]);
        struct stat sb;
        if (!p) {
            st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            is_sub[i] = true;
            n_dirs++;
        }
        qf_free(p);
    }
    if (!st && n_dirs > (size_t)INT32_MAX)
        st = qf_errf(err, QF_ERR_FORMAT, "%s: too many class folders", dir);
    if (!st && n_dirs == 0) {
        st = add_files(dir, &top, -1, fv, err);
    } else if (!st) {
        f->class_names = qf_calloc(n_dirs, sizeof *f->class_names);
        if (!f->class_names) st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
        for (size_t i = 0; i < top.n && !st; i++) {
            if (!is_sub[i]) continue;
            int32_t label = f->n_classes;
            /* take the name over from the listing: freed with the folder */
            f->class_names[f->n_classes++] = top.v[i];
            top.v[i] = NULL;
            char *sub = join_path(dir, f->class_names[label]);
            name_vec names;
            if (!sub) {
                st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
                break;
            }
            st = list_dir(sub, &names, err);
            if (!st) st = add_files(sub, &names, label, fv, err);
            name_vec_free(&names);
            qf_free(sub);
        }
    }
    qf_free(is_sub);
    name_vec_free(&top);
    return st;
}

static qf_status plan_geometry(const char *dir, const qf_dataset_options *o, qf_image_folder *f,
                               qf_err *err) {
    const int64_t M = QF_IMAGE_MAX_SIDE;
    if (o->height < 0 || o->width < 0 || o->height > M || o->width > M || o->resize_short < 0 ||
        o->resize_short > M)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: image sizes must be in 1..%d (size %lldx%lld, resize_short %lld)", dir,
                       QF_IMAGE_MAX_SIDE, (long long)o->height, (long long)o->width,
                       (long long)o->resize_short);
    if ((o->height == 0) != (o->width == 0))
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: give both height and width (got %lldx%lld)",
                       dir, (long long)o->height, (long long)o->width);
    if (o->resize_short > 0) {
        f->mode = GEOM_SHORT_CROP;
        f->resize_short = o->resize_short;
        f->out_h = o->height ? o->height : o->resize_short;
        f->out_w = o->width ? o->width : o->resize_short;
        if (f->out_h > o->resize_short || f->out_w > o->resize_short)
            return qf_errf(err, QF_ERR_INVALID_ARG,
                           "%s: crop %lldx%lld does not fit in images resized to a short side of "
                           "%lld",
                           dir, (long long)f->out_h, (long long)f->out_w,
                           (long long)o->resize_short);
        return QF_OK;
    }
    if (o->height > 0) {
        f->mode = GEOM_STRETCH;
        f->out_h = o->height;
        f->out_w = o->width;
        return QF_OK;
    }
    f->mode = GEOM_NATIVE;
    f->out_h = f->files[0].h;
    f->out_w = f->files[0].w;
    for (int64_t i = 1; i < f->n; i++) {
        const img_file *fi = &f->files[i];
        if (fi->h != f->out_h || fi->w != f->out_w)
            return qf_errf(err, QF_ERR_SHAPE,
                           "%s: image is %dx%d but %s is %lldx%lld; set a target size "
                           "(--size HxW) to resize them alike",
                           fi->path, (int)fi->h, (int)fi->w, f->files[0].path, (long long)f->out_h,
                           (long long)f->out_w);
    }
    return QF_OK;
}

static qf_status set_norm(qf_dataset *d, const qf_dataset_options *o, qf_err *err) {
    int channels = d->folder->channels;
    d->scale = o->scale != 0 ? o->scale : 1.0f / 255.0f;
    if (o->n_norm == 0) return QF_OK;
    if (o->n_norm != 1 && o->n_norm != channels)
        return qf_errf(err, QF_ERR_INVALID_ARG,
                       "%s: %d mean/std values given, samples have %d channels", d->source,
                       o->n_norm, channels);
    for (int c = 0; c < o->n_norm; c++) {
        if (!(o->std[c] != 0))
            return qf_errf(err, QF_ERR_INVALID_ARG, "%s: std[%d] must be non-zero", d->source, c);
        d->mean[c] = o->mean[c];
        d->std[c] = o->std[c];
    }
    d->n_norm = o->n_norm;
    return QF_OK;
}

qf_status qf_image_folder_open(const char *dir, const qf_dataset_options *o, qf_dataset *d,
                               qf_err *err) {
    if (o->channels != 0 && o->channels != 1 && o->channels != 3)
        return qf_errf(err, QF_ERR_INVALID_ARG, "%s: channels must be 1 or 3, not %d", dir,
                       o->channels);
    qf_image_folder *f = qf_calloc(1, sizeof *f);
    if (!f) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
    d->folder = f;
    file_vec fv = {0};
    qf_status st = collect(dir, f, &fv, err);
    if (!st && fv.n == 0 && f->n_classes)
        st = qf_errf(err, QF_ERR_IO, "%s: no images found (%d class folders, all empty)", dir,
                     f->n_classes);
    else if (!st && fv.n == 0)
        st = qf_errf(err, QF_ERR_IO, "%s: no images found", dir);
    /* keep only the first `limit` files: the rest are never opened */
    size_t keep = fv.n;
    if (!st && o->limit > 0 && (uint64_t)o->limit < keep) keep = (size_t)o->limit;
    for (size_t i = keep; i < fv.n; i++)
        qf_free(fv.v[i].path);
    f->files = fv.v;
    f->n = st ? (int64_t)fv.n : (int64_t)keep;
    if (st) return st;
    for (int64_t i = 0; i < f->n && !st; i++)
        st = read_header(&f->files[i], err);
    if (st) return st;
    f->channels = o->channels ? o->channels : f->files[0].comp >= 3 ? 3 : 1;
    st = plan_geometry(dir, o, f, err);
    if (st) return st;

    d->n = f->n;
    d->rank = 3;
    d->out_nhwc = o->out_nhwc;
    if (o->out_nhwc) {
        d->dims[0] = f->out_h;
        d->dims[1] = f->out_w;
        d->dims[2] = f->channels;
    } else {
        d->dims[0] = f->channels;
        d->dims[1] = f->out_h;
        d->dims[2] = f->out_w;
    }
    d->sample_numel = f->channels * f->out_h * f->out_w; /* <= 3 * 2^28 */
    d->num_classes = f->n_classes;
    d->labels = qf_malloc((size_t)f->n * sizeof(int32_t));
    if (!d->labels) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", dir);
    for (int64_t i = 0; i < f->n; i++)
        d->labels[i] = f->files[i].label;
    return set_norm(d, o, err);
}

const char *qf_image_folder_path(const qf_dataset *d, int64_t i) {
    if (!d || !d->folder || i < 0 || i >= d->folder->n) return NULL;
    return d->folder->files[i].path;
}

const char *qf_dataset_class_name(const qf_dataset *d, int label) {
    if (!d || !d->folder || label < 0 || label >= d->folder->n_classes) return NULL;
    return d->folder->class_names[label];
}

/* ---- resampling ----------------------------------------------------------------- */
/* PIL's separable resampling with the bilinear (triangle) filter: output j
 * of an axis resized in -> resized covers source center (j + 0.5) * scale;
 * the triangle is widened by the scale factor when shrinking (so it
 * averages instead of aliasing) and its weights are renormalized where it
 * hangs over an edge. When enlarging this is plain half-pixel bilinear
 * with clamped edges. Only outputs [offset, offset + out) are computed,
 * which is how the center crop is taken without a full-size intermediate. */
typedef struct axis_coeffs {
    int64_t ksize;
    int64_t *start; /* first source index of output j */
    int64_t *count; /* taps used by output j */
    double *w;      /* out * ksize weights */
} axis_coeffs;

static void coeffs_free(axis_coeffs *c) {
    qf_free(c->start);
    qf_free(c->count);
    qf_free(c->w);
    memset(c, 0, sizeof *c); /* safe to free again */
}

static double triangle(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static bool make_coeffs(int64_t in, int64_t resized, int64_t offset, int64_t out, axis_coeffs *c) {
    memset(c, 0, sizeof *c);
    double scale = (double)in / (double)resized;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = filterscale; /* the triangle's support is 1 */
    c->ksize = (int64_t)ceil(support) * 2 + 1;
    size_t nw;
    if (!qf_mul_size((size_t)out, (size_t)c->ksize, &nw) || nw > SIZE_MAX / sizeof(double))
        return false;
    c->start = qf_malloc((size_t)out * sizeof(int64_t));
    c->count = qf_malloc((size_t)out * sizeof(int64_t));
    c->w = qf_malloc(nw * sizeof(double));
    if (!c->start || !c->count || !c->w) {
        coeffs_free(c);
        return false;
    }
    for (int64_t j = 0; j < out; j++) {
        double center = ((double)(offset + j) + 0.5) * scale;
        /* (int64_t) truncates toward zero, as PIL's (int) does */
        int64_t lo = (int64_t)(center - support + 0.5), hi = (int64_t)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int64_t n = hi - lo;
        if (n < 0) n = 0;
        if (n > c->ksize) n = c->ksize;
        double *w = c->w + j * c->ksize, sum = 0;
        for (int64_t k = 0; k < n; k++) {
            w[k] = triangle(((double)(k + lo) - center + 0.5) / filterscale);
            sum += w[k];
        }
        if (sum != 0)
            for (int64_t k = 0; k < n; k++)
                w[k] /= sum;
        c->start[j] = lo;
        c->count[j] = n;
    }
    return true;
}

/* src: C planes of h x w floats -> dst: C planes of out_h x out_w. */
static qf_status resample(const float *src, int64_t C, int64_t h, int64_t w, int64_t rh, int64_t rw,
                          int64_t oy, int64_t ox, int64_t out_h, int64_t out_w, float *dst,
                          const char *path, qf_err *err) {
    axis_coeffs cx, cy;
    float *tmp = NULL;
    size_t ntmp = 0;
    bool ok = make_coeffs(w, rw, ox, out_w, &cx);
    ok = make_coeffs(h, rh, oy, out_h, &cy) && ok;
    ok = ok && qf_mul_size((size_t)(C * h), (size_t)out_w, &ntmp) &&
         ntmp <= SIZE_MAX / sizeof(float) && (tmp = qf_malloc(ntmp * sizeof(float) + 1)) != NULL;
    if (ok) {
        for (int64_t r = 0; r < C * h; r++) { /* horizontal pass, every source row */
            const float *s = src + r * w;
            float *t = tmp + r * out_w;
            for (int64_t j = 0; j < out_w; j++) {
                const double *wt = cx.w + j * cx.ksize;
                const float *sp = s + cx.start[j];
                double acc = 0;
                for (int64_t k = 0; k < cx.count[j]; k++)
                    acc += sp[k] * wt[k];
                t[j] = (float)acc;
            }
        }
        for (int64_t c = 0; c < C; c++) { /* vertical pass */
            const float *t = tmp + c * h * out_w;
            float *o = dst + c * out_h * out_w;
            for (int64_t i = 0; i < out_h; i++) {
                const double *wt = cy.w + i * cy.ksize;
                const float *tp = t + cy.start[i] * out_w;
                for (int64_t j = 0; j < out_w; j++) {
                    double acc = 0;
                    for (int64_t k = 0; k < cy.count[i]; k++)
                        acc += tp[k * out_w + j] * wt[k];
                    o[i * out_w + j] = (float)acc;
                }
            }
        }
    }
    coeffs_free(&cx);
    coeffs_free(&cy);
    qf_free(tmp);
    return ok ? QF_OK : qf_errf(err, QF_ERR_NOMEM, "%s: out of memory resizing", path);
}

/* Size before the crop, and the crop's offsets, for an h x w source. */
static void geometry(const qf_image_folder *f, int64_t h, int64_t w, int64_t *rh, int64_t *rw,
                     int64_t *oy, int64_t *ox) {
    *oy = *ox = 0;
    if (f->mode == GEOM_NATIVE) {
        *rh = h;
        *rw = w;
    } else if (f->mode == GEOM_STRETCH) {
        *rh = f->out_h;
        *rw = f->out_w;
    } else {
        /* torchvision: Resize(S) then CenterCrop((H, W)): the long side is
         * int(S * long / short), the crop offset int(round((size - crop) / 2)) */
        int64_t S = f->resize_short;
        if (w <= h) {
            *rw = S;
            *rh = (int64_t)((double)(S * h) / (double)w);
        } else {
            *rh = S;
            *rw = (int64_t)((double)(S * w) / (double)h);
        }
        *oy = (int64_t)nearbyint((double)(*rh - f->out_h) / 2.0); /* half to even, as round() */
        *ox = (int64_t)nearbyint((double)(*rw - f->out_w) / 2.0);
    }
}

/* ---- fill ------------------------------------------------------------------------- */
static bool is_pnm(const unsigned char *b, size_t len) {
    return len >= 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6');
}

/* Binary PGM/PPM samples, read here rather than by stb 2.27, which copies
 * 16-bit samples without swapping them from big-endian and ignores maxval.
 * Values are rescaled to 0..255 by maxval. False if the header disagrees
 * with fi or the samples do not fit (re-checked: this reads the buffer). */
static bool pnm_samples(const img_file *fi, const unsigned char *b, size_t len, float *dst) {
    uint64_t v[3];
    size_t off = 0;
    if (pnm_header(b, len, v, &off) != NULL) return false;
    uint64_t comp = b[1] == '6' ? 3 : 1, bytes = v[2] > 255 ? 2 : 1;
    if (v[0] != (uint64_t)fi->w || v[1] != (uint64_t)fi->h || comp != (uint64_t)fi->comp)
        return false;
    size_t n = (size_t)(v[0] * v[1] * comp);
    if (n * bytes > len - off) return false;
    const unsigned char *d = b + off;
    float k = 255.0f / (float)v[2];
    for (size_t i = 0; i < n; i++)
        dst[i] = (float)(bytes == 2 ? (unsigned)d[2 * i] << 8 | d[2 * i + 1] : d[i]) * k;
    return true;
}

/* Decode a complete file to hw * comp samples in 0..255 (*samples: caller
 * frees). 16-bit PNG samples are divided by 257, so that every depth spans
 * the same range and the default scale 1/255 maps each onto [0, 1]. */
static qf_status decode_samples(const img_file *fi, const unsigned char *buf, size_t len,
                                float **samples, qf_err *err) {
    size_t n = (size_t)fi->w * (size_t)fi->h * (size_t)fi->comp; /* <= 2^30 */
    float *out = qf_malloc(n * sizeof(float));
    if (!out) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory decoding", fi->path);
    if (is_pnm(buf, len)) {
        if (!pnm_samples(fi, buf, len, out)) {
            qf_free(out);
            return qf_errf(err, QF_ERR_FORMAT, "%s: changed since the dataset was opened",
                           fi->path);
        }
        *samples = out;
        return QF_OK;
    }
    /* Ask for the header's channel count explicitly: with 0, a PNG with a
     * tRNS chunk comes back with an extra alpha channel that the reported
     * count leaves out. */
    stb_oom_reset();
    int w = 0, h = 0, file_comp;
    bool wide = stbi_is_16_bit_from_memory(buf, (int)len) != 0;
    void *pix = wide ? (void *)stbi_load_16_from_memory(buf, (int)len, &w, &h, &file_comp, fi->comp)
                     : (void *)stbi_load_from_memory(buf, (int)len, &w, &h, &file_comp, fi->comp);
    qf_status st = QF_OK;
    if (!pix && stb_out_of_memory())
        st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory decoding", fi->path);
    else if (!pix)
        st = qf_errf(err, QF_ERR_FORMAT, "%s: cannot decode (%s)", fi->path, stb_reason());
    else if (w != fi->w || h != fi->h)
        st = qf_errf(err, QF_ERR_FORMAT, "%s: changed since the dataset was opened", fi->path);
    if (!st) {
        const stbi_uc *p8 = pix;
        const stbi_us *p16 = pix;
        for (size_t i = 0; i < n; i++)
            out[i] = wide ? (float)p16[i] / 257.0f : (float)p8[i];
        *samples = out;
    } else {
        qf_free(out);
    }
    stbi_image_free(pix);
    return st;
}

/* Decode one file into C float planes (caller frees *planes). */
static qf_status decode_planes(const img_file *fi, int C, float **planes, qf_err *err) {
    *planes = NULL;
    void *buf;
    size_t len;
    qf_status st = qf_read_file(fi->path, &buf, &len, err);
    if (st) return st;
    const char *why = image_incomplete(buf, len);
    int w = 0, h = 0, comp = 0;
    if (why) {
        st = qf_errf(err, QF_ERR_FORMAT, "%s: %s", fi->path, why);
    } else if (len > INT_MAX) {
        st = qf_errf(err, QF_ERR_FORMAT, "%s: file too large (%zu bytes)", fi->path, len);
    } else if ((why = header_hazard(buf, len, true)) != NULL) {
        st = qf_errf(err, QF_ERR_FORMAT, "%s: %s", fi->path, why);
    } else if (stb_oom_reset(), !stbi_info_from_memory(buf, (int)len, &w, &h, &comp)) {
        st = stb_out_of_memory()
                 ? qf_errf(err, QF_ERR_NOMEM, "%s: out of memory decoding", fi->path)
                 : qf_errf(err, QF_ERR_FORMAT, "%s: cannot decode (%s)", fi->path, stb_reason());
    } else if (w != fi->w || abs_height(h) != fi->h || comp != fi->comp) {
        st = qf_errf(err, QF_ERR_FORMAT, "%s: changed since the dataset was opened", fi->path);
    }
    float *smp = NULL;
    if (!st) st = decode_samples(fi, buf, len, &smp, err);
    qf_free(buf);
    comp = fi->comp;
    size_t hw = (size_t)fi->w * (size_t)fi->h;
    float *p = st ? NULL : qf_malloc(hw * (size_t)C * sizeof(float));
    if (!st && !p) st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory decoding", fi->path);
    if (!st) {
        bool color = comp >= 3;
        for (size_t i = 0; i < hw; i++) {
            const float *px = smp + i * (size_t)comp;
            if (C == 1) {
                /* ITU-R 601 luma, the weights of PIL's convert("L"), in float */
                p[i] = color ? (float)(0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]) : px[0];
            } else {
                for (int c = 0; c < 3; c++)
                    p[(size_t)c * hw + i] = color ? px[c] : px[0];
            }
        }
        *planes = p;
    }
    qf_free(smp);
    return st;
}

qf_status qf_image_folder_fill(const qf_dataset *d, int64_t first, int64_t count, float *dst,
                               qf_err *err) {
    const qf_image_folder *f = d->folder;
    const int64_t C = f->channels, OH = f->out_h, OW = f->out_w, plane = OH * OW;
    float *out = NULL; /* resampled planes, reused across samples */
    if (f->mode != GEOM_NATIVE && count > 0) {
        out = qf_malloc((size_t)(C * plane) * sizeof(float));
        if (!out) return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", d->source);
    }
    qf_status st = QF_OK;
    for (int64_t s = 0; s < count && !st; s++) {
        const img_file *fi = &f->files[first + s];
        float *src;
        st = decode_planes(fi, (int)C, &src, err);
        if (st) break;
        const float *res = src;
        if (f->mode != GEOM_NATIVE) {
            int64_t rh, rw, oy, ox;
            geometry(f, fi->h, fi->w, &rh, &rw, &oy, &ox);
            if (rh == fi->h && rw == fi->w && oy == 0 && ox == 0) {
                memcpy(out, src, (size_t)(C * plane) * sizeof(float)); /* already that size */
            } else {
                st = resample(src, C, fi->h, fi->w, rh, rw, oy, ox, OH, OW, out, fi->path, err);
            }
            res = out;
        }
        float *o = dst + s * C * plane;
        for (int64_t c = 0; c < C && !st; c++) {
            float mean = 0, inv_std = 1;
            if (d->n_norm) {
                int k = d->n_norm == 1 ? 0 : (int)c;
                mean = d->mean[k];
                inv_std = 1.0f / d->std[k];
            }
            const float *p = res + c * plane;
            if (d->out_nhwc) {
                for (int64_t i = 0; i < plane; i++)
                    o[i * C + c] = (p[i] * d->scale - mean) * inv_std;
            } else {
                for (int64_t i = 0; i < plane; i++)
                    o[c * plane + i] = (p[i] * d->scale - mean) * inv_std;
            }
        }
        qf_free(src);
    }
    qf_free(out);
    return st;
}

/* stb_image declares two functions it never defines in this configuration
 * (GIF loading, a thread-local setter); GCC reports those at the end of the
 * translation unit, where the include's pragma no longer applies. */
#pragma GCC diagnostic ignored "-Wunused-function"
