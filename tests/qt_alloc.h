/* qt_alloc.h - a counting allocator for the tests that check that a
 * steady-state run allocates nothing: install qt_counting_allocator() with
 * qf_set_allocator, zero *qt_allocs(), run, read *qt_allocs(). */
#ifndef QT_ALLOC_H
#define QT_ALLOC_H

#include <stdlib.h>

#include "qforge.h"

static inline long *qt_allocs(void) {
    static long n;
    return &n;
}
static inline void *qt_count_alloc(void *u, size_t n) {
    (void)u;
    ++*qt_allocs();
    return malloc(n);
}
static inline void *qt_count_realloc(void *u, void *p, size_t n) {
    (void)u;
    ++*qt_allocs();
    return realloc(p, n);
}
static inline void qt_plain_free(void *u, void *p) {
    (void)u;
    free(p);
}
static inline qf_allocator qt_counting_allocator(void) {
    return (qf_allocator){qt_count_alloc, qt_count_realloc, qt_plain_free, NULL};
}

#endif /* QT_ALLOC_H */
