/*  zk_caller — the reliable request-response client against in-test peers
    (a ROUTER in an actor that answers, drops, delays or misbehaves as
    told): matching by REQID, stale replies, retries, failover, IMMEDIATE,
    zk-retry, error replies, the bound on a call that fails, hostile
    replies, bad specs, the async form.                                   */

#include "testutil.h"

TestSuite (zk_caller, .timeout = 60);

//  ===========================================================================
//  The peer: a ROUTER bound to an ephemeral port, in an actor. Its mode
//  says what it does with request N (counted from 1):
//    echo         reply with the request's envelope and "re:" + its last frame
//    silent       never reply
//    drop-first   drop request 1, echo the rest
//    late-first   hold request 1; at request 2, echo 1 (late) then 2
//    stale-first  before each echo, a reply with another REQID
//    retry-first  answer request 1 with a zk-retry=1 error reply, echo the rest
//    retry-always answer every request with a zk-retry=1 error reply
//    error        answer with a final error reply ("exit status 3", "partial")
//    hostile      before each echo, five malformed replies
//    wide         before each echo, a reply of 4 frames of 40,000 bytes
//    interrupt    set zsys_interrupted (as SIGINT would), never reply
//    rep          a REP socket, not a ROUTER: answers "re:" + the last frame
//  Pipe: "COUNT" → the number of requests so far; "LAST" → the last request.

typedef struct {
    const char *mode;
    zsock_t *router;
    int received;
    zmsg_t *held;  //  late-first: request 1
    zmsg_t *last;  //  a copy of the last request
} peer_t;

//  Frame index of msg (0 first), or NULL.
static zframe_t *
s_frame (zmsg_t *msg, size_t index)
{
    zframe_t *frame = zmsg_first (msg);
    while (frame && index--)
        frame = zmsg_next (msg);
    return frame;
}

//  A reply to request: its identity, REQID and delimiter, then frames
//  (taken).
static void
s_peer_send (peer_t *self, zmsg_t *request, zmsg_t *frames)
{
    zmsg_t *reply = zmsg_new ();
    zframe_t *frame = zmsg_first (request);
    for (int index = 0; index < 3 && frame; index++, frame = zmsg_next (request))
        zmsg_append (reply, &(zframe_t *){zframe_dup (frame)});
    while (zmsg_size (frames)) {
        zframe_t *next = zmsg_pop (frames);
        zmsg_append (reply, &next);
    }
    zmsg_destroy (&frames);
    zmsg_send (&reply, self->router);
}

//  The request's envelope frame (as received) and "re:" + its last frame.
static void
s_peer_echo (peer_t *self, zmsg_t *request)
{
    zmsg_t *frames = zmsg_new ();
    zframe_t *envelope = zmsg_size (request) > 4 ? zframe_dup (s_frame (request, 3)) : NULL;
    if (envelope)
        zmsg_append (frames, &envelope);
    zframe_t *last = zmsg_last (request);
    zmsg_addstrf (frames, "re:%.*s", (int) zframe_size (last), (char *) zframe_data (last));
    s_peer_send (self, request, frames);
}

static void
s_peer_error (peer_t *self, zmsg_t *request, const char *reason, bool retry)
{
    zk_envelope_t *envelope = zk_envelope_new ();
    zk_envelope_set_header (envelope, "zk-status", "error");
    zk_envelope_set_header (envelope, "zk-error", reason);
    if (retry)
        zk_envelope_set_header (envelope, "zk-retry", "1");
    zmsg_t *frames = zmsg_new ();
    zmsg_addstr (frames, retry ? "" : "partial");
    zk_envelope_attach (envelope, frames);
    zk_envelope_destroy (&envelope);
    s_peer_send (self, request, frames);
}

//  Send the frames (NULL-terminated strings; "" is an empty frame) to the
//  peer that sent request, with no REQID or delimiter added.
static void
s_peer_raw (peer_t *self, zmsg_t *request, zmsg_t *frames)
{
    zmsg_pushmem (frames, zframe_data (zmsg_first (request)), zframe_size (zmsg_first (request)));
    zmsg_send (&frames, self->router);
}

