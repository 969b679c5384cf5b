/*  zk_spec — socket specs: parse, create, attach.

    Grammar (docs/protocol.md, "Socket specs"):
        spec      = type ( "@" / ">" ) endpoint *( "," [ "@" / ">" ] endpoint )
                  / "queue>" endpoint *( "," [ ">" ] endpoint ) "/" name
        endpoint  = transport "://" address
        name      = 1*128( ALPHA / DIGIT / "." / "_" / "-" )   ; not "." first, no ".."
    A queue spec's name follows the last '/' of its last endpoint. Security
    options follow the first '?' of any spec (docs/protocol.md 2.5):
        options   = "?" [ option *( "&" option ) ]
        option    = key "=" 1*( %x21-25 / %x27-7E )       ; no space, no "&"
        key       = "curve-secret" / "curve-server" / "curve-allow"
                  / "allow" / "deny" / "domain"
    Files named by options are read (and checked) when the spec is parsed.
    The parser never trusts its input: lengths are bounded, every byte is
    checked, and a reason names what is wrong.                           */

#include "zk_classes.h"
#include "../include/zk_auth.h"
#include "../include/zk_cert.h"

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93  //  a draft option in zmq.h, honoured by libzmq 4.3
#endif

#define S_CURVE_KEY   32                               //  bytes of a binary CURVE key
#define S_OPTIONS_MAX (2 * ZK_SPEC_MAX_ADDRESSES + 8)  //  options in one spec

typedef struct {
    char *text;      //  endpoint as written, without a direction prefix
    char *resolved;  //  bound address after attach, or NULL
    bool binds;
} s_endpoint_t;

struct _zk_spec_t {
    char *text;
    int type;
    char *queue_name;  //  a queue spec's NAME, else NULL
    size_t size;
    s_endpoint_t endpoints[ZK_SPEC_MAX_ENDPOINTS];
    char *options;  //  the text after '?', split in place (security points into it)
    zk_spec_security_t security;
    bool domain_given;  //  domain= was in the options
    uint8_t public_key[S_CURVE_KEY], secret_key[S_CURVE_KEY], server_key[S_CURVE_KEY];
};

static const struct {
    const char *name;
    int type;
} s_types[] = {
    {"pub", ZMQ_PUB},       {"sub", ZMQ_SUB},       {"xpub", ZMQ_XPUB}, {"xsub", ZMQ_XSUB},
    {"push", ZMQ_PUSH},     {"pull", ZMQ_PULL},     {"req", ZMQ_REQ},   {"rep", ZMQ_REP},
    {"dealer", ZMQ_DEALER}, {"router", ZMQ_ROUTER}, {"pair", ZMQ_PAIR}, {"queue", ZK_SPEC_QUEUE},
};

static const char *s_transports[] = {"tcp", "ipc", "inproc", "pgm",  "epgm", "norm",
                                     "ws",  "wss", "tipc",   "vmci", "udp"};

int
zk_spec_type_from_name (const char *name)
{
    for (size_t i = 0; i < sizeof s_types / sizeof s_types[0]; i++)
        if (streq (name, s_types[i].name))
            return s_types[i].type;
    return -1;
}

const char *
zk_spec_type_to_name (int type)
{
    for (size_t i = 0; i < sizeof s_types / sizeof s_types[0]; i++)
        if (s_types[i].type == type)
            return s_types[i].name;
    return NULL;
}

//  Printable form of a byte for error messages.
static const char *
s_show_char (char c, char buf[8])
{
    if (c > 32 && c < 127)
        snprintf (buf, 8, "'%c'", c);
    else
        snprintf (buf, 8, "0x%02x", (unsigned char) c);
    return buf;
}

