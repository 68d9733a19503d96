"""Routing by Host, Host/SNI mismatch, forwarded headers, hop-by-hop
removal, keep-alive on both sides, Unix-socket upstreams, the access log."""
import json
import re
import socket
import ssl

from harness import Backend, read_response, site, wait_for


def headers_of(resp_json):
    return {k.lower(): v for k, v in resp_json["headers"]}


def test_two_sites_reach_their_own_backends(start_portico, certs, backend, tmp_path):
    other = Backend(str(tmp_path), "two")
    try:
        p = start_portico([site(["a.test"], backend, certs.a), site(["b.test"], other, certs.b)])
        a = json.loads(p.curl("/echo", name="a.test").stdout)
        b = json.loads(p.curl("/echo", name="b.test").stdout)
        assert a["backend"] == "one" and b["backend"] == "two"
    finally:
        other.stop()


def test_host_that_differs_from_sni_is_misdirected(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a), site(["b.test"], backend, certs.b)])
    r = p.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: b.test", name="a.test")
    assert r.stdout == b"421"
    assert backend.requests() == []


def test_forwarded_headers_and_hop_by_hop_removal(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)])
    r = p.curl("/echo", name="a.test")
    h = headers_of(json.loads(r.stdout))
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "https"
    # RFC 7239 §5.3: host= is the Host as received, port included (quoted).
    assert h["x-forwarded-host"] == f"a.test:{p.https_port}"
    assert h["forwarded"] == f'for=127.0.0.1;proto=https;host="a.test:{p.https_port}"'
    assert h["host"] == f"a.test:{p.https_port}"  # as the client sent it
    r = p.curl("/echo", "-H", "X-Forwarded-For: 203.0.113.7", "-H", "Connection: x-secret",
               "-H", "X-Secret: 1", "-H", "Keep-Alive: timeout=5", "-H", "TE: trailers",
               "-H", "Upgrade: foo", "-H", "Proxy-Authorization: Basic Zm9vOmJhcg==",
               "-H", "X-Forwarded-Proto: http", name="a.test")
    h = headers_of(json.loads(r.stdout))
    # 127.0.0.1 is not in trusted_proxies: a received chain is replaced
    # (test_edge.py covers trusted peers).
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "https"
    for hop in ("x-secret", "keep-alive", "te", "upgrade", "proxy-authorization"):
        assert hop not in h, hop
    assert h.get("connection", "keep-alive").lower() != "x-secret"


def test_plain_http_forwarded_proto(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a, redirect_http="false")])
    r = p.curl("/echo", name="a.test", scheme="http")
    h = headers_of(json.loads(r.stdout))
    assert h["x-forwarded-proto"] == "http"
    assert "strict-transport-security" not in h


def test_keep_alive_reuses_both_connections(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1)
    ctx = ssl.create_default_context(cafile=certs.ca)
    seen = []
    for _ in range(2):  # two client connections, three requests each
        raw = socket.create_connection(("127.0.0.1", p.https_port), timeout=20)
        s = ctx.wrap_socket(raw, server_hostname="a.test")
        for _ in range(3):
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n")
            head, body = read_response(s)
            assert head.startswith("HTTP/1.1 200")
            seen.append(json.loads(body))
        s.close()
    # One upstream connection served all six requests, in order.
    assert len({r["conn_id"] for r in seen}) == 1
    assert [r["conn_requests"] for r in seen] == [1, 2, 3, 4, 5, 6]


def test_unix_socket_upstream(start_portico, certs, tmp_path):
    b = Backend(str(tmp_path), "unixb", unix=True)
    try:
        p = start_portico([site(["a.test"], b, certs.a)])
        r = json.loads(p.curl("/echo", name="a.test").stdout)
        assert r["backend"] == "unixb"
    finally:
        b.stop()


def test_access_log_line(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)])
    p.curl("/echo?q=1", "-H", "Authorization: Bearer s3cr3t-token", name="a.test")
    line = wait_for(lambda: [l for l in p.access_log_text().splitlines() if "/echo" in l],
                    what="access log line")[0]
    for part in ("client=127.0.0.1", "proto=https", 'host="a.test"', "method=GET",
                 'path="/echo?q=1"', "status=200", f'upstream="{backend.address}"'):
        assert part in line, (part, line)
    assert re.search(r" bytes=[1-9][0-9]* ", line) and re.search(r" dur_ms=[0-9.]+ ", line), line
    assert "s3cr3t" not in p.access_log_text() and "s3cr3t" not in p.log_text()
