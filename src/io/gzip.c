/* gzip.c - bounded in-memory gzip inflation through zlib, with zlib's
 * allocations routed to the qforge allocator. */
#include <limits.h>
#include <zlib.h>

#include "io/gzip.h"

bool qf_is_gzip(const void *buf, size_t len) {
    const unsigned char *p = buf;
    return len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

static voidpf zalloc_qf(voidpf opaque, uInt items, uInt size) {
    (void)opaque;
    size_t n;
    if (!qf_mul_size(items, size, &n)) return Z_NULL;
    return qf_malloc(n);
}

static void zfree_qf(voidpf opaque, voidpf p) {
    (void)opaque;
    qf_free(p);
}

qf_status qf_gunzip(const void *buf, size_t len, size_t cap, const char *name, void **out,
                    size_t *out_len, bool *complete, qf_err *err) {
    *out = NULL;
    *out_len = 0;
    *complete = false;
    if (cap == 0) return qf_errf(err, QF_ERR_INVALID_ARG, "%s: gunzip cap must be > 0", name);
    const unsigned char *base = buf;
    z_stream zs = {0};
    zs.zalloc = zalloc_qf;
    zs.zfree = zfree_qf;
    /* 15 + 16: a 32 KiB window and gzip (not zlib) framing. */
    if (inflateInit2(&zs, 15 + 16) != Z_OK)
        return qf_errf(err, QF_ERR_NOMEM, "%s: cannot start gzip decoder", name);
    /* Start small relative to the input: deflate rarely beats ~8:1 on real
     * data, and growth is geometric anyway. */
    size_t bufcap = QF_MIN(cap, QF_MAX((size_t)65536, len < SIZE_MAX / 8 ? len * 8 : len));
    unsigned char *ob = qf_malloc(bufcap);
    if (!ob) {
        inflateEnd(&zs);
        return qf_errf(err, QF_ERR_NOMEM, "%s: out of memory inflating", name);
    }
    size_t have = 0, pos = 0;
    qf_status st = QF_OK;
    while (have < cap) {
        if (have == bufcap) {
            size_t ncap = bufcap <= cap / 2 ? bufcap * 2 : cap;
            unsigned char *nb = qf_realloc(ob, ncap);
            if (!nb) {
                st = qf_errf(err, QF_ERR_NOMEM, "%s: out of memory inflating (%zu bytes)", name,
                             ncap);
                break;
            }
            ob = nb;
            bufcap = ncap;
        }
        if (zs.avail_in == 0 && pos < len) {
            zs.next_in = (unsigned char *)base + pos;
            zs.avail_in = (uInt)QF_MIN(len - pos, (size_t)UINT_MAX);
        }
        uInt room = (uInt)QF_MIN(bufcap - have, (size_t)UINT_MAX);
        zs.next_out = ob + have;
        zs.avail_out = room;
        uInt in_before = zs.avail_in;
        int r = inflate(&zs, Z_NO_FLUSH);
        have += room - zs.avail_out;
        pos += in_before - zs.avail_in;
        if (r == Z_STREAM_END) {
            if (pos == len) {
                *complete = true;
                break;
            }
            /* Another gzip member may follow (as `cat a.gz b.gz` makes). */
            if (qf_is_gzip(base + pos, len - pos)) {
                inflateReset(&zs);
                continue;
            }
            st = qf_errf(err, QF_ERR_FORMAT,
                         "%s: %zu bytes of trailing garbage after the gzip data", name, len - pos);
            break;
        }
        if (r == Z_BUF_ERROR && pos < len) {
            /* no progress with input and room left: never happens on sane
             * data, and looping on it would never end */
            st = qf_errf(err, QF_ERR_FORMAT, "%s: corrupt gzip data (decoder stalled)", name);
            break;
        }
        if (r == Z_BUF_ERROR || (r == Z_OK && pos == len && zs.avail_out != 0)) {
            /* No progress possible: the input ended inside the stream. */
            break;
        }
        if (r != Z_OK) {
            st = qf_errf(err, QF_ERR_FORMAT, "%s: corrupt gzip data: %s", name,
                         zs.msg ? zs.msg : "inflate failed");
            break;
        }
    }
    inflateEnd(&zs);
    if (st != QF_OK) {
        qf_free(ob);
        return st;
    }
    *out = ob;
    *out_len = have;
    return QF_OK;
}
