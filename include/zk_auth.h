/*  zk_auth — zkit's ZAP handler (ZeroMQ RFC 27): who may connect.

    libzmq asks a ZAP handler about every peer that completes a handshake
    with a socket that has a ZAP domain. zkit gives every binding socket a
    domain (zk_spec: "zkit" unless the spec says domain=NAME) and sets
    ZMQ_ZAP_ENFORCE_DOMAIN, so a socket whose handler is missing refuses
    everyone rather than admit everyone. This class is that handler:

    * one per libzmq context that has binding sockets (czmq's shared
      context for every zsock_t; zk_cat's private one), an actor on
      inproc://zeromq.zap.01 in that context, started on demand by zk_spec
      before a socket binds and stopped at exit (or by zk_auth_stop);
    * policies by domain, for the whole process: a peer address on the
      allow list is admitted; with an allow list, every other address is
      refused; without one, an address on the deny list is refused. Then,
      for CURVE, when the policy has a certificate directory (curve-allow),
      only a client whose public key is in it is admitted; without one any
      CURVE client is admitted (encrypted, but not authenticated). NULL
      clients pass on their address alone. PLAIN, GSSAPI and anything
      else are refused;
    * every refusal is counted (zk_auth_denied) and logged with the peer's
      address and the reason, rate-limited. A malformed request (wrong
      version, frame count or sizes) is answered 500, counted and logged,
      never trusted.

    A policy is registered once per domain and stays for the life of the
    process; registering a different policy under a domain that has one is
    refused (give the other socket its own domain=NAME). Addresses are
    IPv4 or IPv6 literals, optionally with a /PREFIX (10.0.0.0/8); an IPv4
    peer seen as IPv4-mapped IPv6 (::ffff:10.0.0.1) matches its IPv4 form.
    The certificate directory is read at registration and again when its
    modification time changes (checked at most once a second, on demand):
    adding or removing a file takes effect within a second.           */

#ifndef ZK_AUTH_H_INCLUDED
#define ZK_AUTH_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_AUTH_ENDPOINT       "inproc://zeromq.zap.01"  //  RFC 27's well-known endpoint
#define ZK_AUTH_DEFAULT_DOMAIN "zkit"
#define ZK_AUTH_DOMAIN_MAX     64     //  bytes of a domain name
#define ZK_AUTH_ADDRESSES_MAX  64     //  entries of one allow or deny list
#define ZK_AUTH_CERTS_MAX      65536  //  files read from one certificate directory
#define ZK_AUTH_DOMAINS_MAX    256    //  policies in one process

typedef struct {
    const char *domain;  //  NULL: ZK_AUTH_DEFAULT_DOMAIN
    const char *const *allow;
    size_t allow_count;
    const char *const *deny;
    size_t deny_count;
    const char *curve_allow;  //  directory of allowed public certificates; NULL: any CURVE client
} zk_auth_policy_t;

//  Check a domain name: 1..ZK_AUTH_DOMAIN_MAX bytes of [A-Za-z0-9._-].
//  0, or ZK_EINVAL and a one-line reason (when reason is not NULL).
int zk_auth_check_domain (const char *name, char *reason, size_t reason_size);

//  Check an address for an allow or deny list: an IPv4 or IPv6 literal,
//  optionally "/PREFIX" (0..32, 0..128). 0, or ZK_EINVAL and a reason.
int zk_auth_check_address (const char *text, char *reason, size_t reason_size);

//  Check a certificate directory: an existing directory we may read.
//  0, or ZK_EINVAL and a reason.
int zk_auth_check_dir (const char *path, char *reason, size_t reason_size);

//  Register policy for its domain (copied; the certificate directory is
//  read now). 0 when registered or when the domain has an equal policy
//  already; ZK_EBUSY when it has a different one; ZK_EINVAL for a bad
//  policy; ZK_ENOMEM. A reason on failure (when reason is not NULL).
int zk_auth_policy_add (const zk_auth_policy_t *policy, char *reason, size_t reason_size);

//  True when a policy is registered for domain (NULL: the default).
bool zk_auth_policy_exists (const char *domain);

//  Make sure a handler serves context (NULL: czmq's shared context, the
//  one every zsock_t lives in), starting it if needed; each call takes a
//  reference. 0, or ZK_ESOCKET when it cannot bind the ZAP endpoint
//  (another ZAP handler, such as czmq's zauth, runs in that context;
//  logged). Handlers still running at exit are stopped then.
int zk_auth_start (void *context);

//  Drop a reference taken by zk_auth_start; the last one stops the
//  handler (call it before zmq_ctx_term on a private context, which
//  would wait for the handler's socket). Unknown contexts are ignored.
void zk_auth_stop (void *context);

//  True when a handler serves context (NULL: czmq's shared context).
bool zk_auth_running (void *context);

//  Process-wide counters since start: requests admitted, refused (every
//  reply but 200, malformed ones included), and malformed.
uint64_t zk_auth_allowed (void);
uint64_t zk_auth_denied (void);
uint64_t zk_auth_malformed (void);

#ifdef __cplusplus
}
#endif

#endif
