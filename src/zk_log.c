/*  zk_log — levelled logging to stderr.

    One line per call, written with a single fprintf under a lock so lines
    from different threads never interleave.                             */

#include "zk_classes.h"

#include <pthread.h>
#include <time.h>

#define RATELIMIT_PER_SECOND 5

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_program[64] = "zkit";
static int s_level = ZK_LOG_NOTICE;

void
zk_log_set_program (const char *program)
{
    pthread_mutex_lock (&s_lock);
    snprintf (s_program, sizeof s_program, "%s", program ? program : "zkit");
    pthread_mutex_unlock (&s_lock);
}

const char *
zk_log_program (void)
{
    return s_program;
}

void
zk_log_set_level (int level)
{
    if (level < ZK_LOG_ERROR)
        level = ZK_LOG_ERROR;
    if (level > ZK_LOG_DEBUG)
        level = ZK_LOG_DEBUG;
    __atomic_store_n (&s_level, level, __ATOMIC_RELAXED);
}

int
zk_log_level (void)
{
    return __atomic_load_n (&s_level, __ATOMIC_RELAXED);
}

bool
zk_log_enabled (int level)
{
    return level <= zk_log_level ();
}

static void
s_vlog (int level, const char *suffix, const char *format, va_list args)
{
    static const char *prefixes[] = {"error: ", "warning: ", "", "", "debug: "};
    char line[2048];
    vsnprintf (line, sizeof line, format, args);
    //  Hostile bytes (a newline in a spec, an escape sequence) never reach
    //  the terminal raw: one call, one line.
    for (char *c = line; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            *c = '?';
    pthread_mutex_lock (&s_lock);
    fprintf (stderr, "%s: %s%s%s\n", s_program, prefixes[level], line, suffix ? suffix : "");
    fflush (stderr);
    pthread_mutex_unlock (&s_lock);
}

void
zk_log (int level, const char *format, ...)
{
    if (!zk_log_enabled (level))
        return;
    va_list args;
    va_start (args, format);
    s_vlog (level, NULL, format, args);
    va_end (args);
}

void
zk_log_limited (zk_ratelimit_t *limiter, int level, const char *format, ...)
{
    if (!zk_log_enabled (level))
        return;
    int64_t now = zk_now_ms ();
    char suffix[64] = "";
    pthread_mutex_lock (&s_lock);
    if (now - limiter->window_start >= 1000) {
        limiter->window_start = now;
        limiter->in_window = 0;
    }
    bool print = limiter->in_window < RATELIMIT_PER_SECOND;
    if (print) {
        limiter->in_window++;
        if (limiter->suppressed)
            snprintf (suffix, sizeof suffix, " (%u similar lines suppressed)", limiter->suppressed);
        limiter->suppressed = 0;
    }
    else
        limiter->suppressed++;
    pthread_mutex_unlock (&s_lock);
    if (!print)
        return;
    va_list args;
    va_start (args, format);
    s_vlog (level, suffix, format, args);
    va_end (args);
}

int64_t
zk_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
