/*  zk_cli — one option table per binary drives both parsing and --help.

    Every zkit binary fills a zk_cli_t and calls zk_cli_parse. The parser
    adds the common options itself: -h/--help (usage on stdout, exit 0),
    -V/--version (exit 0), -v/--verbose (more log; twice for debug),
    -q/--quiet (errors only). Long options take "--name VALUE" or
    "--name=VALUE", short ones "-x VALUE" or "-xVALUE"; "--" ends the
    options. A usage problem prints one line "PROGRAM: problem" and a
    hint on stderr and exits 2; no arguments at all prints the usage on
    stderr and exits 2.                                                  */

#ifndef ZK_CLI_H_INCLUDED
#define ZK_CLI_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_CLI_LIST_MAX 64  //  values one repeatable option may take

typedef enum {
    ZK_OPT_FLAG,     //  bool *: set when given
    ZK_OPT_STRING,   //  const char **
    ZK_OPT_LIST,     //  zk_strlist_t *: repeatable
    ZK_OPT_INT,      //  int *: decimal, within [min, max]
    ZK_OPT_SIZE,     //  size_t *: bytes, with k/M/G suffix (powers of 1024), within [min, max]
    ZK_OPT_SECONDS,  //  double *: seconds, may be fractional, within [min, max]
    ZK_OPT_SPEC,     //  const char **: a valid socket spec
    ZK_OPT_CHOICE,   //  const char **: one of the '|'-separated choices
} zk_opt_kind_t;

typedef struct {
    const char *items[ZK_CLI_LIST_MAX];
    int count;
} zk_strlist_t;

typedef struct {
    const char *name;  //  long name, without "--"; NULL ends the table
    char letter;       //  short letter, or 0
    zk_opt_kind_t kind;
    void *target;         //  where the value goes (type by kind)
    const char *arg;      //  argument name in --help ("BYTES"); NULL for flags
    const char *help;     //  one line
    double min, max;      //  numeric range; min == max == 0: any non-negative value
    const char *choices;  //  for ZK_OPT_CHOICE: "raw|hex|json"
} zk_option_t;

typedef struct {
    const char *program;      //  "zkit-proxy"
    const char *usage;        //  what follows the program name: "[options] FRONTEND BACKEND"
    const char *summary;      //  one line: what it is
    const char *description;  //  paragraphs after the usage line, or NULL
    const char *examples;     //  shown at the end of --help, or NULL
    const zk_option_t *options;
    int min_args;             //  positional arguments
    int max_args;             //  -1: any number
    int spec_args;            //  the first spec_args positionals must be valid socket specs
    bool allow_no_args;       //  true: running with no arguments is fine
    const char *exit_status;  //  the "Exit status:" line of --help; NULL: 0 ok, 1 runtime, 2 usage
} zk_cli_t;

//  Parse argv by the table; sets the log program name and level. On
//  success returns the number of positional arguments and points
//  *args_p at them (inside argv). Exits the process for --help,
//  --version and usage errors (see above).
int zk_cli_parse (const zk_cli_t *cli, int argc, char **argv, char ***args_p);

//  Print "PROGRAM: message" and the --help hint on stderr, exit 2.
void zk_cli_usage_error (const zk_cli_t *cli, const char *format, ...)
    __attribute__ ((format (printf, 2, 3), noreturn));

//  Print the full usage to out.
void zk_cli_print_usage (const zk_cli_t *cli, FILE *out);

//  Parse a byte size ("64k", "1M", "1024"). 0 or ZK_EINVAL.
int zk_cli_parse_size (const char *text, size_t *size_p);

//  Run an engine until SIGINT/SIGTERM or until it reports TERMINATED.
//  First asks it for its endpoints, logs "ready ROLE=ENDPOINT ..." at
//  notice level and, if ready_file is not NULL, writes one line
//  "ROLE ENDPOINT" per endpoint into ready_file (atomically: a reader
//  sees the whole file or none). Returns 0, or ZK_EIO if the ready file
//  could not be written.
int zk_cli_run (const zk_cli_t *cli, zactor_t *engine, const char *ready_file);

//  Write lines atomically to path (temp file + rename). 0 or ZK_EIO.
int zk_cli_write_file (const char *path, const char *content);

#ifdef __cplusplus
}
#endif

#endif
