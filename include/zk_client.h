/*  zk_client — reliable request-response and queue client.

    This part is the queue client: the client side of ZKQ/1, the zkit-queue
    protocol (docs/protocol.md, "ZKQ/1"), for services and for zkit-cat and
    zkit-worker. (Reliable request-response over req/dealer specs is a later
    part of this class; zk_client_new refuses other specs until then.)

        zk_client_t *client = zk_client_new ("queue>tcp://127.0.0.1:5570/orders", NULL);
        zmsg_t *body = zmsg_new ();
        zmsg_addstr (body, "hello");
        zk_client_put (client, NULL, &body, NULL);      //  pipelined
        int rc = zk_client_flush (client, 5000);        //  0: every PUT is durable

        zk_client_get (client, NULL, 10);               //  take up to 10 at a time
        zk_delivery_t *delivery;
        if (zk_client_recv (client, 5000, &delivery) == 0) {
            ...                                         //  use delivery->body
            zk_client_ack (client, delivery, NULL);     //  done: the queue forgets it
            zk_delivery_destroy (&delivery);
        }

    Jobs and workflows. A message's MSGID is its job id. A consumer hands
    a delivery on to the next step with zk_client_fwd (done here, put
    there under the same MSGID, atomically on the server); consumers name
    themselves with the config's consumer (sent with GET); TRACE gives a
    job's path through the steps (zk_client_trace) and zk_client_job its
    state in the last one (what zkit-cat --status and --wait show):

        zk_client_job_t job;
        if (zk_client_job (client, NULL, id, &job) == 0) {
            ...                     //  job.state "done": job.detail holds the result
            zmsg_destroy (&job.detail);
        }

    The connection. One DEALER (ZMTP heartbeats as the protocol asks)
    connected to one endpoint of the spec at a time; with several endpoints
    the client moves to the next when it has had no connection for
    failover_ms. A socket monitor tells connects and disconnects: after a
    disconnect every request without its reply is sent again on the next
    connection, deliveries not yet taken are dropped (the server leases them
    again to someone else), and every connection gets the GET windows
    again.

    Requests. Every command carries a fresh TAG and waits for its reply;
    one without a reply after retry_ms is sent again with the same TAG (a
    PUT with the same MSGID, which the server's dedup makes safe); one
    without a reply after timeout_ms in all fails with ZK_ETIMEDOUT. ERR
    replies map to codes: 400 ZK_EPROTO, 404 ZK_ENOENT, 413 ZK_ETOOBIG,
    503 and 500 ZK_EIO (zk_client_last_error has the server's text).

    Threads. A client belongs to one thread, like a socket. Calls that wait
    (marked "waits") wait at most timeout_ms (bounded unless the config
    says otherwise), return ZK_EINTR when czmq's zsys_interrupted is set,
    and meanwhile handle everything else that arrives (confirms, other
    replies, deliveries). An event loop (an actor) instead polls
    zk_client_pollitems and calls zk_client_process, and uses the _async
    calls, whose callbacks run inside zk_client_process (or inside any
    waiting call). A callback may make new requests with the _async calls;
    it must not call a waiting one, zk_client_process or _destroy.

    Everything from the server is checked: bounded sizes and frame counts,
    exact MSGID sizes, valid queue names and numbers; anything else is
    dropped, counted (refused) and logged at a limited rate.               */

#ifndef ZK_CLIENT_H_INCLUDED
#define ZK_CLIENT_H_INCLUDED

#include "zk_envelope.h"
#include "zk_spec.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_CLIENT_DEFAULT_WINDOW   1000                 //  PUTs awaiting confirms
#define ZK_CLIENT_DEFAULT_TIMEOUT  10000                //  ms, one request in all
#define ZK_CLIENT_DEFAULT_RETRY    2000                 //  ms before a request is sent again
#define ZK_CLIENT_DEFAULT_FAILOVER 2000                 //  ms without a connection
#define ZK_CLIENT_DEFAULT_MAX_SIZE ZK_MAX_SIZE_DEFAULT  //  body bytes of a delivery (1 MiB)
#define ZK_CLIENT_MAX_WINDOW       10000                //  largest GET window (ZKQ/1)
#define ZK_CLIENT_MAX_FRAMES       64                   //  body frames (ZKQ/1)
#define ZK_CLIENT_CONSUMER_MAX     64                   //  bytes of a consumer name (GET)
#define ZK_CLIENT_MAX_STEPS        32                   //  steps of a job's path (TRACE)