static void
s_peer_hostile (peer_t *self, zmsg_t *request)
{
    zframe_t *reqid = s_frame (request, 1);
    //  1. one frame: no delimiter at all
    zmsg_t *frames = zmsg_new ();
    zmsg_addstr (frames, "garbage");
    s_peer_raw (self, request, frames);
    //  2. a 0-byte REQID
    frames = zmsg_new ();
    zmsg_addmem (frames, NULL, 0);
    zmsg_addmem (frames, NULL, 0);
    zmsg_addstr (frames, "x");
    s_peer_raw (self, request, frames);
    //  3. a 17-byte REQID (the right one and a byte more)
    frames = zmsg_new ();
    uint8_t long_id[17] = {0};
    memcpy (long_id, zframe_data (reqid), 16);
    zmsg_addmem (frames, long_id, sizeof long_id);
    zmsg_addmem (frames, NULL, 0);
    zmsg_addstr (frames, "x");
    s_peer_raw (self, request, frames);
    //  4. the right REQID, an envelope that does not decode
    frames = zmsg_new ();
    zmsg_addmem (frames, zframe_data (reqid), zframe_size (reqid));
    zmsg_addmem (frames, NULL, 0);
    const uint8_t garbage[] = {0x81, 0xa2, 0x7a, 0x6b, 0x01, 0xff, 0xff, 0xff};
    zmsg_addmem (frames, garbage, sizeof garbage);
    zmsg_addstr (frames, "x");
    s_peer_raw (self, request, frames);
    //  5. the right REQID and 10,000 frames
    frames = zmsg_new ();
    zmsg_addmem (frames, zframe_data (reqid), zframe_size (reqid));
    zmsg_addmem (frames, NULL, 0);
    for (int index = 0; index < 10000; index++)
        zmsg_addstr (frames, "f");
    s_peer_raw (self, request, frames);
}

static void
s_peer_handle (peer_t *self, zmsg_t *request)
{
    const char *mode = self->mode;
    int number = ++self->received;
    zmsg_destroy (&self->last);
    self->last = zmsg_dup (request);
    if (streq (mode, "rep")) {
        zframe_t *last = zmsg_last (request);
        zstr_sendf (self->router, "re:%.*s", (int) zframe_size (last), (char *) zframe_data (last));
        return;
    }
    if (zmsg_size (request) < 3)
        return;
    if (streq (mode, "echo"))
        s_peer_echo (self, request);
    else if (streq (mode, "drop-first")) {
        if (number > 1)
            s_peer_echo (self, request);
    }
    else if (streq (mode, "late-first")) {
        if (number == 1) {
            self->held = zmsg_dup (request);
            return;
        }
        if (self->held)
            s_peer_echo (self, self->held);
        zmsg_destroy (&self->held);
        s_peer_echo (self, request);
    }
    else if (streq (mode, "stale-first")) {
        zmsg_t *other = zmsg_dup (request);
        zframe_t *reqid = s_frame (other, 1);
        zframe_data (reqid)[15] ^= 0xff;
        s_peer_echo (self, other);
        zmsg_destroy (&other);
        s_peer_echo (self, request);
    }
    else if (streq (mode, "retry-first")) {
        if (number == 1)
            s_peer_error (self, request, "worker lost", true);
        else
            s_peer_echo (self, request);
    }
    else if (streq (mode, "retry-always"))
        s_peer_error (self, request, "worker lost", true);
    else if (streq (mode, "error"))
        s_peer_error (self, request, "exit status 3", false);
    else if (streq (mode, "wide")) {
        zmsg_t *frames = zmsg_new ();
        char *chunk = calloc (1, 40000);
        for (int index = 0; index < 4; index++)
            zmsg_addmem (frames, chunk, 40000);
        free (chunk);
        s_peer_send (self, request, frames);
        s_peer_echo (self, request);
    }
    else if (streq (mode, "interrupt"))
        zsys_interrupted = 1;
    else if (streq (mode, "hostile")) {
        s_peer_hostile (self, request);
        s_peer_echo (self, request);
    }
    //  silent: nothing
}

