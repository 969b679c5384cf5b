/*  Hostile input against the real binaries (issue 6, docs/protocol.md 4.2):
    crafted ZMTP frames from raw TCP peers, envelope bombs, huge topics,
    half-open connections, garbage on ZKQ/1. Each test ends by showing the
    process still serves: a normal message goes through after the attack.

    Raw peers speak just enough ZMTP 3.0 (NULL security) to get past the
    handshake: greeting, READY with a Socket-Type. Memory is read from
    /proc/PID/status (VmRSS), connections from /proc/PID/fd.            */

#include "testutil.h"
#include "zkq_wire.h"

#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS      10000
#define RSS_SLACK_KB (32 * 1024)  //  growth allowed during an attack
#define HALF_OPEN    1000         //  connections that never say anything

//  ---------------------------------------------------------------- helpers

//  Start a daemon; the test fails if it never gets ready.
static void
s_start (tu_daemon_t *daemon, const char *program, const char *const *args)
{
    tu_daemon_must_start (daemon, program, args, WAIT_MS);
}

//  VmRSS of pid in kB, or -1.
static long
s_rss_kb (pid_t pid)
{
    char path[64], line[256];
    snprintf (path, sizeof path, "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    long rss = -1;
    while (file && fgets (line, sizeof line, file))
        if (strncmp (line, "VmRSS:", 6) == 0)
            rss = strtol (line + 6, NULL, 10);
    if (file)
        fclose (file);
    return rss;
}

//  Open file descriptors of pid, or -1.
static int
s_fd_count (pid_t pid)
{
    char path[64];
    snprintf (path, sizeof path, "/proc/%d/fd", (int) pid);
    DIR *dir = opendir (path);
    if (!dir)
        return -1;
    int count = 0;
    for (struct dirent *entry = readdir (dir); entry; entry = readdir (dir))
        count += entry->d_name[0] != '.';
    closedir (dir);
    return count;
}

//  The port of "tcp://127.0.0.1:PORT".
static int
s_port (const char *endpoint)
{
    const char *colon = strrchr (endpoint, ':');
    cr_assert_not_null (colon, "%s", endpoint);
    return atoi (colon + 1);
}

//  A TCP connection to 127.0.0.1:port, connect started (non-blocking);
//  -1 when no socket could be made.
static int
s_tcp_start (int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons ((uint16_t) port)};
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    if (connect (fd, (struct sockaddr *) &address, sizeof address) != 0 && errno != EINPROGRESS) {
        close (fd);
        return -1;
    }
    return fd;
}

//  Wait until fd is readable or writable (events), at most until deadline.
static bool
s_wait_fd (int fd, short events, int64_t deadline)
{
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            return false;
        struct pollfd item = {fd, events, 0};
        int rc = poll (&item, 1, (int) left);
        if (rc > 0)
            return true;
        if (rc < 0 && errno != EINTR)
            return false;
    }
}

//  A connected TCP socket to port (blocking I/O through the helpers below).
static int
s_tcp_connect (int port)
{
    int fd = s_tcp_start (port);
    cr_assert_geq (fd, 0, "socket: %s", strerror (errno));
    cr_assert (s_wait_fd (fd, POLLOUT, zclock_mono () + WAIT_MS), "connect did not complete");
    int error = 0;
    socklen_t size = sizeof error;
    getsockopt (fd, SOL_SOCKET, SO_ERROR, &error, &size);
    cr_assert_eq (error, 0, "connect: %s", strerror (error));
    return fd;
}

//  Write all of data; false when the peer has closed (EPIPE, ECONNRESET).
static bool
s_send_all (int fd, const void *data, size_t size)
{
    const uint8_t *bytes = data;
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (size) {
        ssize_t sent = send (fd, bytes, size, MSG_NOSIGNAL);
        if (sent > 0) {
            bytes += sent;
            size -= (size_t) sent;
        }
        else if (sent < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!s_wait_fd (fd, POLLOUT, deadline))
                return false;
        }
        else
            return false;
    }
    return true;
}

//  Read exactly size bytes within the deadline; false on close or timeout.
static bool
s_read_all (int fd, void *data, size_t size, int64_t deadline)
{
    uint8_t *bytes = data;
    while (size) {
        if (!s_wait_fd (fd, POLLIN, deadline))
            return false;
        ssize_t got = recv (fd, bytes, size, 0);
        if (got > 0) {
            bytes += got;
            size -= (size_t) got;
        }
        else if (got == 0 || (errno != EAGAIN && errno != EINTR))
            return false;
    }
    return true;
}

//  True when the peer closes fd within timeout_ms (whatever it sends
//  first is read and dropped).
static bool
s_wait_closed (int fd, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    uint8_t scratch[4096];
    while (s_wait_fd (fd, POLLIN, deadline)) {
        ssize_t got = recv (fd, scratch, sizeof scratch, 0);
        if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
            return true;
    }
    return false;
}

//  The ZMTP 3.0 greeting of a NULL-security client.
static void
s_greeting (uint8_t greeting[64])
{
    memset (greeting, 0, 64);
    greeting[0] = 0xff;
    greeting[9] = 0x7f;
    greeting[10] = 3;  //  version 3.0
    memcpy (greeting + 12, "NULL", 4);
}