//  Check one endpoint (without direction prefix). 0 or ZK_EINVAL + reason.
static int
s_check_endpoint (const char *endpoint, bool binds, char *reason, size_t reason_size)
{
    char shown[8];
    if (!*endpoint) {
        snprintf (reason, reason_size, "empty endpoint");
        return ZK_EINVAL;
    }
    for (const char *c = endpoint; *c; c++)
        if ((unsigned char) *c <= 32 || (unsigned char) *c >= 127) {
            snprintf (reason, reason_size, "endpoint '%s' contains %s", endpoint,
                      s_show_char (*c, shown));
            return ZK_EINVAL;
        }
    const char *sep = strstr (endpoint, "://");
    if (!sep) {
        snprintf (reason, reason_size, "endpoint '%s' is not TRANSPORT://ADDRESS", endpoint);
        return ZK_EINVAL;
    }
    size_t transport_len = (size_t) (sep - endpoint);
    bool known = false;
    for (size_t i = 0; i < sizeof s_transports / sizeof s_transports[0]; i++)
        if (strlen (s_transports[i]) == transport_len
            && memcmp (s_transports[i], endpoint, transport_len) == 0)
            known = true;
    if (!known) {
        snprintf (reason, reason_size, "unknown transport '%.*s' (tcp, ipc, inproc, ...)",
                  (int) (transport_len > 32 ? 32 : transport_len), endpoint);
        return ZK_EINVAL;
    }
    const char *address = sep + 3;
    if (!*address) {
        snprintf (reason, reason_size, "endpoint '%s' has no address", endpoint);
        return ZK_EINVAL;
    }
    if (transport_len == 3 && memcmp (endpoint, "tcp", 3) == 0) {
        const char *colon = strrchr (address, ':');
        if (!colon || colon == address || !colon[1]) {
            snprintf (reason, reason_size, "tcp endpoint '%s' needs HOST:PORT", endpoint);
            return ZK_EINVAL;
        }
        const char *port = colon + 1;
        bool wildcard = streq (port, "*") || streq (port, "!");
        bool numeric = strspn (port, "0123456789") == strlen (port) && strlen (port) <= 5
                       && atoi (port) <= 65535;
        if (!numeric && !(binds && wildcard)) {
            snprintf (reason, reason_size, "tcp endpoint '%s' has a bad port '%s'%s", endpoint,
                      port, wildcard ? " (a wildcard port only works when binding)" : "");
            return ZK_EINVAL;
        }
    }
    return 0;
}

//  [A-Za-z0-9._-], whatever the locale.
static bool
s_queue_name_char (char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
           || c == '_' || c == '-';
}

int
zk_spec_check_queue_name (const char *name, size_t size, char *reason, size_t reason_size)
{
    char local[8], shown[8];
    if (!reason) {
        reason = local;
        reason_size = sizeof local;
    }
    if (!name || size == 0) {
        snprintf (reason, reason_size, "empty queue name");
        return ZK_EINVAL;
    }
    if (size > ZK_SPEC_QUEUE_NAME_MAX) {
        snprintf (reason, reason_size, "queue name longer than %d bytes", ZK_SPEC_QUEUE_NAME_MAX);
        return ZK_EINVAL;
    }
    for (size_t i = 0; i < size; i++)
        if (!s_queue_name_char (name[i])) {
            snprintf (reason, reason_size,
                      "queue name '%.*s' contains %s (allowed: letters, digits, '.', '_', '-')",
                      (int) size, name, s_show_char (name[i], shown));
            return ZK_EINVAL;
        }
    if (name[0] == '.') {
        snprintf (reason, reason_size, "queue name '%.*s' starts with '.'", (int) size, name);
        return ZK_EINVAL;
    }
    if (memmem (name, size, "..", 2)) {
        snprintf (reason, reason_size, "queue name '%.*s' contains '..'", (int) size, name);
        return ZK_EINVAL;
    }
    return 0;
}

/*  A queue spec: cut "/NAME" off the end of the endpoint list (in place)
    and keep NAME. The name is after the last '/' of the last endpoint's
    address (an ipc path keeps its other slashes); queues are served by
    zkit-queue, so the spec must connect.                                */
