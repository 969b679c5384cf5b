/*  zk_auth — zkit's ZAP handler: per-domain policies, counters (see the header).

    Two locks: s_handlers_lock guards the list of handler actors (taken
    by zk_auth_start/stop and at exit), s_policies_lock the policies
    (taken by the handlers for each request and by zk_auth_policy_add).
    A handler never takes s_handlers_lock, so stopping one while it
    serves a request cannot deadlock.                                    */

#include "zk_classes.h"
#include "../include/zk_auth.h"
#include "../include/zk_cert.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_HANDLERS_MAX 64    //  contexts served at once
#define S_FRAMES_MAX   16    //  a ZAP request has 6 to 8 frames; more is malformed
#define S_FRAME_MAX    1024  //  bytes of one request frame; more is malformed
#define S_SERVE_BATCH  100   //  requests served per wake-up
#define S_RELOAD_MS    1000  //  a certificate directory is checked at most this often
#define S_CURVE_KEY    32
#define S_PEER_SHOWN   64  //  bytes of a peer address shown in logs

//  ---------------------------------------------------------------------------
//  Addresses

typedef struct {
    uint8_t family;  //  4 or 6
    uint8_t prefix;  //  bits that count
    uint8_t bytes[16];
} s_net_t;

//  Parse "IP" or "IP/PREFIX" (with_prefix) into net (zeroed first, so
//  nets compare with memcmp). An IPv4-mapped IPv6 address becomes IPv4.
//  0 or -1.
static int
s_parse_net (const char *text, bool with_prefix, s_net_t *net)
{
    memset (net, 0, sizeof *net);
    char buffer[INET6_ADDRSTRLEN + 8];
    size_t length = text ? strnlen (text, sizeof buffer) : 0;
    if (length == 0 || length >= sizeof buffer)
        return -1;
    memcpy (buffer, text, length + 1);
    int prefix = -1;
    char *slash = strchr (buffer, '/');
    if (slash) {
        if (!with_prefix || !slash[1] || strlen (slash + 1) > 3
            || strspn (slash + 1, "0123456789") != strlen (slash + 1))
            return -1;
        prefix = atoi (slash + 1);
        *slash = 0;
    }
    uint8_t bytes[16];
    if (inet_pton (AF_INET, buffer, bytes) == 1) {
        net->family = 4;
        memcpy (net->bytes, bytes, 4);
        if (prefix > 32)
            return -1;
        net->prefix = (uint8_t) (prefix < 0 ? 32 : prefix);
        return 0;
    }
    if (inet_pton (AF_INET6, buffer, bytes) != 1)
        return -1;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (prefix > 128)
        return -1;
    if (memcmp (bytes, mapped, 12) == 0 && (prefix < 0 || prefix >= 96)) {
        net->family = 4;
        memcpy (net->bytes, bytes + 12, 4);
        net->prefix = (uint8_t) (prefix < 0 ? 32 : prefix - 96);
        return 0;
    }
    net->family = 6;
    memcpy (net->bytes, bytes, 16);
    net->prefix = (uint8_t) (prefix < 0 ? 128 : prefix);
    return 0;
}

//  Clear the bits beyond the prefix, so equal networks compare equal.
static void
s_net_mask (s_net_t *net)
{
    size_t size = net->family == 4 ? 4 : 16;
    for (size_t index = 0; index < size; index++) {
        int bits = (int) net->prefix - (int) index * 8;
        if (bits <= 0)
            net->bytes[index] = 0;
        else if (bits < 8)
            net->bytes[index] &= (uint8_t) (0xff << (8 - bits));
    }
}

static bool
s_net_match (const s_net_t *net, const s_net_t *peer)
{
    if (net->family != peer->family)
        return false;
    s_net_t masked = *peer;
    masked.prefix = net->prefix;
    s_net_mask (&masked);
    return memcmp (masked.bytes, net->bytes, sizeof net->bytes) == 0;
}

static int
s_net_compare (const void *a, const void *b)
{
    return memcmp (a, b, sizeof (s_net_t));
}