/*  Handshake as a NULL peer of socket_type ("PUSH", "DEALER" ...): our
    greeting and READY, the server's greeting and READY (a command frame:
    flags 0x04 short / 0x06 long). After it, frames go to the socket.    */
static void
s_zmtp_handshake (int fd, const char *socket_type)
{
    uint8_t greeting[64];
    s_greeting (greeting);
    cr_assert (s_send_all (fd, greeting, sizeof greeting));
    uint8_t ready[64] = {0x04, 0};
    size_t type_size = strlen (socket_type);
    size_t body = 6 + 1 + 11 + 4 + type_size;
    ready[1] = (uint8_t) body;
    memcpy (ready + 2, "\x05READY\x0bSocket-Type\x00\x00\x00", 21);
    ready[2 + 21] = (uint8_t) type_size;
    memcpy (ready + 2 + 22, socket_type, type_size);
    cr_assert (s_send_all (fd, ready, 2 + body));
    int64_t deadline = zclock_mono () + WAIT_MS;
    uint8_t theirs[64];
    cr_assert (s_read_all (fd, theirs, sizeof theirs, deadline), "no greeting from the server");
    cr_assert_eq (theirs[0], 0xff);
    cr_assert_eq (theirs[10], 3);
    uint8_t flags;
    cr_assert (s_read_all (fd, &flags, 1, deadline), "no READY from the server");
    cr_assert (flags == 0x04 || flags == 0x06, "flags %02x", flags);
    uint64_t size = 0;
    uint8_t length[8];
    size_t width = flags == 0x04 ? 1 : 8;
    cr_assert (s_read_all (fd, length, width, deadline));
    for (size_t i = 0; i < width; i++)
        size = size << 8 | length[i];
    cr_assert_leq (size, 4096);
    uint8_t command[4096];
    cr_assert (s_read_all (fd, command, (size_t) size, deadline));
    cr_assert_eq (memcmp (command, "\x05READY", 6), 0);
}

//  A long frame header (flags 0x02) announcing size bytes.
static void
s_frame_header (uint64_t size, uint8_t header[9])
{
    header[0] = 0x02;
    for (int i = 0; i < 8; i++)
        header[1 + i] = (uint8_t) (size >> (56 - 8 * i));
}

/*  CVE-2019-6250's shape and its cousin: after a clean handshake as a
    socket_type peer, a frame header announcing 2^62 bytes, then one
    announcing 512 MiB followed by up to 64 MiB of its bytes. Each
    connection must be dropped (ZMQ_MAXMSGSIZE) and the daemon's memory
    must not grow by what the frames announce or by what was sent.     */
static void
s_huge_frames (pid_t pid, const char *endpoint, const char *socket_type)
{
    int port = s_port (endpoint);
    long before = s_rss_kb (pid);
    cr_assert_gt (before, 0);

    int fd = s_tcp_connect (port);
    s_zmtp_handshake (fd, socket_type);
    uint8_t header[9];
    s_frame_header ((uint64_t) 1 << 62, header);
    s_send_all (fd, header, sizeof header);
    s_send_all (fd, "0123456789", 10);
    cr_assert (s_wait_closed (fd, WAIT_MS),
               "a 2^62-byte frame header did not close the connection");
    close (fd);

    fd = s_tcp_connect (port);
    s_zmtp_handshake (fd, socket_type);
    s_frame_header ((uint64_t) 512 << 20, header);
    s_send_all (fd, header, sizeof header);
    static uint8_t chunk[1 << 20];
    memset (chunk, 'x', sizeof chunk);
    size_t sent = 0;
    while (sent < ((size_t) 64 << 20) && s_send_all (fd, chunk, sizeof chunk))
        sent += sizeof chunk;
    cr_assert_lt (sent, (size_t) 64 << 20, "the daemon took 64 MiB of a 512 MiB frame");
    cr_assert (s_wait_closed (fd, WAIT_MS), "a 512 MiB frame header did not close the connection");
    close (fd);

    long after = s_rss_kb (pid);
    cr_assert_lt (after, before + RSS_SLACK_KB, "RSS grew from %ld kB to %ld kB", before, after);
}

//  Half a greeting then close; a greeting then a truncated frame header
//  then close; bytes that are not ZMTP at all. Each is dropped.
static void
s_truncated (const char *endpoint, const char *socket_type)
{
    int port = s_port (endpoint);
    uint8_t greeting[64];
    s_greeting (greeting);
    int fd = s_tcp_connect (port);
    s_send_all (fd, greeting, 20);
    close (fd);

    fd = s_tcp_connect (port);
    s_zmtp_handshake (fd, socket_type);
    s_send_all (fd, "\x02\x00\x00\x00", 4);  //  5 of the 8 size bytes missing
    close (fd);

    fd = s_tcp_connect (port);
    const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    s_send_all (fd, http, strlen (http));
    cr_assert (s_wait_closed (fd, WAIT_MS), "an HTTP request did not close the connection");
    close (fd);
}

