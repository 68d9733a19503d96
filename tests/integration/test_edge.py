"""Portico behind a load balancer, and its logs: trusted_proxies and the
forwarding fields, the PROXY protocol (v1 and v2) on listeners, request ids,
log.format: json, and reopening the log files (SIGUSR1, ctl reopen)."""
import json
import os
import signal
import socket
import ssl
import struct
import subprocess

import pytest

from harness import PORTICO, read_until_close, site, wait_for


def headers_of(resp_json):
    return {k.lower(): v for k, v in resp_json["headers"]}


FORGED = ["-H", "X-Forwarded-For: 6.6.6.6", "-H", "Forwarded: for=6.6.6.6",
          "-H", "X-Forwarded-Proto: gopher", "-H", "X-Forwarded-Host: evil.test"]


def test_untrusted_client_forwarding_fields_are_replaced(start_portico, certs, backend):
    # Only 127.0.0.2 is trusted; the client connects from 127.0.0.1.
    p = start_portico([site(["a.test"], backend, certs.a)], extra="trusted_proxies: [127.0.0.2/32]")
    for http2 in (False, True):
        h = headers_of(json.loads(p.curl("/echo", *FORGED, name="a.test", http2=http2).stdout))
        assert h["x-forwarded-for"] == "127.0.0.1", h
        assert h["forwarded"] == f'for=127.0.0.1;proto=https;host="a.test:{p.https_port}"', h
        assert h["x-forwarded-proto"] == "https", h
        assert h["x-forwarded-host"] == f"a.test:{p.https_port}", h


def test_trusted_proxy_forwarding_fields_are_kept_and_extended(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)],
                      extra='trusted_proxies: ["10.0.0.0/8", 127.0.0.0/8, "::1"]')
    for http2 in (False, True):
        h = headers_of(json.loads(p.curl("/echo", *FORGED, name="a.test", http2=http2).stdout))
        assert h["x-forwarded-for"] == "6.6.6.6, 127.0.0.1", h
        assert h["forwarded"] == \
            f'for=6.6.6.6, for=127.0.0.1;proto=https;host="a.test:{p.https_port}"', h
        assert h["x-forwarded-proto"] == "gopher", h
        assert h["x-forwarded-host"] == "evil.test", h


def test_trusted_proxies_config_errors_name_file_line_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text('listen: {http: "127.0.0.1:8080"}\n'
                   'trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.1/8\n  - "300.1.1.1"\n'
                   'timeouts: {proxy_header: "soon"}\n'
                   'log: {format: xml, request_id_header: "Content-Length"}\n'
                   'sites:\n  - hosts: [a.test]\n    upstreams: ["127.0.0.1:9"]\n')
    r = subprocess.run([PORTICO, "-c", str(cfg), "--check"], capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{cfg}:4: trusted_proxies[1]: \"10.0.0.1/8\" has host bits set" in r.stderr, r.stderr
    assert f"{cfg}:5: trusted_proxies[2]: \"300.1.1.1\" is not" in r.stderr, r.stderr
    assert f"{cfg}:6: timeouts.proxy_header:" in r.stderr, r.stderr
    assert f"{cfg}:7: log.format: expected text or json" in r.stderr, r.stderr
    assert f"{cfg}:7: log.request_id_header:" in r.stderr, r.stderr


# ---- the PROXY protocol ------------------------------------------------------

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst=None, sport=40000, dport=443):
    fam = "TCP6" if ":" in src else "TCP4"
    dst = dst or ("::1" if ":" in src else "127.0.0.1")
    return f"PROXY {fam} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src, dst="127.0.0.1", sport=40000, dport=443, tlvs=b"", local=False):
    if ":" in src:
        addrs = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, "::1")
        fam = 0x21
    else:
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
        fam = 0x11
    body = addrs + struct.pack("!HH", sport, dport) + tlvs
    return V2_SIG + bytes([0x20 if local else 0x21, fam]) + struct.pack("!H", len(body)) + body


