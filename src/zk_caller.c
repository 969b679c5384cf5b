/*  zk_caller — the reliable request-response client (see include/zk_caller.h).

    One call at a time, as a small state machine driven by
    zk_caller_process: SENDING (the attempt waits for an endpoint that can
    take it), WAITING (sent, the reply is due by the attempt's deadline),
    BACKOFF (the next attempt waits its turn). zk_caller_call is the async
    form plus a poll loop. Every endpoint has its own DEALER, read all the
    time, so replies that come late are drained (and counted stale) rather
    than left to pile up.                                                 */

#include "zk_classes.h"

#define S_SLICE_MS       200  //  longest single poll in a wait: interrupts are seen this fast
#define S_RECV_BATCH     100  //  messages read per endpoint per turn
#define S_MIN_MAXMSGSIZE 65536

typedef enum {
    S_IDLE,     //  no call
    S_SENDING,  //  the attempt waits for an endpoint that takes it
    S_WAITING,  //  sent; waiting for the reply
    S_BACKOFF,  //  waiting before the next attempt
} s_state_t;

typedef struct {
    uint8_t reqid[ZK_CALLER_REQID_SIZE];
    char reqid_text[ZK_ID_TEXT_SIZE];  //  for logs
    zk_envelope_t *envelope;           //  id = reqid; the attempt is set per attempt
    zframe_t *encoded;                 //  the envelope of the current attempt
    zmsg_t *body;                      //  the frames after the envelope
    unsigned attempt;                  //  attempts started
    unsigned sends;                    //  attempts sent
    size_t first;                      //  endpoint the current attempt tries first
    int sent_to;                       //  where the current attempt went; -1: nowhere yet
    uint64_t tried;                    //  endpoints an attempt went to, one bit each
    int64_t deadline;                  //  current attempt's, ms; -1: none
    int64_t wake_at;                   //  BACKOFF: when the next attempt starts
    zk_caller_fn *done;
    void *arg;
} s_call_t;

struct _zk_caller_t {
    zk_caller_config_t config;  //  defaults filled in
    zk_spec_t *spec;
    size_t size;  //  endpoints
    zsock_t *socks[ZK_SPEC_MAX_ENDPOINTS];
    size_t current;  //  the endpoint of the last attempt sent
    s_state_t state;
    s_call_t call;
    zk_caller_stats_t stats;
    //  zk_caller_call's outcome, filled by its callback
    bool sync_done;
    int sync_rc;
    zmsg_t *sync_reply;
    char last_error[1200];
};

//  ---------------------------------------------------------------------------
//  Configuration

//  Fill the defaults into *out and check the ranges. 0 or ZK_EINVAL.
static int
s_settle_config (const zk_caller_config_t *config, zk_caller_config_t *out, char *reason,
                 size_t size)
{
    zk_caller_config_t zero = {0};
    *out = config ? *config : zero;
    if (out->retries < 0 || out->retries > ZK_CALLER_MAX_RETRIES)
        return zk_engine_reason (reason, size, "retries: %d is not in 0..%d", out->retries,
                                 ZK_CALLER_MAX_RETRIES);
    if (out->backoff_ms < 0 || out->backoff_max_ms < 0)
        return zk_engine_reason (reason, size, "backoff: must not be negative");
    if (out->max_frames < 0 || out->hwm < 0)
        return zk_engine_reason (reason, size, "max_frames and hwm must not be negative");
    if (out->timeout_ms == 0)
        out->timeout_ms = ZK_CALLER_DEFAULT_TIMEOUT;
    if (out->backoff_ms == 0)
        out->backoff_ms = ZK_CALLER_DEFAULT_BACKOFF;
    if (out->backoff_max_ms == 0)
        out->backoff_max_ms = ZK_CALLER_DEFAULT_BACKOFF_MAX;
    if (out->backoff_max_ms < out->backoff_ms)
        out->backoff_max_ms = out->backoff_ms;
    if (out->max_size == 0)
        out->max_size = ZK_CALLER_DEFAULT_MAX_SIZE;
    if (out->max_frames == 0)
        out->max_frames = ZK_CALLER_DEFAULT_MAX_FRAMES;
    if (out->max_frames < 3)
        out->max_frames = 3;  //  REQID, delimiter, one frame
    return 0;
}

