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


def trickle(s, data, every, until):
    """Sends `data` one byte at a time every `every` seconds until the peer
    closes or `until` seconds pass; returns the seconds it lasted."""
    t0 = time.monotonic()
    for b in data:
        try:
            s.sendall(bytes([b]))
        except OSError:
            break
        if time.monotonic() - t0 > until:
            break
        time.sleep(every)  # the attack's pace, not a wait for readiness
    return time.monotonic() - t0


@pytest.mark.parametrize("what", ["slow body", "slow read"])
def test_min_rate_cuts_trickling_clients(start_portico, certs, backend, what):
    """A client that moves one byte at a time (slowhttptest -B, -X) resets
    the body and send timers with every byte; timeouts.min_rate cuts it
    after about one window, with the backend connection it held."""
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1,
                      extra="timeouts: {min_rate: 2000, min_rate_window: 2s, request_body: 30s, send: 30s}")
    s = tls_connect(p.https_port, "a.test")
    t0 = time.monotonic()
    if what == "slow body":
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\n")
        lasted = trickle(s, b"x" * 100000, 0.2, 20)
        assert lasted < 8, lasted
    else:
        # What portico already handed to the kernel still reaches us after
        # it closes, so the cut is read from its log while we read slowly.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /download?size=50000000 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        s.settimeout(1)
        while time.monotonic() - t0 < 20 and "under timeouts.min_rate" not in p.log_text():
            try:
                if not s.recv(100):
                    break
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                break
            time.sleep(0.2)  # the attack's pace: 500 bytes/s
        assert time.monotonic() - t0 < 10, time.monotonic() - t0
    s.close()
    assert "under timeouts.min_rate" in p.log_text()
    # A normal client is unaffected.
    assert p.curl("/download?size=1000000", "-o", "/dev/null", "-w", "%{http_code}", name="a.test").stdout == b"200"
