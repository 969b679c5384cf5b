/*  zkit — asynchronous messaging between services, on ZeroMQ.

    The umbrella header: include this and nothing else. It brings czmq
    (zsock_t, zactor_t, zmsg_t ...) and every public zkit class.        */

#ifndef ZKIT_H_INCLUDED
#define ZKIT_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZKIT_VERSION_MAJOR                     0
#define ZKIT_VERSION_MINOR                     1
#define ZKIT_VERSION_PATCH                     0
#define ZKIT_MAKE_VERSION(major, minor, patch) ((major) *10000 + (minor) *100 + (patch))
#define ZKIT_VERSION                           ZKIT_MAKE_VERSION (ZKIT_VERSION_MAJOR, ZKIT_VERSION_MINOR, ZKIT_VERSION_PATCH)

#if defined(__GNUC__)
#define ZK_EXPORT __attribute__ ((visibility ("default")))
#else
#define ZK_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

//  The library's version as "major.minor.patch". Static string.
ZK_EXPORT const char *zk_version (void);

#ifdef __cplusplus
}
#endif

#include "zk_error.h"
#include "zk_log.h"
#include "zk_spec.h"
#include "zk_auth.h"
#include "zk_envelope.h"
#include "zk_journal.h"
#include "zk_proxy.h"
#include "zk_forwarder.h"
#include "zk_worker.h"
#include "zk_client.h"
#include "zk_caller.h"
#include "zk_queue.h"
#include "zk_meter.h"
#include "zk_cli.h"
#include "zk_cat.h"

#endif