int
zk_caller_validate (const char *spec, const zk_caller_config_t *config, char *reason,
                    size_t reason_size)
{
    if (!spec || !*spec)
        return zk_engine_reason (reason, reason_size,
                                 "a req> or dealer> spec is required (req>tcp://HOST:PORT,...)");
    char why[256];
    if (zk_spec_validate (spec, why, sizeof why))
        return zk_engine_reason (reason, reason_size, "invalid socket spec '%s': %s", spec, why);
    zk_spec_t *parsed = zk_spec_new (spec);  //  valid: logs nothing
    if (!parsed)
        return zk_engine_reason (reason, reason_size, "invalid socket spec '%s'", spec);
    int rc = 0;
    int type = zk_spec_type (parsed);
    if (type != ZMQ_REQ && type != ZMQ_DEALER)
        rc = zk_engine_reason (reason, reason_size,
                               "the reliable client takes a req> or dealer> spec, not %s",
                               zk_spec_type_name (parsed));
    for (size_t index = 0; rc == 0 && index < zk_spec_size (parsed); index++)
        if (zk_spec_binds (parsed, index))
            rc = zk_engine_reason (reason, reason_size,
                                   "the reliable client only connects: '%s' binds (write "
                                   "%s>ENDPOINT,... and bind the server side)",
                                   zk_spec_endpoint (parsed, index), zk_spec_type_name (parsed));
    zk_spec_destroy (&parsed);
    zk_caller_config_t settled;
    if (rc == 0)
        rc = s_settle_config (config, &settled, reason, reason_size);
    return rc;
}

//  ---------------------------------------------------------------------------
//  Construction

static int
s_open_endpoint (zk_caller_t *self, size_t index)
{
    const char *endpoint = zk_spec_endpoint (self->spec, index);
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock) {
        zk_error ("caller: cannot create a DEALER socket: %s", zmq_strerror (errno));
        return ZK_ESOCKET;
    }
    self->socks[index] = sock;
    zsock_set_linger (sock, 0);
    //  A request goes only to an endpoint that is connected: the others
    //  cannot take it, and the attempt moves on at once.
    zsock_set_immediate (sock, 1);
    zsock_set_heartbeat_ivl (sock, ZK_SPEC_HEARTBEAT_IVL_MS);
    zsock_set_heartbeat_timeout (sock, ZK_SPEC_HEARTBEAT_TIMEOUT_MS);
    zsock_set_heartbeat_ttl (sock, ZK_SPEC_HEARTBEAT_TIMEOUT_MS);
    zsock_set_handshake_ivl (sock, ZK_SPEC_HANDSHAKE_MS);
    if (self->config.hwm > 0) {
        zsock_set_sndhwm (sock, self->config.hwm);
        zsock_set_rcvhwm (sock, self->config.hwm);
    }
    //  A peer that sends a bigger frame is disconnected before we hold it
    //  (the floor: handshakes must fit); whole replies are checked on receipt.
    int64_t max_size =
        self->config.max_size > (size_t) INT64_MAX ? INT64_MAX : (int64_t) self->config.max_size;
    if (max_size < S_MIN_MAXMSGSIZE)
        max_size = S_MIN_MAXMSGSIZE;
    zmq_setsockopt (zsock_resolve (sock), ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    if (zk_spec_secure (self->spec, sock, NULL) != 0)
        return ZK_ESOCKET;  //  CURVE keys (spec options): logged
    if (zsock_connect (sock, "%s", endpoint)) {
        zk_error ("caller: cannot connect to %s: %s", endpoint, zmq_strerror (errno));
        return ZK_EENDPOINT;
    }
    return 0;
}

