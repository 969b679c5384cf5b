/*  zk_client — the queue client against a fake ZKQ/1 server (fake_queue.h,
    implemented here): pipelined confirms, the window, lost confirms retried
    with the same MSGID, timeouts, ERR replies, GET/ACK/NACK, reconnects,
    failover, hostile server messages.                                   */

#include "fake_queue.h"

#include <stdarg.h>

//  ===========================================================================
//  The fake server

#define FQ_MAX_PEERS 64

typedef struct {
    char queue[ZK_SPEC_QUEUE_NAME_MAX + 8];
    uint8_t id[ZK_ID_SIZE];
    zmsg_t *body;
    int attempt;
    int state;        //  0 queued, 1 leased, 2 done
    zframe_t *owner;  //  routing id it is leased to
    char reason[256];
    zmsg_t *result;
    void *handle;  //  in messages
    int sends;     //  PUT commands seen for it
    int64_t seq;   //  order of acceptance (TRACE lists a job's steps in it)
    int64_t accepted_us, started_us, finished_us;
    char consumer[72];  //  of its last delivery; "" unknown
    bool died;          //  moved to .dead: in its queue it is "dead"
} fq_msg_t;

typedef struct {
    zframe_t *identity;
    char queue[ZK_SPEC_QUEUE_NAME_MAX + 8];
    int window;
    char consumer[72];  //  GET's third argument, "-" without one
} fq_peer_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *router;
    char endpoint[128];
    zlistx_t *messages;  //  fq_msg_t *, delivery order
    fq_peer_t peers[FQ_MAX_PEERS];
    int peer_count;
    zframe_t *last_peer;
    zlist_t *held;  //  OK replies held (hold/batch)
    char mode[16];
    int drop_ok;
    int err_code;
    int max_deliver;
    int64_t puts, max_sends, max_held, max_leased, acks, nacks, last_attempt, fwds, seq;
    int bad_trace;  //  > 0: the next TRACE answers with malformed case N
    int64_t last_put_ms;
    bool terminated;
} fq_t;

static const char *s_states[] = {"queued", "running", "done"};

//  Send to a peer; false when the peer is gone (ROUTER_MANDATORY says so).
static bool
s_fq_send (fq_t *self, zframe_t *identity, zmsg_t **msg_p)
{
    if (streq (self->mode, "silent")) {
        zmsg_destroy (msg_p);
        return true;
    }
    zframe_t *copy = zframe_dup (identity);
    zmsg_prepend (*msg_p, &copy);
    bool sent = zmsg_send (msg_p, self->router) == 0;
    zmsg_destroy (msg_p);
    return sent;
}

//  A reply [ZKQ1][OK|ERR][TAG] ...
static zmsg_t *
s_fq_reply (const char *command, zframe_t *tag)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "ZKQ1");
    zmsg_addstr (reply, command);
    zmsg_addmem (reply, zframe_data (tag), zframe_size (tag));
    return reply;
}

static void
s_fq_err (fq_t *self, zframe_t *identity, zframe_t *tag, int code, const char *text)
{
    zmsg_t *reply = s_fq_reply ("ERR", tag);
    zmsg_addstrf (reply, "%d", code);
    zmsg_addstr (reply, text);
    s_fq_send (self, identity, &reply);
}

static char *
s_fq_str (zframe_t *frame)
{
    return frame ? zframe_strdup (frame) : strdup ("");
}

static fq_msg_t *
s_fq_find (fq_t *self, const char *queue, const uint8_t *id)
{
    for (fq_msg_t *msg = zlistx_first (self->messages); msg; msg = zlistx_next (self->messages))
        if (streq (msg->queue, queue) && memcmp (msg->id, id, ZK_ID_SIZE) == 0)
            return msg;
    return NULL;
}

static int
s_fq_held (fq_t *self, zframe_t *identity, const char *queue)
{
    int held = 0;
    for (fq_msg_t *msg = zlistx_first (self->messages); msg; msg = zlistx_next (self->messages))
        if (msg->state == 1 && zframe_eq (msg->owner, identity) && streq (msg->queue, queue))
            held++;
    return held;
}

static void
s_fq_dead (fq_t *self, fq_msg_t *msg, const char *reason)
{
    (void) self;
    strcat (msg->queue, ".dead");
    msg->died = true;
    msg->finished_us = zclock_time () * 1000;
    msg->state = 0;
    zframe_destroy (&msg->owner);
    snprintf (msg->reason, sizeof msg->reason, "%s", reason);
}

//  Deliver while peers have room.
static void
s_fq_deliver (fq_t *self)
{
    if (streq (self->mode, "silent"))
        return;
    for (int index = 0; index < self->peer_count; index++) {
        fq_peer_t *peer = &self->peers[index];
        int held = s_fq_held (self, peer->identity, peer->queue);
        for (fq_msg_t *msg = zlistx_first (self->messages); msg && held < peer->window;
             msg = zlistx_next (self->messages)) {
            if (msg->state != 0 || !streq (msg->queue, peer->queue))
                continue;
            msg->state = 1;
            msg->attempt++;
            msg->owner = zframe_dup (peer->identity);
            msg->started_us = zclock_time () * 1000;
            snprintf (msg->consumer, sizeof msg->consumer, "%s", peer->consumer);
            held++;
            self->last_attempt = msg->attempt;
            if (held > self->max_leased)
                self->max_leased = held;
            zmsg_t *out = zmsg_new ();
            zmsg_addstr (out, "ZKQ1");
            zmsg_addstr (out, "MSG");
            zmsg_addstr (out, "");
            zmsg_addstr (out, msg->queue);
            zmsg_addmem (out, msg->id, ZK_ID_SIZE);
            zmsg_addstrf (out, "%d", msg->attempt);
            for (zframe_t *frame = zmsg_first (msg->body); frame; frame = zmsg_next (msg->body))
                zmsg_addmem (out, zframe_data (frame), zframe_size (frame));
            if (!s_fq_send (self, peer->identity, &out)) {
                //  The peer is gone (the real server sees the disconnect):
                //  nothing more for it, and this one is not leased.
                msg->state = 0;
                msg->attempt--;
                zframe_destroy (&msg->owner);
                peer->window = 0;
                break;
            }
        }
    }
}

static void
s_fq_flush_held (fq_t *self)
{
    zmsg_t *reply;
    while ((reply = zlist_pop (self->held))) {
        zmsg_send (&reply, self->router);
        zmsg_destroy (&reply);  //  not sent: the peer is gone
    }
}

//  A new message of queue with id and the body frames args[first..count).
static fq_msg_t *
s_fq_store (fq_t *self, const char *queue, const uint8_t *id, zframe_t **args, int first, int count)
{
    fq_msg_t *stored = calloc (1, sizeof *stored);
    snprintf (stored->queue, sizeof stored->queue, "%s", queue);
    memcpy (stored->id, id, ZK_ID_SIZE);
    stored->body = zmsg_new ();
    for (int index = first; index < count; index++)
        zmsg_addmem (stored->body, zframe_data (args[index]), zframe_size (args[index]));
    stored->seq = ++self->seq;
    stored->accepted_us = zclock_time () * 1000;
    stored->handle = zlistx_add_end (self->messages, stored);
    return stored;
}

