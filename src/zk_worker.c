/*  zk_worker — a shell command as a service (see include/zk_worker.h).

    One actor thread polls, in one zmq_poll loop, the pipe to its owner,
    the input and output sockets, and for every job slot its child's
    pidfd (exit), stdin (write end) and stdout (read end). Children are
    started with posix_spawnp (we are multithreaded: no fork) in a process
    group of their own, so a timeout or a stop kills what they started too.

    The slots serve one of two modes:
    - per message: a slot runs one COMMAND for one request, spawn to exit;
    - lines: a slot keeps one long-running COMMAND (a coprocess) with a
      FIFO of up to S_LINES_DEPTH requests written to it as lines.

    A request remembers where its answer goes: its routing envelope (the
    frames copied back in front of the reply; NULL for one-way inputs) and
    its zkit envelope frame, echoed back byte-exact on success.

    A queue input (queue>ENDPOINT/NAME) is a zk_client: GET with a window
    of `jobs`, so the server never leases this worker more than it can
    run; a delivery is a request whose answer is an ACK (stdout the
    result) or a NACK (requeue, the failure the reason). A queue output
    puts the stdout and acks the input only once the put is confirmed: a
    crash in between is a redelivery, never a loss. The clients are
    processed every loop turn; their callbacks run there. Sends never
    block the loop: what a socket cannot take now waits in an outbox, and
    the input is not read while an outbox holds anything (back-pressure).

    With lb the input DEALER speaks ZKW/1 to a zkit-proxy --lb: a REQUEST
    becomes an ordinary request whose routing envelope starts with
    "ZKW1" "REPLY", so the one request path serves it; the proxy's credit
    bounds what comes, so the input is read even while every slot is busy
    (heartbeats must be heard), and a request beyond the slots is refused.

    The reply cache maps a request envelope id to its success reply (a
    hash table and a list oldest first, bounded in entries, bytes and
    age); an id still running maps to a pending record where duplicates
    leave their routing envelopes until the run answers them all.       */

#include "zk_classes.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define S_DEFAULT_MAX_OUTPUT   ((size_t) 16 << 20)
#define S_KILL_GRACE_MS        500  //  SIGTERM, then SIGKILL this much later
#define S_STOP_GRACE_MS        250  //  the same when the worker stops
#define S_DRAIN_MS             400  //  queue acks/nacks handed over at stop, at most
#define S_REAP_TICK_MS         50   //  waitid poll period where pidfd_open is missing
#define S_LINES_DEPTH          32   //  lines written to a coprocess ahead of its answers
#define S_RESTART_MIN_MS       100  //  coprocess restart back-off
#define S_RESTART_MAX_MS       5000
#define S_STABLE_MS            1000   //  a coprocess that lived this long is restarted at once
#define S_READ_CHUNK           65536  //  bytes per read ()
#define S_READ_ROUNDS          16     //  reads per slot per loop turn (fairness)
#define S_IOV_MAX              64     //  frames per writev ()
#define S_REASON_SIZE          192
#define S_JOIN_MAX             8  //  routings waiting for one run of a request id, in all
#define S_LB_SILENT            3  //  heartbeat intervals without a word: the proxy is gone
#define S_KEY_SIZE             (2 * ZK_ID_SIZE + 1)  //  a request id in hex
#define S_DEFAULT_CACHE_BYTES  ((size_t) 64 << 20)
#define S_DEFAULT_TTL_MS       300000
#define S_DEFAULT_HEARTBEAT_MS 1000

//  Error replies that mean "not done, send it again" (zk-retry=1).
#define S_STOPPING  "worker stopping"
#define S_BUSY      "worker busy"
#define S_JOIN_FULL "too many duplicates of a running request"

typedef struct _s_pending_t s_pending_t;

typedef struct {
    char *data;
    size_t size;
    size_t capacity;
} s_buffer_t;

//  One request in flight: where its answer goes.
typedef struct {
    zmsg_t *routing;           //  frames put back in front of the reply; NULL: one-way
    zframe_t *envelope_frame;  //  the request's envelope as received, or NULL
    zk_envelope_t *envelope;   //  the same, decoded
    int64_t deadline;          //  ms; 0: none
    zk_delivery_t *delivery;   //  queue input: the message to ack or nack (body moved out)
    s_pending_t *pending;      //  reply cache: its id is running (joins wait here), or NULL
} s_request_t;

typedef struct {
    pid_t pid;        //  0: no process
    int pidfd;        //  readable at exit; -1: poll waitid instead
    int in_fd;        //  write end of its stdin; -1 once closed
    int out_fd;       //  read end of its stdout; -1 once closed
    int64_t started;  //  ms
    int64_t kill_at;  //  SIGKILL due (after a SIGTERM); 0: none
    int status;       //  wait status, once reaped
} s_process_t;

typedef struct {
    s_process_t proc;
    bool busy;                    //  per message: running a request
    bool dying;                   //  killed or broken: its requests are answered,
                                  //  waiting for its exit
    char failure[S_REASON_SIZE];  //  per message: why we killed it
    s_request_t request;          //  per message
    zmsg_t *input;                //  per message: body frames still to write
    size_t input_offset;          //  bytes of input's first frame written
    s_buffer_t output;            //  stdout so far (lines: the partial line)
    //  Lines mode
    s_request_t queue[S_LINES_DEPTH];  //  ring: requests awaiting their line
    size_t head, count;
    s_buffer_t lines;      //  bytes still to write to stdin
    size_t lines_written;  //  of lines.data
    int64_t restart_at;    //  ms; when pid == 0
    int restart_delay;     //  ms, the back-off
} s_slot_t;

typedef enum {
    S_REF_PIPE,
    S_REF_INPUT,
    S_REF_OUTPUT,
    S_REF_CLIENT,
    S_REF_PIDFD,
    S_REF_STDIN,
    S_REF_STDOUT
} s_ref_kind_t;

typedef struct {
    s_ref_kind_t kind;
    s_slot_t *slot;
} s_ref_t;

//  A success reply kept by its request id: the frames after the routing
//  envelope. Entries are linked oldest to newest (eviction, expiry).
typedef struct _s_cached_t {
    char key[S_KEY_SIZE];
    zmsg_t *reply;
    size_t bytes;
    int64_t stored;  //  ms
    struct _s_cached_t *older, *newer;
} s_cached_t;

//  The configuration, deep-copied: the actor and the owner share it.
typedef struct {
    zk_worker_config_t config;
    char *input, *output;
    char **argv;
    char **subscribe;
    char name[ZK_CLIENT_CONSUMER_MAX + 1];  //  the queue consumer name (config.name)
} s_setup_t;

typedef struct {
    zsock_t *pipe;
    const zk_worker_config_t *config;
    const char *command;  //  argv[0], for logs
    size_t max_output;
    int input_type;  //  as the user wrote it (rep, router ...)
    int output_type;
    zsock_t *input, *output;  //  NULL for a queue
    zk_client_t *in_queue, *out_queue;
    struct _s_settle_t *settles;  //  queue messages on their way to an ack or nack
    const char *forward_to;  //  a queue output on the input's server: FWD there (no out_queue)
    zk_spec_t *input_spec, *output_spec;
    zlist_t *input_outbox, *output_outbox;  //  zmsg_t * the socket could not take yet
    s_slot_t *slots;
    int slot_count;
    zmq_pollitem_t *items;
    s_ref_t *refs;
    bool paused;
    bool terminated;
    int64_t next_stats;
    zk_worker_stats_t stats;
    uint64_t dropped;  //  replies a socket refused at send (peer gone, stop)
    //  ZKW/1 (lb): times in ms
    int heartbeat_ms;
    int64_t lb_heard;           //  the last message from the proxy
    int64_t lb_next_heartbeat;  //  our next HEARTBEAT
    int64_t lb_ready_at;        //  our last READY
    bool lb_ready_due;          //  READY owed, sent once a slot is free
    //  The reply cache (reply_cache > 0)
    zhashx_t *cache_map;    //  hex request id → s_cached_t *
    zhashx_t *running_map;  //  hex request id → s_pending_t * (not owned)
    s_cached_t *cache_oldest, *cache_newest;
    size_t cache_count, cache_bytes;
    size_t cache_max_count, cache_max_bytes;
    int64_t cache_ttl_ms;
} s_worker_t;

//  A request id whose run has not answered yet: where the duplicates that
//  arrived meanwhile want the reply.
struct _s_pending_t {
    s_worker_t *worker;
    char key[S_KEY_SIZE];
    zmsg_t *joiners[S_JOIN_MAX - 1];  //  their routing envelopes
    int joiner_count;
};

//  A queue message on its way to its ACK: after the output PUT (if any)
//  is confirmed, the ack with the result.
//  Linked into the worker's list, so that the ones whose replies never
//  come (the worker stops; zk_client_destroy drops callbacks) are freed.
typedef struct _s_settle_t s_settle_t;
struct _s_settle_t {
    s_worker_t *worker;
    zk_delivery_t *delivery;  //  its queue and id (NULL: an output put alone)
    zmsg_t *result;           //  ACK's result frames, or NULL
    bool had_result;          //  the ACK carried one (a 413 is then retried without)
    s_settle_t *prev, *next;
};

struct _zk_worker_t {
    zactor_t *actor;
    s_setup_t *setup;
};

static const int s_input_types[] = {ZMQ_PULL,   ZMQ_SUB,       ZMQ_REP, ZMQ_DEALER,
                                    ZMQ_ROUTER, ZK_SPEC_QUEUE, -1};
static const int s_output_types[] = {ZMQ_PUSH, ZMQ_PUB, ZMQ_DEALER, ZK_SPEC_QUEUE, -1};

// ---------------------------------------------------------------- small helpers

static int
s_buffer_reserve (s_buffer_t *buffer, size_t extra)
{
    if (buffer->capacity - buffer->size >= extra)
        return 0;
    size_t capacity = buffer->capacity ? buffer->capacity : 4096;
    while (capacity - buffer->size < extra) {
        if (capacity > SIZE_MAX / 2)
            return ZK_ENOMEM;
        capacity *= 2;
    }
    char *data = realloc (buffer->data, capacity);
    if (!data)
        return ZK_ENOMEM;
    buffer->data = data;
    buffer->capacity = capacity;
    return 0;
}

static int
s_buffer_append (s_buffer_t *buffer, const void *data, size_t size)
{
    if (size == 0)
        return 0;
    if (s_buffer_reserve (buffer, size))
        return ZK_ENOMEM;
    memcpy (buffer->data + buffer->size, data, size);
    buffer->size += size;
    return 0;
}

//  Drop the first size bytes.
static void
s_buffer_consume (s_buffer_t *buffer, size_t size)
{
    assert (size <= buffer->size);
    memmove (buffer->data, buffer->data + size, buffer->size - size);
    buffer->size -= size;
}

static void
s_buffer_free (s_buffer_t *buffer)
{
    free (buffer->data);
    memset (buffer, 0, sizeof *buffer);
}

//  "exit status 3", "killed by signal 9"; "" for a clean exit.
static void
s_status_reason (int status, char *buf, size_t size)
{
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
        snprintf (buf, size, "%s", "");
    else if (WIFEXITED (status))
        snprintf (buf, size, "exit status %d", WEXITSTATUS (status));
    else if (WIFSIGNALED (status))
        snprintf (buf, size, "killed by signal %d", WTERMSIG (status));
    else
        snprintf (buf, size, "wait status %d", status);
}

//  A write into a closed pipe leaves SIGPIPE pending on this thread (it is
//  blocked here); take it off so it cannot fire if the mask ever changes.
static void
s_clear_sigpipe (void)
{
    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGPIPE);
    struct timespec zero = {0, 0};
    for (int tries = 0; tries < 4 && sigtimedwait (&set, NULL, &zero) > 0; tries++)
        ;
}

//  After a failed write to a child's stdin: 0 to try again (EINTR), 1 when
//  the pipe is full, -1 when it is broken (the child closed it or died).
static int
s_write_failed (void)
{
    if (errno == EINTR)
        return 0;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 1;
    if (errno == EPIPE)
        s_clear_sigpipe ();
    return -1;
}

static void
s_close_fd (int *fd)
{
    if (*fd >= 0)
        close (*fd);
    *fd = -1;
}

//  A pipe with both ends close-on-exec and above stdio: when this process
//  runs with fd 0 or 1 closed, pipe2 could hand those out, and dup2 onto
//  the same number would not clear close-on-exec in the child.
static int
s_pipe (int fds[2])
{
    if (pipe2 (fds, O_CLOEXEC) != 0)
        return ZK_EIO;
    for (int end = 0; end < 2; end++)
        if (fds[end] < 3) {
            int moved = fcntl (fds[end], F_DUPFD_CLOEXEC, 3);
            close (fds[end]);
            fds[end] = moved;
        }
    if (fds[0] < 0 || fds[1] < 0) {
        s_close_fd (&fds[0]);
        s_close_fd (&fds[1]);
        return ZK_EIO;
    }
    return 0;
}

