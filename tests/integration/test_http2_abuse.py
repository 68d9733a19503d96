"""HTTP/2 attacks written with hyperframe/hpack (python3-h2's parts): rapid
reset, CONTINUATION flood, HPACK bomb, SETTINGS flood. After each the
attacking connection is closed, portico's RSS stays bounded, and a normal
client on another connection is served throughout."""
import socket
import ssl
import threading
import time

import hpack
import pytest
from hyperframe.frame import (ContinuationFrame, Frame, GoAwayFrame, HeadersFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

from harness import SANITIZED, read_until_close, site, tls_connect

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
RSS_LIMIT_KIB = (400 if SANITIZED else 64) * 1024


def connect(port):
    ctx = ssl._create_unverified_context()
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="a.test")
    assert s.selected_alpn_protocol() == "h2"
    s.sendall(PREFACE + SettingsFrame(0).serialize())
    return s


def request_block(enc, path="/echo", extra=()):
    return enc.encode([(":method", "GET"), (":scheme", "https"), (":authority", "a.test"), (":path", path),
                       *extra])


def closed_with_goaway(s, timeout=15):
    """Reads until the server closes; returns whether a GOAWAY came first."""
    s.settimeout(0.5)
    buf, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        except (ssl.SSLError, OSError):
            break
        if not chunk:
            break
        buf += chunk
    else:
        return False, False
    goaway = False
    while len(buf) >= 9:
        f, length = Frame.parse_frame_header(buf[:9])
        if len(buf) < 9 + length:
            break
        goaway |= isinstance(f, GoAwayFrame)
        buf = buf[9 + length:]
    return True, goaway


def send_all(s, data):
    try:
        s.sendall(data)
    except (ssl.SSLError, OSError):
        pass  # the server may close while we are still sending: that is the point


@pytest.fixture
def proxy(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1)
    stop = threading.Event()
    failures = []

    def bystander():
        # A normal client on its own connection, served throughout the attack.
        while not stop.is_set():
            r = p.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", name="a.test", http2=True,
                       check=False, timeout=10)
            if r.stdout != b"200":
                failures.append(r.stdout + r.stderr)
            time.sleep(0.05)
    t = threading.Thread(target=bystander)
    t.start()
    yield p
    stop.set()
    t.join()
    assert failures == []
    assert p.rss_peak_kib() < RSS_LIMIT_KIB
    assert "HTTP/2 misbehaviour" in p.log_text() or "HTTP/2:" in p.log_text()


def test_rapid_reset(proxy):
    s = connect(proxy.https_port)
    enc = hpack.Encoder()
    out = b""
    for sid in range(1, 20001, 2):
        h = HeadersFrame(sid, request_block(enc))
        h.flags.add("END_HEADERS")
        h.flags.add("END_STREAM")
        out += h.serialize() + RstStreamFrame(sid, error_code=8).serialize()
    send_all(s, out)
    closed, goaway = closed_with_goaway(s)
    assert closed and goaway


def test_continuation_flood(proxy):
    s = connect(proxy.https_port)
    enc = hpack.Encoder()
    block = request_block(enc)
    h = HeadersFrame(1, block)  # no END_HEADERS: CONTINUATION must follow
    out = h.serialize()
    for i in range(20000):
        out += ContinuationFrame(1, enc.encode([(f"x-c{i}", "v")])).serialize()
    send_all(s, out)
    closed, goaway = closed_with_goaway(s)
    assert closed and goaway


def test_hpack_bomb(proxy):
    s = connect(proxy.https_port)
    enc = hpack.Encoder()
    big = ("x-bomb", "b" * 4000)
    out = b""
    # The first block puts a 4 KB field in the dynamic table; the next ones
    # refer to it hundreds of times with one byte each.
    for n, sid in enumerate(range(1, 400, 2)):
        block = request_block(enc, extra=[big] * (1 if n == 0 else 300))
        h = HeadersFrame(sid, block)
        h.flags.add("END_HEADERS")
        h.flags.add("END_STREAM")
        out += h.serialize()
    # Small on the wire next to what it decodes to (1.2 MB per block).
    assert len(out) * 100 < 199 * 300 * 4000
    send_all(s, out)
    closed, goaway = closed_with_goaway(s)
    assert closed and goaway


