"""Keep-alive as a real client sees it: curl fetching several URLs in one run
uses one connection, and the per-worker upstream pool serves every request,
from both client connections, over one upstream connection (workers: 1 makes
the pool deterministic). Checked for an HTTP/1.1 and an HTTP/2 front."""
import json
import time

import pytest

from harness import site, wait_for

RUNS, PER_RUN = 2, 3


@pytest.mark.parametrize("version", [
    "1.1",
    # HTTP/2 once ended each stream with its upstream connection closed: the
    # stream closed inside response_end and took the exchange with it.
    "2",
])
def test_curl_reuses_client_and_upstream_connections(start_portico, certs, backend, version):
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1)
    seen = []
    for _ in range(RUNS):
        urls = [f"https://a.test:{p.https_port}/echo"] * (PER_RUN - 1)
        r = p.curl("/echo", *urls, "-w", "\n%{http_code} %{http_version} %{num_connects}\n",
                   name="a.test", http2=(version == "2"))
        lines = r.stdout.decode().splitlines()
        bodies = [json.loads(line) for line in lines if line.startswith("{")]
        stats = [line.split() for line in lines if line and not line.startswith("{")]
        assert [s[:2] for s in stats] == [["200", version]] * PER_RUN, r.stdout
        # curl opened one connection and sent the other requests over it.
        assert [int(s[2]) for s in stats] == [1] + [0] * (PER_RUN - 1), stats
        seen += bodies
    assert len(seen) == RUNS * PER_RUN
    upstream = [(b["conn_id"], b["conn_requests"]) for b in seen]
    # One pooled upstream connection served all requests, in order.
    assert upstream == [(seen[0]["conn_id"], n) for n in range(1, RUNS * PER_RUN + 1)], upstream
    assert len(backend.requests()) == RUNS * PER_RUN
    # Each request is logged once, with the status the client got (an HTTP/2
    # stream that closed during the response once logged as 499).
    def echo_lines():
        lines = [l for l in p.access_log_text().splitlines() if "/echo" in l]
        return lines if len(lines) >= RUNS * PER_RUN else None
    log = wait_for(echo_lines, what="access log lines")
    assert len(log) == RUNS * PER_RUN and all("status=200" in l for l in log), log


def parse_responses(buf):
    """Splits complete HTTP/1.1 responses with Content-Length bodies off
    `buf`; returns (bodies, rest)."""
    bodies = []
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            return bodies, buf
        head = buf[:head_end].decode("latin-1")
        length = int(next(l.split(":", 1)[1] for l in head.split("\r\n")
                          if l.lower().startswith("content-length:")))
        if len(buf) < head_end + 4 + length:
            return bodies, buf
        assert head.startswith("HTTP/1.1 200"), head
        bodies.append(buf[head_end + 4:head_end + 4 + length])
        buf = buf[head_end + 4 + length:]


def pipeline(sock, data, count, timeout=30):
    """Sends `data` while reading `count` responses, from one thread (an SSL
    object must not be written and read from two threads at once)."""
    import select
    import ssl
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    buf, bodies, sent = b"", [], 0
    while len(bodies) < count:
        assert time.monotonic() < deadline, f"{len(bodies)} responses, {sent} bytes sent"
        select.select([sock], [sock] if sent < len(data) else [], [], 0.2)
        if sent < len(data):
            try:
                sent += sock.send(data[sent:sent + 16384])
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                pass
        try:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(bodies)} responses"
            buf += chunk
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        got, buf = parse_responses(buf)
        bodies += got
    return bodies


@pytest.mark.parametrize("tls", [True, False])
def test_pipelined_requests_answered_in_order(start_portico, certs, backend, tls):
    """RFC 9112 §9.3.2: 300 requests sent in one go (about 400 KB, several
    read slabs, so portico must stop reading rather than buffer without bound
    or close) are all answered, in order, on the one connection."""
    import socket
    from harness import tls_connect
    p = start_portico([site(["a.test"], backend, certs.a, redirect_http=False)], workers=1)
    n, pad = 300, "x" * 1200
    reqs = b"".join(f"GET /echo?i={i} HTTP/1.1\r\nHost: a.test\r\nX-Pad: {pad}\r\n\r\n".encode()
                    for i in range(n))
    sock = (tls_connect(p.https_port, "a.test") if tls
            else socket.create_connection(("127.0.0.1", p.http_port)))
    bodies = pipeline(sock, reqs, n)
    assert [json.loads(b)["path"] for b in bodies] == [f"/echo?i={i}" for i in range(n)]
    sock.close()
