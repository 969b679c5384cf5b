//  zk_spec — socket specs: "TYPE@ENDPOINT" binds, "TYPE>ENDPOINT" connects.
//
//    czmq's convention, shared by every zkit binary and by the library:
//
//        push>tcp://10.0.0.5:5558,ipc:///run/a.sock
//        pull@tcp://*:5557
//        router@tcp://127.0.0.1:*          (ephemeral port; see zk_spec_resolved)
//
//    TYPE is one of pub sub xpub xsub push pull req rep dealer router pair.
//    Endpoints are comma-separated; one may override the direction with its
//    own leading '@' or '>' ("pull@tcp://*:1,>tcp://h:2"). Each endpoint is
//    TRANSPORT://ADDRESS with a transport libzmq knows; a tcp endpoint that
//    connects needs a numeric port.
//
//    A queue spec names queue NAME on a zkit-queue server (docs/protocol.md,
//    the ZKQ/1 protocol); it only connects, a DEALER underneath:
//
//        queue>tcp://127.0.0.1:5570/orders
//        queue>tcp://a:5570,tcp://b:5570/orders    (one NAME for every endpoint:
//                                                   the client fails over)
//        queue>ipc:///run/zkq.sock/orders.dead     (NAME follows the last '/')
//
//    NAME is 1..128 bytes of [A-Za-z0-9._-], not starting with '.', without
//    "..". Its type is ZK_SPEC_QUEUE, which is not a libzmq type: code that
//    expects a list of socket types refuses it by itself.

#ifndef ZK_SPEC_H_INCLUDED
#define ZK_SPEC_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_SPEC_MAX_TEXT             4096  //  longest spec accepted
#define ZK_SPEC_MAX_ENDPOINTS        64    //  endpoints in one spec
#define ZK_SPEC_QUEUE                1000  //  zk_spec_type of a queue spec (not a libzmq type)
#define ZK_SPEC_QUEUE_NAME_MAX       128   //  bytes of a queue name
#define ZK_SPEC_HEARTBEAT_IVL_MS     1000  //  queue specs: ZMTP heartbeat interval
#define ZK_SPEC_HEARTBEAT_TIMEOUT_MS 3000  //  and timeout / TTL (ZKQ/1)

typedef struct _zk_spec_t zk_spec_t;

//  Parse a spec. NULL if it is malformed; the reason is logged as
//  "invalid socket spec 'TEXT': REASON". Caller owns the result.
zk_spec_t *zk_spec_new (const char *text);
void zk_spec_destroy (zk_spec_t **self_p);

//  Check a spec without logging. 0 if valid; else ZK_EINVAL and, when
//  reason is not NULL, a one-line reason written into it.
int zk_spec_validate (const char *text, char *reason, size_t reason_size);

//  The text as given. Borrowed.
const char *zk_spec_text (const zk_spec_t *self);
//  libzmq socket type (ZMQ_PUSH ...), or ZK_SPEC_QUEUE for a queue spec.
int zk_spec_type (const zk_spec_t *self);
//  Type name as written in specs ("push", "queue"). Static string.
const char *zk_spec_type_name (const zk_spec_t *self);
//  Number of endpoints (at least 1).
size_t zk_spec_size (const zk_spec_t *self);
//  Endpoint i without its direction prefix. Borrowed.
const char *zk_spec_endpoint (const zk_spec_t *self, size_t index);
//  True if endpoint i binds, false if it connects.
bool zk_spec_binds (const zk_spec_t *self, size_t index);
//  After zk_spec_attach: the endpoint actually bound (ephemeral ports
//  resolved, e.g. "tcp://127.0.0.1:43817"), or the connect endpoint.
//  Before attach: the endpoint as written. Borrowed.
const char *zk_spec_resolved (const zk_spec_t *self, size_t index);

//  A queue spec: the queue's NAME. Else NULL. Borrowed.
const char *zk_spec_queue_name (const zk_spec_t *self);

//  Check a queue name (see above) without logging. 0, or ZK_EINVAL and,
//  when reason is not NULL, a one-line reason written into it.
int zk_spec_check_queue_name (const char *name, size_t size, char *reason, size_t reason_size);

//  libzmq type (or ZK_SPEC_QUEUE) for a type name, or -1 if unknown.
int zk_spec_type_from_name (const char *name);
//  Type name for a libzmq type, or NULL. Static string.
const char *zk_spec_type_to_name (int type);

//  Create an unattached socket of the spec's type with zkit's defaults
//  (linger 1000 ms, so queued messages are handed over on close). A queue
//  spec makes a DEALER with ZMTP heartbeats (1 s interval, 3 s timeout and
//  TTL, as ZKQ/1 asks).
//  NULL on failure (logged). Caller owns the socket.
zsock_t *zk_spec_socket (const zk_spec_t *self);

//  Bind/connect sock to every endpoint of the spec (a queue spec too: a
//  DEALER connected to several servers spreads commands over them, so
//  zk_client connects one endpoint at a time instead). Returns 0, or
//  ZK_EADDRINUSE / ZK_EENDPOINT (logged with the endpoint and why).
int zk_spec_attach (zk_spec_t *self, zsock_t *sock);

//  Parse, create and attach in one call. NULL on any failure (logged);
//  *rc_p, when not NULL, gets ZK_EINVAL for a bad spec, else the attach
//  error. Caller owns the socket.
zsock_t *zk_sock_new (const char *text, int *rc_p);

#ifdef __cplusplus
}
#endif

#endif
