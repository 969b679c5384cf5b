/*  zk_spec — the socket spec parser, and attaching real sockets.  */

#include "testutil.h"
#include "../include/zk_cert.h"

#include <sys/stat.h>

Test (zk_spec, parses_bind_and_connect)
{
    zk_spec_t *spec = zk_spec_new ("pull@tcp://*:7557");
    cr_assert_not_null (spec);
    cr_assert_eq (zk_spec_type (spec), ZMQ_PULL);
    cr_assert_str_eq (zk_spec_type_name (spec), "pull");
    cr_assert_eq (zk_spec_size (spec), 1);
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "tcp://*:7557");
    cr_assert (zk_spec_binds (spec, 0));
    zk_spec_destroy (&spec);
    cr_assert_null (spec);

    spec = zk_spec_new ("push>tcp://10.0.0.5:7558,ipc:///run/a.sock");
    cr_assert_not_null (spec);
    cr_assert_eq (zk_spec_type (spec), ZMQ_PUSH);
    cr_assert_eq (zk_spec_size (spec), 2);
    cr_assert_str_eq (zk_spec_endpoint (spec, 1), "ipc:///run/a.sock");
    cr_assert_not (zk_spec_binds (spec, 0));
    cr_assert_not (zk_spec_binds (spec, 1));
    zk_spec_destroy (&spec);
    zk_spec_destroy (&spec);  //  safe on NULL
}

Test (zk_spec, every_type_is_known)
{
    const char *names[] = {"pub", "sub", "xpub",   "xsub",   "push", "pull",
                           "req", "rep", "dealer", "router", "pair"};
    int types[] = {ZMQ_PUB, ZMQ_SUB, ZMQ_XPUB,   ZMQ_XSUB,   ZMQ_PUSH, ZMQ_PULL,
                   ZMQ_REQ, ZMQ_REP, ZMQ_DEALER, ZMQ_ROUTER, ZMQ_PAIR};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char text[64];
        snprintf (text, sizeof text, "%s>inproc://x", names[i]);
        zk_spec_t *spec = zk_spec_new (text);
        cr_assert_not_null (spec, "%s", text);
        cr_assert_eq (zk_spec_type (spec), types[i]);
        cr_assert_str_eq (zk_spec_type_to_name (types[i]), names[i]);
        zk_spec_destroy (&spec);
    }
    cr_assert_eq (zk_spec_type_from_name ("stream"), -1);
}

Test (zk_spec, per_endpoint_direction_overrides)
{
    zk_spec_t *spec = zk_spec_new ("dealer@tcp://127.0.0.1:*,>ipc:///tmp/x.sock,@inproc://y");
    cr_assert_not_null (spec);
    cr_assert_eq (zk_spec_size (spec), 3);
    cr_assert (zk_spec_binds (spec, 0));
    cr_assert_not (zk_spec_binds (spec, 1));
    cr_assert (zk_spec_binds (spec, 2));
    cr_assert_str_eq (zk_spec_endpoint (spec, 1), "ipc:///tmp/x.sock");
    zk_spec_destroy (&spec);
}

//  text is refused, with a reason that contains reason_part.
static void
s_assert_refused (const char *text, const char *reason_part)
{
    char reason[256] = "";
    cr_assert_eq (zk_spec_validate (text, reason, sizeof reason), ZK_EINVAL, "accepted '%s'", text);
    cr_assert (strstr (reason, reason_part), "'%s': reason '%s' lacks '%s'", text, reason,
               reason_part);
    cr_assert_null (zk_spec_new (text));
}