//  Malformed TRACE replies, one per case (bad_trace 1..; one more case:
//  33 good lines, more than a path may have).
static const char *s_bad_traces[][3] = {
    {"jobs done 1 1 2 3", NULL},                              //  six fields
    {"jobs done 1 1 2 3 c extra", NULL},                      //  eight fields
    {"jobs done 1 1 2 3 c ", NULL},                           //  a trailing space
    {"jobs  done 1 1 2 3 c", NULL},                           //  an empty field
    {"bad/queue done 1 1 2 3 c", NULL},                       //  a bad queue name
    {"jobs DONE 1 1 2 3 c", NULL},                            //  an upper-case state
    {"jobs done x 1 2 3 c", NULL},                            //  attempts not a number
    {"jobs done 1 99999999999999999999 2 3 c", NULL},         //  a time past int64
    {"jobs done 1 1 2 3 c\x01", NULL},                        //  a control byte
    {"jobs queued 0 1 0 0 -", "jobs done -1 1 2 3 c", NULL},  //  one bad line of two
    {"jobs averyveryveryverylongstate 1 1 2 3 c", NULL},      //  a state of 16+ bytes
    {"jobs done 1 1 2 3 "
     "0123456789012345678901234567890123456789012345678901234567890123456789",
     NULL},  //  a consumer of 70 bytes
};
#define FQ_BAD_TRACES ((int) (sizeof s_bad_traces / sizeof s_bad_traces[0]))

//  TRACE QUEUE MSGID: every message with that id, in order of acceptance,
//  if one of them is (or died) in QUEUE.
static void
s_fq_trace (fq_t *self, const char *queue, zframe_t *id, zmsg_t *reply)
{
    if (self->bad_trace > 0) {
        int which = self->bad_trace - 1;
        self->bad_trace = 0;
        for (int line = 0; which < FQ_BAD_TRACES && s_bad_traces[which][line]; line++)
            zmsg_addstr (reply, s_bad_traces[which][line]);
        if (which >= FQ_BAD_TRACES)
            for (int line = 0; line < 33; line++)
                zmsg_addstr (reply, "jobs done 1 1 2 3 c");
        return;
    }
    if (zframe_size (id) != ZK_ID_SIZE)
        return;
    char dead[200];
    snprintf (dead, sizeof dead, "%s.dead", queue);
    if (!s_fq_find (self, queue, zframe_data (id)) && !s_fq_find (self, dead, zframe_data (id)))
        return;
    //  A selection sort by seq: a job has a handful of steps.
    int64_t last_seq = 0;
    while (true) {
        fq_msg_t *next = NULL;
        for (fq_msg_t *msg = zlistx_first (self->messages); msg; msg = zlistx_next (self->messages))
            if (memcmp (msg->id, zframe_data (id), ZK_ID_SIZE) == 0 && msg->seq > last_seq
                && (!next || msg->seq < next->seq))
                next = msg;
        if (!next)
            break;
        last_seq = next->seq;
        char name[200];
        snprintf (name, sizeof name, "%s", next->queue);
        if (next->died)
            name[strlen (name) - 5] = 0;
        zmsg_addstrf (reply, "%s %s %d %" PRId64 " %" PRId64 " %" PRId64 " %s", name,
                      next->died ? "dead" : s_states[next->state], next->attempt, next->accepted_us,
                      next->started_us, next->finished_us,
                      next->consumer[0] ? next->consumer : "-");
    }
}