static int
s_split_queue (zk_spec_t *self, char *endpoints, bool binds, char *reason, size_t reason_size)
{
    if (binds) {
        snprintf (reason, reason_size,
                  "a queue spec only connects (queue>ENDPOINT/NAME): queues are served by "
                  "zkit-queue 'router@ENDPOINT'");
        return ZK_EINVAL;
    }
    char *last = strrchr (endpoints, ',');
    last = last ? last + 1 : endpoints;
    char *scheme = strstr (last, "://");
    if (!scheme)
        return 0;  //  the endpoint check says what is wrong
    char *slash = strrchr (scheme + 3, '/');
    if (!slash || slash == scheme + 3) {
        snprintf (reason, reason_size,
                  "queue spec without a queue name: write queue>ENDPOINT/NAME "
                  "(queue>tcp://127.0.0.1:5570/orders)");
        return ZK_EINVAL;
    }
    char why[200];
    if (zk_spec_check_queue_name (slash + 1, strlen (slash + 1), why, sizeof why)) {
        snprintf (reason, reason_size, "%s", why);
        return ZK_EINVAL;
    }
    self->queue_name = strdup (slash + 1);
    if (!self->queue_name) {
        snprintf (reason, reason_size, "out of memory");
        return ZK_ENOMEM;
    }
    *slash = 0;
    return 0;
}

//  What a queue spec's endpoint may not be, beyond any endpoint's rules.
static int
s_check_queue_endpoint (const char *endpoint, bool binds, char *reason, size_t reason_size)
{
    if (binds) {
        snprintf (reason, reason_size,
                  "a queue spec only connects: '@%s' would bind (queues are served by "
                  "zkit-queue)",
                  endpoint);
        return ZK_EINVAL;
    }
    const char *scheme = strstr (endpoint, "://");
    if (scheme && strncmp (endpoint, "tcp://", 6) == 0 && strchr (scheme + 3, '/')) {
        snprintf (reason, reason_size,
                  "endpoint '%s': the queue NAME goes once, after the last endpoint "
                  "(queue>tcp://a:1,tcp://b:2/NAME)",
                  endpoint);
        return ZK_EINVAL;
    }
    return 0;
}

static void
s_spec_free (zk_spec_t *self)
{
    for (size_t i = 0; i < self->size; i++) {
        free (self->endpoints[i].text);
        free (self->endpoints[i].resolved);
    }
    free (self->queue_name);
    free (self->text);
    free (self->options);
    explicit_bzero (self->secret_key, sizeof self->secret_key);
    free (self);
}

//  ---------------------------------------------------------------------------
//  Security options (docs/protocol.md 2.5)

//  Load one certificate's keys (the secret one too when secret is set).
static int
s_load_keys (const char *option, const char *path, bool secret, uint8_t *public_key,
             uint8_t *secret_key, char *reason, size_t reason_size)
{
    char why[512];
    zcert_t *cert = zk_cert_load (path, secret, why, sizeof why);
    if (!cert)
        return zk_engine_reason (reason, reason_size, "%s: %s", option, why);
    memcpy (public_key, zcert_public_key (cert), S_CURVE_KEY);
    if (secret)
        memcpy (secret_key, zcert_secret_key (cert), S_CURVE_KEY);
    zcert_destroy (&cert);
    return 0;
}

/*  What the options mean together, given the directions of the endpoints;
    then the values themselves, files last (they are read now, so a bad
    one is a usage error, not a surprise at bind time).                  */
static int
s_check_security (zk_spec_t *self, char *reason, size_t reason_size)
{
    zk_spec_security_t *security = &self->security;
    bool binds = false, connects = false;
    for (size_t index = 0; index < self->size; index++) {
        binds |= self->endpoints[index].binds;
        connects |= !self->endpoints[index].binds;
    }
    const char *secret = security->curve_secret, *server = security->curve_server;
    if ((secret || server) && binds && connects)
        return zk_engine_reason (reason, reason_size,
                                 "CURVE options on a spec that both binds and connects: use "
                                 "one socket for each direction");
    if (server && binds)
        return zk_engine_reason (reason, reason_size,
                                 "curve-server=FILE is for a spec that connects (the server's "
                                 "public certificate); a spec that binds serves with "
                                 "curve-secret=FILE");
    if (!binds
        && (security->allow_count || security->deny_count || security->curve_allow
            || security->domain))
        return zk_engine_reason (reason, reason_size,
                                 "allow=, deny=, curve-allow= and domain= only apply to a spec "
                                 "that binds");
    if (connects && secret && !server)
        return zk_engine_reason (reason, reason_size,
                                 "curve-secret=FILE on a spec that connects needs "
                                 "curve-server=FILE (the server's public certificate)");
    if (server && !secret)
        return zk_engine_reason (reason, reason_size,
                                 "curve-server=FILE needs curve-secret=FILE (this client's "
                                 "key pair, made by zkit-keygen)");
    if (security->curve_allow && !secret)
        return zk_engine_reason (reason, reason_size,
                                 "curve-allow=DIR needs curve-secret=FILE (the server's key "
                                 "pair): clients are admitted by their CURVE keys");
    char why[512];
    if (security->domain && zk_auth_check_domain (security->domain, why, sizeof why))
        return zk_engine_reason (reason, reason_size, "domain=: %s", why);
    for (size_t index = 0; index < security->allow_count; index++)
        if (zk_auth_check_address (security->allow[index], why, sizeof why))
            return zk_engine_reason (reason, reason_size, "allow=: %s", why);
    for (size_t index = 0; index < security->deny_count; index++)
        if (zk_auth_check_address (security->deny[index], why, sizeof why))
            return zk_engine_reason (reason, reason_size, "deny=: %s", why);
    if (security->curve_allow && zk_auth_check_dir (security->curve_allow, why, sizeof why))
        return zk_engine_reason (reason, reason_size, "curve-allow: %s", why);
    if (secret
        && s_load_keys ("curve-secret", secret, true, self->public_key, self->secret_key, reason,
                        reason_size))
        return ZK_EINVAL;
    if (server
        && s_load_keys ("curve-server", server, false, self->server_key, NULL, reason, reason_size))
        return ZK_EINVAL;
    security->curve = secret != NULL;
    return 0;
}