Test (zk_spec, rejects_malformed_specs_with_a_reason)
{
    struct {
        const char *text;
        const char *reason_part;
    } cases[] = {
        {"", "empty"},
        {"pull", "TYPE@ENDPOINT"},
        {"tcp://127.0.0.1:5", "TYPE@ENDPOINT"},
        {"foo@tcp://*:1", "unknown socket type 'foo'"},
        {"@tcp://*:1", "unknown socket type"},
        {"pull@", "empty endpoint"},
        {"pull@tcp://*:1,", "empty endpoint"},
        {"pull@tcp://*:1,,tcp://*:2", "empty endpoint"},
        {"pull@localhost:5", "TRANSPORT://ADDRESS"},
        {"pull@http://x:1", "unknown transport"},
        {"pull@tcp://", "no address"},
        {"pull@tcp://host", "HOST:PORT"},
        {"pull@tcp://host:", "HOST:PORT"},
        {"push>tcp://host:*", "wildcard port only works when binding"},
        {"push>tcp://host:70000", "bad port"},
        {"push>tcp://host:12x", "bad port"},
        {"push>tcp://ho st:1", "contains"},
        {"push>tcp://host:1\n", "contains"},
        {"averyveryverylongtypename@tcp://*:1", "unknown socket type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_assert_refused (cases[i].text, cases[i].reason_part);
    cr_assert_eq (zk_spec_validate (NULL, NULL, 0), ZK_EINVAL);
}

Test (zk_spec, bounds_length_and_endpoint_count)
{
    //  A huge spec is refused without reading past its limit.
    size_t size = ZK_SPEC_MAX_TEXT + 100;
    char *text = malloc (size + 1);
    memcpy (text, "push>inproc://", 14);
    memset (text + 14, 'a', size - 14);
    text[size] = 0;
    char reason[256];
    cr_assert_eq (zk_spec_validate (text, reason, sizeof reason), ZK_EINVAL);
    cr_assert (strstr (reason, "longer than"));
    free (text);

    //  Too many endpoints.
    char many[ZK_SPEC_MAX_TEXT];
    size_t used = (size_t) snprintf (many, sizeof many, "push>inproc://a0");
    for (int i = 1; i <= ZK_SPEC_MAX_ENDPOINTS; i++)
        used += (size_t) snprintf (many + used, sizeof many - used, ",inproc://a%d", i);
    cr_assert_eq (zk_spec_validate (many, reason, sizeof reason), ZK_EINVAL);
    cr_assert (strstr (reason, "more than"), "%s", reason);
}

Test (zk_spec, garbage_never_crashes)
{
    //  Every byte pattern of a few lengths: parse must answer, never crash.
    unsigned int seed = 42;
    for (int round = 0; round < 20000; round++) {
        char text[48];
        size_t length = (size_t) (rand_r (&seed) % (sizeof text - 1));
        for (size_t i = 0; i < length; i++) {
            //  Bias toward the spec's own alphabet so deep paths are reached.
            const char alphabet[] = "pushl@>:/,*tcpinro0123456789.x";
            int pick = rand_r (&seed);
            text[i] = (pick & 1) ? alphabet[(pick >> 1) % (sizeof alphabet - 1)]
                                 : (char) ((pick >> 1) & 0xff);
            if (!text[i])
                text[i] = 'x';
        }
        text[length] = 0;
        zk_spec_validate (text, NULL, 0);
    }
}

Test (zk_spec, attaches_and_resolves_ephemeral_ports, .timeout = 10)
{
    int rc = 0;
    zk_spec_t *spec = zk_spec_new ("pull@tcp://127.0.0.1:*");
    zsock_t *pull = zk_spec_socket (spec);
    cr_assert_not_null (pull);
    cr_assert_eq (zk_spec_attach (spec, pull), 0);
    const char *bound = zk_spec_resolved (spec, 0);
    cr_assert (strncmp (bound, "tcp://127.0.0.1:", 16) == 0, "%s", bound);
    cr_assert (atoi (bound + 16) > 0);

    char connect[128];
    snprintf (connect, sizeof connect, "push>%s", bound);
    zsock_t *push = zk_sock_new (connect, &rc);
    cr_assert_not_null (push);
    cr_assert_eq (rc, 0);
    zstr_send (push, "hello");
    zmsg_t *msg = tu_recv (pull, 5000);
    cr_assert_not_null (msg);
    char *text = zmsg_popstr (msg);
    cr_assert_str_eq (text, "hello");
    free (text);
    zmsg_destroy (&msg);

    //  The same port again: address in use, a clear code.
    char again[128];
    snprintf (again, sizeof again, "pull@%s", bound);
    cr_assert_null (zk_sock_new (again, &rc));
    cr_assert_eq (rc, ZK_EADDRINUSE);

    cr_assert_null (zk_sock_new ("pull@nonsense", &rc));
    cr_assert_eq (rc, ZK_EINVAL);

    zsock_destroy (&push);
    zsock_destroy (&pull);
    zk_spec_destroy (&spec);
}

Test (zk_spec, parses_queue_specs)
{
    zk_spec_t *spec = zk_spec_new ("queue>tcp://127.0.0.1:7570/orders");
    cr_assert_not_null (spec);
    cr_assert_eq (zk_spec_type (spec), ZK_SPEC_QUEUE);
    cr_assert_str_eq (zk_spec_type_name (spec), "queue");
    cr_assert_str_eq (zk_spec_queue_name (spec), "orders");
    cr_assert_eq (zk_spec_size (spec), 1);
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "tcp://127.0.0.1:7570");
    cr_assert_not (zk_spec_binds (spec, 0));
    cr_assert_str_eq (zk_spec_text (spec), "queue>tcp://127.0.0.1:7570/orders");
    zk_spec_destroy (&spec);

    //  Several endpoints share the one name written after the last.
    spec = zk_spec_new ("queue>tcp://a:1,>tcp://b:2,ipc:///run/zk/q.sock/orders.dead");
    cr_assert_not_null (spec);
    cr_assert_eq (zk_spec_size (spec), 3);
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "tcp://a:1");
    cr_assert_str_eq (zk_spec_endpoint (spec, 1), "tcp://b:2");
    cr_assert_str_eq (zk_spec_endpoint (spec, 2), "ipc:///run/zk/q.sock");
    cr_assert_str_eq (zk_spec_queue_name (spec), "orders.dead");
    zk_spec_destroy (&spec);

    //  Names at the limits of the alphabet and the length.
    char longest[256];
    memset (longest, 'q', ZK_SPEC_QUEUE_NAME_MAX);
    longest[ZK_SPEC_QUEUE_NAME_MAX] = 0;
    char text[512];
    snprintf (text, sizeof text, "queue>inproc://x/%s", longest);
    spec = zk_spec_new (text);
    cr_assert_not_null (spec);
    cr_assert_str_eq (zk_spec_queue_name (spec), longest);
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "inproc://x");
    zk_spec_destroy (&spec);
    cr_assert_eq (zk_spec_validate ("queue>tcp://h:1/A-z_0.9", NULL, 0), 0);

    //  Other specs have no queue name; the type name maps both ways.
    spec = zk_spec_new ("dealer>tcp://h:1");
    cr_assert_null (zk_spec_queue_name (spec));
    zk_spec_destroy (&spec);
    cr_assert_eq (zk_spec_type_from_name ("queue"), ZK_SPEC_QUEUE);
    cr_assert_str_eq (zk_spec_type_to_name (ZK_SPEC_QUEUE), "queue");
}