static void
s_fq_command (fq_t *self, zframe_t *identity, zmsg_t *request)
{
    zframe_t *signature = zmsg_first (request);
    zframe_t *command = zmsg_next (request);
    zframe_t *tag = zmsg_next (request);
    if (!signature || !zframe_streq (signature, "ZKQ1") || !command || !tag)
        return;
    zframe_t *args[80];
    int count = 0;
    for (zframe_t *frame = zmsg_next (request); frame && count < 80; frame = zmsg_next (request))
        args[count++] = frame;
    char *queue = count > 0 ? s_fq_str (args[0]) : strdup ("");
    zmsg_t *reply = NULL;
    if (zframe_streq (command, "PUT")) {
        self->puts++;
        self->last_put_ms = zclock_mono ();
        if (count < 3 || zframe_size (args[1]) != ZK_ID_SIZE)
            s_fq_err (self, identity, tag, 400, "malformed PUT");
        else if (self->err_code)
            s_fq_err (self, identity, tag, self->err_code, "no space left on device");
        else {
            fq_msg_t *stored = s_fq_find (self, queue, zframe_data (args[1]));
            if (!stored)
                stored = s_fq_store (self, queue, zframe_data (args[1]), args, 2, count);
            stored->sends++;
            if (stored->sends > self->max_sends)
                self->max_sends = stored->sends;
            reply = s_fq_reply ("OK", tag);
            if (self->drop_ok > 0) {
                self->drop_ok--;
                zmsg_destroy (&reply);
            }
            else if (streq (self->mode, "hold") || streq (self->mode, "batch")) {
                zframe_t *copy = zframe_dup (identity);
                zmsg_prepend (reply, &copy);
                zlist_append (self->held, reply);
                reply = NULL;
                if ((int64_t) zlist_size (self->held) > self->max_held)
                    self->max_held = (int64_t) zlist_size (self->held);
            }
        }
    }
    else if (zframe_streq (command, "GET") && (count == 2 || count == 3)) {
        char *window = s_fq_str (args[1]);
        fq_peer_t *peer = NULL;
        for (int index = 0; index < self->peer_count; index++)
            if (zframe_eq (self->peers[index].identity, identity)
                && streq (self->peers[index].queue, queue))
                peer = &self->peers[index];
        if (!peer && self->peer_count < FQ_MAX_PEERS) {
            peer = &self->peers[self->peer_count++];
            peer->identity = zframe_dup (identity);
            snprintf (peer->queue, sizeof peer->queue, "%s", queue);
        }
        if (peer) {
            peer->window = atoi (window);
            char *consumer = count == 3 ? s_fq_str (args[2]) : strdup ("");
            snprintf (peer->consumer, sizeof peer->consumer, "%s", consumer);
            free (consumer);
        }
        free (window);
        reply = s_fq_reply ("OK", tag);
    }
    else if ((zframe_streq (command, "ACK") || zframe_streq (command, "NACK")) && count >= 2
             && zframe_size (args[1]) == ZK_ID_SIZE) {
        bool ack = zframe_streq (command, "ACK");
        if (ack)
            self->acks++;
        else
            self->nacks++;
        fq_msg_t *held = s_fq_find (self, queue, zframe_data (args[1]));
        if (!held || held->state != 1 || !zframe_eq (held->owner, identity))
            s_fq_err (self, identity, tag, 404, "not leased to you");
        else if (ack) {
            held->state = 2;
            held->finished_us = zclock_time () * 1000;
            zframe_destroy (&held->owner);
            held->result = zmsg_new ();
            for (int index = 2; index < count; index++)
                zmsg_addmem (held->result, zframe_data (args[index]), zframe_size (args[index]));
            reply = s_fq_reply ("OK", tag);
        }
        else {
            char *mode = count > 2 ? s_fq_str (args[2]) : strdup ("");
            char *reason = count > 3 ? s_fq_str (args[3]) : strdup ("nack");
            if (streq (mode, "dead") || held->attempt >= self->max_deliver)
                s_fq_dead (self, held, reason);
            else {
                held->state = 0;
                zframe_destroy (&held->owner);
                zlistx_move_start (self->messages, held->handle);
            }
            free (mode);
            free (reason);
            reply = s_fq_reply ("OK", tag);
        }
    }
    else if (zframe_streq (command, "FWD") && count >= 4 && zframe_size (args[1]) == ZK_ID_SIZE) {
        self->fwds++;
        char *to = s_fq_str (args[2]);
        fq_msg_t *held = s_fq_find (self, queue, zframe_data (args[1]));
        if (streq (to, queue))
            s_fq_err (self, identity, tag, 400, "FWD needs two different queues");
        else if (self->err_code)
            s_fq_err (self, identity, tag, self->err_code, "no space left on device");
        else if (!held || held->state != 1 || !zframe_eq (held->owner, identity))
            s_fq_err (self, identity, tag, 404, "message not held by this client");
        else {
            held->state = 2;
            held->finished_us = zclock_time () * 1000;
            zframe_destroy (&held->owner);
            if (!s_fq_find (self, to, held->id))
                s_fq_store (self, to, held->id, args, 3, count);
            reply = s_fq_reply ("OK", tag);
        }
        free (to);
    }
    else if (zframe_streq (command, "TRACE") && count == 2) {
        reply = s_fq_reply ("OK", tag);
        s_fq_trace (self, queue, args[1], reply);
    }
    else if (zframe_streq (command, "STATUS") && count == 2) {
        fq_msg_t *found = zframe_size (args[1]) == ZK_ID_SIZE
                              ? s_fq_find (self, queue, zframe_data (args[1]))
                              : NULL;
        char dead[200];
        snprintf (dead, sizeof dead, "%s.dead", queue);
        fq_msg_t *died = !found && zframe_size (args[1]) == ZK_ID_SIZE
                             ? s_fq_find (self, dead, zframe_data (args[1]))
                             : NULL;
        reply = s_fq_reply ("OK", tag);
        if (found) {
            zmsg_addstr (reply, s_states[found->state]);
            zmsg_addstrf (reply, "%d", found->attempt);
            zmsg_addstrf (reply, "%" PRId64, zclock_time () * 1000);
            if (found->state == 2)
                for (zframe_t *frame = zmsg_first (found->result); frame;
                     frame = zmsg_next (found->result))
                    zmsg_addmem (reply, zframe_data (frame), zframe_size (frame));
        }
        else if (died) {
            zmsg_addstr (reply, "dead");
            zmsg_addstrf (reply, "%d", died->attempt);
            zmsg_addstr (reply, "1700000000000000");
            zmsg_addstr (reply, died->reason);
        }
        else {
            zmsg_addstr (reply, "unknown");
            zmsg_addstr (reply, "0");
            zmsg_addstr (reply, "0");
        }
    }
    else if (zframe_streq (command, "STATS") && count == 1) {
        reply = s_fq_reply ("OK", tag);
        zlist_t *names = zlist_new ();
        zlist_autofree (names);
        zlist_comparefn (names, (zlist_compare_fn *) strcmp);
        for (fq_msg_t *msg = zlistx_first (self->messages); msg; msg = zlistx_next (self->messages))
            if ((!*queue || streq (queue, msg->queue)) && !zlist_exists (names, msg->queue))
                zlist_append (names, msg->queue);
        for (char *name = zlist_first (names); name; name = zlist_next (names)) {
            int counts[3] = {0, 0, 0};
            for (fq_msg_t *msg = zlistx_first (self->messages); msg;
                 msg = zlistx_next (self->messages))
                if (streq (msg->queue, name))
                    counts[msg->state]++;
            zmsg_addstrf (reply, "%s queued=%d leased=%d done=%d", name, counts[0], counts[1],
                          counts[2]);
        }
        zlist_destroy (&names);
    }
    else if (zframe_streq (command, "LIST") && count == 2) {
        char *max_text = s_fq_str (args[1]);
        int max = atoi (max_text);
        free (max_text);
        reply = s_fq_reply ("OK", tag);
        for (fq_msg_t *msg = zlistx_first (self->messages); msg && max > 0;
             msg = zlistx_next (self->messages))
            if (msg->state == 0 && streq (msg->queue, queue)) {
                char id[ZK_ID_TEXT_SIZE];
                zk_id_format (msg->id, id);
                zmsg_addstrf (reply, "%s %d 1700000000000000 %s", id, msg->attempt, msg->reason);
                max--;
            }
    }
    else if (zframe_streq (command, "MOVE") && count == 3) {
        char *to = s_fq_str (args[1]);
        bool all = zframe_streq (args[2], "*");
        int moved = 0;
        for (fq_msg_t *msg = zlistx_first (self->messages); msg; msg = zlistx_next (self->messages))
            if (msg->state == 0 && streq (msg->queue, queue)
                && (all
                    || (zframe_size (args[2]) == ZK_ID_SIZE
                        && memcmp (zframe_data (args[2]), msg->id, ZK_ID_SIZE) == 0))) {
                snprintf (msg->queue, sizeof msg->queue, "%s", to);
                msg->attempt = 0;
                msg->reason[0] = 0;
                moved++;
            }
        free (to);
        reply = s_fq_reply ("OK", tag);
        zmsg_addstrf (reply, "%d", moved);
    }
    else if (zframe_streq (command, "PING"))
        reply = s_fq_reply ("OK", tag);
    else
        s_fq_err (self, identity, tag, 400, "malformed or unknown command");
    if (reply)
        s_fq_send (self, identity, &reply);
    free (queue);
    s_fq_deliver (self);
}

static void
s_fq_garbage (fq_t *self)
{
    if (!self->last_peer)
        return;
    uint8_t id[ZK_ID_SIZE] = {1, 2, 3};
    const char *cases[][8] = {
        {"XXXX", "OK", "1", NULL},
        {"ZKQ1", "MSG", "", "orders", "short-id-15byte", "1", "b", NULL},
        {"ZKQ1", "MSG", "", "bad name!", "ID", "1", "b", NULL},
        {"ZKQ1", "MSG", "", "orders", "ID", "x1", "b", NULL},
        {"ZKQ1", "MSG", "", "orders", "ID", "1", NULL},
        {"ZKQ1", "MSG", "", "orders", "ID", "99999999999999999999999", "b", NULL},
        {"ZKQ1", "OK", "999999", NULL},
        {"ZKQ1", "ERR", "999998", "500", "x", NULL},
        {"ZKQ1", "WHAT", "", NULL},
        {"ZKQ1", NULL},
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases[0]; index++) {
        zmsg_t *msg = zmsg_new ();
        for (int word = 0; cases[index][word]; word++) {
            if (streq (cases[index][word], "ID"))
                zmsg_addmem (msg, id, ZK_ID_SIZE);
            else
                zmsg_addstr (msg, cases[index][word]);
        }
        s_fq_send (self, self->last_peer, &msg);
    }
    zmsg_t *many = zmsg_new ();
    for (int index = 0; index < 200; index++)
        zmsg_addstr (many, "ZKQ1");
    s_fq_send (self, self->last_peer, &many);
}

