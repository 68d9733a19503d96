"""200 MB both ways through a small fixed buffer, checked by SHA-256, with
portico's peak RSS read from /proc (scaled down under the sanitizers)."""
import hashlib
import random
import socket
import ssl

import pytest

from harness import SANITIZED, read_response, site

SIZE = (20 if SANITIZED else 200) * 1000 * 1000
# Peak RSS bound: the buffers are 64 KiB per direction; a few MiB of code and
# TLS state. ASan's shadow memory makes absolute numbers meaningless there.
RSS_LIMIT_KIB = 400 * 1024 if SANITIZED else 64 * 1024
BLOCK = random.Random(42).randbytes(65536)


def expected_sha(size):
    h = hashlib.sha256()
    full, rest = divmod(size, len(BLOCK))
    for _ in range(full):
        h.update(BLOCK)
    h.update(BLOCK[:rest])
    return h.hexdigest()


@pytest.fixture
def proxy(start_portico, certs, backend):
    return start_portico([site(["a.test"], backend, certs.a)], workers=1)


@pytest.mark.parametrize("chunked", ["0", "1"])
def test_download(proxy, chunked):
    r = proxy.curl(f"/download?size={SIZE}&chunked={chunked}", name="a.test", timeout=120)
    assert len(r.stdout) == SIZE
    assert hashlib.sha256(r.stdout).hexdigest() == expected_sha(SIZE)
    assert proxy.rss_peak_kib() < RSS_LIMIT_KIB


def test_chunked_upload(proxy, certs):
    ctx = ssl.create_default_context(cafile=certs.ca)
    raw = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=60)
    s = ctx.wrap_socket(raw, server_hostname="a.test")
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n")
    h = hashlib.sha256()
    sent = 0
    while sent < SIZE:
        piece = BLOCK[: min(len(BLOCK), SIZE - sent)]
        s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        h.update(piece)
        sent += len(piece)
    s.sendall(b"0\r\n\r\n")
    head, body = read_response(s, timeout=120)
    s.close()
    assert head.startswith("HTTP/1.1 200"), head
    import json
    got = json.loads(body)
    assert got == {"sha256": h.hexdigest(), "length": SIZE}
    assert proxy.rss_peak_kib() < RSS_LIMIT_KIB


def test_content_length_upload_with_curl(proxy, tmp_path):
    path = tmp_path / "body.bin"
    size = SIZE // 10
    with open(path, "wb") as f:
        for i in range(0, size, len(BLOCK)):
            f.write(BLOCK[: min(len(BLOCK), size - i)])
    r = proxy.curl("/upload", "--data-binary", f"@{path}", name="a.test", timeout=120)
    import json
    got = json.loads(r.stdout)
    assert got["length"] == size
    assert got["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "http2"])
def test_response_framed_by_close(proxy, http2):
    """A backend that ends its body by closing the connection (no
    Content-Length, RFC 9112 §6.3 rule 8) gets its whole body through; the
    front then frames it itself. Over HTTP/2 the end of such a response once
    closed the stream under the exchange (use-after-free, ASan run)."""
    size = 3 * 1000 * 1000
    r = proxy.curl(f"/download?size={size}&eof=1", name="a.test", http2=http2)
    assert len(r.stdout) == size
    assert hashlib.sha256(r.stdout).hexdigest() == expected_sha(size)


def test_slow_reader_does_not_time_out_the_upstream(start_portico, certs, backend):
    """A client that stops reading holds the upstream back (backpressure).
    That wait is the client's, not the backend's: it must neither trip
    timeouts.upstream_read (504, backend marked down) nor lose bytes. Here
    upstream_read is 1 s and the client reads nothing for 3 s."""
    import time
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1,
                      extra="timeouts: {upstream_read: 1s, send: 30s}\n")
    size = 20 * 1000 * 1000
    s = socket.create_connection(("127.0.0.1", p.https_port))
    ctx = ssl._create_unverified_context()
    ctx.set_alpn_protocols(["http/1.1"])
    s = ctx.wrap_socket(s, server_hostname="a.test")
    s.sendall(f"GET /download?size={size} HTTP/1.1\r\nHost: a.test\r\n\r\n".encode())
    time.sleep(3)  # the point of the test: a client that does not read
    head, body = read_response(s, timeout=30)
    assert head.startswith("HTTP/1.1 200"), head[:100]
    assert len(body) == size and hashlib.sha256(body).hexdigest() == expected_sha(size)
    assert "timed out" not in p.log_text() and "marked down" not in p.log_text()