static void
s_peer (zsock_t *pipe, void *args)
{
    peer_t self = {.mode = (const char *) args};
    char endpoint[256];
    self.router = tu_bind_ephemeral (streq (self.mode, "rep") ? ZMQ_REP : ZMQ_ROUTER, endpoint,
                                     sizeof endpoint);
    zsock_signal (pipe, self.router ? 0 : 1);
    zstr_send (pipe, self.router ? endpoint : "");
    zpoller_t *poller = zpoller_new (pipe, self.router, NULL);
    //  Bounded: the test's timeout ends the process; $TERM ends the loop.
    while (self.router) {
        void *which = zpoller_wait (poller, 1000);
        if (which == pipe) {
            char *command = zstr_recv (pipe);
            bool stop = !command || streq (command, "$TERM");
            if (command && streq (command, "COUNT"))
                zstr_sendf (pipe, "%d", self.received);
            if (command && streq (command, "LAST")) {
                zmsg_t *copy = self.last ? zmsg_dup (self.last) : zmsg_new ();
                zmsg_send (&copy, pipe);
            }
            zstr_free (&command);
            if (stop)
                break;
        }
        else if (which == self.router) {
            zmsg_t *request = zmsg_recv (self.router);
            if (request)
                s_peer_handle (&self, request);
            zmsg_destroy (&request);
        }
    }
    zpoller_destroy (&poller);
    zmsg_destroy (&self.held);
    zmsg_destroy (&self.last);
    zsock_destroy (&self.router);
}

//  Start a peer in mode; its endpoint into endpoint.
static zactor_t *
s_peer_start (const char *mode, char *endpoint, size_t size)
{
    zactor_t *peer = zactor_new (s_peer, (void *) mode);
    cr_assert_not_null (peer);
    char *text = zstr_recv (peer);
    cr_assert (text && *text, "the peer could not bind");
    snprintf (endpoint, size, "%s", text);
    zstr_free (&text);
    return peer;
}

static int
s_peer_count (zactor_t *peer)
{
    zstr_send (peer, "COUNT");
    char *text = zstr_recv (peer);
    int count = text ? atoi (text) : -1;
    zstr_free (&text);
    return count;
}

//  Wait until the peer has received count requests (deadline 10 s).
static void
s_peer_wait_count (zactor_t *peer, int count)
{
    int64_t deadline = zclock_mono () + 10000;
    while (s_peer_count (peer) < count && zclock_mono () < deadline)
        zmq_poll (NULL, 0, 10);  //  poll the count until the deadline
    cr_assert_eq (s_peer_count (peer), count);
}

//  Wait until the caller's endpoint index is connected: its DEALER (with
//  ZMQ_IMMEDIATE) can take a message only then.
static void
s_wait_connected (zk_caller_t *caller, size_t index)
{
    zmq_pollitem_t items[ZK_SPEC_MAX_ENDPOINTS];
    zk_caller_pollitems (caller, items, ZK_SPEC_MAX_ENDPOINTS);
    zmq_pollitem_t item = {items[index].socket, 0, ZMQ_POLLOUT, 0};
    cr_assert_eq (zmq_poll (&item, 1, 10000), 1, "endpoint %zu never connected", index);
}

static zmsg_t *
s_request (const char *body)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, body);
    return msg;
}

//  The reply's envelope (first frame), decoded; fails the test if none.
static zk_envelope_t *
s_reply_envelope (zmsg_t *reply)
{
    zframe_t *frame = zmsg_first (reply);
    cr_assert_not_null (frame);
    zk_envelope_t *envelope = NULL;
    cr_assert_eq (zk_envelope_decode (zframe_data (frame), zframe_size (frame), &envelope), 0);
    return envelope;
}

static void
s_assert_last_frame (zmsg_t *reply, const char *text)
{
    zframe_t *last = zmsg_last (reply);
    cr_assert_not_null (last);
    cr_assert (zframe_streq (last, text), "reply ends with '%.*s', not '%s'",
               (int) zframe_size (last), (char *) zframe_data (last), text);
}

//  ===========================================================================
//  The rig: one or two peers, a caller over them (every endpoint connected).

typedef struct {
    zactor_t *peers[2];
    char endpoints[2][256];
    char *spec;
    zk_caller_t *caller;
} rig_t;

//  Peer A in mode_a (and B in mode_b unless NULL); a caller over
//  "TYPE>A[,B]" with config.
static void
s_rig_start (rig_t *rig, const char *type, const char *mode_a, const char *mode_b,
             zk_caller_config_t config)
{
    memset (rig, 0, sizeof *rig);
    rig->peers[0] = s_peer_start (mode_a, rig->endpoints[0], sizeof rig->endpoints[0]);
    if (mode_b)
        rig->peers[1] = s_peer_start (mode_b, rig->endpoints[1], sizeof rig->endpoints[1]);
    rig->spec =
        zsys_sprintf ("%s>%s%s%s", type, rig->endpoints[0], mode_b ? "," : "", rig->endpoints[1]);
    rig->caller = zk_caller_new (rig->spec, &config);
    cr_assert_not_null (rig->caller);
    s_wait_connected (rig->caller, 0);
    if (mode_b)
        s_wait_connected (rig->caller, 1);
}