//  A zeroed config means every default.
typedef struct {
    int window;            //  PUTs awaiting their confirm at most; 0 = 1000
    int timeout_ms;        //  a request unanswered this long in all fails; 0 = 10 s; < 0 = never
    int retry_ms;          //  send an unanswered request again after this; 0 = 2 s
    int failover_ms;       //  several endpoints: next one after this long unconnected; 0 = 2 s
    size_t max_size;       //  largest delivery body (bytes); bigger ones are dropped; 0 = 1 MiB
    int hwm;               //  send/receive high-water mark; 0 = libzmq's default
    const char *consumer;  //  sent with every GET: who takes the deliveries (1..64 bytes of
                           //  printable ASCII, no space: "HOST:PID"); NULL = none. Copied.
} zk_client_config_t;

typedef struct {
    uint64_t puts;         //  PUTs made
    uint64_t confirmed;    //  PUTs confirmed durable
    uint64_t failed;       //  PUTs that failed (ERR, or no confirm within timeout_ms)
    uint64_t resent;       //  requests sent again (no reply in time, or a new connection)
    uint64_t deliveries;   //  messages delivered (MSG)
    uint64_t dropped;      //  deliveries dropped at a disconnect before they were taken
    uint64_t refused;      //  server messages refused (malformed, too big, unknown TAG)
    uint64_t connects;     //  connections made (the first one included)
    uint64_t disconnects;  //  connections lost
} zk_client_stats_t;

//  One message delivered by a GET. The client's caller owns it.
typedef struct {
    char queue[ZK_SPEC_QUEUE_NAME_MAX + 1];  //  the queue it came from
    uint8_t id[ZK_ID_SIZE];                  //  its MSGID
    uint64_t attempt;                        //  1 on the first delivery
    zmsg_t *body;                            //  the body frames as put (1..64)
} zk_delivery_t;

//  What STATUS says about one message.
typedef struct {
    char state[16];    //  "queued", "running", "done", "dead" or "unknown"
    uint64_t attempt;  //  deliveries so far
    int64_t since_us;  //  last state change, microseconds since the Unix epoch
    zmsg_t *detail;    //  done: the RESULT frames; dead: the reason; else NULL. Caller owns it.
} zk_client_status_t;

//  One line of LIST.
typedef struct {
    char id[ZK_ID_TEXT_SIZE];  //  MSGID as text
    uint64_t attempts;
    int64_t since_us;
    char reason[512];  //  why it died (dead-letter queues), else ""; cut to fit
} zk_client_entry_t;

//  One step of a job's path (TRACE): the job in one queue.
typedef struct {
    char queue[ZK_SPEC_QUEUE_NAME_MAX + 1];
    char state[16];       //  as STATUS: "queued", "running", "done", "dead", ...
    uint64_t attempts;    //  deliveries in this queue
    int64_t accepted_us;  //  put (or forwarded) into it; microseconds since the epoch, 0: not yet
    int64_t started_us;   //  its last delivery began; 0: not yet
    int64_t finished_us;  //  acked, forwarded on or dead; 0: not yet
    char consumer[ZK_CLIENT_CONSUMER_MAX + 1];  //  who took it last; "" when unknown
} zk_client_step_t;

//  A job's path, first step first.
typedef struct {
    size_t count;
    zk_client_step_t steps[ZK_CLIENT_MAX_STEPS];
} zk_client_trace_t;

//  What a job is now (zk_client_job): its state in the last step of its path.
typedef struct {
    char state[16];                          //  "queued", "running", "done" or "dead"
    char queue[ZK_SPEC_QUEUE_NAME_MAX + 1];  //  the queue of its last step
    uint64_t attempt;                        //  deliveries there so far
    int64_t since_us;                        //  last change of state there
    zmsg_t *detail;          //  done: the result frames; dead: the reason; else NULL. Caller owns.
    zk_client_trace_t path;  //  every step so far
} zk_client_job_t;

typedef struct _zk_client_t zk_client_t;

//  Called when an async request is answered: rc 0 and reply = the frames
//  after "OK TAG" (borrowed during the call), or rc < 0 and reply NULL.
typedef void (zk_client_fn) (zk_client_t *client, int rc, zmsg_t *reply, void *arg);