//  The value slot of key, or NULL (allow and deny: *list_p, the list).
static const char **
s_option_slot (zk_spec_security_t *security, const char *key, bool *list_p)
{
    *list_p = false;
    if (streq (key, "curve-secret"))
        return &security->curve_secret;
    if (streq (key, "curve-server"))
        return &security->curve_server;
    if (streq (key, "curve-allow"))
        return &security->curve_allow;
    if (streq (key, "domain"))
        return &security->domain;
    bool allow = streq (key, "allow");
    if (!allow && !streq (key, "deny"))
        return NULL;
    *list_p = true;
    size_t *count = allow ? &security->allow_count : &security->deny_count;
    if (*count == ZK_SPEC_MAX_ADDRESSES)
        return NULL;
    return allow ? &security->allow[(*count)++] : &security->deny[(*count)++];
}

//  Parse the options (text: after the '?'); the values stay in self->options.
static int
s_parse_options (zk_spec_t *self, const char *text, char *reason, size_t reason_size)
{
    zk_spec_security_t *security = &self->security;
    security->options = true;
    if (!*text)
        return 0;  //  a bare '?': no options, on purpose
    self->options = strdup (text);
    if (!self->options)
        return zk_engine_reason (reason, reason_size, "out of memory");
    char shown[8];
    for (const char *c = text; *c; c++)
        if ((unsigned char) *c <= 32 || (unsigned char) *c >= 127)
            return zk_engine_reason (reason, reason_size, "the options contain %s",
                                     s_show_char (*c, shown));
    char *cursor = self->options;
    for (int items = 0; cursor; items++) {
        char *ampersand = strchr (cursor, '&');
        if (ampersand)
            *ampersand = 0;
        if (items == S_OPTIONS_MAX)
            return zk_engine_reason (reason, reason_size, "more than %d options", S_OPTIONS_MAX);
        if (!*cursor)
            return zk_engine_reason (reason, reason_size,
                                     "an empty option (check for '&&', or '&' at the end)");
        char *equals = strchr (cursor, '=');
        if (!equals)
            return zk_engine_reason (reason, reason_size, "option '%.64s' is not KEY=VALUE",
                                     cursor);
        *equals = 0;
        if (!equals[1])
            return zk_engine_reason (reason, reason_size, "option '%.64s' has an empty value",
                                     cursor);
        bool list;
        const char **slot = s_option_slot (security, cursor, &list);
        if (!slot && list)
            return zk_engine_reason (reason, reason_size, "more than %d %s= addresses",
                                     ZK_SPEC_MAX_ADDRESSES, cursor);
        if (!slot)
            return zk_engine_reason (reason, reason_size,
                                     "unknown option '%.64s' (curve-secret, curve-server, "
                                     "curve-allow, allow, deny, domain)",
                                     cursor);
        if (*slot)
            return zk_engine_reason (reason, reason_size, "option '%s' given twice", cursor);
        *slot = equals + 1;
        cursor = ampersand ? ampersand + 1 : NULL;
    }
    return s_check_security (self, reason, reason_size);
}