static void
s_rig_stop (rig_t *rig)
{
    zk_caller_destroy (&rig->caller);
    free (rig->spec);
    zactor_destroy (&rig->peers[0]);
    zactor_destroy (&rig->peers[1]);
}

//  Call with body; expect rc. The reply (NULL unless rc is 0 or ZK_ECOMMAND).
static zmsg_t *
s_call (zk_caller_t *caller, const char *body, int rc)
{
    zmsg_t *request = s_request (body), *reply;
    int got = zk_caller_call (caller, &request, &reply);
    cr_assert_eq (got, rc, "call '%s': %s, not %s (%s)", body, zk_strerror (got), zk_strerror (rc),
                  zk_caller_last_error (caller));
    cr_assert_null (request);
    cr_assert ((reply != NULL) == (rc == 0 || rc == ZK_ECOMMAND));
    return reply;
}

//  A call that must be answered "re:BODY".
static void
s_call_ok (zk_caller_t *caller, const char *body)
{
    zmsg_t *reply = s_call (caller, body, 0);
    char *expected = zsys_sprintf ("re:%s", body);
    s_assert_last_frame (reply, expected);
    free (expected);
    zmsg_destroy (&reply);
}

static zk_caller_stats_t
s_stats (zk_caller_t *caller)
{
    zk_caller_stats_t stats;
    zk_caller_stats (caller, &stats);
    return stats;
}

//  ===========================================================================
//  Tests

Test (zk_caller, reply_matches_the_request_and_carries_the_envelope)
{
    rig_t rig;
    s_rig_start (&rig, "req", "echo", NULL, (zk_caller_config_t){.timeout_ms = 10000});
    for (int round = 0; round < 3; round++) {
        zmsg_t *reply = s_call (rig.caller, "hello", 0);
        cr_assert_eq (zmsg_size (reply), 2);
        zk_envelope_t *envelope = s_reply_envelope (reply);
        cr_assert_eq (zk_envelope_attempt (envelope), 1);
        s_assert_last_frame (reply, "re:hello");
        zk_envelope_destroy (&envelope);
        zmsg_destroy (&reply);
    }
    //  On the wire: REQID (16 bytes) "" ENVELOPE BODY, the envelope's id = REQID.
    zstr_send (rig.peers[0], "LAST");
    zmsg_t *last = zmsg_recv (rig.peers[0]);
    cr_assert_eq (zmsg_size (last), 5);
    zframe_t *reqid = s_frame (last, 1);
    cr_assert_eq (zframe_size (reqid), 16);
    cr_assert_eq (zframe_size (s_frame (last, 2)), 0);
    zframe_t *frame = s_frame (last, 3);
    zk_envelope_t *envelope;
    cr_assert_eq (zk_envelope_decode (zframe_data (frame), zframe_size (frame), &envelope), 0);
    cr_assert (memcmp (zk_envelope_id (envelope), zframe_data (reqid), 16) == 0);
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&last);
    zk_caller_stats_t stats = s_stats (rig.caller);
    cr_assert_eq (stats.calls, 3);
    cr_assert_eq (stats.replies, 3);
    cr_assert_eq (stats.attempts, 3);
    cr_assert_eq (stats.retries + stats.timeouts + stats.stale + stats.refused, 0);
    s_rig_stop (&rig);
}

