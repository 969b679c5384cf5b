/*  zkit-keygen — a CURVE key pair as czmq certificate files (the work is zk_cert).  */

#include "../include/zkit.h"
#include "../include/zk_cert.h"

int
main (int argc, char **argv)
{
    zk_cert_keygen_config_t config = {0};
    zk_option_t options[] = {
        {"dir", 'd', ZK_OPT_STRING, &config.dir, "DIR",
         "write the files into DIR (default: the current directory)"},
        {"force", 'f', ZK_OPT_FLAG, &config.force, NULL, "replace existing files"},
        {"meta", 'm', ZK_OPT_LIST, &config.meta, "KEY=VALUE",
         "certificate metadata (repeatable), e.g. --meta email=ops@example.com"},
        {NULL},
    };
    zk_cli_t cli = {
        .program = "zkit-keygen",
        .usage = "NAME [options]",
        .summary = "Write a new CURVE key pair as the certificate files NAME and NAME_secret.",
        .description =
            "NAME holds the public key: give it to the peers (a server's to its clients\n"
            "for --curve-server, a client's into the server's --curve-allow directory).\n"
            "NAME_secret holds both keys, is created with mode 0600 and must stay with\n"
            "its owner (--curve-secret). Both are czmq certificate files (zcert), so\n"
            "czmq's zcert_load and zauth read them too. Existing files are never\n"
            "replaced without --force. NAME: letters, digits and ._@+- (no '/': use\n"
            "--dir). The public key (Z85, 40 characters) is printed on stdout.",
        .examples = "  zkit-keygen server --dir /etc/zkit\n"
                    "  zkit-keygen client-1 --meta email=ops@example.com\n"
                    "  cp client-1 /etc/zkit/allowed/    # let client-1 in",
        .exit_status = "0 ok, 1 the files could not be written (or exist: see --force),\n"
                       "2 usage error (a bad NAME, --meta or --dir).",
        .options = options,
        .min_args = 1,
        .max_args = 1,
    };
    char **args;
    zk_cli_parse (&cli, argc, argv, &args);
    config.name = args[0];
    char reason[512];
    if (zk_cert_keygen_validate (&config, reason, sizeof reason))
        zk_cli_usage_error (&cli, "%s", reason);
    char public_txt[41];
    if (zk_cert_keygen (&config, public_txt) != 0)
        return 1;
    printf ("%s\n", public_txt);
    return fflush (stdout) == 0 ? 0 : 1;
}