zk_caller_t *
zk_caller_new (const char *spec, const zk_caller_config_t *config)
{
    char reason[512];
    if (zk_caller_validate (spec, config, reason, sizeof reason)) {
        zk_error ("caller: %s", reason);
        return NULL;
    }
    zk_caller_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    s_settle_config (config, &self->config, NULL, 0);
    self->spec = zk_spec_new (spec);
    if (!self->spec)
        goto out_fail;
    self->size = zk_spec_size (self->spec);
    for (size_t index = 0; index < self->size; index++)
        if (s_open_endpoint (self, index))
            goto out_fail;
    return self;
out_fail:
    zk_caller_destroy (&self);
    return NULL;
}

static void
s_call_clear (s_call_t *call)
{
    zk_envelope_destroy (&call->envelope);
    zframe_destroy (&call->encoded);
    zmsg_destroy (&call->body);
    memset (call, 0, sizeof *call);
}

void
zk_caller_destroy (zk_caller_t **self_p)
{
    assert (self_p);
    zk_caller_t *self = *self_p;
    if (!self)
        return;
    s_call_clear (&self->call);
    for (size_t index = 0; index < ZK_SPEC_MAX_ENDPOINTS; index++)
        zsock_destroy (&self->socks[index]);
    zmsg_destroy (&self->sync_reply);
    zk_spec_destroy (&self->spec);
    free (self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------
//  Attempts

//  The endpoints whose bit is set (or, with invert, clear) in mask,
//  comma-separated, into text.
static void
s_endpoint_list (zk_caller_t *self, uint64_t mask, bool invert, char *text, size_t size)
{
    size_t used = 0;
    text[0] = 0;
    for (size_t index = 0; index < self->size; index++) {
        bool set = (mask >> index) & 1;
        if (set == invert)
            continue;
        int wrote = snprintf (text + used, size - used, "%s%s", used ? ", " : "",
                              zk_spec_endpoint (self->spec, index));
        if (wrote < 0 || (size_t) wrote >= size - used) {
            if (size > 4)
                memcpy (text + size - 4, "...", 4);
            return;
        }
        used += (size_t) wrote;
    }
}

//  End the call: clear it first (the callback may start the next), then
//  report. The reply goes to the callback.
static void
s_finish (zk_caller_t *self, int rc, zmsg_t *reply)
{
    zk_caller_fn *done = self->call.done;
    void *arg = self->call.arg;
    if (reply)
        self->stats.replies++;
    if (rc == ZK_ETIMEDOUT)
        self->stats.failed++;
    s_call_clear (&self->call);
    self->state = S_IDLE;
    if (done)
        done (self, rc, reply, arg);
    else
        zmsg_destroy (&reply);
}

//  Send the current attempt to endpoint index without waiting. 0 sent, 1
//  when the endpoint cannot take it now (no connection, queue full), or
//  ZK_ESOCKET.
static int
s_send_to (zk_caller_t *self, size_t index)
{
    s_call_t *call = &self->call;
    void *handle = zsock_resolve (self->socks[index]);
    while (zmq_send (handle, call->reqid, ZK_CALLER_REQID_SIZE, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) {
        if (errno == EAGAIN)
            return 1;
        if (errno != EINTR)
            goto out_error;
    }
    //  The rest of a message the socket has begun to take never blocks.
    size_t frames = zmsg_size (call->body);
    if (zmq_send (handle, "", 0, ZMQ_SNDMORE) < 0
        || zmq_send (handle, zframe_data (call->encoded), zframe_size (call->encoded),
                     frames ? ZMQ_SNDMORE : 0)
               < 0)
        goto out_error;
    for (zframe_t *frame = zmsg_first (call->body); frame; frame = zmsg_next (call->body))
        if (zmq_send (handle, zframe_data (frame), zframe_size (frame), --frames ? ZMQ_SNDMORE : 0)
            < 0)
            goto out_error;
    return 0;
out_error:
    zk_error ("caller: send to %s failed: %s", zk_spec_endpoint (self->spec, index),
              zmq_strerror (errno));
    return ZK_ESOCKET;
}

//  Send the attempt to the first endpoint that takes it, trying them in
//  turn from call->first. 0 (sent, or nobody could take it: still
//  SENDING) or ZK_ESOCKET.
static int
s_try_send (zk_caller_t *self)
{
    s_call_t *call = &self->call;
    for (size_t step = 0; step < self->size; step++) {
        size_t index = (call->first + step) % self->size;
        int rc = s_send_to (self, index);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        call->sent_to = (int) index;
        call->tried |= (uint64_t) 1 << index;
        call->sends++;
        if (index != self->current) {
            self->stats.failovers++;
            zk_info ("caller: request %s attempt %u goes to %s", call->reqid_text, call->attempt,
                     zk_spec_endpoint (self->spec, index));
            self->current = index;
        }
        self->state = S_WAITING;
        return 0;
    }
    return 0;
}

static void
s_start_attempt (zk_caller_t *self)
{
    s_call_t *call = &self->call;
    call->attempt++;
    self->stats.attempts++;
    if (call->attempt > 1)
        self->stats.retries++;
    call->sent_to = -1;
    zframe_destroy (&call->encoded);
    zk_envelope_set_attempt (call->envelope, call->attempt);
    int rc = zk_envelope_encode (call->envelope, &call->encoded);
    if (rc) {
        snprintf (self->last_error, sizeof self->last_error, "cannot encode the envelope: %s",
                  zk_strerror (rc));
        s_finish (self, rc, NULL);
        return;
    }
    int timeout = self->config.timeout_ms;
    call->deadline = timeout < 0 ? -1 : zk_now_ms () + timeout;
    self->state = S_SENDING;
    rc = s_try_send (self);
    if (rc) {
        snprintf (self->last_error, sizeof self->last_error, "send failed: %s",
                  zmq_strerror (errno));
        s_finish (self, rc, NULL);
    }
}

//  The wait before retry number retry (1, 2, ...) to an endpoint this
//  call has tried: backoff_ms x 2^(retry-1), at most backoff_max_ms.
static int64_t
s_backoff (zk_caller_t *self, unsigned retry)
{
    int64_t delay = self->config.backoff_ms;
    for (unsigned step = 1; step < retry && delay < self->config.backoff_max_ms; step++)
        delay *= 2;
    return delay < self->config.backoff_max_ms ? delay : self->config.backoff_max_ms;
}

//  Start the next attempt on the next endpoint: at once when this call
//  has not tried it, after the backoff when it has.
static void
s_next_attempt (zk_caller_t *self)
{
    s_call_t *call = &self->call;
    size_t from = call->sent_to >= 0 ? (size_t) call->sent_to : call->first;
    call->first = (from + 1) % self->size;
    if ((call->tried >> call->first) & 1) {
        call->wake_at = zk_now_ms () + s_backoff (self, call->attempt);
        self->state = S_BACKOFF;
    }
    else
        s_start_attempt (self);
}

//  The current attempt ran out of time: retry, or fail the call.
static void
s_attempt_timed_out (zk_caller_t *self)
{
    s_call_t *call = &self->call;
    self->stats.timeouts++;
    double seconds = (double) self->config.timeout_ms / 1000;
    unsigned attempts = (unsigned) self->config.retries + 1;
    if (call->attempt < attempts) {
        zk_info ("caller: request %s: no reply from %s within %g s (attempt %u of %u)",
                 call->reqid_text,
                 call->sent_to >= 0 ? zk_spec_endpoint (self->spec, (size_t) call->sent_to)
                                    : "any endpoint (none connected)",
                 seconds, call->attempt, attempts);
        s_next_attempt (self);
        return;
    }
    char tried[512], untried[512];
    s_endpoint_list (self, call->tried, false, tried, sizeof tried);
    s_endpoint_list (self, call->tried, true, untried, sizeof untried);
    const char *plural = call->attempt == 1 ? "" : "s";
    if (call->sends == 0)
        snprintf (self->last_error, sizeof self->last_error,
                  "no connection to %s within %u attempt%s of %g s", untried, call->attempt, plural,
                  seconds);
    else if (untried[0])
        snprintf (self->last_error, sizeof self->last_error,
                  "no reply after %u attempt%s of %g s over %s (no connection to %s)",
                  call->attempt, plural, seconds, tried, untried);
    else
        snprintf (self->last_error, sizeof self->last_error,
                  "no reply after %u attempt%s of %g s over %s", call->attempt, plural, seconds,
                  tried);
    zk_debug ("caller: request %s: %s", call->reqid_text, self->last_error);
    s_finish (self, ZK_ETIMEDOUT, NULL);
}

//  ---------------------------------------------------------------------------
//  Replies

//  A reply to the call (frames after the delimiter) from endpoint index.
static void
s_handle_reply (zk_caller_t *self, zmsg_t *reply, size_t index)
{
    s_call_t *call = &self->call;
    zframe_t *first = zmsg_first (reply);
    zk_envelope_t *envelope = NULL;
    if (first && zk_envelope_is_envelope (zframe_data (first), zframe_size (first))) {
        int rc = zk_envelope_decode (zframe_data (first), zframe_size (first), &envelope);
        if (rc) {
            self->stats.refused++;
            zk_warn_limited ("caller: a reply from %s has an envelope that does not decode (%s): "
                             "dropped (%" PRIu64 " refused)",
                             zk_spec_endpoint (self->spec, index), zk_strerror (rc),
                             self->stats.refused);
            zmsg_destroy (&reply);
            return;
        }
    }
    const char *status = envelope ? zk_envelope_header (envelope, "zk-status") : NULL;
    if (!status || !streq (status, "error")) {
        zk_envelope_destroy (&envelope);
        self->last_error[0] = 0;
        s_finish (self, 0, reply);
        return;
    }
    self->stats.error_replies++;
    const char *error = zk_envelope_header (envelope, "zk-error");
    const char *retry = zk_envelope_header (envelope, "zk-retry");
    bool retryable = retry && streq (retry, "1");
    snprintf (self->last_error, sizeof self->last_error, "error reply from %s: %s",
              zk_spec_endpoint (self->spec, index), error ? error : "(no zk-error header)");
    zk_envelope_destroy (&envelope);
    if (retryable) {
        self->stats.retryable++;
        if (call->attempt < (unsigned) self->config.retries + 1) {
            zk_info ("caller: request %s: %s (attempt %u): retrying", call->reqid_text,
                     self->last_error, call->attempt);
            zmsg_destroy (&reply);
            s_next_attempt (self);
            return;
        }
    }
    s_finish (self, ZK_ECOMMAND, reply);
}

//  A malformed message: count it, say so (rate-limited).
static void
s_refuse (zk_caller_t *self, size_t index, const char *why)
{
    self->stats.refused++;
    zk_warn_limited ("caller: a message from %s %s: dropped (%" PRIu64 " refused)",
                     zk_spec_endpoint (self->spec, index), why, self->stats.refused);
}

/*  Read one message from endpoint index, frame by frame, holding only
    what is needed: the frames after the delimiter, and only when the
    REQID is the call's. Returns 1 when a message was read, 0 when none
    was waiting, ZK_ESOCKET.                                             */
static int
s_read_one (zk_caller_t *self, size_t index)
{
    void *handle = zsock_resolve (self->socks[index]);
    bool busy = self->state != S_IDLE;
    zmsg_t *reply = NULL;
    size_t frames = 0, total = 0;
    bool more = true, match = false;
    const char *bad = NULL;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&part);
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN && frames == 0)
                return 0;
            zk_error ("caller: receive from %s failed: %s", zk_spec_endpoint (self->spec, index),
                      zmq_strerror (errno));
            zmsg_destroy (&reply);
            return ZK_ESOCKET;
        }
        more = zmq_msg_more (&part);
        size_t size = zmq_msg_size (&part);
        frames++;
        total += size;
        if (bad)
            ;  //  read to the end, keep nothing
        else if (frames == 1) {
            if (size != ZK_CALLER_REQID_SIZE)
                bad = "does not start with a 16-byte request id";
            else
                match = busy && memcmp (zmq_msg_data (&part), self->call.reqid, size) == 0;
        }
        else if (frames == 2) {
            if (size != 0)
                bad = "has no empty delimiter after the request id";
            else if (match)
                reply = zmsg_new ();
        }
        else if (frames > (size_t) self->config.max_frames)
            bad = "has too many frames";
        else if (total > self->config.max_size)
            bad = "is larger than max_size";
        else if (reply && zmsg_addmem (reply, zmq_msg_data (&part), size))
            bad = "could not be stored (out of memory)";
        zmq_msg_close (&part);
    }
    if (!bad && frames < 2)
        bad = "has no empty delimiter after the request id";
    if (bad) {
        zmsg_destroy (&reply);
        s_refuse (self, index, bad);
        return 1;
    }
    if (!match) {
        self->stats.stale++;
        zk_debug ("caller: a stale reply from %s: dropped", zk_spec_endpoint (self->spec, index));
        return 1;
    }
    s_handle_reply (self, reply, index);
    return 1;
}

