/*  zk_caller — the reliable request-response client.

    Sends a request, waits for its reply with a timeout per attempt, sends
    it again a bounded number of times, to the next endpoint in turn, and
    never ends in a stuck socket state: every call returns, with the reply
    or with a clear error.

        zk_caller_config_t config = {.timeout_ms = 2000, .retries = 3};
        zk_caller_t *caller = zk_caller_new ("req>tcp://a:5555,tcp://b:5555", &config);
        zmsg_t *request = zmsg_new ();
        zmsg_addstr (request, "hello");
        zmsg_t *reply;
        int rc = zk_caller_call (caller, &request, &reply);
        //  0: reply holds the frames of the answer (its envelope first)
        //  ZK_ECOMMAND: reply is a final error reply (zk-status=error)
        //  ZK_ETIMEDOUT: no reply after every attempt (zk_caller_last_error says
        //  how many, over which endpoints)

    The wire (docs/protocol.md, "Reliable request-response"). Each request
    goes out on a DEALER as

        REQID  ""  ENVELOPE  BODY...

    REQID is the request's id (16 bytes, a UUIDv7), the same on every
    attempt; it sits before the empty delimiter, so ROUTERs, zkit-proxy and
    zkit-worker (and a plain REP socket) copy it back in front of the
    reply. ENVELOPE is a zkit envelope whose id is REQID and whose attempt
    is 1, 2, 3 ... A request that already starts with an envelope keeps it
    (its id becomes REQID; trace, content type and headers stay): only the
    attempt is set. Replies are matched by REQID: one for another request
    (an earlier call, answered late) is dropped and counted as stale; a
    late reply to an earlier attempt of this call is the reply.

    Endpoints. One DEALER per endpoint of the spec ("req>" or "dealer>",
    connect only), so every attempt goes to a known endpoint. ZMQ_IMMEDIATE
    is set: an endpoint without a connection cannot take a request, and the
    attempt goes to the next endpoint at once instead of waiting (an
    endpoint with nothing listening costs nothing). When no endpoint is
    connected, the attempt waits for the first that connects, within its
    timeout. libzmq reconnects in the background; ZMTP heartbeats (1 s,
    3 s timeout) drop the connection to a peer that went silent. A call
    starts on the endpoint of the last attempt sent (where the caller
    failed over to), each retry moves to the next endpoint.

    Retries. An attempt without its reply after timeout_ms is followed by
    the next one, up to retries further attempts. An error reply whose
    envelope has zk-retry=1 (the request was not completed: a worker lost
    by zkit-proxy --lb, a worker stopping) is retried without waiting for
    the timeout; any other reply is final. Backoff: a retry to an endpoint
    this call has not tried yet goes at once (so a dead first endpoint
    costs one timeout); a retry to one it has tried waits backoff_ms x
    2^(r-1) first (r = the retry's number), at most backoff_max_ms.

    Everything that arrives is checked: a message without the REQID frame
    (16 bytes) and the empty delimiter, with an envelope frame that does
    not decode, over max_size bytes or max_frames frames is dropped,
    counted (refused) and logged at a limited rate.

    Threads. A caller belongs to one thread, like a socket, and makes one
    call at a time. zk_caller_call waits (every wait bounded unless
    timeout_ms < 0) and returns ZK_EINTR when czmq's zsys_interrupted is
    set. An event loop instead starts a call with zk_caller_call_async,
    polls zk_caller_pollitems and runs zk_caller_process, whose callback
    reports the outcome. A callback may start the next call with
    zk_caller_call_async; it must not call zk_caller_call,
    zk_caller_process or zk_caller_destroy.                                */

#ifndef ZK_CALLER_H_INCLUDED
#define ZK_CALLER_H_INCLUDED

#include "zk_spec.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_CALLER_DEFAULT_TIMEOUT     5000                 //  ms per attempt
#define ZK_CALLER_DEFAULT_BACKOFF     100                  //  ms before the first backoff retry
#define ZK_CALLER_DEFAULT_BACKOFF_MAX 2000                 //  ms, longest backoff
#define ZK_CALLER_DEFAULT_MAX_SIZE    ZK_MAX_SIZE_DEFAULT  //  bytes of a reply (1 MiB)
#define ZK_CALLER_DEFAULT_MAX_FRAMES  1024                 //  frames of a reply
#define ZK_CALLER_MAX_RETRIES         100                  //  largest retries
#define ZK_CALLER_REQID_SIZE          16                   //  bytes of the REQID frame

//  A zeroed config means every default (and no retry).
typedef struct {
    int timeout_ms;      //  one attempt waits this long for its reply; 0 = 5 s; < 0 = no
                         //  limit (then only a zk-retry=1 reply starts another attempt)
    int retries;         //  further attempts after the first, 0..100; 0 = none
    int backoff_ms;      //  see above; 0 = 100 ms
    int backoff_max_ms;  //  0 = 2 s
    size_t max_size;     //  largest reply, bytes (all frames); 0 = 1 MiB
    int max_frames;      //  largest reply, frames (the REQID and delimiter included); 0 = 1024
    int hwm;             //  send/receive high-water mark; 0 = libzmq's default
} zk_caller_config_t;

