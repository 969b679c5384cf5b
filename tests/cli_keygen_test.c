/*  zkit-keygen — the real binary: files, modes, czmq reads them back,
    no overwrite without --force, bad names and directories exit 2.     */

#include "testutil.h"

#include <sys/stat.h>

#define WAIT_MS 10000

static mode_t
s_mode (const char *dir, const char *name)
{
    char path[600];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    struct stat info;
    cr_assert_eq (stat (path, &info), 0, "%s", path);
    return info.st_mode & 07777;
}

static void
s_remove (char *dir)
{
    tu_rmdir (dir);
    free (dir);
}

static int
s_keygen (const char *const *args, char **out_p, char **err_p)
{
    return tu_run_bin ("zkit-keygen", args, out_p, err_p, WAIT_MS);
}

Test (cli_keygen, help_has_usage_and_an_example, .timeout = 30)
{
    char *out, *err;
    int rc = s_keygen ((const char *[]){"--help", NULL}, &out, &err);
    cr_assert_eq (rc, 0);
    cr_assert_not_null (strstr (out, "Usage: zkit-keygen NAME"), "%s", out);
    cr_assert_not_null (strstr (out, "Examples:\n  zkit-keygen server"), "%s", out);
    cr_assert_not_null (strstr (out, "--force"), "%s", out);
    cr_assert_str_eq (err, "");
    free (out);
    free (err);
}

Test (cli_keygen, writes_a_pair_czmq_reads_back, .timeout = 30)
{
    char *dir = tu_tmpdir ();
    char *out, *err;
    int rc = s_keygen ((const char *[]){"server", "--dir", dir, "--meta", "email=ops@example.com",
                                        "-m", "role=queue", NULL},
                       &out, &err);
    cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
    cr_assert_eq (strlen (out), 41, "one line, the Z85 public key: '%s'", out);
    out[40] = 0;

    cr_assert_eq (s_mode (dir, "server_secret"), 0600);
    mode_t public_mode = s_mode (dir, "server");
    cr_assert (public_mode & 0400);
    cr_assert_eq (public_mode & 0022, 0, "public file writable by others: %o", public_mode);

    //  czmq's own loader: it prefers server_secret, so both keys come back.
    char path[600];
    snprintf (path, sizeof path, "%s/server", dir);
    zcert_t *cert = zcert_load (path);
    cr_assert_not_null (cert);
    cr_assert_str_eq (zcert_public_txt (cert), out);
    cr_assert_neq (strspn (zcert_secret_txt (cert), "0"), 40, "the secret key was read");
    cr_assert_str_eq (zcert_meta (cert, "email"), "ops@example.com");
    cr_assert_str_eq (zcert_meta (cert, "role"), "queue");
    zcert_destroy (&cert);

    //  The public file alone, through a certificate store (what zauth uses).
    char *public_text = tu_slurp (path);
    cr_assert_not_null (public_text);
    cr_assert_null (strstr (public_text, "secret-key"), "%s", public_text);
    char *store_dir = tu_tmpdir ();
    char store_path[600];
    snprintf (store_path, sizeof store_path, "%s/server", store_dir);
    FILE *file = fopen (store_path, "w");
    fputs (public_text, file);
    fclose (file);
    zcertstore_t *store = zcertstore_new (store_dir);
    cr_assert_not_null (store);
    zcert_t *found = zcertstore_lookup (store, out);
    cr_assert_not_null (found, "zcertstore does not find the public key");
    zcertstore_destroy (&store);

    free (public_text);
    free (out);
    free (err);
    s_remove (store_dir);
    s_remove (dir);
}

Test (cli_keygen, writes_into_the_current_directory, .timeout = 30)
{
    char *dir = tu_tmpdir ();
    char bin[512], absolute[PATH_MAX], script[2 * PATH_MAX];
    cr_assert_not_null (realpath (tu_bin ("zkit-keygen", bin, sizeof bin), absolute));
    snprintf (script, sizeof script, "cd '%s' && exec '%s' client-1", dir, absolute);
    char *out, *err;
    int rc = tu_run (dir, (char *[]){"/bin/sh", "-c", script, NULL}, NULL, &out, &err, WAIT_MS);
    cr_assert_eq (rc, 0, "exit %d: %s", rc, err);
    cr_assert_eq (s_mode (dir, "client-1_secret"), 0600);
    cr_assert (s_mode (dir, "client-1") & 0400);
    free (out);
    free (err);
    s_remove (dir);
}

