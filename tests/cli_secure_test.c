/*  Security from the shell: the real binaries with certificates made by
    zkit-keygen. An encrypted pipeline, fan-out, request-response and queue
    channel work end to end; a client without an allowed certificate, a
    NULL client against a CURVE server and a denied address are refused
    (never delivered, logged and counted by the server, zkit-cat exits 3);
    the flags are validated (exit 2, one line); and a flood of raw TCP
    connections and bad handshakes does not starve an admitted client.   */

#include "testutil.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define WAIT_MS    20000
#define REFUSED_MS "2"  //  --timeout of a client that will be refused (seconds)

//  ---------------------------------------------------------------- helpers

//  Certificates made by zkit-keygen in a fresh directory: server, client
//  (allowed: its public file is in allowed/), stranger (not allowed).
typedef struct {
    char *dir;
    char server[600], server_secret[600];
    char client_secret[600], stranger_secret[600];
    char allowed[600];
} s_pki_t;

static void
s_keygen (const char *dir, const char *name)
{
    char *out, *err;
    int rc =
        tu_run_bin ("zkit-keygen", (const char *[]){name, "--dir", dir, NULL}, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 0, "zkit-keygen %s: exit %d: %s", name, rc, err);
    free (out);
    free (err);
}

static void
s_pki_make (s_pki_t *pki)
{
    pki->dir = tu_tmpdir ();
    s_keygen (pki->dir, "server");
    s_keygen (pki->dir, "client");
    s_keygen (pki->dir, "stranger");
    snprintf (pki->server, sizeof pki->server, "%s/server", pki->dir);
    snprintf (pki->server_secret, sizeof pki->server_secret, "%s/server_secret", pki->dir);
    snprintf (pki->client_secret, sizeof pki->client_secret, "%s/client_secret", pki->dir);
    snprintf (pki->stranger_secret, sizeof pki->stranger_secret, "%s/stranger_secret", pki->dir);
    snprintf (pki->allowed, sizeof pki->allowed, "%s/allowed", pki->dir);
    cr_assert_eq (mkdir (pki->allowed, 0755), 0);
    //  Distributing a public certificate is copying its file.
    char from[700], to[700];
    snprintf (from, sizeof from, "%s/client", pki->dir);
    snprintf (to, sizeof to, "%s/client", pki->allowed);
    char *text = tu_slurp (from);
    cr_assert_not_null (text);
    FILE *file = fopen (to, "w");
    cr_assert_not_null (file);
    fputs (text, file);
    fclose (file);
    free (text);
}

static void
s_pki_free (s_pki_t *pki)
{
    tu_rmdir (pki->dir);
    free (pki->dir);
}

static void
s_start (tu_daemon_t *daemon, const char *program, const char *const *args)
{
    if (tu_daemon_start (daemon, program, args, WAIT_MS) != 0) {
        char *err = daemon->dir ? tu_stderr (&daemon->proc) : NULL;
        cr_assert_fail ("%s never got ready: %s", program, err ? err : "");
    }
}

//  Start program with args, serving CURVE with the server's key pair and
//  admitting only allowed/, with --stats 0.2.
static void
s_start_secure (tu_daemon_t *daemon, const s_pki_t *pki, const char *program,
                const char *const *args)
{
    const char *all[32];
    size_t count = 0;
    for (; *args && count < 20; args++)
        all[count++] = *args;
    const char *security[] = {"--curve-secret", pki->server_secret, "--curve-allow",
                              pki->allowed,     "--stats",          "0.2"};
    memcpy (all + count, security, sizeof security);
    all[count + 6] = NULL;
    s_start (daemon, program, all);
}

static char *
s_endpoint (tu_daemon_t *daemon, const char *role)
{
    char *endpoint = tu_ready_endpoint (daemon->ready, role);
    cr_assert_not_null (endpoint, "no %s in the ready file:\n%s", role, daemon->ready);
    return endpoint;
}