//  The parser behind zk_spec_new and zk_spec_validate.
static int
s_parse (const char *text, zk_spec_t **spec_p, char *reason, size_t reason_size)
{
    *spec_p = NULL;
    if (!text || !*text) {
        snprintf (reason, reason_size, "empty spec");
        return ZK_EINVAL;
    }
    size_t length = strnlen (text, ZK_SPEC_MAX_TEXT + 1);
    if (length > ZK_SPEC_MAX_TEXT) {
        snprintf (reason, reason_size, "longer than %d bytes", ZK_SPEC_MAX_TEXT);
        return ZK_EINVAL;
    }
    //  The options start at the first '?': the rest is parsed without them.
    const char *full_text = text;
    const char *question = strchr (text, '?');
    char head[ZK_SPEC_MAX_TEXT + 1];
    if (question) {
        length = (size_t) (question - text);
        memcpy (head, text, length);
        head[length] = 0;
        text = head;
    }
    size_t type_len = strcspn (text, "@>");
    if (type_len == length) {
        snprintf (reason, reason_size, "expected TYPE@ENDPOINT (bind) or TYPE>ENDPOINT (connect)");
        return ZK_EINVAL;
    }
    char type_name[16];
    if (type_len == 0 || type_len >= sizeof type_name) {
        snprintf (reason, reason_size, "unknown socket type '%.*s'",
                  (int) (type_len > 32 ? 32 : type_len), text);
        return ZK_EINVAL;
    }
    memcpy (type_name, text, type_len);
    type_name[type_len] = 0;
    int type = zk_spec_type_from_name (type_name);
    if (type < 0) {
        snprintf (reason, reason_size,
                  "unknown socket type '%s' (pub sub xpub xsub push pull req rep dealer "
                  "router pair queue)",
                  type_name);
        return ZK_EINVAL;
    }
    zk_spec_t *self = calloc (1, sizeof *self);
    char *copy = strdup (text);
    if (!self || !copy) {
        free (self);
        free (copy);
        snprintf (reason, reason_size, "out of memory");
        return ZK_ENOMEM;
    }
    self->text = strdup (full_text);
    self->type = type;
    bool default_binds = text[type_len] == '@';
    //  Split on commas; an empty item (",," or a trailing comma) is an error.
    char *cursor = copy + type_len + 1;
    int rc = 0;
    if (type == ZK_SPEC_QUEUE)
        rc = s_split_queue (self, cursor, default_binds, reason, reason_size);
    while (rc == 0) {
        char *comma = strchr (cursor, ',');
        if (comma)
            *comma = 0;
        bool binds = default_binds;
        if (*cursor == '@' || *cursor == '>') {
            binds = *cursor == '@';
            cursor++;
        }
        if (type == ZK_SPEC_QUEUE) {
            rc = s_check_queue_endpoint (cursor, binds, reason, reason_size);
            if (rc)
                break;
        }
        if (self->size == ZK_SPEC_MAX_ENDPOINTS) {
            snprintf (reason, reason_size, "more than %d endpoints", ZK_SPEC_MAX_ENDPOINTS);
            rc = ZK_EINVAL;
            break;
        }
        rc = s_check_endpoint (cursor, binds, reason, reason_size);
        if (rc)
            break;
        s_endpoint_t *endpoint = &self->endpoints[self->size++];
        endpoint->text = strdup (cursor);
        endpoint->binds = binds;
        if (!endpoint->text || !self->text) {
            snprintf (reason, reason_size, "out of memory");
            rc = ZK_ENOMEM;
            break;
        }
        if (!comma)
            break;
        cursor = comma + 1;
    }
    free (copy);
    if (rc == 0 && question)
        rc = s_parse_options (self, question + 1, reason, reason_size);
    self->domain_given = self->security.domain != NULL;
    if (!self->security.domain)
        self->security.domain = ZK_AUTH_DEFAULT_DOMAIN;
    if (rc) {
        s_spec_free (self);
        return rc;
    }
    *spec_p = self;
    return 0;
}

