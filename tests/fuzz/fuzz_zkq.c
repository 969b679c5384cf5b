/*  Fuzz target: the queue protocol ZKQ/1 (docs/protocol.md section 7) as
    a zkit-queue server takes it. The request decoder (s_handle_request
    in src/zk_qserve.c) is static and needs the server's state, so the
    input goes where a client's bytes go: to a real zk_queue actor in
    this process, over inproc, from a DEALER. That reaches the decoder,
    every command handler, the store and the replies.

    Input framing: a sequence of frames, each a length byte L and then
      L < 0xfe  L bytes;
      L = 0xfe  two more bytes (little-endian) give the length;
      L = 0xff  no frame: the message ends, the next begins.
    A length past the end takes what is left. At most 16 messages of at
    most 200 frames. The seed corpus (tests/fuzz/corpus/zkq/) shows it:
    "\x04ZKQ1\x04PING\x01t" is one PING.

    After the messages the harness sends a PING of its own and reads
    until its reply. Invariants: the server answers within 10 s, and it
    answers every request exactly once (an OK or ERR per message sent,
    deliveries aside) before that PING's reply (7.4: replies keep the
    order of requests). The server is restarted on a fresh data
    directory every 2000 inputs, to bound the disk it uses.             */

#include "../../include/zkit.h"
#include "fuzz.h"

#include <ftw.h>
#include <unistd.h>

#define S_MAX_MESSAGES  16
#define S_MAX_FRAMES    200
#define S_RESTART_EVERY 2000
#define S_SYNC_WAIT_MS  10000

static zk_queue_t *s_server;
static zsock_t *s_client;
static char *s_data_dir;
static unsigned s_inputs;
static uint64_t s_sync_count;

static int
s_remove_entry (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void) info;
    (void) flag;
    (void) ftw;
    return remove (path);
}

static void
s_stop (void)
{
    zsock_destroy (&s_client);
    zk_queue_destroy (&s_server);
    if (s_data_dir) {
        nftw (s_data_dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        zstr_free (&s_data_dir);
    }
}

static void
s_start (void)
{
    static unsigned instance;
    const char *tmp = access ("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv ("TMPDIR");
    s_data_dir = zsys_sprintf ("%s/zk-fuzz-zkq-XXXXXX", tmp ? tmp : "/tmp");
    ZK_FUZZ_CHECK (s_data_dir && mkdtemp (s_data_dir));
    char *endpoint = zsys_sprintf ("inproc://zk-fuzz-zkq-%d-%u", (int) getpid (), instance++);
    char *spec = zsys_sprintf ("router@%s", endpoint);
    const char *specs[] = {spec, NULL};
    zk_queue_config_t config;
    zk_queue_config_init (&config);
    config.data_dir = s_data_dir;
    config.specs = specs;
    config.fsync = ZK_QUEUE_FSYNC_NEVER;  //  the disk is not under test here
    config.max_size = 4096;               //  so 413 is reachable
    config.max_queues = 16;
    config.max_done = 1000;
    config.segment_size = 1 << 20;
    config.max_deliver = 3;
    config.linger_ms = 0;
    s_server = zk_queue_new (&config);
    ZK_FUZZ_CHECK (s_server);
    s_client = zsock_new (ZMQ_DEALER);
    ZK_FUZZ_CHECK (s_client);
    zsock_set_linger (s_client, 0);
    ZK_FUZZ_CHECK (zsock_connect (s_client, "%s", endpoint) == 0);
    zstr_free (&spec);
    zstr_free (&endpoint);
}

void
zk_fuzz_zkq_cleanup (void)
{
    s_stop ();
}

//  Split data into messages (see the framing above). Returns the count.
static int
s_parse (const uint8_t *data, size_t size, zmsg_t **messages)
{
    int count = 0;
    zmsg_t *msg = NULL;
    size_t at = 0;
    while (at < size && count < S_MAX_MESSAGES) {
        uint8_t length_byte = data[at++];
        if (length_byte == 0xff) {
            if (msg && zmsg_size (msg))
                messages[count++] = msg;
            else
                zmsg_destroy (&msg);
            msg = NULL;
            continue;
        }
        size_t length = length_byte;
        if (length_byte == 0xfe) {
            length = at + 2 <= size ? (size_t) (data[at] | data[at + 1] << 8) : 0;
            at = at + 2 <= size ? at + 2 : size;
        }
        if (length > size - at)
            length = size - at;
        if (!msg)
            msg = zmsg_new ();
        if (zmsg_size (msg) < S_MAX_FRAMES)
            zmsg_addmem (msg, data + at, length);
        at += length;
    }
    if (msg && zmsg_size (msg) && count < S_MAX_MESSAGES)
        messages[count++] = msg;
    else
        zmsg_destroy (&msg);
    return count;
}

//  Read until the reply to our own PING; count the replies before it.
static void
s_sync (int sent)
{
    char tag[32];
    snprintf (tag, sizeof tag, "fuzz-sync-%" PRIu64, ++s_sync_count);
    zmsg_t *ping = zmsg_new ();
    zmsg_addstr (ping, "ZKQ1");
    zmsg_addstr (ping, "PING");
    zmsg_addstr (ping, tag);
    ZK_FUZZ_CHECK (zmsg_send (&ping, s_client) == 0);

    int replies = 0;
    int64_t deadline = zclock_mono () + S_SYNC_WAIT_MS;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0) {
            fprintf (stderr, "fuzz_zkq: no reply to PING within %d ms\n", S_SYNC_WAIT_MS);
            abort ();
        }
        zmq_pollitem_t item = {zsock_resolve (s_client), 0, ZMQ_POLLIN, 0};
        if (zmq_poll (&item, 1, left) <= 0)
            continue;
        zmsg_t *reply = zmsg_recv (s_client);
        if (!reply)
            continue;
        ZK_FUZZ_CHECK (zmsg_size (reply) >= 3);
        zframe_t *signature = zmsg_first (reply);
        zframe_t *status = zmsg_next (reply);
        zframe_t *reply_tag = zmsg_next (reply);
        ZK_FUZZ_CHECK (zframe_streq (signature, "ZKQ1"));
        bool delivery = zframe_streq (status, "MSG");
        ZK_FUZZ_CHECK (delivery || zframe_streq (status, "OK") || zframe_streq (status, "ERR"));
        bool ours = !delivery && zframe_streq (reply_tag, tag);
        if (!delivery && !ours)
            replies++;
        zmsg_destroy (&reply);
        if (ours)
            break;
    }
    if (replies != sent)
        fprintf (stderr, "fuzz_zkq: %d requests sent, %d answered\n", sent, replies);
    ZK_FUZZ_CHECK (replies == sent);
}

int
zk_fuzz_zkq (const uint8_t *data, size_t size)
{
    if (s_server && s_inputs >= S_RESTART_EVERY) {
        s_stop ();
        s_inputs = 0;
    }
    if (!s_server)
        s_start ();
    s_inputs++;
    zmsg_t *messages[S_MAX_MESSAGES];
    int count = s_parse (data, size, messages);
    for (int index = 0; index < count; index++)
        ZK_FUZZ_CHECK (zmsg_send (&messages[index], s_client) == 0);
    s_sync (count);
    return 0;
}

//  czmq's exit handler (zsys_shutdown) must run after ours, which stops
//  the server: handlers run in reverse order of registration.
ZK_FUZZ_TARGET (zk_fuzz_zkq, zsys_init (); atexit (zk_fuzz_zkq_cleanup))