def test_settings_flood(proxy):
    s = connect(proxy.https_port)
    out = b"".join(SettingsFrame(0, settings={SettingsFrame.MAX_CONCURRENT_STREAMS: 100}).serialize()
                   for _ in range(20000))
    send_all(s, out)
    closed, goaway = closed_with_goaway(s)
    assert closed and goaway


def test_window_update_flood(proxy):
    """WINDOW_UPDATE frames that no DATA earned are counted like the other
    control-frame floods (they held a core at 85-100% before)."""
    s = connect(proxy.https_port)
    out = b"".join(WindowUpdateFrame(0, 1).serialize() for _ in range(5000))
    for _ in range(4):
        send_all(s, out)
    closed, goaway = closed_with_goaway(s)
    assert closed and goaway


def test_connection_without_preface_gets_the_header_timeout(start_portico, certs, backend):
    """An HTTP/2 connection that never sends its preface (or never a
    request) is closed after timeouts.request_header, not kept for
    timeouts.keepalive: 990 such connections used to lock out other clients."""
    import time
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1,
                      extra="timeouts: {request_header: 1s, keepalive: 60s}")
    for sent in (b"", b"PRI * HTTP/2.0\r\n", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize()):
        s = tls_connect(p.https_port, "a.test", alpn=("h2",))
        if sent:
            s.sendall(sent)
        t0 = time.monotonic()
        _, closed = read_until_close(s, timeout=15)
        s.close()
        assert closed and time.monotonic() - t0 < 10, (sent, time.monotonic() - t0)


def test_zero_window_client_is_bounded(start_portico, certs, backend):
    """A client that opens no window and asks for 100 large responses can
    make portico hold at most limits.upstreams_per_connection backend
    connections and limits.connection_buffer of response bytes; the queued
    requests are all answered, whole, once it reads."""
    import os
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    from harness import wait_for
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1,
                      extra="limits: {upstreams_per_connection: 8, connection_buffer: 256k}")
    fds0 = len(os.listdir(f"/proc/{p.pid}/fd"))
    rss0 = p.rss_peak_kib()
    ctx = ssl._create_unverified_context()
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", p.https_port), timeout=30), server_hostname="a.test")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    size = 4000000
    for i in range(100):
        conn.send_headers(1 + 2 * i, [(":method", "GET"), (":scheme", "https"), (":authority", "a.test"),
                                      (":path", f"/download?size={size}")], end_stream=True)
    s.sendall(conn.data_to_send())
    # Portico reads what it may and stops: its descriptors settle.
    wait_for(lambda: len(os.listdir(f"/proc/{p.pid}/fd")) > fds0, what="backend connections")
    seen = []
    wait_for(lambda: seen.append(len(os.listdir(f"/proc/{p.pid}/fd"))) or
             (len(seen) > 20 and seen[-1] == seen[-20]), what="descriptors to settle", timeout=20)
    assert seen[-1] - fds0 <= 8 + 2, (fds0, seen[-1])
    assert p.rss_peak_kib() - rss0 < 16 * 1024, (rss0, p.rss_peak_kib())
    # Now read everything: every queued request completes, whole.
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
    conn.increment_flow_control_window(1 << 30)
    s.sendall(conn.data_to_send())
    got, ended = {}, set()
    s.settimeout(60)
    while len(ended) < 100:
        data = s.recv(1 << 20)
        assert data, "closed"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                got[ev.stream_id] = got.get(ev.stream_id, 0) + len(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
        s.sendall(conn.data_to_send())
    s.close()
    assert all(got[sid] == size for sid in ended), {k: v for k, v in got.items() if v != size}
