/*  testutil — see testutil.h.  */

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Block for at most ms without busy-waiting: a poll on nothing.
static void
s_pause (int ms)
{
    zmq_poll (NULL, 0, ms);
}

char *
tu_inproc (const char *prefix)
{
    static int counter;
    return zsys_sprintf ("inproc://zk-test-%s-%d-%d", prefix, (int) getpid (),
                         __atomic_add_fetch (&counter, 1, __ATOMIC_RELAXED));
}

char *
tu_tmpdir (void)
{
    const char *base = getenv ("TMPDIR");
    char *path = zsys_sprintf ("%s/zk-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp (path)) {
        free (path);
        return NULL;
    }
    return path;
}

void
tu_rmdir (const char *path)
{
    if (!path)
        return;
    DIR *dir = opendir (path);
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir (dir))) {
            if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
                continue;
            char *child = zsys_sprintf ("%s/%s", path, entry->d_name);
            struct stat st;
            if (lstat (child, &st) == 0 && S_ISDIR (st.st_mode))
                tu_rmdir (child);
            else
                unlink (child);
            free (child);
        }
        closedir (dir);
    }
    rmdir (path);
}

const char *
tu_bin (const char *name, char *buf, size_t size)
{
    const char *dir = getenv ("ZK_BIN");
    snprintf (buf, size, "%s/%s", dir && *dir ? dir : "build/bin", name);
    return buf;
}

int
tu_spawn (tu_proc_t *proc, const char *dir, char *const argv[])
{
    static int counter;
    memset (proc, 0, sizeof *proc);
    int n = __atomic_add_fetch (&counter, 1, __ATOMIC_RELAXED);
    snprintf (proc->out_path, sizeof proc->out_path, "%s/proc-%d-%d.out", dir, (int) getpid (), n);
    snprintf (proc->err_path, sizeof proc->err_path, "%s/proc-%d-%d.err", dir, (int) getpid (), n);
    int in_pipe[2];
    if (pipe2 (in_pipe, O_CLOEXEC) != 0)
        return -1;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, in_pipe[0], 0);
    posix_spawn_file_actions_addopen (&actions, 1, proc->out_path, O_WRONLY | O_CREAT | O_TRUNC,
                                      0644);
    posix_spawn_file_actions_addopen (&actions, 2, proc->err_path, O_WRONLY | O_CREAT | O_TRUNC,
                                      0644);
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    sigset_t none;
    sigemptyset (&none);
    posix_spawnattr_setsigmask (&attr, &none);
    sigset_t defaults;
    sigemptyset (&defaults);
    sigaddset (&defaults, SIGPIPE);
    sigaddset (&defaults, SIGINT);
    sigaddset (&defaults, SIGTERM);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawn (&proc->pid, argv[0], &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    close (in_pipe[0]);
    if (rc != 0) {
        close (in_pipe[1]);
        proc->stdin_fd = -1;
        return -1;
    }
    proc->stdin_fd = in_pipe[1];
    return 0;
}

int
tu_write_stdin (tu_proc_t *proc, const void *data, size_t size, bool close_after)
{
    const char *bytes = data;
    while (size && proc->stdin_fd >= 0) {
        ssize_t written = write (proc->stdin_fd, bytes, size);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return -1;
        bytes += written;
        size -= (size_t) written;
    }
    if (close_after)
        tu_close_stdin (proc);
    return 0;
}

void
tu_close_stdin (tu_proc_t *proc)
{
    if (proc->stdin_fd >= 0)
        close (proc->stdin_fd);
    proc->stdin_fd = -1;
}

static int
s_decode_status (int status)
{
    if (WIFEXITED (status))
        return WEXITSTATUS (status);
    if (WIFSIGNALED (status))
        return 128 + WTERMSIG (status);
    return -1;
}

int
tu_wait (tu_proc_t *proc, int timeout_ms)
{
    if (proc->exited)
        return s_decode_status (proc->status);
    int64_t deadline = s_now_ms () + timeout_ms;
    int delay = 1;
    while (true) {
        pid_t done = waitpid (proc->pid, &proc->status, WNOHANG);
        if (done == proc->pid) {
            proc->exited = true;
            tu_close_stdin (proc);
            return s_decode_status (proc->status);
        }
        if (done < 0 && errno != EINTR)
            return -1;
        if (s_now_ms () >= deadline)
            return -1;
        s_pause (delay);
        delay = delay < 20 ? delay * 2 : 20;
    }
}