int
zk_auth_check_address (const char *text, char *reason, size_t reason_size)
{
    s_net_t net;
    if (s_parse_net (text, true, &net) != 0)
        return zk_engine_reason (reason, reason_size,
                                 "'%.80s' is not an IP address (IPv4 or IPv6, optionally /PREFIX)",
                                 text ? text : "");
    return 0;
}

int
zk_auth_check_domain (const char *name, char *reason, size_t reason_size)
{
    size_t length = name ? strlen (name) : 0;
    if (length == 0 || length > ZK_AUTH_DOMAIN_MAX)
        return zk_engine_reason (reason, reason_size, "a ZAP domain is 1 to %d bytes",
                                 ZK_AUTH_DOMAIN_MAX);
    for (size_t index = 0; index < length; index++) {
        char c = name[index];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
              || c == '_' || c == '-'))
            return zk_engine_reason (reason, reason_size,
                                     "the ZAP domain '%.64s' may hold only letters, digits and ._-",
                                     name);
    }
    return 0;
}

int
zk_auth_check_dir (const char *path, char *reason, size_t reason_size)
{
    struct stat info;
    if (!path || !*path)
        return zk_engine_reason (reason, reason_size, "an empty directory name");
    if (stat (path, &info) != 0)
        return zk_engine_reason (reason, reason_size, "%s: %s", path, strerror (errno));
    if (!S_ISDIR (info.st_mode))
        return zk_engine_reason (reason, reason_size, "%s: not a directory", path);
    if (access (path, R_OK | X_OK) != 0)
        return zk_engine_reason (reason, reason_size, "%s: cannot read it", path);
    return 0;
}

//  ---------------------------------------------------------------------------
//  Policies

typedef struct {
    char domain[ZK_AUTH_DOMAIN_MAX + 1];
    s_net_t allow[ZK_AUTH_ADDRESSES_MAX];
    size_t allow_count;
    s_net_t deny[ZK_AUTH_ADDRESSES_MAX];
    size_t deny_count;
    char *curve_allow;  //  the directory as resolved (realpath), or NULL
    zhashx_t *keys;     //  Z85 public keys found there
    struct stat seen;   //  the directory when last read
    int64_t checked_ms;
} s_policy_t;

static pthread_mutex_t s_policies_lock = PTHREAD_MUTEX_INITIALIZER;
static s_policy_t *s_policies[ZK_AUTH_DOMAINS_MAX];
static size_t s_policy_count;

static uint64_t s_allowed, s_denied, s_malformed;

uint64_t
zk_auth_allowed (void)
{
    return __atomic_load_n (&s_allowed, __ATOMIC_RELAXED);
}

uint64_t
zk_auth_denied (void)
{
    return __atomic_load_n (&s_denied, __ATOMIC_RELAXED);
}

uint64_t
zk_auth_malformed (void)
{
    return __atomic_load_n (&s_malformed, __ATOMIC_RELAXED);
}

static void
s_policy_free (s_policy_t *policy)
{
    if (policy) {
        zhashx_destroy (&policy->keys);
        free (policy->curve_allow);
        free (policy);
    }
}

/*  Read the public keys of every certificate file in dir (hidden files
    and anything that is not a regular file are skipped; a file that is
    not a certificate is counted and reported once). The set, or NULL
    with a reason when the directory cannot be read.                     */
