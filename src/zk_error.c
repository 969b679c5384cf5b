/*  zk_error — error codes and their text.  */

#include "zk_classes.h"

const char *
zk_strerror (int rc)
{
    switch (rc) {
        case ZK_OK: return "success";
        case ZK_EINVAL: return "invalid argument";
        case ZK_ENOMEM: return "out of memory";
        case ZK_ETRUNC: return "truncated input";
        case ZK_ETOOBIG: return "input too large";
        case ZK_EPROTO: return "malformed input";
        case ZK_EDEPTH: return "input nested too deeply";
        case ZK_ESOCKET: return "socket error";
        case ZK_EADDRINUSE: return "address already in use";
        case ZK_EENDPOINT: return "cannot bind or connect endpoint";
        case ZK_ETIMEDOUT: return "timed out";
        case ZK_EIO: return "input/output error";
        case ZK_EINTR: return "interrupted";
        case ZK_EVERSION: return "unsupported format version";
        case ZK_ECOMMAND: return "command failed";
        case ZK_ENOSPC: return "no space left on device";
        case ZK_EBUSY: return "resource busy";
        case ZK_ENOENT: return "no such message";
        default: return "unknown error";
    }
}
