/*  zk_classes.h — private to src/: every source file includes this only.

    Besides the public API it declares the helpers the engines share
    (src/zk_engine.c). The pipe protocol between an engine actor and its
    owner:

        owner → engine   "$TERM"      stop: hand over, close, return
                         "PAUSE" / "RESUME"
                         "STATS"      reply: one frame per counter, "name=value"
                         "ENDPOINTS"  reply: one frame per endpoint, "ROLE ENDPOINT"
        engine → owner   "TERMINATED" a control socket asked it to stop; the
                                      engine then waits for "$TERM".
    Start-up: the engine signals 0 on the pipe once its sockets are ready,
    or -1 after logging why it could not start.                          */

#ifndef ZK_CLASSES_H_INCLUDED
#define ZK_CLASSES_H_INCLUDED

#include "../include/zkit.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZK_DEFAULT_LINGER_MS 1000

//  Parse text, create its socket with hwm (0: default) and linger
//  (<0: ZK_DEFAULT_LINGER_MS), attach it. On success 0 with the socket
//  in *sock_p and the parsed spec in *spec_p (caller owns both); else an
//  error, logged as "ROLE: ...". expected_types, when not NULL, is a
//  -1-terminated list of the socket types this role accepts.
int zk_engine_open (const char *role, const char *text, const int *expected_types, int hwm,
                    int linger_ms, zsock_t **sock_p, zk_spec_t **spec_p);

//  Append "ROLE ENDPOINT" frames for every endpoint of spec to msg.
void zk_engine_add_endpoints (zmsg_t *msg, const char *role, const zk_spec_t *spec);

//  Append one "name=value" frame to msg.
void zk_engine_add_counter (zmsg_t *msg, const char *name, uint64_t value);

//  Read a "name=value" STATS reply value by name, 0 if absent.
uint64_t zk_engine_counter (zmsg_t *reply, const char *name);

//  Send cmd to the engine and wait for its reply. Caller owns it; NULL
//  if the engine is gone.
zmsg_t *zk_engine_request (zactor_t *engine, const char *cmd);

//  Wait at most timeout_ms for the engine to become readable; 0 when it is.
//  Returns ZK_ETIMEDOUT otherwise.
int zk_engine_wait_readable (zactor_t *engine, int timeout_ms);

//  Monotonic clock, milliseconds.
int64_t zk_now_ms (void);

/*  zk_device — the core that zk_proxy and zk_forwarder share (src/zk_device.c).

    One actor moves whole messages frontend → backend and, when both sides
    can, backend → frontend, with raw zmq_msg_t frames (no copy, no
    allocation per message), batches, back-pressure (one pending message per
    direction), a size and frame limit, capture, control and stats.        */

#define ZK_DEVICE_MAX_FRAMES 1024  //  frames in one message; more is refused
#define ZK_DEVICE_BATCH      1000  //  messages moved per direction per poll

typedef struct {
    const char *name;      //  "proxy" or "forwarder"
    const char *frontend;  //  specs, as in the public configs
    const char *backend;
    const char *capture;    //  or NULL
    const char *control;    //  or NULL
    size_t max_size;        //  0 = unlimited
    int hwm;                //  0 = libzmq's default
    int linger_ms;          //  <0 = ZK_DEFAULT_LINGER_MS
    int stats_interval_ms;  //  0 = no periodic report
    bool forwarder;         //  xpub verbose, count and log subscriptions
} zk_device_config_t;

//  Check the specs and the capture/control types (not the pair: that is
//  the caller's rule). 0, or ZK_EINVAL with a one-line reason; the types
//  go to *frontend_type_p / *backend_type_p.
int zk_device_check (const zk_device_config_t *config, int *frontend_type_p, int *backend_type_p,
                     char *reason, size_t reason_size);

//  Start the device actor (config is copied). NULL if a socket could not
//  be opened (logged). Caller owns the actor (zactor_destroy).
zactor_t *zk_device_start (const zk_device_config_t *config);

//  Send a command that has no reply (PAUSE, RESUME) and return once the
//  device has acted on it. 0, or ZK_EIO if the device is gone.
int zk_device_command (zactor_t *device, const char *cmd);

//  The options both device binaries take (same names, same help), bound
//  to one struct; ZK_DEVICE_CONFIG_FIELDS turns it into the fields the
//  proxy and forwarder configs share.
typedef struct {
    size_t max_size;
    int hwm;
    const char *capture;
    const char *control;
    const char *ready_file;
    double stats_seconds;
    double linger_seconds;  //  set the default (1) before parsing
} zk_device_options_t;

#define ZK_DEVICE_OPTIONS 7
#define ZK_DEVICE_CONFIG_FIELDS(values)                                                            \
    .capture = (values).capture, .control = (values).control, .max_size = (values).max_size,       \
    .hwm = (values).hwm, .linger_ms = (int) ((values).linger_seconds * 1000),                      \
    .stats_interval_ms = (int) ((values).stats_seconds * 1000)

//  Fill table[0 .. ZK_DEVICE_OPTIONS] (the last entry ends the table) with
//  the device options, bound to values.
void zk_device_options (zk_option_t *table, zk_device_options_t *values);

/*  Validators' helpers (src/zk_engine.c): a validator returns 0, or
    ZK_EINVAL with a one-line reason, and logs nothing.                 */

//  Write the reason into buf (when not NULL). Returns ZK_EINVAL.
int zk_engine_reason (char *buf, size_t size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  True when type is in the -1-terminated list types.
bool zk_engine_type_in (int type, const int *types);

//  The libzmq type of the spec text for role, or -1 with a reason
//  ("ROLE: invalid socket spec 'TEXT': WHY", or "a ROLE spec is required"
//  when text is NULL).
int zk_engine_spec_type (const char *role, const char *text, char *reason, size_t reason_size);

#endif