Test (zk_caller, a_request_envelope_is_kept_and_only_its_attempt_set)
{
    rig_t rig;
    s_rig_start (&rig, "dealer", "drop-first", NULL,
                 (zk_caller_config_t){.timeout_ms = 300, .retries = 2});
    zk_envelope_t *mine = zk_envelope_new ();
    zk_envelope_set_header (mine, "tenant", "blue");
    uint8_t trace[ZK_ID_SIZE] = {7};
    zk_envelope_set_trace (mine, trace);
    zmsg_t *request = s_request ("body"), *reply;
    zk_envelope_attach (mine, request);
    cr_assert_eq (zk_caller_call (rig.caller, &request, &reply), 0, "%s",
                  zk_caller_last_error (rig.caller));
    zk_envelope_t *echoed = s_reply_envelope (reply);
    cr_assert (memcmp (zk_envelope_id (echoed), zk_envelope_id (mine), ZK_ID_SIZE) == 0);
    cr_assert (memcmp (zk_envelope_trace (echoed), trace, ZK_ID_SIZE) == 0);
    cr_assert_str_eq (zk_envelope_header (echoed, "tenant"), "blue");
    cr_assert_eq (zk_envelope_attempt (echoed), 2, "the answered attempt was the second");
    zk_envelope_destroy (&echoed);
    zk_envelope_destroy (&mine);
    zmsg_destroy (&reply);
    s_rig_stop (&rig);
}

Test (zk_caller, a_dropped_attempt_is_answered_on_retry)
{
    rig_t rig;
    s_rig_start (&rig, "req", "drop-first", NULL,
                 (zk_caller_config_t){.timeout_ms = 300, .retries = 3});
    s_call_ok (rig.caller, "again");
    zk_caller_stats_t stats = s_stats (rig.caller);
    cr_assert_eq (stats.attempts, 2);
    cr_assert_eq (stats.retries, 1);
    cr_assert_eq (stats.timeouts, 1);
    cr_assert_eq (stats.failovers, 0, "one endpoint: no failover");
    cr_assert_eq (s_peer_count (rig.peers[0]), 2);
    s_rig_stop (&rig);
}

Test (zk_caller, a_late_reply_to_an_earlier_call_is_stale)
{
    rig_t rig;
    s_rig_start (&rig, "req", "late-first", NULL, (zk_caller_config_t){.timeout_ms = 10000});
    //  Call 1 is sent, then given up (the peer holds it) ...
    zmsg_t *request = s_request ("one");
    cr_assert_eq (zk_caller_call_async (rig.caller, &request, NULL, NULL), 0);
    cr_assert (zk_caller_busy (rig.caller));
    s_peer_wait_count (rig.peers[0], 1);
    zk_caller_abandon (rig.caller);
    cr_assert_not (zk_caller_busy (rig.caller));
    //  ... and its reply comes in front of call 2's: dropped, counted.
    s_call_ok (rig.caller, "two");
    zk_caller_stats_t stats = s_stats (rig.caller);
    cr_assert_eq (stats.stale, 1);
    cr_assert_eq (stats.calls, 2);
    cr_assert_eq (stats.replies, 1);
    s_rig_stop (&rig);
}

Test (zk_caller, a_reply_with_another_reqid_is_stale)
{
    rig_t rig;
    s_rig_start (&rig, "req", "stale-first", NULL, (zk_caller_config_t){.timeout_ms = 10000});
    s_call_ok (rig.caller, "x");
    s_call_ok (rig.caller, "y");
    zk_caller_stats_t stats = s_stats (rig.caller);
    cr_assert_eq (stats.stale, 2);
    cr_assert_eq (stats.attempts, 2);
    s_rig_stop (&rig);
}

Test (zk_caller, a_plain_rep_socket_copies_the_reqid_back)
{
    rig_t rig;
    s_rig_start (&rig, "req", "rep", NULL, (zk_caller_config_t){.timeout_ms = 10000});
    zmsg_t *reply = s_call (rig.caller, "plain", 0);
    cr_assert_eq (zmsg_size (reply), 1);
    s_assert_last_frame (reply, "re:plain");
    zmsg_destroy (&reply);
    s_rig_stop (&rig);
}

Test (zk_caller, failover_from_a_dead_endpoint_costs_one_timeout)
{
    rig_t rig;
    s_rig_start (&rig, "req", "silent", "echo",
                 (zk_caller_config_t){.timeout_ms = 2000, .retries = 3});
    int64_t start = zclock_mono ();
    s_call_ok (rig.caller, "a");
    int64_t elapsed = zclock_mono () - start;
    cr_assert_lt (elapsed, 4000, "a dead first endpoint cost %" PRId64 " ms: more than one timeout",
                  elapsed);
    zk_caller_stats_t stats = s_stats (rig.caller);
    cr_assert_eq (stats.timeouts, 1);
    cr_assert_eq (stats.failovers, 1);
    cr_assert_eq (zk_caller_current (rig.caller), 1);
    //  The next call starts where the last one ended: on the live endpoint.
    s_call_ok (rig.caller, "b");
    stats = s_stats (rig.caller);
    cr_assert_eq (stats.timeouts, 1);
    cr_assert_eq (stats.attempts, 3);
    cr_assert_eq (s_peer_count (rig.peers[0]), 1);
    cr_assert_eq (s_peer_count (rig.peers[1]), 2);
    s_rig_stop (&rig);
}