//  One message through a device: push into its frontend, pull from its backend.
static void
s_pipeline_works (const char *frontend, const char *backend, const char *text)
{
    zsock_t *push = tu_connect (ZMQ_PUSH, frontend);
    zsock_t *pull = tu_connect (ZMQ_PULL, backend);
    cr_assert (push && pull);
    zstr_send (push, text);
    zmsg_t *msg = tu_recv (pull, WAIT_MS);
    cr_assert_not_null (msg, "'%s' did not go through", text);
    char *got = zmsg_popstr (msg);
    cr_assert_str_eq (got, text);
    free (got);
    zmsg_destroy (&msg);
    zsock_destroy (&push);
    zsock_destroy (&pull);
}

//  The control socket's STATISTICS counter name, or -1.
static long
s_control_counter (const char *control, const char *name)
{
    zsock_t *req = tu_connect (ZMQ_REQ, control);
    cr_assert_not_null (req);
    zstr_send (req, "STATISTICS");
    zmsg_t *reply = tu_recv (req, WAIT_MS);
    cr_assert_not_null (reply, "no STATISTICS reply");
    char *text = zmsg_popstr (reply);
    zmsg_destroy (&reply);
    zsock_destroy (&req);
    char key[64];
    snprintf (key, sizeof key, " %s=", name);
    char *at = strstr (text, key);
    long value = at ? strtol (at + strlen (key), NULL, 10) : -1;
    free (text);
    return value;
}

//  ---------------------------------------------------------------- crafted frames

Test (hostile, proxy_drops_huge_frame_headers_and_serves, .timeout = 90)
{
    tu_daemon_t proxy = {0};
    s_start (&proxy, "zkit-proxy",
             (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", NULL});
    char *frontend = tu_daemon_endpoint (&proxy, "frontend");
    char *backend = tu_daemon_endpoint (&proxy, "backend");
    s_huge_frames (proxy.proc.pid, frontend, "PUSH");
    s_truncated (frontend, "PUSH");
    s_pipeline_works (frontend, backend, "after the attack");
    cr_assert_eq (tu_wait (&proxy.proc, 0), -1, "the proxy died");
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&proxy);
}

Test (hostile, forwarder_drops_huge_frame_headers_and_serves, .timeout = 90)
{
    tu_daemon_t forwarder = {0};
    s_start (&forwarder, "zkit-forwarder",
             (const char *[]){"xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*", NULL});
    char *frontend = tu_daemon_endpoint (&forwarder, "frontend");
    char *backend = tu_daemon_endpoint (&forwarder, "backend");
    s_huge_frames (forwarder.proc.pid, frontend, "PUB");
    s_huge_frames (forwarder.proc.pid, backend, "SUB");
    s_truncated (frontend, "PUB");
    //  Still serving: a subscriber gets what a publisher sends once its
    //  subscription has reached the publisher.
    zsock_t *publisher = tu_connect (ZMQ_XPUB, frontend);
    zsock_t *subscriber = tu_connect (ZMQ_SUB, backend);
    zsock_set_subscribe (subscriber, "news");
    zmsg_t *subscription = tu_recv (publisher, WAIT_MS);
    cr_assert_not_null (subscription, "the subscription never reached the publisher");
    zmsg_destroy (&subscription);
    zstr_send (publisher, "news after the attack");
    char *got = zstr_recv (subscriber);
    cr_assert_str_eq (got, "news after the attack");
    free (got);
    zsock_destroy (&publisher);
    zsock_destroy (&subscriber);
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&forwarder);
}

Test (hostile, queue_drops_huge_frame_headers_and_serves, .timeout = 90)
{
    char *data = tu_tmpdir ();
    tu_daemon_t queue = {0};
    s_start (&queue, "zkit-queue",
             (const char *[]){"--data", data, "router@tcp://127.0.0.1:*", NULL});
    char *router = tu_daemon_endpoint (&queue, "router");
    s_huge_frames (queue.proc.pid, router, "DEALER");
    s_truncated (router, "DEALER");
    zsock_t *client = tq_connect (router);
    tq_put (client, "after", 1, "the attack");
    zsock_destroy (&client);
    free (router);
    tu_daemon_cleanup (&queue);
    tu_rmdir (data);
    free (data);
}

//  ---------------------------------------------------------------- envelope bombs

//  Envelope frames that announce far more than they hold: a header map
//  of 4 billion pairs, a 4 GiB content type, an unknown key holding an
//  array of 4 billion elements, and 100 nested arrays.
typedef struct {
    uint8_t bytes[128];
    size_t size;
} s_bomb_t;

static const s_bomb_t s_bombs[] = {
    {"\x82\xa2zk\x01\xa1h\xdf\xff\xff\xff\xff", 12},
    {"\x82\xa2zk\x01\xa2"
     "ct\xdb\xff\xff\xff\xff",
     13},
    {"\x82\xa2zk\x01\xa1x\xdd\xff\xff\xff\xff", 12},
    {"\x82\xa2zk\x01\xa1x"
     "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
     "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
     "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
     "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
     "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\xc0",
     108},
};
#define S_BOMBS (sizeof s_bombs / sizeof s_bombs[0])

Test (hostile, envelope_bombs_decode_to_errors_without_allocating, .timeout = 30)
{
    for (size_t i = 0; i < S_BOMBS; i++) {
        cr_assert (zk_envelope_is_envelope (s_bombs[i].bytes, s_bombs[i].size), "bomb %zu", i);
        zk_envelope_t *envelope = NULL;
        int rc = zk_envelope_decode (s_bombs[i].bytes, s_bombs[i].size, &envelope);
        cr_assert (rc == ZK_ETRUNC || rc == ZK_EDEPTH, "bomb %zu: %s", i, zk_strerror (rc));
        cr_assert_null (envelope);
    }
}

