/*  zk_error — the error codes every zkit action returns.

    An action returns 0 or a negative ZK_E... code; zk_strerror () gives
    the text. Questions return bool; constructors return NULL.          */

#ifndef ZK_ERROR_H_INCLUDED
#define ZK_ERROR_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    ZK_OK = 0,
    ZK_EINVAL = -1,      //  invalid argument (a spec, a flag, a value)
    ZK_ENOMEM = -2,      //  out of memory
    ZK_ETRUNC = -3,      //  input ends before the data it announces
    ZK_ETOOBIG = -4,     //  input larger than the limit allows
    ZK_EPROTO = -5,      //  malformed input (wrong type, bad magic, bad length)
    ZK_EDEPTH = -6,      //  input nested deeper than allowed
    ZK_ESOCKET = -7,     //  a socket could not be created or configured
    ZK_EADDRINUSE = -8,  //  bind failed: address already in use
    ZK_EENDPOINT = -9,   //  bind/connect failed for another reason
    ZK_ETIMEDOUT = -10,  //  a deadline passed
    ZK_EIO = -11,        //  a read, write or process operation failed
    ZK_EINTR = -12,      //  interrupted (SIGINT/SIGTERM)
    ZK_EVERSION = -13,   //  input of a format version we do not speak
    ZK_ECOMMAND = -14,   //  a child command failed (non-zero exit, signal)
    ZK_ENOSPC = -15,     //  no space left: disk full, quota or file size limit
    ZK_EBUSY = -16,      //  in use (e.g. a journal opened by another process)
    ZK_ENOENT = -17,     //  no such thing (a message id the queue does not know or lease to us)
} zk_error_t;

//  Text for an error code; never NULL. Static string.
const char *zk_strerror (int rc);

#ifdef __cplusplus
}
#endif

#endif