//  ---------------------------------------------------------------------------
//  Calls

int
zk_caller_call_async (zk_caller_t *self, zmsg_t **request_p, zk_caller_fn *done, void *arg)
{
    assert (self && request_p);
    zmsg_t *request = *request_p;
    *request_p = NULL;
    if (self->state != S_IDLE) {
        zmsg_destroy (&request);
        snprintf (self->last_error, sizeof self->last_error, "a call is already in flight");
        return ZK_EBUSY;
    }
    if (!request) {
        snprintf (self->last_error, sizeof self->last_error, "no request");
        return ZK_EINVAL;
    }
    s_call_t *call = &self->call;
    zframe_t *first = zmsg_first (request);
    if (first && zk_envelope_is_envelope (zframe_data (first), zframe_size (first))) {
        int rc = zk_envelope_decode (zframe_data (first), zframe_size (first), &call->envelope);
        if (rc) {
            snprintf (self->last_error, sizeof self->last_error,
                      "the request's first frame looks like an envelope but does not decode: %s",
                      zk_strerror (rc));
            zmsg_destroy (&request);
            return ZK_EINVAL;
        }
        zframe_t *frame = zmsg_pop (request);
        zframe_destroy (&frame);
    }
    else
        call->envelope = zk_envelope_new ();
    if (!call->envelope) {
        zmsg_destroy (&request);
        return ZK_ENOMEM;
    }
    memcpy (call->reqid, zk_envelope_id (call->envelope), ZK_CALLER_REQID_SIZE);
    zk_id_format (call->reqid, call->reqid_text);
    call->body = request;
    call->first = self->current;
    call->done = done;
    call->arg = arg;
    self->stats.calls++;
    self->last_error[0] = 0;
    s_start_attempt (self);
    return 0;
}