static void
s_fq_bind (fq_t *self)
{
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (self->router, 0);
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_heartbeat_ivl (self->router, 1000);
    zsock_set_heartbeat_timeout (self->router, 3000);
    const char *where = self->endpoint[0] ? self->endpoint : "tcp://127.0.0.1:*";
    for (int tries = 0; tries < 50; tries++) {
        if (zmq_bind (zsock_resolve (self->router), where) == 0)
            break;
        zmq_poll (NULL, 0, 20);  //  until the old listener is gone: 50 tries, 1 s deadline
    }
    size_t size = sizeof self->endpoint;
    zmq_getsockopt (zsock_resolve (self->router), ZMQ_LAST_ENDPOINT, self->endpoint, &size);
}

static int64_t
s_fq_count (fq_t *self, const char *queue, const char *state)
{
    int64_t count = 0;
    for (fq_msg_t *msg = zlistx_first (self->messages); msg; msg = zlistx_next (self->messages))
        if (streq (msg->queue, queue) && streq (s_states[msg->state], state))
            count++;
    return count;
}

static int64_t
s_fq_pipe (fq_t *self, const char *command)
{
    char word[32] = "", arg1[200] = "", arg2[64] = "";
    sscanf (command, "%31s %199s %63s", word, arg1, arg2);
    if (streq (word, "MODE")) {
        snprintf (self->mode, sizeof self->mode, "%s", arg1);
        if (streq (self->mode, "normal"))
            s_fq_flush_held (self);
    }
    else if (streq (word, "DROPOK"))
        self->drop_ok = atoi (arg1);
    else if (streq (word, "ERR"))
        self->err_code = atoi (arg1);
    else if (streq (word, "RELEASE"))
        s_fq_flush_held (self);
    else if (streq (word, "MAXDELIVER"))
        self->max_deliver = atoi (arg1);
    else if (streq (word, "RESTART")) {
        zsock_destroy (&self->router);
        for (fq_msg_t *msg = zlistx_first (self->messages); msg; msg = zlistx_next (self->messages))
            if (msg->state == 1) {
                msg->state = 0;
                zframe_destroy (&msg->owner);
            }
        for (int index = 0; index < self->peer_count; index++)
            zframe_destroy (&self->peers[index].identity);
        self->peer_count = 0;
        s_fq_bind (self);
    }
    else if (streq (word, "GARBAGE"))
        s_fq_garbage (self);
    else if (streq (word, "PUTS"))
        return self->puts;
    else if (streq (word, "STORED"))
        return (int64_t) zlistx_size (self->messages);
    else if (streq (word, "MAXSENDS"))
        return self->max_sends;
    else if (streq (word, "MAXHELD"))
        return self->max_held;
    else if (streq (word, "COUNT"))
        return s_fq_count (self, arg1, arg2);
    else if (streq (word, "MAXLEASED"))
        return self->max_leased;
    else if (streq (word, "ACKS"))
        return self->acks;
    else if (streq (word, "NACKS"))
        return self->nacks;
    else if (streq (word, "LASTATTEMPT"))
        return self->last_attempt;
    else if (streq (word, "FWDS"))
        return self->fwds;
    else if (streq (word, "BADTRACE"))
        self->bad_trace = atoi (arg1);
    else if (streq (word, "BADTRACES"))
        return FQ_BAD_TRACES + 1;  //  the last: too many lines
    else
        return -1;
    return 0;
}

static void
s_fq_destroy_msg (void **item)
{
    fq_msg_t *msg = *item;
    zmsg_destroy (&msg->body);
    zmsg_destroy (&msg->result);
    zframe_destroy (&msg->owner);
    free (msg);
    *item = NULL;
}

static void
s_fq_actor (zsock_t *pipe, void *args)
{
    (void) args;
    fq_t self = {.pipe = pipe, .max_deliver = 5};
    snprintf (self.mode, sizeof self.mode, "normal");
    self.messages = zlistx_new ();
    zlistx_set_destructor (self.messages, s_fq_destroy_msg);
    self.held = zlist_new ();
    s_fq_bind (&self);
    zsock_signal (pipe, 0);
    while (!self.terminated) {
        zmq_pollitem_t items[] = {{zsock_resolve (pipe), 0, ZMQ_POLLIN, 0},
                                  {zsock_resolve (self.router), 0, ZMQ_POLLIN, 0}};
        long timeout = streq (self.mode, "batch") && zlist_size (self.held) ? 10 : -1;
        if (zmq_poll (items, 2, timeout) < 0 && errno != EINTR)
            break;
        if (streq (self.mode, "batch") && zlist_size (self.held)
            && zclock_mono () - self.last_put_ms >= 30)
            s_fq_flush_held (&self);
        if (items[0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            if (!command || streq (command, "$TERM"))
                self.terminated = true;
            else if (streq (command, "ENDPOINT"))
                zstr_send (pipe, self.endpoint);
            else
                zstr_sendf (pipe, "%" PRId64, s_fq_pipe (&self, command));
            zstr_free (&command);
        }
        if (items[1].revents & ZMQ_POLLIN) {
            zmsg_t *msg = zmsg_recv (self.router);
            zframe_t *identity = msg ? zmsg_pop (msg) : NULL;
            if (identity) {
                zframe_destroy (&self.last_peer);
                self.last_peer = zframe_dup (identity);
                s_fq_command (&self, identity, msg);
            }
            zframe_destroy (&identity);
            zmsg_destroy (&msg);
        }
    }
    zmsg_t *held;
    while ((held = zlist_pop (self.held)))
        zmsg_destroy (&held);
    zlist_destroy (&self.held);
    for (int index = 0; index < self.peer_count; index++)
        zframe_destroy (&self.peers[index].identity);
    zframe_destroy (&self.last_peer);
    zlistx_destroy (&self.messages);
    zsock_destroy (&self.router);
}

struct _fake_queue_t {
    zactor_t *actor;
    char *endpoint;
};

fake_queue_t *
fake_queue_new (void)
{
    fake_queue_t *self = calloc (1, sizeof *self);
    self->actor = zactor_new (s_fq_actor, NULL);
    zstr_send (self->actor, "ENDPOINT");
    self->endpoint = zstr_recv (self->actor);
    return self;
}

void
fake_queue_destroy (fake_queue_t **self_p)
{
    fake_queue_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

const char *
fake_queue_endpoint (fake_queue_t *self)
{
    return self->endpoint;
}

char *
fake_queue_spec (fake_queue_t *self, const char *name)
{
    return zsys_sprintf ("queue>%s/%s", self->endpoint, name);
}

zk_client_t *
fake_queue_client (fake_queue_t *self, const char *name, const zk_client_config_t *config)
{
    char *spec = fake_queue_spec (self, name);
    zk_client_t *client = zk_client_new (spec, config);
    cr_assert_not_null (client, "client for %s", spec);
    free (spec);
    return client;
}

static int64_t
s_fq_vask (fake_queue_t *self, const char *format, va_list args)
{
    char *command = zsys_vprintf (format, args);
    zstr_send (self->actor, command);
    free (command);
    zmq_pollitem_t item = {zsock_resolve (self->actor), 0, ZMQ_POLLIN, 0};
    if (zmq_poll (&item, 1, 5000) <= 0)
        return -1;
    char *answer = zstr_recv (self->actor);
    int64_t value = answer ? strtoll (answer, NULL, 10) : -1;
    zstr_free (&answer);
    return value;
}

int64_t
fake_queue_ask (fake_queue_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int64_t value = s_fq_vask (self, format, args);
    va_end (args);
    return value;
}

bool
fake_queue_wait (fake_queue_t *self, int64_t value, int timeout_ms, const char *format, ...)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        va_list args;
        va_start (args, format);
        int64_t now_value = s_fq_vask (self, format, args);
        va_end (args);
        if (now_value >= value)
            return true;
        if (zclock_mono () >= deadline)
            return false;
        zmq_poll (NULL, 0, 10);  //  a poll interval, bounded by the deadline
    }
}

