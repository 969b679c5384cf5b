/*  zk_auth — the ZAP handler: address and domain checks, policies by
    domain, requests answered by RFC 27 (hostile ones too), counters, the
    certificate directory, private contexts, and real sockets refused.  */

#include "testutil.h"
#include "../include/zk_cert.h"

#include <sys/stat.h>

#define WAIT_MS 10000

//  ---------------------------------------------------------------- helpers

//  A key pair saved as dir/name and dir/name_secret; the certificate.
static zcert_t *
s_cert (const char *dir, const char *name)
{
    zcert_t *cert = zcert_new ();
    cr_assert_not_null (cert);
    cr_assert_eq (zk_cert_save (cert, dir, name, false), 0);
    return cert;
}

//  Only the public file of cert, as dir/name.
static void
s_public (zcert_t *cert, const char *dir, const char *name)
{
    char path[600];
    snprintf (path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq (zcert_save_public (cert, path), 0);
}

static char *
s_subdir (const char *dir, const char *name)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    cr_assert_eq (mkdir (path, 0755), 0);
    return path;
}

//  A REQ socket on the handler of czmq's shared context.
static zsock_t *
s_zap_client (void)
{
    cr_assert_eq (zk_auth_start (NULL), 0);
    zsock_t *client = zsock_new (ZMQ_REQ);
    cr_assert_not_null (client);
    zsock_set_linger (client, 0);
    cr_assert_eq (zsock_connect (client, ZK_AUTH_ENDPOINT), 0);
    return client;
}

//  Send frames (count of them, sizes given, or strlen when sizes is
//  NULL) and return the reply's status code ("200" ...); the reply's
//  request id and user id go to id/user when not NULL.
static char *
s_ask_raw (zsock_t *client, const void *const *frames, const size_t *sizes, int count, char **id,
           char **user)
{
    zmsg_t *request = zmsg_new ();
    for (int index = 0; index < count; index++)
        zmsg_addmem (request, frames[index],
                     sizes ? sizes[index] : strlen ((const char *) frames[index]));
    cr_assert_eq (zmsg_send (&request, client), 0);
    zmsg_t *reply = tu_recv (client, WAIT_MS);
    cr_assert_not_null (reply, "no ZAP reply");
    cr_assert_eq (zmsg_size (reply), 6, "a ZAP reply has 6 frames, not %zu", zmsg_size (reply));
    char *version = zmsg_popstr (reply);
    cr_assert_str_eq (version, "1.0");
    zstr_free (&version);
    char *request_id = zmsg_popstr (reply);
    char *code = zmsg_popstr (reply);
    char *text = zmsg_popstr (reply);
    char *user_id = zmsg_popstr (reply);
    cr_assert_eq (strlen (code), 3);
    cr_assert (strlen (text) > 0);
    if (id)
        *id = request_id;
    else
        zstr_free (&request_id);
    if (user)
        *user = user_id;
    else
        zstr_free (&user_id);
    zstr_free (&text);
    zmsg_destroy (&reply);
    return code;
}

//  A well-formed request; key (32 bytes) for CURVE, else NULL.
static char *
s_ask (zsock_t *client, const char *domain, const char *address, const char *mechanism,
       const uint8_t *key, char **user)
{
    const void *frames[7] = {"1.0", "7", domain, address, "", mechanism, key};
    size_t sizes[7] = {3, 1, strlen (domain), strlen (address), 0, strlen (mechanism), 32};
    return s_ask_raw (client, frames, sizes, key ? 7 : 6, NULL, user);
}

static void
s_expect (zsock_t *client, const char *domain, const char *address, const char *mechanism,
          const uint8_t *key, const char *expected)
{
    char *code = s_ask (client, domain, address, mechanism, key, NULL);
    cr_assert_str_eq (code, expected, "%s %s from '%s': %s, expected %s", mechanism, domain,
                      address, code, expected);
    zstr_free (&code);
}

static void
s_policy (const char *domain, const char *const *allow, size_t allow_count, const char *const *deny,
          size_t deny_count, const char *curve_allow)
{
    zk_auth_policy_t policy = {domain, allow, allow_count, deny, deny_count, curve_allow};
    char reason[600] = "";
    cr_assert_eq (zk_auth_policy_add (&policy, reason, sizeof reason), 0, "%s", reason);
}