Test (zk_caller, an_endpoint_with_nothing_listening_costs_nothing)
{
    char live[256];
    zactor_t *peer = s_peer_start ("echo", live, sizeof live);
    //  Port 1 on loopback: nothing listens there, connections are refused.
    char *spec = zsys_sprintf ("req>tcp://127.0.0.1:1,%s", live);
    zk_caller_t *caller =
        zk_caller_new (spec, &(zk_caller_config_t){.timeout_ms = 20000, .retries = 1});
    cr_assert_not_null (caller);
    s_wait_connected (caller, 1);
    int64_t start = zclock_mono ();
    s_call_ok (caller, "a");
    cr_assert_lt (zclock_mono () - start, 10000, "the refused endpoint was waited for");
    zk_caller_stats_t stats = s_stats (caller);
    cr_assert_eq (stats.attempts, 1, "skipping an unconnected endpoint is not a retry");
    cr_assert_eq (stats.timeouts, 0);
    cr_assert_eq (stats.failovers, 1);
    zk_caller_destroy (&caller);
    free (spec);
    zactor_destroy (&peer);
}

Test (zk_caller, no_connection_anywhere_fails_within_the_attempts)
{
    zk_caller_t *caller = zk_caller_new ("req>tcp://127.0.0.1:1",
                                         &(zk_caller_config_t){.timeout_ms = 300, .retries = 1});
    cr_assert_not_null (caller);
    s_call (caller, "a", ZK_ETIMEDOUT);
    const char *error = zk_caller_last_error (caller);
    cr_assert (strstr (error, "no connection to tcp://127.0.0.1:1 within 2 attempts of 0.3 s"),
               "%s", error);
    zk_caller_destroy (&caller);
}

Test (zk_caller, a_zk_retry_reply_is_retried_at_once)
{
    rig_t rig;
    s_rig_start (&rig, "req", "retry-first", NULL,
                 (zk_caller_config_t){.timeout_ms = 30000, .retries = 2});
    int64_t start = zclock_mono ();
    s_call_ok (rig.caller, "r");
    cr_assert_lt (zclock_mono () - start, 15000, "the retry waited for the timeout");
    zk_caller_stats_t stats = s_stats (rig.caller);
    cr_assert_eq (stats.attempts, 2);
    cr_assert_eq (stats.timeouts, 0);
    cr_assert_eq (stats.error_replies, 1);
    cr_assert_eq (stats.retryable, 1);
    s_rig_stop (&rig);
}

Test (zk_caller, a_zk_retry_reply_moves_to_the_next_endpoint)
{
    rig_t rig;
    s_rig_start (&rig, "req", "retry-always", "echo",
                 (zk_caller_config_t){.timeout_ms = 30000, .retries = 1});
    s_call_ok (rig.caller, "r");
    cr_assert_eq (s_peer_count (rig.peers[0]), 1);
    cr_assert_eq (zk_caller_current (rig.caller), 1);
    s_rig_stop (&rig);
}

Test (zk_caller, a_zk_retry_reply_without_retries_left_is_returned)
{
    rig_t rig;
    s_rig_start (&rig, "req", "retry-always", NULL,
                 (zk_caller_config_t){.timeout_ms = 30000, .retries = 1});
    zmsg_t *reply = s_call (rig.caller, "r", ZK_ECOMMAND);
    zk_envelope_t *envelope = s_reply_envelope (reply);
    cr_assert_str_eq (zk_envelope_header (envelope, "zk-retry"), "1");
    zk_envelope_destroy (&envelope);
    zmsg_destroy (&reply);
    cr_assert (strstr (zk_caller_last_error (rig.caller), "worker lost"), "%s",
               zk_caller_last_error (rig.caller));
    zk_caller_stats_t stats = s_stats (rig.caller);
    cr_assert_eq (stats.attempts, 2);
    cr_assert_eq (stats.retryable, 2);
    cr_assert_eq (s_peer_count (rig.peers[0]), 2);
    s_rig_stop (&rig);
}