int
tu_stop (tu_proc_t *proc, int sig, int timeout_ms)
{
    if (proc->exited)
        return s_decode_status (proc->status);
    kill (proc->pid, sig);
    int rc = tu_wait (proc, timeout_ms);
    if (rc == -1) {
        kill (proc->pid, SIGKILL);
        tu_wait (proc, 5000);
        return -1;
    }
    return rc;
}

char *
tu_slurp (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    size_t capacity = 4096, size = 0;
    char *data = malloc (capacity + 1);
    while (data) {
        size_t got = fread (data + size, 1, capacity - size, file);
        size += got;
        if (size < capacity)
            break;
        capacity *= 2;
        char *bigger = realloc (data, capacity + 1);
        if (!bigger) {
            free (data);
            data = NULL;
        }
        data = bigger;
    }
    fclose (file);
    if (data)
        data[size] = 0;
    return data;
}

char *
tu_stdout (tu_proc_t *proc)
{
    return tu_slurp (proc->out_path);
}

char *
tu_stderr (tu_proc_t *proc)
{
    return tu_slurp (proc->err_path);
}

int
tu_run (const char *dir, char *const argv[], const char *input, char **out_p, char **err_p,
        int timeout_ms)
{
    tu_proc_t proc;
    if (tu_spawn (&proc, dir, argv) != 0)
        return -1;
    if (input)
        tu_write_stdin (&proc, input, strlen (input), true);
    else
        tu_close_stdin (&proc);
    int rc = tu_wait (&proc, timeout_ms);
    if (rc == -1)
        tu_stop (&proc, SIGKILL, 2000);
    if (out_p)
        *out_p = tu_stdout (&proc);
    if (err_p)
        *err_p = tu_stderr (&proc);
    unlink (proc.out_path);
    unlink (proc.err_path);
    return rc;
}

char *
tu_wait_file (const char *path, int timeout_ms)
{
    int64_t deadline = s_now_ms () + timeout_ms;
    int delay = 1;
    while (true) {
        if (access (path, R_OK) == 0)
            return tu_slurp (path);
        if (s_now_ms () >= deadline)
            return NULL;
        s_pause (delay);
        delay = delay < 20 ? delay * 2 : 20;
    }
}

bool
tu_wait_contains (const char *path, const char *needle, int timeout_ms)
{
    int64_t deadline = s_now_ms () + timeout_ms;
    int delay = 1;
    while (true) {
        char *text = tu_slurp (path);
        bool found = text && strstr (text, needle);
        free (text);
        if (found)
            return true;
        if (s_now_ms () >= deadline)
            return false;
        s_pause (delay);
        delay = delay < 20 ? delay * 2 : 20;
    }
}

char *
tu_ready_endpoint (const char *ready, const char *role)
{
    if (!ready)
        return NULL;
    size_t role_len = strlen (role);
    const char *line = ready;
    while (line && *line) {
        if (strncmp (line, role, role_len) == 0 && line[role_len] == ' ') {
            const char *start = line + role_len + 1;
            size_t length = strcspn (start, "\n");
            return strndup (start, length);
        }
        line = strchr (line, '\n');
        if (line)
            line++;
    }
    return NULL;
}

zmsg_t *
tu_recv (zsock_t *sock, int timeout_ms)
{
    zmq_pollitem_t item = {zsock_resolve (sock), 0, ZMQ_POLLIN, 0};
    int64_t deadline = s_now_ms () + timeout_ms;
    while (true) {
        int64_t left = deadline - s_now_ms ();
        if (left < 0)
            return NULL;
        int rc = zmq_poll (&item, 1, (long) left);
        if (rc > 0)
            return zmsg_recv (sock);
        if (rc == 0)
            return NULL;
    }
}

char *
tu_engine_endpoint (zactor_t *engine, const char *role)
{
    if (zstr_send (engine, "ENDPOINTS") != 0)
        return NULL;
    zmsg_t *reply = tu_recv (zactor_sock (engine), 5000);
    char *found = NULL;
    size_t role_len = strlen (role);
    for (zframe_t *frame = reply ? zmsg_first (reply) : NULL; frame && !found;
         frame = zmsg_next (reply)) {
        char *entry = zframe_strdup (frame);
        if (strncmp (entry, role, role_len) == 0 && entry[role_len] == ' ')
            found = strdup (entry + role_len + 1);
        free (entry);
    }
    zmsg_destroy (&reply);
    return found;
}

#define TU_MAX_ARGS 32

