#!/usr/bin/python3
"""An outside ZKW/1 worker: a pyzmq program, not built from this repository,
speaks the load-balancing protocol of docs/protocol.md section 10 by hand
against the real `zkit-proxy --lb`, with REQ and DEALER clients. It checks
that requests arrive framed as specified, replies reach the right client,
heartbeats arrive every interval, a silent worker is dropped and its request
failed back with zk-retry=1, and an unknown worker is told DISCONNECT.

Every wait has a deadline; no fixed ports (ephemeral, read from --ready-file).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import zmq

BIN = os.environ.get("ZK_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "bin"))
HEARTBEAT = 0.2  # seconds, the proxy's --heartbeat
TIMEOUT_MS = 10000
tmp = tempfile.mkdtemp(prefix="zk-outside-lb-")
procs = []
ctx = zmq.Context()
failures = 0


def check(what, ok, detail=""):
    global failures
    print(("  ok    " if ok else "  FAIL  ") + what + (": " + detail if detail else ""))
    if not ok:
        failures += 1


def start(name, *args):
    ready = os.path.join(tmp, name + ".ready")
    log = open(os.path.join(tmp, name + ".log"), "w")
    argv = [os.path.join(BIN, args[0])] + list(args[1:]) + ["--ready-file", ready]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
    procs.append(proc)
    deadline = time.monotonic() + 10
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not become ready")
        time.sleep(0.02)  # polling the ready file until the deadline above
    endpoints = {}
    with open(ready) as f:
        for line in f:
            role, endpoint = line.split()
            endpoints.setdefault(role, endpoint)
    return proc, endpoints


def sock(kind, endpoint):
    s = ctx.socket(kind)
    s.linger = 0
    s.rcvtimeo = TIMEOUT_MS
    s.sndtimeo = TIMEOUT_MS
    s.connect(endpoint)
    return s


class Worker:
    """A ZKW/1 worker on a DEALER: READY with its credit, HEARTBEAT on
    demand, and everything the proxy sends it, heartbeats counted apart."""

    def __init__(self, endpoint, credit):
        self.sock = sock(zmq.DEALER, endpoint)
        self.heartbeats = 0
        self.disconnects = 0
        self.sock.send_multipart([b"ZKW1", b"READY", b"%d" % credit])

    def heartbeat(self):
        self.sock.send_multipart([b"ZKW1", b"HEARTBEAT"])

    def next_request(self, timeout=5.0, beat=True):
        """The next REQUEST's frames after the command, heart-beating
        meanwhile when beat is set; None at the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if beat:
                self.heartbeat()
            if self.sock.poll(int(HEARTBEAT * 1000 / 2)):
                frames = self.sock.recv_multipart()
                assert frames[0] == b"ZKW1", frames
                if frames[1] == b"HEARTBEAT" and len(frames) == 2:
                    self.heartbeats += 1
                elif frames[1] == b"DISCONNECT":
                    self.disconnects += 1
                elif frames[1] == b"REQUEST":
                    return frames[2:]
        return None

    def reply(self, request, body):
        cut = request.index(b"")
        self.sock.send_multipart([b"ZKW1", b"REPLY"] + request[:cut + 1] + [body])


def statistics(control):
    control.send(b"STATISTICS")
    text = control.recv().decode()
    return dict(item.split("=") for item in text.split())