Test (zk_spec, rejects_bad_queue_specs_with_a_reason)
{
    char too_long[512];
    memset (too_long, 0, sizeof too_long);
    strcpy (too_long, "queue>tcp://h:1/");
    memset (too_long + strlen (too_long), 'q', ZK_SPEC_QUEUE_NAME_MAX + 1);
    struct {
        const char *text;
        const char *reason_part;
    } cases[] = {
        {"queue@tcp://*:7570/orders", "only connects"},
        {"queue>tcp://a:1,@tcp://*:2/orders", "only connects"},
        {"queue>tcp://127.0.0.1:7570", "without a queue name"},
        {"queue>tcp://127.0.0.1:7570/", "empty queue name"},
        {"queue>tcp://h:1/.hidden", "starts with '.'"},
        {"queue>tcp://h:1/a..b", "contains '..'"},
        {"queue>tcp://h:1/a b", "contains"},
        {"queue>tcp://h:1/a*b", "contains '*'"},
        {"queue>tcp://h:1/a\tb", "contains"},
        {"queue>tcp://h:1/caf\xc3\xa9", "contains 0xc3"},
        {too_long, "longer than 128"},
        {"queue>tcp://a:1/orders,tcp://b:2/orders", "goes once, after the last endpoint"},
        {"queue>tcp://h:*/orders", "wildcard port only works when binding"},
        {"queue>localhost:1/orders", "TRANSPORT://ADDRESS"},
        {"queue>/orders", "TRANSPORT://ADDRESS"},
        {"queue>", "empty endpoint"},
        {"queue>tcp://a:1,/orders", "TRANSPORT://ADDRESS"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_assert_refused (cases[i].text, cases[i].reason_part);
    //  The checker alone, as servers use it on names off the wire.
    cr_assert_eq (zk_spec_check_queue_name ("orders", 6, NULL, 0), 0);
    cr_assert_eq (zk_spec_check_queue_name ("ord\0rs", 6, NULL, 0), ZK_EINVAL);
    cr_assert_eq (zk_spec_check_queue_name ("", 0, NULL, 0), ZK_EINVAL);
    cr_assert_eq (zk_spec_check_queue_name (NULL, 0, NULL, 0), ZK_EINVAL);
}

Test (zk_spec, queue_spec_makes_a_connected_dealer, .timeout = 10)
{
    //  A queue spec is a DEALER underneath: a ROUTER sees its frames.
    char endpoint[256];
    zsock_t *router = tu_bind_ephemeral (ZMQ_ROUTER, endpoint, sizeof endpoint);
    cr_assert_not_null (router);
    char text[300];
    snprintf (text, sizeof text, "queue>%s/orders", endpoint);
    int rc;
    zsock_t *dealer = zk_sock_new (text, &rc);
    cr_assert_not_null (dealer);
    cr_assert_eq (rc, 0);
    cr_assert_eq (zsock_type (dealer), ZMQ_DEALER);
    cr_assert_eq (zsock_heartbeat_ivl (dealer), ZK_SPEC_HEARTBEAT_IVL_MS);
    cr_assert_eq (zsock_heartbeat_timeout (dealer), ZK_SPEC_HEARTBEAT_TIMEOUT_MS);
    zstr_send (dealer, "ZKQ1");
    zmsg_t *msg = tu_recv (router, 5000);
    cr_assert_not_null (msg);
    cr_assert_eq (zmsg_size (msg), 2);
    zmsg_destroy (&msg);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}

//  ---------------------------------------------------------------- security options

//  Keys in a fresh directory: server, client (pairs), allowed/ (client's
//  public file), open_secret (mode 0644), server_only_public (0600, no
//  secret key), junk (not a certificate).
typedef struct {
    char *dir;
    char path[8][700];
} s_keys_t;

enum { K_SERVER_SECRET, K_SERVER, K_CLIENT_SECRET, K_ALLOWED, K_OPEN_SECRET, K_NO_SECRET, K_JUNK };

static void
s_keys_make (s_keys_t *keys)
{
    keys->dir = tu_tmpdir ();
    const char *names[] = {"server_secret", "server",  "client_secret", "allowed",
                           "open_secret",   "pubonly", "junk"};
    for (int index = 0; index < 7; index++)
        snprintf (keys->path[index], sizeof keys->path[index], "%s/%s", keys->dir, names[index]);
    zcert_t *server = zcert_new (), *client = zcert_new (), *open = zcert_new ();
    cr_assert_eq (zk_cert_save (server, keys->dir, "server", false), 0);
    cr_assert_eq (zk_cert_save (client, keys->dir, "client", false), 0);
    cr_assert_eq (zk_cert_save (open, keys->dir, "open", false), 0);
    cr_assert_eq (chmod (keys->path[K_OPEN_SECRET], 0644), 0);
    cr_assert_eq (mkdir (keys->path[K_ALLOWED], 0755), 0);
    char path[800];
    snprintf (path, sizeof path, "%s/client", keys->path[K_ALLOWED]);
    cr_assert_eq (zcert_save_public (client, path), 0);
    cr_assert_eq (zcert_save_public (server, keys->path[K_NO_SECRET]), 0);
    cr_assert_eq (chmod (keys->path[K_NO_SECRET], 0600), 0);
    FILE *junk = fopen (keys->path[K_JUNK], "w");
    fputs ("\x01\x02 not a certificate\n", junk);
    fclose (junk);
    zcert_destroy (&server);
    zcert_destroy (&client);
    zcert_destroy (&open);
}

static void
s_keys_free (s_keys_t *keys)
{
    tu_rmdir (keys->dir);
    free (keys->dir);
}

Test (zk_spec, parses_security_options)
{
    s_keys_t keys;
    s_keys_make (&keys);
    char text[4096];
    snprintf (
        text, sizeof text,
        "pull@tcp://127.0.0.1:*,ipc://%s/s.sock?curve-secret=%s&curve-allow=%s&allow=10.0.0.0/8"
        "&deny=10.0.0.5&allow=::1&domain=orders-in",
        keys.dir, keys.path[K_SERVER_SECRET], keys.path[K_ALLOWED]);
    cr_assert_eq (zk_spec_validate (text, NULL, 0), 0);
    zk_spec_t *spec = zk_spec_new (text);
    cr_assert_not_null (spec);
    cr_assert_str_eq (zk_spec_text (spec), text);
    cr_assert_eq (zk_spec_size (spec), 2);
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "tcp://127.0.0.1:*");
    cr_assert_null (strchr (zk_spec_endpoint (spec, 1), '?'));
    const zk_spec_security_t *security = zk_spec_security (spec);
    cr_assert (security->options);
    cr_assert (security->curve);
    cr_assert_str_eq (security->curve_secret, keys.path[K_SERVER_SECRET]);
    cr_assert_str_eq (security->curve_allow, keys.path[K_ALLOWED]);
    cr_assert_null (security->curve_server);
    cr_assert_str_eq (security->domain, "orders-in");
    cr_assert_eq (security->allow_count, 2);
    cr_assert_str_eq (security->allow[0], "10.0.0.0/8");
    cr_assert_str_eq (security->allow[1], "::1");
    cr_assert_eq (security->deny_count, 1);
    cr_assert_str_eq (security->deny[0], "10.0.0.5");
    zk_spec_destroy (&spec);

    //  A connecting CURVE client, and a queue spec (the NAME before the '?').
    snprintf (text, sizeof text,
              "queue>tcp://127.0.0.1:7/orders.v2?curve-secret=%s&curve-server=%s",
              keys.path[K_CLIENT_SECRET], keys.path[K_SERVER]);
    spec = zk_spec_new (text);
    cr_assert_not_null (spec);
    cr_assert_str_eq (zk_spec_queue_name (spec), "orders.v2");
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "tcp://127.0.0.1:7");
    security = zk_spec_security (spec);
    cr_assert (security->curve);
    cr_assert_str_eq (security->curve_server, keys.path[K_SERVER]);
    cr_assert_str_eq (security->domain, ZK_AUTH_DEFAULT_DOMAIN);
    zk_spec_destroy (&spec);

    //  No options, and a bare '?' (no options, on purpose).
    spec = zk_spec_new ("pull@tcp://127.0.0.1:*");
    security = zk_spec_security (spec);
    cr_assert_not (security->options);
    cr_assert_not (security->curve);
    cr_assert_str_eq (security->domain, "zkit");
    cr_assert_eq (security->allow_count + security->deny_count, 0);
    zk_spec_destroy (&spec);
    spec = zk_spec_new ("pull@tcp://127.0.0.1:*?");
    cr_assert_not_null (spec);
    cr_assert (zk_spec_security (spec)->options);
    cr_assert_not (zk_spec_security (spec)->curve);
    cr_assert_str_eq (zk_spec_endpoint (spec, 0), "tcp://127.0.0.1:*");
    zk_spec_destroy (&spec);
    s_keys_free (&keys);
}

