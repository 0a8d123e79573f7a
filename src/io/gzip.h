/* gzip.h - bounded in-memory gzip inflation (internal to io/). */
#ifndef QF_IO_GZIP_H
#define QF_IO_GZIP_H

#include "base/base.h"

/* True when buf starts with the gzip magic 1f 8b. */
bool qf_is_gzip(const void *buf, size_t len);

/* Inflate the gzip stream in buf (one or more members) into *out (qf_malloc'd,
 * caller frees), producing at most `cap` bytes (cap >= 1): a caller that
 * expects T bytes passes T + 1 to notice trailing data. *complete is set when
 * the whole stream ended cleanly with no bytes after it; a stream cut short
 * is not an error here (the caller reports the size it got). Corrupt data or
 * garbage after the last member is QF_ERR_FORMAT naming `name`. The output
 * buffer grows with the data, so a header that claims a huge size costs only
 * what the stream really holds. */
qf_status qf_gunzip(const void *buf, size_t len, size_t cap, const char *name, void **out,
                    size_t *out_len, bool *complete, qf_err *err);

#endif /* QF_IO_GZIP_H */