//  argv for zkit-cat: its path, then args (NULL-terminated).
static void
s_cat_argv (const char **argv, size_t size, char *bin, size_t bin_size, const char *const *args)
{
    size_t count = 0;
    argv[count++] = tu_bin ("zkit-cat", bin, bin_size);
    for (; *args && count + 1 < size; args++)
        argv[count++] = *args;
    argv[count] = NULL;
}

//  Run zkit-cat with input on stdin; its exit code as tu_run.
static int
s_cat (const char *input, const char *const *args, char **out_p, char **err_p)
{
    char bin[512];
    const char *argv[64];
    s_cat_argv (argv, 64, bin, sizeof bin, args);
    char *dir = tu_tmpdir ();
    int rc = tu_run (dir, (char *const *) argv, input, out_p, err_p, WAIT_MS + 10000);
    tu_rmdir (dir);
    free (dir);
    return rc;
}

//  Start zkit-cat in the background (a receiver).
static void
s_cat_spawn (tu_proc_t *proc, const char *dir, const char *const *args)
{
    char bin[512];
    const char *argv[64];
    s_cat_argv (argv, 64, bin, sizeof bin, args);
    cr_assert_eq (tu_spawn (proc, dir, (char *const *) argv), 0);
    tu_close_stdin (proc);
}

//  zkit-cat must exit 3 (not delivered / no reply): the server refused it.
static void
s_cat_refused (const char *input, const char *const *args)
{
    char *out, *err;
    int rc = s_cat (input, args, &out, &err);
    cr_assert_eq (rc, 3, "a refused client exited %d: %s", rc, err);
    free (out);
    free (err);
}

//  A stranger's certificate and no certificate at all: both refused
//  (zkit-cat sends a line to spec).
static void
s_strangers_refused (const s_pki_t *pki, const char *spec)
{
    s_cat_refused ("x\n",
                   (const char *[]){spec, "--curve-secret", pki->stranger_secret, "--curve-server",
                                    pki->server, "--timeout", REFUSED_MS, NULL});
    s_cat_refused ("y\n", (const char *[]){spec, "--timeout", REFUSED_MS, NULL});
}

//  The last value of " NAME=" in the file, or -1.
static long long
s_last_counter (const char *path, const char *name)
{
    char needle[64];
    snprintf (needle, sizeof needle, " %s=", name);
    char *text = tu_slurp (path);
    long long value = -1;
    for (const char *at = text ? strstr (text, needle) : NULL; at; at = strstr (at + 1, needle))
        value = atoll (at + strlen (needle));
    free (text);
    return value;
}

//  Wait until a --stats line reports NAME above floor; its value.
static long long
s_wait_counter_above (const char *path, const char *name, long long floor)
{
    int64_t deadline = zclock_mono () + WAIT_MS;
    long long value = s_last_counter (path, name);
    while (value <= floor && zclock_mono () < deadline) {
        zclock_sleep (50);  //  poll the stats lines until the deadline
        value = s_last_counter (path, name);
    }
    return value;
}

//  The server logged a refusal of a loopback client, with the reason.
static void
s_assert_refusal_logged (tu_daemon_t *daemon, const char *reason)
{
    cr_assert (tu_wait_contains (daemon->proc.err_path, "auth: refused 127.0.0.1", WAIT_MS),
               "no refusal logged");
    char *err = tu_stderr (&daemon->proc);
    cr_assert_not_null (strstr (err, reason), "refusal without '%s':\n%s", reason, err);
    free (err);
}

//  ---------------------------------------------------------------- flags

Test (cli_secure, every_binary_lists_the_security_flags, .timeout = 60)
{
    const char *programs[] = {"zkit-cat", "zkit-proxy", "zkit-forwarder", "zkit-queue",
                              "zkit-worker"};
    const char *flags[] = {"--curve-secret FILE", "--curve-server CERT",
                           "--curve-allow DIR",   "--allow IP",
                           "--deny IP",           "curve-secret=FILE&curve-allow=DIR"};
    for (size_t index = 0; index < sizeof programs / sizeof programs[0]; index++) {
        char *out, *err;
        int rc =
            tu_run_bin (programs[index], (const char *[]){"--help", NULL}, &out, &err, WAIT_MS);
        cr_assert_eq (rc, 0, "%s --help: %d", programs[index], rc);
        for (size_t flag = 0; flag < sizeof flags / sizeof flags[0]; flag++)
            cr_assert_not_null (strstr (out, flags[flag]), "%s --help lacks %s", programs[index],
                                flags[flag]);
        free (out);
        free (err);
    }
}