Test (cli_keygen, refuses_to_overwrite_without_force, .timeout = 30)
{
    char *dir = tu_tmpdir ();
    char *first, *out, *err;
    cr_assert_eq (s_keygen ((const char *[]){"k", "--dir", dir, NULL}, &first, &err), 0);
    free (err);
    char path[600];
    snprintf (path, sizeof path, "%s/k_secret", dir);
    char *before = tu_slurp (path);

    int rc = s_keygen ((const char *[]){"k", "--dir", dir, NULL}, &out, &err);
    cr_assert_eq (rc, 1);
    cr_assert_str_eq (out, "");
    cr_assert_not_null (strstr (err, "exists (use --force to replace it)"), "%s", err);
    char *after = tu_slurp (path);
    cr_assert_str_eq (before, after, "the secret file was changed");
    free (after);
    free (out);
    free (err);

    //  Only the secret file exists: still refused, and no public file appears.
    snprintf (path, sizeof path, "%s/j_secret", dir);
    FILE *file = fopen (path, "w");
    fclose (file);
    cr_assert_eq (s_keygen ((const char *[]){"j", "--dir", dir, NULL}, &out, &err), 1);
    snprintf (path, sizeof path, "%s/j", dir);
    cr_assert_eq (access (path, F_OK), -1);
    free (out);
    free (err);

    //  --force replaces the pair, and the secret file is 0600 again.
    snprintf (path, sizeof path, "%s/k_secret", dir);
    cr_assert_eq (chmod (path, 0644), 0);
    rc = s_keygen ((const char *[]){"k", "--dir", dir, "--force", NULL}, &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_assert_str_neq (out, first, "a new key");
    cr_assert_eq (s_mode (dir, "k_secret"), 0600);
    free (out);
    free (err);

    //  No temporary file left behind: k, k_secret, j_secret.
    zdir_t *listing = zdir_new (dir, NULL);
    cr_assert_eq (zdir_count (listing), 3);
    zdir_destroy (&listing);
    free (before);
    free (first);
    s_remove (dir);
}

Test (cli_keygen, bad_names_and_directories_exit_2, .timeout = 60)
{
    char *dir = tu_tmpdir ();
    char missing[600], plain[600];
    snprintf (missing, sizeof missing, "%s/missing", dir);
    snprintf (plain, sizeof plain, "%s/plain", dir);
    FILE *file = fopen (plain, "w");
    fclose (file);
    char long_name[300];
    memset (long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    struct {
        const char *args[6];
        const char *needle;
    } cases[] = {
        {{"", "--dir", dir}, "zkit-keygen: the certificate name is empty"},
        {{"a/b", "--dir", dir}, "zkit-keygen: the certificate name may hold only"},
        {{"../up", "--dir", dir}, "no '/': use --dir"},
        {{"..", "--dir", dir}, "zkit-keygen: '..' is not a certificate name"},
        {{long_name, "--dir", dir}, "longer than 200 bytes"},
        {{"k", "--dir", missing}, "zkit-keygen: --dir"},
        {{"k", "--dir", plain}, "not a directory"},
        {{"k", "--dir", dir, "--meta", "novalue"}, "expected KEY=VALUE"},
        {{"k", "--dir", dir, "--meta", "k=\"q\""}, "without '\"'"},
        {{"k", "extra", "--dir", dir}, "zkit-keygen:"},
        {{NULL}, "Usage: zkit-keygen"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        int rc = s_keygen (cases[i].args, &out, &err);
        cr_assert_eq (rc, 2, "case %zu: exit %d: %s", i, rc, err);
        cr_assert_str_eq (out, "");
        cr_assert_not_null (strstr (err, cases[i].needle), "case %zu: %s", i, err);
        if (cases[i].args[0])
            cr_assert_eq (strchr (err, '\n'), err + strlen (err) - 1, "case %zu: one line: %s", i,
                          err);
        free (out);
        free (err);
    }
    //  Nothing was written anywhere.
    zdir_t *listing = zdir_new (dir, NULL);
    cr_assert_eq (zdir_count (listing), 1);
    zdir_destroy (&listing);
    s_remove (dir);
}
