/*  fuzz_replay — every seed (tests/fuzz/corpus/TARGET/) and every
    regression input (tests/fuzz/regress/TARGET/) fed to its fuzz target
    (tests/fuzz/fuzz_TARGET.c), built with the rest of the suite: a crash
    or a broken invariant fails the test, and the file is named on stderr. */

#include "testutil.h"
#include "fuzz/fuzz.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#define S_MAX_INPUT (1 << 20)  //  larger files are not inputs (libFuzzer's -max_len is far below)

typedef int (s_target_fn) (const uint8_t *data, size_t size);

static char s_current[1024];  //  the input being replayed, for the crash handler

static void
s_on_crash (int sig)
{
    //  async-signal-safe: write(2) only, then die of the same signal.
    static const char prefix[] = "fuzz_replay: crashed on ";
    ssize_t ignored = write (2, prefix, sizeof prefix - 1);
    ignored = write (2, s_current, strlen (s_current));
    ignored = write (2, "\n", 1);
    (void) ignored;
    signal (sig, SIG_DFL);
    raise (sig);
}

//  tests/fuzz, found next to this file (the build compiles it as tests/...).
static void
s_fuzz_dir (char *buf, size_t size, const char *sub, const char *target)
{
    const char *file = __FILE__;
    const char *slash = strrchr (file, '/');
    int dir_length = slash ? (int) (slash - file) : 1;
    snprintf (buf, size, "%.*s/fuzz/%s/%s", dir_length, slash ? file : ".", sub, target);
}

static int
s_compare (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

//  Feed every regular file of dir (in name order) to target. Returns the count.
static int
s_replay_dir (const char *dir, s_target_fn *target)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return 0;
    char *names[4096];
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir (handle)) && count < 4096)
        if (entry->d_name[0] != '.' && !streq (entry->d_name, "README.md"))
            names[count++] = strdup (entry->d_name);
    closedir (handle);
    qsort (names, (size_t) count, sizeof names[0], s_compare);
    int replayed = 0;
    for (int index = 0; index < count; index++) {
        snprintf (s_current, sizeof s_current, "%s/%s", dir, names[index]);
        FILE *file = fopen (s_current, "rb");
        cr_assert_not_null (file, "%s", s_current);
        uint8_t *data = malloc (S_MAX_INPUT);
        size_t size = fread (data, 1, S_MAX_INPUT, file);
        bool whole = feof (file);
        fclose (file);
        if (whole) {
            cr_assert_eq (target (data, size), 0, "%s", s_current);
            replayed++;
        }
        free (data);
        free (names[index]);
    }
    return replayed;
}

static int
s_replay (const char *name, s_target_fn *target)
{
    signal (SIGSEGV, s_on_crash);
    signal (SIGABRT, s_on_crash);
    signal (SIGBUS, s_on_crash);
    signal (SIGFPE, s_on_crash);
    zk_log_set_level (ZK_LOG_ERROR);  //  hostile inputs are logged: keep the output short
    char dir[1024];
    s_fuzz_dir (dir, sizeof dir, "corpus", name);
    int seeds = s_replay_dir (dir, target);
    cr_assert_gt (seeds, 0, "no seed corpus in %s", dir);
    s_fuzz_dir (dir, sizeof dir, "regress", name);
    return seeds + s_replay_dir (dir, target);
}

Test (fuzz_replay, envelope, .timeout = 120)
{
    cr_assert_gt (s_replay ("envelope", zk_fuzz_envelope), 0);
}

Test (fuzz_replay, spec, .timeout = 120)
{
    cr_assert_gt (s_replay ("spec", zk_fuzz_spec), 0);
}

Test (fuzz_replay, journal, .timeout = 120)
{
    cr_assert_gt (s_replay ("journal", zk_fuzz_journal), 0);
    zk_fuzz_journal_cleanup ();
}

Test (fuzz_replay, zkq, .timeout = 120)
{
    cr_assert_gt (s_replay ("zkq", zk_fuzz_zkq), 0);
    zk_fuzz_zkq_cleanup ();
}