Test (cli_secure, bad_security_flags_exit_2_with_one_line, .timeout = 120)
{
    s_pki_t pki;
    s_pki_make (&pki);
    char open_secret[700], missing[700], data[700];
    snprintf (open_secret, sizeof open_secret, "%s/open_secret", pki.dir);
    snprintf (missing, sizeof missing, "%s/missing_secret", pki.dir);
    snprintf (data, sizeof data, "%s/data", pki.dir);
    s_keygen (pki.dir, "open");
    cr_assert_eq (chmod (open_secret, 0644), 0);
    const char *bind_a = "pull@tcp://127.0.0.1:*", *bind_b = "push@tcp://127.0.0.1:*";
    const char *connect = "push>tcp://127.0.0.1:9";
    struct {
        const char *program;
        const char *args[16];
        const char *reason;
    } cases[] = {
        {"zkit-proxy", {bind_a, bind_b, "--curve-secret", missing}, "--curve-secret: "},
        {"zkit-cat",
         {connect, "--curve-secret", open_secret, "--curve-server", pki.server},
         "readable by others"},
        {"zkit-cat",
         {connect, "--curve-server", pki.server},
         "--curve-server needs --curve-secret"},
        {"zkit-cat", {connect, "--curve-secret", pki.client_secret}, "give --curve-server CERT"},
        {"zkit-cat",
         {connect, "--curve-secret", pki.client_secret, "--curve-server", missing},
         "--curve-server: "},
        {"zkit-proxy", {bind_a, bind_b, "--curve-allow", pki.allowed}, "--curve-allow needs"},
        {"zkit-proxy",
         {bind_a, bind_b, "--curve-secret", pki.server_secret, "--curve-allow", pki.server},
         "not a directory"},
        {"zkit-forwarder",
         {"xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*", "--allow", "300.1.1.1"},
         "is not an IP address"},
        {"zkit-forwarder",
         {"xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*", "--deny", "host"},
         "is not an IP address"},
        {"zkit-worker",
         {"--in", "pull>tcp://127.0.0.1:9", "--deny", "10.0.0.1", "--", "cat"},
         "no socket spec here binds"},
        {"zkit-queue",
         {"--data", data, "router@tcp://127.0.0.1:*", "--curve-secret", pki.server_secret,
          "--curve-server", pki.server},
         "no socket spec here connects"},
        {"zkit-proxy", {"pull@tcp://127.0.0.1:*?foo=1", bind_b}, "unknown option 'foo'"},
        {"zkit-cat",
         {"push>tcp://127.0.0.1:9?curve-secret=/nonexistent&curve-server=/x"},
         "No such file"},
        {"zkit-queue",
         {"--data", data, "router@tcp://127.0.0.1:*?allow=10.0.0.1",
          "router@ipc:///tmp/zk-secure-none.sock"},
         "same security options"},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        char *out, *err;
        int rc = tu_run_bin (cases[index].program, cases[index].args, &out, &err, WAIT_MS);
        cr_assert_eq (rc, 2, "case %zu (%s): exit %d: %s", index, cases[index].program, rc, err);
        char prefix[64];
        snprintf (prefix, sizeof prefix, "%s: ", cases[index].program);
        cr_assert_eq (strncmp (err, prefix, strlen (prefix)), 0, "case %zu: %s", index, err);
        cr_assert_not_null (strstr (err, cases[index].reason), "case %zu: '%s' lacks '%s'", index,
                            err, cases[index].reason);
        const char *newline = strchr (err, '\n');
        cr_assert (newline && !newline[1], "case %zu: not one line: %s", index, err);
        free (out);
        free (err);
    }
    s_pki_free (&pki);
}

