"""HTTP/2 on the front: GET, 100 MB both ways by SHA-256, SETTINGS, routing by
:authority, h2load, and a slow stream that must not stall a fast one."""
import hashlib
import json
import re
import socket
import ssl
import subprocess
import time

import h2.config
import h2.connection
import h2.events
import pytest

from harness import SANITIZED, site
from test_bulk import expected_sha

SIZE = (10 if SANITIZED else 100) * 1000 * 1000


@pytest.fixture
def proxy(start_portico, certs, backend):
    return start_portico([site(["a.test"], backend, certs.a), site(["b.test"], backend, certs.b)], workers=1)


def test_get_over_h2(proxy):
    r = proxy.curl("/echo", "-w", "\n%{http_version}", name="a.test", http2=True)
    body, version = r.stdout.rsplit(b"\n", 1)
    assert version == b"2"
    h = {k.lower(): v for k, v in json.loads(body)["headers"]}
    assert h["host"].startswith("a.test")
    assert h["x-forwarded-proto"] == "https" and h["x-forwarded-for"] == "127.0.0.1"
    assert json.loads(body)["method"] == "GET"
    # No body and none expected: no framing header upstream (RFC 9110 §8.6).
    assert "content-length" not in h and "transfer-encoding" not in h


def test_empty_post_keeps_content_length_zero(proxy):
    """A POST without a body still says Content-Length: 0 upstream: some
    backends answer 411 to a POST with no length at all."""
    r = proxy.curl("/echo", "-X", "POST", name="a.test", http2=True)
    h = {k.lower(): v for k, v in json.loads(r.stdout)["headers"]}
    assert h.get("content-length") == "0"


def test_authority_must_match_sni(proxy):
    r = proxy.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: b.test", name="a.test",
                   http2=True)
    assert r.stdout == b"421"


def pump(s, conn, on_event, timeout=15):
    """Reads frames and hands each event to on_event until it returns
    something other than None, which is returned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = s.recv(65536)
        assert data, "connection closed"
        for ev in conn.receive_data(data):
            r = on_event(ev)
            if r is not None:
                s.sendall(conn.data_to_send())
                return r
        s.sendall(conn.data_to_send())
    raise AssertionError("nothing came within the timeout")


def h2_status(proxy, headers):
    """Sends one request with `headers` on a fresh h2 connection and returns
    the response's :status."""
    s, conn = h2_client(proxy.https_port, validate=False)  # sends what h2 would refuse
    conn.send_headers(1, headers, end_stream=True)
    s.sendall(conn.data_to_send())
    status = pump(s, conn, lambda ev: dict(ev.headers)[":status"]
                  if isinstance(ev, h2.events.ResponseReceived) else None)
    s.close()
    return status


def test_overlong_authority_is_400_even_with_a_good_host(proxy):
    """An :authority longer than any host name is refused, not cut short to
    something routable, and a Host field after it does not stand in."""
    base = [(":method", "GET"), (":scheme", "https"), (":path", "/echo")]
    assert h2_status(proxy, base + [(":authority", "a.test")]) == "200"
    long_name = "a.test" + "." + "x" * 300
    assert h2_status(proxy, base + [(":authority", long_name), ("host", "a.test")]) == "400"
    assert h2_status(proxy, base + [(":authority", "a.test:" + "1" * 300)]) == "400"


@pytest.mark.parametrize("chunked", ["0", "1"])
def test_download_100mb(proxy, chunked):
    r = proxy.curl(f"/download?size={SIZE}&chunked={chunked}", name="a.test", http2=True, timeout=120)
    assert len(r.stdout) == SIZE
    assert hashlib.sha256(r.stdout).hexdigest() == expected_sha(SIZE)


def test_upload_100mb(proxy, tmp_path):
    path = tmp_path / "up.bin"
    with open(path, "wb") as f:
        left = SIZE
        block = hashlib.sha256(b"x").digest() * 2048
        while left:
            f.write(block[:min(left, len(block))])
            left -= min(left, len(block))
    r = proxy.curl("/upload", "--data-binary", f"@{path}", name="a.test", http2=True, timeout=120)
    got = json.loads(r.stdout)
    assert got["length"] == SIZE
    assert got["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert proxy.rss_peak_kib() < (400 if SANITIZED else 64) * 1024


def test_settings_are_ours(proxy):
    r = subprocess.run(["nghttp", "-nv", f"https://127.0.0.1:{proxy.https_port}/echo", "-H", ":authority: a.test"],
                       capture_output=True, text=True, timeout=30)
    out = r.stdout
    settings = out[out.index("recv SETTINGS"):][:600]
    assert "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100" in settings
    assert "SETTINGS_INITIAL_WINDOW_SIZE(0x04):65536" in settings
    assert "SETTINGS_MAX_HEADER_LIST_SIZE(0x06):32768" in settings
    # The connection window is raised to 1 MiB at once.
    assert re.search(r"recv WINDOW_UPDATE frame <length=4, flags=0x00, stream_id=0>\s+\(window_size_increment=983041\)", out)


def test_h2load_no_failures(proxy):
    n = 2000 if SANITIZED else 20000
    # The URI's name gives SNI and :authority; --connect-to sends it to loopback.
    r = subprocess.run(["h2load", "-n", str(n), "-c", "10", "-m", "10",
                        f"--connect-to=127.0.0.1:{proxy.https_port}", f"https://a.test:{proxy.https_port}/echo"],
                       capture_output=True, text=True, timeout=300)
    assert re.search(rf"requests: {n} total, {n} started, {n} done, {n} succeeded, 0 failed, 0 errored", r.stdout), r.stdout


def h2_client(port, name="a.test", validate=True):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20), server_hostname=name)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding="utf-8", validate_outbound_headers=validate))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    return s, conn


