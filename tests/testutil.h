/*  testutil — what the Criterion suites share: temp dirs, unique inproc
    names, starting the real binaries, waiting on readiness with deadlines.

    Nothing here sleeps for a fixed time: every wait polls a condition
    until a deadline and fails the test when the deadline passes.       */

#ifndef TESTUTIL_H_INCLUDED
#define TESTUTIL_H_INCLUDED

#include "../include/zkit.h"

#include <criterion/criterion.h>
#include <stdbool.h>
#include <sys/types.h>

//  A fresh "inproc://zk-test-<prefix>-<n>" name. Caller frees it.
char *tu_inproc (const char *prefix);
//  A fresh private directory under $TMPDIR. Caller frees the path;
//  tu_rmdir removes it with its contents.
char *tu_tmpdir (void);
void tu_rmdir (const char *path);

//  Path of a zkit binary: $ZK_BIN/name, else build/bin/name. Static buffer per call.
const char *tu_bin (const char *name, char *buf, size_t size);

//  A child process started with its stdin/stdout/stderr on pipes
//  (stdout/stderr collected into files under the tmp dir).
typedef struct {
    pid_t pid;
    int stdin_fd;        //  write end, or -1 once closed
    char out_path[512];  //  stdout collected here
    char err_path[512];  //  stderr collected here
    int status;          //  after tu_wait: raw wait status
    bool exited;
} tu_proc_t;

//  Start argv[0] (a path) with argv; stdout/stderr go to files in dir.
//  Returns 0 or -1.
int tu_spawn (tu_proc_t *proc, const char *dir, char *const argv[]);
//  Write all of data to the child's stdin (optionally closing it after).
int tu_write_stdin (tu_proc_t *proc, const void *data, size_t size, bool close_after);
void tu_close_stdin (tu_proc_t *proc);
//  Wait for the child to exit, at most timeout_ms. Returns its exit code
//  (0..255), 128+signal if killed, or -1 on timeout (child still running).
int tu_wait (tu_proc_t *proc, int timeout_ms);
//  Send sig and wait (timeout_ms); SIGKILL if it does not exit. Returns as tu_wait.
int tu_stop (tu_proc_t *proc, int sig, int timeout_ms);
//  Contents of the child's stdout/stderr so far. Caller frees.
char *tu_stdout (tu_proc_t *proc);
char *tu_stderr (tu_proc_t *proc);

//  Run argv to completion with input on stdin; collect output. Returns the
//  exit code as tu_wait (the child is killed at the timeout).
int tu_run (const char *dir, char *const argv[], const char *input, char **out_p, char **err_p,
            int timeout_ms);

//  Wait until file exists (it is written atomically), at most timeout_ms.
//  Returns its contents (caller frees) or NULL at the deadline.
char *tu_wait_file (const char *path, int timeout_ms);
//  The endpoint after "ROLE " in a ready file's contents. Caller frees; NULL if absent.
char *tu_ready_endpoint (const char *ready, const char *role);
//  Wait until the file at path contains needle, at most timeout_ms.
bool tu_wait_contains (const char *path, const char *needle, int timeout_ms);

//  Read a whole file. Caller frees; NULL if it cannot.
char *tu_slurp (const char *path);

//  Receive one message on sock within timeout_ms; NULL at the deadline.
zmsg_t *tu_recv (zsock_t *sock, int timeout_ms);

//  Ask an engine actor for its endpoints ("ENDPOINTS" on its pipe) and
//  return the first of role (e.g. "frontend"). Caller frees; NULL if none.
char *tu_engine_endpoint (zactor_t *engine, const char *role);

//  A zkit daemon started with "--ready-file PATH" in a fresh tmp dir.
typedef struct {
    tu_proc_t proc;
    char *dir;  //  its tmp dir (stdout/stderr files, the ready file)
    char ready_path[600];
    char *ready;  //  the ready file's contents once ready
} tu_daemon_t;

//  Start the zkit binary `program` (see tu_bin) with args (NULL-terminated)
//  plus --ready-file, and wait at most timeout_ms for the ready file.
//  0, or -1 (the child is killed; its stderr stays readable until cleanup).
int tu_daemon_start (tu_daemon_t *daemon, const char *program, const char *const *args,
                     int timeout_ms);
//  The same for a program that runs a command (zkit-worker): program,
//  args, "--ready-file PATH", "--", then command (NULL-terminated).
int tu_daemon_start_command (tu_daemon_t *daemon, const char *program, const char *const *args,
                             const char *const *command, int timeout_ms);
//  Kill the daemon if it still runs, remove its tmp dir, free what it holds.
void tu_daemon_cleanup (tu_daemon_t *daemon);
//  tu_daemon_start within timeout_ms, failing the test with the daemon's
//  stderr when it never gets ready.
void tu_daemon_must_start (tu_daemon_t *daemon, const char *program, const char *const *args,
                           int timeout_ms);
//  The endpoint of role in a started daemon's ready file, failing the test
//  when there is none. Caller frees.
char *tu_daemon_endpoint (tu_daemon_t *daemon, const char *role);
//  Run the zkit binary `program` with args (NULL-terminated) to completion,
//  as tu_run with no stdin.
int tu_run_bin (const char *program, const char *const *args, char **out_p, char **err_p,
                int timeout_ms);

//  A new socket of type connected to endpoint, linger 0. NULL on failure.
zsock_t *tu_connect (int type, const char *endpoint);

//  A new socket of type bound to tcp://127.0.0.1:* (linger 0); the
//  resolved endpoint goes into endpoint. NULL on failure.
zsock_t *tu_bind_ephemeral (int type, char *endpoint, size_t size);

#endif