//  ===========================================================================
//  The tests

TestSuite (zk_client, .timeout = 60);

static zmsg_t *
s_body (const char *text)
{
    zmsg_t *body = zmsg_new ();
    zmsg_addstr (body, text);
    return body;
}

static void
s_put (zk_client_t *client, const char *text, uint8_t *id)
{
    zmsg_t *body = s_body (text);
    cr_assert_eq (zk_client_put (client, NULL, &body, id), 0, "put %s", text);
    cr_assert_null (body);
}

//  The next delivery within 5 s, its body text in *text_p (caller frees).
static zk_delivery_t *
s_take (zk_client_t *client, char **text_p)
{
    zk_delivery_t *delivery = NULL;
    int rc = zk_client_recv (client, 5000, &delivery);
    cr_assert_eq (rc, 0, "no delivery: %s", zk_strerror (rc));
    cr_assert_not_null (delivery);
    if (text_p)
        *text_p = zframe_strdup (zmsg_first (delivery->body));
    return delivery;
}

Test (zk_client, refuses_specs_and_configs_it_cannot_use)
{
    cr_assert_null (zk_client_new ("dealer>tcp://127.0.0.1:1", NULL));
    cr_assert_null (zk_client_new ("queue>tcp://127.0.0.1:1", NULL));
    cr_assert_null (zk_client_new ("queue@tcp://*:1/orders", NULL));
    zk_client_config_t config = {.window = -1};
    cr_assert_null (zk_client_new ("queue>tcp://127.0.0.1:1/orders", &config));
    zk_client_t *client = zk_client_new ("queue>tcp://127.0.0.1:1/orders", NULL);
    cr_assert_not_null (client);
    cr_assert_str_eq (zk_client_queue (client), "orders");
    cr_assert_not (zk_client_connected (client));
    //  Bad arguments fail at once, without a round trip.
    zmsg_t *body = zmsg_new ();
    cr_assert_eq (zk_client_put (client, NULL, &body, NULL), ZK_EINVAL);  //  no frames
    cr_assert_null (body);
    body = s_body ("x");
    cr_assert_eq (zk_client_put (client, "bad name", &body, NULL), ZK_EINVAL);
    cr_assert_null (body);
    cr_assert_eq (zk_client_get (client, NULL, ZK_CLIENT_MAX_WINDOW + 1), ZK_EINVAL);
    cr_assert_eq (zk_client_request (client, "lower", NULL, NULL), ZK_EINVAL);
    zk_client_destroy (&client);
    zk_client_destroy (&client);
    cr_assert_null (client);
}

Test (zk_client, pipelined_puts_are_all_confirmed_within_the_window)
{
    fake_queue_t *fake = fake_queue_new ();
    //  batch: the fake holds every OK until no PUT came for 30 ms, so it
    //  sees how many the client has out at once.
    fake_queue_ask (fake, "MODE batch");
    zk_client_config_t config = {.window = 50};
    zk_client_t *client = fake_queue_client (fake, "orders", &config);
    uint8_t ids[500][ZK_ID_SIZE];
    for (int index = 0; index < 500; index++) {
        char text[32];
        snprintf (text, sizeof text, "message %d", index);
        s_put (client, text, ids[index]);
        cr_assert_leq (zk_client_unconfirmed (client), 50);
    }
    cr_assert_eq (zk_client_flush (client, 10000), 0, "%s", zk_client_last_error (client));
    cr_assert_eq (zk_client_unconfirmed (client), 0);
    zk_client_stats_t stats;
    zk_client_stats (client, &stats);
    cr_assert_eq (stats.puts, 500);
    cr_assert_eq (stats.confirmed, 500);
    cr_assert_eq (stats.failed, 0);
    //  Pipelined up to the window, never past it; every MSGID fresh.
    cr_assert_eq (fake_queue_ask (fake, "MAXHELD"), 50);
    cr_assert_eq (fake_queue_ask (fake, "STORED"), 500);
    cr_assert_eq (fake_queue_ask (fake, "COUNT orders queued"), 500);
    for (int index = 1; index < 500; index++)
        cr_assert (memcmp (ids[index - 1], ids[index], ZK_ID_SIZE) < 0, "ids not increasing");
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}

Test (zk_client, a_lost_confirm_is_retried_with_the_same_msgid)
{
    fake_queue_t *fake = fake_queue_new ();
    fake_queue_ask (fake, "DROPOK 1");
    zk_client_config_t config = {.retry_ms = 100, .timeout_ms = 5000};
    zk_client_t *client = fake_queue_client (fake, "orders", &config);
    uint8_t id[ZK_ID_SIZE];
    s_put (client, "once", id);
    cr_assert_eq (zk_client_flush (client, 5000), 0);
    zk_client_stats_t stats;
    zk_client_stats (client, &stats);
    cr_assert_eq (stats.confirmed, 1);
    cr_assert_geq (stats.resent, 1);
    //  Sent twice with one MSGID: stored once.
    cr_assert_geq (fake_queue_ask (fake, "PUTS"), 2);
    cr_assert_eq (fake_queue_ask (fake, "MAXSENDS"), fake_queue_ask (fake, "PUTS"));
    cr_assert_eq (fake_queue_ask (fake, "STORED"), 1);
    zk_client_status_t status;
    cr_assert_eq (zk_client_status (client, NULL, id, &status), 0);
    cr_assert_str_eq (status.state, "queued");
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}

