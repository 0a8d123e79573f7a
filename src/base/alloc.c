/* alloc.c - the injectable allocator and the bump arena. */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static void *default_alloc(void *u, size_t n) { (void)u; return malloc(n ? n : 1); }
static void *default_realloc(void *u, void *p, size_t n) { (void)u; return realloc(p, n ? n : 1); }
static void default_free(void *u, void *p) { (void)u; free(p); }

static qf_allocator g_alloc = {default_alloc, default_realloc, default_free, NULL};

void qf_set_allocator(const qf_allocator *a) {
    if (a)
        g_alloc = *a;
    else
        g_alloc = (qf_allocator){default_alloc, default_realloc, default_free, NULL};
}

void *qf_malloc(size_t n) { return g_alloc.alloc(g_alloc.user, n); }

void *qf_calloc(size_t count, size_t size) {
    size_t n;
    if (!qf_mul_size(count, size, &n)) return NULL;
    void *p = qf_malloc(n);
    if (p) memset(p, 0, n);
    return p;
}

void *qf_realloc(void *p, size_t n) { return g_alloc.realloc(g_alloc.user, p, n); }

void qf_free(void *p) {
    if (p) g_alloc.free(g_alloc.user, p);
}

char *qf_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = qf_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Aligned blocks keep the raw pointer just before the aligned address. */
void *qf_malloc_aligned(size_t n) {
    size_t total;
    if (!qf_add_size(n, 64 + sizeof(void *), &total)) return NULL;
    unsigned char *raw = qf_malloc(total);
    if (!raw) return NULL;
    uintptr_t a = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    ((void **)a)[-1] = raw;
    return (void *)a;
}

void qf_free_aligned(void *p) {
    if (p) qf_free(((void **)p)[-1]);
}

/* ---- arena ------------------------------------------------------------ */
struct qf_arena_chunk {
    qf_arena_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

void qf_arena_init(qf_arena *a) { memset(a, 0, sizeof *a); }

void *qf_arena_alloc(qf_arena *a, size_t n) {
    size_t need;
    if (!qf_add_size(n, 15, &need)) return NULL;
    need &= ~(size_t)15;
    qf_arena_chunk *c = a->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > 65536 ? need : 65536, total;
        if (!qf_add_size(cap, sizeof(qf_arena_chunk), &total)) return NULL;
        c = qf_malloc(total);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used_total += need;
    if (a->used_total > a->high_water) a->high_water = a->used_total;
    memset(p, 0, need);
    return p;
}

char *qf_arena_strdup(qf_arena *a, const char *s) {
    size_t n = strlen(s) + 1;
    char *d = qf_arena_alloc(a, n);
    if (d) memcpy(d, s, n);
    return d;
}

void qf_arena_free(qf_arena *a) {
    qf_arena_chunk *c = a->head;
    while (c) {
        qf_arena_chunk *next = c->next;
        qf_free(c);
        c = next;
    }
    qf_arena_init(a);
}
