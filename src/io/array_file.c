/* array_file.c - read an array file whose format (NPY, IDX, gzipped IDX) is
 * told by its first bytes, never by its name. */
#include <string.h>

#include "io/data.h"
#include "io/gzip.h"

qf_status qf_array_read(const char *path, qf_tensor *out, qf_err *err) {
    memset(out, 0, sizeof *out);
    void *buf;
    size_t len;
    qf_status st = qf_read_file(path, &buf, &len, err);
    if (st) return st;
    const unsigned char *b = buf;
    if (len == 0) {
        st = qf_errf(err, QF_ERR_FORMAT, "%s: empty file (0 bytes)", path);
    } else if (len >= 6 && memcmp(b, "\x93NUMPY", 6) == 0) {
        st = qf_npy_decode(buf, len, path, out, err);
    } else if (qf_is_gzip(buf, len) || (len >= 2 && b[0] == 0 && b[1] == 0)) {
        st = qf_idx_decode(buf, len, path, out, err);
    } else {
        st = qf_errf(err, QF_ERR_FORMAT, "%s: not an NPY or IDX array file (magic %02x %02x)", path,
                     b[0], len > 1 ? b[1] : 0);
    }
    qf_free(buf);
    return st;
}
