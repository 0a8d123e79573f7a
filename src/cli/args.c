/* args.c - option parsing and per-verb help for the qforge CLI.
 * Accepted forms: --name VALUE, --name=VALUE, -x VALUE, -xVALUE, flags
 * --name / -x, and "--" to end options. -h/--help anywhere prints help. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const cli_opt help_opt = {"help", 'h', NULL, "show this help and exit"};

static int find_long(const cli_cmd *cmd, const char *name, size_t len) {
    for (int i = 0; i < cmd->n_opts; i++)
        if (strlen(cmd->opts[i].name) == len && strncmp(cmd->opts[i].name, name, len) == 0)
            return i;
    return -1;
}

static int find_short(const cli_cmd *cmd, char c) {
    for (int i = 0; i < cmd->n_opts; i++)
        if (cmd->opts[i].short_name == c) return i;
    return -1;
}

static bool is_help(const char *s) { return strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0; }

int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *a) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (is_help(argv[i])) {
            cli_print_help(cmd, stdout);
            return CLI_EXIT_OK;
        }
    }
    size_t n = (size_t)(argc > 0 ? argc : 1);
    a->pos = qf_calloc(n, sizeof *a->pos);
    a->val = qf_calloc(n, sizeof *a->val);
    a->val_opt = qf_calloc(n, sizeof *a->val_opt);
    if (!a->pos || !a->val || !a->val_opt) {
        cli_args_free(a);
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (options_done || s[0] != '-' || s[1] == 0) {
            a->pos[a->n_pos++] = s;
            continue;
        }
        if (strcmp(s, "--") == 0) {
            options_done = true;
            continue;
        }
        int oi;
        const char *inline_val = NULL;
        char shown[64];
        if (s[1] == '-') {
            const char *name = s + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            oi = find_long(cmd, name, len);
            snprintf(shown, sizeof shown, "--%.*s", (int)QF_MIN(len, (size_t)40), name);
            if (eq) inline_val = eq + 1;
        } else {
            oi = find_short(cmd, s[1]);
            snprintf(shown, sizeof shown, "-%c", s[1]);
            if (s[2]) inline_val = s + 2;
        }
        if (oi < 0) {
            int rc = cli_usage_error(cmd, "unknown option '%s'", shown);
            cli_args_free(a);
            return rc;
        }
        const cli_opt *o = &cmd->opts[oi];
        const char *v = "";
        if (o->arg) {
            if (inline_val) {
                v = inline_val;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                int rc = cli_usage_error(cmd, "option '%s' needs a value (%s)", shown, o->arg);
                cli_args_free(a);
                return rc;
            }
        } else if (inline_val) {
            int rc = cli_usage_error(cmd, "option '%s' takes no value", shown);
            cli_args_free(a);
            return rc;
        }
        a->val_opt[a->n_vals] = oi;
        a->val[a->n_vals++] = v;
    }
    if (a->n_pos < cmd->min_pos || a->n_pos > cmd->max_pos) {
        int rc = a->n_pos < cmd->min_pos
                     ? cli_usage_error(cmd, "missing argument (usage: qforge %s %s)", cmd->name,
                                       cmd->usage)
                     : cli_usage_error(cmd, "unexpected argument '%s'", a->pos[cmd->max_pos]);
        cli_args_free(a);
        return rc;
    }
    return -1;
}

void cli_args_free(cli_args *a) {
    qf_free(a->pos);
    qf_free(a->val);
    qf_free(a->val_opt);
    a->pos = NULL;
    a->val = NULL;
    a->val_opt = NULL;
    a->n_pos = a->n_vals = 0;
}

static int opt_index(const cli_args *a, const char *name) {
    return find_long(a->cmd, name, strlen(name));
}

const char *cli_get(const cli_args *a, const char *name) {
    int oi = opt_index(a, name);
    const char *v = NULL;
    for (int i = 0; i < a->n_vals; i++)
        if (a->val_opt[i] == oi) v = a->val[i];
    return v;
}

int cli_count(const cli_args *a, const char *name) {
    int oi = opt_index(a, name), n = 0;
    for (int i = 0; i < a->n_vals; i++)
        n += a->val_opt[i] == oi;
    return n;
}

const char *cli_get_nth(const cli_args *a, const char *name, int k) {
    int oi = opt_index(a, name);
    for (int i = 0; i < a->n_vals; i++)
        if (a->val_opt[i] == oi && k-- == 0) return a->val[i];
    return NULL;
}

bool cli_flag(const cli_args *a, const char *name) { return cli_get(a, name) != NULL; }

bool cli_get_int(const cli_args *a, const char *name, long long lo, long long hi, long long dflt,
                 long long *out) {
    const char *v = cli_get(a, name);
    if (!v) {
        *out = dflt;
        return true;
    }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        cli_usage_error(a->cmd, "--%s expects an integer in %lld..%lld, got '%s'", name, lo, hi, v);
        return false;
    }
    *out = x;
    return true;
}

/* Help text wraps at 80 columns, continuation lines under the column. */
static void print_opt(FILE *f, const cli_opt *o) {
    enum { COL = 28, WIDTH = 80 };
    char left[80];
    int n = o->short_name ? snprintf(left, sizeof left, "-%c, --%s", o->short_name, o->name)
                          : snprintf(left, sizeof left, "    --%s", o->name);
    if (o->arg) snprintf(left + n, sizeof left - (size_t)n, " %s", o->arg);
    if (strlen(left) + 4 <= COL)
        fprintf(f, "  %-*s", COL - 2, left);
    else
        fprintf(f, "  %s\n%*s", left, COL, "");
    const char *p = o->help;
    int col = COL;
    while (*p) {
        size_t w = strcspn(p, " ");
        if (col > COL && col + 1 + (int)w > WIDTH) {
            fprintf(f, "\n%*s", COL, "");
            col = COL;
        } else if (col > COL) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, w, f);
        col += (int)w;
        p += w;
        while (*p == ' ')
            p++;
    }
    fputc('\n', f);
}

void cli_print_help(const cli_cmd *cmd, FILE *f) {
    fprintf(f, "usage: qforge %s %s\n\n%s\n\noptions:\n", cmd->name, cmd->usage, cmd->description);
    for (int i = 0; i < cmd->n_opts; i++)
        print_opt(f, &cmd->opts[i]);
    print_opt(f, &help_opt);
    fprintf(f, "\nexample:\n%s\n", cmd->example);
}