def wait_stat(control, name, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = statistics(control)
        if int(stats[name]) == want:
            return True
        time.sleep(0.02)  # polling the proxy's counters until the deadline above
    return False


def is_error_reply(frames, error, retry):
    """ENVELOPE "" with zk-status=error, zk-error=ERROR (and zk-retry=1): the
    envelope's strings are msgpack fixstrs (docs/protocol.md section 3)."""
    if len(frames) != 2 or frames[1] != b"":
        return False
    envelope = frames[0]
    def fixstr(text):
        return bytes([0xA0 | len(text)]) + text
    magic = envelope[:1] >= b"\x81" and envelope[:1] <= b"\x8f" and envelope[1:5] == b"\xa2zk\x01"
    has = lambda key, value: fixstr(key) + fixstr(value) in envelope
    return (magic and has(b"zk-status", b"error") and has(b"zk-error", error)
            and has(b"zk-retry", b"1") == retry)


def main():
    print("outside ZKW/1 workers -> zkit-proxy --lb <- outside REQ/DEALER clients")
    _, ep = start("lb", "zkit-proxy", "--lb", "--heartbeat", str(HEARTBEAT),
                  "router@tcp://127.0.0.1:*", "router@tcp://127.0.0.1:*",
                  "--control", "rep@tcp://127.0.0.1:*")
    control = sock(zmq.REQ, ep["control"])
    worker = Worker(ep["backend"], 2)
    check("the proxy counts the worker after READY", wait_stat(control, "workers", 1))

    req = sock(zmq.REQ, ep["frontend"])
    req.send(b"hello")
    request = worker.next_request()
    check("REQUEST framed as ROUTING \"\" BODY (REQ client: routing id, delimiter, body)",
          request is not None and len(request) == 3 and request[1] == b"" and request[2] == b"hello",
          repr(request))
    worker.reply(request, b"HELLO")
    check("the REQ client gets the worker's reply", req.recv() == b"HELLO")

    dealer = sock(zmq.DEALER, ep["frontend"])
    reqid = os.urandom(16)
    dealer.send_multipart([reqid, b"", b"job"])
    request = worker.next_request()
    check("a DEALER client's REQID frame travels as a routing frame",
          request is not None and request[1] == reqid and request[2:] == [b"", b"job"], repr(request))
    worker.reply(request, b"done")
    check("the DEALER client gets REQID \"\" REPLY", dealer.recv_multipart() == [reqid, b"", b"done"])

    before = worker.heartbeats
    deadline = time.monotonic() + 10 * HEARTBEAT + 5
    while worker.heartbeats < before + 3 and time.monotonic() < deadline:
        worker.next_request(timeout=HEARTBEAT)
    check("HEARTBEATs arrive from the proxy every interval", worker.heartbeats >= before + 3,
          f"{worker.heartbeats - before} heard")

    stranger = sock(zmq.DEALER, ep["backend"])
    stranger.send_multipart([b"ZKW1", b"HEARTBEAT"])
    got = stranger.recv_multipart() if stranger.poll(TIMEOUT_MS) else None
    check("a worker the proxy does not know is told DISCONNECT", got == [b"ZKW1", b"DISCONNECT"],
          repr(got))
    stranger.close()

    # The worker takes a request and goes silent: after 3 heartbeats the
    # proxy drops it and fails the request back, marked for a retry.
    req.send(b"never answered")
    request = worker.next_request()
    check("the request reaches the worker", request is not None)
    started = time.monotonic()
    got = req.recv_multipart() if req.poll(TIMEOUT_MS) else None
    elapsed = time.monotonic() - started
    check("a silent worker's request is failed back: zk-error=worker lost, zk-retry=1",
          got is not None and is_error_reply(got, b"worker lost", True), repr(got))
    check("... within 3 to 5 heartbeats", 2.5 * HEARTBEAT <= elapsed <= 5 * HEARTBEAT + 2,
          "%.2f s" % elapsed)
    check("the proxy counts no worker and one lost request",
          wait_stat(control, "workers", 0) and int(statistics(control)["lost"]) == 1)
    worker.sock.close()
    req.close()
    dealer.close()
    control.close()


try:
    main()
finally:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = "killed"
        check(f"{os.path.basename(proc.args[0])} exits 0 on SIGTERM", code == 0, str(code))
    if failures:
        for name in sorted(os.listdir(tmp)):
            if name.endswith(".log"):
                print("---", name, open(os.path.join(tmp, name)).read()[-2000:])
    ctx.destroy(linger=0)
    shutil.rmtree(tmp, ignore_errors=True)

print("outside ZKW/1 worker: %s" % ("ok" if not failures else f"{failures} failed"))
sys.exit(1 if failures else 0)
