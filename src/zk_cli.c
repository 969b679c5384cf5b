/*  zk_cli — option tables, --help, running an engine until a signal.  */

#include "zk_classes.h"
#include "../include/zk_cert.h"

#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

static bool s_flag_help, s_flag_version, s_flag_quiet;
static int s_verbosity;

//  Print "PROGRAM: message" and the hint, exit 2.
static void __attribute__ ((noreturn))
s_usage_verror (const zk_cli_t *cli, const char *format, va_list args)
{
    char line[1024];
    vsnprintf (line, sizeof line, format, args);
    //  One line, so scripts and people can grep it; --help has the rest.
    fprintf (stderr, "%s: %s\n", cli->program, line);
    exit (2);
}

void
zk_cli_usage_error (const zk_cli_t *cli, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_usage_verror (cli, format, args);
}

static void
s_print_option (const zk_option_t *option, FILE *out)
{
    char left[64];
    if (option->letter)
        snprintf (left, sizeof left, "-%c, --%s%s%s", option->letter, option->name,
                  option->arg ? " " : "", option->arg ? option->arg : "");
    else
        snprintf (left, sizeof left, "    --%s%s%s", option->name, option->arg ? " " : "",
                  option->arg ? option->arg : "");
    if (strlen (left) > 26)
        fprintf (out, "  %s\n  %-26s  %s\n", left, "", option->help);
    else
        fprintf (out, "  %-26s  %s\n", left, option->help);
}

static const zk_option_t s_common_options[] = {
    {"verbose", 'v', ZK_OPT_FLAG, NULL, NULL, "log more (-vv: debug)"},
    {"quiet", 'q', ZK_OPT_FLAG, NULL, NULL, "log errors only"},
    {"help", 'h', ZK_OPT_FLAG, NULL, NULL, "print this help and exit"},
    {"version", 'V', ZK_OPT_FLAG, NULL, NULL, "print the version and exit"},
    {NULL},
};

void
zk_cli_print_usage (const zk_cli_t *cli, FILE *out)
{
    fprintf (out, "Usage: %s %s\n%s\n", cli->program, cli->usage, cli->summary);
    if (cli->description)
        fprintf (out, "\n%s\n", cli->description);
    fprintf (out, "\nOptions:\n");
    for (const zk_option_t *option = cli->options; option && option->name; option++)
        s_print_option (option, out);
    for (const zk_option_t *option = s_common_options; option->name; option++)
        s_print_option (option, out);
    fprintf (out, "\nSocket specs: TYPE@ENDPOINT binds, TYPE>ENDPOINT connects; several endpoints\n"
                  "are separated by commas. TYPE is one of pub sub xpub xsub push pull req rep\n"
                  "dealer router pair. Example: 'pull@tcp://*:5557', 'push>tcp://host:5558'.\n"
                  "'queue>tcp://HOST:PORT/NAME' names queue NAME on a zkit-queue (connect only).\n"
                  "Security options follow a '?' (docs/protocol.md 2.5), e.g.\n"
                  "'pull@tcp://*:5557?curve-secret=FILE&curve-allow=DIR' or\n"
                  "'push>tcp://host:5557?curve-secret=FILE&curve-server=CERT'; also allow=IP,\n"
                  "deny=IP, domain=NAME. The --curve-*, --allow and --deny flags add them to\n"
                  "every spec without options of its own. Without CURVE, anyone who can reach\n"
                  "a tcp port can send and read everything (docs/security.md).\n");
    if (cli->examples)
        fprintf (out, "\nExamples:\n%s\n", cli->examples);
    fprintf (out, "\nExit status: %s\n",
             cli->exit_status ? cli->exit_status : "0 ok, 1 runtime failure, 2 usage error.");
}

int
zk_cli_parse_size (const char *text, size_t *size_p)
{
    if (!text || !*text || *text == '-')
        return ZK_EINVAL;
    char *end;
    errno = 0;
    double value = strtod (text, &end);
    if (errno || end == text || !isfinite (value) || value < 0)
        return ZK_EINVAL;
    double unit = 1;
    if (*end) {
        char suffix = (char) tolower ((unsigned char) *end);
        if (suffix == 'k')
            unit = 1024.0;
        else if (suffix == 'm')
            unit = 1024.0 * 1024;
        else if (suffix == 'g')
            unit = 1024.0 * 1024 * 1024;
        else if (suffix != 'b')
            return ZK_EINVAL;
        end++;
        //  Accept "k", "kb", "kib", "b".
        if (suffix != 'b'
            && (streq (end, "ib") || streq (end, "iB") || streq (end, "b") || streq (end, "B")))
            end += strlen (end);
        if (*end)
            return ZK_EINVAL;
    }
    value *= unit;
    if (value > (double) SIZE_MAX / 2 || value != floor (value))
        return ZK_EINVAL;
    *size_p = (size_t) value;
    return 0;
}

