/*  zk_bench — what zkit-bench runs: every channel measured against raw
    libzmq in the same run.

    A run moves `count` messages of `size` bytes through one channel, with
    the sender and the receiver(s) in separate processes (the program
    spawns itself with a hidden role argument), or in threads of one
    process with `inproc`; devices are the real binaries (zkit-proxy,
    zkit-forwarder, zkit-worker, started with --ready-file) or, with
    `inproc`, the same engines in-process. Reference devices (libzmq's
    zmq_proxy, czmq's zproxy) run on the same socket types, endpoints and
    high-water marks, in a helper process (or thread).

    Every run checks that every message arrived, in order (a sequence
    number in the first bytes): a run that loses one reports it and the
    bench fails. Each case runs `repeat` times, interleaved with its
    baseline (direct PUSH/PULL, PUB/SUB or REQ/REP on the same transport
    and size), and reports the medians and the ratio to the baseline.

    Channels (zk_bench_print_channels lists them):
        throughput  push proxy zmq-proxy zproxy envelope proxy-envelope worker
        fan-out     pub forwarder zmq-forwarder        (K subscribers each)
        latency     reqrep reqrep-proxy reqrep-zmq-proxy reqrep-zproxy
                    reqrep-envelope reqrep-worker reqrep-worker-exec
        queue       queue-batch queue-always queue-never
                    queue-batch-raw queue-never-raw
    A queue channel starts a real zkit-queue (fresh --data directory, the
    channel's --fsync policy) and measures, against direct PUSH/PULL of the
    same size and transport: confirmed puts/s (a zk_client producer with
    `queue_window` PUTs in flight, timed to the last confirm), consumed and
    acked msg/s (a consumer draining that backlog with a GET window of
    `queue_window`, acking each, timed to the last ack's reply), and both
    at once (end to end). Every message is sequence-checked, every ack must
    succeed and the queue must be empty at the end (STATS). The -raw
    channels use a minimal ZKQ/1 client instead of zk_client: the server
    alone.
    The reliable request-response client (--lb) adds its channel when it
    lands (see the extension point in zk_bench.c).                      */

#ifndef ZK_BENCH_H_INCLUDED
#define ZK_BENCH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZK_BENCH_MAX_REPEAT       99
#define ZK_BENCH_MAX_SIZE         (64 * 1024 * 1024)  //  bytes of one message
#define ZK_BENCH_MAX_SUBSCRIBERS  64
#define ZK_BENCH_MAX_QUEUE_WINDOW 10000  //  ZKQ/1's largest GET window

typedef struct {
    const char
        *channels;  //  comma-separated names; NULL: push,proxy,pub,forwarder,reqrep,reqrep-proxy
    const char *sizes;  //  comma-separated byte sizes ("16,1k,64k"); NULL: "64"
    const char
        *transports;  //  comma-separated: tcp, ipc, inproc (inproc needs `inproc`); NULL: "tcp"
    const char *subscribers;  //  fan-out: comma-separated K values; NULL: "1"
    long count;               //  messages (round trips) per run; 0: chosen by size and channel
    int repeat;               //  runs of every case; 0: 3
    int warmup;               //  latency: round trips not recorded; <0: 100 (worker-exec: 10)
    int hwm;                  //  high-water mark of every socket and device; 0: 1000
    int window;               //  fan-out: messages a publisher may be ahead of its slowest
                              //  subscriber; 0: 2/5 of hwm (so no queue can overflow)
    double timeout;           //  seconds without progress before a run fails; 0: 10
    bool inproc;              //  threads and in-process engines instead of processes
    bool pin;                 //  the sending role on CPU 0, the receiving roles on CPU 1
    const char *format;       //  "table" (default), "csv", "json" or "markdown"
    const char *csv_path;     //  also write the CSV to this file (the sweep's data), or NULL
    const char *bin_dir;      //  where zkit-proxy & co are; NULL: $ZK_BIN, else beside the program
    int skip_every;           //  testing: the sender leaves out every Nth message (0: none)
    bool progress;            //  a progress line on stderr (the binary sets it on a terminal)
    int queue_window;         //  queue channels: PUTs in flight and GET window; 0: 2000
} zk_bench_config_t;

typedef struct _zk_bench_t zk_bench_t;

//  Check a configuration: channel names, sizes, transports, K values.
//  0, or ZK_EINVAL with a one-line reason (when reason is not NULL).
int zk_bench_validate (const zk_bench_config_t *config, char *reason, size_t reason_size);

//  A bench ready to run. NULL if the configuration is invalid or a zkit
//  binary a channel needs is missing (logged). Caller owns it.
zk_bench_t *zk_bench_new (const zk_bench_config_t *config);
void zk_bench_destroy (zk_bench_t **self_p);

//  Run every case `repeat` times and print the results to out in the
//  configured format. 0 when every run completed; ZK_EIO when a run
//  failed (a process died, a device would not start, a timeout: logged
//  and shown in the results), ZK_EINTR when interrupted. Lost messages
//  are counted in zk_bench_lost, and also make the result ZK_EIO.
int zk_bench_run (zk_bench_t *self, FILE *out);

//  Messages lost over every run so far.
uint64_t zk_bench_lost (const zk_bench_t *self);

//  One line per channel: name, what it measures, its baseline.
void zk_bench_print_channels (FILE *out);

//  The hidden role entry point: zkit-bench runs itself as
//  "PROGRAM --role NAME key=value ..." for the processes of a run.
bool zk_bench_is_role (int argc, char **argv);
//  Run the role; prints one result line on stdout. Returns the exit code.
int zk_bench_role_main (int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
