/* file.c - whole-file reads and atomic (temp + rename) writes. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

qf_status qf_read_file(const char *path, void **buf, size_t *len, qf_err *err) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return qf_errf(err, QF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return qf_errf(err, QF_ERR_IO, "%s: cannot seek (not a regular file?)", path);
    }
    long sz = ftell(f);
    if (sz < 0) {
        fclose(f);
        return qf_errf(err, QF_ERR_IO, "%s: cannot determine size", path);
    }
    rewind(f);
    unsigned char *p = qf_malloc((size_t)sz + 1);
    if (!p) {
        fclose(f);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory reading %ld bytes", path, sz);
    }
    size_t got = fread(p, 1, (size_t)sz, f);
    int rerr = ferror(f);
    fclose(f);
    if (got != (size_t)sz || rerr) {
        qf_free(p);
        return qf_errf(err, QF_ERR_IO, "%s: read failed", path);
    }
    p[sz] = 0;
    *buf = p;
    *len = (size_t)sz;
    return QF_OK;
}

qf_status qf_atomic_open(qf_atomic_file *f, const char *path, qf_err *err) {
    memset(f, 0, sizeof *f);
    f->path = qf_strdup(path);
    size_t n = strlen(path) + 32;
    f->tmp_path = qf_malloc(n);
    if (!f->path || !f->tmp_path) {
        qf_free(f->path);
        qf_free(f->tmp_path);
        f->path = f->tmp_path = NULL;
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(f->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) {
        qf_status s = qf_errf(err, QF_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        qf_free(f->path);
        qf_free(f->tmp_path);
        f->path = f->tmp_path = NULL;
        return s;
    }
    return QF_OK;
}

qf_status qf_atomic_write(qf_atomic_file *f, const void *data, size_t len, qf_err *err) {
    if (f->failed) return QF_ERR_IO;
    if (len && fwrite(data, 1, len, f->fp) != len) {
        f->failed = true;
        return qf_errf(err, QF_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
    }
    return QF_OK;
}

static void atomic_release(qf_atomic_file *f) {
    qf_free(f->path);
    qf_free(f->tmp_path);
    f->path = f->tmp_path = NULL;
    f->fp = NULL;
}

qf_status qf_atomic_commit(qf_atomic_file *f, qf_err *err) {
    if (!f->fp) return qf_errf(err, QF_ERR_INVALID_ARG, "atomic file not open");
    int bad = f->failed;
    if (fflush(f->fp) != 0) bad = 1;
    if (fclose(f->fp) != 0) bad = 1;
    f->fp = NULL;
    if (bad) {
        remove(f->tmp_path);
        qf_status s = qf_errf(err, QF_ERR_IO, "%s: write failed", f->path);
        atomic_release(f);
        return s;
    }
    if (rename(f->tmp_path, f->path) != 0) {
        qf_status s = qf_errf(err, QF_ERR_IO, "%s: cannot rename into place: %s", f->path,
                              strerror(errno));
        remove(f->tmp_path);
        atomic_release(f);
        return s;
    }
    atomic_release(f);
    return QF_OK;
}

void qf_atomic_abort(qf_atomic_file *f) {
    if (f->fp) {
        fclose(f->fp);
        remove(f->tmp_path);
    }
    atomic_release(f);
}

qf_status qf_write_file_atomic(const char *path, const void *data, size_t len, qf_err *err) {
    qf_atomic_file f;
    qf_status s = qf_atomic_open(&f, path, err);
    if (s) return s;
    s = qf_atomic_write(&f, data, len, err);
    if (s) {
        qf_atomic_abort(&f);
        return s;
    }
    return qf_atomic_commit(&f, err);
}