static bool
s_in_range (const zk_option_t *option, double value)
{
    if (option->min == 0 && option->max == 0)
        return value >= 0;
    return value >= option->min && value <= option->max;
}

static void __attribute__ ((noreturn))
s_range_error (const zk_cli_t *cli, const zk_option_t *option, const char *value)
{
    if (option->min == 0 && option->max == 0)
        zk_cli_usage_error (cli, "--%s: '%s' is not a valid %s", option->name, value,
                            option->arg ? option->arg : "value");
    zk_cli_usage_error (cli, "--%s: '%s' is not a valid %s (%g to %g)", option->name, value,
                        option->arg ? option->arg : "value", option->min, option->max);
}

//  A file the program will write (ready file, CSV): refused now (exit 2)
//  rather than after the sockets are bound. Stores value.
static void
s_check_outfile (const zk_cli_t *cli, const zk_option_t *option, const char *value)
{
    char dir[4096];
    const char *slash = strrchr (value, '/');
    if (!*value || (slash && !slash[1]))
        zk_cli_usage_error (cli, "--%s: '%s' is not a file name", option->name, value);
    if (strlen (value) >= sizeof dir)
        zk_cli_usage_error (cli, "--%s: the path is longer than %zu bytes", option->name,
                            sizeof dir - 1);
    if (!slash)
        snprintf (dir, sizeof dir, ".");
    else
        snprintf (dir, sizeof dir, "%.*s", slash == value ? 1 : (int) (slash - value), value);
    struct stat info;
    if (stat (dir, &info) != 0 || !S_ISDIR (info.st_mode))
        zk_cli_usage_error (cli, "--%s: directory '%s' does not exist", option->name, dir);
    if (access (dir, W_OK | X_OK) != 0)
        zk_cli_usage_error (cli, "--%s: cannot write in directory '%s': %s", option->name, dir,
                            strerror (errno));
    if (stat (value, &info) == 0 && S_ISDIR (info.st_mode))
        zk_cli_usage_error (cli, "--%s: '%s' is a directory", option->name, value);
    *(const char **) option->target = value;
}

bool
zk_cli_command_exists (const char *command)
{
    if (!command || !*command)
        return false;
    struct stat info;
    if (strchr (command, '/'))
        return stat (command, &info) == 0 && S_ISREG (info.st_mode) && access (command, X_OK) == 0;
    const char *path = getenv ("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    while (true) {
        size_t length = strcspn (path, ":");
        char candidate[4096];
        //  An empty entry is the current directory, as execvp takes it.
        if (snprintf (candidate, sizeof candidate, "%.*s%s%s", (int) length, length ? path : ".",
                      "/", command)
                < (int) sizeof candidate
            && stat (candidate, &info) == 0 && S_ISREG (info.st_mode)
            && access (candidate, X_OK) == 0)
            return true;
        if (!path[length])
            return false;
        path += length + 1;
    }
}

