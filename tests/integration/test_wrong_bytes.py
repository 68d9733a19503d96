"""Wrong bytes and refused requests: each case a hostile probe found, where
portico put bytes on a client connection that the backend never sent, ran
a request the client was told was refused, or lost a field it must keep.
Where the fault is the backend's, a raw-socket backend sends the exact
bytes."""
import json
import re
import socket

import h2.events

from harness import RawBackend, read_head, read_until_close, site, tls_connect, wait_for
from test_http2 import h2_client, pump


def raw_backend(answer_for):
    """A backend on a raw socket: for each connection it reads one request
    head and sends answer_for(request_line) (bytes), then closes."""
    return RawBackend(lambda c: c.sendall(answer_for(read_head(c).split(b"\r\n", 1)[0])))


def path_of(line):
    return line.split(b" ")[1].decode()


def recv_until(s, marker, timeout=10):
    """Reads from `s` until `marker` is in what was read; returns it all."""
    s.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def echo_headers(text):
    body = text.split(b"\r\n\r\n", 1)[1]
    return {k.lower(): v for k, v in json.loads(body)["headers"]}


# 1 ---------------------------------------------------------------------------

def test_request_refused_for_its_framing_never_reaches_the_backend(start_portico, certs, backend):
    """`Transfer-Encoding: chunked<TAB>` is not "chunked" to llhttp, which
    refuses the request after the head; portico must not have started the
    exchange by then (nginx answers 501 and forwards nothing)."""
    p = start_portico([site(["a.test"], backend, certs.a)])
    for te in (b"chunked\t", b"chunked \t", b"gzip"):
        s = tls_connect(p.https_port, "a.test")
        s.sendall(b"POST /te HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: " + te +
                  b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        data, closed = read_until_close(s)
        s.close()
        assert re.match(rb"HTTP/1\.1 (400|501) ", data), (te, data[:60])
        assert closed, te
    # A request after them is seen by the backend; the refused ones never were.
    assert p.curl("/echo?marker", name="a.test").returncode == 0
    wait_for(lambda: "GET /echo?marker" in backend.requests(), what="marker request")
    assert not [r for r in backend.requests() if "/te" in r], backend.requests()


# 2 ---------------------------------------------------------------------------

def test_close_delimited_response_gets_one_chunk_terminator(start_portico, certs):
    """A response ended by the upstream closing (no Content-Length, no
    chunked, or `Transfer-Encoding: gzip`) is re-chunked for the client with
    exactly one last-chunk; a second one would be read as the start of the
    next response on a kept-alive connection."""
    answers = {
        "/eof": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello",
        "/gzip": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello",
    }
    srv = raw_backend(lambda line: answers.get(path_of(line), b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    try:
        p = start_portico([site(["a.test"], srv.address, certs.a)])
        for path in answers:
            s = tls_connect(p.https_port, "a.test")
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode())
            first = recv_until(s, b"0\r\n\r\n")
            assert first.endswith(b"5\r\nhello\r\n0\r\n\r\n"), (path, first)
            s.sendall(b"GET /next HTTP/1.1\r\nHost: a.test\r\n\r\n")
            second = recv_until(s, b"\r\n\r\nok")
            s.close()
            assert second.startswith(b"HTTP/1.1 200 "), (path, second[:40])
    finally:
        srv.close()


# 3, 4 ------------------------------------------------------------------------

FAKE = b"HTTP/1.1 200 OK\r\nX-Injected: 1\r\nContent-Length: 4\r\n\r\nfake"


def test_interim_response_with_a_body_or_bad_status_is_502(start_portico, certs):
    """A 1xx has no body (RFC 9110 §15.2): one that declares framing is a
    broken upstream, never a way to smuggle a response to the client.
    Statuses outside 100-599 are 502 too; an interim without framing is
    skipped and the final response forwarded."""
    answers = {
        "/150": b"HTTP/1.1 150 X\r\nContent-Length: %d\r\n\r\n" % len(FAKE) + FAKE +
                b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal",
        "/103cl": b"HTTP/1.1 103 Early Hints\r\nContent-Length: %d\r\n\r\n" % len(FAKE) + FAKE +
                  b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal",
        "/199te": b"HTTP/1.1 199 X\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfake\r\n0\r\n\r\n"
                  b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal",
        "/000": b"HTTP/1.1 000 Zero\r\nContent-Length: 4\r\n\r\nzero",
        "/600": b"HTTP/1.1 600 Big\r\nContent-Length: 4\r\n\r\nbig!",
        "/103ok": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                  b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal",
    }
    srv = raw_backend(lambda line: answers[path_of(line)])
    try:
        p = start_portico([site(["a.test"], srv.address, certs.a)])
        for http2 in (False, True):
            for path in answers:
                out = p.curl(path, "-i", name="a.test", http2=http2).stdout
                want = b"200" if path == "/103ok" else b"502"
                assert re.match(rb"HTTP/(1\.1|2) " + want, out), (path, http2, out[:80])
                assert b"x-injected" not in out.lower() and b"fake" not in out, (path, http2)
                if path == "/103ok":
                    assert out.endswith(b"real"), out
    finally:
        srv.close()


# 5 ---------------------------------------------------------------------------

def test_host_always_reaches_the_backend(start_portico, certs, backend):
    """Host is never removed (not by `Connection: host`), HTTP/1.0 without
    Host gets the routing name, and an HTTP/2 request with `host` and no
    :authority is routed by it and forwarded with one Host."""
    p = start_portico([site(["a.test"], backend, certs.a)])
    out = p.curl("/echo", "-i", "-H", "Connection: host, x-drop", "-H", "X-Drop: 1", name="a.test").stdout
    h = echo_headers(out)
    assert h.get("host", "").startswith("a.test") and "x-drop" not in h, h

    s = tls_connect(p.https_port, "a.test")
    s.sendall(b"GET /echo HTTP/1.0\r\n\r\n")
    data, _ = read_until_close(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:60]
    assert echo_headers(data).get("host") == "a.test"

    s, conn = h2_client(p.https_port, validate=False)
    conn.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":path", "/echo"),
                          ("host", "a.test")], end_stream=True)
    s.sendall(conn.data_to_send())
    got = {}

    def on(ev):
        if isinstance(ev, h2.events.ResponseReceived):
            got["status"] = dict(ev.headers)[":status"]
        elif isinstance(ev, h2.events.DataReceived):
            got["body"] = got.get("body", b"") + ev.data
            conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            return True
        return None
    pump(s, conn, on)
    s.close()
    assert got["status"] == "200", got
    hosts = [v for k, v in json.loads(got["body"])["headers"] if k.lower() == "host"]
    assert hosts == ["a.test"], hosts