def get_over(port, header, name="a.test", ca=None, tls=True, split=False):
    """Sends `header` on a fresh TCP connection, then a GET /echo (over TLS
    when `tls`); returns the backend's view of the request, or None when
    portico closed the connection."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        if split:  # the header in two writes: portico must gather it
            raw.sendall(header[:7])
            import time
            time.sleep(0.05)  # lets the first piece arrive alone; readiness is not in question
            raw.sendall(header[7:])
        else:
            raw.sendall(header)
        sock = raw
        if tls:
            ctx = ssl.create_default_context(cafile=ca)
            ctx.set_alpn_protocols(["http/1.1"])
            sock = ctx.wrap_socket(raw, server_hostname=name)
        sock.sendall(f"GET /echo HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n"
                     "X-Forwarded-For: 6.6.6.6\r\n\r\n".encode())
        data, _ = read_until_close(sock)
    except (ssl.SSLError, ConnectionError, OSError):
        return None
    finally:
        raw.close()
    if not data.startswith(b"HTTP/1.1 200"):
        return None
    return headers_of(json.loads(data.split(b"\r\n\r\n", 1)[1]))


def proxied_portico(start_portico, certs, backend, trusted="127.0.0.0/8"):
    return start_portico([site(["a.test"], backend, certs.a, redirect_http="false")],
                         extra=f"trusted_proxies: [{trusted}]\n"
                               "timeouts: {proxy_header: 1s}",
                         proxy_protocol=True)


def test_proxy_protocol_v1_and_v2_give_the_client_address(start_portico, certs, backend):
    p = proxied_portico(start_portico, certs, backend)
    cases = [(v1("203.0.113.9"), "203.0.113.9"), (v2("198.51.100.4"), "198.51.100.4"),
             (v1("2001:db8::7"), "2001:db8::7"),
             (v2("2001:db8::8", tlvs=b"\x04\x00\x03abc"), "2001:db8::8")]
    for header, client in cases:
        for split in (False, True):
            h = get_over(p.https_port, header, ca=certs.ca, split=split)
            assert h is not None, (header, p.log_text()[-2000:])
            # The header's client is not a trusted proxy: its own
            # X-Forwarded-For is replaced by the address from the header.
            assert h["x-forwarded-for"] == client, h
            want = f'"[{client}]"' if ":" in client else client
            assert h["forwarded"].startswith(f"for={want};proto=https"), h
    # Plain HTTP listener with the header too.
    h = get_over(p.http_port, v1("192.0.2.55"), tls=False)
    assert h is not None and h["x-forwarded-for"] == "192.0.2.55", h
    # LOCAL (a balancer's health check): the connection's own address,
    # here a trusted proxy, so the fields it sent are kept.
    h = get_over(p.https_port, v2("192.0.2.1", local=True), ca=certs.ca)
    assert h is not None and h["x-forwarded-for"] == "6.6.6.6, 127.0.0.1", h
    # The access log records the header's address.
    wait_for(lambda: "client=203.0.113.9 " in p.access_log_text(), what="access line")


def test_proxy_protocol_header_from_trusted_client_keeps_its_chain(start_portico, certs, backend):
    # The header's client is itself a trusted proxy: its fields are kept.
    p = proxied_portico(start_portico, certs, backend, trusted="127.0.0.0/8, 10.0.0.0/8")
    h = get_over(p.https_port, v2("10.1.2.3"), ca=certs.ca)
    assert h is not None and h["x-forwarded-for"] == "6.6.6.6, 10.1.2.3", h


def test_proxy_protocol_refused_from_untrusted_and_malformed(start_portico, certs, backend):
    p = proxied_portico(start_portico, certs, backend, trusted="127.0.0.2/32")
    # 127.0.0.1 is not trusted: closed before any byte is read.
    assert get_over(p.https_port, v1("203.0.113.9"), ca=certs.ca) is None
    wait_for(lambda: "not in trusted_proxies, refused" in p.log_text(), what="refusal logged")
    for _ in range(5):
        assert get_over(p.https_port, v1("203.0.113.9"), ca=certs.ca) is None
    # At most once a second: six refusals well within a second or two
    # give at most three lines.
    assert p.log_text().count("not in trusted_proxies, refused") <= 3
    assert backend.requests() == []


def test_proxy_protocol_malformed_and_slow_headers_are_closed(start_portico, certs, backend):
    p = proxied_portico(start_portico, certs, backend)
    bad = [b"PROXY TCP4 1.2.3.4\r\n", b"PROXY TCP4 1.2.3.999 1.2.3.4 1 2\r\n",
           b"PROXY TCP4 1.2.3.4 1.2.3.4 1 99999\r\n", b"PROXY " + b"A" * 120,
           b"\x16\x03\x01\x02\x00\x01", b"GET / HTTP/1.1\r\n\r\n",
           V2_SIG + b"\x31\x11\x00\x0c" + b"\x00" * 12,  # version 3
           V2_SIG + b"\x21\x11\xff\xff",                  # longer than the bound
           V2_SIG + b"\x21\x11\x00\x04" + b"\x00" * 4]    # TCP4 without its addresses
    for header in bad:
        raw = socket.create_connection(("127.0.0.1", p.https_port), timeout=10)
        raw.sendall(header)
        data, closed = read_until_close(raw, timeout=5)
        raw.close()
        assert closed and data == b"", header
    # A header that never completes is closed after timeouts.proxy_header.
    raw = socket.create_connection(("127.0.0.1", p.https_port), timeout=10)
    raw.sendall(b"PROXY TCP4 ")
    data, closed = read_until_close(raw, timeout=5)
    raw.close()
    assert closed and data == b""
    assert backend.requests() == []


# ---- logs ------------------------------------------------------------------------


def test_json_logs_request_ids_and_escaping(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)], log_extra="format: json")
    nasty = 'ua "quoted" \\ \t é'
    r = p.curl("/echo?x=%22", "-A", nasty, "-e", "https://ref.test/", name="a.test")
    h = headers_of(json.loads(r.stdout))
    rid = h["x-request-id"]
    assert len(rid) == 32 and all(c in "0123456789abcdef" for c in rid), rid
    r = p.curl("/echo", "-H", "X-Request-Id: client-id-1", name="a.test", http2=True)
    assert headers_of(json.loads(r.stdout))["x-request-id"] == "client-id-1"
    r = p.curl("/echo", "-H", "X-Request-Id: bad id with spaces", name="a.test")
    replaced = headers_of(json.loads(r.stdout))["x-request-id"]
    assert replaced != "bad id with spaces" and len(replaced) == 32

    def lines():
        return [json.loads(l) for l in p.access_log_text().splitlines() if l]
    wait_for(lambda: len(lines()) >= 3, what="three JSON access lines")
    first, second = lines()[0], lines()[1]
    assert first["request_id"] == rid and second["request_id"] == "client-id-1"
    assert first["user_agent"] == nasty.encode().decode("latin-1"), first
    assert first["referer"] == "https://ref.test/"
    assert first["version"] == "HTTP/1.1" and second["version"] == "HTTP/2"
    assert first["alpn"] == "http/1.1" and second["alpn"] == "h2"
    assert first["tls_version"].startswith("TLS") and first["sni"] == "a.test"
    assert first["method"] == "GET" and first["target"] == "/echo?x=%22"
    assert first["status"] == 200 and first["bytes_out"] > 0 and first["bytes_in"] == 0
    assert first["client"] == "127.0.0.1" and first["scheme"] == "https"
    assert first["site"] == "a.test" and first["upstream"] == backend.address
    assert 0 <= first["upstream_ms"] <= first["total_ms"]
    # The error log is JSON too, one object a line.
    err = [json.loads(l) for l in p.log_text().splitlines() if l.startswith("{")]
    assert any(e["level"] == "info" and "ready" in e["msg"] for e in err), p.log_text()[:2000]


def test_text_access_log_has_version_user_agent_and_id(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)])
    p.curl("/echo", "-A", 'agent "x"', "-H", "X-Request-Id: abc-123", name="a.test")
    line = wait_for(lambda: [l for l in p.access_log_text().splitlines() if "/echo" in l],
                    what="access line")[0]
    for part in (' version=HTTP/1.1 ', ' ua="agent \\"x\\""', " id=abc-123 ", " upstream_ms="):
        assert part in line, line


def test_request_id_header_can_be_renamed_or_disabled(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)],
                      log_extra='request_id_header: "X-Trace"')
    h = headers_of(json.loads(p.curl("/echo", name="a.test").stdout))
    assert len(h["x-trace"]) == 32 and "x-request-id" not in h
    q = start_portico([site(["a.test"], backend, certs.a)], log_extra='request_id_header: ""')
    h = headers_of(json.loads(q.curl("/echo", "-H", "X-Request-Id: keep me", name="a.test").stdout))
    assert h["x-request-id"] == "keep me"  # passed through untouched when disabled


def test_sigusr1_reopens_access_and_error_logs(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)], error_file=True)
    p.curl("/echo?before", name="a.test")
    wait_for(lambda: "/echo?before" in p.access_log_text(), what="first line")
    os.rename(p.access_log, p.access_log + ".1")
    os.rename(p.error_file, p.error_file + ".1")
    os.kill(p.pid, signal.SIGUSR1)
    wait_for(lambda: os.path.exists(p.access_log) and os.path.exists(p.error_file),
             what="new log files")
    p.curl("/echo?after", name="a.test")
    wait_for(lambda: "/echo?after" in p.access_log_text(), what="line in the new file")
    with open(p.access_log + ".1") as f:
        assert "/echo?after" not in f.read()
    with open(p.error_file) as f:
        assert "log files reopened" in f.read()
    assert p.proc.poll() is None  # SIGUSR1 used to terminate portico


@pytest.mark.parametrize("manager", [True, False], ids=["acme-manager", "proxy-only"])
def test_ctl_reopen_reopens_log_files(start_portico, certs, backend, tmp_path, manager):
    # The admin socket belongs to the certificate manager when a site uses
    # ACME (an on_demand site whose CA is never reached), else to the proxy.
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if manager:
        p = start_portico([site(["*"], backend, tls="on_demand")], error_file=True,
                          extra=f'runtime_dir: "{run_dir}"\n'
                                'acme: {directory: "https://127.0.0.1:1/dir", accept_terms: true}\n'
                                'on_demand: {ask: "http://127.0.0.1:1/ask"}')
    else:
        p = start_portico([site(["a.test"], backend, certs.a)], error_file=True,
                          extra=f'runtime_dir: "{run_dir}"\n')
    wait_for(lambda: list(run_dir.glob("admin-*.sock")), what="the admin socket")
    p.curl("/echo?before", name="a.test", scheme="http")
    wait_for(lambda: "/echo?before" in p.access_log_text(), what="first line")
    os.rename(p.access_log, p.access_log + ".1")
    os.rename(p.error_file, p.error_file + ".1")
    r = subprocess.run([PORTICO, "ctl", "-c", p.config, "reopen"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "log files reopened" in r.stdout, r
    p.curl("/echo?after", name="a.test", scheme="http")
    wait_for(lambda: "/echo?after" in p.access_log_text(), what="line in the new file")
    with open(p.error_file) as f:
        assert "ctl reopen: log files reopened" in f.read()