//  Store one option's value; exit 2 on a bad one.
static void
s_set_option (const zk_cli_t *cli, const zk_option_t *option, const char *value)
{
    char *end;
    switch (option->kind) {
        case ZK_OPT_FLAG: *(bool *) option->target = true; break;
        case ZK_OPT_STRING: *(const char **) option->target = value; break;
        case ZK_OPT_LIST: {
            zk_strlist_t *list = (zk_strlist_t *) option->target;
            if (list->count == ZK_CLI_LIST_MAX)
                zk_cli_usage_error (cli, "--%s: given more than %d times", option->name,
                                    ZK_CLI_LIST_MAX);
            list->items[list->count++] = value;
            break;
        }
        case ZK_OPT_INT: {
            errno = 0;
            long number = strtol (value, &end, 10);
            if (errno || end == value || *end || number < INT_MIN || number > INT_MAX
                || !s_in_range (option, (double) number))
                s_range_error (cli, option, value);
            *(int *) option->target = (int) number;
            break;
        }
        case ZK_OPT_SIZE: {
            size_t size;
            if (zk_cli_parse_size (value, &size) || !s_in_range (option, (double) size))
                s_range_error (cli, option, value);
            *(size_t *) option->target = size;
            break;
        }
        case ZK_OPT_LIMIT: {
            size_t size;
            if (streq (value, "unlimited"))
                size = ZK_MAX_SIZE_UNLIMITED;
            else if (zk_cli_parse_size (value, &size) || size == 0
                     || !s_in_range (option, (double) size))
                zk_cli_usage_error (cli, "--%s: '%s' is not a valid %s (1 to %g, or 'unlimited')",
                                    option->name, value, option->arg ? option->arg : "value",
                                    option->max);
            *(size_t *) option->target = size;
            break;
        }
        case ZK_OPT_OUTFILE: s_check_outfile (cli, option, value); break;
        case ZK_OPT_SECONDS: {
            errno = 0;
            double seconds = strtod (value, &end);
            if (errno || end == value || *end || !isfinite (seconds)
                || !s_in_range (option, seconds))
                s_range_error (cli, option, value);
            *(double *) option->target = seconds;
            break;
        }
        case ZK_OPT_SPEC: {
            char reason[256];
            if (zk_spec_validate (value, reason, sizeof reason))
                zk_cli_usage_error (cli, "--%s: invalid socket spec '%s': %s", option->name, value,
                                    reason);
            *(const char **) option->target = value;
            break;
        }
        case ZK_OPT_CHOICE: {
            const char *choice = option->choices;
            size_t length = strlen (value);
            bool found = false;
            while (choice && *choice && !found) {
                size_t choice_len = strcspn (choice, "|");
                found = choice_len == length && memcmp (choice, value, length) == 0;
                choice += choice_len + (choice[choice_len] == '|');
            }
            if (!found)
                zk_cli_usage_error (cli, "--%s: '%s' is not one of %s", option->name, value,
                                    option->choices);
            *(const char **) option->target = value;
            break;
        }
    }
}

//  The option named by a long name (name_len bytes) or a letter.
static const zk_option_t *
s_find_option (const zk_cli_t *cli, const char *name, size_t name_len, char letter)
{
    const zk_option_t *tables[] = {cli->options, s_common_options};
    for (int t = 0; t < 2; t++)
        for (const zk_option_t *option = tables[t]; option && option->name; option++) {
            if (letter && option->letter == letter)
                return option;
            if (!letter && strlen (option->name) == name_len
                && memcmp (option->name, name, name_len) == 0)
                return option;
        }
    return NULL;
}

//  Flags of the common table set file-level state.
static void
s_set_common (const zk_option_t *option)
{
    if (option->letter == 'v')
        s_verbosity++;
    else if (option->letter == 'q')
        s_flag_quiet = true;
    else if (option->letter == 'h')
        s_flag_help = true;
    else if (option->letter == 'V')
        s_flag_version = true;
}

