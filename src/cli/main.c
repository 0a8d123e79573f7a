/* main.c - qforge's entry point: git-style verb dispatch, top-level help and
 * version, and a "did you mean" hint for mistyped verbs. */
#include <string.h>

#include "cli/cli.h"

/* Verbs in the order of the pipeline (DESIGN.md), then the tools. */
static const cli_cmd *const commands[] = {
    &cli_cmd_inspect, &cli_cmd_check,    &cli_cmd_train,  &cli_cmd_distill,
    &cli_cmd_prune,   &cli_cmd_cluster,  &cli_cmd_quantize, &cli_cmd_qat, &cli_cmd_eval,
    &cli_cmd_compress, &cli_cmd_export,  &cli_cmd_run,      &cli_cmd_bench};

static void print_main_help(FILE *f) {
    fprintf(f, "usage: qforge <command> [options]\n\n"
               "qforge compresses trained neural networks and runs them in fixed point:\n"
               "check -> train/distill -> prune -> quantize -> eval -> export -> run.\n\n"
               "commands:\n");
    for (size_t i = 0; i < QF_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "\noptions:\n  -h, --help     show this help\n"
               "  -V, --version  print the version\n\n"
               "'qforge <command> --help' shows a command's options and an example.\n"
               "exit status: 0 ok, 1 the work failed, 2 bad usage or bad input.\n");
}

/* Levenshtein distance, for suggesting the verb the user probably meant. */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32) return 99;
    int row[33];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int best = QF_MIN(row[j] + 1, row[j - 1] + 1);
            row[j] = QF_MIN(best, diag + cost);
            diag = up;
        }
    }
    return row[lb];
}

static const cli_cmd *find_command(const char *name) {
    for (size_t i = 0; i < QF_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

static int unknown_command(const char *name) {
    const cli_cmd *best = NULL;
    int best_d = 3; /* suggest only close matches */
    for (size_t i = 0; i < QF_ARRAY_LEN(commands); i++) {
        int d = edit_distance(name, commands[i]->name);
        if (d < best_d) {
            best_d = d;
            best = commands[i];
        }
    }
    if (best)
        cli_error("unknown command '%s' (did you mean '%s'? see 'qforge --help')", name,
                  best->name);
    else
        cli_error("unknown command '%s' (see 'qforge --help' for the list)", name);
    return CLI_EXIT_USAGE;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_main_help(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0) {
        print_main_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(verb, "-V") == 0 || strcmp(verb, "--version") == 0) {
        printf("qforge %d.%d.%d\n", QF_VERSION_MAJOR, QF_VERSION_MINOR, QF_VERSION_PATCH);
        return CLI_EXIT_OK;
    }
    if (strcmp(verb, "help") == 0) {
        if (argc < 3) {
            print_main_help(stdout);
            return CLI_EXIT_OK;
        }
        const cli_cmd *c = find_command(argv[2]);
        if (!c) return unknown_command(argv[2]);
        cli_print_help(c, stdout);
        return CLI_EXIT_OK;
    }
    if (verb[0] == '-') {
        cli_error("unknown option '%s' (see 'qforge --help')", verb);
        return CLI_EXIT_USAGE;
    }
    const cli_cmd *cmd = find_command(verb);
    if (!cmd) return unknown_command(verb);
    cli_args a;
    int rc = cli_parse(cmd, argc - 2, argv + 2, &a);
    if (rc >= 0) return rc;
    rc = cmd->run(&a);
    cli_args_free(&a);
    return rc;
}