Test (zk_spec, rejects_bad_security_options_with_a_reason)
{
    s_keys_t keys;
    s_keys_make (&keys);
    const char *server_secret = keys.path[K_SERVER_SECRET], *server = keys.path[K_SERVER];
    const char *client_secret = keys.path[K_CLIENT_SECRET], *allowed = keys.path[K_ALLOWED];
    char many[2048] = "pull@tcp://*:1?";
    for (int index = 0; index <= ZK_SPEC_MAX_ADDRESSES; index++)
        snprintf (many + strlen (many), sizeof many - strlen (many), "%sallow=10.0.0.%d",
                  index ? "&" : "", index % 250);
    struct {
        char text[2200];
        const char *reason_part;
    } cases[] = {
        {"pull@tcp://*:1?foo=1", "unknown option 'foo'"},
        {"pull@tcp://*:1?allow", "is not KEY=VALUE"},
        {"pull@tcp://*:1?allow=", "has an empty value"},
        {"pull@tcp://*:1?allow=1.2.3.4&&deny=1.2.3.5", "an empty option"},
        {"pull@tcp://*:1?allow=1.2.3.4&", "an empty option"},
        {"pull@tcp://*:1?&", "an empty option"},
        {"pull@tcp://*:1?domain=a&domain=b", "given twice"},
        {"pull@tcp://*:1?allow=1.2.3.400", "not an IP address"},
        {"pull@tcp://*:1?deny=example.com", "not an IP address"},
        {"pull@tcp://*:1?domain=a/b", "domain=:"},
        {"pull@tcp://*:1?allow=1.2.3.4 x", "contain 0x20"},
        {"pull@tcp://*:1?allow=1.2.3.4\xff", "contain 0xff"},
        {"pull@tcp://*:1?a=b?c=d", "unknown option 'a'"},
        {"push>tcp://h:1?allow=1.2.3.4", "only apply to a spec that binds"},
        {"push>tcp://h:1?domain=x", "only apply to a spec that binds"},
        {"queue>tcp://h:1/orders?deny=1.2.3.4", "only apply to a spec that binds"},
        {"?allow=1.2.3.4", "TYPE@ENDPOINT"},
        {"pull@?allow=1.2.3.4", "empty endpoint"},
    };
    size_t count = sizeof cases / sizeof cases[0];
    for (size_t index = 0; index < count; index++)
        s_assert_refused (cases[index].text, cases[index].reason_part);
    s_assert_refused (many, "more than 64 allow= addresses");
    //  Options that need each other, in the wrong direction, or files that fail.
    struct {
        const char *format;
        const char *a, *b;
        const char *reason_part;
    } files[] = {
        {"pull@tcp://*:1?curve-secret=%s&curve-server=%s", server_secret, server,
         "curve-server=FILE is for a spec that connects"},
        {"push>tcp://h:1?curve-secret=%s%s", client_secret, "", "needs curve-server=FILE"},
        {"push>tcp://h:1?curve-server=%s%s", server, "", "needs curve-secret=FILE"},
        {"pull@tcp://*:1?curve-allow=%s%s", allowed, "", "curve-allow=DIR needs curve-secret"},
        {"dealer@tcp://*:1,>tcp://h:2?curve-secret=%s%s", server_secret, "",
         "both binds and connects"},
        {"pull@tcp://*:1?curve-secret=%s/none%s", keys.dir, "", "No such file"},
        {"pull@tcp://*:1?curve-secret=%s%s", keys.path[K_OPEN_SECRET], "", "readable by others"},
        {"pull@tcp://*:1?curve-secret=%s%s", keys.path[K_NO_SECRET], "",
         "no valid curve secret-key"},
        {"pull@tcp://*:1?curve-secret=%s%s", keys.path[K_JUNK], "", "curve-secret:"},
        {"pull@tcp://*:1?curve-secret=%s%s", keys.dir, "", "not a regular file"},
        {"push>tcp://h:1?curve-secret=%s&curve-server=%s", client_secret, keys.path[K_JUNK],
         "curve-server:"},
        {"pull@tcp://*:1?curve-secret=%s&curve-allow=%s", server_secret, server, "not a directory"},
        {"pull@tcp://*:1?curve-secret=%s&curve-allow=%s/none", server_secret, keys.dir,
         "No such file"},
    };
    for (size_t index = 0; index < sizeof files / sizeof files[0]; index++) {
        char text[2200];
        snprintf (text, sizeof text, files[index].format, files[index].a, files[index].b);
        s_assert_refused (text, files[index].reason_part);
    }
    s_keys_free (&keys);
}

