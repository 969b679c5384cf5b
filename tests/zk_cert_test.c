/*  zk_cert — certificate names, metadata, saving the pair, loading with checks.  */

#include "testutil.h"
#include "../include/zk_cert.h"

#include <sys/stat.h>
#include <unistd.h>

Test (zk_cert, names)
{
    const char *good[] = {"server", "client-1", "a", "ops@example.com", "x.y_z+1", "..a"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert_eq (zk_cert_check_name (good[i], NULL, 0), 0, "%s", good[i]);
    char long_name[ZK_CERT_NAME_MAX + 2];
    memset (long_name, 'k', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    const char *bad[] = {"",    ".",   "..",    "a/b",         "../x", "/etc/passwd",
                         "-rf", "a b", "t\tab", "caf\xc3\xa9", "a\\b", long_name};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char reason[256] = "";
        cr_assert_eq (zk_cert_check_name (bad[i], reason, sizeof reason), ZK_EINVAL, "%s", bad[i]);
        cr_assert_neq (reason[0], 0);
    }
    cr_assert_eq (zk_cert_check_name (NULL, NULL, 0), ZK_EINVAL);
    long_name[ZK_CERT_NAME_MAX] = 0;
    cr_assert_eq (zk_cert_check_name (long_name, NULL, 0), 0);
}

Test (zk_cert, metadata_items)
{
    const char *good[] = {"email=ops@example.com", "name=A B", "k=", "x.y-z_1=v=w"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_assert_eq (zk_cert_check_meta (good[i], NULL, 0), 0, "%s", good[i]);
    const char *bad[] = {
        "",       "novalue",      "=v", "a b=c", "a/b=c", "k=\"quoted\"", "k=line\nbreak",
        "k=\x7f", "k=caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char reason[256] = "";
        cr_assert_eq (zk_cert_check_meta (bad[i], reason, sizeof reason), ZK_EINVAL, "%s", bad[i]);
        cr_assert_neq (reason[0], 0);
    }
    char item[ZK_CERT_META_VALUE + 8] = "k=";
    memset (item + 2, 'v', ZK_CERT_META_VALUE);
    item[2 + ZK_CERT_META_VALUE] = 0;
    cr_assert_eq (zk_cert_check_meta (item, NULL, 0), 0);
    strcat (item, "v");
    cr_assert_eq (zk_cert_check_meta (item, NULL, 0), ZK_EINVAL);
}

static char *
s_file (const char *dir, const char *name)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    cr_assert_not_null (path);
    return path;
}

static mode_t
s_mode (const char *path)
{
    struct stat info;
    cr_assert_eq (stat (path, &info), 0, "%s", path);
    return info.st_mode & 07777;
}

Test (zk_cert, saves_a_pair_and_loads_it_back)
{
    char *dir = tu_tmpdir ();
    zcert_t *cert = zcert_new ();
    zcert_set_meta (cert, "email", "ops@example.com");
    cr_assert_eq (zk_cert_save (cert, dir, "server", false), 0);
    char *public_path = s_file (dir, "server");
    char *secret_path = s_file (dir, "server_secret");
    cr_assert_eq (s_mode (secret_path), 0600);
    cr_assert_eq (s_mode (public_path) & 077 & ~0044, 0, "public mode %o", s_mode (public_path));

    //  The public file must not carry the secret key (czmq keeps it in
    //  the certificate's config once the secret file was written).
    char *text = tu_slurp (public_path);
    cr_assert_not_null (text);
    cr_assert_null (strstr (text, "secret-key"), "%s", text);
    cr_assert_null (strstr (text, zcert_secret_txt (cert)));
    free (text);

    char reason[256];
    zcert_t *loaded = zk_cert_load (secret_path, true, reason, sizeof reason);
    cr_assert_not_null (loaded, "%s", reason);
    cr_assert (zcert_eq (loaded, cert));
    cr_assert_str_eq (zcert_meta (loaded, "email"), "ops@example.com");
    zcert_destroy (&loaded);
    loaded = zk_cert_load (public_path, false, reason, sizeof reason);
    cr_assert_not_null (loaded, "%s", reason);
    cr_assert_str_eq (zcert_public_txt (loaded), zcert_public_txt (cert));
    zcert_destroy (&loaded);
    //  A public file is no secret one (with a mode fit for one or not).
    cr_assert_null (zk_cert_load (public_path, true, reason, sizeof reason));
    cr_assert_eq (chmod (public_path, 0600), 0);
    cr_assert_null (zk_cert_load (public_path, true, reason, sizeof reason));
    cr_assert_not_null (strstr (reason, "no valid curve secret-key"), "%s", reason);

    //  Existing files: refused, untouched; with force: replaced.
    zcert_t *other = zcert_new ();
    cr_assert_eq (zk_cert_save (other, dir, "server", false), ZK_EBUSY);
    loaded = zk_cert_load (secret_path, true, NULL, 0);
    cr_assert (zcert_eq (loaded, cert));
    zcert_destroy (&loaded);
    cr_assert_eq (chmod (secret_path, 0644), 0);
    cr_assert_eq (zk_cert_save (other, dir, "server", true), 0);
    cr_assert_eq (s_mode (secret_path), 0600, "a replaced secret file is 0600 again");
    loaded = zk_cert_load (secret_path, true, NULL, 0);
    cr_assert (zcert_eq (loaded, other));
    zcert_destroy (&loaded);

    //  Nothing else in the directory (no temporary file left behind).
    zdir_t *listing = zdir_new (dir, NULL);
    cr_assert_eq (zdir_count (listing), 2);
    zdir_destroy (&listing);

    zcert_destroy (&other);
    zcert_destroy (&cert);
    free (public_path);
    free (secret_path);
    tu_rmdir (dir);
    free (dir);
}

Test (zk_cert, refuses_unsafe_or_broken_files)
{
    char *dir = tu_tmpdir ();
    zcert_t *cert = zcert_new ();
    cr_assert_eq (zk_cert_save (cert, dir, "c", false), 0);
    char *secret_path = s_file (dir, "c_secret");
    char reason[256];

    cr_assert_eq (chmod (secret_path, 0640), 0);
    cr_assert_null (zk_cert_load (secret_path, true, reason, sizeof reason));
    cr_assert_not_null (strstr (reason, "chmod 600"), "%s", reason);
    cr_assert_eq (chmod (secret_path, 0600), 0);

    //  A secret key with someone else's public key.
    zcert_t *other = zcert_new ();
    char *mixed = s_file (dir, "mixed_secret");
    FILE *file = fopen (mixed, "w");
    cr_assert_not_null (file);
    fprintf (file, "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
             zcert_public_txt (other), zcert_secret_txt (cert));
    fclose (file);
    cr_assert_eq (chmod (mixed, 0600), 0);
    cr_assert_null (zk_cert_load (mixed, true, reason, sizeof reason));
    cr_assert_not_null (strstr (reason, "does not belong"), "%s", reason);

    //  Garbage, a short key, a huge file, a directory, nothing.
    const char *garbage[] = {"\x01\x02\x03 not a config \xff\n",
                             "curve\n    public-key = \"short\"\n", "", "curve\n"};
    for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
        file = fopen (mixed, "w");
        fputs (garbage[i], file);
        fclose (file);
        cr_assert_null (zk_cert_load (mixed, false, NULL, 0), "case %zu", i);
        cr_assert_null (zk_cert_load (mixed, true, NULL, 0), "case %zu", i);
    }
    file = fopen (mixed, "w");
    for (int i = 0; i < 100000; i++)
        fputs ("#", file);
    fclose (file);
    cr_assert_null (zk_cert_load (mixed, false, reason, sizeof reason));
    cr_assert_not_null (strstr (reason, "larger than"), "%s", reason);
    cr_assert_null (zk_cert_load (dir, false, reason, sizeof reason));
    cr_assert_not_null (strstr (reason, "not a regular file"), "%s", reason);
    char *fifo = s_file (dir, "fifo");
    cr_assert_eq (mkfifo (fifo, 0600), 0);
    cr_assert_null (zk_cert_load (fifo, true, reason, sizeof reason), "a FIFO must not hang");
    cr_assert_not_null (strstr (reason, "not a regular file"), "%s", reason);
    free (fifo);
    char *missing = s_file (dir, "missing");
    cr_assert_null (zk_cert_load (missing, false, reason, sizeof reason));
    cr_assert_not_null (strstr (reason, "No such file"), "%s", reason);

    free (missing);
    free (mixed);
    free (secret_path);
    zcert_destroy (&other);
    zcert_destroy (&cert);
    tu_rmdir (dir);
    free (dir);
}

