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

#endif
