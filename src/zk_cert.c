/*  zk_cert — CURVE certificate files, written and read safely.  */

#include "zk_classes.h"
#include "../include/zk_cert.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_CERT_FILE_MAX 65536  //  a certificate file larger than this is refused

static bool
s_char_in (char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || (c && strchr (extra, c));
}

int
zk_cert_check_name (const char *name, char *reason, size_t reason_size)
{
    if (!name || !*name)
        return zk_engine_reason (reason, reason_size, "the certificate name is empty");
    size_t length = strlen (name);
    if (length > ZK_CERT_NAME_MAX)
        return zk_engine_reason (reason, reason_size,
                                 "the certificate name is longer than %d bytes", ZK_CERT_NAME_MAX);
    if (streq (name, ".") || streq (name, ".."))
        return zk_engine_reason (reason, reason_size, "'%s' is not a certificate name", name);
    if (name[0] == '-')
        return zk_engine_reason (reason, reason_size, "the certificate name '%s' starts with '-'",
                                 name);
    for (size_t index = 0; index < length; index++)
        if (!s_char_in (name[index], "._@+-"))
            return zk_engine_reason (reason, reason_size,
                                     "the certificate name may hold only letters, digits and "
                                     "._@+- (no '/': use --dir)");
    return 0;
}

int
zk_cert_check_meta (const char *item, char *reason, size_t reason_size)
{
    const char *equals = item ? strchr (item, '=') : NULL;
    if (!equals || equals == item)
        return zk_engine_reason (reason, reason_size, "--meta '%s': expected KEY=VALUE",
                                 item ? item : "");
    size_t key_size = (size_t) (equals - item);
    if (key_size > ZK_CERT_META_KEY)
        return zk_engine_reason (reason, reason_size, "--meta: KEY longer than %d bytes",
                                 ZK_CERT_META_KEY);
    for (size_t index = 0; index < key_size; index++)
        if (!s_char_in (item[index], "._-"))
            return zk_engine_reason (reason, reason_size,
                                     "--meta '%.*s': KEY may hold only letters, digits and ._-",
                                     (int) key_size, item);
    const char *value = equals + 1;
    if (strlen (value) > ZK_CERT_META_VALUE)
        return zk_engine_reason (reason, reason_size, "--meta %.*s: VALUE longer than %d bytes",
                                 (int) key_size, item, ZK_CERT_META_VALUE);
    for (const char *cursor = value; *cursor; cursor++)
        if (*cursor < 0x20 || *cursor > 0x7e || *cursor == '"')
            return zk_engine_reason (
                reason, reason_size,
                "--meta %.*s: VALUE may hold only printable ASCII without '\"'", (int) key_size,
                item);
    return 0;
}

//  "DIR/FILESUFFIX" (no dir: "FILESUFFIX") into buf; false when it does not fit.
static bool
s_path (char *buf, size_t size, const char *dir, const char *file, const char *suffix)
{
    int length = dir ? snprintf (buf, size, "%s/%s%s", dir, file, suffix)
                     : snprintf (buf, size, "%s%s", file, suffix);
    return length > 0 && (size_t) length < size;
}

/*  Write one file of the pair under a temporary name in dir; the name
    goes to temp_path. The file is created with O_EXCL and its final mode
    (the secret one 0600, and the umask is 077 while czmq writes it, so
    there is no moment when another user could read it); czmq's writer
    then truncates and fills that same file. 0 or ZK_EIO (logged).      */
static int
s_write_temp (zcert_t *cert, const char *dir, const char *name, bool secret, char *temp_path,
              size_t temp_size)
{
    char temp_name[ZK_CERT_NAME_MAX + 64];
    snprintf (temp_name, sizeof temp_name, ".%s%s.tmp-%d-%08x", name,
              secret ? ZK_CERT_SECRET_SUFFIX : "", (int) getpid (), (unsigned) randof (0x7fffffff));
    if (!s_path (temp_path, temp_size, dir, temp_name, "")) {
        zk_error ("certificate path too long in '%s'", dir ? dir : ".");
        return ZK_EIO;
    }
    mode_t old_umask = umask (077);
    if (!secret)
        umask (old_umask);  //  the public file: the user's umask applies
    int rc = 0;
    int fd = open (temp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                   secret ? 0600 : 0644);
    if (fd < 0) {
        zk_error ("cannot create %s: %s", temp_path, strerror (errno));
        rc = ZK_EIO;
        goto out_umask;
    }
    //  zcert_save_secret adds the secret key to the certificate's config
    //  for good: the public file must be written before the secret one.
    if ((secret ? zcert_save_secret (cert, temp_path) : zcert_save_public (cert, temp_path)) != 0
        || (secret && fchmod (fd, 0600) != 0) || fsync (fd) != 0) {
        zk_error ("cannot write %s: %s", temp_path, strerror (errno));
        unlink (temp_path);
        rc = ZK_EIO;
    }
    close (fd);
out_umask:
    umask (old_umask);
    return rc;
}