Test (zk_cert, keygen_validates_its_config)
{
    char *dir = tu_tmpdir ();
    zk_cert_keygen_config_t config = {.name = "k", .dir = dir};
    char reason[256];
    cr_assert_eq (zk_cert_keygen_validate (&config, reason, sizeof reason), 0, "%s", reason);
    config.meta.items[config.meta.count++] = "bad";
    cr_assert_eq (zk_cert_keygen_validate (&config, reason, sizeof reason), ZK_EINVAL);
    config.meta.count = 0;
    char *file_path = s_file (dir, "plain");
    FILE *file = fopen (file_path, "w");
    fclose (file);
    config.dir = file_path;
    cr_assert_eq (zk_cert_keygen_validate (&config, reason, sizeof reason), ZK_EINVAL);
    cr_assert_not_null (strstr (reason, "not a directory"), "%s", reason);
    config.dir = dir;
    config.name = "a/b";
    cr_assert_eq (zk_cert_keygen_validate (&config, reason, sizeof reason), ZK_EINVAL);

    config.name = "k";
    config.meta.items[config.meta.count++] = "role=server";
    char public_txt[41];
    cr_assert_eq (zk_cert_keygen (&config, public_txt), 0);
    cr_assert_eq (strlen (public_txt), 40);
    char *secret_path = s_file (dir, "k_secret");
    zcert_t *loaded = zk_cert_load (secret_path, true, NULL, 0);
    cr_assert_not_null (loaded);
    cr_assert_str_eq (zcert_public_txt (loaded), public_txt);
    cr_assert_str_eq (zcert_meta (loaded, "role"), "server");
    zcert_destroy (&loaded);
    cr_assert_eq (zk_cert_keygen (&config, public_txt), ZK_EBUSY);

    free (secret_path);
    free (file_path);
    tu_rmdir (dir);
    free (dir);
}