Test (zk_client, no_reply_times_out_with_a_clear_error)
{
    fake_queue_t *fake = fake_queue_new ();
    fake_queue_ask (fake, "MODE silent");
    zk_client_config_t config = {.retry_ms = 100, .timeout_ms = 500};
    zk_client_t *client = fake_queue_client (fake, "orders", &config);
    int64_t start = zclock_mono ();
    for (int index = 0; index < 3; index++)
        s_put (client, "lost", NULL);
    cr_assert_eq (zk_client_flush (client, 5000), ZK_ETIMEDOUT);
    int64_t took = zclock_mono () - start;
    cr_assert (took >= 450 && took < 3000, "took %" PRId64 " ms", took);
    zk_client_stats_t stats;
    zk_client_stats (client, &stats);
    cr_assert_eq (stats.failed, 3);
    cr_assert_eq (stats.confirmed, 0);
    cr_assert (strstr (zk_client_last_error (client), "no reply"), "%s",
               zk_client_last_error (client));
    //  Retried, and bounded: about timeout / retry sends of each.
    int64_t sends = fake_queue_ask (fake, "MAXSENDS");
    cr_assert (sends >= 2 && sends <= 7, "%" PRId64 " sends", sends);
    //  The other calls time out the same way.
    cr_assert_eq (zk_client_ping (client), ZK_ETIMEDOUT);
    cr_assert_eq (zk_client_get (client, NULL, 1), ZK_ETIMEDOUT);
    zk_delivery_t *delivery;
    cr_assert_eq (zk_client_recv (client, 100, &delivery), ZK_ETIMEDOUT);
    cr_assert_null (delivery);
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}

Test (zk_client, no_server_at_all_times_out)
{
    //  An ipc path nobody listens on: never connected.
    char *dir = tu_tmpdir ();
    char *spec = zsys_sprintf ("queue>ipc://%s/none.sock/orders", dir);
    zk_client_config_t config = {.timeout_ms = 300};
    zk_client_t *client = zk_client_new (spec, &config);
    cr_assert_not_null (client);
    s_put (client, "nobody", NULL);
    int64_t start = zclock_mono ();
    cr_assert_eq (zk_client_flush (client, 5000), ZK_ETIMEDOUT);
    cr_assert_lt (zclock_mono () - start, 3000);
    //  A flush's own timeout ends it earlier.
    s_put (client, "nobody", NULL);
    cr_assert_eq (zk_client_flush (client, 50), ZK_ETIMEDOUT);
    cr_assert_eq (zk_client_unconfirmed (client), 1);
    zk_client_destroy (&client);
    free (spec);
    tu_rmdir (dir);
    free (dir);
}

Test (zk_client, an_err_reply_fails_the_put)
{
    fake_queue_t *fake = fake_queue_new ();
    fake_queue_ask (fake, "ERR 503");
    zk_client_t *client = fake_queue_client (fake, "orders", NULL);
    s_put (client, "full", NULL);
    s_put (client, "full", NULL);
    cr_assert_eq (zk_client_flush (client, 5000), ZK_EIO);
    cr_assert_str_eq (zk_client_last_error (client), "503 no space left on device");
    zk_client_stats_t stats;
    zk_client_stats (client, &stats);
    cr_assert_eq (stats.failed, 2);
    //  The next flush starts counting again.
    fake_queue_ask (fake, "ERR 0");
    s_put (client, "fine", NULL);
    cr_assert_eq (zk_client_flush (client, 5000), 0);
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}

Test (zk_client, gets_within_the_window_acks_and_nacks)
{
    fake_queue_t *fake = fake_queue_new ();
    zk_client_t *client = fake_queue_client (fake, "jobs", NULL);
    const char *texts[] = {"a", "b", "c"};
    for (int index = 0; index < 3; index++)
        s_put (client, texts[index], NULL);
    cr_assert_eq (zk_client_flush (client, 5000), 0);

    cr_assert_eq (zk_client_get (client, NULL, 2), 0);
    char *text;
    zk_delivery_t *first = s_take (client, &text);
    cr_assert_str_eq (text, "a");
    cr_assert_str_eq (first->queue, "jobs");
    cr_assert_eq (first->attempt, 1);
    free (text);
    zk_delivery_t *second = s_take (client, &text);
    cr_assert_str_eq (text, "b");
    free (text);
    //  The window is full: nothing more until an ack.
    zk_delivery_t *none;
    cr_assert_eq (zk_client_recv (client, 200, &none), ZK_ETIMEDOUT);
    cr_assert_eq (zk_client_ack (client, first, NULL), 0);
    zk_delivery_t *third = s_take (client, &text);
    cr_assert_str_eq (text, "c");
    free (text);
    //  An ack of what we no longer hold is ZK_ENOENT.
    cr_assert_eq (zk_client_ack (client, first, NULL), ZK_ENOENT);
    cr_assert (strstr (zk_client_last_error (client), "404"));
    //  A nack requeues at the front: delivered again, attempt 2.
    cr_assert_eq (zk_client_nack (client, second, false, "try again"), 0);
    zk_delivery_t *again = s_take (client, &text);
    cr_assert_str_eq (text, "b");
    cr_assert_eq (again->attempt, 2);
    free (text);
    //  A dead nack moves it to jobs.dead with its reason.
    cr_assert_eq (zk_client_nack (client, again, true, "poison"), 0);
    zmsg_t *result = s_body ("result text");
    cr_assert_eq (zk_client_ack (client, third, &result), 0);
    cr_assert_null (result);
    zk_client_status_t status;
    cr_assert_eq (zk_client_status (client, NULL, third->id, &status), 0);
    cr_assert_str_eq (status.state, "done");
    cr_assert_not_null (status.detail);
    char *detail = zframe_strdup (zmsg_first (status.detail));
    cr_assert_str_eq (detail, "result text");
    free (detail);
    zmsg_destroy (&status.detail);
    cr_assert_eq (zk_client_status (client, NULL, again->id, &status), 0);
    cr_assert_str_eq (status.state, "dead");
    zmsg_destroy (&status.detail);

    zmsg_t *lines;
    cr_assert_eq (zk_client_queue_stats (client, "", &lines), 0);
    cr_assert_eq (zk_client_stat (lines, "jobs", "queued"), 0);
    cr_assert_eq (zk_client_stat (lines, "jobs", "done"), 2);
    cr_assert_eq (zk_client_stat (lines, "jobs.dead", "queued"), 1);
    cr_assert_eq (zk_client_stat (lines, "nothing", "queued"), 0);
    zmsg_destroy (&lines);

    zmsg_t *entries;
    cr_assert_eq (zk_client_list (client, "jobs.dead", 10, &entries), 0);
    cr_assert_eq (zmsg_size (entries), 1);
    zk_client_entry_t entry;
    cr_assert_eq (zk_client_entry (zmsg_first (entries), &entry), 0);
    char id_text[ZK_ID_TEXT_SIZE];
    zk_id_format (again->id, id_text);
    cr_assert_str_eq (entry.id, id_text);
    cr_assert_eq (entry.attempts, 2);
    cr_assert_str_eq (entry.reason, "poison");
    zmsg_destroy (&entries);

    uint64_t moved;
    cr_assert_eq (zk_client_move (client, "jobs.dead", "jobs", NULL, &moved), 0);
    cr_assert_eq (moved, 1);
    zk_delivery_t *back = s_take (client, &text);
    cr_assert_str_eq (text, "b");
    cr_assert_eq (back->attempt, 1);
    free (text);
    cr_assert_eq (zk_client_ack (client, back, NULL), 0);
    cr_assert_eq (fake_queue_ask (fake, "COUNT jobs done"), 3);

    zk_delivery_destroy (&first);
    zk_delivery_destroy (&second);
    zk_delivery_destroy (&third);
    zk_delivery_destroy (&again);
    zk_delivery_destroy (&back);
    zk_delivery_destroy (&back);
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}

