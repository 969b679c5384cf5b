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
//
//    Security options follow the first '?', URL-query style, '&'-separated
//    (docs/protocol.md 2.5), so an endpoint never contains '?':
//
//        pull@tcp://*:5557?curve-secret=keys/server_secret&curve-allow=keys/clients
//        push>tcp://10.0.0.1:5557?curve-secret=keys/client_secret&curve-server=keys/server
//        router@tcp://*:5570?allow=10.0.0.0/8&deny=10.0.0.66&domain=queues
//
//    curve-secret=FILE   this side's secret certificate (zkit-keygen's NAME_secret,
//                        mode 0600): a binding spec serves CURVE, a connecting one
//                        connects with CURVE and needs curve-server too
//    curve-server=FILE   connecting: the server's public certificate
//    curve-allow=DIR     binding, with curve-secret: only clients whose public
//                        certificate is in DIR get in (else any CURVE client)
//    allow=IP, deny=IP   binding, repeatable, IPv4/IPv6 with optional /PREFIX:
//                        an allowed address gets in; with allow= given, no other
//                        does; else a denied one is refused
//    domain=NAME         binding: the ZAP domain (default "zkit"), the key of
//                        the policy zk_auth applies; without it, a socket whose
//                        policy differs from the one "zkit" has gets "zkit.2",
//                        "zkit.3" ... (the first with its policy, or free)
//
//    Every binding socket gets a ZAP domain and zkit's ZAP handler
//    (zk_auth), also without options: peers are counted and logged when
//    refused. A spec ending in a bare '?' has no options, explicitly (the
//    binaries' security flags leave it alone).

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

//  Limits every zkit socket and engine has unless told otherwise
//  (docs/protocol.md 4.2): a peer that has not finished its ZMTP
//  handshake in ZK_SPEC_HANDSHAKE_MS is disconnected (ZMQ_HANDSHAKE_IVL,
//  set by zk_spec_socket); a message larger than ZK_MAX_SIZE_DEFAULT is
//  refused by every engine whose max_size is 0; ZK_MAX_SIZE_UNLIMITED
//  as a max_size lifts the limit. A forwarder drops subscriptions longer
//  than ZK_MAX_TOPIC_DEFAULT bytes unless told otherwise, and never
//  passes one longer than ZK_MAX_TOPIC_MAX.
#define ZK_SPEC_HANDSHAKE_MS  5000
#define ZK_SPEC_BACKLOG       1024  //  ZMQ_BACKLOG: connections waiting to be accepted
#define ZK_MAX_SIZE_DEFAULT   ((size_t) 1 << 20)
#define ZK_MAX_SIZE_UNLIMITED SIZE_MAX
#define ZK_MAX_TOPIC_DEFAULT  256
#define ZK_MAX_TOPIC_MAX      65536

#define ZK_SPEC_MAX_ADDRESSES 64  //  allow= (and deny=) entries in one spec

typedef struct _zk_spec_t zk_spec_t;

//  A spec's security options (see above). Strings are borrowed from the spec.
typedef struct {
    const char *curve_secret;  //  curve-secret=FILE, or NULL
    const char *curve_server;  //  curve-server=FILE, or NULL
    const char *curve_allow;   //  curve-allow=DIR, or NULL
    const char *domain;        //  domain=NAME, else "zkit"
    const char *allow[ZK_SPEC_MAX_ADDRESSES];
    size_t allow_count;
    const char *deny[ZK_SPEC_MAX_ADDRESSES];
    size_t deny_count;
    bool curve;    //  CURVE: a server (the spec binds) or a client (it connects)
    bool options;  //  the spec has a '?' part, even an empty one
} zk_spec_security_t;

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
//  (linger 1000 ms, so queued messages are handed over on close; handshake
//  timeout ZK_SPEC_HANDSHAKE_MS, so a peer that connects and says nothing
//  is disconnected; accept backlog ZK_SPEC_BACKLOG, so a flood of such
//  peers does not keep others from connecting). A queue
//  spec makes a DEALER with ZMTP heartbeats (1 s interval, 3 s timeout and
//  TTL, as ZKQ/1 asks).
//  NULL on failure (logged). Caller owns the socket.
zsock_t *zk_spec_socket (const zk_spec_t *self);

//  Bind/connect sock (a zsock_t, or a plain libzmq socket: see
//  zk_spec_secure) to every endpoint of the spec, its security applied
//  first (a queue spec too: a DEALER connected to several servers spreads
//  commands over them, so zk_client connects one endpoint at a time
//  instead). Returns 0, or ZK_EADDRINUSE / ZK_EENDPOINT (logged with the
//  endpoint and why), or what zk_spec_secure returns.
int zk_spec_attach (zk_spec_t *self, zsock_t *sock);

//  The spec's security options. Never NULL; borrowed.
const zk_spec_security_t *zk_spec_security (const zk_spec_t *self);

//  Apply the spec's security to sock, a zsock_t or a plain libzmq socket
//  of context: CURVE server or client keys, and for a spec that binds the
//  ZAP domain (ZMQ_ZAP_DOMAIN, ZMQ_ZAP_ENFORCE_DOMAIN), its policy and a
//  running ZAP handler in the socket's context (zk_auth_start: context
//  NULL is czmq's shared one, right for every zsock_t; a plain socket of
//  another context must pass it, and zk_auth_stop it before zmq_ctx_term).
//  Options the spec does not have are left as they are on the socket.
//  zk_spec_socket and zk_spec_attach call it (attach does not start a
//  handler for a plain socket with context NULL: its connections are
//  refused until one runs). With a context, each call takes a handler
//  reference (zk_auth_stop it). 0, or ZK_EINVAL (a policy conflict:
//  another socket of this process has another policy under the domain
//  the spec names with domain=NAME), or ZK_ESOCKET (logged).
int zk_spec_secure (const zk_spec_t *self, void *sock, void *context);

//  Parse, create and attach in one call. NULL on any failure (logged);
//  *rc_p, when not NULL, gets ZK_EINVAL for a bad spec, else the attach
//  error. Caller owns the socket.
zsock_t *zk_sock_new (const char *text, int *rc_p);

#ifdef __cplusplus
}
#endif

#endif