int
zk_cli_parse (const zk_cli_t *cli, int argc, char **argv, char ***args_p)
{
    assert (cli && argv && args_p);
    zk_log_set_program (cli->program);
    if (argc <= 1 && !cli->allow_no_args) {
        zk_cli_print_usage (cli, stderr);
        exit (2);
    }
    //  Positionals are gathered in place at the front of argv + 1.
    char **args = argv + 1;
    int arg_count = 0;
    bool options_done = false;
    for (int index = 1; index < argc; index++) {
        char *word = argv[index];
        if (options_done || word[0] != '-' || word[1] == 0) {
            args[arg_count++] = word;
            continue;
        }
        if (streq (word, "--")) {
            options_done = true;
            continue;
        }
        const zk_option_t *option;
        const char *value = NULL;
        if (word[1] == '-') {
            const char *name = word + 2;
            const char *equals = strchr (name, '=');
            size_t name_len = equals ? (size_t) (equals - name) : strlen (name);
            option = s_find_option (cli, name, name_len, 0);
            if (!option)
                zk_cli_usage_error (cli, "unknown option '--%.*s'", (int) name_len, name);
            if (equals) {
                if (option->kind == ZK_OPT_FLAG)
                    zk_cli_usage_error (cli, "option '--%s' takes no value", option->name);
                value = equals + 1;
            }
        }
        else {
            option = s_find_option (cli, NULL, 0, word[1]);
            if (!option)
                zk_cli_usage_error (cli, "unknown option '-%c'", word[1]);
            if (word[2]) {
                if (option->kind != ZK_OPT_FLAG)
                    value = word + 2;
                else {
                    //  Bundled flags: -vq. Each must be a flag.
                    for (const char *letter = word + 1; *letter; letter++) {
                        const zk_option_t *flag = s_find_option (cli, NULL, 0, *letter);
                        if (!flag || flag->kind != ZK_OPT_FLAG)
                            zk_cli_usage_error (cli, "unknown option '-%c' in '%s'", *letter, word);
                        if (flag->target)
                            s_set_option (cli, flag, NULL);
                        else
                            s_set_common (flag);
                    }
                    continue;
                }
            }
        }
        if (option->kind == ZK_OPT_FLAG) {
            if (option->target)
                s_set_option (cli, option, NULL);
            else
                s_set_common (option);
            continue;
        }
        if (!value) {
            if (index + 1 >= argc)
                zk_cli_usage_error (cli, "option '--%s' needs a value (%s)", option->name,
                                    option->arg ? option->arg : "VALUE");
            value = argv[++index];
        }
        s_set_option (cli, option, value);
    }
    if (s_flag_help) {
        zk_cli_print_usage (cli, stdout);
        exit (0);
    }
    if (s_flag_version) {
        printf ("%s %s (libzmq %d.%d.%d, czmq %d.%d.%d)\n", cli->program, zk_version (),
                ZMQ_VERSION_MAJOR, ZMQ_VERSION_MINOR, ZMQ_VERSION_PATCH, CZMQ_VERSION_MAJOR,
                CZMQ_VERSION_MINOR, CZMQ_VERSION_PATCH);
        exit (0);
    }
    if (s_flag_quiet)
        zk_log_set_level (ZK_LOG_ERROR);
    else if (s_verbosity)
        zk_log_set_level (s_verbosity > 1 ? ZK_LOG_DEBUG : ZK_LOG_INFO);
    if (arg_count < cli->min_args)
        zk_cli_usage_error (cli, "missing argument (usage: %s %s)", cli->program, cli->usage);
    if (cli->max_args >= 0 && arg_count > cli->max_args)
        zk_cli_usage_error (cli, "unexpected argument '%s'", args[cli->max_args]);
    for (int index = 0; index < cli->spec_args && index < arg_count; index++) {
        char reason[256];
        if (zk_spec_validate (args[index], reason, sizeof reason))
            zk_cli_usage_error (cli, "invalid socket spec '%s': %s", args[index], reason);
    }
    *args_p = args;
    return arg_count;
}