zk_spec_t *
zk_spec_new (const char *text)
{
    char reason[600];
    zk_spec_t *self;
    if (s_parse (text, &self, reason, sizeof reason)) {
        zk_error ("invalid socket spec '%.200s': %s", text ? text : "", reason);
        return NULL;
    }
    return self;
}

int
zk_spec_validate (const char *text, char *reason, size_t reason_size)
{
    char local[600];
    if (!reason) {
        reason = local;
        reason_size = sizeof local;
    }
    zk_spec_t *spec;
    int rc = s_parse (text, &spec, reason, reason_size);
    if (spec)
        s_spec_free (spec);
    return rc ? ZK_EINVAL : 0;
}

void
zk_spec_destroy (zk_spec_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        s_spec_free (*self_p);
        *self_p = NULL;
    }
}

const char *
zk_spec_text (const zk_spec_t *self)
{
    assert (self);
    return self->text;
}

int
zk_spec_type (const zk_spec_t *self)
{
    assert (self);
    return self->type;
}

const char *
zk_spec_type_name (const zk_spec_t *self)
{
    assert (self);
    return zk_spec_type_to_name (self->type);
}

size_t
zk_spec_size (const zk_spec_t *self)
{
    assert (self);
    return self->size;
}

const char *
zk_spec_queue_name (const zk_spec_t *self)
{
    assert (self);
    return self->queue_name;
}

const char *
zk_spec_endpoint (const zk_spec_t *self, size_t index)
{
    assert (self);
    assert (index < self->size);
    return self->endpoints[index].text;
}

bool
zk_spec_binds (const zk_spec_t *self, size_t index)
{
    assert (self);
    assert (index < self->size);
    return self->endpoints[index].binds;
}

const char *
zk_spec_resolved (const zk_spec_t *self, size_t index)
{
    assert (self);
    assert (index < self->size);
    const s_endpoint_t *endpoint = &self->endpoints[index];
    return endpoint->resolved ? endpoint->resolved : endpoint->text;
}

zsock_t *
zk_spec_socket (const zk_spec_t *self)
{
    assert (self);
    bool queue = self->type == ZK_SPEC_QUEUE;
    zsock_t *sock = zsock_new (queue ? ZMQ_DEALER : self->type);
    if (!sock) {
        zk_error ("cannot create %s socket: %s", zk_spec_type_name (self), zmq_strerror (errno));
        return NULL;
    }
    zsock_set_linger (sock, ZK_DEFAULT_LINGER_MS);
    zsock_set_handshake_ivl (sock, ZK_SPEC_HANDSHAKE_MS);
    zsock_set_backlog (sock, ZK_SPEC_BACKLOG);
    if (queue) {
        zsock_set_heartbeat_ivl (sock, ZK_SPEC_HEARTBEAT_IVL_MS);
        zsock_set_heartbeat_timeout (sock, ZK_SPEC_HEARTBEAT_TIMEOUT_MS);
        zsock_set_heartbeat_ttl (sock, ZK_SPEC_HEARTBEAT_TIMEOUT_MS);
    }
    if (zk_spec_secure (self, sock, NULL) != 0)
        zsock_destroy (&sock);
    return sock;
}

const zk_spec_security_t *
zk_spec_security (const zk_spec_t *self)
{
    assert (self);
    return &self->security;
}

/*  Every binding socket gets a ZAP domain, with enforcement on, so that a
    missing handler refuses peers instead of admitting them, and the
    handler of its context gets the spec's policy under that domain.
    CURVE keys go in as they were read at parse time.                    */