def test_request_trailers_do_not_cut_the_request(start_portico, certs, backend):
    """A chunked request with a trailer section is answered normally (its
    trailers are dropped), not 431 after the body went upstream."""
    p = start_portico([site(["a.test"], backend, certs.a)])
    s = tls_connect(p.https_port, "a.test")
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n")
    head = recv_until(s, b"\r\n\r\n")
    s.close()
    assert head.startswith(b"HTTP/1.1 200"), head[:60]


def test_upstream_trailer_content_length_is_dropped_on_http2(start_portico, certs):
    """Trailers may not carry framing (RFC 9110 §6.5.1): an upstream trailer
    `Content-Length` is filtered on HTTP/2 as on HTTP/1.1, and the stream
    ends cleanly with the trailers that are allowed."""
    answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
              b"5\r\nhello\r\n0\r\nContent-Length: 5\r\nX-Sum: abc\r\n\r\n")
    srv = raw_backend(lambda line: answer)
    try:
        p = start_portico([site(["a.test"], srv.address, certs.a)])
        for http2 in (True, False):
            r = p.curl("/t", "-i", "--raw", name="a.test", http2=http2, check=False)
            assert r.returncode == 0, (http2, r.stderr)
            assert b"hello" in r.stdout and b"x-sum: abc" in r.stdout.lower(), (http2, r.stdout)
            tail = r.stdout.split(b"hello", 1)[1].lower()
            assert b"content-length" not in tail, (http2, r.stdout)
    finally:
        srv.close()