Test (zk_caller, a_final_error_reply_is_returned_as_ecommand)
{
    rig_t rig;
    s_rig_start (&rig, "req", "error", NULL,
                 (zk_caller_config_t){.timeout_ms = 30000, .retries = 3});
    zmsg_t *reply = s_call (rig.caller, "fail", ZK_ECOMMAND);
    zk_envelope_t *envelope = s_reply_envelope (reply);
    cr_assert_str_eq (zk_envelope_header (envelope, "zk-status"), "error");
    zk_envelope_destroy (&envelope);
    s_assert_last_frame (reply, "partial");
    zmsg_destroy (&reply);
    cr_assert (strstr (zk_caller_last_error (rig.caller), "exit status 3"), "%s",
               zk_caller_last_error (rig.caller));
    zk_caller_stats_t stats = s_stats (rig.caller);
    cr_assert_eq (stats.attempts, 1, "a final error reply is not retried");
    cr_assert_eq (stats.error_replies, 1);
    cr_assert_eq (stats.retryable, 0);
    cr_assert_eq (s_peer_count (rig.peers[0]), 1);
    s_rig_stop (&rig);
}

Test (zk_caller, every_attempt_failing_is_bounded)
{
    rig_t rig;
    s_rig_start (&rig, "req", "silent", "silent",
                 (zk_caller_config_t){.timeout_ms = 500, .retries = 3});
    int64_t start = zclock_mono ();
    s_call (rig.caller, "a", ZK_ETIMEDOUT);
    int64_t elapsed = zclock_mono () - start;
    //  4 attempts of 0.5 s; backoff before retries 2 and 3 (the endpoints
    //  were tried): 0.2 + 0.4 s; then slack for a loaded machine.
    cr_assert_geq (elapsed, 2000);
    cr_assert_lt (elapsed, 2000 + 600 + 4000, "took %" PRId64 " ms", elapsed);
    char *expected = zsys_sprintf ("no reply after 4 attempts of 0.5 s over %s, %s",
                                   rig.endpoints[0], rig.endpoints[1]);
    cr_assert_str_eq (zk_caller_last_error (rig.caller), expected);
    free (expected);
    zk_caller_stats_t stats = s_stats (rig.caller);
    cr_assert_eq (stats.attempts, 4);
    cr_assert_eq (stats.retries, 3);
    cr_assert_eq (stats.timeouts, 4);
    cr_assert_eq (stats.failovers, 3);
    cr_assert_eq (stats.failed, 1);
    cr_assert_eq (s_peer_count (rig.peers[0]), 2);
    cr_assert_eq (s_peer_count (rig.peers[1]), 2);
    s_rig_stop (&rig);
}

Test (zk_caller, hostile_replies_are_dropped_and_counted)
{
    rig_t rig;
    s_rig_start (&rig, "req", "hostile", NULL, (zk_caller_config_t){.timeout_ms = 10000});
    s_call_ok (rig.caller, "x");
    zk_caller_stats_t stats = s_stats (rig.caller);
    cr_assert_eq (stats.refused, 5);
    cr_assert_eq (stats.attempts, 1);
    s_rig_stop (&rig);
}

Test (zk_caller, an_oversized_reply_is_refused)
{
    rig_t rig;
    s_rig_start (&rig, "req", "wide", NULL,
                 (zk_caller_config_t){.timeout_ms = 10000, .max_size = 100000});
    s_call_ok (rig.caller, "x");
    cr_assert_eq (s_stats (rig.caller).refused, 1);
    s_rig_stop (&rig);
}

