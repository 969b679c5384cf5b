/*  zk_forwarder — the fan-out device.

    A czmq actor between publishers (FRONTEND, xsub or sub) and
    subscribers (BACKEND, xpub or pub). Messages flow downstream
    byte-exact; with xsub/xpub, subscriptions flow upstream so publishers
    filter at the source. The backend xpub is verbose: every subscribe
    is passed upstream, so a publisher (or zkit-cat --wait-subscribers)
    can count them.                                                      */

#ifndef ZK_FORWARDER_H_INCLUDED
#define ZK_FORWARDER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *frontend;   //  xsub or sub spec (publishers), required
    const char *backend;    //  xpub or pub spec (subscribers), required
    const char *capture;    //  copy of every message, or NULL
    const char *control;    //  PAUSE/RESUME/TERMINATE/STATISTICS, or NULL
    size_t max_size;        //  largest message in bytes; 0 = 1 MiB; ZK_MAX_SIZE_UNLIMITED
    int hwm;                //  0 = libzmq's default
    int linger_ms;          //  <0 = default 1000
    int stats_interval_ms;  //  0 = no periodic report
    int handshake_ms;       //  drop a peer whose ZMTP handshake takes longer; 0 = 5000
    size_t max_topic;       //  longest subscription topic passed upstream; 0 = 256
} zk_forwarder_config_t;

typedef struct {
    uint64_t messages;  //  messages received from publishers and forwarded
    uint64_t bytes;
    uint64_t subscribes;  //  subscribe messages passed upstream
    uint64_t unsubscribes;
    uint64_t refused;  //  refused for max_size
    uint64_t refused_bytes;
    uint64_t captured;
    uint64_t refused_topics;  //  subscriptions longer than max_topic, not passed upstream
} zk_forwarder_stats_t;

typedef struct _zk_forwarder_t zk_forwarder_t;

//  Check a configuration without starting anything. 0, or ZK_EINVAL
//  with a one-line reason in reason (when not NULL).
int zk_forwarder_validate (const zk_forwarder_config_t *config, char *reason, size_t reason_size);

//  Start a forwarder. NULL on a bad spec, a wrong type or a failed
//  bind/connect (logged). Caller owns the result.
zk_forwarder_t *zk_forwarder_new (const zk_forwarder_config_t *config);
void zk_forwarder_destroy (zk_forwarder_t **self_p);
int zk_forwarder_pause (zk_forwarder_t *self);
int zk_forwarder_resume (zk_forwarder_t *self);
int zk_forwarder_stats (zk_forwarder_t *self, zk_forwarder_stats_t *stats);
//  Readable with "TERMINATED" when a control socket stopped it. Borrowed.
zactor_t *zk_forwarder_actor (zk_forwarder_t *self);

#ifdef __cplusplus
}
#endif

#endif
