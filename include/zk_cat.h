/*  zk_cat — the shell's door to every zkit channel (what zkit-cat runs).

    One socket, opened from a spec, and what its type does with it:

        push, pub           send the input, one message per line; hand it over
        pull, sub           print what arrives, one message per line
        rep                 print each request and answer it with itself (echo)
        req                 send each input message, print its reply: the
                            reliable client (zk_caller: a request id, retries,
                            failover over the spec's endpoints)
        dealer              send each input message behind an empty delimiter
                            frame (pipelined), print as many replies as it sent
        pair                send the input; with count N, then print N messages
        xpub xsub router    refused (devices and routing are other tools' work)
        queue               (queue>ENDPOINT/NAME, a zkit-queue): put the input,
                            one message per line, each confirmed durable; with
                            count N take N messages instead, print each and
                            ack it once printed and flushed; list: print the
                            queue's messages; requeue: move NAME.dead's
                            messages back into NAME; submit, status, wait:
                            async jobs (docs/protocol.md 7.12)

    Input. A message is the bytes up to the delimiter (default '\n'); a final
    message without a delimiter still counts; an empty line is an empty
    message; no byte is changed (a '\r' stays). Empty input is no message.
    In raw mode all of the input is one message (also when empty). A message
    longer than max_size is refused: zk_cat_run stops reading and fails with
    ZK_ETOOBIG. frame_sep splits each message into frames.

    Output, per message, flushed at once:
        raw      the frames joined by frame_sep (default a tab), then the
                 delimiter (none in raw mode): the bare body, byte-exact
        hex      each frame as lowercase hex, frames separated by a space
        json     {"frames":[F,...]} or {"frames":[F,...],"envelope":{...}};
                 F is a JSON string when the frame is valid UTF-8, else
                 {"hex":"..."}; one object per line
        msgpack  one msgpack array of bin frames per message, every frame as
                 received (the envelope too), no delimiter: for programs
    raw and hex leave the envelope frame out; json shows it decoded. On sub
    the envelope may follow the topic frame (pub puts it there).

    Delivery. Each socket lives in a private libzmq context, so the end of a
    run can be timed: the socket is closed with a linger of the time left,
    and terminating the context returns early only when every queued
    message was handed over. A connecting sender uses ZMQ_IMMEDIATE, so a
    message is only queued for a peer that is connected; a send that no peer
    takes within the timeout is "not sent". "Delivered" means handed to the
    peer's socket: ZeroMQ has no end-to-end acknowledgement. A queue is the
    exception: there "delivered" means confirmed durable by the server.   */

#ifndef ZK_CAT_H_INCLUDED
#define ZK_CAT_H_INCLUDED

#include "zk_cli.h"
#include "zk_spec.h"

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_CAT_DEFAULT_MAX_SIZE     ZK_MAX_SIZE_DEFAULT  //  bytes of one message (1 MiB)
#define ZK_CAT_DEFAULT_SEND_TIMEOUT 5.0                  //  seconds, sending types
#define ZK_CAT_MAX_FRAMES           65536                //  frames of one received message
#define ZK_CAT_MAX_SEPARATOR        64                   //  bytes of a frame separator