//  Give the temporary file its final name: link(2) without force (fails
//  with EEXIST rather than replace a file that appeared meanwhile),
//  rename(2) with force (replaces it atomically). The temporary name is
//  gone either way. 0, ZK_EBUSY or ZK_EIO (logged).
static int
s_install (const char *temp_path, const char *final_path, bool force)
{
    int rc = 0;
    if (force ? rename (temp_path, final_path) : link (temp_path, final_path)) {
        if (errno == EEXIST) {
            zk_error ("%s exists (use --force to replace it)", final_path);
            rc = ZK_EBUSY;
        }
        else {
            zk_error ("cannot write %s: %s", final_path, strerror (errno));
            rc = ZK_EIO;
        }
    }
    unlink (temp_path);  //  after a rename: already gone
    return rc;
}

/*  Both files are written under temporary names first, so a failed
    write leaves nothing behind; then both get their names.             */
int
zk_cert_save (zcert_t *cert, const char *dir, const char *name, bool force)
{
    assert (cert);
    if (zk_cert_check_name (name, NULL, 0))
        return ZK_EINVAL;
    char public_path[PATH_MAX], secret_path[PATH_MAX];
    if (!s_path (public_path, sizeof public_path, dir, name, "")
        || !s_path (secret_path, sizeof secret_path, dir, name, ZK_CERT_SECRET_SUFFIX))
        return ZK_EINVAL;
    struct stat info;
    if (!force) {
        //  Both names are checked first, so a refusal writes nothing.
        const char *taken = lstat (public_path, &info) == 0   ? public_path
                            : lstat (secret_path, &info) == 0 ? secret_path
                                                              : NULL;
        if (taken) {
            zk_error ("%s exists (use --force to replace it)", taken);
            return ZK_EBUSY;
        }
    }
    char public_temp[PATH_MAX], secret_temp[PATH_MAX];
    int rc = s_write_temp (cert, dir, name, false, public_temp, sizeof public_temp);
    if (rc)
        return rc;
    rc = s_write_temp (cert, dir, name, true, secret_temp, sizeof secret_temp);
    if (rc) {
        unlink (public_temp);
        return rc;
    }
    //  The secret first: a public file alone would name a key nobody holds.
    rc = s_install (secret_temp, secret_path, force);
    if (rc) {
        unlink (public_temp);
        return rc;
    }
    rc = s_install (public_temp, public_path, force);
    if (rc && !force)
        unlink (secret_path);  //  ours: the link just made it
    return rc;
}

//  Read the certificate file at path into a new ZPL tree, checking the
//  file it opened (not the name: no race with a file swapped meanwhile).
//  NULL with a reason.
static zconfig_t *
s_read_config (const char *path, bool secret, char *reason, size_t reason_size)
{
    //  O_NONBLOCK: a FIFO put in place of the file must not hang us.
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        zk_engine_reason (reason, reason_size, "%s: %s", path, strerror (errno));
        return NULL;
    }
    zconfig_t *root = NULL;
    char *text = NULL;
    size_t size = 0;
    struct stat info;
    if (fstat (fd, &info) != 0 || !S_ISREG (info.st_mode)) {
        zk_engine_reason (reason, reason_size, "%s: not a regular file", path);
        goto out_close;
    }
    if (info.st_size > S_CERT_FILE_MAX) {
        zk_engine_reason (reason, reason_size, "%s: larger than %d bytes: not a certificate", path,
                          S_CERT_FILE_MAX);
        goto out_close;
    }
    if (secret && (info.st_mode & 077)) {
        zk_engine_reason (reason, reason_size,
                          "%s: a secret key readable by others is refused (chmod 600 it)", path);
        goto out_close;
    }
    text = malloc (S_CERT_FILE_MAX + 1);
    ssize_t got = 1;
    while (text && size <= S_CERT_FILE_MAX && got > 0) {
        got = read (fd, text + size, S_CERT_FILE_MAX + 1 - size);
        if (got > 0)
            size += (size_t) got;
        else if (got < 0 && errno == EINTR)
            got = 1;
    }
    if (!text || got < 0 || size > S_CERT_FILE_MAX) {
        zk_engine_reason (reason, reason_size, "%s: cannot read it", path);
        goto out_close;
    }
    text[size] = 0;
    //  Not zconfig_load: czmq 4.2 leaks its zfile_t on a file that does not parse.
    root = strlen (text) == size ? zconfig_str_load (text) : NULL;
    if (!root)
        zk_engine_reason (reason, reason_size, "%s: cannot read it as a certificate", path);