//  ---------------------------------------------------------------- checks

Test (zk_auth, checks_addresses)
{
    const char *good[] = {"127.0.0.1",   "::1",           "10.0.0.0/8",      "fe80::/10",
                          "0.0.0.0/0",   "::/0",          "::ffff:10.0.0.1", "192.168.1.7/32",
                          "2001:db8::1", "2001:db8::/128"};
    for (size_t index = 0; index < sizeof good / sizeof good[0]; index++)
        cr_assert_eq (zk_auth_check_address (good[index], NULL, 0), 0, "%s", good[index]);
    char long_text[300];
    memset (long_text, '1', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = 0;
    const char *bad[] = {"",         "1.2.3",      "1.2.3.4/33",  "::1/129",  "localhost",
                         "1.2.3.4/", "1.2.3.4/-1", "1.2.3.4 ",    " 1.2.3.4", "1.2.3.4/1/2",
                         "[::1]",    long_text,    "1.2.3.4/0008"};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++) {
        char reason[256] = "";
        cr_assert_eq (zk_auth_check_address (bad[index], reason, sizeof reason), ZK_EINVAL, "%s",
                      bad[index]);
        cr_assert (strstr (reason, "is not an IP address"), "%s", reason);
    }
    cr_assert_eq (zk_auth_check_address (NULL, NULL, 0), ZK_EINVAL);
}

