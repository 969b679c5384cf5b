/*  zk_log — levelled logging to stderr (stdout is data, never logs).

    Lines read "PROGRAM: message". Safe from any thread. Hostile input is
    logged through zk_log_limited so a flood of bad messages cannot flood
    the log: at most a few lines a second per call site, with a count of
    what was suppressed.                                                */

#ifndef ZK_LOG_H_INCLUDED
#define ZK_LOG_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZK_LOG_ERROR = 0,
    ZK_LOG_WARN = 1,
    ZK_LOG_NOTICE = 2,  //  default: ready lines, --stats reports, warnings, errors
    ZK_LOG_INFO = 3,    //  -v
    ZK_LOG_DEBUG = 4,   //  -vv
} zk_log_level_t;

//  The name that prefixes every line (default "zkit"). Copied.
void zk_log_set_program (const char *program);
//  The program name last set. Borrowed.
const char *zk_log_program (void);
void zk_log_set_level (int level);
int zk_log_level (void);
//  True when a message at this level would be printed.
bool zk_log_enabled (int level);

//  Print one line at level. A trailing newline is added.
void zk_log (int level, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

//  Rate-limit state of one call site; zero-initialise it (static).
typedef struct {
    int64_t window_start;  //  ms
    uint32_t in_window;
    uint32_t suppressed;
} zk_ratelimit_t;

//  Like zk_log, but at most 5 lines a second through the same limiter;
//  the next line printed says how many were suppressed.
void zk_log_limited (zk_ratelimit_t *limiter, int level, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

#define zk_error(...)  zk_log (ZK_LOG_ERROR, __VA_ARGS__)
#define zk_warn(...)   zk_log (ZK_LOG_WARN, __VA_ARGS__)
#define zk_notice(...) zk_log (ZK_LOG_NOTICE, __VA_ARGS__)
#define zk_info(...)                                                                               \
    do {                                                                                           \
        if (zk_log_enabled (ZK_LOG_INFO))                                                          \
            zk_log (ZK_LOG_INFO, __VA_ARGS__);                                                     \
    } while (0)
#define zk_debug(...)                                                                              \
    do {                                                                                           \
        if (zk_log_enabled (ZK_LOG_DEBUG))                                                         \
            zk_log (ZK_LOG_DEBUG, __VA_ARGS__);                                                    \
    } while (0)
//  Rate-limited warning with its own static limiter per call site.
#define zk_warn_limited(...)                                                                       \
    do {                                                                                           \
        static zk_ratelimit_t zk__limiter_;                                                        \
        zk_log_limited (&zk__limiter_, ZK_LOG_WARN, __VA_ARGS__);                                  \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