//  ---------------------------------------------------------------- channels

Test (cli_secure, an_encrypted_pipeline_refuses_strangers_and_null_clients, .timeout = 120)
{
    s_pki_t pki;
    s_pki_make (&pki);
    tu_daemon_t proxy;
    s_start_secure (&proxy, &pki, "zkit-proxy",
                    (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", NULL});
    char *frontend = s_endpoint (&proxy, "frontend");
    char *backend = s_endpoint (&proxy, "backend");

    char spec[700];
    snprintf (spec, sizeof spec, "pull>%s", backend);
    tu_proc_t receiver;
    s_cat_spawn (&receiver, proxy.dir,
                 (const char *[]){spec, "--curve-secret", pki.client_secret, "--curve-server",
                                  pki.server, "-n", "3", "--timeout", "20", NULL});
    snprintf (spec, sizeof spec, "push>%s", frontend);
    char *out, *err;
    int rc = s_cat ("a\nb\nc\n",
                    (const char *[]){spec, "--curve-secret", pki.client_secret, "--curve-server",
                                     pki.server, NULL},
                    &out, &err);
    cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
    free (out);
    free (err);
    rc = tu_wait (&receiver, WAIT_MS);
    char *got = tu_stdout (&receiver);
    cr_assert_eq (rc, 0, "receiver exit %d", rc);
    cr_assert_str_eq (got, "a\nb\nc\n");
    free (got);

    //  A certificate not in allowed/, and no certificate at all.
    s_strangers_refused (&pki, spec);
    s_assert_refusal_logged (&proxy, "key not in");
    cr_assert_gt (s_wait_counter_above (proxy.proc.err_path, "auth_denied", 0), 0);
    //  Neither message entered the proxy.
    cr_assert_eq (s_last_counter (proxy.proc.err_path, "frontend_in"), 3);

    free (frontend);
    free (backend);
    tu_daemon_cleanup (&proxy);
    s_pki_free (&pki);
}

Test (cli_secure, a_binding_zkit_cat_serves_curve_from_its_own_context, .timeout = 120)
{
    //  zkit-cat runs its socket in a private context: its ZAP handler too.
    s_pki_t pki;
    s_pki_make (&pki);
    char ready[700];
    snprintf (ready, sizeof ready, "%s/ready", pki.dir);
    tu_proc_t receiver;
    s_cat_spawn (&receiver, pki.dir,
                 (const char *[]){"pull@tcp://127.0.0.1:*", "--curve-secret", pki.server_secret,
                                  "--curve-allow", pki.allowed, "-n", "2", "--timeout", "30",
                                  "--ready-file", ready, NULL});
    char *lines = tu_wait_file (ready, WAIT_MS);
    cr_assert_not_null (lines, "the receiver never got ready");
    char *endpoint = tu_ready_endpoint (lines, "socket");
    cr_assert_not_null (endpoint, "%s", lines);
    char spec[700];
    snprintf (spec, sizeof spec, "push>%s", endpoint);
    s_strangers_refused (&pki, spec);
    char *out, *err;
    int rc = s_cat ("one\ntwo\n",
                    (const char *[]){spec, "--curve-secret", pki.client_secret, "--curve-server",
                                     pki.server, NULL},
                    &out, &err);
    cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
    free (out);
    free (err);
    rc = tu_wait (&receiver, WAIT_MS);
    char *got = tu_stdout (&receiver);
    char *log = tu_stderr (&receiver);
    cr_assert_eq (rc, 0, "receiver exit %d: %s", rc, log);
    cr_assert_str_eq (got, "one\ntwo\n", "the strangers' lines arrived?");
    cr_assert_not_null (strstr (log, "auth: refused 127.0.0.1"), "%s", log);
    free (log);
    free (got);
    free (endpoint);
    free (lines);
    s_pki_free (&pki);
}

Test (cli_secure, deny_refuses_loopback_clients, .timeout = 60)
{
    tu_daemon_t proxy;
    s_start (&proxy, "zkit-proxy",
             (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", "--deny",
                              "127.0.0.1", "--stats", "0.2", NULL});
    char *frontend = s_endpoint (&proxy, "frontend");
    char spec[300];
    snprintf (spec, sizeof spec, "push>%s", frontend);
    s_cat_refused ("x\n", (const char *[]){spec, "--timeout", REFUSED_MS, NULL});
    s_assert_refusal_logged (&proxy, "address denied");
    cr_assert_gt (s_wait_counter_above (proxy.proc.err_path, "auth_denied", 0), 0);
    cr_assert_eq (s_last_counter (proxy.proc.err_path, "frontend_in"), 0);
    //  An allow list that does not hold loopback refuses it the same way.
    tu_daemon_t other;
    s_start (&other, "zkit-proxy",
             (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", "--allow",
                              "10.0.0.0/8", NULL});
    char *other_frontend = s_endpoint (&other, "frontend");
    snprintf (spec, sizeof spec, "push>%s", other_frontend);
    s_cat_refused ("x\n", (const char *[]){spec, "--timeout", REFUSED_MS, NULL});
    s_assert_refusal_logged (&other, "not in the allow list");
    free (other_frontend);
    free (frontend);
    tu_daemon_cleanup (&other);
    tu_daemon_cleanup (&proxy);
}

Test (cli_secure, a_spec_with_its_own_options_keeps_them, .timeout = 60)
{
    //  The frontend's bare '?' keeps the flags off it: loopback gets in
    //  there, and is refused on the backend (its policy has its own domain).
    tu_daemon_t proxy;
    s_start (&proxy, "zkit-proxy",
             (const char *[]){"pull@tcp://127.0.0.1:*?", "push@tcp://127.0.0.1:*", "--deny",
                              "127.0.0.1", NULL});
    char *frontend = s_endpoint (&proxy, "frontend");
    char *backend = s_endpoint (&proxy, "backend");
    char spec[300];
    snprintf (spec, sizeof spec, "push>%s", frontend);
    char *out, *err;
    int rc = s_cat ("taken\n", (const char *[]){spec, NULL}, &out, &err);
    cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
    free (out);
    free (err);
    snprintf (spec, sizeof spec, "pull>%s", backend);
    s_cat_refused (NULL, (const char *[]){spec, "-n", "1", "--timeout", REFUSED_MS, NULL});
    s_assert_refusal_logged (&proxy, "address denied");
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&proxy);
}

Test (cli_secure, an_encrypted_fan_out_reaches_two_subscribers, .timeout = 120)
{
    s_pki_t pki;
    s_pki_make (&pki);
    tu_daemon_t forwarder;
    s_start_secure (&forwarder, &pki, "zkit-forwarder",
                    (const char *[]){"xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*", NULL});
    char *frontend = s_endpoint (&forwarder, "frontend");
    char *backend = s_endpoint (&forwarder, "backend");
    char spec[700];
    snprintf (spec, sizeof spec, "sub>%s", backend);
    //  Two different subscriptions, so the publisher sees two (the xsub
    //  passes each distinct one up once): every message starts with "m".
    tu_proc_t subscribers[2];
    const char *topics[2] = {"", "m"};
    for (int index = 0; index < 2; index++)
        s_cat_spawn (&subscribers[index], forwarder.dir,
                     (const char *[]){spec, "-s", topics[index], "--curve-secret",
                                      pki.client_secret, "--curve-server", pki.server, "-n", "3",
                                      "--timeout", "30", NULL});
    snprintf (spec, sizeof spec, "pub>%s", frontend);
    char *out, *err;
    int rc = s_cat ("m1\nm2\nm3\n",
                    (const char *[]){spec, "--wait-subscribers", "2", "--curve-secret",
                                     pki.client_secret, "--curve-server", pki.server, "--timeout",
                                     "30", NULL},
                    &out, &err);
    cr_assert_eq (rc, 0, "publisher exit %d: %s", rc, err);
    free (out);
    free (err);
    for (int index = 0; index < 2; index++) {
        rc = tu_wait (&subscribers[index], WAIT_MS);
        char *got = tu_stdout (&subscribers[index]);
        cr_assert_eq (rc, 0, "subscriber %d exit %d", index, rc);
        cr_assert_str_eq (got, "m1\nm2\nm3\n");
        free (got);
    }
    //  A subscriber with a stranger's certificate gets nothing.
    snprintf (spec, sizeof spec, "sub>%s", backend);
    s_cat_refused (NULL,
                   (const char *[]){spec, "--curve-secret", pki.stranger_secret, "--curve-server",
                                    pki.server, "-n", "1", "--timeout", REFUSED_MS, NULL});
    s_assert_refusal_logged (&forwarder, "key not in");
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&forwarder);
    s_pki_free (&pki);
}

