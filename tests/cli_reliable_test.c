/*  cli_reliable — reliable request-response with the real binaries: two
    `zkit-proxy router@ dealer@`, each with its own `zkit-worker --in
    'rep>BACKEND'`, and a client (the library's zk_caller, or `zkit-cat
    'req>A,B' --timeout T --retries N`) that keeps getting replies while a
    proxy is SIGKILLed and restarted on its ports, and whose request is
    answered by the other worker when the one running it is SIGKILLed.
    COMMAND appends each request to a log file once it completes, so the
    log counts the runs; a run that must wait says so by creating a file
    and waits for the test's "go" file.                                    */

#include "testutil.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS 20000

static char *s_dir;

static void
s_setup (void)
{
    s_dir = tu_tmpdir ();
    cr_assert_not_null (s_dir);
}

static void
s_teardown (void)
{
    tu_rmdir (s_dir);
    free (s_dir);
}

TestSuite (cli_reliable, .init = s_setup, .fini = s_teardown, .timeout = 120);

//  COMMAND, run as `sh -c SCRIPT sh NAME DIR [wait]`: answers "NAME:BODY";
//  with "wait", it first creates DIR/started-NAME (holding its pid, the
//  leader of its process group) and waits for DIR/go; at its end it appends
//  BODY to DIR/log.
static const char *s_script =
    "body=$(cat)\n"
    "if [ \"$3\" = wait ]; then\n"
    "  echo $$ > \"$2/started-$1.tmp\" && mv \"$2/started-$1.tmp\" \"$2/started-$1\"\n"
    "  i=0\n"
    "  while [ ! -e \"$2/go\" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done  # poll until "
    "go, "
    "30 s deadline\n"
    "fi\n"
    "echo \"$body\" >> \"$2/log\"\n"
    "printf '%s:%s' \"$1\" \"$body\"\n";

//  zkit-proxy FRONTEND BACKEND.
static void
s_proxy_start (tu_daemon_t *proxy, const char *frontend, const char *backend)
{
    const char *args[] = {frontend, backend, NULL};
    if (tu_daemon_start (proxy, "zkit-proxy", args, WAIT_MS)) {
        char *err = tu_stderr (&proxy->proc);
        cr_assert_fail ("zkit-proxy %s %s never got ready: %s", frontend, backend, err ? err : "");
    }
}

static char *
s_endpoint (tu_daemon_t *daemon, const char *role)
{
    char *endpoint = tu_ready_endpoint (daemon->ready, role);
    cr_assert_not_null (endpoint, "no %s in the ready file:\n%s", role, daemon->ready);
    return endpoint;
}

//  zkit-worker --in 'rep>BACKEND' -- sh -c SCRIPT sh NAME DIR MODE; with
//  watch, two job slots (so a retry is read while the first run goes on)
//  and a stats line every 0.1 s.
static void
s_worker_start (tu_daemon_t *worker, const char *backend, const char *name, const char *mode,
                bool watch)
{
    char *in = zsys_sprintf ("rep>%s", backend);
    const char *args[] = {"--in", in, watch ? "--jobs" : NULL, "2", "--stats", "0.1", NULL};
    const char *command[] = {"sh", "-c", s_script, "sh", name, s_dir, mode, NULL};
    if (tu_daemon_start_command (worker, "zkit-worker", args, command, WAIT_MS)) {
        char *err = tu_stderr (&worker->proc);
        cr_assert_fail ("zkit-worker %s never got ready: %s", name, err ? err : "");
    }
    free (in);
}

//  One proxy with its worker behind it.
typedef struct {
    tu_daemon_t proxy, worker;
    char *front, *back;  //  the proxy's endpoints
} site_t;