Test (hostile, worker_answers_envelope_bombs_with_error_replies, .timeout = 60)
{
    tu_daemon_t worker = {0};
    const char *args[] = {"--in", "rep@tcp://127.0.0.1:*", NULL};
    const char *command[] = {"cat", NULL};
    cr_assert_eq (tu_daemon_start_command (&worker, "zkit-worker", args, command, WAIT_MS), 0);
    char *input = tu_daemon_endpoint (&worker, "input");
    zsock_t *req = tu_connect (ZMQ_REQ, input);
    cr_assert_not_null (req);
    for (size_t i = 0; i < S_BOMBS; i++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addmem (msg, s_bombs[i].bytes, s_bombs[i].size);
        zmsg_addstr (msg, "body");
        zmsg_send (&msg, req);
        zmsg_t *reply = tu_recv (req, WAIT_MS);
        cr_assert_not_null (reply, "no reply to bomb %zu", i);
        zframe_t *first = zmsg_first (reply);
        zk_envelope_t *envelope = NULL;
        cr_assert_eq (zk_envelope_decode (zframe_data (first), zframe_size (first), &envelope), 0);
        cr_assert_str_eq (zk_envelope_header (envelope, "zk-status"), "error");
        const char *error = zk_envelope_header (envelope, "zk-error");
        cr_assert (error && strstr (error, "malformed envelope"), "bomb %zu: %s", i,
                   error ? error : "(none)");
        zk_envelope_destroy (&envelope);
        zmsg_destroy (&reply);
    }
    zstr_send (req, "still serving");
    char *reply = zstr_recv (req);
    cr_assert_str_eq (reply, "still serving");
    free (reply);
    zsock_destroy (&req);
    free (input);
    tu_daemon_cleanup (&worker);
}

Test (hostile, cat_prints_envelope_bombs_as_data_and_goes_on, .timeout = 60)
{
    tu_daemon_t cat = {0};
    char count[16];
    snprintf (count, sizeof count, "%zu", S_BOMBS + 1);
    s_start (&cat, "zkit-cat",
             (const char *[]){"pull@tcp://127.0.0.1:*", "-n", count, "--format", "json", NULL});
    char *endpoint = tu_daemon_endpoint (&cat, "socket");
    zsock_t *push = tu_connect (ZMQ_PUSH, endpoint);
    for (size_t i = 0; i < S_BOMBS; i++) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addmem (msg, s_bombs[i].bytes, s_bombs[i].size);
        zmsg_addstr (msg, "body");
        zmsg_send (&msg, push);
    }
    zstr_send (push, "plain message");
    cr_assert_eq (tu_wait (&cat.proc, WAIT_MS), 0);
    char *out = tu_stdout (&cat.proc);
    char *err = tu_stderr (&cat.proc);
    int lines = 0;
    for (const char *c = out; *c; c++)
        lines += *c == '\n';
    cr_assert_eq (lines, (int) S_BOMBS + 1, "%s", out);
    cr_assert_not_null (strstr (out, "plain message"), "%s", out);
    cr_assert_not_null (strstr (err, "does not decode"), "%s", err);
    free (out);
    free (err);
    zsock_destroy (&push);
    free (endpoint);
    tu_daemon_cleanup (&cat);
}

//  ---------------------------------------------------------------- topics

