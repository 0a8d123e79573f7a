/* qtest.h - minimal table-driven test harness. Each test binary lists its
 * cases in a QT_CASES table; main() runs them and prints
 * "<binary>: N passed, N failed". A case fails on its first failed CHECK. */
#ifndef QTEST_H
#define QTEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct qt_case {
    const char *name;
    void (*fn)(void);
} qt_case;

static int qt_failed_flag;
static const char *qt_current;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "  FAIL %s (%s:%d): %s\n", qt_current, __FILE__, __LINE__, #cond); \
            qt_failed_flag = 1;                                                           \
            return;                                                                       \
        }                                                                                 \
    } while (0)

#define CHECK_MSG(cond, ...)                                                              \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "  FAIL %s (%s:%d): %s: ", qt_current, __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
            qt_failed_flag = 1;                                                           \
            return;                                                                       \
        }                                                                                 \
    } while (0)

#define CHECK_EQ_INT(a, b) CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))
#define CHECK_NEAR(a, b, tol) CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)", (double)(a), (double)(b), (double)(tol))
#define CHECK_OK(expr)                                                                    \
    do {                                                                                  \
        qf_err qt_e_;                                                                     \
        qt_e_.msg[0] = 0;                                                                 \
        (void)qt_e_;                                                                      \
        int qt_s_ = (int)(expr);                                                          \
        CHECK_MSG(qt_s_ == 0, "status %d", qt_s_);                                        \
    } while (0)

static inline int qt_run(const char *prog, const qt_case *cases, int n) {
    int passed = 0, failed = 0;
    const char *filter = getenv("QT_FILTER");
    for (int i = 0; i < n; i++) {
        if (filter && !strstr(cases[i].name, filter)) continue;
        qt_failed_flag = 0;
        qt_current = cases[i].name;
        cases[i].fn();
        if (qt_failed_flag)
            failed++;
        else
            passed++;
    }
    const char *base = strrchr(prog, '/');
    printf("%s: %d passed, %d failed\n", base ? base + 1 : prog, passed, failed);
    return failed ? 1 : 0;
}

#define QT_MAIN(...)                                                     \
    int main(int argc, char **argv) {                                    \
        (void)argc;                                                      \
        static const qt_case qt_cases_[] = {__VA_ARGS__};                \
        return qt_run(argv[0], qt_cases_, (int)(sizeof qt_cases_ / sizeof qt_cases_[0])); \
    }
#define QT_CASE(fn) {#fn, fn}

#endif /* QTEST_H */