static zhashx_t *
s_load_keys (const char *dir, char *reason, size_t reason_size)
{
    DIR *handle = opendir (dir);
    if (!handle) {
        zk_engine_reason (reason, reason_size, "%s: %s", dir, strerror (errno));
        return NULL;
    }
    zhashx_t *keys = zhashx_new ();
    if (!keys) {
        closedir (handle);
        zk_engine_reason (reason, reason_size, "out of memory");
        return NULL;
    }
    size_t seen = 0, bad = 0;
    char why[512] = "";
    struct dirent *entry;
    while ((entry = readdir (handle)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        if (++seen > ZK_AUTH_CERTS_MAX) {
            zk_warn ("auth: %s holds more than %d files: the rest are ignored", dir,
                     ZK_AUTH_CERTS_MAX);
            break;
        }
        char path[PATH_MAX];
        struct stat info;
        if (snprintf (path, sizeof path, "%s/%s", dir, entry->d_name) >= (int) sizeof path
            || stat (path, &info) != 0 || !S_ISREG (info.st_mode))
            continue;
        zcert_t *cert = zk_cert_load (path, false, why, sizeof why);
        if (!cert) {
            bad++;
            continue;
        }
        zhashx_insert (keys, zcert_public_txt (cert), (void *) 1);
        zcert_destroy (&cert);
    }
    closedir (handle);
    if (bad)
        zk_warn ("auth: %zu file(s) in %s are not certificates and were ignored (%s)", bad, dir,
                 why);
    zk_debug ("auth: %zu allowed key(s) in %s", zhashx_size (keys), dir);
    return keys;
}

static bool
s_same_stat (const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev
           && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec
           && a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

//  Under s_policies_lock: read the policy's directory again if it changed.
static void
s_policy_refresh (s_policy_t *policy)
{
    int64_t now = zk_now_ms ();
    if (now - policy->checked_ms < S_RELOAD_MS)
        return;
    policy->checked_ms = now;
    struct stat info;
    if (stat (policy->curve_allow, &info) != 0 || s_same_stat (&info, &policy->seen))
        return;
    char reason[512];
    zhashx_t *keys = s_load_keys (policy->curve_allow, reason, sizeof reason);
    if (!keys) {
        zk_warn ("auth: cannot read %s again (%s): keeping the keys read before",
                 policy->curve_allow, reason);
        return;
    }
    zhashx_destroy (&policy->keys);
    policy->keys = keys;
    policy->seen = info;
    zk_info ("auth: %s changed: %zu allowed key(s)", policy->curve_allow, zhashx_size (keys));
}

//  Under s_policies_lock.
static s_policy_t *
s_policy_find (const char *domain, size_t size)
{
    for (size_t index = 0; index < s_policy_count; index++)
        if (strlen (s_policies[index]->domain) == size
            && memcmp (s_policies[index]->domain, domain, size) == 0)
            return s_policies[index];
    return NULL;
}

static bool
s_policy_equal (const s_policy_t *a, const s_policy_t *b)
{
    if (a->allow_count != b->allow_count || a->deny_count != b->deny_count
        || (a->curve_allow == NULL) != (b->curve_allow == NULL))
        return false;
    if (a->curve_allow && !streq (a->curve_allow, b->curve_allow))
        return false;
    return memcmp (a->allow, b->allow, a->allow_count * sizeof a->allow[0]) == 0
           && memcmp (a->deny, b->deny, a->deny_count * sizeof a->deny[0]) == 0;
}

//  The nets of a list, masked and sorted. 0 or ZK_EINVAL.
static int
s_policy_nets (const char *const *texts, size_t count, s_net_t *nets, size_t *count_p,
               const char *what, char *reason, size_t reason_size)
{
    if (count > ZK_AUTH_ADDRESSES_MAX)
        return zk_engine_reason (reason, reason_size, "more than %d %s addresses",
                                 ZK_AUTH_ADDRESSES_MAX, what);
    for (size_t index = 0; index < count; index++) {
        if (s_parse_net (texts[index], true, &nets[index]) != 0)
            return zk_auth_check_address (texts[index], reason, reason_size);
        s_net_mask (&nets[index]);
    }
    qsort (nets, count, sizeof nets[0], s_net_compare);
    *count_p = count;
    return 0;
}

int
zk_auth_policy_add (const zk_auth_policy_t *config, char *reason, size_t reason_size)
{
    assert (config);
    const char *domain = config->domain ? config->domain : ZK_AUTH_DEFAULT_DOMAIN;
    if (zk_auth_check_domain (domain, reason, reason_size))
        return ZK_EINVAL;
    s_policy_t *policy = calloc (1, sizeof *policy);
    if (!policy) {
        zk_engine_reason (reason, reason_size, "out of memory");
        return ZK_ENOMEM;
    }
    snprintf (policy->domain, sizeof policy->domain, "%s", domain);
    int rc = s_policy_nets (config->allow, config->allow_count, policy->allow, &policy->allow_count,
                            "allow", reason, reason_size);
    if (rc == 0)
        rc = s_policy_nets (config->deny, config->deny_count, policy->deny, &policy->deny_count,
                            "deny", reason, reason_size);
    if (rc == 0 && config->curve_allow) {
        rc = zk_auth_check_dir (config->curve_allow, reason, reason_size);
        if (rc == 0) {
            policy->curve_allow = realpath (config->curve_allow, NULL);
            if (!policy->curve_allow || stat (policy->curve_allow, &policy->seen) != 0)
                rc = zk_engine_reason (reason, reason_size, "%s: %s", config->curve_allow,
                                       strerror (errno));
        }
    }
    if (rc) {
        s_policy_free (policy);
        return rc;
    }
    pthread_mutex_lock (&s_policies_lock);
    s_policy_t *existing = s_policy_find (policy->domain, strlen (policy->domain));
    if (existing) {
        bool equal = s_policy_equal (existing, policy);
        pthread_mutex_unlock (&s_policies_lock);
        s_policy_free (policy);
        if (equal)
            return 0;
        zk_engine_reason (reason, reason_size,
                          "the ZAP domain '%s' has another policy in this process (other "
                          "allow/deny/curve-allow): give this socket its own domain=NAME",
                          domain);
        return ZK_EBUSY;
    }
    if (s_policy_count == ZK_AUTH_DOMAINS_MAX) {
        pthread_mutex_unlock (&s_policies_lock);
        s_policy_free (policy);
        zk_engine_reason (reason, reason_size, "more than %d ZAP domains in one process",
                          ZK_AUTH_DOMAINS_MAX);
        return ZK_ENOMEM;
    }
    pthread_mutex_unlock (&s_policies_lock);
    //  Read the directory outside the lock (it may be large); a racing
    //  registration of the same domain is settled below.
    if (policy->curve_allow) {
        policy->keys = s_load_keys (policy->curve_allow, reason, reason_size);
        policy->checked_ms = zk_now_ms ();
        if (!policy->keys) {
            s_policy_free (policy);
            return ZK_EINVAL;
        }
    }
    pthread_mutex_lock (&s_policies_lock);
    existing = s_policy_find (policy->domain, strlen (policy->domain));
    if (existing || s_policy_count == ZK_AUTH_DOMAINS_MAX) {
        bool equal = existing && s_policy_equal (existing, policy);
        pthread_mutex_unlock (&s_policies_lock);
        s_policy_free (policy);
        if (equal)
            return 0;
        zk_engine_reason (reason, reason_size, "the ZAP domain '%s' has another policy", domain);
        return ZK_EBUSY;
    }
    s_policies[s_policy_count++] = policy;
    pthread_mutex_unlock (&s_policies_lock);
    return 0;
}

bool
zk_auth_policy_exists (const char *domain)
{
    if (!domain)
        domain = ZK_AUTH_DEFAULT_DOMAIN;
    pthread_mutex_lock (&s_policies_lock);
    bool exists = s_policy_find (domain, strlen (domain)) != NULL;
    pthread_mutex_unlock (&s_policies_lock);
    return exists;
}

//  ---------------------------------------------------------------------------
//  Requests (RFC 27)

typedef struct {
    uint8_t data[S_FRAMES_MAX][S_FRAME_MAX];
    size_t sizes[S_FRAMES_MAX];
    int count;       //  frames received (may exceed S_FRAMES_MAX)
    bool oversized;  //  a kept frame was longer than S_FRAME_MAX
} s_request_t;

typedef struct {
    const char *code;  //  "200", "400", "500"
    char text[200];
    char user_id[48];
} s_verdict_t;

//  Frame index as a printable, bounded string for logs.
static void
s_show (const s_request_t *request, int index, char *out, size_t size)
{
    size_t length = index < request->count && index < S_FRAMES_MAX ? request->sizes[index] : 0;
    if (length > size - 1)
        length = size - 1;
    for (size_t at = 0; at < length; at++) {
        uint8_t c = request->data[index][at];
        out[at] = c >= 32 && c < 127 ? (char) c : '?';
    }
    out[length] = 0;
}

static bool
s_frame_is (const s_request_t *request, int index, const char *text)
{
    size_t length = strlen (text);
    return request->sizes[index] == length && memcmp (request->data[index], text, length) == 0;
}

//  Under s_policies_lock: the policy's verdict on an address (text
//  frame 3). True if admitted; else why in verdict.
static bool
s_address_admitted (const s_policy_t *policy, const s_request_t *request, s_verdict_t *verdict)
{
    char address[S_PEER_SHOWN];
    s_show (request, 3, address, sizeof address);
    char *scope = strchr (address, '%');  //  fe80::1%eth0
    if (scope)
        *scope = 0;
    s_net_t peer;
    bool known = request->sizes[3] < sizeof address && s_parse_net (address, false, &peer) == 0;
    if (policy->allow_count) {
        for (size_t index = 0; known && index < policy->allow_count; index++)
            if (s_net_match (&policy->allow[index], &peer))
                return true;
        snprintf (verdict->text, sizeof verdict->text, "address not in the allow list");
        return false;
    }
    for (size_t index = 0; known && index < policy->deny_count; index++)
        if (s_net_match (&policy->deny[index], &peer)) {
            snprintf (verdict->text, sizeof verdict->text, "address denied");
            return false;
        }
    return true;
}

/*  Frames: 0 version "1.0", 1 request id, 2 domain, 3 address, 4
    identity, 5 mechanism, then the credentials: none for NULL, two for
    PLAIN, one (the 32-byte client key) for CURVE, one for GSSAPI.      */
static void
s_decide (const s_request_t *request, s_verdict_t *verdict)
{
    verdict->code = "500";
    verdict->user_id[0] = 0;
    if (request->count < 6 || request->count > S_FRAMES_MAX || request->oversized
        || !s_frame_is (request, 0, "1.0")) {
        snprintf (verdict->text, sizeof verdict->text, "malformed ZAP request");
        return;
    }
    bool null = s_frame_is (request, 5, "NULL"), curve = s_frame_is (request, 5, "CURVE");
    bool plain = s_frame_is (request, 5, "PLAIN"), gssapi = s_frame_is (request, 5, "GSSAPI");
    int credentials = null ? 0 : plain ? 2 : 1;
    if ((null || curve || plain || gssapi) && request->count != 6 + credentials) {
        snprintf (verdict->text, sizeof verdict->text, "malformed ZAP request (credentials)");
        return;
    }
    if (curve && request->sizes[6] != S_CURVE_KEY) {
        snprintf (verdict->text, sizeof verdict->text, "malformed ZAP request (CURVE key)");
        return;
    }
    verdict->code = "400";
    if (!null && !curve) {
        snprintf (verdict->text, sizeof verdict->text, "mechanism not allowed");
        return;
    }
    pthread_mutex_lock (&s_policies_lock);
    s_policy_t *policy = s_policy_find ((const char *) request->data[2], request->sizes[2]);
    if (!policy)
        snprintf (verdict->text, sizeof verdict->text, "no policy for this ZAP domain");
    else if (s_address_admitted (policy, request, verdict)) {
        if (curve) {
            //  The user id is the client's public key: libzmq gives it to
            //  the application as the "User-Id" property of each message.
            zmq_z85_encode (verdict->user_id, request->data[6], S_CURVE_KEY);
            if (policy->curve_allow) {
                s_policy_refresh (policy);
                if (!zhashx_lookup (policy->keys, verdict->user_id))
                    snprintf (verdict->text, sizeof verdict->text, "key not in %s",
                              policy->curve_allow);
                else
                    verdict->code = "200";
            }
            else
                verdict->code = "200";
        }
        else
            verdict->code = "200";
    }
    pthread_mutex_unlock (&s_policies_lock);
    if (streq (verdict->code, "200"))
        snprintf (verdict->text, sizeof verdict->text, "OK");
}

static void
s_send (void *zap, const void *data, size_t size, bool more)
{
    zmq_send (zap, data, size, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
}

//  Read one request (all its frames: a REP socket must answer each). False
//  when none is waiting.
static bool
s_receive (void *zap, s_request_t *request)
{
    request->count = 0;
    request->oversized = false;
    zmq_msg_t part;
    zmq_msg_init (&part);
    bool more = true;
    while (more) {
        if (zmq_msg_recv (&part, zap, ZMQ_DONTWAIT) < 0)
            break;
        if (request->count < S_FRAMES_MAX) {
            size_t size = zmq_msg_size (&part);
            if (size > S_FRAME_MAX)
                request->oversized = true;
            else
                memcpy (request->data[request->count], zmq_msg_data (&part), size);
            request->sizes[request->count] = size > S_FRAME_MAX ? 0 : size;
        }
        if (request->count < INT_MAX)
            request->count++;
        more = zmq_msg_more (&part);
    }
    zmq_msg_close (&part);
    return request->count > 0;
}

static void
s_serve (void *zap)
{
    static zk_ratelimit_t refused_limiter, malformed_limiter;
    s_request_t *current = calloc (1, sizeof *current);  //  16 KiB: not on the stack
    if (!current)
        return;
    for (int served = 0; served < S_SERVE_BATCH && s_receive (zap, current); served++) {
        s_verdict_t verdict;
        s_decide (current, &verdict);
        //  Counted before the reply, so whoever sees the reply sees the count.
        bool allowed = streq (verdict.code, "200"), malformed = streq (verdict.code, "500");
        __atomic_add_fetch (allowed ? &s_allowed : &s_denied, 1, __ATOMIC_RELAXED);
        if (malformed)
            __atomic_add_fetch (&s_malformed, 1, __ATOMIC_RELAXED);
        bool id_ok = current->count >= 2 && current->count <= S_FRAMES_MAX;
        s_send (zap, "1.0", 3, true);
        s_send (zap, current->data[1], id_ok ? current->sizes[1] : 0, true);
        s_send (zap, verdict.code, 3, true);
        s_send (zap, verdict.text, strlen (verdict.text), true);
        s_send (zap, verdict.user_id, strlen (verdict.user_id), true);
        s_send (zap, "", 0, false);
        if (allowed)
            continue;
        char address[S_PEER_SHOWN], domain[ZK_AUTH_DOMAIN_MAX + 1], mechanism[16];
        s_show (current, 3, address, sizeof address);
        s_show (current, 2, domain, sizeof domain);
        s_show (current, 5, mechanism, sizeof mechanism);
        if (malformed)
            zk_log_limited (&malformed_limiter, ZK_LOG_WARN, "auth: %s (%d frames)", verdict.text,
                            current->count);
        else
            zk_log_limited (&refused_limiter, ZK_LOG_WARN,
                            "auth: refused %s (%s%s%s, domain %s): %s",
                            *address ? address : "a peer without an address", mechanism,
                            *verdict.user_id ? " key " : "", verdict.user_id, domain, verdict.text);
    }
    free (current);
}

//  ---------------------------------------------------------------------------
//  Handlers

static void
s_handler_actor (zsock_t *pipe, void *context)
{
    zsock_signal (pipe, 0);  //  zactor_new's; the start-up status follows (zk_engine_start)
    void *zap = zmq_socket (context, ZMQ_REP);
    int linger = 0;
    if (!zap || zmq_setsockopt (zap, ZMQ_LINGER, &linger, sizeof linger) != 0
        || zmq_bind (zap, ZK_AUTH_ENDPOINT) != 0) {
        zk_error ("auth: cannot serve %s: %s (does another ZAP handler, such as czmq's "
                  "zauth, run in this process?)",
                  ZK_AUTH_ENDPOINT, zmq_strerror (errno));
        if (zap)
            zmq_close (zap);
        zsock_signal (pipe, (byte) -1);
        return;
    }
    zsock_signal (pipe, 0);
    zmq_pollitem_t items[] = {{zsock_resolve (pipe), 0, ZMQ_POLLIN, 0}, {zap, 0, ZMQ_POLLIN, 0}};
    while (true) {
        if (zmq_poll (items, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;  //  the context is ending (ETERM): close and go
        }
        if (items[0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv (pipe);
            if (!command && errno == EINTR)
                continue;
            bool stop = !command || streq (command, "$TERM");
            zstr_free (&command);
            if (stop)
                break;
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_serve (zap);
    }
    zmq_close (zap);
}

typedef struct {
    void *context;
    zactor_t *actor;
    size_t refs;
} s_handler_t;

static pthread_mutex_t s_handlers_lock = PTHREAD_MUTEX_INITIALIZER;
static s_handler_t s_handlers[S_HANDLERS_MAX];
static size_t s_handler_count;
static pid_t s_exit_pid;  //  the process that registered s_at_exit (not a forked child)

//  Stop every handler before czmq's own exit handler ends its context
//  (ours was registered after zsys_init, so it runs first).
static void
s_at_exit (void)
{
    if (getpid () != s_exit_pid)
        return;
    pthread_mutex_lock (&s_handlers_lock);
    s_handler_t handlers[S_HANDLERS_MAX];
    size_t count = s_handler_count;
    memcpy (handlers, s_handlers, count * sizeof handlers[0]);
    s_handler_count = 0;
    pthread_mutex_unlock (&s_handlers_lock);
    for (size_t index = 0; index < count; index++)
        zactor_destroy (&handlers[index].actor);
}

static s_handler_t *
s_handler_find (void *context)
{
    for (size_t index = 0; index < s_handler_count; index++)
        if (s_handlers[index].context == context)
            return &s_handlers[index];
    return NULL;
}

int
zk_auth_start (void *context)
{
    void *shared = zsys_init ();
    if (!context)
        context = shared;
    if (!context)
        return ZK_ESOCKET;
    int rc = 0;
    pthread_mutex_lock (&s_handlers_lock);
    s_handler_t *handler = s_handler_find (context);
    if (handler)
        handler->refs++;
    else if (s_handler_count == S_HANDLERS_MAX) {
        zk_error ("auth: more than %d ZeroMQ contexts with binding sockets", S_HANDLERS_MAX);
        rc = ZK_ENOMEM;
    }
    else {
        zactor_t *actor = zk_engine_start (s_handler_actor, context, "auth");
        if (!actor)
            rc = ZK_ESOCKET;
        else {
            s_handlers[s_handler_count++] = (s_handler_t){context, actor, 1};
            if (s_exit_pid != getpid ()) {
                s_exit_pid = getpid ();
                atexit (s_at_exit);
            }
        }
    }
    pthread_mutex_unlock (&s_handlers_lock);
    return rc;
}

void
zk_auth_stop (void *context)
{
    if (!context)
        context = zsys_init ();
    zactor_t *actor = NULL;
    pthread_mutex_lock (&s_handlers_lock);
    s_handler_t *handler = s_handler_find (context);
    if (handler && --handler->refs == 0) {
        actor = handler->actor;
        *handler = s_handlers[--s_handler_count];
    }
    pthread_mutex_unlock (&s_handlers_lock);
    zactor_destroy (&actor);
}

bool
zk_auth_running (void *context)
{
    if (!context)
        context = zsys_init ();
    pthread_mutex_lock (&s_handlers_lock);
    bool running = s_handler_find (context) != NULL;
    pthread_mutex_unlock (&s_handlers_lock);
    return running;
}
