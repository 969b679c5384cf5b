/*  zk_cert — CURVE certificate files, written and read safely.

    The files are czmq's certificate format (zcert, ZPL text), so czmq's
    zcert_load, zcertstore and zauth read them as they are:

        NAME          the public key only (and the metadata): hand it out
        NAME_secret   both keys (and the metadata): mode 0600, never shared

    zk_cert_save writes the pair the way zcert_save does, and more
    carefully: each file is written under a temporary name in the target
    directory (the secret one with umask 077, so it is never readable by
    anyone else, not even for a moment), then linked into place, which
    fails instead of replacing an existing file unless force is set.

    zk_cert_load reads one file back and checks it: a secret file must
    hold both keys and must not be accessible to group or others (as ssh
    insists), so a key that leaked through its permissions is refused
    rather than used.                                                    */

#ifndef ZK_CERT_H_INCLUDED
#define ZK_CERT_H_INCLUDED

#include "zk_cli.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_CERT_NAME_MAX      200  //  bytes of a certificate name (the file name)
#define ZK_CERT_META_KEY      64   //  bytes of a metadata key
#define ZK_CERT_META_VALUE    255  //  bytes of a metadata value
#define ZK_CERT_SECRET_SUFFIX "_secret"

//  Check a certificate name: 1..ZK_CERT_NAME_MAX bytes of [A-Za-z0-9._@+-],
//  not "." or "..", not starting with '-' (so no '/': it names a file in
//  one directory). 0, or ZK_EINVAL and a one-line reason (when reason is
//  not NULL).
int zk_cert_check_name (const char *name, char *reason, size_t reason_size);

//  Check a metadata item "KEY=VALUE": KEY 1..ZK_CERT_META_KEY bytes of
//  [A-Za-z0-9._-], VALUE 0..ZK_CERT_META_VALUE bytes of printable ASCII
//  without '"' (so the ZPL file reads back the same). 0, or ZK_EINVAL and
//  a reason.
int zk_cert_check_meta (const char *item, char *reason, size_t reason_size);

//  Write cert as dir/name (public) and dir/name_secret (both keys, mode
//  0600); dir NULL means the current directory. An existing file is
//  ZK_EBUSY (nothing is written) unless force is set, then both are
//  replaced atomically (each reader sees the old file or the new one).
//  ZK_EIO when a file cannot be written (logged). 0 on success.
int zk_cert_save (zcert_t *cert, const char *dir, const char *name, bool force);

//  Load a certificate file. With secret set, path is a secret file: it
//  must hold a valid secret key and be a regular file not accessible to
//  group or others. Without, only a valid public key is required. The
//  certificate, or NULL and a one-line reason (when reason is not NULL).
//  Caller owns the result (zcert_destroy).
zcert_t *zk_cert_load (const char *path, bool secret, char *reason, size_t reason_size);

//  What zkit-keygen does, as a library call.
typedef struct {
    const char *name;   //  required: see zk_cert_check_name
    const char *dir;    //  NULL: the current directory
    bool force;         //  replace existing files
    zk_strlist_t meta;  //  "KEY=VALUE" items, see zk_cert_check_meta
} zk_cert_keygen_config_t;

//  Check a configuration: the name, the metadata, and that dir is an
//  existing, writable directory. 0, or ZK_EINVAL with a one-line reason.
int zk_cert_keygen_validate (const zk_cert_keygen_config_t *config, char *reason,
                             size_t reason_size);

//  Generate a new key pair with the metadata and save it (zk_cert_save).
//  On success the public key in Z85 (40 characters and a NUL) goes to
//  public_txt (when not NULL). 0, ZK_EBUSY, ZK_EIO or ZK_ENOMEM (logged).
int zk_cert_keygen (const zk_cert_keygen_config_t *config, char public_txt[41]);

#ifdef __cplusplus
}
#endif

#endif