typedef struct {
    uint64_t calls;          //  calls made
    uint64_t replies;        //  calls answered (success and final error replies)
    uint64_t attempts;       //  attempts started (the first of each call included)
    uint64_t retries;        //  attempts after the first
    uint64_t timeouts;       //  attempts that ended without a reply in time
    uint64_t stale;          //  well-formed replies to another request, dropped
    uint64_t failovers;      //  attempts sent to another endpoint than the one before
    uint64_t error_replies;  //  error replies (zk-status=error), retryable ones included
    uint64_t retryable;      //  of which zk-retry=1
    uint64_t refused;        //  malformed messages dropped
    uint64_t failed;         //  calls that ended without a reply (ZK_ETIMEDOUT)
} zk_caller_stats_t;

typedef struct _zk_caller_t zk_caller_t;

//  The outcome of an async call: rc as zk_caller_call returns it, and the
//  reply (0 or ZK_ECOMMAND) or NULL. The reply is the callback's: it owns
//  it and must destroy it (or keep it).
typedef void (zk_caller_fn) (zk_caller_t *caller, int rc, zmsg_t *reply, void *arg);

//  Check a spec and config without opening anything. 0, or ZK_EINVAL with
//  a one-line reason in reason (when not NULL). config may be NULL.
int zk_caller_validate (const char *spec, const zk_caller_config_t *config, char *reason,
                        size_t reason_size);

//  Connect one DEALER per endpoint of spec ("req>..." or "dealer>...",
//  connect endpoints only; no wait: connections come in the background).
//  NULL on a bad spec or config (logged) or a socket error. config may be
//  NULL (every default). Caller owns the result.
zk_caller_t *zk_caller_new (const char *spec, const zk_caller_config_t *config);
//  Close at once (linger 0); a call in flight is abandoned without its
//  callback. Safe on NULL.
void zk_caller_destroy (zk_caller_t **self_p);

/*  Waits: send *request_p (0..n frames, optionally an envelope first;
    taken and nulled) and wait for its reply, with the retries of the
    config. 0 with the reply's frames after the delimiter (its envelope
    included, as received) in *reply_p; ZK_ECOMMAND with a final error
    reply in *reply_p (a zk-retry=1 reply when no retry was left, too);
    ZK_ETIMEDOUT when every attempt ended without a reply; ZK_EINTR
    (zsys_interrupted; the call is abandoned); ZK_EINVAL for a request
    whose first frame looks like an envelope but does not decode;
    ZK_EBUSY while an async call is in flight; ZK_ESOCKET. *reply_p is NULL
    unless rc is 0 or ZK_ECOMMAND; caller owns it.                      */
int zk_caller_call (zk_caller_t *self, zmsg_t **request_p, zmsg_t **reply_p);

//  Start a call and return (never waits); done is called from
//  zk_caller_process with the outcome. 0, or ZK_EINVAL (as above; done is
//  not called). One call at a time: ZK_EBUSY while one is in flight.
int zk_caller_call_async (zk_caller_t *self, zmsg_t **request_p, zk_caller_fn *done, void *arg);
//  True while a call is in flight.
bool zk_caller_busy (zk_caller_t *self);
//  Give up the call in flight, if any, without its callback; a late reply
//  will be stale.
void zk_caller_abandon (zk_caller_t *self);

//  Fill items (room for zk_caller_endpoints () entries) with what to
//  poll; returns how many (one per endpoint).
int zk_caller_pollitems (zk_caller_t *self, zmq_pollitem_t *items, int size);
//  Handle what arrived, run the timers, send what waits; never waits. The
//  callback runs here. 0 or ZK_ESOCKET.
int zk_caller_process (zk_caller_t *self);
//  Milliseconds until zk_caller_process must run even if nothing
//  arrives; -1: no timer.
long zk_caller_next_timeout (zk_caller_t *self);

//  Number of endpoints, and endpoint index as written. Borrowed.
size_t zk_caller_endpoints (zk_caller_t *self);
const char *zk_caller_endpoint (zk_caller_t *self, size_t index);
//  Index of the endpoint the next call tries first.
size_t zk_caller_current (zk_caller_t *self);
//  Counters so far.
void zk_caller_stats (zk_caller_t *self, zk_caller_stats_t *stats);
//  Why the last call failed ("no reply after 4 attempts over tcp://a:5555,
//  tcp://b:5555"; an error reply's zk-error); "" after a success.
//  Borrowed.
const char *zk_caller_last_error (zk_caller_t *self);

#ifdef __cplusplus
}
#endif

#endif
