/*  zk_worker — turns a shell command into a service on any channel.

    For each message received on the input socket (pull, sub, rep,
    dealer, router) the worker runs COMMAND with the message body on its
    stdin; COMMAND's stdout is the reply (rep, router, dealer) or is sent
    on the output socket (push, pub, dealer). Up to `jobs` commands run
    at once; the worker stops taking messages while all are busy.

    A queue input (queue>ENDPOINT/NAME, a zkit-queue) holds at most `jobs`
    messages at once (the GET window); a message is acked when COMMAND
    exits 0 (its stdout is the result) and nacked (requeued, the failure
    as the reason) otherwise, so the queue delivers it again, and after
    its --max-deliver attempts moves it to NAME.dead. A queue output puts
    COMMAND's stdout into that queue; a queue input is then acked only
    once the put is confirmed durable. When the input and the output are
    queues of the same server (the same endpoints), the two are one step
    instead: FWD acks the input and puts the output under the same MSGID
    (the job id) atomically.

    A command that exits non-zero, dies of a signal or runs past the
    timeout is a failure: a requester gets an error reply (an envelope
    frame with header zk-status=error and zk-error=REASON, then the
    command's stdout), never silence; on one-way inputs nothing is sent,
    the failure is logged and counted.

    In lines mode one long-running command per job slot is kept: each
    message is written to it as one line and the next line it prints is
    the reply (it must print exactly one line per input line and flush).
    If it dies it is restarted and the requests it held get error replies.

    A message that carries a zkit envelope has it removed before the body
    goes to COMMAND; the reply carries the same envelope back.

    With `lb` the input is a DEALER connected to a `zkit-proxy --lb`
    backend, speaking ZKW/1 (docs/protocol.md): READY with its free job
    slots, REQUEST/REPLY with the client's routing, HEARTBEAT both ways
    (a proxy silent for 3 intervals: the DEALER is reopened and READY
    sent again), DISCONNECT at stop.

    The reply cache (reply_cache > 0; rep, router, replying dealer and lb
    inputs) keeps recent success replies by the request envelope's id: a
    request whose id is cached is answered without running COMMAND, one
    whose id is running waits for that run's reply. A request without an
    envelope is never cached.                                            */

#ifndef ZK_WORKER_H_INCLUDED
#define ZK_WORKER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_WORKER_MAX_JOBS 1024

typedef struct {
    const char *input;             //  spec: pull, sub, rep, dealer, router or queue; required
    const char *output;            //  spec: push, pub, dealer or queue; or NULL
    char *const *argv;             //  COMMAND and its arguments, NULL-terminated; copied
    const char *const *subscribe;  //  sub input: topics, NULL-terminated; NULL = everything
    int jobs;                      //  commands at once; 0 = 1
    int timeout_ms;                //  kill a command after this; 0 = never
    bool lines;                    //  lines mode (see above)
    size_t max_output;             //  stdout bytes kept per message; 0 = 16 MiB; more is a failure
    size_t max_size;               //  largest input message; 0 = 1 MiB; ZK_MAX_SIZE_UNLIMITED
    int hwm;                       //  0 = libzmq's default
    int linger_ms;                 //  <0 = default 1000
    int stats_interval_ms;         //  0 = no periodic report
    const char *name;              //  queue input: consumer name sent with GET (1..64 bytes
                                   //  of printable ASCII, no space); NULL = HOSTNAME:PID
    bool lb;                       //  ZKW/1 to a zkit-proxy --lb: input is dealer>ENDPOINT
    int heartbeat_ms;              //  lb: heartbeat interval, 10 .. 3600000; 0 = 1000
    int reply_cache;               //  replies kept by request id; 0 = no cache
    size_t reply_cache_bytes;      //  their bytes at most; 0 = 64 MiB
    int reply_ttl_ms;              //  a cached reply is dropped after this; 0 = 300 s
    int handshake_ms;              //  drop a peer whose ZMTP handshake takes longer; 0 = 5000
} zk_worker_config_t;

typedef struct {
    uint64_t received;       //  messages taken from the input
    uint64_t succeeded;      //  commands (or lines) that exited 0
    uint64_t failed;         //  non-zero exit, signal, too much output, dead coprocess
    uint64_t timed_out;      //  killed at the timeout (also counted in failed)
    uint64_t replied;        //  replies sent (success and error)
    uint64_t sent;           //  messages sent on the output socket
    uint64_t refused;        //  input messages refused (too big, newline in lines mode)
    uint64_t restarts;       //  lines mode: coprocesses started again after one ended
    uint64_t acked;          //  queue input: messages acked (the server confirmed)
    uint64_t nacked;         //  queue input: messages handed back (failure, refusal)
    uint64_t output_failed;  //  queue output: puts not confirmed
    uint64_t running;        //  requests running now (a gauge)
    uint64_t cache_hits;     //  requests answered from the reply cache
    uint64_t joined;         //  requests that waited for the same id's run
    uint64_t reconnects;     //  lb: DEALER reopened after a silent proxy
} zk_worker_stats_t;

typedef struct _zk_worker_t zk_worker_t;

//  Check a configuration without starting anything: specs, types, the
//  input/output combination, a command. 0, or ZK_EINVAL with a one-line
//  reason in reason (when not NULL).
int zk_worker_validate (const zk_worker_config_t *config, char *reason, size_t reason_size);

//  Start a worker. NULL on a bad spec, a wrong type, an empty command or
//  a failed bind/connect (logged). Caller owns the result.
zk_worker_t *zk_worker_new (const zk_worker_config_t *config);
//  Stop taking messages, kill running commands, hand over replies
//  (bounded by linger), close.
void zk_worker_destroy (zk_worker_t **self_p);
int zk_worker_stats (zk_worker_t *self, zk_worker_stats_t *stats);
//  The engine's actor, to poll. Borrowed.
zactor_t *zk_worker_actor (zk_worker_t *self);

#ifdef __cplusplus
}
#endif

#endif