//  A subscriber with a 1,000-byte topic is dropped and counted, one with
//  a 1 MB topic loses its connection (libzmq never stores the topic),
//  neither reaches the publisher, and a short subscription still does.
Test (hostile, forwarder_drops_long_subscriptions, .timeout = 90)
{
    tu_daemon_t forwarder = {0};
    s_start (&forwarder, "zkit-forwarder",
             (const char *[]){"xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*", "--control",
                              "rep@tcp://127.0.0.1:*", NULL});
    char *frontend = tu_daemon_endpoint (&forwarder, "frontend");
    char *backend = tu_daemon_endpoint (&forwarder, "backend");
    char *control = tu_daemon_endpoint (&forwarder, "control");
    long before = s_rss_kb (forwarder.proc.pid);
    zsock_t *publisher = tu_connect (ZMQ_XPUB, frontend);
    zsock_set_xpub_verbose (publisher, 1);

    char *long_topic = malloc (1000 + 1);
    memset (long_topic, 'L', 1000);
    long_topic[1000] = 0;
    zsock_t *long_sub = tu_connect (ZMQ_SUB, backend);
    zsock_set_subscribe (long_sub, long_topic);
    //  The 1 MB one from a raw peer: a libzmq SUB socket would crash on
    //  closing (libzmq 4.3.4 frees its own topic trie recursively).
    size_t huge_size = 1000 * 1000;
    char *huge_topic = malloc (huge_size + 1);
    memset (huge_topic, 'H', huge_size + 1);
    huge_topic[0] = 1;
    int huge_fd = s_tcp_connect (s_port (backend));
    s_zmtp_handshake (huge_fd, "SUB");
    uint8_t header[9];
    s_frame_header (huge_size + 1, header);
    if (s_send_all (huge_fd, header, sizeof header))
        s_send_all (huge_fd, huge_topic, huge_size + 1);
    cr_assert (s_wait_closed (huge_fd, WAIT_MS),
               "a 1 MB subscription did not close the connection");
    close (huge_fd);

    int64_t deadline = zclock_mono () + WAIT_MS;
    long refused = 0;
    while (refused < 1 && zclock_mono () < deadline)
        refused = s_control_counter (control, "refused_topics");
    cr_assert_eq (refused, 1, "the 1,000-byte subscription was not counted");

    zsock_t *good_sub = tu_connect (ZMQ_SUB, backend);
    zsock_set_subscribe (good_sub, "ok");
    //  What reaches the publisher: the short subscription, nothing long.
    bool good_seen = false;
    while (!good_seen) {
        zmsg_t *msg = tu_recv (publisher, WAIT_MS);
        cr_assert_not_null (msg, "the short subscription never reached the publisher");
        zframe_t *frame = zmsg_first (msg);
        cr_assert_leq (zframe_size (frame), 1 + ZK_MAX_TOPIC_DEFAULT, "a %zu-byte subscription",
                       zframe_size (frame));
        good_seen = zframe_size (frame) == 3 && memcmp (zframe_data (frame), "\x01ok", 3) == 0;
        zmsg_destroy (&msg);
    }
    zstr_send (publisher, "ok after the attack");
    char *got = zstr_recv (good_sub);
    cr_assert_str_eq (got, "ok after the attack");
    free (got);
    long after = s_rss_kb (forwarder.proc.pid);
    cr_assert_lt (after, before + RSS_SLACK_KB, "RSS grew from %ld kB to %ld kB", before, after);
    cr_assert_eq (s_control_counter (control, "refused_topics"), 1);

    zsock_destroy (&long_sub);
    zsock_destroy (&good_sub);
    zsock_destroy (&publisher);
    free (long_topic);
    free (huge_topic);
    free (frontend);
    free (backend);
    free (control);
    tu_daemon_cleanup (&forwarder);
}

//  A message whose topic frame is 1 MB (under the 1 MiB max-size) passes.
Test (hostile, forwarder_passes_a_1mb_topic_message, .timeout = 60)
{
    tu_daemon_t forwarder = {0};
    s_start (&forwarder, "zkit-forwarder",
             (const char *[]){"xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*", NULL});
    char *frontend = tu_daemon_endpoint (&forwarder, "frontend");
    char *backend = tu_daemon_endpoint (&forwarder, "backend");
    zsock_t *publisher = tu_connect (ZMQ_XPUB, frontend);
    zsock_t *subscriber = tu_connect (ZMQ_SUB, backend);
    zsock_set_subscribe (subscriber, "big");
    zmsg_t *subscription = tu_recv (publisher, WAIT_MS);
    cr_assert_not_null (subscription, "the subscription never reached the publisher");
    zmsg_destroy (&subscription);
    size_t size = 1000 * 1000;
    char *topic = malloc (size);
    memset (topic, 't', size);
    memcpy (topic, "big", 3);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, topic, size);
    zmsg_addstr (msg, "payload");
    zmsg_send (&msg, publisher);
    msg = tu_recv (subscriber, WAIT_MS);
    cr_assert_not_null (msg, "the 1 MB topic message did not arrive");
    cr_assert_eq (zmsg_size (msg), 2);
    cr_assert_eq (zframe_size (zmsg_first (msg)), size);
    cr_assert_eq (memcmp (zframe_data (zmsg_first (msg)), topic, size), 0);
    zmsg_destroy (&msg);
    free (topic);
    zsock_destroy (&subscriber);
    zsock_destroy (&publisher);
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&forwarder);
}

Test (hostile, subscriber_topics_are_bounded_on_the_command_line, .timeout = 30)
{
    size_t size = ZK_MAX_TOPIC_MAX + 1;
    char *topic = malloc (size + 1);
    memset (topic, 'T', size);
    topic[size] = 0;
    char *err = NULL;
    int rc = tu_run_bin ("zkit-cat", (const char *[]){"sub>tcp://127.0.0.1:1", "-s", topic, NULL},
                         NULL, &err, WAIT_MS);
    cr_assert_eq (rc, 2, "%s", err);
    cr_assert_not_null (strstr (err, "-s: a topic longer than 65536 bytes"), "%s", err);
    free (err);
    rc = tu_run_bin (
        "zkit-worker",
        (const char *[]){"--in", "sub>tcp://127.0.0.1:1", "--subscribe", topic, "--", "cat", NULL},
        NULL, &err, WAIT_MS);
    cr_assert_eq (rc, 2, "%s", err);
    cr_assert_not_null (strstr (err, "--subscribe: a topic longer than 65536 bytes"), "%s", err);
    free (err);
    free (topic);
}

//  ---------------------------------------------------------------- half-open connections

//  Room for HALF_OPEN connections here and in the daemon (it inherits the
//  limit), bounded.
static void
s_raise_fd_limit (void)
{
    struct rlimit limit;
    cr_assert_eq (getrlimit (RLIMIT_NOFILE, &limit), 0);
    rlim_t want = 4 * HALF_OPEN;
    if (limit.rlim_cur < want) {
        limit.rlim_cur = limit.rlim_max < want ? limit.rlim_max : want;
        cr_assert_eq (setrlimit (RLIMIT_NOFILE, &limit), 0);
    }
    cr_assert_geq (limit.rlim_cur, 2 * HALF_OPEN + 64, "RLIMIT_NOFILE too low for this test");
}