//  Connect to the queue spec's server (no wait: the connection comes in the
//  background). NULL on a bad spec or config (logged). Caller owns it.
zk_client_t *zk_client_new (const char *spec, const zk_client_config_t *config);
//  Close at once (linger 0): what has no reply yet is abandoned, without
//  callbacks. Safe on NULL.
void zk_client_destroy (zk_client_t **self_p);

//  The spec's queue NAME, the default of every queue argument. Borrowed.
const char *zk_client_queue (zk_client_t *self);
//  True while connected to a server.
bool zk_client_connected (zk_client_t *self);
//  Counters so far.
void zk_client_stats (zk_client_t *self, zk_client_stats_t *stats);
//  Change timeout_ms (as in the config: 0 = the default, < 0 = never) for
//  the requests made from now on.
void zk_client_set_timeout (zk_client_t *self, int timeout_ms);
//  "CODE TEXT" of the last ERR reply ("503 no space left on device"), or
//  the reason of the last failure; "" if none. Borrowed.
const char *zk_client_last_error (zk_client_t *self);

//  ----------------------------------------------------------------- producing

//  Put body (1..64 frames) into queue (NULL: the spec's) under a fresh
//  MSGID (a UUIDv7, copied to id when not NULL). Pipelined: returns once
//  the PUT is on its way; waits only while window PUTs await confirms.
//  Takes ownership of *body_p (nulled). 0, ZK_EINVAL (bad queue or
//  frames), ZK_ETIMEDOUT (no room in time), ZK_EINTR.
int zk_client_put (zk_client_t *self, const char *queue, zmsg_t **body_p, uint8_t id[ZK_ID_SIZE]);
//  The same, and done (may be NULL) is called with the outcome. Never
//  waits: the window is the caller's business (zk_client_unconfirmed).
int zk_client_put_async (zk_client_t *self, const char *queue, zmsg_t **body_p,
                         uint8_t id[ZK_ID_SIZE], zk_client_fn *done, void *arg);
//  PUTs awaiting their confirm.
size_t zk_client_unconfirmed (zk_client_t *self);
//  Requests of any kind awaiting their reply.
size_t zk_client_pending (zk_client_t *self);
//  Waits until no PUT awaits its confirm, at most timeout_ms (< 0: as long
//  as the requests take). 0 when every PUT since the last flush was
//  confirmed; ZK_ETIMEDOUT when some still wait; else the first failure
//  (ZK_ETIMEDOUT for a PUT that got no confirm, ZK_EIO ... for an ERR).
//  Counts start again after it returns.
int zk_client_flush (zk_client_t *self, int timeout_ms);

//  ----------------------------------------------------------------- consuming

//  Waits for the server to take window (0..10000) as the number of
//  unacked messages of queue (NULL: the spec's) it may deliver to this
//  client; 0 stops deliveries. Remembered: sent again after a reconnect.
//  The config's consumer name, if any, goes with it (GET's third argument).
int zk_client_get (zk_client_t *self, const char *queue, int window);
int zk_client_get_async (zk_client_t *self, const char *queue, int window, zk_client_fn *done,
                         void *arg);
//  Waits at most timeout_ms (0: do not wait; < 0: no limit) for the next
//  delivery. 0 with *delivery_p (caller owns it), ZK_ETIMEDOUT, ZK_EINTR.
int zk_client_recv (zk_client_t *self, int timeout_ms, zk_delivery_t **delivery_p);
//  Deliveries received and not yet taken by zk_client_recv.
size_t zk_client_ready (zk_client_t *self);
void zk_delivery_destroy (zk_delivery_t **self_p);

//  Waits for the server to record delivery as done, with *result_p as its
//  result (may be NULL; taken and nulled). 0; ZK_ENOENT when this client
//  no longer holds it (the lease passed to another consumer); ...
int zk_client_ack (zk_client_t *self, const zk_delivery_t *delivery, zmsg_t **result_p);
int zk_client_ack_async (zk_client_t *self, const zk_delivery_t *delivery, zmsg_t **result_p,
                         zk_client_fn *done, void *arg);
//  Waits for the server to take delivery back: dead false, to deliver it
//  again (or to dead-letter it after --max-deliver attempts); dead true,
//  into QUEUE.dead now. reason (may be NULL) is kept with a dead letter.
int zk_client_nack (zk_client_t *self, const zk_delivery_t *delivery, bool dead,
                    const char *reason);