Test (cli_secure, encrypted_request_response_through_proxy_and_worker, .timeout = 120)
{
    s_pki_t pki;
    s_pki_make (&pki);
    tu_daemon_t proxy;
    s_start_secure (&proxy, &pki, "zkit-proxy",
                    (const char *[]){"router@tcp://127.0.0.1:*", "dealer@tcp://127.0.0.1:*", NULL});
    char *frontend = s_endpoint (&proxy, "frontend");
    char *backend = s_endpoint (&proxy, "backend");
    char spec[700];
    snprintf (spec, sizeof spec, "rep>%s", backend);
    tu_daemon_t worker;
    if (tu_daemon_start_command (&worker, "zkit-worker",
                                 (const char *[]){"--in", spec, "--curve-secret", pki.client_secret,
                                                  "--curve-server", pki.server, NULL},
                                 (const char *[]){"tr", "a-z", "A-Z", NULL}, WAIT_MS)
        != 0)
        cr_assert_fail ("zkit-worker never got ready");
    snprintf (spec, sizeof spec, "req>%s", frontend);
    char *out, *err;
    int rc = s_cat ("hello\nworld\n",
                    (const char *[]){spec, "--curve-secret", pki.client_secret, "--curve-server",
                                     pki.server, "--timeout", "20", NULL},
                    &out, &err);
    cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
    cr_assert_str_eq (out, "HELLO\nWORLD\n");
    free (out);
    free (err);
    s_strangers_refused (&pki, spec);
    s_assert_refusal_logged (&proxy, "key not in");
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&worker);
    tu_daemon_cleanup (&proxy);
    s_pki_free (&pki);
}

