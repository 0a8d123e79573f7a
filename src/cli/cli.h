/* cli.h - shared pieces of the qforge command-line tool: the verb table,
 * option parsing, one-line error reporting, JSON output and progress.
 * The CLI is the only part of qforge that prints. */
#ifndef QF_CLI_H
#define QF_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "base/base.h"

/* Exit codes (DESIGN.md): work done / work failed / bad usage or input. */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

/* ---- options ------------------------------------------------------------- */
typedef struct cli_opt {
    const char *name; /* long name without "--" */
    char short_name;  /* 0: none */
    const char *arg;  /* metavar shown in help; NULL for a flag */
    const char *help;
} cli_opt;

struct cli_args;
typedef struct cli_cmd {
    const char *name;
    const char *summary;     /* one line, for `qforge --help` */
    const char *usage;       /* what follows "qforge <verb> " */
    const char *description; /* a few lines for `qforge <verb> --help` */
    const cli_opt *opts;
    int n_opts;
    int min_pos, max_pos; /* positional argument count */
    const char *example;  /* one or more example lines */
    int (*run)(const struct cli_args *a);
} cli_cmd;

typedef struct cli_args {
    const cli_cmd *cmd;
    int n_pos;
    const char **pos;
    int n_vals;
    int *val_opt;     /* option index of each value */
    const char **val; /* its value ("" for flags) */
} cli_args;

/* Parse argv (after the verb). Returns -1 when parsing succeeded, else the
 * exit code to leave with (0 after --help, 2 after a usage error, already
 * reported). */
int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *a);
void cli_args_free(cli_args *a);
void cli_print_help(const cli_cmd *cmd, FILE *f);

/* Last value of option `name` (NULL if absent); flags read as "". */
const char *cli_get(const cli_args *a, const char *name);
int cli_count(const cli_args *a, const char *name);
/* i-th value of a repeatable option, in command-line order. */
const char *cli_get_nth(const cli_args *a, const char *name, int i);
bool cli_flag(const cli_args *a, const char *name);
/* Integer option in [lo, hi]; absent -> dflt. Returns false after reporting
 * a usage error. */
bool cli_get_int(const cli_args *a, const char *name, long long lo, long long hi, long long dflt,
                 long long *out);

/* ---- reporting ------------------------------------------------------------ */
/* Print "qforge: <message>" as one line on stderr (newlines in the message
 * are flattened). */
void cli_error(const char *fmt, ...) QF_PRINTF(1, 2);
/* Report a library error; returns the exit code its status calls for
 * (2 for bad input: io, format, shape, unsupported, invalid argument;
 * 1 otherwise). */
int cli_fail(const qf_err *e, qf_status s);
/* Usage error naming the verb, with a hint to its --help; returns 2. */
int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) QF_PRINTF(2, 3);

/* ---- JSON writing ------------------------------------------------------------ */
/* Write s as a JSON string literal (quotes included; NULL -> null). */
void cli_json_str(FILE *f, const char *s);

/* ---- shapes ------------------------------------------------------------------ */
/* "[N, 1, 28, 28]": -1 dims print as N for the first axis and as d<i> after
 * it; rank < 0 prints "?". */
void cli_format_shape(char *buf, size_t len, int rank, const int64_t *dims);

/* ---- progress ------------------------------------------------------------------ */
typedef struct cli_progress {
    const char *label;
    long long total;
    long long done;
    bool tty;
    double t_start, t_last;
    int last_decile; /* non-TTY: last 10% step printed */
    bool active;
} cli_progress;

double cli_now(void); /* monotonic seconds */
/* A bar redrawn in place when stderr is a terminal; otherwise a plain line
 * at every 10%. */
void cli_progress_start(cli_progress *p, const char *label, long long total);
void cli_progress_update(cli_progress *p, long long done);
void cli_progress_finish(cli_progress *p);

/* ---- datasets ------------------------------------------------------------------ */
struct qf_dataset_options;
/* Dataset options from --split, --limit, --nhwc, --scale, --mean, --std
 * (the verb must declare them). Returns false after a usage error. */
bool cli_dataset_options(const cli_args *a, const char *default_split,
                         struct qf_dataset_options *o);

/* `qforge eval` on a .qfm: float vs quantized comparison (cmd_eval_quant.c). */
int cli_eval_quant(const cli_args *a, const struct qf_dataset_options *dopt, const char *spec,
                   const char *labels, int threads, int batch);

/* ---- verbs ------------------------------------------------------------------ */
extern const cli_cmd cli_cmd_inspect;
extern const cli_cmd cli_cmd_run;
extern const cli_cmd cli_cmd_eval;
extern const cli_cmd cli_cmd_quantize;
extern const cli_cmd cli_cmd_export;
extern const cli_cmd cli_cmd_train, cli_cmd_distill, cli_cmd_qat;
extern const cli_cmd cli_cmd_bench;
extern const cli_cmd cli_cmd_check;
extern const cli_cmd cli_cmd_prune, cli_cmd_cluster;
extern const cli_cmd cli_cmd_compress;

#endif /* QF_CLI_H */