/*  HALF_OPEN connections that never say a word: the daemon accepts them
    (its fds go up), a normal client still gets through (works), and the
    handshake timeout (2 s here) closes them all: the fds go back down
    within the timeout and a generous slack.                            */
static void
s_half_open (pid_t pid, const char *endpoint, void (*works) (void *arg), void *arg)
{
    int baseline = s_fd_count (pid);
    cr_assert_gt (baseline, 0);
    int port = s_port (endpoint);
    int *fds = malloc (HALF_OPEN * sizeof *fds);
    for (int i = 0; i < HALF_OPEN; i++) {
        fds[i] = s_tcp_start (port);
        cr_assert_geq (fds[i], 0, "socket %d: %s", i, strerror (errno));
    }
    int64_t deadline = zclock_mono () + 30000;
    for (int i = 0; i < HALF_OPEN; i++)
        cr_assert (s_wait_fd (fds[i], POLLOUT, deadline), "connection %d did not complete", i);
    //  The daemon held most of them at once (some may be reaped already).
    int peak = baseline;
    while (peak < baseline + HALF_OPEN / 2 && zclock_mono () < deadline) {
        int now = s_fd_count (pid);
        peak = now > peak ? now : peak;
        poll (NULL, 0, 5);  //  poll /proc again until the deadline
    }
    cr_assert_geq (peak, baseline + HALF_OPEN / 2, "the daemon never held the connections");
    works (arg);
    //  Reaped by the handshake timeout: back to the baseline (a few of the
    //  client's own connections may linger).
    deadline = zclock_mono () + 20000;
    int now = s_fd_count (pid);
    while (now > baseline + 8 && zclock_mono () < deadline) {
        poll (NULL, 0, 20);  //  poll /proc again until the deadline
        now = s_fd_count (pid);
    }
    cr_assert_leq (now, baseline + 8, "%d fds left (baseline %d)", now, baseline);
    for (int i = 0; i < HALF_OPEN; i++)
        close (fds[i]);
    free (fds);
}

typedef struct {
    const char *frontend, *backend;
} s_pair_t;

static void
s_proxy_works (void *arg)
{
    s_pair_t *pair = arg;
    s_pipeline_works (pair->frontend, pair->backend, "through the crowd");
}

Test (hostile, proxy_reaps_half_open_connections, .timeout = 120)
{
    s_raise_fd_limit ();
    tu_daemon_t proxy = {0};
    s_start (&proxy, "zkit-proxy",
             (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*",
                              "--handshake-timeout", "2", NULL});
    char *frontend = tu_daemon_endpoint (&proxy, "frontend");
    char *backend = tu_daemon_endpoint (&proxy, "backend");
    s_pair_t pair = {frontend, backend};
    s_half_open (proxy.proc.pid, frontend, s_proxy_works, &pair);
    s_pipeline_works (frontend, backend, "after the crowd");
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&proxy);
}

static void
s_queue_works (void *arg)
{
    zsock_t *client = tq_connect (arg);
    static unsigned number;
    tq_put (client, "crowd", ++number, "through the crowd");
    zsock_destroy (&client);
}

Test (hostile, queue_reaps_half_open_connections, .timeout = 120)
{
    s_raise_fd_limit ();
    char *data = tu_tmpdir ();
    tu_daemon_t queue = {0};
    s_start (&queue, "zkit-queue",
             (const char *[]){"--data", data, "--handshake-timeout", "2",
                              "router@tcp://127.0.0.1:*", NULL});
    char *router = tu_daemon_endpoint (&queue, "router");
    s_half_open (queue.proc.pid, router, s_queue_works, router);
    s_queue_works (router);
    free (router);
    tu_daemon_cleanup (&queue);
    tu_rmdir (data);
    free (data);
}

//  ---------------------------------------------------------------- garbage on ZKQ/1

//  Send frames as one message (count frames of the given sizes, bytes
//  from data, cycled).
static void
s_send_frames (zsock_t *sock, int count, const void *const *data, const size_t *sizes)
{
    void *handle = zsock_resolve (sock);
    for (int i = 0; i < count; i++)
        cr_assert_geq (zmq_send (handle, data[i], sizes[i], i + 1 < count ? ZMQ_SNDMORE : 0), 0);
}

