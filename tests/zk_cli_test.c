/*  zk_cli — option tables: parsing, ranges, errors, help.  */

#include "testutil.h"

static bool s_flag;
static const char *s_name;
static int s_jobs;
static size_t s_size;
static double s_seconds;
static const char *s_spec;
static const char *s_format;
static zk_strlist_t s_topics;

static const zk_option_t s_options[] = {
    {"flag", 'f', ZK_OPT_FLAG, &s_flag, NULL, "a flag"},
    {"name", 'N', ZK_OPT_STRING, &s_name, "NAME", "a name"},
    {"jobs", 'j', ZK_OPT_INT, &s_jobs, "N", "jobs", 1, 64},
    {"max-size", 0, ZK_OPT_SIZE, &s_size, "BYTES", "size"},
    {"timeout", 't', ZK_OPT_SECONDS, &s_seconds, "SECONDS", "timeout", 0.001, 3600},
    {"capture", 0, ZK_OPT_SPEC, &s_spec, "SPEC", "capture"},
    {"format", 0, ZK_OPT_CHOICE, &s_format, "FMT", "format", 0, 0, "raw|hex|json"},
    {"subscribe", 's', ZK_OPT_LIST, &s_topics, "TOPIC", "topic"},
    {NULL},
};

static const zk_cli_t s_cli = {
    .program = "zk-test",
    .usage = "[options] SPEC [ARGS...]",
    .summary = "A test program.",
    .options = s_options,
    .min_args = 1,
    .max_args = 3,
    .spec_args = 1,
};

static int
s_parse (char ***args_p, ...)
{
    char *argv[32] = {"zk-test"};
    int argc = 1;
    va_list list;
    va_start (list, args_p);
    char *word;
    while (argc < 31 && (word = va_arg (list, char *)))
        argv[argc++] = word;
    va_end (list);
    static char *stable[32];
    memcpy (stable, argv, sizeof argv);
    return zk_cli_parse (&s_cli, argc, stable, args_p);
}

Test (zk_cli, parses_every_kind)
{
    char **args;
    int count = s_parse (&args, "-f", "--name=alpha", "-j", "8", "--max-size", "64k",
                         "--timeout=0.5", "--capture", "pub@inproc://cap", "--format", "json", "-s",
                         "a", "-sb", "push>tcp://127.0.0.1:1", "x", NULL);
    cr_assert_eq (count, 2);
    cr_assert_str_eq (args[0], "push>tcp://127.0.0.1:1");
    cr_assert_str_eq (args[1], "x");
    cr_assert (s_flag);
    cr_assert_str_eq (s_name, "alpha");
    cr_assert_eq (s_jobs, 8);
    cr_assert_eq (s_size, 65536);
    cr_assert_float_eq (s_seconds, 0.5, 1e-9);
    cr_assert_str_eq (s_spec, "pub@inproc://cap");
    cr_assert_str_eq (s_format, "json");
    cr_assert_eq (s_topics.count, 2);
    cr_assert_str_eq (s_topics.items[1], "b");
}

Test (zk_cli, double_dash_ends_options)
{
    char **args;
    int count = s_parse (&args, "pull@inproc://a", "--", "-f", "--name", NULL);
    cr_assert_eq (count, 3);
    cr_assert_not (s_flag);
    cr_assert_str_eq (args[1], "-f");
}

Test (zk_cli, verbose_and_quiet_set_the_log_level)
{
    char **args;
    s_parse (&args, "-vv", "pull@inproc://a", NULL);
    cr_assert_eq (zk_log_level (), ZK_LOG_DEBUG);
    cr_assert_str_eq (zk_log_program (), "zk-test");
}