Test (zk_spec, security_options_configure_the_socket, .timeout = 30)
{
    s_keys_t keys;
    s_keys_make (&keys);
    char text[4096];
    snprintf (text, sizeof text, "pull@tcp://127.0.0.1:*?curve-secret=%s&domain=configured",
              keys.path[K_SERVER_SECRET]);
    zsock_t *server = zk_sock_new (text, NULL);
    cr_assert_not_null (server);
    cr_assert_eq (zsock_mechanism (server), ZMQ_CURVE);
    cr_assert_eq (zsock_curve_server (server), 1);
    char *domain = zsock_zap_domain (server);
    cr_assert_str_eq (domain, "configured");
    zstr_free (&domain);

    char *last = zsock_last_endpoint (server);
    snprintf (text, sizeof text, "push>%s?curve-secret=%s&curve-server=%s", last,
              keys.path[K_CLIENT_SECRET], keys.path[K_SERVER]);
    zstr_free (&last);
    zsock_t *client = zk_sock_new (text, NULL);
    cr_assert_not_null (client);
    cr_assert_eq (zsock_mechanism (client), ZMQ_CURVE);
    cr_assert_eq (zsock_curve_server (client), 0);
    zcert_t *server_cert = zcert_load (keys.path[K_SERVER]);
    char *server_key = zsock_curve_serverkey (client);
    cr_assert_str_eq (server_key, zcert_public_txt (server_cert));
    zstr_free (&server_key);
    zcert_destroy (&server_cert);
    //  Any CURVE client gets in without curve-allow (encrypted, not authenticated).
    zstr_send (client, "secret");
    zmsg_t *got = tu_recv (server, 10000);
    cr_assert_not_null (got);
    zmsg_destroy (&got);
    zsock_destroy (&client);
    zsock_destroy (&server);

    //  A spec without CURVE leaves a socket's own CURVE settings alone.
    zsock_t *own = zsock_new (ZMQ_PULL);
    zcert_t *cert = zcert_new ();
    zcert_apply (cert, own);
    zsock_set_curve_server (own, 1);
    zk_spec_t *plain = zk_spec_new ("pull@tcp://127.0.0.1:*?domain=plain");
    cr_assert_eq (zk_spec_attach (plain, own), 0);
    cr_assert_eq (zsock_mechanism (own), ZMQ_CURVE);
    domain = zsock_zap_domain (own);
    cr_assert_str_eq (domain, "plain");
    zstr_free (&domain);
    zk_spec_destroy (&plain);
    zcert_destroy (&cert);
    zsock_destroy (&own);
    s_keys_free (&keys);
}