# 6 ---------------------------------------------------------------------------

def test_header_with_an_empty_value_is_accepted(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)])
    for http2 in (False, True):
        out = p.curl("/echo", "-i", "-H", "X-Empty;", "-H", "X-After: 1", name="a.test", http2=http2).stdout
        assert re.match(rb"HTTP/(1\.1|2) 200", out), (http2, out[:60])
        h = echo_headers(out)
        assert h.get("x-empty") == "" and h.get("x-after") == "1", (http2, h)
    s = tls_connect(p.https_port, "a.test")
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-Empty:\r\nX-Sp: \r\nConnection: close\r\n\r\n")
    data, _ = read_until_close(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:60]


# 7 ---------------------------------------------------------------------------

def test_unparseable_request_logs_only_its_own_bytes(start_portico, certs, backend):
    """A 400 for a request portico could not parse must not log the path of
    an earlier request that used the same (cached) head storage."""
    p = start_portico([site(["a.test"], backend, certs.a, redirect_http="false")], workers=1)
    for _ in range(3):
        assert p.curl("/secret-earlier-path", name="a.test").returncode == 0
        assert p.curl("/secret-earlier-path", name="a.test", scheme="http").returncode == 0
    for scheme in ("https", "http"):
        for bad in (b"GET /x\x01y HTTP/1.1\r\n\r\n", b"\x01\x02\x03\r\n\r\n", b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n"):
            if scheme == "https":
                s = tls_connect(p.https_port, "a.test")
            else:
                s = socket.create_connection(("127.0.0.1", p.http_port), timeout=10)
            s.sendall(bad)
            data, _ = read_until_close(s)
            s.close()
            assert data.startswith(b"HTTP/1.1 400"), (scheme, bad, data[:40])
    wait_for(lambda: p.access_log_text().count("status=400") >= 6, what="six 400 lines")
    lines = [l for l in p.access_log_text().splitlines() if "status=400" in l]
    assert len(lines) == 6, lines
    for l in lines:
        assert "secret" not in l, l


def test_request_to_a_down_upstream_is_logged_once(start_portico, certs):
    from harness import free_port
    p = start_portico([site(["a.test"], f"127.0.0.1:{free_port()}", certs.a)])
    for i in range(3):
        r = p.curl(f"/down{i}", "-o", "/dev/null", "-w", "%{http_code}", name="a.test")
        assert r.stdout == b"502"
    assert p.curl("/ok", name="a.test", check=False) is not None
    wait_for(lambda: "/ok" in p.access_log_text(), what="the last line")
    for i in range(3):
        got = [l for l in p.access_log_text().splitlines() if f"/down{i}" in l]
        assert len(got) == 1, got


# 8 ---------------------------------------------------------------------------

DATE = re.compile(rb"\r\ndate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n", re.I)


def test_every_response_has_a_date(start_portico, certs):
    """RFC 9110 §6.6.1: an origin with a clock sends Date; portico adds it
    where the backend did not, and on its own responses."""
    srv = raw_backend(lambda line: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    try:
        from harness import free_port
        p = start_portico([site(["a.test"], srv.address, certs.a),
                           site(["b.test"], f"127.0.0.1:{free_port()}", certs.b)])
        for http2 in (False, True):
            out = p.curl("/nodate", "-i", name="a.test", http2=http2).stdout
            assert DATE.search(out), (http2, out[:200])
            assert len(re.findall(rb"\r\ndate:", out, re.I)) == 1, out[:300]
        out = p.curl("/x", "-i", name="a.test", scheme="http").stdout      # 301
        assert out.startswith(b"HTTP/1.1 301") and DATE.search(out), out[:200]
        out = p.curl("/x", "-i", "-H", "Host: b.test", name="a.test").stdout  # 421
        assert out.startswith(b"HTTP/1.1 421") and DATE.search(out), out[:200]
        out = p.curl("/x", "-i", name="b.test").stdout  # 502
        assert out.startswith(b"HTTP/1.1 502") and DATE.search(out), out[:200]
        s = tls_connect(p.https_port, "a.test")
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\nBad Name: v\r\n\r\n")  # 400
        data, _ = read_until_close(s)
        s.close()
        assert data.startswith(b"HTTP/1.1 400") and DATE.search(data), data[:200]
    finally:
        srv.close()


def test_forwarded_host_keeps_the_port(start_portico, certs, backend):
    """RFC 7239 §5.3: host= is the Host header as received, port included."""
    p = start_portico([site(["a.test"], backend, certs.a)])
    for http2 in (False, True):
        h = echo_headers(p.curl("/echo", "-i", name="a.test", http2=http2).stdout)
        want = f"a.test:{p.https_port}"
        assert h["host"] == want and h["x-forwarded-host"] == want, (http2, h)
        assert f'host="{want}"' in h["forwarded"], (http2, h["forwarded"])
    h = echo_headers(p.curl("/echo", "-i", "-H", "Host: a.test", name="a.test").stdout)
    assert h["x-forwarded-host"] == "a.test" and "host=a.test" in h["forwarded"], h


# 15b --------------------------------------------------------------------------

def test_chunk_extension_limit_holds_for_the_first_chunk(start_portico, certs, backend):
    """docs/config.md: chunk extensions are limited to 256 bytes per chunk,
    the first chunk included (its extension used to count against the
    head's unused budget)."""
    p = start_portico([site(["a.test"], backend, certs.a)])
    for first in (True, False):
        s = tls_connect(p.https_port, "a.test")
        ext = b";x=" + b"a" * 300
        body = (b"5" + ext + b"\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n") if first else \
               (b"5\r\nhello\r\n5" + ext + b"\r\nworld\r\n0\r\n\r\n")
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        data, closed = read_until_close(s)
        s.close()
        assert data.startswith(b"HTTP/1.1 400"), (first, data[:60])
        assert closed
    s = tls_connect(p.https_port, "a.test")
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
              b"5;x=" + b"a" * 200 + b"\r\nhello\r\n0\r\n\r\n")
    data, _ = read_until_close(s)
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:60]