Test (zk_client, a_server_restart_is_survived)
{
    fake_queue_t *fake = fake_queue_new ();
    zk_client_config_t config = {.retry_ms = 200};
    zk_client_t *client = fake_queue_client (fake, "orders", &config);
    s_put (client, "held", NULL);
    cr_assert_eq (zk_client_flush (client, 5000), 0);
    cr_assert_eq (zk_client_get (client, NULL, 1), 0);
    zk_delivery_t *delivery = s_take (client, NULL);
    cr_assert_eq (delivery->attempt, 1);
    //  The server goes away and comes back: the lease ended with the
    //  connection; the client asks again by itself and gets it again.
    fake_queue_ask (fake, "RESTART");
    zk_delivery_t *again = s_take (client, NULL);
    cr_assert_eq (again->attempt, 2);
    //  The same MSGID, leased to us again: either ack settles it, once.
    cr_assert_eq (zk_client_ack (client, again, NULL), 0);
    cr_assert_eq (zk_client_ack (client, delivery, NULL), ZK_ENOENT);
    zk_client_stats_t stats;
    zk_client_stats (client, &stats);
    cr_assert_geq (stats.connects, 2);
    cr_assert_geq (stats.disconnects, 1);
    //  PUTs in flight across a restart are sent again and confirmed.
    fake_queue_ask (fake, "MODE hold");
    s_put (client, "across", NULL);
    cr_assert (fake_queue_wait (fake, 2, 5000, "STORED"));
    fake_queue_ask (fake, "RESTART");
    fake_queue_ask (fake, "MODE normal");
    cr_assert_eq (zk_client_flush (client, 10000), 0);
    cr_assert_eq (fake_queue_ask (fake, "STORED"), 2);
    zk_delivery_destroy (&delivery);
    zk_delivery_destroy (&again);
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}

Test (zk_client, fails_over_to_the_next_endpoint)
{
    fake_queue_t *fake = fake_queue_new ();
    char *dir = tu_tmpdir ();
    char *spec =
        zsys_sprintf ("queue>ipc://%s/none.sock,%s/orders", dir, fake_queue_endpoint (fake));
    zk_client_config_t config = {.failover_ms = 200};
    zk_client_t *client = zk_client_new (spec, &config);
    cr_assert_not_null (client);
    int64_t start = zclock_mono ();
    cr_assert_eq (zk_client_ping (client), 0);
    cr_assert_lt (zclock_mono () - start, 5000);
    cr_assert (zk_client_connected (client));
    zk_client_destroy (&client);
    free (spec);
    tu_rmdir (dir);
    free (dir);
    fake_queue_destroy (&fake);
}

Test (zk_client, hostile_server_messages_are_refused)
{
    fake_queue_t *fake = fake_queue_new ();
    zk_client_t *client = fake_queue_client (fake, "orders", NULL);
    cr_assert_eq (zk_client_ping (client), 0);
    fake_queue_ask (fake, "GARBAGE");
    //  A reply after the garbage: the client has read all of it by then.
    cr_assert_eq (zk_client_ping (client), 0);
    zk_client_stats_t stats;
    zk_client_stats (client, &stats);
    cr_assert_geq (stats.refused, 8, "refused %" PRIu64, stats.refused);
    cr_assert_eq (stats.deliveries, 0);
    cr_assert_eq (zk_client_ready (client), 0);
    //  Lines that are not LIST lines.
    const char *bad[] = {"", "x", "not-an-id 1 2 r", "0190a8c5-0000-7000-8000-000000000000 x 2",
                         "0190a8c5-0000-7000-8000-000000000000 1"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        zframe_t *frame = zframe_new (bad[index], strlen (bad[index]));
        zk_client_entry_t entry;
        cr_assert_eq (zk_client_entry (frame, &entry), ZK_EPROTO, "%s", bad[index]);
        zframe_destroy (&frame);
    }
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}

//  The event-loop API: async calls and callbacks, driven by a poll loop.
typedef struct {
    int confirmed;
    int failed;
} s_counts_t;

static void
s_count_done (zk_client_t *client, int rc, zmsg_t *reply, void *arg)
{
    s_counts_t *counts = arg;
    if (rc == 0)
        counts->confirmed++;
    else
        counts->failed++;
}

Test (zk_client, drives_from_an_event_loop)
{
    fake_queue_t *fake = fake_queue_new ();
    zk_client_t *client = fake_queue_client (fake, "loop", NULL);
    s_counts_t counts = {0};
    for (int index = 0; index < 20; index++) {
        zmsg_t *body = s_body ("async");
        cr_assert_eq (zk_client_put_async (client, NULL, &body, NULL, s_count_done, &counts), 0);
    }
    cr_assert_eq (zk_client_get_async (client, NULL, 5, NULL, NULL), 0);
    int64_t deadline = zclock_mono () + 5000;
    int taken = 0;
    while ((counts.confirmed < 20 || taken < 20) && zclock_mono () < deadline) {
        zmq_pollitem_t items[2];
        int count = zk_client_pollitems (client, items, 2);
        long timeout = zk_client_next_timeout (client);
        zmq_poll (items, count, timeout < 0 || timeout > 100 ? 100 : timeout);
        cr_assert_eq (zk_client_process (client), 0);
        zk_delivery_t *delivery;
        while (zk_client_recv (client, 0, &delivery) == 0) {
            taken++;
            cr_assert_eq (zk_client_ack_async (client, delivery, NULL, NULL, NULL), 0);
            zk_delivery_destroy (&delivery);
        }
    }
    cr_assert_eq (counts.confirmed, 20);
    cr_assert_eq (counts.failed, 0);
    cr_assert_eq (taken, 20);
    cr_assert_leq (fake_queue_ask (fake, "MAXLEASED"), 5);
    cr_assert (fake_queue_wait (fake, 20, 5000, "COUNT loop done"));
    zk_client_destroy (&client);
    fake_queue_destroy (&fake);
}

//  ===========================================================================
//  Many requests out at once, answered in any order (a bare ROUTER here)

#define S_MANY 3000  //  past the first sizes of the client's pending table

typedef struct {
    int calls, rc;
    size_t frames;  //  of the OK's reply after TAG
} s_answer_t;

static void
s_answer_done (zk_client_t *client, int rc, zmsg_t *reply, void *arg)
{
    s_answer_t *answer = arg;
    answer->calls++;
    answer->rc = rc;
    answer->frames = reply ? zmsg_size (reply) : SIZE_MAX;
}

//  The body of PUT index: 1..3 frames; every fifth one over 1 KiB.
static zmsg_t *
s_many_body (int index)
{
    zmsg_t *body = zmsg_new ();
    for (int frame = 0; frame <= index % 3; frame++) {
        size_t size = index % 5 == 0 ? 1500 + (size_t) frame : (size_t) ((index + frame) % 97);
        zframe_t *part = zframe_new (NULL, size);
        for (size_t byte = 0; byte < size; byte++)
            zframe_data (part)[byte] = (uint8_t) (index + frame + byte);
        zmsg_append (body, &part);
    }
    return body;
}