Test (hostile, queue_answers_garbage_and_serves, .timeout = 90)
{
    char *data = tu_tmpdir ();
    tu_daemon_t queue = {0};
    s_start (&queue, "zkit-queue",
             (const char *[]){"--data", data, "router@tcp://127.0.0.1:*", NULL});
    char *router = tu_daemon_endpoint (&queue, "router");
    zsock_t *client = tq_connect (router);

    //  Wrong signatures, unknown commands, bad arguments: ERR with the TAG.
    const void *frames[8];
    size_t sizes[8];
    frames[0] = "ZKQ2", frames[1] = "PUT", frames[2] = "sig";
    sizes[0] = 4, sizes[1] = 3, sizes[2] = 3;
    s_send_frames (client, 3, frames, sizes);
    tq_expect_err (client, "sig", "400");
    tq_send (client, "FROB", "unknown", "a", NULL);
    tq_expect_err (client, "unknown", "400");
    tq_send (client, "GET", "window", "q", "lots", NULL);
    tq_expect_err (client, "window", "400");
    tq_send (client, "PUT", "msgid", "q", "short", "body", NULL);
    tq_expect_err (client, "msgid", "400");
    tq_send (client, "ACK", "name", "../etc", "0123456789abcdef", NULL);
    tq_expect_err (client, "name", "400");
    tq_send (client, "NACK", "mode", "q", "0123456789abcdef", "explode", NULL);
    tq_expect_err (client, "mode", "400");

    //  A huge frame count: 100,000 frames in one PUT: 413, read and dropped.
    void *handle = zsock_resolve (client);
    zmq_send (handle, "ZKQ1", 4, ZMQ_SNDMORE);
    zmq_send (handle, "PUT", 3, ZMQ_SNDMORE);
    zmq_send (handle, "many", 4, ZMQ_SNDMORE);
    zmq_send (handle, "q", 1, ZMQ_SNDMORE);
    zmq_send (handle, "0123456789abcdef", 16, ZMQ_SNDMORE);
    for (int i = 0; i < 100000; i++)
        zmq_send (handle, "f", 1, i + 1 < 100000 ? ZMQ_SNDMORE : 0);
    tq_expect_err (client, "many", "413");

    //  Random messages: each answered once (ERR, empty TAG or its own),
    //  never a crash. The random generator is seeded: reproducible.
    unsigned seed = 6;
    for (int round = 0; round < 200; round++) {
        int count = 1 + (int) (rand_r (&seed) % 8);
        uint8_t bytes[8][80];
        for (int i = 0; i < count; i++) {
            sizes[i] = (size_t) (rand_r (&seed) % 80);
            for (size_t b = 0; b < sizes[i]; b++)
                bytes[i][b] = (uint8_t) rand_r (&seed);
            frames[i] = bytes[i];
        }
        if (round % 2 == 0) {  //  half of them with a valid signature
            frames[0] = "ZKQ1";
            sizes[0] = 4;
        }
        s_send_frames (client, count, frames, sizes);
    }
    int answered = 0;
    for (zmsg_t *reply = tu_recv (client, WAIT_MS); reply;
         reply = answered < 200 ? tu_recv (client, WAIT_MS) : NULL) {
        cr_assert (tq_frame_eq (reply, 0, "ZKQ1"));
        cr_assert (tq_frame_eq (reply, 1, "ERR"), "a random request was accepted");
        answered++;
        zmsg_destroy (&reply);
    }
    cr_assert_eq (answered, 200);

    //  Still serving, this client and a fresh one.
    tq_put (client, "after", 1, "the garbage");
    zsock_t *other = tq_connect (router);
    tq_put (other, "after", 2, "the garbage");
    zsock_destroy (&other);
    zsock_destroy (&client);
    free (router);
    tu_daemon_cleanup (&queue);
    tu_rmdir (data);
    free (data);
}

//  ---------------------------------------------------------------- the limit flags

