/*  fake_queue — a small ZKQ/1 server for tests (tests/zk_client_test.c).

    A ROUTER on tcp://127.0.0.1:* in an actor thread, speaking enough of
    docs/protocol.md "ZKQ/1" to test clients against it, in memory: PUT
    (with dedup by MSGID), GET windows per peer (and their consumer
    names), MSG deliveries, ACK, NACK, FWD, STATUS, TRACE (every message of
    the id, in order of acceptance), STATS, LIST, MOVE, PING; plus ways to
    misbehave on request.

    fake_queue_ask sends one command and returns its number:
        MODE normal|silent|hold|batch
                      silent: no reply to anything; hold: PUTs are stored
                      but their OKs wait for RELEASE; batch: like hold,
                      and every held OK is sent once no PUT came for 30 ms
        DROPOK N      the next N PUT OKs are not sent (lost confirms)
        ERR CODE      reply ERR CODE to every PUT and FWD (0: stop)
        RELEASE       send the held OKs
        MAXDELIVER N  dead-letter after N attempts (default 5)
        RESTART       close the ROUTER and bind the same endpoint again
                      (leases are released, as the real server does)
        GARBAGE       send hostile messages to the last peer seen
        PUTS          PUT commands received (resends included)
        STORED        messages stored, every queue and state
        MAXSENDS      most PUT commands seen for one MSGID
        MAXHELD       most OKs held at once (hold/batch)
        COUNT Q STATE messages of queue Q in STATE (queued leased done dead)
        MAXLEASED     most messages leased to one peer at once
        ACKS / NACKS  commands received
        LASTATTEMPT   attempt of the last delivery sent
        FWDS          FWD commands received
        BADTRACE N    the next TRACE answers with malformed case N (1..)
        BADTRACES     how many such cases there are                        */

#ifndef FAKE_QUEUE_H_INCLUDED
#define FAKE_QUEUE_H_INCLUDED

#include "testutil.h"

typedef struct _fake_queue_t fake_queue_t;

fake_queue_t *fake_queue_new (void);
void fake_queue_destroy (fake_queue_t **self_p);
//  "tcp://127.0.0.1:PORT". Borrowed.
const char *fake_queue_endpoint (fake_queue_t *self);
//  "queue>ENDPOINT/NAME". Caller frees.
char *fake_queue_spec (fake_queue_t *self, const char *name);
//  A zk_client of queue name on the fake, with config (NULL: defaults);
//  fails the test if it cannot be made. Caller owns it.
zk_client_t *fake_queue_client (fake_queue_t *self, const char *name,
                                const zk_client_config_t *config);
//  One command (printf-style); its number (-1 if the fake did not answer).
int64_t fake_queue_ask (fake_queue_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Wait until the number of command `format` reaches value (>=), at most timeout_ms.
bool fake_queue_wait (fake_queue_t *self, int64_t value, int timeout_ms, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

#endif