Test (cli_secure, an_encrypted_queue_channel, .timeout = 120)
{
    s_pki_t pki;
    s_pki_make (&pki);
    char data[700];
    snprintf (data, sizeof data, "%s/data", pki.dir);
    tu_daemon_t queue;
    s_start_secure (&queue, &pki, "zkit-queue",
                    (const char *[]){"--data", data, "router@tcp://127.0.0.1:*", NULL});
    char *router = s_endpoint (&queue, "router");
    char spec[700];
    snprintf (spec, sizeof spec, "queue>%s/orders", router);
    char *out, *err;
    int rc = s_cat ("one\ntwo\n",
                    (const char *[]){spec, "--curve-secret", pki.client_secret, "--curve-server",
                                     pki.server, NULL},
                    &out, &err);
    cr_assert_eq (rc, 0, "put: exit %d: %s", rc, err);
    free (out);
    free (err);
    rc = s_cat (NULL,
                (const char *[]){spec, "-n", "2", "--timeout", "20", "--curve-secret",
                                 pki.client_secret, "--curve-server", pki.server, NULL},
                &out, &err);
    cr_assert_eq (rc, 0, "take: exit %d: %s", rc, err);
    cr_assert_str_eq (out, "one\ntwo\n");
    free (out);
    free (err);
    s_strangers_refused (&pki, spec);
    s_assert_refusal_logged (&queue, "key not in");
    cr_assert_gt (s_wait_counter_above (queue.proc.err_path, "auth_denied", 0), 0);
    //  Nothing from them was stored: only the two messages were ever put.
    cr_assert_eq (s_wait_counter_above (queue.proc.err_path, "put", 1), 2);
    free (router);
    tu_daemon_cleanup (&queue);
    s_pki_free (&pki);
}

