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
    ZK_OPT_LIMIT,    //  size_t *: as ZK_OPT_SIZE (min at least 1), or "unlimited":
                     //  ZK_MAX_SIZE_UNLIMITED; 0 is refused with a hint
    ZK_OPT_OUTFILE,  //  const char **: a file to write; its directory must exist, writable
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

//  True when command can be run: a path (with '/') to an executable file,
//  or a name found executable in $PATH.
bool zk_cli_command_exists (const char *command);

//  Write lines atomically to path (temp file + rename). 0 or ZK_EIO.
int zk_cli_write_file (const char *path, const char *content);

/*  The security flags of every binary (docs/security.md), one struct and
    five table entries: --curve-secret FILE, --curve-server CERT,
    --curve-allow DIR, --allow IP and --deny IP (repeatable). After
    zk_cli_parse, each of the binary's spec texts goes through
    zk_cli_secure_spec, then zk_cli_secure_done checks the whole.        */
typedef struct {
    const char *curve_secret;
    const char *curve_server;
    const char *curve_allow;
    zk_strlist_t allow;
    zk_strlist_t deny;
    //  Filled by zk_cli_secure_spec:
    bool checked;             //  the flags were validated
    int binding, connecting;  //  specs that took the flags, by direction
} zk_cli_security_t;

#define ZK_CLI_SECURITY_OPTIONS 5  //  table entries zk_cli_security_options fills

//  The five entries as initializers, for a static option table.
// clang-format off
#define ZK_CLI_SECURITY_TABLE(values)                                                              \
    {"curve-secret", 0, ZK_OPT_STRING, &(values).curve_secret, "FILE",                             \
     "encrypt with CURVE: this side's secret certificate (zkit-keygen)"},                          \
    {"curve-server", 0, ZK_OPT_STRING, &(values).curve_server, "CERT",                             \
     "connecting sockets: the server's public certificate"},                                       \
    {"curve-allow", 0, ZK_OPT_STRING, &(values).curve_allow, "DIR",                                \
     "binding sockets: only CURVE clients whose public certificate is in DIR"},                    \
    {"allow", 0, ZK_OPT_LIST, &(values).allow, "IP",                                               \
     "binding sockets: admit only these addresses (repeatable; IP[/PREFIX])"},                     \
    {"deny", 0, ZK_OPT_LIST, &(values).deny, "IP",                                                 \
     "binding sockets: refuse these addresses (repeatable; --allow overrides)"}
// clang-format on

//  Fill table[0 .. ZK_CLI_SECURITY_OPTIONS) with the entries, bound to values.
void zk_cli_security_options (zk_option_t *table, zk_cli_security_t *values);

//  The spec text with the flags applied: a spec without options of its
//  own (no '?') gets, for its binding endpoints, curve-secret, curve-allow,
//  allow and deny, and for its connecting ones curve-secret and
//  curve-server, as spec options; a spec with options (even a bare '?')
//  is returned as it is. "NAME=SPEC" (zkit-queue --pull) keeps its NAME=.
//  NULL stays NULL; an invalid spec is returned unchanged (its validator
//  says why). The first call checks the flags themselves. A usage problem
//  (a missing or unreadable file, a secret file others may read, a bad
//  address, --curve-server or --curve-allow without --curve-secret, a
//  connecting spec without --curve-server) prints one line and exits 2.
//  The new text lives as long as the process.
char *zk_cli_secure_spec (const zk_cli_t *cli, zk_cli_security_t *values, const char *text);

//  After the last zk_cli_secure_spec: exit 2 when a flag applied to no
//  spec at all (--curve-allow, --allow, --deny with nothing that binds;
//  --curve-server with nothing that connects).
void zk_cli_secure_done (const zk_cli_t *cli, zk_cli_security_t *values);

#ifdef __cplusplus
}
#endif

#endif