static void
s_set_nonblocking (int fd)
{
    int flags = fcntl (fd, F_GETFL);
    if (flags >= 0)
        fcntl (fd, F_SETFL, flags | O_NONBLOCK);
}

// ---------------------------------------------------------------- processes

/*  Start argv with its stdin and stdout on fresh pipes (our ends
    non-blocking), stderr inherited, in a new process group, with an empty
    signal mask and default SIGPIPE/SIGINT/SIGTERM whatever this process
    does with them. posix_spawnp returns exec failures (ENOENT ...) itself.
    0, or ZK_ECOMMAND / ZK_EIO with the reason written.                    */
static int
s_process_start (s_process_t *proc, char *const *argv, char *reason, size_t reason_size)
{
    memset (proc, 0, sizeof *proc);
    proc->pidfd = proc->in_fd = proc->out_fd = -1;
    int in_pipe[2], out_pipe[2];
    if (s_pipe (in_pipe)) {
        snprintf (reason, reason_size, "cannot make a pipe: %s", strerror (errno));
        return ZK_EIO;
    }
    if (s_pipe (out_pipe)) {
        snprintf (reason, reason_size, "cannot make a pipe: %s", strerror (errno));
        close (in_pipe[0]);
        close (in_pipe[1]);
        return ZK_EIO;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_adddup2 (&actions, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2 (&actions, out_pipe[1], 1);
    posix_spawnattr_t attr;
    posix_spawnattr_init (&attr);
    sigset_t none, defaults;
    sigemptyset (&none);
    sigemptyset (&defaults);
    sigaddset (&defaults, SIGPIPE);
    sigaddset (&defaults, SIGINT);
    sigaddset (&defaults, SIGTERM);
    posix_spawnattr_setsigmask (&attr, &none);
    posix_spawnattr_setsigdefault (&attr, &defaults);
    posix_spawnattr_setpgroup (&attr, 0);
    posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
                                         | POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int error = posix_spawnp (&pid, argv[0], &actions, &attr, argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    posix_spawnattr_destroy (&attr);
    close (in_pipe[0]);
    close (out_pipe[1]);
    if (error) {
        snprintf (reason, reason_size, "cannot run %s: %s", argv[0], strerror (error));
        close (in_pipe[1]);
        close (out_pipe[0]);
        return ZK_ECOMMAND;
    }
    proc->pid = pid;
    proc->in_fd = in_pipe[1];
    proc->out_fd = out_pipe[0];
    s_set_nonblocking (proc->in_fd);
    s_set_nonblocking (proc->out_fd);
    proc->pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
    proc->started = zk_now_ms ();
    return 0;
}

//  Signal the process group now (grace_ms < 0: sig only), or SIGTERM now
//  and SIGKILL grace_ms later (the loop's timers send it).
static void
s_process_kill (s_process_t *proc, int grace_ms)
{
    if (proc->pid <= 0)
        return;
    if (grace_ms == 0) {
        kill (-proc->pid, SIGKILL);
        proc->kill_at = 0;
        return;
    }
    kill (-proc->pid, SIGTERM);
    if (!proc->kill_at)
        proc->kill_at = zk_now_ms () + grace_ms;
}

//  True once the leader has exited; it is not reaped yet, so its pid (and
//  with it the process group id) cannot be reused while we look.
static bool
s_process_exited (s_process_t *proc)
{
    if (proc->pid <= 0)
        return false;
    siginfo_t info;
    memset (&info, 0, sizeof info);
    if (waitid (P_PID, (id_t) proc->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD;  //  someone else reaped it: gone all the same
    return info.si_pid == proc->pid;
}

//  The leader has exited: kill what it left in its group, reap it, close
//  the pipes. The wait status is in proc->status.
static void
s_process_reap (s_process_t *proc)
{
    kill (-proc->pid, SIGKILL);  //  before the reap: the group id is still ours
    int status = 0;
    while (waitpid (proc->pid, &status, 0) < 0 && errno == EINTR)
        ;
    proc->status = status;
    proc->pid = 0;
    proc->kill_at = 0;
    s_close_fd (&proc->pidfd);
    s_close_fd (&proc->in_fd);
    s_close_fd (&proc->out_fd);
}

/*  Read what the pipe holds into buffer, keeping at most limit + 1 bytes
    in all (one more than allowed tells an overflow), rounds reads at most.
    Returns 0 when the pipe is empty for now, 1 at end of file, 2 when the
    rounds ran out (more may wait), ZK_ETOOBIG once buffer holds more than
    limit, ZK_EIO on a read error.                                         */
static int
s_read_pipe (int fd, s_buffer_t *buffer, size_t limit, int rounds)
{
    for (int round = 0; round < rounds; round++) {
        size_t room = limit + 1 - buffer->size;
        if (room > S_READ_CHUNK)
            room = S_READ_CHUNK;
        if (s_buffer_reserve (buffer, room))
            return ZK_EIO;
        ssize_t got = read (fd, buffer->data + buffer->size, room);
        if (got > 0) {
            buffer->size += (size_t) got;
            if (buffer->size > limit)
                return ZK_ETOOBIG;
        }
        else if (got == 0)
            return 1;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        else if (errno != EINTR)
            return ZK_EIO;
    }
    return 2;
}

// ---------------------------------------------------------------- requests and answers

//  The request id is no longer running: duplicates still waiting (the
//  worker is going away) get nothing.
static void
s_pending_destroy (s_pending_t **pending_p)
{
    s_pending_t *pending = *pending_p;
    if (!pending)
        return;
    zhashx_delete (pending->worker->running_map, pending->key);
    for (int index = 0; index < pending->joiner_count; index++)
        zmsg_destroy (&pending->joiners[index]);
    free (pending);
    *pending_p = NULL;
}

static void
s_request_clear (s_request_t *request)
{
    zmsg_destroy (&request->routing);
    zframe_destroy (&request->envelope_frame);
    zk_envelope_destroy (&request->envelope);
    zk_delivery_destroy (&request->delivery);
    s_pending_destroy (&request->pending);
    request->deadline = 0;
}

//  True for the failures that leave the request undone, so that the
//  requester may send it again: the error reply says zk-retry=1.
static bool
s_is_retryable (const char *reason)
{
    return streq (reason, S_STOPPING) || streq (reason, S_BUSY) || streq (reason, S_JOIN_FULL);
}

static int
s_mark_error (zk_envelope_t *envelope, const char *reason)
{
    int rc = zk_envelope_set_header (envelope, "zk-status", "error");
    if (rc == 0)
        rc = zk_envelope_set_header (envelope, "zk-error", reason);
    //  A request that carried zk-retry itself must not make a final error look retryable.
    if (rc == 0 && (s_is_retryable (reason) || zk_envelope_header (envelope, "zk-retry")))
        rc = zk_envelope_set_header (envelope, "zk-retry", s_is_retryable (reason) ? "1" : "0");
    return rc;
}

//  The envelope frame of an error reply: the request's own envelope (if
//  any) with zk-status=error, zk-error=REASON (and zk-retry=1 when REASON
//  is retryable); when it has no room for them, a fresh one with the same
//  id and trace. NULL: out of memory.
static zframe_t *
s_error_envelope (const zk_envelope_t *original, const char *reason)
{
    zframe_t *frame = NULL;
    zk_envelope_t *envelope = original ? zk_envelope_dup (original) : zk_envelope_new ();
    if (envelope && s_mark_error (envelope, reason) == 0)
        zk_envelope_encode (envelope, &frame);
    zk_envelope_destroy (&envelope);
    if (!frame && original) {
        envelope = zk_envelope_new ();
        if (envelope) {
            zk_envelope_set_id (envelope, zk_envelope_id (original));
            zk_envelope_set_trace (envelope, zk_envelope_trace (original));
            zk_envelope_set_attempt (envelope, zk_envelope_attempt (original));
            if (s_mark_error (envelope, reason) == 0)
                zk_envelope_encode (envelope, &frame);
            zk_envelope_destroy (&envelope);
        }
    }
    return frame;
}

//  Send msg without blocking. 0: sent or dropped for good (counted);
//  ZK_ETIMEDOUT: the socket cannot take it now, msg kept.
static int
s_send_now (s_worker_t *self, zsock_t *sock, zmsg_t **msg_p)
{
    zmsg_t *msg = *msg_p;
    size_t count = zmsg_size (msg);
    size_t index = 0;
    for (zframe_t *frame = zmsg_first (msg); frame; frame = zmsg_next (msg), index++) {
        int flags = ZFRAME_REUSE | ZFRAME_DONTWAIT | (index + 1 < count ? ZFRAME_MORE : 0);
        if (zframe_send (&frame, sock, flags) == 0)
            continue;
        //  A router (rep and router inputs) is mandatory: EAGAIN there means
        //  this one peer's pipe is full, and waiting would hold every other
        //  peer's reply behind it, so that reply is dropped and counted.
        if (index == 0 && errno == EAGAIN && zsock_type (sock) != ZMQ_ROUTER)
            return ZK_ETIMEDOUT;
        //  Once the first frame is in, libzmq takes the rest: only a vanished
        //  peer (or a closing socket) lands here.
        self->dropped++;
        zk_warn_limited ("cannot send a reply: %s", zmq_strerror (errno));
        break;
    }
    zmsg_destroy (msg_p);
    return 0;
}

static void
s_deliver (s_worker_t *self, zsock_t *sock, zlist_t *outbox, zmsg_t **msg_p)
{
    if (zlist_size (outbox) == 0 && s_send_now (self, sock, msg_p) == 0)
        return;
    zlist_append (outbox, *msg_p);
    *msg_p = NULL;
}

//  Send what the outbox holds, oldest first, until the socket is full.
static void
s_flush (s_worker_t *self, zsock_t *sock, zlist_t *outbox)
{
    for (zmsg_t *msg = zlist_first (outbox); msg; msg = zlist_first (outbox)) {
        if (s_send_now (self, sock, &msg) != 0)
            return;
        zlist_pop (outbox);
    }
}

// ---------------------------------------------------------------- queues

/*  The consumer name a queue input sends with GET: name when given (the
    config was validated), else HOSTNAME:PID, the host name cut to fit
    and any byte outside '!'..'~' written '_'.                           */
static void
s_consumer_name (const char *name, char *out, size_t size)
{
    if (name) {
        snprintf (out, size, "%s", name);
        return;
    }
    char host[256] = "";
    if (gethostname (host, sizeof host - 1) != 0 || !host[0])
        snprintf (host, sizeof host, "worker");
    char pid[24];
    size_t pid_size = (size_t) snprintf (pid, sizeof pid, ":%d", (int) getpid ());
    size_t length = strnlen (host, sizeof host - 1);
    if (length > size - 1 - pid_size)
        length = size - 1 - pid_size;
    for (size_t index = 0; index < length; index++)
        out[index] = host[index] > ' ' && host[index] <= '~' ? host[index] : '_';
    memcpy (out + length, pid, pid_size + 1);
}

//  True when the two queue specs name the same server: the same
//  endpoints, in any order.
static bool
s_same_server (const zk_spec_t *one, const zk_spec_t *other)
{
    size_t count = zk_spec_size (one);
    if (count != zk_spec_size (other))
        return false;
    for (size_t index = 0; index < count; index++) {
        bool found = false;
        for (size_t match = 0; !found && match < count; match++)
            found = streq (zk_spec_endpoint (one, index), zk_spec_endpoint (other, match));
        if (!found)
            return false;
    }
    return true;
}

/*  The queue options: --name only for a queue input, and a name that can
    go on the wire; a queue output on the input's own server must be
    another queue (FWD into itself is refused, and would run forever).  */
static int
s_check_queue_config (const zk_worker_config_t *config, int input_type, char *reason, size_t size)
{
    if (config->name) {
        if (input_type != ZK_SPEC_QUEUE)
            return zk_engine_reason (reason, size,
                                     "--name: only a queue input has a consumer name");
        size_t length = strlen (config->name);
        bool valid = length >= 1 && length <= ZK_CLIENT_CONSUMER_MAX;
        for (size_t index = 0; valid && index < length; index++)
            valid = config->name[index] > ' ' && config->name[index] <= '~';
        if (!valid)
            return zk_engine_reason (reason, size,
                                     "--name: '%.80s' is not a consumer name (1 to %d printable "
                                     "ASCII bytes, no spaces)",
                                     config->name, ZK_CLIENT_CONSUMER_MAX);
    }
    if (input_type != ZK_SPEC_QUEUE || !config->output)
        return 0;
    zk_spec_t *input = zk_spec_new (config->input);
    zk_spec_t *output = zk_spec_new (config->output);
    bool itself = input && output && zk_spec_type (output) == ZK_SPEC_QUEUE
                  && s_same_server (input, output)
                  && streq (zk_spec_queue_name (input), zk_spec_queue_name (output));
    zk_spec_destroy (&input);
    zk_spec_destroy (&output);
    if (itself)
        return zk_engine_reason (reason, size,
                                 "--out names the input queue itself: every message would run "
                                 "again forever");
    return 0;
}

static s_settle_t *
s_settle_new (s_worker_t *self)
{
    s_settle_t *settle = calloc (1, sizeof *settle);
    if (settle) {
        settle->worker = self;
        settle->next = self->settles;
        if (settle->next)
            settle->next->prev = settle;
        self->settles = settle;
    }
    return settle;
}

static void
s_settle_destroy (s_settle_t **settle_p)
{
    s_settle_t *settle = *settle_p;
    if (settle) {
        if (settle->prev)
            settle->prev->next = settle->next;
        else
            settle->worker->settles = settle->next;
        if (settle->next)
            settle->next->prev = settle->prev;
        zk_delivery_destroy (&settle->delivery);
        zmsg_destroy (&settle->result);
        free (settle);
        *settle_p = NULL;
    }
}

static void
s_on_nacked (zk_client_t *client, int rc, zmsg_t *reply, void *arg)
{
    (void) client;
    (void) reply;
    s_settle_t *settle = arg;
    if (rc == 0)
        settle->worker->stats.nacked++;
    else if (rc != ZK_ENOENT)
        zk_warn_limited ("queue: a nack failed (%s): the lease ends it instead", zk_strerror (rc));
    s_settle_destroy (&settle);
}

static void
s_nack (s_worker_t *self, s_settle_t **settle_p, const char *reason)
{
    s_settle_t *settle = *settle_p;
    *settle_p = NULL;
    if (zk_client_nack_async (self->in_queue, settle->delivery, false, reason, s_on_nacked, settle))
        s_settle_destroy (&settle);
}

/*  The ACK's reply. A result the server finds too big (413) is not worth
    a redelivery: ack again without it. A lease that ended first (404)
    means the queue delivers the message again: at-least-once.          */
static void
s_on_acked (zk_client_t *client, int rc, zmsg_t *reply, void *arg)
{
    (void) reply;
    s_settle_t *settle = arg;
    s_worker_t *self = settle->worker;
    if (rc == 0)
        self->stats.acked++;
    else if (rc == ZK_ETOOBIG && settle->had_result) {
        zk_warn_limited ("queue: the result of %s is too big for the server: acked without it",
                         self->command);
        settle->had_result = false;
        if (zk_client_ack_async (client, settle->delivery, NULL, s_on_acked, settle) == 0)
            return;
    }
    else if (rc == ZK_ENOENT)
        zk_warn_limited ("queue: the lease ended before the ack: the message comes again");
    else
        zk_warn_limited ("queue: an ack failed (%s): the message comes again", zk_strerror (rc));
    s_settle_destroy (&settle);
}

static void
s_ack (s_worker_t *self, s_settle_t *settle)
{
    zmsg_t *result = settle->result;
    settle->result = NULL;
    settle->had_result = result != NULL;
    if (zk_client_ack_async (self->in_queue, settle->delivery, &result, s_on_acked, settle))
        s_settle_destroy (&settle);
}

//  The output PUT's confirm: now the input may be acked. No confirm: the
//  input goes back to its queue, to run again.
static void
s_on_output (zk_client_t *client, int rc, zmsg_t *reply, void *arg)
{
    (void) client;
    (void) reply;
    s_settle_t *settle = arg;
    s_worker_t *self = settle->worker;
    if (rc)
        self->stats.output_failed++;
    if (!settle->delivery) {
        if (rc)
            zk_warn_limited ("queue output: a put failed (%s): %s", zk_strerror (rc),
                             zk_client_last_error (client));
        s_settle_destroy (&settle);
    }
    else if (rc) {
        char reason[S_REASON_SIZE];
        snprintf (reason, sizeof reason, "output not confirmed: %s", zk_client_last_error (client));
        zk_warn_limited ("queue: %s: the input goes back", reason);
        s_nack (self, &settle, reason);
    }
    else
        s_ack (self, settle);
}

/*  Send the output: [envelope][data] on the output socket (no envelope on
    pub, whose first frame is the topic), or PUT it into the output queue.
    settle (may be NULL) is acked once the output is confirmed (queue) or
    handed to the socket; it is taken.                                   */
static void
s_send_output (s_worker_t *self, s_request_t *request, const void *data, size_t size,
               s_settle_t *settle)
{
    zmsg_t *msg = zmsg_new ();
    if (request->envelope_frame && self->output_type != ZMQ_PUB)
        zmsg_append (msg, &request->envelope_frame);
    zmsg_addmem (msg, data, size);
    self->stats.sent++;
    if (self->out_queue) {
        if (!settle)
            settle = s_settle_new (self);
        if (!settle)
            zmsg_destroy (&msg);
        else if (zk_client_put_async (self->out_queue, NULL, &msg, NULL, s_on_output, settle))
            s_on_output (self->out_queue, ZK_ENOMEM, NULL, settle);
        return;
    }
    s_deliver (self, self->output, self->output_outbox, &msg);
    if (settle)
        s_ack (self, settle);
}

//  FWD's reply: the input is done and the output is in the next queue,
//  or the input goes back to its queue, to run again.
static void
s_on_forwarded (zk_client_t *client, int rc, zmsg_t *reply, void *arg)
{
    (void) reply;
    s_settle_t *settle = arg;
    s_worker_t *self = settle->worker;
    if (rc == 0)
        self->stats.acked++;
    else if (rc == ZK_ENOENT)
        zk_warn_limited ("queue: the lease ended before the hand-over: the message comes again");
    else {
        self->stats.output_failed++;
        char reason[S_REASON_SIZE];
        snprintf (reason, sizeof reason, "output not confirmed: %s", zk_client_last_error (client));
        zk_warn_limited ("queue: %s: the input goes back", reason);
        s_nack (self, &settle, reason);
        return;
    }
    s_settle_destroy (&settle);
}

/*  The output of a queue message when the output queue is on the input's
    server: [envelope][data] handed over with FWD, which finishes the
    input and puts the output under the same MSGID (the job id) in one
    durable step. settle is taken.                                       */
static void
s_forward (s_worker_t *self, s_request_t *request, const void *data, size_t size,
           s_settle_t *settle)
{
    zmsg_t *msg = zmsg_new ();
    if (request->envelope_frame)
        zmsg_append (msg, &request->envelope_frame);
    zmsg_addmem (msg, data, size);
    zmsg_destroy (&settle->result);  //  FWD carries no result: the output is the result
    self->stats.sent++;
    if (zk_client_fwd_async (self->in_queue, settle->delivery, self->forward_to, &msg,
                             s_on_forwarded, settle))
        s_on_forwarded (self->in_queue, ZK_ENOMEM, NULL, settle);
}

/*  A queue message is done: failure NULL, ack it with the stdout as its
    result (after the output, if any, is confirmed); else nack it so the
    queue delivers it again (and dead-letters it after --max-deliver).   */
static void
s_settle (s_worker_t *self, s_request_t *request, const char *failure, const void *data,
          size_t size)
{
    s_settle_t *settle = s_settle_new (self);
    if (!settle) {
        zk_warn_limited ("queue: out of memory: the lease ends the message instead");
        return;
    }
    settle->delivery = request->delivery;
    request->delivery = NULL;
    if (failure) {
        s_nack (self, &settle, failure);
        return;
    }
    if (size > 0) {
        settle->result = zmsg_new ();
        zmsg_addmem (settle->result, data, size);
    }
    if (self->forward_to)
        s_forward (self, request, data, size, settle);
    else if (self->output || self->out_queue)
        s_send_output (self, request, data, size, settle);
    else
        s_ack (self, settle);
}

// ---------------------------------------------------------------- replies and the reply cache

//  Send [routing][content] on the input; both are taken.
static void
s_reply (s_worker_t *self, zmsg_t **routing_p, zmsg_t **content_p)
{
    zmsg_t *reply = *routing_p;
    *routing_p = NULL;
    for (zframe_t *frame = zmsg_pop (*content_p); frame; frame = zmsg_pop (*content_p))
        zmsg_append (reply, &frame);
    zmsg_destroy (content_p);
    self->stats.replied++;
    s_deliver (self, self->input, self->input_outbox, &reply);
}

static void
s_key (const uint8_t *id, char key[S_KEY_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    for (int index = 0; index < ZK_ID_SIZE; index++) {
        key[2 * index] = hex[id[index] >> 4];
        key[2 * index + 1] = hex[id[index] & 15];
    }
    key[2 * ZK_ID_SIZE] = 0;
}

static void
s_cache_remove (s_worker_t *self, s_cached_t *entry)
{
    if (entry->older)
        entry->older->newer = entry->newer;
    else
        self->cache_oldest = entry->newer;
    if (entry->newer)
        entry->newer->older = entry->older;
    else
        self->cache_newest = entry->older;
    zhashx_delete (self->cache_map, entry->key);
    self->cache_count--;
    self->cache_bytes -= entry->bytes;
    zmsg_destroy (&entry->reply);
    free (entry);
}

//  Entries are linked in the order they were stored, so the expired
//  ones are the oldest.
static void
s_cache_expire (s_worker_t *self, int64_t now)
{
    while (self->cache_oldest && now - self->cache_oldest->stored >= self->cache_ttl_ms)
        s_cache_remove (self, self->cache_oldest);
}

/*  Keep a success reply (content: the frames after the routing envelope,
    copied) under key, evicting the oldest entries until the bounds on
    entries and bytes hold. A reply bigger than the byte bound alone is
    not kept.                                                            */
static void
s_cache_store (s_worker_t *self, const char *key, zmsg_t *content)
{
    size_t bytes = zmsg_content_size (content);
    if (bytes > self->cache_max_bytes)
        return;
    s_cached_t *entry = zhashx_lookup (self->cache_map, key);
    if (entry)
        s_cache_remove (self, entry);
    while (self->cache_oldest
           && (self->cache_count >= self->cache_max_count
               || self->cache_bytes + bytes > self->cache_max_bytes))
        s_cache_remove (self, self->cache_oldest);
    entry = calloc (1, sizeof *entry);
    if (!entry)
        return;
    memcpy (entry->key, key, S_KEY_SIZE);
    entry->reply = zmsg_dup (content);
    entry->bytes = bytes;
    entry->stored = zk_now_ms ();
    if (!entry->reply || zhashx_insert (self->cache_map, entry->key, entry) != 0) {
        zmsg_destroy (&entry->reply);
        free (entry);
        return;
    }
    entry->older = self->cache_newest;
    if (self->cache_newest)
        self->cache_newest->newer = entry;
    else
        self->cache_oldest = entry;
    self->cache_newest = entry;
    self->cache_count++;
    self->cache_bytes += bytes;
}

/*  The reply to a request that has a routing envelope: [routing][request
    envelope][data] on success, [routing][error envelope][data] on
    failure. The duplicates that joined its run get the same frames, and
    a success is kept in the reply cache.                                */
static void
s_reply_request (s_worker_t *self, s_request_t *request, const char *failure, const void *data,
                 size_t size)
{
    zmsg_t *content = zmsg_new ();
    zframe_t *envelope = NULL;
    if (failure)
        envelope = s_error_envelope (request->envelope, failure);
    else if (request->envelope_frame) {
        envelope = request->envelope_frame;
        request->envelope_frame = NULL;
    }
    if (envelope)
        zmsg_append (content, &envelope);
    zmsg_addmem (content, data, size);
    s_pending_t *pending = request->pending;
    if (pending) {
        if (!failure)
            s_cache_store (self, pending->key, content);
        for (int index = 0; index < pending->joiner_count; index++) {
            zmsg_t *copy = zmsg_dup (content);
            s_reply (self, &pending->joiners[index], &copy);
        }
        pending->joiner_count = 0;
    }
    s_reply (self, &request->routing, &content);
}

/*  Answer a request. failure NULL: success, data is COMMAND's stdout:
    the reply [routing][request envelope][data], or on an output socket
    [envelope][data] ([data] alone on pub, where the first frame is the
    topic). failure set: a requester gets [routing][error envelope][data];
    one-way, the failure is only logged (rate-limited). A queue message is
    acked or nacked (s_settle). The caller counts succeeded/failed; the
    request is cleared.                                                    */
static void
s_answer (s_worker_t *self, s_request_t *request, const char *failure, const void *data,
          size_t size)
{
    if (request->delivery)
        s_settle (self, request, failure, data, size);
    else if (request->routing)
        s_reply_request (self, request, failure, data, size);
    else if (failure)
        zk_warn_limited ("%s failed: %s", self->command, failure);
    else if (self->output || self->out_queue)
        s_send_output (self, request, data, size, NULL);
    s_request_clear (request);
}

static void
s_fail (s_worker_t *self, s_request_t *request, const char *reason, const void *data, size_t size)
{
    self->stats.failed++;
    s_answer (self, request, reason, data, size);
}

//  A message we will not run: counted, logged, and a requester is told why.
static void
s_refuse (s_worker_t *self, s_request_t *request, const char *reason)
{
    self->stats.refused++;
    zk_warn_limited ("refused a message: %s", reason);
    if (request->routing || request->delivery)
        s_answer (self, request, reason, "", 0);
    s_request_clear (request);
}

// ---------------------------------------------------------------- per-message mode

static void
s_job_clear (s_slot_t *slot)
{
    s_request_clear (&slot->request);
    zmsg_destroy (&slot->input);
    slot->input_offset = 0;
    slot->output.size = 0;
    if (slot->output.capacity > (size_t) 1 << 20)
        s_buffer_free (&slot->output);
    slot->failure[0] = 0;
    slot->busy = false;
    slot->dying = false;
}

//  Give up on a running command: remember why, stop feeding and reading
//  it (it gets EPIPE / SIGPIPE), SIGTERM its group (SIGKILL follows).
static void
s_job_kill (s_slot_t *slot, const char *reason)
{
    if (!slot->failure[0])
        snprintf (slot->failure, sizeof slot->failure, "%s", reason);
    zmsg_destroy (&slot->input);
    s_close_fd (&slot->proc.in_fd);
    s_close_fd (&slot->proc.out_fd);
    s_process_kill (&slot->proc, S_KILL_GRACE_MS);
}

//  Write as much of the body as the pipe takes. A command that does not
//  read its stdin (echo hi) closes the pipe: the rest is dropped, no error.
static void
s_job_write (s_slot_t *slot)
{
    while (slot->input && zmsg_size (slot->input) > 0) {
        struct iovec iov[S_IOV_MAX];
        int count = 0;
        for (zframe_t *frame = zmsg_first (slot->input); frame && count < S_IOV_MAX;
             frame = zmsg_next (slot->input)) {
            size_t skip = count == 0 ? slot->input_offset : 0;
            iov[count].iov_base = zframe_data (frame) + skip;
            iov[count].iov_len = zframe_size (frame) - skip;
            count++;
        }
        ssize_t written = writev (slot->proc.in_fd, iov, count);
        if (written < 0) {
            int failure = s_write_failed ();
            if (failure == 0)
                continue;
            if (failure > 0)
                return;
            zmsg_destroy (&slot->input);
            break;
        }
        size_t done = (size_t) written;
        while (zmsg_size (slot->input) > 0) {
            zframe_t *frame = zmsg_first (slot->input);
            size_t left = zframe_size (frame) - slot->input_offset;
            if (done < left) {
                slot->input_offset += done;
                break;
            }
            done -= left;
            slot->input_offset = 0;
            zmsg_remove (slot->input, frame);
            zframe_destroy (&frame);
        }
    }
    //  All written (or abandoned): end of file for the command.
    zmsg_destroy (&slot->input);
    s_close_fd (&slot->proc.in_fd);
}

//  Read the command's stdout (rounds reads at most); more than max_output
//  fails the command. Returns as s_read_pipe.
static int
s_job_read (s_worker_t *self, s_slot_t *slot, int rounds)
{
    int rc = s_read_pipe (slot->proc.out_fd, &slot->output, self->max_output, rounds);
    if (rc == ZK_ETOOBIG) {
        slot->output.size = self->max_output;
        char reason[S_REASON_SIZE];
        snprintf (reason, sizeof reason, "output larger than %zu bytes", self->max_output);
        s_job_kill (slot, reason);
    }
    else if (rc == 1 || rc == ZK_EIO)
        s_close_fd (&slot->proc.out_fd);
    return rc;
}

static void
s_job_start (s_worker_t *self, s_slot_t *slot, s_request_t *request, zmsg_t **body_p)
{
    char reason[S_REASON_SIZE];
    if (s_process_start (&slot->proc, (char *const *) self->config->argv, reason, sizeof reason)) {
        zk_warn_limited ("%s", reason);
        zmsg_destroy (body_p);
        s_fail (self, request, reason, "", 0);
        return;
    }
    slot->busy = true;
    slot->request = *request;
    memset (request, 0, sizeof *request);
    if (self->config->timeout_ms > 0)
        slot->request.deadline = zk_now_ms () + self->config->timeout_ms;
    slot->input = *body_p;
    *body_p = NULL;
    slot->input_offset = 0;
    slot->output.size = 0;
    s_job_write (slot);
}

//  The command has exited: what it wrote is all in the pipe. Kill what it
//  left running in its group (its pid is not reaped yet, so the group id
//  is still ours), drain the pipe (bounded by max_output), reap, answer.
static void
s_job_exited (s_worker_t *self, s_slot_t *slot)
{
    kill (-slot->proc.pid, SIGKILL);
    if (slot->proc.out_fd >= 0 && !slot->failure[0])
        s_job_read (self, slot, INT_MAX);
    s_process_reap (&slot->proc);
    char reason[S_REASON_SIZE];
    if (slot->failure[0])
        snprintf (reason, sizeof reason, "%s", slot->failure);
    else
        s_status_reason (slot->proc.status, reason, sizeof reason);
    if (reason[0])
        s_fail (self, &slot->request, reason, slot->output.data, slot->output.size);
    else {
        self->stats.succeeded++;
        s_answer (self, &slot->request, NULL, slot->output.data, slot->output.size);
    }
    s_job_clear (slot);
}

// ---------------------------------------------------------------- lines mode

static s_request_t *
s_lines_head (s_slot_t *slot)
{
    return slot->count ? &slot->queue[slot->head] : NULL;
}

static void
s_lines_pop (s_slot_t *slot)
{
    slot->head = (slot->head + 1) % S_LINES_DEPTH;
    slot->count--;
}

//  Fail every request the coprocess holds: the first with first_reason,
//  the others with rest_reason (NULL: the same).
static void
s_lines_fail_all (s_worker_t *self, s_slot_t *slot, const char *first_reason,
                  const char *rest_reason)
{
    bool first = true;
    for (s_request_t *request = s_lines_head (slot); request; request = s_lines_head (slot)) {
        s_fail (self, request, first || !rest_reason ? first_reason : rest_reason, "", 0);
        s_lines_pop (slot);
        first = false;
    }
}

static int
s_coproc_start (s_worker_t *self, s_slot_t *slot, char *reason, size_t reason_size)
{
    slot->dying = false;
    slot->head = slot->count = 0;
    slot->lines.size = slot->lines_written = 0;
    slot->output.size = 0;
    slot->restart_at = 0;
    return s_process_start (&slot->proc, (char *const *) self->config->argv, reason, reason_size);
}

//  After a coprocess is gone (or could not start): start again, at once if
//  it had lived a while, else after a back-off doubling up to 5 s, so a
//  command that dies at once does not spin.
static void
s_coproc_schedule (s_worker_t *self, s_slot_t *slot, int64_t uptime, const char *why)
{
    if (uptime >= S_STABLE_MS)
        slot->restart_delay = 0;
    else if (slot->restart_delay < S_RESTART_MIN_MS)
        slot->restart_delay = S_RESTART_MIN_MS;
    else if (slot->restart_delay < S_RESTART_MAX_MS)
        slot->restart_delay =
            slot->restart_delay * 2 > S_RESTART_MAX_MS ? S_RESTART_MAX_MS : slot->restart_delay * 2;
    slot->restart_at = zk_now_ms () + slot->restart_delay;
    zk_warn_limited ("%s (job %d): %s; restarting in %d ms", self->command,
                     (int) (slot - self->slots), why, slot->restart_delay);
}

//  Give up on a coprocess that misbehaves (timeout, over-long line, closed
//  pipe): answer its requests now, then let it die; the exit restarts it.
static void
s_coproc_kill (s_worker_t *self, s_slot_t *slot, const char *first_reason, const char *rest_reason)
{
    s_lines_fail_all (self, slot, first_reason, rest_reason);
    slot->dying = true;
    s_close_fd (&slot->proc.in_fd);
    s_close_fd (&slot->proc.out_fd);
    s_process_kill (&slot->proc, S_KILL_GRACE_MS);
}

//  The coprocess closed a pipe: it is exiting, or broken. Take no more
//  requests; the exit answers those it holds with its real status, and if
//  it lingers it is killed after the grace (no SIGTERM now: that would
//  hide the status of a coprocess already on its way out).
static void
s_coproc_broken (s_slot_t *slot)
{
    slot->dying = true;
    s_close_fd (&slot->proc.in_fd);
    s_close_fd (&slot->proc.out_fd);
    if (!slot->proc.kill_at)
        slot->proc.kill_at = zk_now_ms () + S_KILL_GRACE_MS;
}

static void
s_lines_write (s_slot_t *slot)
{
    while (slot->lines_written < slot->lines.size) {
        ssize_t written = write (slot->proc.in_fd, slot->lines.data + slot->lines_written,
                                 slot->lines.size - slot->lines_written);
        if (written >= 0) {
            slot->lines_written += (size_t) written;
            continue;
        }
        int failure = s_write_failed ();
        if (failure == 0)
            continue;
        if (failure > 0)
            break;
        s_coproc_broken (slot);
        return;
    }
    if (slot->lines_written == slot->lines.size)
        slot->lines.size = slot->lines_written = 0;
    else if (slot->lines_written > S_READ_CHUNK) {
        s_buffer_consume (&slot->lines, slot->lines_written);
        slot->lines_written = 0;
    }
}

//  A line from the coprocess answers its oldest request.
static void
s_lines_answer (s_worker_t *self, s_slot_t *slot, const char *line, size_t size)
{
    s_request_t *request = s_lines_head (slot);
    if (!request) {
        zk_warn_limited ("%s printed a line with no request waiting; dropped", self->command);
        return;
    }
    self->stats.succeeded++;
    s_answer (self, request, NULL, line, size);
    s_lines_pop (slot);
}

//  Read chunk by chunk, answering every complete line; a line longer than
//  max_output kills the coprocess (it cannot be resynchronised).
static void
s_lines_read (s_worker_t *self, s_slot_t *slot, int rounds)
{
    for (int round = 0; round < rounds; round++) {
        size_t scanned = slot->output.size;
        int rc = s_read_pipe (slot->proc.out_fd, &slot->output, SIZE_MAX - 1, 1);
        if (rc == 0)
            return;
        if (rc != 2) {
            s_coproc_broken (slot);
            return;
        }
        size_t start = 0;
        const char *newline;
        while (
            (newline = memchr (slot->output.data + scanned, '\n', slot->output.size - scanned))) {
            size_t end = (size_t) (newline - slot->output.data);
            if (end - start > self->max_output)
                break;
            s_lines_answer (self, slot, slot->output.data + start, end - start);
            start = scanned = end + 1;
        }
        s_buffer_consume (&slot->output, start);
        if (slot->output.size > self->max_output) {
            char reason[S_REASON_SIZE];
            snprintf (reason, sizeof reason, "line longer than %zu bytes", self->max_output);
            s_coproc_kill (self, slot, reason, "coprocess restarted after an over-long line");
            return;
        }
    }
}

static void
s_coproc_exited (s_worker_t *self, s_slot_t *slot)
{
    //  Lines printed just before the exit still answer their requests.
    kill (-slot->proc.pid, SIGKILL);
    if (!slot->dying && slot->proc.out_fd >= 0)
        s_lines_read (self, slot, INT_MAX);
    int64_t uptime = zk_now_ms () - slot->proc.started;
    s_process_reap (&slot->proc);
    char reason[S_REASON_SIZE];
    s_status_reason (slot->proc.status, reason, sizeof reason);
    if (!reason[0])
        snprintf (reason, sizeof reason, "coprocess exited");
    s_lines_fail_all (self, slot, reason, NULL);
    slot->dying = false;
    slot->lines.size = slot->lines_written = 0;
    slot->output.size = 0;
    s_coproc_schedule (self, slot, uptime, reason);
}

static void
s_coproc_restart (s_worker_t *self, s_slot_t *slot)
{
    char reason[S_REASON_SIZE];
    if (s_coproc_start (self, slot, reason, sizeof reason))
        s_coproc_schedule (self, slot, 0, reason);
    else
        self->stats.restarts++;
}

//  The coprocess with room that holds the fewest requests, or NULL.
static s_slot_t *
s_lines_pick (s_worker_t *self)
{
    s_slot_t *best = NULL;
    for (int index = 0; index < self->slot_count; index++) {
        s_slot_t *slot = &self->slots[index];
        if (slot->proc.pid > 0 && !slot->dying && slot->count < S_LINES_DEPTH
            && (!best || slot->count < best->count))
            best = slot;
    }
    return best;
}

static void
s_lines_submit (s_worker_t *self, s_slot_t *slot, s_request_t *request, zmsg_t **body_p)
{
    zmsg_t *body = *body_p;
    bool ends_with_newline = false;
    int rc = 0;
    for (zframe_t *frame = zmsg_first (body); frame && rc == 0; frame = zmsg_next (body)) {
        rc = s_buffer_append (&slot->lines, zframe_data (frame), zframe_size (frame));
        if (zframe_size (frame))
            ends_with_newline = zframe_data (frame)[zframe_size (frame) - 1] == '\n';
    }
    if (rc == 0 && !ends_with_newline)
        rc = s_buffer_append (&slot->lines, "\n", 1);
    zmsg_destroy (body_p);
    if (rc) {
        s_fail (self, request, "out of memory", "", 0);
        return;
    }
    s_request_t *queued = &slot->queue[(slot->head + slot->count) % S_LINES_DEPTH];
    *queued = *request;
    memset (request, 0, sizeof *request);
    if (self->config->timeout_ms > 0)
        queued->deadline = zk_now_ms () + self->config->timeout_ms;
    slot->count++;
    s_lines_write (slot);
}

//  A message in lines mode is one line: a newline inside it (one at its
//  very end is allowed) would desynchronise requests and answers.
static bool
s_has_inner_newline (zmsg_t *body)
{
    size_t total = zmsg_content_size (body), seen = 0;
    for (zframe_t *frame = zmsg_first (body); frame; frame = zmsg_next (body)) {
        const byte *data = zframe_data (frame);
        size_t size = zframe_size (frame);
        const byte *newline = memchr (data, '\n', size);
        if (newline && seen + (size_t) (newline - data) + 1 < total)
            return true;
        seen += size;
    }
    return false;
}

// ---------------------------------------------------------------- the input

static s_slot_t *
s_free_slot (s_worker_t *self)
{
    if (self->config->lines)
        return s_lines_pick (self);
    for (int index = 0; index < self->slot_count; index++)
        if (!self->slots[index].busy)
            return &self->slots[index];
    return NULL;
}

//  True when the input may be read. With lb always (but when paused): the
//  proxy's credit bounds the requests, and its heartbeats must be heard.
static bool
s_accepting (s_worker_t *self)
{
    if (self->config->lb)
        return !self->paused;
    if (self->paused || zlist_size (self->input_outbox) > 0
        || (self->output && zlist_size (self->output_outbox) > 0))
        return false;
    return s_free_slot (self) != NULL;
}

//  Move the frames through the first empty one from msg into a new
//  routing message. NULL (msg untouched) if msg has no empty frame.
static zmsg_t *
s_split_routing (zmsg_t *msg)
{
    bool found = false;
    for (zframe_t *frame = zmsg_first (msg); frame && !found; frame = zmsg_next (msg))
        found = zframe_size (frame) == 0;
    if (!found)
        return NULL;
    zmsg_t *routing = zmsg_new ();
    while (true) {
        zframe_t *frame = zmsg_pop (msg);
        bool last = zframe_size (frame) == 0;
        zmsg_append (routing, &frame);
        if (last)
            return routing;
    }
}

//  The envelope, if the body carries one: the first frame, or on a sub
//  input the frame after the topic. 0 (envelope or not), or the decode error.
static int
s_take_envelope (s_worker_t *self, zmsg_t *body, s_request_t *request)
{
    zframe_t *frame = zmsg_first (body);
    if (frame && !zk_envelope_is_envelope (zframe_data (frame), zframe_size (frame))
        && self->input_type == ZMQ_SUB)
        frame = zmsg_next (body);
    if (!frame || !zk_envelope_is_envelope (zframe_data (frame), zframe_size (frame)))
        return 0;
    int rc = zk_envelope_decode (zframe_data (frame), zframe_size (frame), &request->envelope);
    if (rc)
        return rc;
    zmsg_remove (body, frame);
    request->envelope_frame = frame;
    return 0;
}

static void s_start_request (s_worker_t *self, s_request_t *request, zmsg_t *msg, size_t size);

//  Take one delivery from the queue input and start it.
static void
s_take_delivery (s_worker_t *self)
{
    zk_delivery_t *delivery;
    if (zk_client_recv (self->in_queue, 0, &delivery))
        return;
    self->stats.received++;
    s_request_t request = {0};
    zmsg_t *msg = delivery->body;
    delivery->body = NULL;
    request.delivery = delivery;
    s_start_request (self, &request, msg, zmsg_content_size (msg));
}

/*  Take one message from the input and start it. rep and router inputs:
    the routing envelope is the frames through the first empty frame (a
    router falls back to the first frame alone; a rep message without one
    is malformed and dropped, as a REP socket would). dealer: through the
    first empty frame, or nothing. The rest is the body.                  */
static void
s_take_message (s_worker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->input);
    if (!msg)
        return;
    self->stats.received++;
    size_t size = zmsg_content_size (msg);
    s_request_t request = {0};
    bool replies = self->input_type == ZMQ_REP || self->input_type == ZMQ_ROUTER
                   || (self->input_type == ZMQ_DEALER && !self->output);
    if (self->input_type == ZMQ_REP || self->input_type == ZMQ_ROUTER
        || self->input_type == ZMQ_DEALER) {
        request.routing = s_split_routing (msg);
        if (!request.routing && self->input_type == ZMQ_ROUTER) {
            request.routing = zmsg_new ();
            zframe_t *identity = zmsg_pop (msg);
            zmsg_append (request.routing, &identity);
        }
        else if (!request.routing && self->input_type == ZMQ_DEALER)
            request.routing = zmsg_new ();
        else if (!request.routing) {
            self->stats.refused++;
            zk_warn_limited ("refused a message: no empty delimiter frame (not from a REQ peer)");
            zmsg_destroy (&msg);
            return;
        }
        if (!replies)
            zmsg_destroy (&request.routing);
    }
    s_start_request (self, &request, msg, size);
}

//  True when a request that has a routing envelope and a request envelope
//  is answered without running: its id has a cached reply, or its id is
//  running and it joins that run (or is refused: too many joined).
static bool
s_cache_answer (s_worker_t *self, s_request_t *request)
{
    if (!self->cache_map || !request->routing || !request->envelope)
        return false;
    char key[S_KEY_SIZE];
    s_key (zk_envelope_id (request->envelope), key);
    s_cache_expire (self, zk_now_ms ());
    s_cached_t *entry = zhashx_lookup (self->cache_map, key);
    if (entry) {
        self->stats.cache_hits++;
        zmsg_t *copy = zmsg_dup (entry->reply);
        s_reply (self, &request->routing, &copy);
        s_request_clear (request);
        return true;
    }
    s_pending_t *pending = zhashx_lookup (self->running_map, key);
    if (!pending)
        return false;
    if (pending->joiner_count == S_JOIN_MAX - 1)
        s_refuse (self, request, S_JOIN_FULL);
    else {
        self->stats.joined++;
        pending->joiners[pending->joiner_count++] = request->routing;
        request->routing = NULL;
        s_request_clear (request);
    }
    return true;
}

//  A request about to run: its id is running, duplicates join it. Without
//  memory for that, it simply runs uncached.
static void
s_cache_note_running (s_worker_t *self, s_request_t *request)
{
    if (!self->cache_map || !request->routing || !request->envelope)
        return;
    s_pending_t *pending = calloc (1, sizeof *pending);
    if (!pending)
        return;
    pending->worker = self;
    s_key (zk_envelope_id (request->envelope), pending->key);
    if (zhashx_insert (self->running_map, pending->key, pending) != 0) {
        free (pending);
        return;
    }
    request->pending = pending;
}

//  The body of a request taken (msg taken; size: the whole message's):
//  refuse it, answer it from the reply cache, or start it in a free slot.
static void
s_start_request (s_worker_t *self, s_request_t *request, zmsg_t *msg, size_t size)
{
    char reason[S_REASON_SIZE];
    if (self->config->max_size && size > self->config->max_size) {
        snprintf (reason, sizeof reason, "message too large (%zu bytes, limit %zu)", size,
                  self->config->max_size);
        zmsg_destroy (&msg);
        s_refuse (self, request, reason);
        return;
    }
    if (zmsg_size (msg) > ZK_DEVICE_MAX_FRAMES) {
        snprintf (reason, sizeof reason, "message of more than %d frames", ZK_DEVICE_MAX_FRAMES);
        zmsg_destroy (&msg);
        s_refuse (self, request, reason);
        return;
    }
    int rc = s_take_envelope (self, msg, request);
    if (rc) {
        snprintf (reason, sizeof reason, "malformed envelope: %s", zk_strerror (rc));
        zmsg_destroy (&msg);
        s_refuse (self, request, reason);
        return;
    }
    if (s_cache_answer (self, request)) {
        zmsg_destroy (&msg);
        return;
    }
    if (self->config->lines && s_has_inner_newline (msg)) {
        zmsg_destroy (&msg);
        s_refuse (self, request, "message contains a newline (lines mode)");
        return;
    }
    s_slot_t *slot = s_free_slot (self);
    if (!slot) {
        //  Only with lb (otherwise called while s_accepting): the proxy sent
        //  more requests than the slots we announced.
        assert (self->config->lb);
        zmsg_destroy (&msg);
        s_refuse (self, request, S_BUSY);
        return;
    }
    s_cache_note_running (self, request);
    if (self->config->lines)
        s_lines_submit (self, slot, request, &msg);
    else
        s_job_start (self, slot, request, &msg);
}

// ---------------------------------------------------------------- timers, stats, pipe

static int
s_running (s_worker_t *self)
{
    int running = 0;
    for (int index = 0; index < self->slot_count; index++)
        running += self->config->lines ? (int) self->slots[index].count : self->slots[index].busy;
    return running;
}

static void
s_add_stats (s_worker_t *self, zmsg_t *msg)
{
    zk_engine_add_counter (msg, "received", self->stats.received);
    zk_engine_add_counter (msg, "succeeded", self->stats.succeeded);
    zk_engine_add_counter (msg, "failed", self->stats.failed);
    zk_engine_add_counter (msg, "timed_out", self->stats.timed_out);
    zk_engine_add_counter (msg, "replied", self->stats.replied);
    zk_engine_add_counter (msg, "sent", self->stats.sent);
    zk_engine_add_counter (msg, "refused", self->stats.refused);
    zk_engine_add_counter (msg, "restarts", self->stats.restarts);
    zk_engine_add_counter (msg, "dropped", self->dropped);
    zk_engine_add_counter (msg, "running", (uint64_t) s_running (self));
    zk_engine_add_counter (msg, "acked", self->stats.acked);
    zk_engine_add_counter (msg, "nacked", self->stats.nacked);
    zk_engine_add_counter (msg, "output_failed", self->stats.output_failed);
    zk_engine_add_counter (msg, "cache_hits", self->stats.cache_hits);
    zk_engine_add_counter (msg, "joined", self->stats.joined);
    zk_engine_add_counter (msg, "cached", self->cache_count);
    zk_engine_add_counter (msg, "cached_bytes", self->cache_bytes);
    zk_engine_add_counter (msg, "reconnects", self->stats.reconnects);
    zk_engine_add_counter (msg, "auth_denied", zk_auth_denied ());
}

static void
s_report_stats (s_worker_t *self)
{
    zk_notice (
        "stats received=%" PRIu64 " succeeded=%" PRIu64 " failed=%" PRIu64 " timed_out=%" PRIu64
        " replied=%" PRIu64 " sent=%" PRIu64 " refused=%" PRIu64 " restarts=%" PRIu64
        " dropped=%" PRIu64 " running=%d acked=%" PRIu64 " nacked=%" PRIu64
        " output_failed=%" PRIu64 " cache_hits=%" PRIu64 " joined=%" PRIu64
        " cached=%zu cached_bytes=%zu reconnects=%" PRIu64 " auth_denied=%" PRIu64,
        self->stats.received, self->stats.succeeded, self->stats.failed, self->stats.timed_out,
        self->stats.replied, self->stats.sent, self->stats.refused, self->stats.restarts,
        self->dropped, s_running (self), self->stats.acked, self->stats.nacked,
        self->stats.output_failed, self->stats.cache_hits, self->stats.joined, self->cache_count,
        self->cache_bytes, self->stats.reconnects, zk_auth_denied ());
}

// ---------------------------------------------------------------- ZKW/1 (lb)

/*  The worker side of ZKW/1 (docs/protocol.md §10): the input is a DEALER
    connected to the proxy's backend. READY announces the free job slots
    (credit), HEARTBEAT goes out every interval, and any message from the
    proxy is a sign of life; after S_LB_SILENT silent intervals the DEALER
    is replaced by a fresh one (a new routing id) that sends READY again.
    Requests still running then reply on the new socket.                 */

static int
s_lb_free (s_worker_t *self)
{
    int free_slots = self->slot_count - s_running (self);
    return free_slots > 0 ? free_slots : 0;
}

static zmsg_t *
s_lb_message (const char *command, const char *argument)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "ZKW1");
    zmsg_addstr (msg, command);
    if (argument)
        zmsg_addstr (msg, argument);
    return msg;
}

static bool
s_lb_is (zmsg_t *msg, const char *command)
{
    zframe_t *frame = zmsg_first (msg);
    if (!frame || !zframe_streq (frame, "ZKW1"))
        return false;
    frame = zmsg_next (msg);
    return frame && zframe_streq (frame, command);
}

/*  Announce the free slots. With none free (every slot still runs a
    request from before) READY is owed and sent once one is. first: a
    fresh socket, READY goes ahead of the replies waiting in the outbox
    (and a READY still queued there for the old socket is dropped).     */
static void
s_lb_ready (s_worker_t *self, bool first)
{
    if (first) {
        for (zmsg_t *msg = zlist_first (self->input_outbox); msg;) {
            zmsg_t *next = zlist_next (self->input_outbox);
            if (s_lb_is (msg, "READY")) {
                zlist_remove (self->input_outbox, msg);
                zmsg_destroy (&msg);
            }
            msg = next;
        }
    }
    int free_slots = s_lb_free (self);
    self->lb_ready_due = free_slots == 0;
    if (free_slots == 0)
        return;
    char credit[16];
    snprintf (credit, sizeof credit, "%d", free_slots);
    zmsg_t *msg = s_lb_message ("READY", credit);
    int64_t now = zk_now_ms ();
    self->lb_ready_at = now;
    self->lb_next_heartbeat = now + self->heartbeat_ms;
    if (first && zlist_size (self->input_outbox)) {
        zlist_push (self->input_outbox, msg);
        s_flush (self, self->input, self->input_outbox);
    }
    else
        s_deliver (self, self->input, self->input_outbox, &msg);
}

//  A HEARTBEAT, if the socket takes it now (if not, the proxy is not
//  reading, and a late heartbeat is worth nothing).
static void
s_lb_heartbeat (s_worker_t *self)
{
    void *sock = zsock_resolve (self->input);
    if (zmq_send (sock, "ZKW1", 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 4)
        zmq_send (sock, "HEARTBEAT", 9, ZMQ_DONTWAIT);
}

//  Replace the DEALER by a fresh one (a new routing id: the proxy sees a
//  new worker) and send READY on it. If the new one cannot be made, keep
//  the old one and try again after another silence.
static void
s_lb_reconnect (s_worker_t *self, int64_t now)
{
    self->lb_heard = now;
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock) {
        zk_warn_limited ("lb: cannot make a new socket: %s", zmq_strerror (errno));
        return;
    }
    if (self->config->hwm > 0) {
        zsock_set_sndhwm (sock, self->config->hwm);
        zsock_set_rcvhwm (sock, self->config->hwm);
    }
    zsock_set_linger (sock,
                      self->config->linger_ms < 0 ? ZK_DEFAULT_LINGER_MS : self->config->linger_ms);
    zk_engine_limit_socket (sock, self->config->max_size,
                            self->config->handshake_ms ? self->config->handshake_ms
                                                       : ZK_SPEC_HANDSHAKE_MS);
    if (zk_spec_attach (self->input_spec, sock)) {
        zsock_destroy (&sock);
        return;
    }
    zk_warn ("lb: no word from the proxy for %g s: reconnecting",
             S_LB_SILENT * self->heartbeat_ms / 1000.0);
    zsock_destroy (&self->input);
    self->input = sock;
    self->stats.reconnects++;
    s_lb_ready (self, true);
}

//  Every loop turn: heartbeat, silence, an owed READY.
static void
s_lb_timers (s_worker_t *self, int64_t now)
{
    if (self->paused)
        self->lb_heard = now;  //  not reading: silence means nothing
    if (now - self->lb_heard >= (int64_t) S_LB_SILENT * self->heartbeat_ms)
        s_lb_reconnect (self, now);
    if (self->lb_ready_due && s_lb_free (self) > 0)
        s_lb_ready (self, false);
    if (now >= self->lb_next_heartbeat) {
        s_lb_heartbeat (self);
        self->lb_next_heartbeat = now + self->heartbeat_ms;
    }
}

//  A message from the proxy we will not act on: counted, logged.
static void
s_lb_refuse (s_worker_t *self, const char *why)
{
    self->stats.refused++;
    zk_warn_limited ("lb: refused a message from the proxy: %s", why);
}

/*  One message from the proxy. REQUEST ROUTING... "" BODY... is a request
    whose routing envelope, for the reply, is "ZKW1" "REPLY" ROUTING... "";
    --max-size counts ROUTING and BODY. A DISCONNECT within half an
    interval of our READY answers something we sent before that READY
    (the proxy knows us by now): ignored, so credit is not announced
    twice.                                                               */
static void
s_lb_take (s_worker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->input);
    if (!msg)
        return;
    int64_t now = zk_now_ms ();
    self->lb_heard = now;
    zframe_t *signature = zmsg_pop (msg);
    zframe_t *command = zmsg_pop (msg);
    if (!signature || !zframe_streq (signature, "ZKW1"))
        s_lb_refuse (self, "not ZKW1");
    else if (!command)
        s_lb_refuse (self, "no command");
    else if (zframe_streq (command, "HEARTBEAT") && zmsg_size (msg) == 0) {
        //  A sign of life, noted above.
    }
    else if (zframe_streq (command, "DISCONNECT") && zmsg_size (msg) == 0) {
        if (now - self->lb_ready_at >= self->heartbeat_ms / 2)
            s_lb_ready (self, false);
    }
    else if (zframe_streq (command, "REQUEST")) {
        size_t size = zmsg_content_size (msg);
        s_request_t request = {0};
        request.routing = s_split_routing (msg);
        if (!request.routing || zmsg_size (request.routing) < 2) {
            s_lb_refuse (self, request.routing ? "REQUEST without routing"
                                               : "REQUEST without an empty delimiter frame");
            zmsg_destroy (&request.routing);
        }
        else {
            zmsg_pushstr (request.routing, "REPLY");
            zmsg_pushstr (request.routing, "ZKW1");
            self->stats.received++;
            s_start_request (self, &request, msg, size);
            msg = NULL;
        }
    }
    else
        s_lb_refuse (self, "unknown command or malformed message");
    zframe_destroy (&signature);
    zframe_destroy (&command);
    zmsg_destroy (&msg);
}

//  Act on every timer that is due: timeouts, SIGKILLs after a SIGTERM,
//  coprocess restarts, the stats line.
static void
s_run_timers (s_worker_t *self, int64_t now)
{
    char reason[S_REASON_SIZE];
    snprintf (reason, sizeof reason, "timed out after %g s", self->config->timeout_ms / 1000.0);
    for (int index = 0; index < self->slot_count; index++) {
        s_slot_t *slot = &self->slots[index];
        if (slot->proc.kill_at && now >= slot->proc.kill_at)
            s_process_kill (&slot->proc, 0);
        if (self->config->lines) {
            s_request_t *head = s_lines_head (slot);
            if (head && !slot->dying && head->deadline && now >= head->deadline) {
                self->stats.timed_out++;
                s_coproc_kill (self, slot, reason,
                               "coprocess restarted: an earlier request timed out");
            }
            if (slot->proc.pid == 0 && slot->restart_at && now >= slot->restart_at)
                s_coproc_restart (self, slot);
        }
        else if (slot->busy && !slot->failure[0] && slot->request.deadline
                 && now >= slot->request.deadline) {
            self->stats.timed_out++;
            s_job_kill (slot, reason);
        }
    }
    if (self->config->stats_interval_ms > 0 && now >= self->next_stats) {
        s_report_stats (self);
        self->next_stats = now + self->config->stats_interval_ms;
    }
    if (self->config->lb)
        s_lb_timers (self, now);
    if (self->cache_map)
        s_cache_expire (self, now);
}

//  Milliseconds until the next timer, -1 for none.
static long
s_next_timeout (s_worker_t *self, int64_t now)
{
    int64_t next = INT64_MAX;
#define S_SOONER(when)                                                                             \
    do {                                                                                           \
        if ((when) > 0 && (when) < next)                                                           \
            next = (when);                                                                         \
    } while (0)
    for (int index = 0; index < self->slot_count; index++) {
        s_slot_t *slot = &self->slots[index];
        S_SOONER (slot->proc.kill_at);
        if (slot->proc.pid > 0 && slot->proc.pidfd < 0)
            S_SOONER (now + S_REAP_TICK_MS);
        if (self->config->lines) {
            s_request_t *head = s_lines_head (slot);
            if (head && !slot->dying)
                S_SOONER (head->deadline);
            if (slot->proc.pid == 0)
                S_SOONER (slot->restart_at);
        }
        else if (slot->busy && !slot->failure[0])
            S_SOONER (slot->request.deadline);
    }
    if (self->config->stats_interval_ms > 0)
        S_SOONER (self->next_stats);
    if (self->config->lb) {
        S_SOONER (self->lb_next_heartbeat);
        S_SOONER (self->lb_heard + (int64_t) S_LB_SILENT * self->heartbeat_ms);
        if (self->lb_ready_due && s_lb_free (self) > 0)
            S_SOONER (now);
    }
    zk_client_t *clients[] = {self->in_queue, self->out_queue};
    for (int index = 0; index < 2; index++) {
        long left = clients[index] ? zk_client_next_timeout (clients[index]) : -1;
        if (left >= 0)
            S_SOONER (now + left);
    }
#undef S_SOONER
    if (next == INT64_MAX)
        return -1;
    return next <= now ? 0 : (long) (next - now);
}

static void
s_handle_pipe (s_worker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg)
        return;
    char *command = zmsg_popstr (msg);
    zmsg_t *reply = NULL;
    if (!command)
        zk_warn ("worker: empty pipe command");
    else if (streq (command, "$TERM"))
        self->terminated = true;
    else if (streq (command, "PAUSE"))
        self->paused = true;
    else if (streq (command, "RESUME"))
        self->paused = false;
    else if (streq (command, "STATS")) {
        reply = zmsg_new ();
        s_add_stats (self, reply);
    }
    else if (streq (command, "ENDPOINTS")) {
        reply = zmsg_new ();
        zk_engine_add_endpoints (reply, "input", self->input_spec);
        zk_engine_add_endpoints (reply, "output", self->output_spec);
    }
    else
        zk_warn ("worker: unknown pipe command '%s'", command);
    if (reply)
        zmsg_send (&reply, self->pipe);
    zstr_free (&command);
    zmsg_destroy (&msg);
}

// ---------------------------------------------------------------- the loop

static void
s_add_item (s_worker_t *self, int *count, void *socket, int fd, short events, s_ref_kind_t kind,
            s_slot_t *slot)
{
    self->items[*count] = (zmq_pollitem_t){socket, fd, events, 0};
    self->refs[*count] = (s_ref_t){kind, slot};
    (*count)++;
}

static int
s_build_items (s_worker_t *self)
{
    int count = 0;
    s_add_item (self, &count, zsock_resolve (self->pipe), 0, ZMQ_POLLIN, S_REF_PIPE, NULL);
    short input_events = (short) ((s_accepting (self) ? ZMQ_POLLIN : 0)
                                  | (zlist_size (self->input_outbox) ? ZMQ_POLLOUT : 0));
    if (self->input && input_events)
        s_add_item (self, &count, zsock_resolve (self->input), 0, input_events, S_REF_INPUT, NULL);
    zk_client_t *clients[] = {self->in_queue, self->out_queue};
    for (int index = 0; index < 2; index++)
        if (clients[index]) {
            zmq_pollitem_t items[2];
            int added = zk_client_pollitems (clients[index], items, 2);
            for (int item = 0; item < added; item++)
                s_add_item (self, &count, items[item].socket, items[item].fd, items[item].events,
                            S_REF_CLIENT, NULL);
        }
    if (self->output && zlist_size (self->output_outbox))
        s_add_item (self, &count, zsock_resolve (self->output), 0, ZMQ_POLLOUT, S_REF_OUTPUT, NULL);
    for (int index = 0; index < self->slot_count; index++) {
        s_slot_t *slot = &self->slots[index];
        if (slot->proc.pid <= 0)
            continue;
        if (slot->proc.pidfd >= 0)
            s_add_item (self, &count, NULL, slot->proc.pidfd, ZMQ_POLLIN, S_REF_PIDFD, slot);
        bool to_write =
            self->config->lines ? slot->lines_written < slot->lines.size : slot->input != NULL;
        if (slot->proc.in_fd >= 0 && to_write)
            s_add_item (self, &count, NULL, slot->proc.in_fd, ZMQ_POLLOUT, S_REF_STDIN, slot);
        if (slot->proc.out_fd >= 0)
            s_add_item (self, &count, NULL, slot->proc.out_fd, ZMQ_POLLIN, S_REF_STDOUT, slot);
    }
    return count;
}

static void
s_slot_exited (s_worker_t *self, s_slot_t *slot)
{
    if (self->config->lines)
        s_coproc_exited (self, slot);
    else
        s_job_exited (self, slot);
}

static void
s_handle_item (s_worker_t *self, const zmq_pollitem_t *item, const s_ref_t *ref)
{
    s_slot_t *slot = ref->slot;
    //  An earlier item of this turn may have ended the slot's process.
    if (slot
        && item->fd
               != (ref->kind == S_REF_PIDFD   ? slot->proc.pidfd
                   : ref->kind == S_REF_STDIN ? slot->proc.in_fd
                                              : slot->proc.out_fd))
        return;
    switch (ref->kind) {
        case S_REF_PIPE: s_handle_pipe (self); break;
        case S_REF_INPUT:
            s_flush (self, self->input, self->input_outbox);
            //  Take what is queued while there is room; the batch bounds a turn.
            for (int taken = 0;
                 taken < 1000 && s_accepting (self) && (zsock_events (self->input) & ZMQ_POLLIN);
                 taken++)
                if (self->config->lb)
                    s_lb_take (self);
                else
                    s_take_message (self);
            break;
        case S_REF_OUTPUT: s_flush (self, self->output, self->output_outbox); break;
        case S_REF_CLIENT: break;  //  the clients are processed every turn (s_run)
        case S_REF_STDIN:
            if (self->config->lines)
                s_lines_write (slot);
            else
                s_job_write (slot);
            break;
        case S_REF_STDOUT:
            if (self->config->lines)
                s_lines_read (self, slot, S_READ_ROUNDS);
            else
                s_job_read (self, slot, S_READ_ROUNDS);
            break;
        case S_REF_PIDFD:
            if (s_process_exited (&slot->proc))
                s_slot_exited (self, slot);
            break;
    }
}

//  Let the queue clients handle what arrived and their timers (their
//  callbacks ack, nack and put here), then start what was delivered
//  while slots are free.
static void
s_process_queues (s_worker_t *self)
{
    if (self->out_queue)
        zk_client_process (self->out_queue);
    if (!self->in_queue)
        return;
    zk_client_process (self->in_queue);
    for (int taken = 0; taken < 1000 && s_accepting (self) && zk_client_ready (self->in_queue);
         taken++)
        s_take_delivery (self);
}

static void
s_run (s_worker_t *self)
{
    while (!self->terminated) {
        int64_t now = zk_now_ms ();
        s_run_timers (self, now);
        int count = s_build_items (self);
        long timeout = s_next_timeout (self, now);
        int rc = zmq_poll (self->items, count, timeout);
        if (rc < 0 && errno != EINTR) {
            zk_error ("worker: poll failed: %s", zmq_strerror (errno));
            break;
        }
        for (int index = 0; rc > 0 && index < count && !self->terminated; index++)
            if (self->items[index].revents)
                s_handle_item (self, &self->items[index], &self->refs[index]);
        //  Without a pidfd, exits are found by looking.
        for (int index = 0; index < self->slot_count && !self->terminated; index++) {
            s_slot_t *slot = &self->slots[index];
            if (slot->proc.pid > 0 && slot->proc.pidfd < 0 && s_process_exited (&slot->proc))
                s_slot_exited (self, slot);
        }
        if (!self->terminated)
            s_process_queues (self);
    }
}

//  At stop: give the acks, nacks and puts on their way until deadline.
static void
s_drain_queues (s_worker_t *self, int64_t deadline)
{
    zk_client_t *clients[] = {self->in_queue, self->out_queue};
    while (zk_now_ms () < deadline) {
        int count = 0;
        for (int index = 0; index < 2; index++)
            if (clients[index] && zk_client_pending (clients[index]))
                count += zk_client_pollitems (clients[index], self->items + count, 2);
        if (count == 0)
            return;
        int64_t left = deadline - zk_now_ms ();
        zmq_poll (self->items, count, left < 10 ? (long) (left < 0 ? 0 : left) : 10);
        for (int index = 0; index < 2; index++)
            if (clients[index])
                zk_client_process (clients[index]);
    }
    size_t left = 0;
    for (int index = 0; index < 2; index++)
        left += clients[index] ? zk_client_pending (clients[index]) : 0;
    if (left)
        zk_warn ("worker: %zu queue request(s) without their reply at stop (the queue delivers "
                 "those messages again)",
                 left);
}

//  Reap every child that has exited, until none is left or the deadline.
static void
s_wait_children (s_worker_t *self, int64_t deadline)
{
    while (true) {
        int count = 0;
        bool blind = false;
        for (int index = 0; index < self->slot_count; index++) {
            s_process_t *proc = &self->slots[index].proc;
            if (proc->pid <= 0)
                continue;
            if (s_process_exited (proc)) {
                s_process_reap (proc);
                continue;
            }
            if (proc->pidfd >= 0)
                self->items[count++] = (zmq_pollitem_t){NULL, proc->pidfd, ZMQ_POLLIN, 0};
            else
                blind = true;
        }
        int64_t left = deadline - zk_now_ms ();
        if ((count == 0 && !blind) || left <= 0)
            return;
        zmq_poll (self->items, count, blind && left > 10 ? 10 : (long) left);
    }
}

/*  $TERM: answer what is in flight with an error (a requester is never
    left waiting), SIGTERM every group, SIGKILL what is still there after a
    short grace, reap, and hand the socket what the outboxes hold.       */
static void
s_stop (s_worker_t *self)
{
    for (int index = 0; index < self->slot_count; index++) {
        s_slot_t *slot = &self->slots[index];
        if (self->config->lines)
            s_lines_fail_all (self, slot, S_STOPPING, NULL);
        else if (slot->busy) {
            if (slot->proc.out_fd >= 0)
                s_job_read (self, slot, S_READ_ROUNDS);
            s_fail (self, &slot->request, S_STOPPING, slot->output.data, slot->output.size);
        }
        if (slot->proc.pid > 0)
            kill (-slot->proc.pid, SIGTERM);
        s_close_fd (&slot->proc.in_fd);
    }
    //  ZKW/1: the proxy hears that we leave after the replies above.
    if (self->config->lb && self->input) {
        zmsg_t *disconnect = s_lb_message ("DISCONNECT", NULL);
        s_deliver (self, self->input, self->input_outbox, &disconnect);
    }
    s_wait_children (self, zk_now_ms () + S_STOP_GRACE_MS);
    for (int index = 0; index < self->slot_count; index++)
        if (self->slots[index].proc.pid > 0)
            kill (-self->slots[index].proc.pid, SIGKILL);
    s_wait_children (self, zk_now_ms () + S_STOP_GRACE_MS);
    if (self->input)
        s_flush (self, self->input, self->input_outbox);
    if (self->output)
        s_flush (self, self->output, self->output_outbox);
    //  Acks and nacks on their way, within the linger but at most S_DRAIN_MS:
    //  the process must be gone within a second of SIGTERM.
    int linger = self->config->linger_ms < 0 ? ZK_DEFAULT_LINGER_MS : self->config->linger_ms;
    s_drain_queues (self, zk_now_ms () + (linger < S_DRAIN_MS ? linger : S_DRAIN_MS));
    size_t unsent = zlist_size (self->input_outbox) + zlist_size (self->output_outbox);
    if (unsent)
        zk_warn ("worker: %zu replies could not be handed over at stop", unsent);
}

// ---------------------------------------------------------------- set-up

static void
s_worker_destroy (s_worker_t **self_p)
{
    s_worker_t *self = *self_p;
    if (!self)
        return;
    for (int index = 0; self->slots && index < self->slot_count; index++) {
        s_slot_t *slot = &self->slots[index];
        if (slot->proc.pid > 0) {
            //  Not reaped within the stop's grace: leave it to init, but not
            //  its pipes.
            s_close_fd (&slot->proc.pidfd);
            s_close_fd (&slot->proc.in_fd);
            s_close_fd (&slot->proc.out_fd);
        }
        s_request_clear (&slot->request);
        for (size_t queued = 0; queued < S_LINES_DEPTH; queued++)
            s_request_clear (&slot->queue[queued]);
        zmsg_destroy (&slot->input);
        s_buffer_free (&slot->output);
        s_buffer_free (&slot->lines);
    }
    free (self->slots);
    free (self->items);
    free (self->refs);
    while (self->cache_oldest)
        s_cache_remove (self, self->cache_oldest);
    zhashx_destroy (&self->cache_map);
    zhashx_destroy (&self->running_map);
    zlist_t *outboxes[] = {self->input_outbox, self->output_outbox};
    for (int box = 0; box < 2; box++) {
        if (!outboxes[box])
            continue;
        for (zmsg_t *msg = zlist_pop (outboxes[box]); msg; msg = zlist_pop (outboxes[box]))
            zmsg_destroy (&msg);
        zlist_destroy (&outboxes[box]);
    }
    zk_client_destroy (&self->in_queue);
    zk_client_destroy (&self->out_queue);
    while (self->settles) {
        s_settle_t *settle = self->settles;
        s_settle_destroy (&settle);
    }
    zsock_destroy (&self->input);
    zsock_destroy (&self->output);
    zk_spec_destroy (&self->input_spec);
    zk_spec_destroy (&self->output_spec);
    free (self);
    *self_p = NULL;
}

//  The input socket. A rep input is a ROUTER underneath (as libzmq's own
//  REP is): it handles the REQ envelope itself so that several requests
//  run at once, and routes each reply to the peer that asked, however
//  many REQ clients or proxies are connected.
static int
s_open_input (s_worker_t *self)
{
    const zk_worker_config_t *config = self->config;
    self->input_spec = zk_spec_new (config->input);
    if (!self->input_spec)
        return ZK_EINVAL;
    self->input_type = zk_spec_type (self->input_spec);
    if (self->input_type == ZK_SPEC_QUEUE) {
        zk_client_config_t queue_config = {
            .hwm = config->hwm, .max_size = config->max_size, .consumer = config->name};
        self->in_queue = zk_client_new (config->input, &queue_config);
        if (!self->in_queue)
            return ZK_ESOCKET;
        //  The window is the job slots: never leased more than can run.
        return zk_client_get_async (self->in_queue, NULL, self->slot_count, NULL, NULL);
    }
    int socket_type = self->input_type == ZMQ_REP ? ZMQ_ROUTER : self->input_type;
    self->input = zsock_new (socket_type);
    if (!self->input) {
        zk_error ("input: cannot create a socket: %s", zmq_strerror (errno));
        return ZK_ESOCKET;
    }
    if (config->hwm > 0) {
        zsock_set_sndhwm (self->input, config->hwm);
        zsock_set_rcvhwm (self->input, config->hwm);
    }
    zsock_set_linger (self->input,
                      config->linger_ms < 0 ? ZK_DEFAULT_LINGER_MS : config->linger_ms);
    zk_engine_limit_socket (self->input, config->max_size,
                            config->handshake_ms ? config->handshake_ms : ZK_SPEC_HANDSHAKE_MS);
    //  A reply to a peer that has gone is an error, not a silent drop: it is
    //  counted in "dropped" (libzmq would discard it without a word).
    if (socket_type == ZMQ_ROUTER)
        zsock_set_router_mandatory (self->input, 1);
    if (self->input_type == ZMQ_SUB) {
        if (config->subscribe && config->subscribe[0])
            for (const char *const *topic = config->subscribe; *topic; topic++) {
                if (strlen (*topic) > ZK_MAX_TOPIC_DEFAULT)
                    zk_warn ("--subscribe: a %zu-byte topic; a zkit-forwarder drops "
                             "subscriptions longer than its --max-topic (default %d)",
                             strlen (*topic), ZK_MAX_TOPIC_DEFAULT);
                zsock_set_subscribe (self->input, *topic);
            }
        else
            zsock_set_subscribe (self->input, "");
    }
    return zk_spec_attach (self->input_spec, self->input);
}

//  The reply cache, for inputs that reply (rep, router, dealer without
//  --out, lb) when config->reply_cache > 0. 0, or ZK_ENOMEM.
static int
s_cache_init (s_worker_t *self)
{
    const zk_worker_config_t *config = self->config;
    bool replies = self->input_type == ZMQ_REP || self->input_type == ZMQ_ROUTER
                   || (self->input_type == ZMQ_DEALER && !config->output);
    if (config->reply_cache <= 0 || !replies)
        return 0;
    self->cache_max_count = (size_t) config->reply_cache;
    self->cache_max_bytes =
        config->reply_cache_bytes ? config->reply_cache_bytes : S_DEFAULT_CACHE_BYTES;
    self->cache_ttl_ms = config->reply_ttl_ms > 0 ? config->reply_ttl_ms : S_DEFAULT_TTL_MS;
    self->cache_map = zhashx_new ();
    self->running_map = zhashx_new ();
    if (!self->cache_map || !self->running_map) {
        zk_error ("worker: out of memory");
        return ZK_ENOMEM;
    }
    return 0;
}

static s_worker_t *
s_worker_new (zsock_t *pipe, const zk_worker_config_t *config)
{
    s_worker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->pipe = pipe;
    self->config = config;
    self->command = config->argv[0];
    self->max_output = config->max_output ? config->max_output : S_DEFAULT_MAX_OUTPUT;
    self->slot_count = config->jobs > 0 ? config->jobs : 1;
    self->slots = calloc ((size_t) self->slot_count, sizeof *self->slots);
    //  The pipe, input, output, two queue clients (2 items each), 3 per slot.
    self->items = calloc ((size_t) (7 + 3 * self->slot_count), sizeof *self->items);
    self->refs = calloc ((size_t) (7 + 3 * self->slot_count), sizeof *self->refs);
    self->input_outbox = zlist_new ();
    self->output_outbox = zlist_new ();
    if (!self->slots || !self->items || !self->refs || !self->input_outbox
        || !self->output_outbox) {
        zk_error ("worker: out of memory");
        goto out_destroy;
    }
    for (int index = 0; index < self->slot_count; index++) {
        s_process_t *proc = &self->slots[index].proc;
        proc->pidfd = proc->in_fd = proc->out_fd = -1;
    }
    if (s_open_input (self))
        goto out_destroy;
    if (config->output) {
        self->output_spec = zk_spec_new (config->output);
        if (!self->output_spec)
            goto out_destroy;
        self->output_type = zk_spec_type (self->output_spec);
        if (self->output_type == ZK_SPEC_QUEUE && self->in_queue
            && s_same_server (self->input_spec, self->output_spec))
            self->forward_to = zk_spec_queue_name (self->output_spec);
        else if (self->output_type == ZK_SPEC_QUEUE) {
            zk_client_config_t queue_config = {.hwm = config->hwm};
            self->out_queue = zk_client_new (config->output, &queue_config);
            if (!self->out_queue)
                goto out_destroy;
        }
        else {
            zk_spec_destroy (&self->output_spec);
            zk_engine_limits_t limits = {.hwm = config->hwm,
                                         .linger_ms = config->linger_ms,
                                         .max_size = config->max_size,
                                         .handshake_ms = config->handshake_ms};
            if (zk_engine_open_limited ("output", config->output, s_output_types, &limits,
                                        &self->output, &self->output_spec))
                goto out_destroy;
        }
    }
    if (config->lines)
        for (int index = 0; index < self->slot_count; index++) {
            char reason[S_REASON_SIZE];
            if (s_coproc_start (self, &self->slots[index], reason, sizeof reason)) {
                zk_error ("%s", reason);
                goto out_destroy;
            }
        }
    if ((self->input_type == ZMQ_PULL || self->input_type == ZMQ_SUB) && !self->output
        && !self->out_queue)
        zk_info ("one-way input and no --out: the output of %s is discarded", self->command);
    if (config->stats_interval_ms > 0)
        self->next_stats = zk_now_ms () + config->stats_interval_ms;
    if (s_cache_init (self))
        goto out_destroy;
    if (config->lb) {
        self->heartbeat_ms =
            config->heartbeat_ms > 0 ? config->heartbeat_ms : S_DEFAULT_HEARTBEAT_MS;
        self->lb_heard = zk_now_ms ();
        s_lb_ready (self, false);
    }
    return self;

out_destroy:
    self->terminated = true;
    for (int index = 0; self->slots && index < self->slot_count; index++)
        if (self->slots[index].proc.pid > 0)
            kill (-self->slots[index].proc.pid, SIGKILL);
    if (self->items)
        s_wait_children (self, zk_now_ms () + S_STOP_GRACE_MS);
    s_worker_destroy (&self);
    return NULL;
}

static void
s_worker_actor (zsock_t *pipe, void *args)
{
    s_setup_t *setup = args;
    //  A command that does not read its stdin must give us EPIPE, not kill us.
    sigset_t sigpipe;
    sigemptyset (&sigpipe);
    sigaddset (&sigpipe, SIGPIPE);
    pthread_sigmask (SIG_BLOCK, &sigpipe, NULL);
    zsock_signal (pipe, 0);
    s_worker_t *self = s_worker_new (pipe, &setup->config);
    zsock_signal (pipe, self ? 0 : (byte) -1);
    if (!self)
        return;
    s_run (self);
    s_stop (self);
    s_worker_destroy (&self);
}

static void
s_setup_destroy (s_setup_t **setup_p)
{
    s_setup_t *setup = *setup_p;
    if (!setup)
        return;
    free (setup->input);
    free (setup->output);
    for (char **arg = setup->argv; arg && *arg; arg++)
        free (*arg);
    free (setup->argv);
    for (char **topic = setup->subscribe; topic && *topic; topic++)
        free (*topic);
    free (setup->subscribe);
    free (setup);
    *setup_p = NULL;
}

//  A NULL-terminated deep copy of a NULL-terminated list (NULL: NULL).
static char **
s_strv_dup (const char *const *list, bool *failed)
{
    if (!list)
        return NULL;
    size_t count = 0;
    while (list[count])
        count++;
    char **copy = calloc (count + 1, sizeof *copy);
    for (size_t index = 0; copy && index < count; index++)
        if (!(copy[index] = strdup (list[index])))
            *failed = true;
    if (!copy)
        *failed = true;
    return copy;
}

static s_setup_t *
s_setup_new (const zk_worker_config_t *config)
{
    s_setup_t *setup = calloc (1, sizeof *setup);
    if (!setup)
        return NULL;
    bool failed = false;
    setup->config = *config;
    setup->input = strdup (config->input);
    setup->output = config->output ? strdup (config->output) : NULL;
    setup->argv = s_strv_dup ((const char *const *) config->argv, &failed);
    setup->subscribe = s_strv_dup (config->subscribe, &failed);
    if (failed || !setup->input || (config->output && !setup->output)) {
        s_setup_destroy (&setup);
        return NULL;
    }
    setup->config.input = setup->input;
    setup->config.output = setup->output;
    setup->config.argv = setup->argv;
    setup->config.subscribe = (const char *const *) setup->subscribe;
    setup->config.max_size = zk_engine_max_size (config->max_size);
    s_consumer_name (config->name, setup->name, sizeof setup->name);
    setup->config.name = setup->name;
    return setup;
}

// ---------------------------------------------------------------- public API

//  The type of the spec text for role, or -1 with the reason: invalid, or
//  not one of types (what the role is: "an input", expected: their names).
static int
s_role_type (const char *role, const char *text, const int *types, const char *what,
             const char *expected, char *reason, size_t reason_size)
{
    int type = zk_engine_spec_type (role, text, reason, reason_size);
    if (type >= 0 && !zk_engine_type_in (type, types)) {
        zk_engine_reason (reason, reason_size, "%s: a %s socket cannot be %s (expected %s)", role,
                          zk_spec_type_to_name (type), what, expected);
        return -1;
    }
    return type;
}

//  True when the (valid) spec text has exactly one endpoint, which connects.
static bool
s_connects_once (const char *text)
{
    zk_spec_t *spec = zk_spec_new (text);
    bool once = spec && zk_spec_size (spec) == 1 && !zk_spec_binds (spec, 0);
    zk_spec_destroy (&spec);
    return once;
}

int
zk_worker_validate (const zk_worker_config_t *config, char *reason, size_t reason_size)
{
    assert (config);
    if (!config->input)
        return zk_engine_reason (reason, reason_size, "an input socket (--in SPEC) is required");
    int input_type = s_role_type ("--in", config->input, s_input_types, "an input",
                                  "pull, sub, rep, dealer, router or queue", reason, reason_size);
    if (input_type < 0)
        return ZK_EINVAL;
    if (config->lb) {
        if (input_type != ZMQ_DEALER || !s_connects_once (config->input))
            return zk_engine_reason (reason, reason_size,
                                     "--lb needs a dealer> input connecting to one zkit-proxy --lb "
                                     "backend (--in 'dealer>ENDPOINT'), not '%s'",
                                     config->input);
        if (config->output)
            return zk_engine_reason (
                reason, reason_size,
                "--out cannot be used with --lb: replies go back to the proxy");
    }
    else if (config->heartbeat_ms)
        return zk_engine_reason (reason, reason_size, "--heartbeat needs --lb");
    if (config->heartbeat_ms && (config->heartbeat_ms < 10 || config->heartbeat_ms > 3600000))
        return zk_engine_reason (reason, reason_size,
                                 "the heartbeat must be 10 ms to 3600 s, not %d ms",
                                 config->heartbeat_ms);
    if (config->reply_cache < 0 || config->reply_ttl_ms < 0)
        return zk_engine_reason (reason, reason_size,
                                 "the reply cache and its ttl cannot be negative");
    if (config->output) {
        if (s_role_type ("--out", config->output, s_output_types, "an output",
                         "push, pub, dealer or queue", reason, reason_size)
            < 0)
            return ZK_EINVAL;
        if (input_type == ZMQ_REP || input_type == ZMQ_ROUTER)
            return zk_engine_reason (
                reason, reason_size,
                "--out cannot be used with a %s input: replies go back on the input",
                zk_spec_type_to_name (input_type));
    }
    if (s_check_queue_config (config, input_type, reason, reason_size))
        return ZK_EINVAL;
    if (config->subscribe && config->subscribe[0] && input_type != ZMQ_SUB)
        return zk_engine_reason (reason, reason_size, "--subscribe needs a sub input");
    for (const char *const *topic = config->subscribe; topic && *topic; topic++)
        if (strlen (*topic) > ZK_MAX_TOPIC_MAX)
            return zk_engine_reason (reason, reason_size,
                                     "--subscribe: a topic longer than %d bytes (no forwarder "
                                     "passes it)",
                                     ZK_MAX_TOPIC_MAX);
    if (!config->argv || !config->argv[0] || !config->argv[0][0])
        return zk_engine_reason (reason, reason_size, "no command given (put it after --)");
    if (config->jobs < 0 || config->jobs > ZK_WORKER_MAX_JOBS)
        return zk_engine_reason (reason, reason_size, "jobs must be 1 to %d, not %d",
                                 ZK_WORKER_MAX_JOBS, config->jobs);
    if (config->timeout_ms < 0 || config->stats_interval_ms < 0 || config->hwm < 0
        || config->handshake_ms < 0)
        return zk_engine_reason (reason, reason_size,
                                 "timeout, stats interval, hwm and handshake timeout cannot be "
                                 "negative");
    return 0;
}

zk_worker_t *
zk_worker_new (const zk_worker_config_t *config)
{
    assert (config);
    char reason[512];
    if (zk_worker_validate (config, reason, sizeof reason)) {
        zk_error ("%s", reason);
        return NULL;
    }
    zk_worker_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->setup = s_setup_new (config);
    if (!self->setup)
        goto out_free;
    self->actor = zk_engine_start (s_worker_actor, self->setup, "worker");
    if (!self->actor)
        goto out_free;
    return self;

out_free:
    zactor_destroy (&self->actor);
    s_setup_destroy (&self->setup);
    free (self);
    return NULL;
}

void
zk_worker_destroy (zk_worker_t **self_p)
{
    assert (self_p);
    zk_worker_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    s_setup_destroy (&self->setup);
    free (self);
    *self_p = NULL;
}

int
zk_worker_stats (zk_worker_t *self, zk_worker_stats_t *stats)
{
    assert (self && stats);
    zmsg_t *reply = zk_engine_request (self->actor, "STATS");
    if (!reply)
        return ZK_EIO;
    stats->received = zk_engine_counter (reply, "received");
    stats->succeeded = zk_engine_counter (reply, "succeeded");
    stats->failed = zk_engine_counter (reply, "failed");
    stats->timed_out = zk_engine_counter (reply, "timed_out");
    stats->replied = zk_engine_counter (reply, "replied");
    stats->sent = zk_engine_counter (reply, "sent");
    stats->refused = zk_engine_counter (reply, "refused");
    stats->restarts = zk_engine_counter (reply, "restarts");
    stats->acked = zk_engine_counter (reply, "acked");
    stats->nacked = zk_engine_counter (reply, "nacked");
    stats->output_failed = zk_engine_counter (reply, "output_failed");
    stats->running = zk_engine_counter (reply, "running");
    stats->cache_hits = zk_engine_counter (reply, "cache_hits");
    stats->joined = zk_engine_counter (reply, "joined");
    stats->reconnects = zk_engine_counter (reply, "reconnects");
    zmsg_destroy (&reply);
    return 0;
}

zactor_t *
zk_worker_actor (zk_worker_t *self)
{
    assert (self);
    return self->actor;
}
