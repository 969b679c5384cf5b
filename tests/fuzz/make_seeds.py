#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets: tests/fuzz/corpus/TARGET/.

The files are committed; this script documents how they were made and
rewrites them (python3 tests/fuzz/make_seeds.py). Each seed is a valid or
an edge-case input in the framing its target (tests/fuzz/fuzz_*.c) reads.
No port-like numbers: specs use '*' or ports far from the 5NNN range.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    path = os.path.join(ROOT, target)
    os.makedirs(path, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(path, name), "wb") as out:
        out.write(data)


# ---------------------------------------------------------------- msgpack
def mp_str(text):
    raw = text.encode() if isinstance(text, str) else text
    if len(raw) < 32:
        return bytes([0xA0 | len(raw)]) + raw
    if len(raw) < 256:
        return b"\xd9" + bytes([len(raw)]) + raw
    return b"\xda" + struct.pack(">H", len(raw)) + raw


def mp_bin(raw):
    return b"\xc4" + bytes([len(raw)]) + raw


def mp_uint(value):
    if value < 128:
        return bytes([value])
    if value < 256:
        return b"\xcc" + bytes([value])
    if value < 65536:
        return b"\xcd" + struct.pack(">H", value)
    if value < 2**32:
        return b"\xce" + struct.pack(">I", value)
    return b"\xcf" + struct.pack(">Q", value)


def mp_map_header(count, map16=False):
    if count < 16 and not map16:
        return bytes([0x80 | count])
    return b"\xde" + struct.pack(">H", count)


def envelope(pairs, map16=False):
    body = b"".join(key + value for key, value in pairs)
    return mp_map_header(len(pairs), map16) + body


ID = bytes.fromhex("018f3a6c2b407a1c9c3e5d2f81a04417")
TRACE = bytes.fromhex("018f3a6c2b407a1c9c3e5d2f81a04418")
ZK = (mp_str("zk"), mp_uint(1))


def headers(items):
    return mp_map_header(len(items)) + b"".join(mp_str(k) + mp_str(v) for k, v in items)