//  zkit-proxy on ephemeral ports, and worker NAME (MODE, watch) on its backend.
static void
s_site_start (site_t *site, const char *name, const char *mode, bool watch)
{
    memset (site, 0, sizeof *site);
    s_proxy_start (&site->proxy, "router@tcp://127.0.0.1:*", "dealer@tcp://127.0.0.1:*");
    site->front = s_endpoint (&site->proxy, "frontend");
    site->back = s_endpoint (&site->proxy, "backend");
    s_worker_start (&site->worker, site->back, name, mode, watch);
}

static void
s_site_cleanup (site_t *site)
{
    tu_daemon_cleanup (&site->worker);
    tu_daemon_cleanup (&site->proxy);
    free (site->front);
    free (site->back);
}

//  zkit-cat spec --timeout TIMEOUT --retries RETRIES, started with "job1" on stdin.
static void
s_client_start (tu_proc_t *client, const char *spec, const char *timeout, const char *retries)
{
    char bin[512];
    char *argv[] = {(char *) tu_bin ("zkit-cat", bin, sizeof bin),
                    (char *) spec,
                    "--timeout",
                    (char *) timeout,
                    "--retries",
                    (char *) retries,
                    NULL};
    cr_assert_eq (tu_spawn (client, s_dir, argv), 0);
    tu_write_stdin (client, "job1\n", 5, true);
}

//  The client exits 0 having printed expected.
static void
s_client_expect (tu_proc_t *client, const char *expected)
{
    cr_assert_eq (tu_wait (client, WAIT_MS), 0);
    char *out = tu_stdout (client);
    cr_assert_str_eq (out, expected);
    free (out);
}

//  SIGKILL a daemon and reap it.
static void
s_kill (tu_daemon_t *daemon)
{
    cr_assert_eq (kill (daemon->proc.pid, SIGKILL), 0);
    cr_assert_eq (tu_wait (&daemon->proc, WAIT_MS), 128 + SIGKILL);
}

//  Lines in DIR/log (0 if there is none).
static int
s_log_lines (void)
{
    char *path = zsys_sprintf ("%s/log", s_dir);
    char *text = tu_slurp (path);
    int lines = 0;
    for (char *c = text; c && *c; c++)
        lines += *c == '\n';
    free (text);
    free (path);
    return lines;
}

static void
s_go (void)
{
    char *path = zsys_sprintf ("%s/go", s_dir);
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file);
    fclose (file);
    free (path);
}

//  One call through caller: the reply must be "WORKER:body". The worker's
//  name into worker (one character).
static void
s_call (zk_caller_t *caller, int number, char *worker)
{
    zmsg_t *request = zmsg_new (), *reply;
    zmsg_addstrf (request, "%d", number);
    int rc = zk_caller_call (caller, &request, &reply);
    cr_assert_eq (rc, 0, "call %d: %s (%s)", number, zk_strerror (rc),
                  zk_caller_last_error (caller));
    zframe_t *last = zmsg_last (reply);
    char *text = zframe_strdup (last);
    char *expected = zsys_sprintf (":%d", number);
    cr_assert (strlen (text) > 2 && streq (text + 1, expected), "call %d got '%s'", number, text);
    *worker = text[0];
    free (expected);
    zstr_free (&text);
    zmsg_destroy (&reply);
}

Test (cli_reliable, replies_keep_coming_while_a_proxy_is_killed_and_restarted)
{
    site_t a, b;
    s_site_start (&a, "A", "now", false);
    s_site_start (&b, "B", "now", false);
    char *spec = zsys_sprintf ("req>%s,%s", a.front, b.front);
    zk_caller_t *caller =
        zk_caller_new (spec, &(zk_caller_config_t){.timeout_ms = 1000, .retries = 5});
    cr_assert_not_null (caller);
    int number = 0;
    char worker;
    for (int round = 0; round < 5; round++)
        s_call (caller, ++number, &worker);

    //  Proxy A dies: every call still gets its reply (from B).
    s_kill (&a.proxy);
    for (int round = 0; round < 5; round++) {
        s_call (caller, ++number, &worker);
        cr_assert_eq (worker, 'B');
    }

    //  Proxy A comes back on the same ports; then B dies: A answers again.
    tu_daemon_t again = {0};
    char *front_again = zsys_sprintf ("router@%s", a.front);
    char *back_again = zsys_sprintf ("dealer@%s", a.back);
    s_proxy_start (&again, front_again, back_again);
    s_kill (&b.proxy);
    for (int round = 0; round < 5; round++) {
        s_call (caller, ++number, &worker);
        cr_assert_eq (worker, 'A');
    }
    zk_caller_stats_t stats;
    zk_caller_stats (caller, &stats);
    cr_assert_eq (stats.replies, 15);
    cr_assert_geq (stats.failovers, 2);
    cr_assert_eq (s_log_lines (), 15, "every request ran once");

    zk_caller_destroy (&caller);
    free (spec);
    free (front_again);
    free (back_again);
    tu_daemon_cleanup (&again);
    s_site_cleanup (&a);
    s_site_cleanup (&b);
}