int zk_client_nack_async (zk_client_t *self, const zk_delivery_t *delivery, bool dead,
                          const char *reason, zk_client_fn *done, void *arg);

//  Waits for the server to record delivery as done AND to put *body_p
//  (1..64 frames; taken and nulled) into queue to (not delivery's own)
//  under the same MSGID, as one durable step (FWD): a workflow's hand-over
//  from one step to the next. 0; ZK_ENOENT when this client no longer
//  holds it; ZK_EINVAL for a bad queue or body; else as zk_client_put.
int zk_client_fwd (zk_client_t *self, const zk_delivery_t *delivery, const char *to,
                   zmsg_t **body_p);
int zk_client_fwd_async (zk_client_t *self, const zk_delivery_t *delivery, const char *to,
                         zmsg_t **body_p, zk_client_fn *done, void *arg);

//  ----------------------------------------------------------------- inspecting

//  Waits for the STATUS of message id in queue (NULL: the spec's).
int zk_client_status (zk_client_t *self, const char *queue, const uint8_t id[ZK_ID_SIZE],
                      zk_client_status_t *status);
//  Waits for TRACE of message id from queue (NULL: the spec's): the job's
//  path through the queues it was forwarded along, into *trace (count 0:
//  the id is unknown there). ZK_EPROTO for a reply that does not parse.
int zk_client_trace (zk_client_t *self, const char *queue, const uint8_t id[ZK_ID_SIZE],
                     zk_client_trace_t *trace);
//  Parse one TRACE line, "QUEUE STATE ATTEMPTS ACCEPTED STARTED FINISHED
//  CONSUMER". 0 or ZK_EPROTO.
int zk_client_step (zframe_t *frame, zk_client_step_t *step);
//  Waits for a job's state: TRACE from queue (NULL: the spec's), then
//  STATUS in the last step of its path (for the result or the reason),
//  asked again if it moved on meanwhile. 0 with *job (free job->detail
//  with zmsg_destroy); ZK_ENOENT when the id is unknown in queue.
int zk_client_job (zk_client_t *self, const char *queue, const uint8_t id[ZK_ID_SIZE],
                   zk_client_job_t *job);
//  Waits for STATS of queue (NULL: the spec's; "": every queue): one frame
//  per queue, "QUEUE name=value ...", into *lines_p (caller owns it).
int zk_client_queue_stats (zk_client_t *self, const char *queue, zmsg_t **lines_p);
//  The value of name on queue's line of a STATS reply; 0 if absent (a
//  queue without a line is empty).
uint64_t zk_client_stat (zmsg_t *lines, const char *queue, const char *name);
//  Waits for LIST of queue (NULL: the spec's): up to max lines, oldest
//  first, into *entries_p (caller owns it; read with zk_client_entry).
int zk_client_list (zk_client_t *self, const char *queue, size_t max, zmsg_t **entries_p);
//  Parse one LIST line. 0 or ZK_EPROTO.
int zk_client_entry (zframe_t *frame, zk_client_entry_t *entry);
//  Waits for MOVE of message id (NULL: every queued one) from queue from to
//  queue to; *count_p (may be NULL) gets how many moved.
int zk_client_move (zk_client_t *self, const char *from, const char *to,
                    const uint8_t id[ZK_ID_SIZE], uint64_t *count_p);
//  Waits for PING's reply.
int zk_client_ping (zk_client_t *self);

//  Any command: waits for the reply to "ZKQ1 COMMAND TAG ARGS..." (*args_p
//  taken and nulled; may be NULL); 0 with the frames after "OK TAG" in
//  *reply_p (caller owns; may be NULL), or the error.
int zk_client_request (zk_client_t *self, const char *command, zmsg_t **args_p, zmsg_t **reply_p);
int zk_client_request_async (zk_client_t *self, const char *command, zmsg_t **args_p,
                             zk_client_fn *done, void *arg);

//  ----------------------------------------------------------------- event loops

//  Fill items (room for 2) with what to poll; returns how many.
int zk_client_pollitems (zk_client_t *self, zmq_pollitem_t *items, int size);
//  Handle what arrived, send what waits, run the timers; never waits.
//  Callbacks run here. 0 or ZK_ESOCKET.
int zk_client_process (zk_client_t *self);
//  Milliseconds until zk_client_process must run even if nothing arrives;
//  -1: no timer.
long zk_client_next_timeout (zk_client_t *self);

#ifdef __cplusplus
}
#endif

#endif