//  Strings are borrowed: they must outlive the zk_cat_t made from the config.
//  A zeroed config means every default.
typedef struct {
    const char *spec;          //  socket spec, required
    const char *delimiter;     //  one byte ending each message, in and out, with C escapes
                               //  (\n \t \r \0 \\ \xHH); NULL = "\n"
    bool null_delimiter;       //  the delimiter is NUL (zkit-cat -0)
    bool raw;                  //  input: all of it is one message; output: no delimiter
    const char *frame_sep;     //  split input messages into frames here and join printed
                               //  frames with it (escapes as above); NULL = no split, tab
    zk_strlist_t data;         //  messages to send instead of the input
    size_t max_size;           //  largest message read or received; 0 = the default
    bool envelope;             //  put a fresh envelope frame in front of each message
    zk_strlist_t headers;      //  "KEY=VALUE" envelope headers (imply envelope)
    const char *content_type;  //  envelope content type (implies envelope), or NULL
    const char *format;        //  "raw" (NULL), "hex", "json" or "msgpack"
    zk_strlist_t subscribe;    //  sub: topic prefixes; none = everything
    int count;                 //  messages to print (push, pub: to send); 0 = no limit
                               //  (dealer: as many as sent; pair: none)
    double timeout;            //  seconds, see zk_cat_run; 0 = the default; < 0 = no limit
    int retries;               //  req: further attempts per request (0..100; needs timeout)
    int wait_subscribers;      //  pub: send only once this many subscriptions arrived
    const char *ready_file;    //  "socket ENDPOINT" lines, written once attached; or NULL
    int hwm;                   //  send and receive high-water mark; 0 = libzmq's default
    bool list;                 //  queue: print "ID ATTEMPTS REASON" per queued message
                               //  (count: at most that many; default 1000)
    bool requeue;              //  queue NAME.dead: move its messages back into NAME
    const char *id;            //  requeue: only this message id (text form)
    bool submit;               //  queue: put all of the input as one job, print its id
    const char *status;        //  queue: print the state of this job id (text or json)
    const char *wait;          //  queue: wait until this job id is done (print its result)
                               //  or dead (fail with its reason)
} zk_cat_config_t;

typedef struct {
    uint64_t read;           //  messages taken from the input or the data list
    uint64_t sent;           //  messages handed to the socket (queue: PUTs made)
    uint64_t unsent;         //  messages read but not sent (no peer in time, interrupted;
                             //  queue: not confirmed durable)
    uint64_t received;       //  messages received and printed
    uint64_t refused;        //  messages received but refused (over max_size or frames)
    uint64_t error_replies;  //  replies whose envelope says zk-status=error
    bool delivered;          //  what was sent was handed over before the deadline
} zk_cat_stats_t;

typedef struct _zk_cat_t zk_cat_t;

//  Check a configuration without opening anything. 0, or ZK_EINVAL with a
//  one-line reason in reason (when not NULL), worded for zkit-cat's flags.
int zk_cat_validate (const zk_cat_config_t *config, char *reason, size_t reason_size);

//  Validate, open and attach the socket, write the ready file. NULL on
//  failure (logged). Caller owns the result.
zk_cat_t *zk_cat_new (const zk_cat_config_t *config);
//  Close without handing anything over (zk_cat_run already did). Safe on NULL.
void zk_cat_destroy (zk_cat_t **self_p);

//  Endpoint index as attached (ephemeral ports resolved), or NULL past the
//  last. Borrowed.
const char *zk_cat_endpoint (zk_cat_t *self, size_t index);

/*  Do what the socket type does (see the top of this file), once. Reads
    messages from in (NULL: no input; the data list replaces it) and prints
    to out (NULL: count but print nothing).

    The timeout: senders (push, pub, pair) may wait that long in total for
    peers to take the messages and for the final hand-over, default 5 s;
    time spent waiting for input does not count, so a slow pipe is fine.
    pub's wait for subscribers shares it. Receivers (pull, sub, rep, pair's
    count) wait that long in total for count messages; without a count the
    timeout simply ends the run. req: per attempt (retries more attempts
    per request, each to the next endpoint in turn; no timeout: one attempt
    without a limit).
    dealer: the whole exchange. Receivers, req and dealer: no limit by
    default. queue: putting, each message must be confirmed within the
    timeout of being read (default 5 s); taking, count messages within
    the timeout (no limit by default); list, requeue, submit and status:
    the reply (default 5 s); wait: until the job ends (no limit by
    default; then ZK_ETIMEDOUT, and ZK_ECOMMAND for a dead job).

    SIGINT/SIGTERM (zsys_interrupted): stop reading the input and print
    nothing more; hand over what was sent (at most 1 s more). Then 0,
    unless a message read from the input could not be sent or handed over
    (ZK_ETIMEDOUT, logged).

    Returns 0; ZK_ETIMEDOUT when messages were not sent or not handed over
    in time (queue: not confirmed durable, whatever the reason), fewer
    than count arrived, or a reply did not come (the reason is logged); ZK_ECOMMAND when some reply
   carried an envelope with zk-status=error (its zk-error is logged; everything else went well);
    ZK_ETOOBIG / ZK_EIO for the input; another ZK_E... on a socket error.  */