//  ---------------------------------------------------------------- starvation

#define FLOOD_CONNECTIONS 1000
#define FLOOD_ROUNDS      10
#define STREAM_PER_ROUND  200
#define STRANGERS         10

//  The ZMTP 3.0 greeting of a client offering mechanism.
static void
s_greeting (uint8_t greeting[64], const char *mechanism)
{
    memset (greeting, 0, 64);
    greeting[0] = 0xff;
    greeting[9] = 0x7f;
    greeting[10] = 3;
    memcpy (greeting + 12, mechanism, strlen (mechanism));
}

//  What raw connection index sends: nothing (half-open), garbage, a NULL
//  greeting (a mechanism the CURVE server refuses), or a CURVE greeting
//  and a HELLO whose box is garbage.
static void
s_flood_send (int fd, int index)
{
    uint8_t buffer[64 + 2 + 200];
    size_t size = 0;
    switch (index % 4) {
        case 0: return;
        case 1:
            for (size = 0; size < 97; size++)
                buffer[size] = (uint8_t) (size * 37 + (size_t) index);
            break;
        case 2:
            s_greeting (buffer, "NULL");
            size = 64;
            break;
        default:
            s_greeting (buffer, "CURVE");
            buffer[64] = 0x04;  //  a short command frame
            buffer[65] = 200;
            memset (buffer + 66, 0xab, 200);
            memcpy (buffer + 66, "\x05HELLO\x01\x00", 8);
            size = sizeof buffer;
            break;
    }
    (void) !send (fd, buffer, size, MSG_NOSIGNAL | MSG_DONTWAIT);
}

//  Open count raw TCP connections to port on 127.0.0.1 (fds into fds),
//  then, once they are writable (bounded wait), send each its bytes.
//  Returns how many connected.
static int
s_flood (int *fds, int first, int count, int port)
{
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    struct pollfd polls[FLOOD_CONNECTIONS];
    for (int index = 0; index < count; index++) {
        int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        cr_assert_geq (fd, 0, "socket: %s", strerror (errno));
        int rc = connect (fd, (struct sockaddr *) &address, sizeof address);
        cr_assert (rc == 0 || errno == EINPROGRESS, "connect: %s", strerror (errno));
        fds[first + index] = fd;
        polls[index] = (struct pollfd){fd, POLLOUT, 0};
    }
    poll (polls, (nfds_t) count, 2000);  //  bounded: a socket not yet writable stays half-open
    int connected = 0;
    for (int index = 0; index < count; index++)
        if (polls[index].revents & POLLOUT) {
            s_flood_send (fds[first + index], first + index);
            connected++;
        }
    return connected;
}

static int
s_port (const char *endpoint)
{
    const char *colon = strrchr (endpoint, ':');
    cr_assert_not_null (colon);
    return atoi (colon + 1);
}

static zsock_t *
s_curve_sock (const char *direction, const char *endpoint, const char *secret, const char *server)
{
    char spec[2000];
    snprintf (spec, sizeof spec, "%s%s?curve-secret=%s&curve-server=%s", direction, endpoint,
              secret, server);
    int rc;
    zsock_t *sock = zk_sock_new (spec, &rc);
    cr_assert_not_null (sock, "%s: %d", spec, rc);
    zsock_set_linger (sock, 0);
    return sock;
}

//  Send count numbered messages from first on, and receive them in order.
static void
s_stream (zsock_t *producer, zsock_t *consumer, int first, int count, int64_t deadline)
{
    for (int index = first; index < first + count; index++)
        cr_assert_eq (zstr_sendf (producer, "msg-%d", index), 0);
    for (int index = first; index < first + count; index++) {
        int64_t left = deadline - zclock_mono ();
        zmsg_t *msg = tu_recv (consumer, left > 0 ? (int) left : 0);
        cr_assert_not_null (msg, "message %d did not arrive within the deadline", index);
        char *text = zmsg_popstr (msg);
        char expected[32];
        snprintf (expected, sizeof expected, "msg-%d", index);
        cr_assert_str_eq (text, expected);
        zstr_free (&text);
        zmsg_destroy (&msg);
    }
}

