/*  zk_envelope — the optional metadata frame that toolkit messages carry.

    A msgpack map in a frame of its own, before the body frames (after the
    topic frame on pub/sub, so prefix filtering still works). It holds:
    message id (16 bytes, UUIDv7: sortable by creation time), creation
    time, trace id, attempt count, content type and free-form string
    headers. docs/protocol.md specifies the bytes.

    Devices never decode it. The decoder treats its input as hostile: it
    never allocates more than the bytes it was given, bounds every length
    and the nesting depth, and reports a ZK_E... code, never crashes.    */

#ifndef ZK_ENVELOPE_H_INCLUDED
#define ZK_ENVELOPE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_ID_SIZE              16     //  bytes of a message / trace id
#define ZK_ID_TEXT_SIZE         37     //  "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" + NUL
#define ZK_ENVELOPE_VERSION     1      //  the "zk" key's value
#define ZK_ENVELOPE_MAX_SIZE    65536  //  encoded frame, bytes
#define ZK_ENVELOPE_MAX_HEADERS 64     //  headers per envelope
#define ZK_ENVELOPE_MAX_STRING  4096   //  bytes of a key, value or content type
#define ZK_ENVELOPE_MAX_DEPTH   8      //  nesting of skipped unknown values

typedef struct _zk_envelope_t zk_envelope_t;

//  Fill id with a fresh UUIDv7 (48-bit ms time, version 7, random rest).
void zk_id_generate (uint8_t id[ZK_ID_SIZE]);
//  Write id as canonical UUID text into text (ZK_ID_TEXT_SIZE bytes).
void zk_id_format (const uint8_t id[ZK_ID_SIZE], char text[ZK_ID_TEXT_SIZE]);
//  Parse canonical UUID text (or 32 hex digits). 0 or ZK_EINVAL.
int zk_id_parse (const char *text, uint8_t id[ZK_ID_SIZE]);

//  A new envelope: fresh id, time now, trace id = id, attempt 1, no
//  content type, no headers. Caller owns it.
zk_envelope_t *zk_envelope_new (void);
void zk_envelope_destroy (zk_envelope_t **self_p);
//  A deep copy. Caller owns it.
zk_envelope_t *zk_envelope_dup (const zk_envelope_t *self);

//  Message id: 16 bytes. Borrowed.
const uint8_t *zk_envelope_id (const zk_envelope_t *self);
void zk_envelope_set_id (zk_envelope_t *self, const uint8_t id[ZK_ID_SIZE]);
//  Creation time, microseconds since the Unix epoch.
int64_t zk_envelope_time (const zk_envelope_t *self);
void zk_envelope_set_time (zk_envelope_t *self, int64_t time_us);
//  Trace id: 16 bytes, shared by every message of one flow. Borrowed.
const uint8_t *zk_envelope_trace (const zk_envelope_t *self);
void zk_envelope_set_trace (zk_envelope_t *self, const uint8_t trace[ZK_ID_SIZE]);
//  Delivery attempt, 1 for the first.
uint32_t zk_envelope_attempt (const zk_envelope_t *self);
void zk_envelope_set_attempt (zk_envelope_t *self, uint32_t attempt);
//  Content type (e.g. "text/plain"), or NULL if unset. Borrowed.
const char *zk_envelope_content_type (const zk_envelope_t *self);
//  Copies the value; NULL unsets. ZK_ETOOBIG past ZK_ENVELOPE_MAX_STRING.
int zk_envelope_set_content_type (zk_envelope_t *self, const char *content_type);

//  Set (or replace) a header; key and value are copied. ZK_ETOOBIG when
//  a string is too long or the envelope has ZK_ENVELOPE_MAX_HEADERS;
//  ZK_EINVAL when key or value is NULL.
int zk_envelope_set_header (zk_envelope_t *self, const char *key, const char *value);
//  Value of header key, or NULL. Borrowed.
const char *zk_envelope_header (const zk_envelope_t *self, const char *key);
size_t zk_envelope_header_count (const zk_envelope_t *self);
//  Key / value of header index (insertion order). Borrowed; NULL if out of range.
const char *zk_envelope_header_key (const zk_envelope_t *self, size_t index);
const char *zk_envelope_header_value (const zk_envelope_t *self, size_t index);

//  Encode into a new frame. 0, ZK_ETOOBIG (over ZK_ENVELOPE_MAX_SIZE) or
//  ZK_ENOMEM. Caller owns *frame_p.
int zk_envelope_encode (const zk_envelope_t *self, zframe_t **frame_p);
//  Decode size bytes. 0 and a new envelope in *self_p (caller owns it),
//  or ZK_ETRUNC / ZK_ETOOBIG / ZK_EPROTO / ZK_EDEPTH / ZK_EVERSION (or
//  ZK_ENOMEM) with *self_p NULL. Strings containing NUL are refused
//  (ZK_EPROTO): every string of the envelope is a C string.
int zk_envelope_decode (const void *data, size_t size, zk_envelope_t **self_p);
//  Cheap test: do these bytes start like an envelope (its magic)? Says
//  nothing about the rest; decode to know.
bool zk_envelope_is_envelope (const void *data, size_t size);

//  Put the encoded envelope in front of msg's frames. 0 or an encode error.
int zk_envelope_attach (const zk_envelope_t *self, zmsg_t *msg);
//  If msg's first frame is an envelope, decode it, remove the frame and
//  return 0 with the envelope in *self_p (caller owns it). No envelope:
//  0 with *self_p NULL and msg untouched. A frame with the magic that
//  does not decode: the error, msg untouched.
int zk_envelope_detach (zmsg_t *msg, zk_envelope_t **self_p);

//  Write the envelope as one JSON object (no newline) to out:
//  {"id":"…","time":…,"trace":"…","attempt":…,"content_type":…,"headers":{…}}
//  0 or ZK_EIO.
int zk_envelope_print_json (const zk_envelope_t *self, FILE *out);

//  True if size bytes are valid UTF-8 (no overlongs, no surrogates).
bool zk_utf8_valid (const void *data, size_t size);
//  Write bytes as a JSON string literal (quotes included), escaping what
//  JSON requires. Bytes that are not valid UTF-8 become \u00XX, which is
//  lossy: callers that need the exact bytes test zk_utf8_valid first.
//  0 or ZK_EIO.
int zk_json_print_string (const void *data, size_t size, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