int zk_cat_run (zk_cat_t *self, FILE *in, FILE *out);

//  Counters so far.
void zk_cat_stats (zk_cat_t *self, zk_cat_stats_t *stats);

//  zkit-cat's exit status for a zk_cat_run result: 0 ok, 3 ZK_ETIMEDOUT
//  (not delivered / not all received in time), 2 ZK_EINVAL, else 1.
int zk_cat_exit_code (int rc);

//  One-shot: new, run with input in / output out, destroy. As zk_cat_run;
//  ZK_EINVAL or ZK_EENDPOINT when the cat could not be made.
int zk_cat_send (const zk_cat_config_t *config, FILE *in);
int zk_cat_receive (const zk_cat_config_t *config, FILE *out);

//  --------------------------------------------------------------------------
//  The pure helpers zk_cat_run is made of.

//  Decode C escapes (\n \t \r \0 \\ \xHH) of text into out (out_size bytes,
//  not NUL-terminated), size into *size_p. 0, or ZK_EINVAL for an unknown or
//  cut escape, ZK_ETOOBIG when out is too small.
int zk_cat_unescape (const char *text, char *out, size_t out_size, size_t *size_p);

//  Splits a stream into messages. Reads byte by byte through stdio, so a
//  message is returned as soon as its delimiter arrives (pipelines stream).
typedef struct _zk_cat_reader_t zk_cat_reader_t;

//  delimiter: the byte ending a message (0..255), or -1 for raw mode (all of
//  the input is one message). max_size: largest message. Caller owns it.
zk_cat_reader_t *zk_cat_reader_new (FILE *in, int delimiter, size_t max_size);
void zk_cat_reader_destroy (zk_cat_reader_t **self_p);

//  The next message, without its delimiter: 0 with *data_p and *size_p
//  (borrowed until the next call), or 0 with *data_p NULL at the end of the
//  input. ZK_ETOOBIG: longer than max_size (never more than max_size bytes
//  are held); the reader stays failed. ZK_EINTR: a signal interrupted
//  the read; call again to resume (nothing is lost). ZK_EIO: read error.
int zk_cat_reader_next (zk_cat_reader_t *self, const uint8_t **data_p, size_t *size_p);

//  A new message of the frames of data split at every sep (sep_size bytes):
//  n separators make n + 1 frames, empty ones included. sep NULL: one
//  frame. Caller owns it; NULL if out of memory.
zmsg_t *zk_cat_split (const void *data, size_t size, const void *sep, size_t sep_size);

typedef enum {
    ZK_CAT_RAW,
    ZK_CAT_HEX,
    ZK_CAT_JSON,
    ZK_CAT_MSGPACK,
} zk_cat_format_t;

//  The format called name ("raw", "hex", "json", "msgpack"), or -1.
int zk_cat_format_from_name (const char *name);

//  How messages are printed.
typedef struct {
    zk_cat_format_t format;
    int delimiter;          //  written after each message (not msgpack); -1: none
    const char *frame_sep;  //  raw: between frames; NULL: a tab
    size_t frame_sep_size;
    bool topic_first;  //  sub: an envelope may be the second frame
} zk_cat_output_t;

//  Print msg (not modified, except its frame cursor) to out. 0 or ZK_EIO.
//  Does not flush.
int zk_cat_print (const zk_cat_output_t *output, zmsg_t *msg, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
