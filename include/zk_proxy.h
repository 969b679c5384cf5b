/*  zk_proxy — the stateless point-to-point and request-response device.

    A czmq actor that moves messages from FRONTEND to BACKEND (and replies
    back, for bidirectional pairs), byte-exact, frame by frame, never
    decoding them:

        pull@ → push@       streamer: one-way / point-to-point pipeline
        router@ → dealer@   request-response queue (load-balancing)
        xsub@ ↔ xpub@       a forwarder (zk_forwarder is the dedicated one)
        dealer/pair ↔ dealer/pair/push/pub ...

    Pairs that cannot work (pub as frontend, pull as backend, a router
    frontend without a dealer backend ...) are refused by zk_proxy_new
    with a logged reason.

    With lb set (zkit-proxy --lb) it is a load balancer by readiness:
    clients (req, dealer) on a router frontend, workers on a router
    backend speaking ZKW/1 (docs/protocol.md section 10): each worker
    announces free slots (credit), gets requests only while it has one,
    least recently used first, and is heart-beaten; a worker silent for
    ZK_PROXY_LB_LIVENESS heartbeats is dropped and each request it held is
    answered at once with an error reply that says "retry" (zk-retry=1).

    Messages larger than max_size (all frames together) are refused and
    counted; the proxy keeps serving. When the other side cannot take a
    message (high-water mark, no peer) the proxy stops reading that side
    until it can: back-pressure, not drops (pub/xpub backends drop by
    design of pub/sub).                                                 */

#ifndef ZK_PROXY_H_INCLUDED
#define ZK_PROXY_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_PROXY_LB_MAX_CREDIT    1024  //  job slots one worker may announce in all
#define ZK_PROXY_LB_LIVENESS      3     //  heartbeats a worker may miss before it is dropped
#define ZK_PROXY_LB_HEARTBEAT_MIN 10    //  heartbeat_ms range (0 = the default, 1000)
#define ZK_PROXY_LB_HEARTBEAT_MAX 3600000

typedef struct {
    const char *frontend;  //  socket spec, required
    const char *backend;   //  socket spec, required
    const char *capture;   //  spec of a socket that gets a copy of every message, or NULL
    const char *control;   //  spec of a control socket (PAUSE/RESUME/TERMINATE/STATISTICS), or NULL
    size_t max_size;       //  largest message in bytes (all frames); 0 = 1 MiB (the
                           //  default, ZK_MAX_SIZE_DEFAULT); ZK_MAX_SIZE_UNLIMITED: none
    int hwm;               //  send and receive high-water mark; 0 = libzmq's default (1000)
    int linger_ms;         //  how long to hand over queued messages on stop; <0 = default 1000
    int stats_interval_ms;  //  period of the one-line stats report (notice level); 0 = none
    bool lb;                //  load balancer by readiness (ZKW/1, see below): router@ router@
    int heartbeat_ms;       //  lb: heartbeat interval, as the workers'; 0 = 1000
    int handshake_ms;       //  drop a peer whose ZMTP handshake takes longer; 0 = 5000
} zk_proxy_config_t;

typedef struct {
    uint64_t frontend_in;  //  messages received on the frontend and forwarded
    uint64_t frontend_in_bytes;
    uint64_t backend_in;  //  messages received on the backend and forwarded back
    uint64_t backend_in_bytes;
    uint64_t refused;  //  messages refused for max_size (either direction)
    uint64_t refused_bytes;
    uint64_t captured;  //  copies sent on the capture socket
    //  lb only (0 otherwise):
    uint64_t workers;    //  workers known now (a gauge)
    uint64_t in_flight;  //  requests held by workers now (a gauge)
    uint64_t requests;   //  requests sent to workers
    uint64_t replies;    //  replies from workers forwarded to clients
    uint64_t lost;       //  requests failed back (worker lost or stopping, proxy stopping)
    uint64_t unknown;    //  messages from workers the proxy did not know (answered DISCONNECT)
} zk_proxy_stats_t;

typedef struct _zk_proxy_t zk_proxy_t;

//  Check a configuration without starting anything: specs well-formed,
//  types a proxy can use, a pair that can work. 0, or ZK_EINVAL with a
//  one-line reason in reason (when not NULL).
int zk_proxy_validate (const zk_proxy_config_t *config, char *reason, size_t reason_size);

//  Start a proxy. NULL if a spec is invalid, a pair cannot work or a
//  bind/connect failed (reason logged). Caller owns the result.
zk_proxy_t *zk_proxy_new (const zk_proxy_config_t *config);
//  Stop it: hand over queued messages (bounded by linger), close sockets.
void zk_proxy_destroy (zk_proxy_t **self_p);

//  Stop/restart forwarding (messages wait in the sockets meanwhile).
int zk_proxy_pause (zk_proxy_t *self);
int zk_proxy_resume (zk_proxy_t *self);
//  Current counters.
int zk_proxy_stats (zk_proxy_t *self, zk_proxy_stats_t *stats);

//  The engine's actor, to poll: it becomes readable with "TERMINATED"
//  when a control socket asked the proxy to stop. Borrowed.
zactor_t *zk_proxy_actor (zk_proxy_t *self);

#ifdef __cplusplus
}
#endif

#endif