bool
zk_caller_busy (zk_caller_t *self)
{
    assert (self);
    return self->state != S_IDLE;
}

void
zk_caller_abandon (zk_caller_t *self)
{
    assert (self);
    s_call_clear (&self->call);
    self->state = S_IDLE;
}

int
zk_caller_pollitems (zk_caller_t *self, zmq_pollitem_t *items, int size)
{
    assert (self && items);
    assert (size >= (int) self->size);
    short events = ZMQ_POLLIN | (self->state == S_SENDING ? ZMQ_POLLOUT : 0);
    for (size_t index = 0; index < self->size; index++)
        items[index] = (zmq_pollitem_t){zsock_resolve (self->socks[index]), 0, events, 0};
    return (int) self->size;
}

int
zk_caller_process (zk_caller_t *self)
{
    assert (self);
    for (size_t index = 0; index < self->size; index++)
        for (int count = 0; count < S_RECV_BATCH; count++) {
            int rc = s_read_one (self, index);
            if (rc < 0)
                return rc;
            if (rc == 0)
                break;
        }
    int64_t now = zk_now_ms ();
    if (self->state == S_SENDING) {
        int rc = s_try_send (self);
        if (rc) {
            snprintf (self->last_error, sizeof self->last_error, "send failed: %s",
                      zmq_strerror (errno));
            s_finish (self, rc, NULL);
            return rc;
        }
    }
    if ((self->state == S_SENDING || self->state == S_WAITING) && self->call.deadline >= 0
        && now >= self->call.deadline)
        s_attempt_timed_out (self);
    else if (self->state == S_BACKOFF && now >= self->call.wake_at)
        s_start_attempt (self);
    return 0;
}

