/* progress.c - progress reporting on stderr: a bar redrawn in place when
 * stderr is a terminal, plain lines at every 10% when it is not (logs, CI),
 * so neither floods the other's output. */
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, const char *label, long long total) {
    p->label = label;
    p->total = total > 0 ? total : 1;
    p->done = 0;
    p->tty = isatty(fileno(stderr)) != 0;
    p->t_start = p->t_last = cli_now();
    p->last_decile = 0;
    p->active = true;
}

static void draw_bar(cli_progress *p, double now) {
    enum { WIDTH = 30 };
    int fill = (int)(WIDTH * p->done / p->total);
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[WIDTH] = 0;
    double dt = now - p->t_start;
    double rate = dt >= 0.01 ? (double)p->done / dt : 0;
    fprintf(stderr, "\r%s [%s] %3d%% %lld/%lld  %.0f/s ", p->label, bar,
            (int)(100 * p->done / p->total), p->done, p->total, rate);
    fflush(stderr);
}

void cli_progress_update(cli_progress *p, long long done) {
    if (!p->active) return;
    p->done = done > p->total ? p->total : done;
    double now = cli_now();
    if (p->tty) {
        /* Redraw at most 10 times a second. */
        if (now - p->t_last >= 0.1) {
            p->t_last = now;
            draw_bar(p, now);
        }
        return;
    }
    int decile = (int)(10 * p->done / p->total);
    if (decile > p->last_decile && decile < 10) {
        p->last_decile = decile;
        double dt = now - p->t_start;
        /* no rate before a measurable time has passed (work counted as
         * done when the bar starts would show billions per second) */
        if (dt >= 0.01)
            fprintf(stderr, "%s: %d%% (%lld/%lld, %.0f/s)\n", p->label, decile * 10, p->done,
                    p->total, (double)p->done / dt);
        else
            fprintf(stderr, "%s: %d%% (%lld/%lld)\n", p->label, decile * 10, p->done, p->total);
    }
}

void cli_progress_finish(cli_progress *p) {
    if (!p->active) return;
    if (p->tty) {
        draw_bar(p, cli_now()); /* the final state, whatever the last redraw showed */
        fputc('\n', stderr);
    } else if (p->last_decile < 10 && p->done == p->total) {
        double dt = cli_now() - p->t_start;
        fprintf(stderr, "%s: 100%% (%lld/%lld, %.0f/s)\n", p->label, p->done, p->total,
                dt > 0 ? (double)p->done / dt : 0.0);
    }
    p->active = false;
}