# 9 ---------------------------------------------------------------------------

def count_chunks(c):
    """Reads one chunked request body from socket `c` and answers with the
    number of chunks it arrived in and their total length."""
    with c.makefile("rb") as f:
        while f.readline() not in (b"\r\n", b""):
            pass
        chunks, total = 0, 0
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                f.readline()
                break
            total += len(f.read(size))
            f.readline()
            chunks += 1
    body = b"%d %d" % (chunks, total)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)


def test_one_byte_pieces_are_coalesced_upstream(start_portico, certs):
    """10,000 one-byte chunks (HTTP/1.1) or DATA frames (HTTP/2) sent in one
    go reach the backend in a few large chunks: each piece used to cost three
    upstream writes, a TCP segment each (bench/abuse.py measures the CPU)."""
    srv = RawBackend(count_chunks)
    try:
        p = start_portico([site(["a.test"], srv.address, certs.a)], workers=1)
        n = 10000
        s = tls_connect(p.https_port, "a.test")
        s.sendall(b"POST /up HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n" + b"1\r\nx\r\n" * n + b"0\r\n\r\n")
        data, _ = read_until_close(s)
        s.close()
        chunks, total = map(int, data.split(b"\r\n\r\n", 1)[1].split())
        assert total == n and chunks <= 20, (chunks, total)

        s, conn = h2_client(p.https_port)
        conn.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":authority", "a.test"),
                              (":path", "/up")])
        for _ in range(n):
            conn.send_data(1, b"x")
        conn.end_stream(1)
        s.sendall(conn.data_to_send())
        got = {}

        def on(ev):
            if isinstance(ev, h2.events.DataReceived):
                got["body"] = got.get("body", b"") + ev.data
            elif isinstance(ev, h2.events.StreamEnded):
                return True
            return None
        pump(s, conn, on)
        s.close()
        chunks, total = map(int, got["body"].split())
        assert total == n and chunks <= 40, (chunks, total)
    finally:
        srv.close()