//  Each bad limit is a usage error: exit 2, one line naming the program.
Test (hostile, limit_flags_are_validated, .timeout = 60)
{
    static const struct {
        const char *program;
        const char *args[8];
        const char *expected;
    } cases[] = {
        {"zkit-proxy",
         {"--max-size", "0", "pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*"},
         "--max-size: '0' is not a valid BYTES (1 to 1e+15, or 'unlimited')"},
        {"zkit-proxy",
         {"--hwm", "0", "pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*"},
         "--hwm: '0' is not a valid N"},
        {"zkit-proxy",
         {"--handshake-timeout", "0", "pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*"},
         "--handshake-timeout: '0' is not a valid SECONDS"},
        {"zkit-proxy",
         {"--ready-file", "/nonexistent-zkit-dir/ready", "pull@tcp://127.0.0.1:*",
          "push@tcp://127.0.0.1:*"},
         "--ready-file: directory '/nonexistent-zkit-dir' does not exist"},
        {"zkit-forwarder",
         {"--max-topic", "0", "xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*"},
         "--max-topic: '0' is not a valid BYTES (1 to 65536)"},
        {"zkit-forwarder",
         {"--max-topic", "65537", "xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*"},
         "--max-topic: '65537' is not a valid BYTES (1 to 65536)"},
        {"zkit-worker",
         {"--in", "pull@tcp://127.0.0.1:*", "--max-size", "0", "--", "cat"},
         "--max-size: '0' is not a valid BYTES"},
        {"zkit-worker",
         {"--in", "pull@tcp://127.0.0.1:*", "--hwm", "0", "--", "cat"},
         "--hwm: '0' is not a valid N"},
        {"zkit-worker",
         {"--in", "pull@tcp://127.0.0.1:*", "--", "zk-no-such-command-here"},
         "command 'zk-no-such-command-here' not found"},
        {"zkit-queue",
         {"--data", "/tmp", "--hwm", "0", "router@tcp://127.0.0.1:*"},
         "--hwm: '0' is not a valid N"},
        {"zkit-queue",
         {"--data", "/tmp", "--handshake-timeout", "7200", "router@tcp://127.0.0.1:*"},
         "--handshake-timeout: '7200' is not a valid SECONDS (0.001 to 3600)"},
        {"zkit-cat", {"push>tcp://127.0.0.1:1", "--hwm", "0"}, "--hwm: '0' is not a valid N"},
        {"zkit-cat",
         {"pull@tcp://127.0.0.1:*", "--max-size", "0"},
         "--max-size: '0' is not a valid BYTES"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = tu_run_bin (cases[i].program, cases[i].args, &out, &err, WAIT_MS);
        cr_assert_eq (rc, 2, "case %zu: exit %d: %s", i, rc, err);
        char prefix[64];
        snprintf (prefix, sizeof prefix, "%s: ", cases[i].program);
        cr_assert_eq (strncmp (err, prefix, strlen (prefix)), 0, "case %zu: %s", i, err);
        cr_assert_not_null (strstr (err, cases[i].expected), "case %zu: %s", i, err);
        const char *newline = strchr (err, '\n');
        cr_assert (newline && newline[1] == 0, "case %zu: not one line: %s", i, err);
        free (out);
        free (err);
    }
}

//  Push one message of size bytes through the device; true when it came out.
static bool
s_passes (zsock_t *push, zsock_t *pull, size_t size)
{
    char *body = malloc (size);
    memset (body, 'b', size);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, body, size);
    zmsg_send (&msg, push);
    free (body);
    //  A marker behind it: once the marker is out, the message is out or refused.
    zstr_send (push, "marker");
    bool passed = false;
    for (int i = 0; i < 2; i++) {
        msg = tu_recv (pull, WAIT_MS);
        cr_assert_not_null (msg, "the marker did not come out");
        size_t got = zframe_size (zmsg_first (msg));
        bool marker = got == 6 && memcmp (zframe_data (zmsg_first (msg)), "marker", 6) == 0;
        zmsg_destroy (&msg);
        if (marker)
            break;
        cr_assert_eq (got, size);
        passed = true;
    }
    return passed;
}

Test (hostile, devices_refuse_over_1mib_by_default_and_unlimited_lifts_it, .timeout = 60)
{
    tu_daemon_t proxy = {0};
    s_start (&proxy, "zkit-proxy",
             (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", "--control",
                              "rep@tcp://127.0.0.1:*", NULL});
    char *frontend = tu_daemon_endpoint (&proxy, "frontend");
    char *backend = tu_daemon_endpoint (&proxy, "backend");
    char *control = tu_daemon_endpoint (&proxy, "control");
    zsock_t *push = tu_connect (ZMQ_PUSH, frontend);
    zsock_t *pull = tu_connect (ZMQ_PULL, backend);
    cr_assert (s_passes (push, pull, ZK_MAX_SIZE_DEFAULT), "1 MiB exactly was refused");
    cr_assert (!s_passes (push, pull, ZK_MAX_SIZE_DEFAULT + 1), "1 MiB + 1 passed");
    cr_assert_eq (s_control_counter (control, "refused"), 1);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    free (frontend);
    free (backend);
    free (control);
    tu_daemon_cleanup (&proxy);

    s_start (&proxy, "zkit-proxy",
             (const char *[]){"pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*", "--max-size",
                              "unlimited", NULL});
    frontend = tu_daemon_endpoint (&proxy, "frontend");
    backend = tu_daemon_endpoint (&proxy, "backend");
    push = tu_connect (ZMQ_PUSH, frontend);
    pull = tu_connect (ZMQ_PULL, backend);
    cr_assert (s_passes (push, pull, (size_t) 3 << 20), "3 MiB refused with --max-size unlimited");
    zsock_destroy (&push);
    zsock_destroy (&pull);
    free (frontend);
    free (backend);
    tu_daemon_cleanup (&proxy);
}

Test (hostile, library_configs_are_checked, .timeout = 30)
{
    char reason[256];
    zk_forwarder_config_t forwarder = {.frontend = "xsub@tcp://127.0.0.1:*",
                                       .backend = "xpub@tcp://127.0.0.1:*",
                                       .max_topic = ZK_MAX_TOPIC_MAX + 1};
    cr_assert_eq (zk_forwarder_validate (&forwarder, reason, sizeof reason), ZK_EINVAL);
    cr_assert_not_null (strstr (reason, "max-topic"), "%s", reason);
    forwarder.max_topic = 0;
    forwarder.hwm = -1;
    cr_assert_eq (zk_forwarder_validate (&forwarder, reason, sizeof reason), ZK_EINVAL);
    forwarder.hwm = 0;
    forwarder.handshake_ms = -1;
    cr_assert_eq (zk_forwarder_validate (&forwarder, reason, sizeof reason), ZK_EINVAL);
    forwarder.handshake_ms = 0;
    cr_assert_eq (zk_forwarder_validate (&forwarder, reason, sizeof reason), 0, "%s", reason);
    zk_proxy_config_t proxy = {.frontend = "pull@tcp://127.0.0.1:*",
                               .backend = "push@tcp://127.0.0.1:*",
                               .handshake_ms = -5};
    cr_assert_eq (zk_proxy_validate (&proxy, reason, sizeof reason), ZK_EINVAL);
}