//  Send "ZKQ1 OK TAG [extra]" to peer.
static void
s_many_ok (zsock_t *router, zframe_t *peer, const char *tag, bool extra)
{
    zmsg_t *reply = zmsg_new ();
    zframe_t *identity = zframe_dup (peer);
    zmsg_append (reply, &identity);
    zmsg_addstr (reply, "ZKQ1");
    zmsg_addstr (reply, "OK");
    zmsg_addstr (reply, tag);
    if (extra)
        zmsg_addstr (reply, "extra");
    cr_assert_eq (zmsg_send (&reply, router), 0);
}

//  One turn of the client and the router: poll both (at most 100 ms).
static void
s_many_turn (zk_client_t *client, zsock_t *router)
{
    zmq_pollitem_t items[3];
    int count = zk_client_pollitems (client, items, 2);
    items[count++] = (zmq_pollitem_t){zsock_resolve (router), 0, ZMQ_POLLIN, 0};
    zmq_poll (items, count, 100);  //  bounded: the callers' loops end at their deadlines
    cr_assert_eq (zk_client_process (client), 0);
}

Test (zk_client, thousands_of_requests_answered_out_of_order)
{
    //  No high-water mark (set before bind: a listener copies the options),
    //  so the router never drops a reply.
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    cr_assert_not_null (router);
    zsock_set_rcvhwm (router, 0);
    zsock_set_sndhwm (router, 0);
    cr_assert_geq (zsock_bind (router, "tcp://127.0.0.1:*"), 0);
    char *spec = zsys_sprintf ("queue>%s/many", zsock_endpoint (router));
    zk_client_config_t config = {.timeout_ms = 60000, .retry_ms = 60000, .hwm = 100000};
    zk_client_t *client = zk_client_new (spec, &config);
    free (spec);
    cr_assert_not_null (client);
    static s_answer_t answers[S_MANY];
    memset (answers, 0, sizeof answers);
    for (int index = 0; index < S_MANY; index++) {
        zmsg_t *body = s_many_body (index);
        cr_assert_eq (
            zk_client_put_async (client, NULL, &body, NULL, s_answer_done, &answers[index]), 0);
    }
    cr_assert_eq (zk_client_unconfirmed (client), S_MANY);
    //  Take every PUT, in the order made, each with its body byte-exact.
    zframe_t *peer = NULL;
    static char *tags[S_MANY];
    int taken = 0;
    int64_t deadline = zclock_mono () + 30000;
    while (taken < S_MANY && zclock_mono () < deadline) {
        s_many_turn (client, router);
        zmsg_t *msg;
        while (taken < S_MANY && (msg = zmsg_recv_nowait (router))) {
            zframe_t *identity = zmsg_pop (msg);
            if (!peer)
                peer = zframe_dup (identity);
            zframe_destroy (&identity);
            char *signature = zmsg_popstr (msg), *command = zmsg_popstr (msg);
            tags[taken] = zmsg_popstr (msg);
            char *queue = zmsg_popstr (msg);
            zframe_t *id = zmsg_pop (msg);
            cr_assert_str_eq (signature, "ZKQ1");
            cr_assert_str_eq (command, "PUT");
            cr_assert_str_eq (queue, "many");
            cr_assert_eq (zframe_size (id), ZK_ID_SIZE);
            zmsg_t *expected = s_many_body (taken);
            cr_assert_eq (zmsg_size (msg), zmsg_size (expected), "PUT %d: frames", taken);
            for (zframe_t *got = zmsg_first (msg), *want = zmsg_first (expected); got;
                 got = zmsg_next (msg), want = zmsg_next (expected))
                cr_assert (zframe_eq (got, want), "PUT %d: a body frame differs", taken);
            zmsg_destroy (&expected);
            free (signature);
            free (command);
            free (queue);
            zframe_destroy (&id);
            zmsg_destroy (&msg);
            taken++;
        }
    }
    cr_assert_eq (taken, S_MANY, "only %d PUTs arrived", taken);
    zhashx_t *seen = zhashx_new ();
    for (int index = 0; index < S_MANY; index++)
        cr_assert_eq (zhashx_insert (seen, tags[index], tags), 0, "tag %s twice", tags[index]);
    zhashx_destroy (&seen);
    //  Answer in a scrambled order (7 is prime to S_MANY), every third OK
    //  with a frame after TAG; then a duplicate of one answered (stale) and
    //  a TAG never used: both are dropped.
    for (int step = 0; step < S_MANY; step++) {
        int index = (int) (((int64_t) step * 7 + 11) % S_MANY);
        s_many_ok (router, peer, tags[index], index % 3 == 0);
    }
    s_many_ok (router, peer, tags[5], false);
    s_many_ok (router, peer, "18446744073709551615", false);
    deadline = zclock_mono () + 30000;
    while (zk_client_unconfirmed (client) > 0 && zclock_mono () < deadline)
        s_many_turn (client, router);
    cr_assert_eq (zk_client_unconfirmed (client), 0, "%zu PUTs unanswered",
                  zk_client_unconfirmed (client));
    cr_assert_eq (zk_client_pending (client), 0);
    for (int index = 0; index < S_MANY; index++) {
        cr_assert_eq (answers[index].calls, 1, "PUT %d answered %d times", index,
                      answers[index].calls);
        cr_assert_eq (answers[index].rc, 0);
        cr_assert_eq (answers[index].frames, index % 3 == 0 ? 1u : 0u, "PUT %d: reply frames",
                      index);
    }
    zk_client_stats_t stats;
    zk_client_stats (client, &stats);
    cr_assert_eq (stats.confirmed, S_MANY);
    cr_assert_eq (stats.failed, 0);
    //  The client still works: one more round trip, on recycled records.
    zmsg_t *body = s_many_body (1);
    cr_assert_eq (zk_client_put_async (client, NULL, &body, NULL, s_answer_done, &answers[1]), 0);
    char *tag = NULL;
    deadline = zclock_mono () + 10000;
    while (!tag && zclock_mono () < deadline) {
        s_many_turn (client, router);
        zmsg_t *msg = zmsg_recv_nowait (router);
        if (msg) {
            zframe_t *identity = zmsg_pop (msg);
            zframe_destroy (&identity);
            free (zmsg_popstr (msg));
            free (zmsg_popstr (msg));
            tag = zmsg_popstr (msg);
            zmsg_destroy (&msg);
        }
    }
    cr_assert_not_null (tag);
    cr_assert_eq (atoll (tag), S_MANY + 1, "tags count on: %s", tag);
    s_many_ok (router, peer, tag, false);
    deadline = zclock_mono () + 10000;
    while (zk_client_unconfirmed (client) > 0 && zclock_mono () < deadline)
        s_many_turn (client, router);
    cr_assert_eq (answers[1].calls, 2);
    free (tag);
    for (int index = 0; index < S_MANY; index++)
        free (tags[index]);
    zframe_destroy (&peer);
    zk_client_destroy (&client);
    zsock_destroy (&router);
}
