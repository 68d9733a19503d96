"""431 for oversized heads, the request-header (slowloris) and keep-alive
timeouts, and the handshake timeout."""
import socket
import time

import pytest

from harness import read_until_close, site, tls_connect


@pytest.fixture
def proxy(start_portico, certs, backend):
    return start_portico([site(["a.test"], backend, certs.a)],
                         extra="timeouts: {request_header: 1s, keepalive: 1s, handshake: 1s}\n"
                               "limits: {max_header_bytes: 8k, max_headers: 20}")


def test_header_block_over_limit_is_431(proxy, backend):
    with tls_connect(proxy.https_port, "a.test") as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\nCookie: " + b"x" * 65536 + b"\r\n\r\n")
        data, closed = read_until_close(s)
    assert data.startswith(b"HTTP/1.1 431") and closed
    assert backend.requests() == []


def test_too_many_fields_is_431(proxy, backend):
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(30))
    with tls_connect(proxy.https_port, "a.test") as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n" + fields + b"\r\n")
        data, closed = read_until_close(s)
    assert data.startswith(b"HTTP/1.1 431") and closed


def test_slowloris_is_cut_at_the_header_timeout(proxy):
    with tls_connect(proxy.https_port, "a.test") as s:
        t0 = time.monotonic()
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n")
        closed_at = None
        # Trickle a byte every 300 ms: each byte must not extend the deadline.
        s.settimeout(0.3)
        while time.monotonic() - t0 < 8:
            try:
                s.sendall(b"X")
            except OSError:
                closed_at = time.monotonic()
                break
            try:
                chunk = s.recv(4096)
                if chunk == b"" or b"408" in chunk:
                    closed_at = time.monotonic()
                    break
            except (socket.timeout, TimeoutError):
                pass
            except OSError:
                closed_at = time.monotonic()
                break
    assert closed_at is not None, "slow request head was never cut"
    assert closed_at - t0 < 3.5


def test_idle_keepalive_connection_is_closed(proxy):
    with tls_connect(proxy.https_port, "a.test") as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n")
        t0 = time.monotonic()
        data, closed = read_until_close(s, timeout=6)
    assert data.startswith(b"HTTP/1.1 200")
    assert closed and time.monotonic() - t0 < 4


def test_silent_tcp_connection_is_closed_at_handshake_timeout(proxy):
    s = socket.create_connection(("127.0.0.1", proxy.https_port))
    t0 = time.monotonic()
    s.settimeout(6)
    assert s.recv(100) == b""
    assert time.monotonic() - t0 < 4
    s.close()


def test_accepts_pause_at_max_connections(start_portico, certs, backend):
    """Over limits.max_connections the listener stops accepting: a new client
    waits in the kernel's backlog (no error) until a slot frees."""
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1, extra="limits: {max_connections: 2}")
    held = [tls_connect(p.https_port, "a.test") for _ in range(2)]
    waiting = socket.create_connection(("127.0.0.1", p.https_port), timeout=10)
    import ssl
    ctx = ssl._create_unverified_context()
    waiting.settimeout(1.0)
    tls = ctx.wrap_socket(waiting, server_hostname="a.test", do_handshake_on_connect=False)
    with pytest.raises((socket.timeout, TimeoutError)):
        tls.do_handshake()  # nobody accepted it yet
    held[0].close()
    tls.settimeout(10)
    tls.do_handshake()  # accepted once a slot freed
    tls.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    data, closed = read_until_close(tls)
    assert data.startswith(b"HTTP/1.1 200")
    held[1].close()