//  argv for tu_bin (program) + args + extra (NULL-terminated lists) in argv.
static void
s_bin_argv (char **argv, char *bin, size_t bin_size, const char *program, const char *const *args,
            const char *const *extra)
{
    int argc = 0;
    argv[argc++] = (char *) tu_bin (program, bin, bin_size);
    for (; args && *args && argc < TU_MAX_ARGS - 3; args++)
        argv[argc++] = (char *) *args;
    for (; extra && *extra && argc < TU_MAX_ARGS - 1; extra++)
        argv[argc++] = (char *) *extra;
    argv[argc] = NULL;
}

/*  Start program with args, "--ready-file PATH", then (when command is not
    NULL) "--" and command, and wait for the ready file.                 */
static int
s_daemon_start (tu_daemon_t *daemon, const char *program, const char *const *args,
                const char *const *command, int timeout_ms)
{
    memset (daemon, 0, sizeof *daemon);
    daemon->proc.exited = true;
    daemon->dir = tu_tmpdir ();
    if (!daemon->dir)
        return -1;
    snprintf (daemon->ready_path, sizeof daemon->ready_path, "%s/ready", daemon->dir);
    char bin[512];
    char *argv[TU_MAX_ARGS];
    const char *extra[TU_MAX_ARGS] = {"--ready-file", daemon->ready_path, NULL};
    if (command) {
        int count = 2;
        extra[count++] = "--";
        for (; *command && count < TU_MAX_ARGS - 1; command++)
            extra[count++] = *command;
        extra[count] = NULL;
    }
    s_bin_argv (argv, bin, sizeof bin, program, args, extra);
    if (tu_spawn (&daemon->proc, daemon->dir, argv) != 0) {
        daemon->proc.exited = true;
        return -1;
    }
    daemon->ready = tu_wait_file (daemon->ready_path, timeout_ms);
    if (!daemon->ready) {
        tu_stop (&daemon->proc, SIGKILL, 2000);
        return -1;
    }
    return 0;
}

int
tu_daemon_start (tu_daemon_t *daemon, const char *program, const char *const *args, int timeout_ms)
{
    return s_daemon_start (daemon, program, args, NULL, timeout_ms);
}

int
tu_daemon_start_command (tu_daemon_t *daemon, const char *program, const char *const *args,
                         const char *const *command, int timeout_ms)
{
    return s_daemon_start (daemon, program, args, command, timeout_ms);
}

void
tu_daemon_cleanup (tu_daemon_t *daemon)
{
    if (!daemon->proc.exited)
        tu_stop (&daemon->proc, SIGKILL, 2000);
    free (daemon->ready);
    daemon->ready = NULL;
    tu_rmdir (daemon->dir);
    free (daemon->dir);
    daemon->dir = NULL;
}

void
tu_daemon_must_start (tu_daemon_t *daemon, const char *program, const char *const *args,
                      int timeout_ms)
{
    if (tu_daemon_start (daemon, program, args, timeout_ms) != 0) {
        char *err = daemon->dir ? tu_stderr (&daemon->proc) : NULL;
        cr_assert_fail ("%s never got ready: %s", program, err ? err : "");
    }
}

char *
tu_daemon_endpoint (tu_daemon_t *daemon, const char *role)
{
    char *endpoint = tu_ready_endpoint (daemon->ready, role);
    cr_assert_not_null (endpoint, "no %s in the ready file:\n%s", role, daemon->ready);
    return endpoint;
}

int
tu_run_bin (const char *program, const char *const *args, char **out_p, char **err_p,
            int timeout_ms)
{
    char *dir = tu_tmpdir ();
    if (!dir)
        return -1;
    char bin[512];
    char *argv[TU_MAX_ARGS];
    s_bin_argv (argv, bin, sizeof bin, program, args, NULL);
    int rc = tu_run (dir, argv, NULL, out_p, err_p, timeout_ms);
    tu_rmdir (dir);
    free (dir);
    return rc;
}

zsock_t *
tu_connect (int type, const char *endpoint)
{
    zsock_t *sock = zsock_new (type);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, 0);
    if (zsock_connect (sock, "%s", endpoint) != 0)
        zsock_destroy (&sock);
    return sock;
}

zsock_t *
tu_bind_ephemeral (int type, char *endpoint, size_t size)
{
    zsock_t *sock = zsock_new (type);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, 0);
    if (zmq_bind (zsock_resolve (sock), "tcp://127.0.0.1:*") != 0
        || zmq_getsockopt (zsock_resolve (sock), ZMQ_LAST_ENDPOINT, endpoint, &size) != 0)
        zsock_destroy (&sock);
    return sock;
}