Test (zk_caller, bad_specs_and_configs_are_refused)
{
    struct {
        const char *spec;
        const char *reason;
    } cases[] = {
        {NULL, "spec is required"},
        {"", "spec is required"},
        {"req@tcp://127.0.0.1:*", "only connects"},
        {"dealer>tcp://127.0.0.1:1,@tcp://127.0.0.1:*", "only connects"},
        {"push>tcp://127.0.0.1:1", "req> or dealer> spec, not push"},
        {"router>tcp://127.0.0.1:1", "not router"},
        {"queue>tcp://127.0.0.1:1/jobs", "not queue"},
        {"req>nowhere", "invalid socket spec"},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        char reason[512] = "";
        cr_assert_eq (zk_caller_validate (cases[index].spec, NULL, reason, sizeof reason),
                      ZK_EINVAL);
        cr_assert (strstr (reason, cases[index].reason), "'%s': %s", cases[index].spec, reason);
        cr_assert_null (zk_caller_new (cases[index].spec, NULL));
    }
    char reason[512] = "";
    zk_caller_config_t config = {.retries = 101};
    cr_assert_eq (zk_caller_validate ("req>tcp://127.0.0.1:1", &config, reason, sizeof reason),
                  ZK_EINVAL);
    cr_assert (strstr (reason, "retries"), "%s", reason);
    config.retries = -1;
    cr_assert_null (zk_caller_new ("req>tcp://127.0.0.1:1", &config));
    config.retries = 100;
    cr_assert_eq (zk_caller_validate ("req>tcp://127.0.0.1:1", &config, NULL, 0), 0);
}

Test (zk_caller, a_malformed_request_envelope_is_refused)
{
    zk_caller_t *caller = zk_caller_new ("req>tcp://127.0.0.1:1", NULL);
    cr_assert_not_null (caller);
    zmsg_t *request = zmsg_new (), *reply;
    const uint8_t garbage[] = {0x81, 0xa2, 0x7a, 0x6b, 0x01, 0xc1};
    zmsg_addmem (request, garbage, sizeof garbage);
    cr_assert_eq (zk_caller_call (caller, &request, &reply), ZK_EINVAL);
    cr_assert_null (request);
    cr_assert_null (reply);
    cr_assert_not (zk_caller_busy (caller));
    cr_assert (strstr (zk_caller_last_error (caller), "does not decode"));
    zk_caller_destroy (&caller);
}

typedef struct {
    int calls;
    int rc;
    zmsg_t *reply;
} outcome_t;

static void
s_record (zk_caller_t *caller, int rc, zmsg_t *reply, void *arg)
{
    (void) caller;
    outcome_t *outcome = (outcome_t *) arg;
    outcome->calls++;
    outcome->rc = rc;
    zmsg_destroy (&outcome->reply);
    outcome->reply = reply;
}

Test (zk_caller, async_calls_report_through_the_callback)
{
    rig_t rig;
    s_rig_start (&rig, "req", "drop-first", NULL,
                 (zk_caller_config_t){.timeout_ms = 300, .retries = 2});
    outcome_t outcome = {0};
    zmsg_t *request = s_request ("async");
    cr_assert_eq (zk_caller_call_async (rig.caller, &request, s_record, &outcome), 0);
    request = s_request ("second");
    cr_assert_eq (zk_caller_call_async (rig.caller, &request, s_record, &outcome), ZK_EBUSY);
    cr_assert_null (request);
    s_call (rig.caller, "sync", ZK_EBUSY);
    //  An event loop: poll, process, until the callback ran (bounded).
    int64_t deadline = zclock_mono () + 20000;
    while (outcome.calls == 0 && zclock_mono () < deadline) {
        zmq_pollitem_t items[4];
        int count = zk_caller_pollitems (rig.caller, items, 4);
        long timeout = zk_caller_next_timeout (rig.caller);
        cr_assert_geq (timeout, 0, "a call in flight always has a timer");
        zmq_poll (items, count, timeout > 100 ? 100 : timeout);
        cr_assert_eq (zk_caller_process (rig.caller), 0);
    }
    cr_assert_eq (outcome.calls, 1);
    cr_assert_eq (outcome.rc, 0);
    s_assert_last_frame (outcome.reply, "re:async");
    zmsg_destroy (&outcome.reply);
    cr_assert_not (zk_caller_busy (rig.caller));
    cr_assert_eq (zk_caller_next_timeout (rig.caller), -1);
    s_rig_stop (&rig);
}

Test (zk_caller, an_interrupt_ends_a_wait_without_limit)
{
    rig_t rig;
    s_rig_start (&rig, "req", "interrupt", NULL, (zk_caller_config_t){.timeout_ms = -1});
    s_call (rig.caller, "forever", ZK_EINTR);
    cr_assert_not (zk_caller_busy (rig.caller));
    zsys_interrupted = 0;
    s_rig_stop (&rig);
}