int
zk_cli_write_file (const char *path, const char *content)
{
    char temp[4096];
    if (snprintf (temp, sizeof temp, "%s.tmp.%d", path, (int) getpid ()) >= (int) sizeof temp)
        return ZK_EINVAL;
    int fd = open (temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ZK_EIO;
    size_t length = strlen (content);
    size_t done = 0;
    while (done < length) {
        ssize_t written = write (fd, content + done, length - done);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            break;
        done += (size_t) written;
    }
    int rc = done == length ? 0 : ZK_EIO;
    if (close (fd) != 0)
        rc = ZK_EIO;
    if (rc == 0 && rename (temp, path) != 0)
        rc = ZK_EIO;
    if (rc)
        unlink (temp);
    return rc;
}

//  Write the ready file and the ready line from the engine's endpoints.
//  At most ZK_SPEC_MAX_ENDPOINTS per socket, so both texts stay small, but
//  they are built in growable buffers: a ready file is never cut short.
static int
s_announce_ready (zactor_t *engine, const char *ready_file)
{
    zmsg_t *endpoints = zk_engine_request (engine, "ENDPOINTS");
    if (!endpoints)
        return ZK_EIO;
    char *file = NULL, *line = NULL;
    size_t file_size = 0, line_size = 0;
    FILE *file_out = open_memstream (&file, &file_size);
    FILE *line_out = open_memstream (&line, &line_size);
    if (!file_out || !line_out) {
        if (file_out)
            fclose (file_out);
        if (line_out)
            fclose (line_out);
        free (file);
        free (line);
        zmsg_destroy (&endpoints);
        return ZK_ENOMEM;
    }
    fputs ("ready", line_out);
    for (zframe_t *frame = zmsg_first (endpoints); frame; frame = zmsg_next (endpoints)) {
        char *entry = zframe_strdup (frame);
        fprintf (file_out, "%s\n", entry);
        char *space = strchr (entry, ' ');
        if (space)
            *space = '=';
        fprintf (line_out, " %s", entry);
        zstr_free (&entry);
    }
    zmsg_destroy (&endpoints);
    fclose (file_out);
    fclose (line_out);
    zk_notice ("%s", line);
    int rc = 0;
    if (ready_file && zk_cli_write_file (ready_file, file) != 0) {
        zk_error ("cannot write ready file %s: %s", ready_file, strerror (errno));
        rc = ZK_EIO;
    }
    free (file);
    free (line);
    return rc;
}

int
zk_cli_run (const zk_cli_t *cli, zactor_t *engine, const char *ready_file)
{
    (void) cli;
    int rc = s_announce_ready (engine, ready_file);
    if (rc)
        return rc;
    //  czmq's handler sets zsys_interrupted on SIGINT/SIGTERM; the signal may
    //  land in any thread, so poll in short slices rather than wait for EINTR.
    while (!zsys_interrupted) {
        if (zk_engine_wait_readable (engine, 100) == 0) {
            char *notice = zstr_recv (engine);
            bool terminated = notice && streq (notice, "TERMINATED");
            zstr_free (&notice);
            if (terminated) {
                zk_info ("terminated by control command");
                break;
            }
        }
    }
    if (zsys_interrupted)
        zk_info ("interrupted, stopping");
    return 0;
}

//  ---------------------------------------------------------------------------
//  Security flags (docs/security.md)

#define S_SECURED_MAX 256  //  rewritten spec texts kept for the process

static char *s_secured[S_SECURED_MAX];
static size_t s_secured_count;

void
zk_cli_security_options (zk_option_t *table, zk_cli_security_t *values)
{
    zk_option_t entries[] = {ZK_CLI_SECURITY_TABLE (*values)};
    memcpy (table, entries, sizeof entries);
}

//  A flag's value goes into a spec option: no spaces, no '&'.
static void
s_check_option_value (const zk_cli_t *cli, const char *flag, const char *value)
{
    for (const char *c = value; *c; c++)
        if ((unsigned char) *c <= 32 || (unsigned char) *c >= 127 || *c == '&')
            zk_cli_usage_error (cli,
                                "--%s '%s': the name may not contain spaces, '&' or "
                                "non-ASCII bytes",
                                flag, value);
    if (!*value)
        zk_cli_usage_error (cli, "--%s: empty value", flag);
}

static void
s_check_security_flags (const zk_cli_t *cli, const zk_cli_security_t *values)
{
    char reason[600];
    if (values->curve_server && !values->curve_secret)
        zk_cli_usage_error (cli, "--curve-server needs --curve-secret FILE (this client's key "
                                 "pair, made by zkit-keygen)");
    if (values->curve_allow && !values->curve_secret)
        zk_cli_usage_error (cli, "--curve-allow needs --curve-secret FILE (the server's key "
                                 "pair): clients are admitted by their CURVE keys");
    const char *files[] = {values->curve_secret, values->curve_server};
    const char *names[] = {"curve-secret", "curve-server"};
    for (int index = 0; index < 2; index++) {
        if (!files[index])
            continue;
        s_check_option_value (cli, names[index], files[index]);
        zcert_t *cert = zk_cert_load (files[index], index == 0, reason, sizeof reason);
        if (!cert)
            zk_cli_usage_error (cli, "--%s: %s", names[index], reason);
        zcert_destroy (&cert);
    }
    if (values->curve_allow) {
        s_check_option_value (cli, "curve-allow", values->curve_allow);
        if (zk_auth_check_dir (values->curve_allow, reason, sizeof reason))
            zk_cli_usage_error (cli, "--curve-allow: %s", reason);
    }
    const zk_strlist_t *lists[] = {&values->allow, &values->deny};
    for (int list = 0; list < 2; list++)
        for (int index = 0; index < lists[list]->count; index++)
            if (zk_auth_check_address (lists[list]->items[index], reason, sizeof reason))
                zk_cli_usage_error (cli, "--%s: %s", list ? "deny" : "allow", reason);
}

//  Append "&KEY=VALUE" (the first without '&') to out.
static void
s_add_option (FILE *out, bool *first, const char *key, const char *value)
{
    fprintf (out, "%s%s=%s", *first ? "" : "&", key, value);
    *first = false;
}

char *
zk_cli_secure_spec (const zk_cli_t *cli, zk_cli_security_t *values, const char *text)
{
    assert (cli && values);
    if (!values->checked) {
        s_check_security_flags (cli, values);
        values->checked = true;
    }
    if (!text)
        return NULL;
    //  "NAME=SPEC": the spec starts after the '=' that comes before any '@' or '>'.
    size_t skip = strcspn (text, "=@>");
    skip = text[skip] == '=' ? skip + 1 : 0;
    const char *spec_text = text + skip;
    bool flags = values->curve_secret || values->allow.count || values->deny.count;
    if (!flags || strchr (spec_text, '?') || zk_spec_validate (spec_text, NULL, 0) != 0)
        return (char *) text;
    zk_spec_t *spec = zk_spec_new (spec_text);
    if (!spec)
        return (char *) text;
    bool binds = false, connects = false;
    for (size_t index = 0; index < zk_spec_size (spec); index++) {
        binds |= zk_spec_binds (spec, index);
        connects |= !zk_spec_binds (spec, index);
    }
    zk_spec_destroy (&spec);
    if (values->curve_secret && binds && connects)
        zk_cli_usage_error (cli,
                            "--curve-secret: '%s' both binds and connects: give it options of "
                            "its own ('%s?...', docs/protocol.md 2.5)",
                            spec_text, spec_text);
    if (values->curve_secret && connects && !values->curve_server)
        zk_cli_usage_error (cli,
                            "--curve-secret: '%s' connects: give --curve-server CERT too (or the "
                            "spec options of its own: '%s?...')",
                            spec_text, spec_text);
    char *result = NULL;
    size_t result_size = 0;
    FILE *out = open_memstream (&result, &result_size);
    if (!out)
        zk_cli_usage_error (cli, "out of memory");
    fprintf (out, "%s?", text);
    bool first = true;
    if (values->curve_secret)
        s_add_option (out, &first, "curve-secret", values->curve_secret);
    if (connects && values->curve_server)
        s_add_option (out, &first, "curve-server", values->curve_server);
    if (binds) {
        if (values->curve_allow)
            s_add_option (out, &first, "curve-allow", values->curve_allow);
        for (int index = 0; index < values->allow.count; index++)
            s_add_option (out, &first, "allow", values->allow.items[index]);
        for (int index = 0; index < values->deny.count; index++)
            s_add_option (out, &first, "deny", values->deny.items[index]);
    }
    fclose (out);
    if (first) {  //  nothing applies (allow/deny on a spec that only connects)
        free (result);
        return (char *) text;
    }
    char reason[600];
    if (zk_spec_validate (result + skip, reason, sizeof reason))
        zk_cli_usage_error (cli, "invalid socket spec '%s': %s", result + skip, reason);
    values->binding += binds;
    values->connecting += connects;
    if (s_secured_count < S_SECURED_MAX)
        s_secured[s_secured_count++] = result;  //  kept: the configs point into it
    return result;
}

void
zk_cli_secure_done (const zk_cli_t *cli, zk_cli_security_t *values)
{
    assert (cli && values);
    if (!values->checked) {
        s_check_security_flags (cli, values);
        values->checked = true;
    }
    if (!values->binding && (values->curve_allow || values->allow.count || values->deny.count))
        zk_cli_usage_error (cli,
                            "--%s: no socket spec here binds (it applies to specs that "
                            "bind and have no options of their own)",
                            values->curve_allow   ? "curve-allow"
                            : values->allow.count ? "allow"
                                                  : "deny");
    if (!values->connecting && values->curve_server)
        zk_cli_usage_error (cli, "--curve-server: no socket spec here connects (it applies to "
                                 "specs that connect and have no options of their own)");
    if (!values->binding && !values->connecting && values->curve_secret)
        zk_cli_usage_error (cli, "--curve-secret: every socket spec here has options of its own");
}