Test (zk_auth, checks_domains_and_directories)
{
    cr_assert_eq (zk_auth_check_domain ("zkit", NULL, 0), 0);
    cr_assert_eq (zk_auth_check_domain ("a.b-c_D9", NULL, 0), 0);
    char long_name[ZK_AUTH_DOMAIN_MAX + 2];
    memset (long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    const char *bad[] = {"", "a b", "a/b", "dom\xc3\xa9", long_name};
    for (size_t index = 0; index < sizeof bad / sizeof bad[0]; index++)
        cr_assert_eq (zk_auth_check_domain (bad[index], NULL, 0), ZK_EINVAL, "%s", bad[index]);
    char *dir = tu_tmpdir ();
    char reason[600] = "";
    cr_assert_eq (zk_auth_check_dir (dir, reason, sizeof reason), 0);
    char *missing = zsys_sprintf ("%s/none", dir);
    cr_assert_eq (zk_auth_check_dir (missing, reason, sizeof reason), ZK_EINVAL);
    cr_assert (strstr (reason, "No such file"), "%s", reason);
    zcert_t *cert = s_cert (dir, "server");
    char *file = zsys_sprintf ("%s/server", dir);
    cr_assert_eq (zk_auth_check_dir (file, reason, sizeof reason), ZK_EINVAL);
    cr_assert (strstr (reason, "not a directory"), "%s", reason);
    zcert_destroy (&cert);
    zstr_free (&file);
    zstr_free (&missing);
    tu_rmdir (dir);
    free (dir);
}

Test (zk_auth, a_domain_keeps_one_policy)
{
    const char *allow[] = {"10.0.0.0/8", "127.0.0.1"};
    const char *same[] = {"127.0.0.1", "10.1.2.3/8"};  //  same networks, other order
    s_policy ("policy-a", allow, 2, NULL, 0, NULL);
    cr_assert (zk_auth_policy_exists ("policy-a"));
    cr_assert_not (zk_auth_policy_exists ("policy-b"));
    s_policy ("policy-a", same, 2, NULL, 0, NULL);
    zk_auth_policy_t other = {"policy-a", allow, 1, NULL, 0, NULL};
    char reason[600] = "";
    cr_assert_eq (zk_auth_policy_add (&other, reason, sizeof reason), ZK_EBUSY);
    cr_assert (strstr (reason, "domain=NAME"), "%s", reason);
    //  The default domain, and bad policies.
    zk_auth_policy_t open_policy = {NULL};
    cr_assert_eq (zk_auth_policy_add (&open_policy, NULL, 0), 0);
    cr_assert (zk_auth_policy_exists (NULL));
    cr_assert (zk_auth_policy_exists (ZK_AUTH_DEFAULT_DOMAIN));
    const char *bad[] = {"10.0.0.300"};
    zk_auth_policy_t broken = {"policy-c", bad, 1, NULL, 0, NULL};
    cr_assert_eq (zk_auth_policy_add (&broken, reason, sizeof reason), ZK_EINVAL);
    zk_auth_policy_t no_dir = {"policy-c", NULL, 0, NULL, 0, "/nonexistent/zkit"};
    cr_assert_eq (zk_auth_policy_add (&no_dir, reason, sizeof reason), ZK_EINVAL);
    cr_assert_not (zk_auth_policy_exists ("policy-c"));
}

//  ---------------------------------------------------------------- requests

Test (zk_auth, null_requests_follow_the_address_lists, .timeout = 30)
{
    const char *deny[] = {"10.0.0.5", "192.168.0.0/16"};
    s_policy ("deny-some", NULL, 0, deny, 2, NULL);
    const char *allow[] = {"10.0.0.0/8", "::1"};
    const char *deny_too[] = {"10.0.0.5"};
    s_policy ("allow-some", allow, 2, deny_too, 1, NULL);
    s_policy ("open", NULL, 0, NULL, 0, NULL);
    zsock_t *client = s_zap_client ();
    uint64_t allowed = zk_auth_allowed (), denied = zk_auth_denied ();

    s_expect (client, "open", "203.0.113.9", "NULL", NULL, "200");
    s_expect (client, "open", "", "NULL", NULL, "200");
    s_expect (client, "deny-some", "10.0.0.5", "NULL", NULL, "400");
    s_expect (client, "deny-some", "10.0.0.6", "NULL", NULL, "200");
    s_expect (client, "deny-some", "192.168.44.1", "NULL", NULL, "400");
    s_expect (client, "deny-some", "::ffff:192.168.1.1", "NULL", NULL, "400");
    //  With an allow list, only its addresses get in (even one also denied).
    s_expect (client, "allow-some", "10.0.0.5", "NULL", NULL, "200");
    s_expect (client, "allow-some", "10.200.0.1", "NULL", NULL, "200");
    s_expect (client, "allow-some", "::ffff:10.0.0.1", "NULL", NULL, "200");
    s_expect (client, "allow-some", "::1", "NULL", NULL, "200");
    s_expect (client, "allow-some", "11.0.0.1", "NULL", NULL, "400");
    s_expect (client, "allow-some", "::2", "NULL", NULL, "400");
    s_expect (client, "allow-some", "", "NULL", NULL, "400");
    s_expect (client, "allow-some", "not an address", "NULL", NULL, "400");
    //  No policy for the domain: refused.
    s_expect (client, "nobody", "10.0.0.1", "NULL", NULL, "400");
    //  Mechanisms zkit does not serve.
    const void *plain[8] = {"1.0", "1", "open", "10.0.0.1", "", "PLAIN", "user", "password"};
    char *code = s_ask_raw (client, plain, NULL, 8, NULL, NULL);
    cr_assert_str_eq (code, "400");
    zstr_free (&code);
    const void *other[6] = {"1.0", "1", "open", "10.0.0.1", "", "SHINY"};
    code = s_ask_raw (client, other, NULL, 6, NULL, NULL);
    cr_assert_str_eq (code, "400");
    zstr_free (&code);

    cr_assert_eq (zk_auth_allowed () - allowed, 7);
    cr_assert_eq (zk_auth_denied () - denied, 10);
    zsock_destroy (&client);
}

Test (zk_auth, curve_requests_follow_the_certificate_directory, .timeout = 30)
{
    char *dir = tu_tmpdir ();
    char *allowed_dir = s_subdir (dir, "allowed");
    zcert_t *good = s_cert (dir, "good");
    zcert_t *bad = s_cert (dir, "bad");
    s_public (good, allowed_dir, "good");
    //  A file that is not a certificate is ignored; hidden files are skipped.
    char *junk = zsys_sprintf ("%s/README", allowed_dir);
    FILE *file = fopen (junk, "w");
    fputs ("not a certificate\n", file);
    fclose (file);
    s_public (bad, allowed_dir, ".bad-hidden");
    s_policy ("curve-dir", NULL, 0, NULL, 0, allowed_dir);
    s_policy ("curve-any", NULL, 0, NULL, 0, NULL);
    zsock_t *client = s_zap_client ();

    char *user = NULL;
    char *code = s_ask (client, "curve-dir", "127.0.0.1", "CURVE", zcert_public_key (good), &user);
    cr_assert_str_eq (code, "200");
    cr_assert_str_eq (user, zcert_public_txt (good), "the user id is the client's key");
    zstr_free (&code);
    zstr_free (&user);
    s_expect (client, "curve-dir", "127.0.0.1", "CURVE", zcert_public_key (bad), "400");
    s_expect (client, "curve-any", "127.0.0.1", "CURVE", zcert_public_key (bad), "200");

    //  A certificate added later is read once the directory changed (the
    //  handler looks at most once a second).
    s_public (bad, allowed_dir, "bad");
    int64_t deadline = zclock_mono () + WAIT_MS;
    bool admitted = false;
    while (!admitted && zclock_mono () < deadline) {  //  poll until the reload, bounded by deadline
        code = s_ask (client, "curve-dir", "127.0.0.1", "CURVE", zcert_public_key (bad), NULL);
        admitted = streq (code, "200");
        zstr_free (&code);
        if (!admitted)
            zclock_sleep (50);  //  poll interval until the deadline
    }
    cr_assert (admitted, "the new certificate was never read");

    zsock_destroy (&client);
    zcert_destroy (&good);
    zcert_destroy (&bad);
    zstr_free (&junk);
    zstr_free (&allowed_dir);
    tu_rmdir (dir);
    free (dir);
}

Test (zk_auth, malformed_requests_get_500_and_the_handler_goes_on, .timeout = 30)
{
    s_policy ("fine", NULL, 0, NULL, 0, NULL);
    zsock_t *client = s_zap_client ();
    uint64_t malformed = zk_auth_malformed (), denied = zk_auth_denied ();
    uint8_t key[32] = {1, 2, 3};
    char big[2000];
    memset (big, 'x', sizeof big);
    struct {
        const void *frames[20];
        size_t sizes[20];
        int count;
        const char *id;  //  expected request id in the reply
    } cases[] = {
        {{"2.0", "1", "fine", "127.0.0.1", "", "NULL"}, {3, 1, 4, 9, 0, 4}, 6, "1"},
        {{"1.0", "5", "fine"}, {3, 1, 4}, 3, "5"},
        {{"1.0"}, {3}, 1, ""},
        {{"1.0", "2", "fine", "127.0.0.1", "", "NULL", "extra"}, {3, 1, 4, 9, 0, 4, 5}, 7, "2"},
        {{"1.0", "3", "fine", "127.0.0.1", "", "CURVE", key}, {3, 1, 4, 9, 0, 5, 31}, 7, "3"},
        {{"1.0", "4", "fine", "127.0.0.1", "", "CURVE"}, {3, 1, 4, 9, 0, 5}, 6, "4"},
        {{"1.0", "6", big, "127.0.0.1", "", "NULL"}, {3, 1, sizeof big, 9, 0, 4}, 6, "6"},
        {{"1.0", "7", "fine", "127.0.0.1", "", "PLAIN", "u"}, {3, 1, 4, 9, 0, 5, 1}, 7, "7"},
        {{""}, {0}, 1, ""},
    };
    size_t count = sizeof cases / sizeof cases[0];
    for (size_t index = 0; index < count; index++) {
        char *id = NULL;
        char *code = s_ask_raw (client, cases[index].frames, cases[index].sizes, cases[index].count,
                                &id, NULL);
        cr_assert_str_eq (code, "500", "case %zu: %s", index, code);
        cr_assert_str_eq (id, cases[index].id, "case %zu: request id '%s'", index, id);
        zstr_free (&code);
        zstr_free (&id);
    }
    //  Too many frames: the request id is not trusted either.
    const void *many[20];
    size_t many_sizes[20];
    for (int index = 0; index < 20; index++) {
        many[index] = "1.0";
        many_sizes[index] = 3;
    }
    char *code = s_ask_raw (client, many, many_sizes, 20, NULL, NULL);
    cr_assert_str_eq (code, "500");
    zstr_free (&code);
    cr_assert_eq (zk_auth_malformed () - malformed, count + 1);
    cr_assert_eq (zk_auth_denied () - denied, count + 1);
    //  Still serving.
    s_expect (client, "fine", "127.0.0.1", "NULL", NULL, "200");
    zsock_destroy (&client);
}

Test (zk_auth, garbage_from_a_raw_peer_never_stops_the_handler, .timeout = 30)
{
    s_policy ("fine", NULL, 0, NULL, 0, NULL);
    zsock_t *client = s_zap_client ();
    //  A DEALER may send anything, even without the REQ delimiter: the
    //  handler's REP socket drops what has no envelope, answers the rest.
    zsock_t *raw = zsock_new (ZMQ_DEALER);
    zsock_set_linger (raw, 0);
    cr_assert_eq (zsock_connect (raw, ZK_AUTH_ENDPOINT), 0);
    for (int round = 0; round < 200; round++) {
        zmsg_t *junk = zmsg_new ();
        if (round % 2)
            zmsg_addmem (junk, "", 0);
        for (int frame = 0; frame < round % 23; frame++)
            zmsg_addmem (junk, "\xff\x00garbage", (size_t) (frame % 9));
        if (zmsg_size (junk) == 0)
            zmsg_addstr (junk, "x");
        zmsg_send (&junk, raw);
    }
    s_expect (client, "fine", "10.1.1.1", "NULL", NULL, "200");
    zsock_destroy (&raw);
    zsock_destroy (&client);
}

//  ---------------------------------------------------------------- handlers

Test (zk_auth, a_private_context_gets_its_own_handler_and_ends_cleanly, .timeout = 30)
{
    void *context = zmq_ctx_new ();
    cr_assert_not_null (context);
    cr_assert_not (zk_auth_running (context));
    cr_assert_eq (zk_auth_start (context), 0);
    cr_assert_eq (zk_auth_start (context), 0);
    cr_assert (zk_auth_running (context));
    cr_assert_not (zk_auth_running (NULL), "the shared context has none until asked");
    //  A binding socket of that context, refusing loopback.
    zk_spec_t *spec = zk_spec_new ("pull@tcp://127.0.0.1:*?deny=127.0.0.1&domain=private-deny");
    cr_assert_not_null (spec);
    void *server = zmq_socket (context, ZMQ_PULL);
    int linger = 0;
    zmq_setsockopt (server, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq (zk_spec_secure (spec, server, context), 0);  //  a third reference
    cr_assert_eq (zk_spec_attach (spec, (zsock_t *) server), 0);
    uint64_t denied = zk_auth_denied ();
    zsock_t *client = tu_connect (ZMQ_PUSH, zk_spec_resolved (spec, 0));
    zstr_send (client, "refused");
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (zk_auth_denied () == denied && zclock_mono () < deadline)
        zclock_sleep (10);  //  poll until the handler refused it, bounded by deadline
    cr_assert_gt (zk_auth_denied (), denied);
    char buffer[16];
    cr_assert_eq (zmq_recv (server, buffer, sizeof buffer, ZMQ_DONTWAIT), -1);
    zsock_destroy (&client);
    zmq_close (server);
    zk_auth_stop (context);
    zk_auth_stop (context);
    cr_assert (zk_auth_running (context), "one reference is left");
    zk_auth_stop (context);
    cr_assert_not (zk_auth_running (context));
    zk_auth_stop (context);  //  unknown now: ignored
    cr_assert_eq (zmq_ctx_term (context), 0, "the handler's socket is closed");
    zk_spec_destroy (&spec);
}

Test (zk_auth, a_context_with_another_zap_handler_is_refused, .timeout = 30)
{
    void *context = zmq_ctx_new ();
    void *squatter = zmq_socket (context, ZMQ_REP);
    int linger = 0;
    zmq_setsockopt (squatter, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq (zmq_bind (squatter, ZK_AUTH_ENDPOINT), 0);
    cr_assert_eq (zk_auth_start (context), ZK_ESOCKET);
    cr_assert_not (zk_auth_running (context));
    zmq_close (squatter);
    cr_assert_eq (zmq_ctx_term (context), 0);
}

//  ---------------------------------------------------------------- sockets

//  Wait for a server socket's monitor to report a handshake failure.
static bool
s_wait_failure (zsock_t *monitor)
{
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (zclock_mono () < deadline) {
        zmsg_t *event = tu_recv (monitor, (int) (deadline - zclock_mono ()));
        if (!event)
            return false;
        zframe_t *first = zmsg_first (event);
        uint16_t number = 0;
        if (zframe_size (first) >= 2)
            memcpy (&number, zframe_data (first), 2);
        zmsg_destroy (&event);
        if (number == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
            || number == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            || number == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            return true;
    }
    return false;
}

static zsock_t *
s_monitor (zsock_t *server)
{
    char *endpoint = tu_inproc ("auth-monitor");
    cr_assert_eq (zmq_socket_monitor (zsock_resolve (server), endpoint,
                                      ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                                          | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                                          | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL),
                  0);
    zsock_t *monitor = zsock_new (ZMQ_PAIR);
    cr_assert_eq (zsock_connect (monitor, "%s", endpoint), 0);
    zstr_free (&endpoint);
    return monitor;
}

Test (zk_auth, curve_sockets_admit_allowed_keys_and_refuse_others, .timeout = 60)
{
    char *dir = tu_tmpdir ();
    char *allowed_dir = s_subdir (dir, "allowed");
    zcert_t *server_cert = s_cert (dir, "server");
    zcert_t *good = s_cert (dir, "good");
    zcert_t *bad = s_cert (dir, "bad");
    zcert_destroy (&bad);
    s_public (good, allowed_dir, "good");
    zcert_destroy (&good);
    zcert_destroy (&server_cert);

    char spec[1200];
    snprintf (spec, sizeof spec,
              "pull@tcp://127.0.0.1:*?curve-secret=%s/server_secret&curve-allow=%s", dir,
              allowed_dir);
    int rc;
    zsock_t *server = zk_sock_new (spec, &rc);
    cr_assert_not_null (server, "rc %d", rc);
    cr_assert (zk_auth_running (NULL));
    zsock_t *monitor = s_monitor (server);
    char endpoint[256];
    char *last = zsock_last_endpoint (server);
    snprintf (endpoint, sizeof endpoint, "%s", last);
    zstr_free (&last);

    //  The allowed client gets through.
    snprintf (spec, sizeof spec, "push>%s?curve-secret=%s/good_secret&curve-server=%s/server",
              endpoint, dir, dir);
    zsock_t *client = zk_sock_new (spec, &rc);
    cr_assert_not_null (client);
    zstr_send (client, "hello");
    zmsg_t *got = tu_recv (server, WAIT_MS);
    cr_assert_not_null (got, "the allowed client's message never came");
    char *text = zmsg_popstr (got);
    cr_assert_str_eq (text, "hello");
    zstr_free (&text);
    zmsg_destroy (&got);
    zsock_destroy (&client);

    //  Another key is refused by the handler: counted, never delivered.
    uint64_t denied = zk_auth_denied ();
    snprintf (spec, sizeof spec, "push>%s?curve-secret=%s/bad_secret&curve-server=%s/server",
              endpoint, dir, dir);
    client = zk_sock_new (spec, &rc);
    cr_assert_not_null (client);
    zstr_send (client, "intruder");
    cr_assert (s_wait_failure (monitor), "no handshake failure for the unknown key");
    cr_assert_gt (zk_auth_denied (), denied);
    zsock_destroy (&client);

    //  NULL security against a CURVE server: refused by the handshake.
    client = tu_connect (ZMQ_PUSH, endpoint);
    zstr_send (client, "plain");
    cr_assert (s_wait_failure (monitor), "no handshake failure for the NULL client");
    zsock_destroy (&client);
    cr_assert_null (tu_recv (server, 0), "a refused client's message arrived");

    zsock_destroy (&monitor);
    zsock_destroy (&server);
    zstr_free (&allowed_dir);
    tu_rmdir (dir);
    free (dir);
}

Test (zk_auth, every_binding_socket_gets_a_domain_and_a_handler, .timeout = 30)
{
    cr_assert_not (zk_auth_running (NULL));
    zsock_t *connecting = zk_sock_new ("push>tcp://127.0.0.1:9", NULL);
    cr_assert_not_null (connecting);
    char *domain = zsock_zap_domain (connecting);
    cr_assert_str_eq (domain, "", "a connecting socket has no domain");
    zstr_free (&domain);
    cr_assert_not (zk_auth_running (NULL), "nothing binds yet");
    zsock_destroy (&connecting);

    zsock_t *server = zk_sock_new ("pull@tcp://127.0.0.1:*", NULL);
    cr_assert_not_null (server);
    domain = zsock_zap_domain (server);
    cr_assert_str_eq (domain, ZK_AUTH_DEFAULT_DOMAIN);
    zstr_free (&domain);
    cr_assert (zk_auth_running (NULL));
    cr_assert (zk_auth_policy_exists (NULL));
    //  A NULL client is admitted (and counted) under the open default policy.
    uint64_t allowed = zk_auth_allowed ();
    char *last = zsock_last_endpoint (server);
    zsock_t *client = tu_connect (ZMQ_PUSH, last);
    zstr_free (&last);
    zstr_send (client, "hi");
    zmsg_t *got = tu_recv (server, WAIT_MS);
    cr_assert_not_null (got);
    zmsg_destroy (&got);
    cr_assert_gt (zk_auth_allowed (), allowed);
    zsock_destroy (&client);

    //  Another policy without a domain: the next free default domain.
    zsock_t *other = zk_sock_new ("pull@tcp://127.0.0.1:*?deny=10.0.0.1", NULL);
    cr_assert_not_null (other);
    domain = zsock_zap_domain (other);
    cr_assert_str_eq (domain, "zkit.2");
    zstr_free (&domain);
    zsock_t *same = zk_sock_new ("pull@tcp://127.0.0.1:*?deny=10.0.0.1", NULL);
    domain = zsock_zap_domain (same);
    cr_assert_str_eq (domain, "zkit.2", "the same policy shares its domain");
    zstr_free (&domain);
    zsock_t *third = zk_sock_new ("pull@tcp://127.0.0.1:*?allow=10.0.0.1", NULL);
    domain = zsock_zap_domain (third);
    cr_assert_str_eq (domain, "zkit.3");
    zstr_free (&domain);
    //  A domain named twice with two policies: refused, with the reason.
    int rc = 0;
    zsock_t *named = zk_sock_new ("pull@tcp://127.0.0.1:*?deny=10.0.0.1&domain=named", &rc);
    cr_assert_not_null (named);
    zsock_t *conflict = zk_sock_new ("pull@tcp://127.0.0.1:*?deny=10.0.0.2&domain=named", &rc);
    cr_assert_null (conflict);
    cr_assert_neq (rc, 0);
    zsock_destroy (&named);
    zsock_destroy (&third);
    zsock_destroy (&same);
    zsock_destroy (&other);
    zsock_destroy (&server);
}

Test (zk_auth, a_denied_address_is_refused_and_logged, .timeout = 30)
{
    zsock_t *server = zk_sock_new ("pull@tcp://127.0.0.1:*?deny=127.0.0.0/8", NULL);
    cr_assert_not_null (server);
    zsock_t *monitor = s_monitor (server);
    uint64_t denied = zk_auth_denied ();
    char *last = zsock_last_endpoint (server);
    zsock_t *client = tu_connect (ZMQ_PUSH, last);
    zstr_free (&last);
    zstr_send (client, "nope");
    cr_assert (s_wait_failure (monitor));
    cr_assert_gt (zk_auth_denied (), denied);
    cr_assert_null (tu_recv (server, 0));
    zsock_destroy (&client);
    zsock_destroy (&monitor);
    zsock_destroy (&server);
}