def envelopes():
    write("envelope", "minimal", envelope([ZK, (mp_str("id"), mp_bin(ID))]))
    full = envelope([ZK, (mp_str("id"), mp_bin(ID)), (mp_str("ts"), mp_uint(1715000000000000)),
                     (mp_str("tr"), mp_bin(TRACE)), (mp_str("at"), mp_uint(3)),
                     (mp_str("ct"), mp_str("text/plain")),
                     (mp_str("h"), headers([("zk-status", "error"), ("zk-error", "boom"),
                                            ("", "")]))])
    write("envelope", "full", full)
    write("envelope", "map16", envelope([ZK, (mp_str("id"), mp_bin(ID)),
                                         (mp_str("at"), b"\xce\x00\x00\x00\x07")], map16=True))
    nested = b"\x92\x81\xa1k\x93\x01\xc0\xc3\xa3abc"  # [ {k: [1, nil, true]}, "abc" ]
    write("envelope", "unknown_keys", envelope([ZK, (mp_str("id"), mp_bin(ID)),
                                                (mp_str("xx"), nested),
                                                (mp_str("yy"), b"\xcb" + b"\x00" * 8),
                                                (mp_str("zz"), b"\xd6\x01abcd")]))
    deep = b"\x91" * 9 + b"\x00"
    write("envelope", "too_deep", envelope([ZK, (mp_str("id"), mp_bin(ID)), (mp_str("xx"), deep)]))
    write("envelope", "truncated", full[:len(full) // 2])
    write("envelope", "huge_array32", envelope([ZK, (mp_str("id"), mp_bin(ID)),
                                                (mp_str("xx"), b"\xdd\xff\xff\xff\xff")]))
    write("envelope", "huge_map32_headers", envelope([ZK, (mp_str("id"), mp_bin(ID)),
                                                      (mp_str("h"), b"\xdf\xff\xff\xff\xff")]))
    write("envelope", "huge_str32", envelope([ZK, (mp_str("id"), mp_bin(ID)),
                                              (mp_str("ct"), b"\xdb\xff\xff\xff\xf0abc")]))
    write("envelope", "version2", envelope([(mp_str("zk"), mp_uint(2)), (mp_str("id"), mp_bin(ID))]))
    write("envelope", "reserved_c1", envelope([ZK, (mp_str("id"), mp_bin(ID)),
                                               (mp_str("xx"), b"\xc1")]))
    write("envelope", "nul_in_string", envelope([ZK, (mp_str("id"), mp_bin(ID)),
                                                 (mp_str("ct"), mp_str(b"te\x00xt"))]))
    write("envelope", "short_id", envelope([ZK, (mp_str("id"), mp_bin(ID[:15]))]))
    write("envelope", "duplicate_key", envelope([ZK, (mp_str("id"), mp_bin(ID)),
                                                 (mp_str("id"), mp_bin(ID))]))
    write("envelope", "trailing_byte", envelope([ZK, (mp_str("id"), mp_bin(ID))]) + b"\x00")
    write("envelope", "negative_attempt", envelope([ZK, (mp_str("id"), mp_bin(ID)),
                                                    (mp_str("at"), b"\xff")]))
    write("envelope", "too_many_headers", envelope([ZK, (mp_str("id"), mp_bin(ID)), (
        mp_str("h"), headers([("k%d" % i, "v") for i in range(65)]))]))
    write("envelope", "long_content_type", envelope([ZK, (mp_str("id"), mp_bin(ID)),
                                                     (mp_str("ct"), mp_str("x" * 4097))]))
    write("envelope", "uuid_text", "018f3a6c-2b40-7a1c-9c3e-5d2f81a04417")
    write("envelope", "uuid_hex", "018F3A6C2B407A1C9C3E5D2F81A04417")
    write("envelope", "empty", b"")


# ---------------------------------------------------------------- specs
def specs():
    cases = {
        "push_bind": "push@tcp://127.0.0.1:*",
        "pull_two": "pull@tcp://*:9701,>tcp://h:9702",
        "sub_inproc": "sub>inproc://feed",
        "router_ipc": "router@ipc:///tmp/zk.sock",
        "queue": "queue>tcp://127.0.0.1:9770/orders",
        "queue_two": "queue>tcp://a:9770,tcp://b:9770/orders.dead",
        "queue_ipc": "queue>ipc:///run/zkq.sock/jobs_1-x",
        "queue_bind": "queue@tcp://h:9770/x",
        "queue_dotdot": "queue>tcp://h:9770/a..b",
        "queue_noname": "queue>tcp://h:9770/",
        "no_endpoint": "push@",
        "no_direction": "push",
        "unknown_type": "bogus@tcp://h:9701",
        "unknown_transport": "push>foo://h:9701",
        "connect_star": "push>tcp://h:*",
        "space": "push@tcp://h :9701",
        "many": "pub@" + ",".join("inproc://e%d" % i for i in range(70)),
        "empty_endpoint": "push@tcp://h:9701,,tcp://g:9702",
        "size_k": "64k",
        "size_mib": "1MiB",
        "size_neg": "-1",
        "empty": "",
    }
    for name, text in cases.items():
        write("spec", name, text)


# ---------------------------------------------------------------- ZKQ/1
def frames(*items):
    out = b""
    for item in items:
        raw = item.encode() if isinstance(item, str) else item
        if len(raw) < 0xFE:
            out += bytes([len(raw)]) + raw
        else:
            out += b"\xfe" + struct.pack("<H", len(raw)) + raw
    return out


END = b"\xff"
MSGID = ID


def zkq():
    write("zkq", "ping", frames("ZKQ1", "PING", "t1"))
    write("zkq", "put", frames("ZKQ1", "PUT", "t1", "orders", MSGID, "hello"))
    write("zkq", "put_get_ack",
          frames("ZKQ1", "PUT", "t1", "orders", MSGID, "hello", "world") + END
          + frames("ZKQ1", "GET", "t2", "orders", "10") + END
          + frames("ZKQ1", "ACK", "t3", "orders", MSGID, "result"))
    write("zkq", "put_get_nack_dead",
          frames("ZKQ1", "PUT", "a", "jobs", MSGID, "x") + END
          + frames("ZKQ1", "GET", "b", "jobs", "1") + END
          + frames("ZKQ1", "NACK", "c", "jobs", MSGID, "dead", "bad input") + END
          + frames("ZKQ1", "LIST", "d", "jobs.dead", "10") + END
          + frames("ZKQ1", "MOVE", "e", "jobs.dead", "jobs", "*"))
    write("zkq", "nack_requeue",
          frames("ZKQ1", "PUT", "a", "q", MSGID, "x") + END
          + frames("ZKQ1", "GET", "b", "q", "5") + END
          + frames("ZKQ1", "NACK", "c", "q", MSGID, "requeue"))
    write("zkq", "status_stats",
          frames("ZKQ1", "STATUS", "s", "orders", MSGID) + END
          + frames("ZKQ1", "STATS", "t", "") + END + frames("ZKQ1", "STATS", "u", "orders"))
    write("zkq", "no_signature", frames("ZKQ2", "PING", "t"))
    write("zkq", "one_frame", frames("ZKQ1"))
    write("zkq", "unknown_command", frames("ZKQ1", "FLY", "t", "x"))
    write("zkq", "long_tag", frames("ZKQ1", "PING", "t" * 65))
    write("zkq", "too_many_frames", frames("ZKQ1", "PUT", "t", "q", MSGID, *(["b"] * 100)))
    write("zkq", "too_big", frames("ZKQ1", "PUT", "t", "q", MSGID, "b" * 5000))
    write("zkq", "bad_window", frames("ZKQ1", "GET", "t", "q", "99999"))
    write("zkq", "bad_name", frames("ZKQ1", "GET", "t", "../etc", "1"))
    write("zkq", "short_msgid", frames("ZKQ1", "ACK", "t", "q", "short"))
    write("zkq", "move_same", frames("ZKQ1", "MOVE", "t", "q", "q", "*"))
    write("zkq", "garbage", bytes(range(256)))
    write("zkq", "empty", b"")


# ---------------------------------------------------------------- journal
def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283


def record(seq, rtype, payload, length=None):
    length = len(payload) if length is None else length
    head = b"\x89ZJ1" + struct.pack("<IQB", length, seq, rtype) + b"\x00\x00\x00"
    crc = crc32c(payload, crc32c(head))
    head += struct.pack("<I", crc)
    head += struct.pack("<I", crc32c(head))
    return head + payload


def qrecord(msgid, time_us, attempts, text=b"", body=()):
    head = msgid + struct.pack("<qI", time_us, attempts) + bytes([len(body), len(text), 0, 0])
    head += b"".join(struct.pack("<I", len(f)) for f in body)
    return head + text + b"".join(body)


FIX, SMALL, TWO, REOPEN, QUEUE = 0x01, 0x02, 0x04, 0x08, 0x10


def journal():
    example = record(1, 1, b"hello") + record(2, 2, b"")
    assert len(example) == 61
    write("journal", "docs_example", bytes([0]) + example)
    write("journal", "docs_example_reopen", bytes([REOPEN]) + example)
    damaged = bytearray(example)
    damaged[30] ^= 0xFF  # payload byte of record 1: bad crc
    write("journal", "bad_payload_crc", bytes([0]) + bytes(damaged))
    write("journal", "bad_crc_fixed", bytes([FIX]) + bytes(damaged))
    write("journal", "torn_tail", bytes([REOPEN]) + example[:50])
    write("journal", "garbage_then_record", bytes([0]) + b"\x00junk\x89ZJ" + record(5, 3, b"abc"))
    write("journal", "huge_length", bytes([FIX]) + record(1, 1, b"x", length=0xFFFFFFFF))
    write("journal", "seq_zero", bytes([0]) + record(0, 1, b"x"))
    write("journal", "seq_backwards", bytes([0]) + record(9, 1, b"a") + record(3, 1, b"b"))
    write("journal", "seq_max", bytes([REOPEN]) + record(2**64 - 2, 1, b"a"))
    write("journal", "small_max", bytes([SMALL]) + record(1, 1, b"y" * 300) + record(2, 1, b"z"))
    split = len(record(1, 1, b"first"))
    two = record(1, 1, b"first") + record(2, 1, b"second")
    write("journal", "two_segments", bytes([TWO]) + struct.pack("<H", split) + two)
    write("journal", "two_segments_cut", bytes([TWO | FIX]) + struct.pack("<H", split + 7) + two)
    put = record(1, 1, qrecord(ID, 1715000000000000, 0, body=(b"hello", b"world")))
    ack = record(2, 2, qrecord(ID, 1715000000001000, 1, body=(b"result",)))
    put2 = record(3, 1, qrecord(TRACE, 1715000000000000, 0, body=(b"x",)))
    release = record(4, 3, qrecord(TRACE, 1715000000002000, 2))
    dead = record(5, 4, qrecord(TRACE, 1715000000003000, 3, text=b"lease expired"))
    moved = record(6, 5, qrecord(ID, 1715000000004000, 0, text=b"other"))
    write("journal", "queue_records", bytes([QUEUE]) + put + ack + put2 + release + dead + moved)
    write("journal", "queue_records_reopen", bytes([QUEUE | REOPEN]) + put + put2 + release)
    bad_queue = record(1, 1, qrecord(ID, 0, 0, body=()))  # a put without a body
    write("journal", "queue_bad_record", bytes([QUEUE]) + bad_queue + put)
    write("journal", "empty", bytes([0]))
    write("journal", "empty_queue", bytes([QUEUE | TWO]) + b"\x00\x00")


if __name__ == "__main__":
    envelopes()
    specs()
    zkq()
    journal()