Test (cli_secure, a_flood_of_raw_connections_does_not_starve_an_admitted_client, .timeout = 240)
{
    //  The test holds a thousand sockets; so may the server (inherited limit).
    struct rlimit limit;
    cr_assert_eq (getrlimit (RLIMIT_NOFILE, &limit), 0);
    rlim_t wanted = FLOOD_CONNECTIONS * 2 + 1024;
    if (limit.rlim_cur < wanted) {
        limit.rlim_cur = limit.rlim_max < wanted ? limit.rlim_max : wanted;
        setrlimit (RLIMIT_NOFILE, &limit);
    }
    cr_assert_geq (limit.rlim_cur, FLOOD_CONNECTIONS + 200, "fd limit too low: %llu",
                   (unsigned long long) limit.rlim_cur);
    s_pki_t pki;
    s_pki_make (&pki);
    tu_daemon_t proxy;
    s_start_secure (&proxy, &pki, "zkit-proxy",
                    (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", NULL});
    char *frontend = s_endpoint (&proxy, "frontend");
    char *backend = s_endpoint (&proxy, "backend");
    zsock_t *consumer = s_curve_sock ("pull>", backend, pki.client_secret, pki.server);
    zsock_t *producer = s_curve_sock ("push>", frontend, pki.client_secret, pki.server);
    int64_t deadline = zclock_mono () + 120000;
    s_stream (producer, consumer, 0, 10, deadline);  //  admitted and flowing

    //  The flood, in rounds, while the admitted client streams.
    int fds[FLOOD_CONNECTIONS];
    zsock_t *strangers[STRANGERS];
    int port = s_port (frontend);
    int per_round = FLOOD_CONNECTIONS / FLOOD_ROUNDS, connected = 0;
    for (int round = 0; round < FLOOD_ROUNDS; round++) {
        connected += s_flood (fds, round * per_round, per_round, port);
        if (round < STRANGERS) {
            strangers[round] = s_curve_sock ("push>", frontend, pki.stranger_secret, pki.server);
            zstr_send (strangers[round], "intruder");
        }
        s_stream (producer, consumer, 10 + round * STREAM_PER_ROUND, STREAM_PER_ROUND, deadline);
    }
    int streamed = 10 + FLOOD_ROUNDS * STREAM_PER_ROUND;
    cr_assert_geq (connected, FLOOD_CONNECTIONS / 2, "only %d flood connections connected",
                   connected);
    //  Still flooded: the stream goes on; then the flood ends.
    s_stream (producer, consumer, streamed, 100, deadline);
    for (int index = 0; index < FLOOD_CONNECTIONS; index++)
        close (fds[index]);
    for (int index = 0; index < STRANGERS; index++)
        zsock_destroy (&strangers[index]);

    //  After the flood the server still serves, new clients too.
    zsock_t *late = s_curve_sock ("push>", frontend, pki.client_secret, pki.server);
    s_stream (late, consumer, streamed + 100, 100, deadline);
    cr_assert_eq (tu_wait (&proxy.proc, 0), -1, "the proxy died");
    s_assert_refusal_logged (&proxy, "key not in");
    cr_assert_gt (s_wait_counter_above (proxy.proc.err_path, "auth_denied", 0), 0);
    //  Nothing of the flood or the strangers entered: exactly what was streamed.
    long long expected = streamed + 200;
    long long frontend_in = s_wait_counter_above (proxy.proc.err_path, "frontend_in", expected - 1);
    cr_assert_eq (frontend_in, expected);

    zsock_destroy (&late);
    zsock_destroy (&producer);
    zsock_destroy (&consumer);
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&proxy);
    s_pki_free (&pki);
}