int
zk_spec_secure (const zk_spec_t *self, void *sock, void *context)
{
    assert (self);
    assert (sock);
    void *handle = zsock_resolve (sock);
    const zk_spec_security_t *security = &self->security;
    bool binds = false;
    for (size_t index = 0; index < self->size; index++)
        binds |= self->endpoints[index].binds;
    int rc = 0, on = 1;
    if (security->curve && binds) {
        rc |= zmq_setsockopt (handle, ZMQ_CURVE_SERVER, &on, sizeof on);
        rc |= zmq_setsockopt (handle, ZMQ_CURVE_SECRETKEY, self->secret_key, S_CURVE_KEY);
    }
    else if (security->curve) {
        rc |= zmq_setsockopt (handle, ZMQ_CURVE_SERVERKEY, self->server_key, S_CURVE_KEY);
        rc |= zmq_setsockopt (handle, ZMQ_CURVE_PUBLICKEY, self->public_key, S_CURVE_KEY);
        rc |= zmq_setsockopt (handle, ZMQ_CURVE_SECRETKEY, self->secret_key, S_CURVE_KEY);
    }
    if (rc) {
        zk_error ("%s: cannot set its CURVE keys: %s", zk_spec_type_name (self),
                  zmq_strerror (errno));
        return ZK_ESOCKET;
    }
    if (!binds)
        return 0;
    //  The policy under its domain. Without domain=, a policy other than
    //  the one "zkit" has already gets the first free "zkit.N" instead.
    char domain[ZK_AUTH_DOMAIN_MAX + 1];
    snprintf (domain, sizeof domain, "%s", security->domain);
    zk_auth_policy_t policy = {
        .domain = domain,
        .allow = security->allow,
        .allow_count = security->allow_count,
        .deny = security->deny,
        .deny_count = security->deny_count,
        .curve_allow = security->curve_allow,
    };
    char reason[600];
    rc = zk_auth_policy_add (&policy, reason, sizeof reason);
    for (int n = 2; rc == ZK_EBUSY && !self->domain_given && n <= ZK_AUTH_DOMAINS_MAX; n++) {
        snprintf (domain, sizeof domain, "%s.%d", ZK_AUTH_DEFAULT_DOMAIN, n);
        rc = zk_auth_policy_add (&policy, reason, sizeof reason);
    }
    if (rc) {
        zk_error ("socket spec '%.200s': %s", self->text, reason);
        return rc == ZK_ENOMEM ? ZK_ENOMEM : ZK_EINVAL;
    }
    if (zmq_setsockopt (handle, ZMQ_ZAP_DOMAIN, domain, strlen (domain)) != 0
        || zmq_setsockopt (handle, ZMQ_ZAP_ENFORCE_DOMAIN, &on, sizeof on) != 0) {
        zk_error ("%s: cannot set its ZAP domain: %s", zk_spec_type_name (self),
                  zmq_strerror (errno));
        return ZK_ESOCKET;
    }
    if (context || zsock_is (sock))
        return zk_auth_start (context);
    return 0;
}

int
zk_spec_attach (zk_spec_t *self, zsock_t *sock)
{
    assert (self);
    assert (sock);
    int rc = zk_spec_secure (self, sock, NULL);
    if (rc)
        return rc;
    for (size_t i = 0; i < self->size; i++) {
        s_endpoint_t *endpoint = &self->endpoints[i];
        if (endpoint->binds) {
            //  Plain zmq_bind: czmq's zsock_bind picks its own port range for '*'.
            if (zmq_bind (zsock_resolve (sock), endpoint->text) != 0) {
                int error = errno;
                zk_error ("cannot bind %s: %s", endpoint->text, zmq_strerror (error));
                return error == EADDRINUSE ? ZK_EADDRINUSE : ZK_EENDPOINT;
            }
            char resolved[512] = "";
            size_t size = sizeof resolved;
            if (zmq_getsockopt (zsock_resolve (sock), ZMQ_LAST_ENDPOINT, resolved, &size) == 0
                && *resolved) {
                free (endpoint->resolved);
                endpoint->resolved = strdup (resolved);
            }
        }
        else if (zmq_connect (zsock_resolve (sock), endpoint->text) != 0) {
            zk_error ("cannot connect %s: %s", endpoint->text, zmq_strerror (errno));
            return ZK_EENDPOINT;
        }
    }
    return 0;
}

zsock_t *
zk_sock_new (const char *text, int *rc_p)
{
    int rc_local;
    if (!rc_p)
        rc_p = &rc_local;
    zk_spec_t *spec = zk_spec_new (text);
    if (!spec) {
        *rc_p = ZK_EINVAL;
        return NULL;
    }
    zsock_t *sock = zk_spec_socket (spec);
    if (!sock) {
        *rc_p = ZK_ESOCKET;
        zk_spec_destroy (&spec);
        return NULL;
    }
    *rc_p = zk_spec_attach (spec, sock);
    zk_spec_destroy (&spec);
    if (*rc_p)
        zsock_destroy (&sock);
    return sock;
}