Test (zk_cli, sizes)
{
    size_t size;
    cr_assert_eq (zk_cli_parse_size ("1024", &size), 0);
    cr_assert_eq (size, 1024);
    cr_assert_eq (zk_cli_parse_size ("1M", &size), 0);
    cr_assert_eq (size, 1048576);
    cr_assert_eq (zk_cli_parse_size ("2KiB", &size), 0);
    cr_assert_eq (size, 2048);
    cr_assert_eq (zk_cli_parse_size ("1.5k", &size), 0);
    cr_assert_eq (size, 1536);
    cr_assert_eq (zk_cli_parse_size ("1g", &size), 0);
    cr_assert_eq (size, 1073741824);
    const char *bad[] = {"", "-1", "k", "12q", "1.3", "1e400", "nan", "1kx", NULL};
    for (int i = 0; bad[i]; i++)
        cr_assert_eq (zk_cli_parse_size (bad[i], &size), ZK_EINVAL, "accepted '%s'", bad[i]);
}

Test (zk_cli, int_out_of_range_is_a_usage_error, .exit_code = 2)
{
    char **args;
    s_parse (&args, "-j", "65", "pull@inproc://a", NULL);
}

Test (zk_cli, int_garbage_is_a_usage_error, .exit_code = 2)
{
    char **args;
    s_parse (&args, "--jobs=4x", "pull@inproc://a", NULL);
}

Test (zk_cli, unknown_option_is_a_usage_error, .exit_code = 2)
{
    char **args;
    s_parse (&args, "--no-such", "pull@inproc://a", NULL);
}

Test (zk_cli, missing_value_is_a_usage_error, .exit_code = 2)
{
    char **args;
    s_parse (&args, "pull@inproc://a", "--name", NULL);
}

Test (zk_cli, flag_with_value_is_a_usage_error, .exit_code = 2)
{
    char **args;
    s_parse (&args, "--flag=yes", "pull@inproc://a", NULL);
}

Test (zk_cli, bad_choice_is_a_usage_error, .exit_code = 2)
{
    char **args;
    s_parse (&args, "--format", "xml", "pull@inproc://a", NULL);
}

Test (zk_cli, bad_spec_option_is_a_usage_error, .exit_code = 2)
{
    char **args;
    s_parse (&args, "--capture", "pub@nowhere", "pull@inproc://a", NULL);
}

Test (zk_cli, bad_positional_spec_is_a_usage_error, .exit_code = 2)
{
    char **args;
    s_parse (&args, "bogus@inproc://a", NULL);
}

Test (zk_cli, too_many_arguments_is_a_usage_error, .exit_code = 2)
{
    char **args;
    s_parse (&args, "pull@inproc://a", "b", "c", "d", NULL);
}

Test (zk_cli, no_arguments_is_a_usage_error, .exit_code = 2)
{
    char **args;
    s_parse (&args, NULL);
}

Test (zk_cli, help_exits_zero, .exit_code = 0)
{
    char **args;
    s_parse (&args, "--help", NULL);
    cr_assert_fail ("--help returned");
}

Test (zk_cli, usage_lists_every_option)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    zk_cli_print_usage (&s_cli, out);
    fclose (out);
    cr_assert (strstr (text, "Usage: zk-test [options] SPEC [ARGS...]"));
    for (const zk_option_t *option = s_options; option->name; option++)
        cr_assert (strstr (text, option->name), "--help lacks %s", option->name);
    cr_assert (strstr (text, "--help"));
    cr_assert (strstr (text, "--version"));
    free (text);
}

Test (zk_cli, writes_files_atomically)
{
    char *dir = tu_tmpdir ();
    char path[512];
    snprintf (path, sizeof path, "%s/ready", dir);
    cr_assert_eq (zk_cli_write_file (path, "frontend tcp://127.0.0.1:1\n"), 0);
    char *text = tu_slurp (path);
    cr_assert_str_eq (text, "frontend tcp://127.0.0.1:1\n");
    free (text);
    snprintf (path, sizeof path, "%s/no/such/dir/ready", dir);
    cr_assert_eq (zk_cli_write_file (path, "x"), ZK_EIO);
    tu_rmdir (dir);
    free (dir);
}