long
zk_caller_next_timeout (zk_caller_t *self)
{
    assert (self);
    int64_t at = -1;
    if (self->state == S_SENDING || self->state == S_WAITING)
        at = self->call.deadline;
    else if (self->state == S_BACKOFF)
        at = self->call.wake_at;
    if (at < 0)
        return -1;
    int64_t left = at - zk_now_ms ();
    return left < 0 ? 0 : left > LONG_MAX ? LONG_MAX : (long) left;
}

static void
s_sync_done (zk_caller_t *self, int rc, zmsg_t *reply, void *arg)
{
    (void) arg;
    self->sync_done = true;
    self->sync_rc = rc;
    self->sync_reply = reply;
}

int
zk_caller_call (zk_caller_t *self, zmsg_t **request_p, zmsg_t **reply_p)
{
    assert (self && request_p && reply_p);
    *reply_p = NULL;
    self->sync_done = false;
    self->sync_reply = NULL;
    int rc = zk_caller_call_async (self, request_p, s_sync_done, NULL);
    if (rc)
        return rc;
    zmq_pollitem_t items[ZK_SPEC_MAX_ENDPOINTS];
    while (!self->sync_done) {
        if (zsys_interrupted) {
            zk_caller_abandon (self);
            snprintf (self->last_error, sizeof self->last_error, "interrupted");
            return ZK_EINTR;
        }
        long timeout = zk_caller_next_timeout (self);
        if (timeout < 0 || timeout > S_SLICE_MS)
            timeout = S_SLICE_MS;
        int count = zk_caller_pollitems (self, items, ZK_SPEC_MAX_ENDPOINTS);
        if (zmq_poll (items, count, timeout) < 0 && errno != EINTR) {
            zk_error ("caller: poll failed: %s", zmq_strerror (errno));
            zk_caller_abandon (self);
            return ZK_ESOCKET;
        }
        rc = zk_caller_process (self);
        if (rc && !self->sync_done) {
            zk_caller_abandon (self);
            return rc;
        }
    }
    *reply_p = self->sync_reply;
    self->sync_reply = NULL;
    return self->sync_rc;
}

//  ---------------------------------------------------------------------------
//  Questions

size_t
zk_caller_endpoints (zk_caller_t *self)
{
    assert (self);
    return self->size;
}

const char *
zk_caller_endpoint (zk_caller_t *self, size_t index)
{
    assert (self);
    return index < self->size ? zk_spec_endpoint (self->spec, index) : NULL;
}

size_t
zk_caller_current (zk_caller_t *self)
{
    assert (self);
    return self->current;
}

void
zk_caller_stats (zk_caller_t *self, zk_caller_stats_t *stats)
{
    assert (self && stats);
    *stats = self->stats;
}

const char *
zk_caller_last_error (zk_caller_t *self)
{
    assert (self);
    return self->last_error;
}