def test_slow_stream_does_not_stall_another(proxy):
    s, conn = h2_client(proxy.https_port)
    hdr = lambda path: [(":method", "GET"), (":scheme", "https"), (":authority", "a.test"), (":path", path)]
    conn.send_headers(1, hdr(f"/download?size={SIZE}"), end_stream=True)
    conn.send_headers(3, hdr("/echo"), end_stream=True)
    s.sendall(conn.data_to_send())
    slow_bytes, fast_done, fast_body = 0, False, b""
    deadline = time.monotonic() + 20
    while not fast_done and time.monotonic() < deadline:
        data = s.recv(65536)
        assert data, "connection closed"
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                if ev.stream_id == 1:
                    slow_bytes += len(ev.data)
                    # Keep the connection window open, never stream 1's own.
                    conn.increment_flow_control_window(ev.flow_controlled_length)
                else:
                    fast_body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == 3:
                fast_done = True
        s.sendall(conn.data_to_send())
    assert fast_done and json.loads(fast_body)["path"] == "/echo"
    # Stream 1 got its initial window's worth only: portico did not push more.
    assert slow_bytes <= 65536
    assert proxy.rss_peak_kib() < (400 if SANITIZED else 64) * 1024
    s.close()


def test_trailers_pass_through(proxy, tmp_path):
    size = 1000000
    want = expected_sha(size)
    # HTTP/2: nghttp prints the trailer HEADERS it received.
    r = subprocess.run(["nghttp", "-nv", f"https://127.0.0.1:{proxy.https_port}/download?size={size}&chunked=1&trailer=1",
                        "-H", ":authority: a.test"], capture_output=True, timeout=60)
    assert f"x-checksum: {want}" in r.stdout.decode(errors="replace")
    # HTTP/1.1: re-chunked with the trailer section after the last chunk.
    hdrs = tmp_path / "h.txt"
    r = proxy.curl(f"/download?size={size}&chunked=1&trailer=1", "-D", str(hdrs), "--raw", name="a.test")
    assert f"X-Checksum: {want}".lower() in (hdrs.read_text() + r.stdout[-200:].decode(errors="replace")).lower()


def test_clients_vanishing_mid_response(proxy):
    """Connections dropped while responses stream (as load generators do at
    the end of a run) must not disturb portico."""
    for _ in range(20):
        s, conn = h2_client(proxy.https_port)
        for sid in range(1, 40, 2):
            conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", "a.test"),
                                    (":path", f"/download?size={1 << 20}")], end_stream=True)
        s.sendall(conn.data_to_send())
        s.recv(65536)
        s.close()
    r = proxy.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", name="a.test", http2=True)
    assert r.stdout == b"200"
    assert proxy.proc.poll() is None


def test_stream_that_never_reads_is_reset_after_send_timeout(start_portico, certs, backend):
    """timeouts.send per stream: a client that never opens stream 1's window
    holds its response back; after the timeout that stream alone is reset
    (its backend connection freed) and the connection keeps serving."""
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1,
                      extra="timeouts: {send: 1s, upstream_read: 1s}\n")
    s, conn = h2_client(p.https_port)
    hdr = lambda path: [(":method", "GET"), (":scheme", "https"), (":authority", "a.test"), (":path", path)]
    conn.send_headers(1, hdr("/download?size=20000000"), end_stream=True)
    s.sendall(conn.data_to_send())
    t0 = time.monotonic()

    def until_reset(ev):
        if isinstance(ev, h2.events.DataReceived):
            conn.increment_flow_control_window(ev.flow_controlled_length)  # the connection's only
        elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == 1:
            return time.monotonic() - t0
    assert pump(s, conn, until_reset) >= 0.9  # reset, and not before the timeout
    # The connection is still good for another stream.
    conn.send_headers(3, hdr("/echo"), end_stream=True)
    s.sendall(conn.data_to_send())
    body = []

    def until_end(ev):
        if isinstance(ev, h2.events.DataReceived) and ev.stream_id == 3:
            body.append(ev.data)
            conn.acknowledge_received_data(ev.flow_controlled_length, 3)
        elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == 3:
            return True
    pump(s, conn, until_end)
    assert json.loads(b"".join(body))["path"] == "/echo"
    s.close()


def test_request_body_that_never_comes_is_408(start_portico, certs, backend):
    """timeouts.request_body per stream: HEADERS without END_STREAM and then
    nothing gets a 408 on that stream, not a backend connection held open."""
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1, extra="timeouts: {request_body: 1s}\n")
    s, conn = h2_client(p.https_port)
    conn.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":authority", "a.test"),
                          (":path", "/echo"), ("content-length", "10")], end_stream=False)
    s.sendall(conn.data_to_send())
    t0 = time.monotonic()
    status = pump(s, conn, lambda ev: dict(ev.headers)[":status"]
                  if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == 1 else None)
    assert status == "408"
    assert time.monotonic() - t0 >= 0.9
    s.close()