//  Wait until DIR/started-A or DIR/started-B exists; its name's letter.
static char
s_wait_started (void)
{
    char *path_a = zsys_sprintf ("%s/started-A", s_dir);
    char *path_b = zsys_sprintf ("%s/started-B", s_dir);
    char which = 0;
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (!which && zclock_mono () < deadline) {
        if (access (path_a, F_OK) == 0)
            which = 'A';
        else if (access (path_b, F_OK) == 0)
            which = 'B';
        else
            zmq_poll (NULL, 0, 20);  //  poll until a command starts, 20 s deadline
    }
    free (path_a);
    free (path_b);
    cr_assert (which, "no command started");
    return which;
}

//  The pid in DIR/started-NAME.
static pid_t
s_started_pid (char name)
{
    char *path = zsys_sprintf ("%s/started-%c", s_dir, name);
    char *text = tu_wait_file (path, WAIT_MS);
    cr_assert_not_null (text);
    pid_t pid = (pid_t) atoi (text);
    cr_assert_gt (pid, 1);
    free (text);
    free (path);
    return pid;
}

Test (cli_reliable, a_request_whose_worker_dies_is_answered_by_the_other_worker)
{
    site_t a, b;
    s_site_start (&a, "A", "wait", false);
    s_site_start (&b, "B", "wait", false);
    char *spec = zsys_sprintf ("req>%s,%s", a.front, b.front);
    tu_proc_t client;
    s_client_start (&client, spec, "2", "3");

    //  The worker running it dies (and its command with it, as on a lost
    //  host): after one --timeout the client retries on the other proxy.
    char first = s_wait_started ();
    pid_t command = s_started_pid (first);
    s_kill (first == 'A' ? &a.worker : &b.worker);
    kill (-command, SIGKILL);
    char second = first == 'A' ? 'B' : 'A';
    s_started_pid (second);
    s_go ();
    char *expected = zsys_sprintf ("%c:job1\n", second);
    s_client_expect (&client, expected);
    cr_assert_eq (s_log_lines (), 1, "the command completed once, for the one reply");

    free (expected);
    free (spec);
    s_site_cleanup (&a);
    s_site_cleanup (&b);
}

Test (cli_reliable, a_retry_to_the_same_worker_runs_the_command_once)
{
    //  One worker, a client whose timeout is shorter than COMMAND: the
    //  retry (same request id) joins the run in progress (the worker's
    //  reply cache), and COMMAND runs once.
    site_t site;
    s_site_start (&site, "W", "wait", true);
    char *spec = zsys_sprintf ("req>%s", site.front);
    tu_proc_t client;
    s_client_start (&client, spec, "1", "20");
    s_started_pid ('W');
    cr_assert (tu_wait_contains (site.worker.proc.err_path, "joined=1", WAIT_MS),
               "no retry joined the run");
    s_go ();
    s_client_expect (&client, "W:job1\n");
    cr_assert_eq (s_log_lines (), 1, "COMMAND ran once for all the attempts");
    free (spec);
    s_site_cleanup (&site);
}
