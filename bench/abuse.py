#!/usr/bin/env python3
"""What hostile clients cost portico (the hardening probes), measured on
loopback against the real binary:

  chunks      CPU of a 1 MB upload sent in 1-byte chunks (HTTP/1.1) and in
              1-byte DATA frames (HTTP/2), as a ratio to the same body sent
              with Content-Length in large writes. Target: at most 10x (the
              1-byte chunked body is about 6x the bytes on the wire).
  zerowindow  20 HTTP/2 connections that open no window, each asking for 100
              responses of 4 MB: portico's RSS growth and descriptors held.
  slowbody    how long a connection that sends its body one byte every 2 s
              survives (timeouts at their defaults).

Usage: bench/abuse.py build/portico [--only chunks,zerowindow,slowbody]
"""
import argparse
import os
import socket
import ssl
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402


def cpu_seconds(pid):
    """CPU time of every thread of `pid` from schedstat (nanoseconds):
    /proc/PID/stat counts in 10 ms ticks, too coarse for a 1 MB upload."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9

BODY = 1000 * 1000


def sink(c):
    """Reads each request on socket `c` to its end (Content-Length or the
    last chunk), parsing no more than it must, and answers 200."""
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(1 << 20)
            if not d:
                return
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        lower = head.lower()
        if b"content-length:" in lower:
            n = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
            while len(rest) < n:
                d = c.recv(1 << 20)
                if not d:
                    return
                rest += d
            buf = rest[n:]
        else:
            while not rest.endswith(b"0\r\n\r\n"):
                d = c.recv(1 << 20)
                if not d:
                    return
                rest += d
            buf = b""
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def tls(port, alpn):
    ctx = ssl._create_unverified_context()
    ctx.set_alpn_protocols([alpn])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="a.test")
    return s


def read_status(s):
    s.settimeout(120)
    return harness.read_head(s).split(b"\r\n", 1)[0]


def upload_h1(port, chunked):
    s = tls(port, "http/1.1")
    if chunked:
        head = b"POST /up HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = b"1\r\nx\r\n" * BODY + b"0\r\n\r\n"
    else:
        head = b"POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: %d\r\n\r\n" % BODY
        body = b"x" * BODY
    s.sendall(head + body)
    status = read_status(s)
    s.close()
    assert status.startswith(b"HTTP/1.1 200"), status


def upload_h2(port, one_byte):
    import h2.config
    import h2.connection
    import h2.events
    s = tls(port, "h2")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
    conn.increment_flow_control_window(1 << 30)
    headers = [(":method", "POST"), (":scheme", "https"), (":authority", "a.test"), (":path", "/up")]
    if not one_byte:
        headers.append(("content-length", str(BODY)))
    conn.send_headers(1, headers)
    s.sendall(conn.data_to_send())
    sent, done = 0, False
    s.settimeout(120)
    while not done:
        # Send as much as the window allows, then read WINDOW_UPDATEs.
        while sent < BODY:
            room = min(conn.local_flow_control_window(1), conn.max_outbound_frame_size)
            if room <= 0:
                break
            n = 1 if one_byte else min(room, BODY - sent)
            if one_byte:
                for _ in range(min(room, BODY - sent, 4096)):
                    conn.send_data(1, b"x")
                    sent += 1
            else:
                conn.send_data(1, b"x" * n)
                sent += n
            s.sendall(conn.data_to_send())
        if sent >= BODY and not conn.streams[1].closed and conn.streams[1].state_machine.state.name != "HALF_CLOSED_LOCAL":
            conn.end_stream(1)
            s.sendall(conn.data_to_send())
        data = s.recv(65536)
        if not data:
            raise AssertionError("closed")
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                assert dict(ev.headers)[b":status"] == b"200", ev.headers
            if isinstance(ev, h2.events.StreamEnded):
                done = True
        s.sendall(conn.data_to_send())
    s.close()


def cost(pid, fn, reps):
    c0 = cpu_seconds(pid)
    for _ in range(reps):
        fn()
    return (cpu_seconds(pid) - c0) / reps


def chunks(portico_bin, tmp):
    srv = harness.RawBackend(sink, threaded=True)
    addr = srv.address
    certs = harness.Certs(os.path.join(tmp, "certs"))
    cert_a = certs.leaf("a", ["a.test"])
    harness.PORTICO = portico_bin
    p = harness.Portico(tmp, [harness.site(["a.test"], addr, cert_a)], http=False, workers=1,
                        level="warn")
    try:
        pid = p.pid
        rows = []
        for name, big, small in (
                ("HTTP/1.1", lambda: upload_h1(p.https_port, False), lambda: upload_h1(p.https_port, True)),
                ("HTTP/2", lambda: upload_h2(p.https_port, False), lambda: upload_h2(p.https_port, True))):
            big()
            small()  # warm-up
            cl = cost(pid, big, 5)
            one = cost(pid, small, 3)
            rows.append((name, cl, one, one / cl if cl else float("inf")))
        print("1 MB upload, portico CPU seconds (1 worker):")
        print(f"  {'protocol':9} {'Content-Length':>15} {'1-byte pieces':>14} {'ratio':>7}")
        for name, cl, one, ratio in rows:
            print(f"  {name:9} {cl:15.4f} {one:14.4f} {ratio:7.1f}x")
        return rows
    finally:
        p.stop()
        srv.close()


def start(portico_bin, tmp, backend_addr, extra=""):
    certs = harness.Certs(os.path.join(tmp, "certs"))
    cert_a = certs.leaf("a", ["a.test"])
    harness.PORTICO = portico_bin
    return harness.Portico(tmp, [harness.site(["a.test"], backend_addr, cert_a)], http=False, workers=1,
                           level="warn", extra=extra)


def zerowindow(portico_bin, tmp):
    import h2.config
    import h2.connection
    import h2.settings
    backend = harness.Backend(tmp)
    p = start(portico_bin, tmp, backend.address)
    socks = []
    try:
        rss0, fds0 = harness_rss(p.pid), len(os.listdir(f"/proc/{p.pid}/fd"))
        for _ in range(20):
            s = tls(p.https_port, "h2")
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
            for i in range(100):
                conn.send_headers(1 + 2 * i, [(":method", "GET"), (":scheme", "https"),
                                              (":authority", "a.test"), (":path", "/download?size=4000000")],
                                  end_stream=True)
            s.sendall(conn.data_to_send())
            socks.append(s)
        seen = []
        harness.wait_for(lambda: seen.append((harness_rss(p.pid), len(os.listdir(f"/proc/{p.pid}/fd")))) or
                         (len(seen) > 30 and seen[-1] == seen[-30]), timeout=60, interval=0.1,
                         what="steady RSS and descriptors")
        rss, fds = seen[-1]
        print(f"20 zero-window HTTP/2 connections x 100 streams of 4 MB: RSS +{(rss - rss0) / 1024:.1f} MiB, "
              f"descriptors +{fds - fds0}")
    finally:
        for s in socks:
            s.close()
        p.stop()
        backend.stop()


def harness_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slowbody(portico_bin, tmp):
    backend = harness.Backend(tmp)
    p = start(portico_bin, tmp, backend.address)
    try:
        s = tls(p.https_port, "http/1.1")
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1000000\r\n\r\n")
        t0 = time.monotonic()
        limit = 300
        while time.monotonic() - t0 < limit:
            try:
                s.sendall(b"x")
            except OSError:
                break
            time.sleep(2)  # the attack's pace
        lasted = time.monotonic() - t0
        print(f"slow body (1 byte / 2 s): cut after {lasted:.0f} s" if lasted < limit
              else f"slow body (1 byte / 2 s): still open after {limit} s")
    finally:
        p.stop()
        backend.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("portico")
    ap.add_argument("--only", default="chunks,zerowindow,slowbody")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, fn in (("chunks", chunks), ("zerowindow", zerowindow), ("slowbody", slowbody)):
            if name in args.only.split(","):
                d = os.path.join(tmp, name)
                os.makedirs(d)
                fn(os.path.abspath(args.portico), d)


if __name__ == "__main__":
    main()