out_close:
    if (text)
        explicit_bzero (text, size);  //  it may have held a secret key
    free (text);
    close (fd);
    return root;
}

zcert_t *
zk_cert_load (const char *path, bool secret, char *reason, size_t reason_size)
{
    assert (path);
    //  Not zcert_load: it would prefer a PATH_secret next to path.
    zconfig_t *root = s_read_config (path, secret, reason, reason_size);
    if (!root)
        return NULL;
    zcert_t *cert = NULL;
    const char *public_txt = zconfig_get (root, "/curve/public-key", NULL);
    const char *secret_txt = zconfig_get (root, "/curve/secret-key", NULL);
    uint8_t public_key[32] = {0}, secret_key[32] = {0};
    char derived[41];
    if (!public_txt || strlen (public_txt) != 40 || !zmq_z85_decode (public_key, public_txt)) {
        zk_engine_reason (reason, reason_size, "%s: no valid curve public-key", path);
        goto out_config;
    }
    if (secret) {
        if (!secret_txt || strlen (secret_txt) != 40 || !zmq_z85_decode (secret_key, secret_txt)) {
            zk_engine_reason (reason, reason_size, "%s: no valid curve secret-key", path);
            goto out_config;
        }
        if (zmq_curve_public (derived, secret_txt) != 0 || !streq (derived, public_txt)) {
            zk_engine_reason (reason, reason_size,
                              "%s: the public-key does not belong to the secret-key", path);
            goto out_config;
        }
    }
    cert = zcert_new_from (public_key, secret_key);
    if (!cert) {
        zk_engine_reason (reason, reason_size, "%s: out of memory", path);
        goto out_config;
    }
    zconfig_t *metadata = zconfig_locate (root, "/metadata");
    for (zconfig_t *item = metadata ? zconfig_child (metadata) : NULL; item;
         item = zconfig_next (item))
        zcert_set_meta (cert, zconfig_name (item), "%s",
                        zconfig_value (item) ? zconfig_value (item) : "");
out_config:
    explicit_bzero (secret_key, sizeof secret_key);
    zconfig_destroy (&root);
    return cert;
}

int
zk_cert_keygen_validate (const zk_cert_keygen_config_t *config, char *reason, size_t reason_size)
{
    if (zk_cert_check_name (config->name, reason, reason_size))
        return ZK_EINVAL;
    for (int index = 0; index < config->meta.count; index++)
        if (zk_cert_check_meta (config->meta.items[index], reason, reason_size))
            return ZK_EINVAL;
    const char *dir = config->dir ? config->dir : ".";
    struct stat info;
    if (stat (dir, &info) != 0)
        return zk_engine_reason (reason, reason_size, "--dir %s: %s", dir, strerror (errno));
    if (!S_ISDIR (info.st_mode))
        return zk_engine_reason (reason, reason_size, "--dir %s: not a directory", dir);
    if (access (dir, W_OK | X_OK) != 0)
        return zk_engine_reason (reason, reason_size, "--dir %s: not writable", dir);
    char path[PATH_MAX];
    if (!s_path (path, sizeof path, dir, config->name,
                 ZK_CERT_SECRET_SUFFIX ".tmp-0000000000-00000000"))
        return zk_engine_reason (reason, reason_size, "--dir %s: the path is too long", dir);
    return 0;
}

int
zk_cert_keygen (const zk_cert_keygen_config_t *config, char public_txt[41])
{
    zcert_t *cert = zcert_new ();
    if (!cert) {
        zk_error ("cannot generate a key pair (is libzmq built with CURVE?)");
        return ZK_ENOMEM;
    }
    for (int index = 0; index < config->meta.count; index++) {
        const char *item = config->meta.items[index];
        const char *equals = strchr (item, '=');
        assert (equals);  //  zk_cert_keygen_validate passed
        char key[ZK_CERT_META_KEY + 1];
        snprintf (key, sizeof key, "%.*s", (int) (equals - item), item);
        zcert_set_meta (cert, key, "%s", equals + 1);
    }
    int rc = zk_cert_save (cert, config->dir, config->name, config->force);
    if (rc == 0 && public_txt)
        snprintf (public_txt, 41, "%s", zcert_public_txt (cert));
    zcert_destroy (&cert);
    return rc;
}
