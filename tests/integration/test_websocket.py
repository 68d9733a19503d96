"""WebSocket over HTTP/1.1: the Upgrade reaches the backend, 101 turns the
connection into a tunnel with backpressure, either side can close, and an
idle tunnel is closed. (Over HTTP/2 portico does not offer extended
CONNECT, so clients use HTTP/1.1 for WebSockets: docs/architecture.md.)"""
import base64
import hashlib
import os
import time

import pytest

from backend import WS_GUID, ws_frame
from harness import SANITIZED, read_until_close, site, tls_connect, wait_for

MESSAGES = 2000 if SANITIZED else 10000


def upgrade(p, path="/ws"):
    s = tls_connect(p.https_port, "a.test")
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        assert chunk, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 101"), head
    hdrs = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    assert hdrs["sec-websocket-accept"] == want
    assert hdrs["upgrade"].lower() == "websocket"
    return s, rest


class Reader:
    def __init__(self, sock, rest):
        self.s, self.buf = sock, rest

    def need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        h = self.need(2)
        ln = h[1] & 0x7F
        if ln == 126:
            ln = int.from_bytes(self.need(2), "big")
        elif ln == 127:
            ln = int.from_bytes(self.need(8), "big")
        return h[0] & 0x0F, self.need(ln)


@pytest.fixture
def proxy(start_portico, certs, backend):
    return start_portico([site(["a.test"], backend, certs.a)], extra="timeouts: {websocket_idle: 2s}")


def test_ten_thousand_messages_echo_in_order(proxy):
    s, rest = upgrade(proxy)
    r = Reader(s, rest)
    s.settimeout(30)
    batch = 200
    for start in range(0, MESSAGES, batch):
        s.sendall(b"".join(ws_frame(1, f"m{i}".encode(), os.urandom(4)) for i in range(start, start + batch)))
        for i in range(start, start + batch):
            assert r.frame() == (1, f"m{i}".encode())
    # A large binary message crosses the buffer limits too.
    big = os.urandom(300000)
    s.sendall(ws_frame(2, big, os.urandom(4)))
    assert r.frame() == (2, big)
    s.close()


def test_client_closes(proxy, backend):
    s, rest = upgrade(proxy)
    r = Reader(s, rest)
    s.sendall(ws_frame(8, (1000).to_bytes(2, "big"), os.urandom(4)))
    assert r.frame() == (8, (1000).to_bytes(2, "big"))
    data, closed = read_until_close(s, timeout=5)
    assert closed
    wait_for(lambda: "status=101" in proxy.access_log_text(), what="access log line for the tunnel")


def test_server_closes(proxy):
    s, rest = upgrade(proxy, "/ws?close_after=3")
    r = Reader(s, rest)
    for i in range(3):
        s.sendall(ws_frame(1, b"x%d" % i, os.urandom(4)))
        assert r.frame() == (1, b"x%d" % i)
    assert r.frame() == (8, (1000).to_bytes(2, "big"))
    s.settimeout(5)
    with pytest.raises(EOFError):
        r.frame()


def test_idle_tunnel_is_closed(proxy):
    s, rest = upgrade(proxy)
    t0 = time.monotonic()
    data, closed = read_until_close(s, timeout=8)
    assert closed and 1.5 < time.monotonic() - t0 < 6


def test_other_upgrades_are_not_tunnelled(proxy, backend):
    with tls_connect(proxy.https_port, "a.test") as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
        data, closed = read_until_close(s)
    assert data.startswith(b"HTTP/1.1 200")
    assert b'"upgrade"' not in data.lower() and b"h2c" not in data
