#!/usr/bin/python3
"""Outside clients: pyzmq programs, not built from this repository, talk to
the real zkit binaries. Multipart messages must arrive byte-exact and in
order through zkit-proxy, topic filters must hold through zkit-forwarder,
and a zkit-worker service must answer through a router/dealer proxy.

Every wait has a deadline; no fixed ports (ephemeral, read from --ready-file).
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import zmq

BIN = os.environ.get("ZK_BIN", os.path.join(os.path.dirname(__file__), "..", "build", "bin"))
TIMEOUT_MS = 10000
tmp = tempfile.mkdtemp(prefix="zk-outside-")
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
    args = list(args)
    # Options go before "--": what follows it is zkit-worker's COMMAND.
    at = args.index("--") if "--" in args else len(args)
    argv = [os.path.join(BIN, args[0])] + args[1:at] + ["--ready-file", ready] + args[at:]
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


def sock(kind, endpoint, **options):
    s = ctx.socket(kind)
    s.linger = 1000
    s.rcvtimeo = TIMEOUT_MS
    s.sndtimeo = TIMEOUT_MS
    for key, value in options.items():
        s.setsockopt(getattr(zmq, key), value)
    s.connect(endpoint)
    return s


def random_message(rng):
    return [bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 7, 64, 1000])))
            for _ in range(rng.randint(1, 5))]


def streamer():
    print("outside client → zkit-proxy pull@/push@ → outside client")
    _, ep = start("proxy", "zkit-proxy", "pull@tcp://127.0.0.1:*", "push@tcp://127.0.0.1:*")
    push = sock(zmq.PUSH, ep["frontend"])
    pull = sock(zmq.PULL, ep["backend"])
    rng = random.Random(7)
    sent = [random_message(rng) for _ in range(500)]
    for message in sent:
        push.send_multipart(message)
    got = [pull.recv_multipart() for _ in sent]
    check("500 multipart messages byte-exact and in order", got == sent)
    push.close()
    pull.close()


def fanout():
    print("outside publisher → zkit-forwarder xsub@/xpub@ → outside subscribers")
    _, ep = start("forwarder", "zkit-forwarder", "xsub@tcp://127.0.0.1:*", "xpub@tcp://127.0.0.1:*")
    publisher = sock(zmq.XPUB, ep["frontend"])
    subscribers = {}
    for topic in (b"alpha", b"beta"):
        subscribers[topic] = sock(zmq.SUB, ep["backend"], SUBSCRIBE=topic)
    # Wait for both subscriptions to reach the publisher: no slow-joiner loss.
    seen = set()
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        if publisher.poll(100):
            event = publisher.recv()
            if event[:1] == b"\x01":
                seen.add(event[1:])
    check("subscriptions flowed upstream to the publisher", seen == {b"alpha", b"beta"}, repr(seen))
    messages = []
    for i in range(100):
        topic = [b"alpha", b"beta", b"gamma"][i % 3]
        message = [topic + b".%d" % i, b"\x00payload\xff%d" % i]
        messages.append(message)
        publisher.send_multipart(message)
    for topic, subscriber in subscribers.items():
        want = [m for m in messages if m[0].startswith(topic)]
        got = [subscriber.recv_multipart() for _ in want]
        check(f"subscriber {topic.decode()} got exactly its {len(want)} messages, byte-exact", got == want)
        check(f"subscriber {topic.decode()} got nothing else", subscriber.poll(200) == 0)
        subscriber.close()
    publisher.close()


def service():
    print("outside REQ/DEALER clients → zkit-proxy router@/dealer@ → zkit-worker rep> service")
    _, ep = start("rr-proxy", "zkit-proxy", "router@tcp://127.0.0.1:*", "dealer@tcp://127.0.0.1:*")
    start("service", "zkit-worker", "--in", "rep>" + ep["backend"], "--", "tr", "a-z", "A-Z")
    req = sock(zmq.REQ, ep["frontend"])
    ok = True
    for i in range(20):
        req.send(b"hello %d" % i)
        ok = ok and req.recv() == b"HELLO %d" % i
    check("REQ client: 20 requests answered in order", ok)
    dealer = sock(zmq.DEALER, ep["frontend"])
    for i in range(20):
        dealer.send_multipart([b"", b"job %d" % i])
    replies = sorted(dealer.recv_multipart()[1] for _ in range(20))
    check("DEALER client: 20 pipelined requests answered", replies == sorted(b"JOB %d" % i for i in range(20)))
    req.close()
    dealer.close()


try:
    streamer()
    fanout()
    service()
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

print("outside clients: %s" % ("ok" if not failures else f"{failures} failed"))
sys.exit(1 if failures else 0)
