#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/<driver>/ (run from anywhere;
needs python3-h2 for the HTTP/2 seeds). The seeds are committed; rerun this
only to change them. New inputs libFuzzer finds stay in build-fuzz/."""
import base64
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def w(name, fname, data):
    d = os.path.join(HERE, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


REQUESTS = [
    ("get", "GET /index.html?q=1 HTTP/1.1\r\nHost: a.test\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"),
    ("post_cl", "POST /upload HTTP/1.1\r\nHost: a.test:8443\r\nContent-Length: 5\r\n"
                "Content-Type: text/plain\r\n\r\nhello"),
    ("post_chunked", "POST /te HTTP/1.1\r\nHost: x.w.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
                     "5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
    ("te_tab", "POST /te HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n"),
    ("cl_te", "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("websocket", "GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"),
    ("h2c", "GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"),
    ("options_star", "OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n"),
    ("http10", "GET / HTTP/1.0\r\nHost: [::1]:8080\r\nConnection: keep-alive\r\n\r\n"),
    ("conn_host", "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: x-drop\r\nX-Drop: 1\r\n"
                  "X-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\nExpect: 100-continue\r\n\r\n"),
    ("empty_value", "GET / HTTP/1.1\r\nHost: a.test\r\nX-Empty:\r\nX-Sp:  \r\n\r\n"),
    ("obs_fold", "GET / HTTP/1.1\r\nHost: a.test\r\nX-F: a\r\n b\r\n\r\n"),
    ("two_hosts", "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n"),
    ("absolute", "GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"),
    ("connect", "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n"),
    ("pipelined", "GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: a.test\r\n\r\n"),
]

# The first byte: bit 0 the request was HEAD, bit 1 the site has HSTS.
RESPONSES = [
    ("200_cl", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nDate: Mon, 30 Nov 2026 19:00:00 GMT\r\n\r\nok"),
    ("chunked_trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum, Content-Length\r\n\r\n"
                         "2\r\nok\r\n0\r\nX-Sum: 1\r\nContent-Length: 9\r\nHost: evil\r\n\r\n"),
    ("close_delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"),
    ("te_gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"),
    ("204", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"),
    ("304", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"),
    ("150_body", "HTTP/1.1 150 X\r\nContent-Length: 51\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ninject"),
    ("000", "HTTP/1.1 000 Zero\r\nContent-Length: 0\r\n\r\n"),
    ("hsts_upstream", "HTTP/1.1 302 Found\r\nLocation: /x\r\nStrict-Transport-Security: max-age=1\r\n"
                      "Connection: close, x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\n\r\n"),
    ("http10", "HTTP/1.0 200 OK\r\n\r\nbody"),
    ("101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
    ("no_reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n"),
]

NAMES = ["Example.COM", "example.com.", "xn--bcher-kva.example", "*.example.com", "a..b", "-a.b", "a-.b",
         "127.0.0.1", "[::1]:443", "a.test:8443", "x" * 63 + ".com", "\u00e9.com", "single",
         "A.B.C.D.E.F", "a/b.com", "..", ""]

# Status (2 bytes), then body 0xff Retry-After 0xff Link values ("\n" between).
PROBLEMS = [
    (400, '{"type":"urn:ietf:params:acme:error:badNonce","detail":"JWS has an invalid anti-replay nonce",'
          '"status":400}', "", ""),
    (429, '{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many certificates","status":429}',
     "120", '<https://ca.test/dir>;rel="index"'),
    (503, '', "Wed, 21 Oct 2026 07:28:00 GMT", ""),
    (403, '{"type":"urn:ietf:params:acme:error:userActionRequired","detail":"Terms changed",'
          '"instance":"https://ca.test/tos"}', "Sunday, 06-Nov-94 08:49:37 GMT",
     '<https://ca.test/tos>;rel="terms-of-service"'),
    (400, '{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"Some names were rejected",'
          '"subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids",'
          '"identifier":{"type":"dns","value":"a.test"}}]}', "Sun Nov  6 08:49:37 1994", ""),
    (200, '', "", '<https://ca.test/cert/1/alt>;rel="alternate"\n<https://ca.test/cert/2/alt>; rel=alternate\n'
                  '<https://ca.test/acct>;rel="up";title="x"'),
    (500, '{"type":"about:blank","detail":"\\u0001\\u001b[31mred\\r\\nline"}', "-1", '<a>,<b>;rel="up", <c>;rel=up'),
]

JOBS = [
    ("valid", '{"cert_id":"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE","events":[{"at":1700000000,"detail":"serial 0a",'
              '"kind":"obtained"}],"failures":0,"key_type":"p256","last_failure":0,"last_seen":1700000000,'
              '"names":["a.example","www.a.example"],"next_reason":"one-third","next_run":1705000000,'
              '"not_after":1707776000,"not_before":1700000000,"retry_after":0,"state":"valid","version":1}'),
    ("failing", '{"ari":{"end":1706000000,"explanation_url":"https://ca.example/why","fetched":1700000100,'
                '"next_poll":1700043300,"start":1705000000},"events":[],"failures":3,"key_type":"rsa2048",'
                '"last_error":{"detail":"too many certificates","rate_limited":true,"status":429,'
                '"type":"urn:ietf:params:acme:error:rateLimited"},"last_failure":1700000000,"names":["b.example"],'
                '"next_reason":"retry-after","next_run":1700006000,"not_after":0,"not_before":0,'
                '"profile":"shortlived","retry_after":1700006000,"state":"failed","version":1}'),
    ("future", '{"version":1,"names":["c.example"],"state":"pending","key_type":"p384","extra":{"x":[1,2]}}'),
]

BACKOFFS = [
    ("basic", '{"failures":3,"last_error":"urn:ietf:params:acme:error:rateLimited: too many",'
              '"last_failure":1700000000,"name":"a.test","next_attempt":1700003600}'),
    ("no_error", '{"failures":0,"last_failure":0,"name":"*.w.test","next_attempt":0}'),
    ("max", '{"failures":4294967295,"last_failure":-9223372036854775808,"name":"x",'
            '"next_attempt":9223372036854775807}'),
    ("dup", '{"name":"a","name":"b","failures":1,"last_failure":1,"next_attempt":2}'),
    ("nul", '{"name":"a\\u0000b","failures":1,"last_failure":1,"next_attempt":2,"last_error":"\\u0000"}'),
]

CONFIGS = [
    ("full", """listen:
  https: ["0.0.0.0:443", "[::]:443"]
  http: "127.0.0.1:80"
workers: 3
storage: /srv/cache
log: {level: debug, access: off}
defaults: {redirect_http: false, hsts: true}
timeouts: {handshake: 500ms, request_header: 2s, keepalive: 1m, upstream_read: 1h}
limits: {max_connections: 50, max_header_bytes: 16k, max_headers: 64, max_body: 0, buffer: 1m}
acme: {email: a@b.test, accept_terms: true, key_type: p384, challenges: [http-01, tls-alpn-01],
       eab: {kid: k, hmac_key: aGk}}
on_demand: {ask: "http://127.0.0.1:9/ask", rate: 5/s, max_pending: 10, cache_size: 100}
sites:
  - hosts: [App.Example.COM, "*.app.example.com"]
    upstreams: ["127.0.0.1:8080", "[::1]:9090", "unix:/run/app.sock"]
    tls: on_demand
    redirect_http: true
    hsts: {max_age: 100, include_subdomains: true, preload: true}
  - hosts: ["*"]
    upstreams: ["localhost:81"]
    tls: acme
"""),
    ("json", '{"listen": {"http": "127.0.0.1:8080"}, "sites": [{"hosts": ["a.test"], '
             '"upstreams": ["127.0.0.1:9000"]}]}'),
    ("anchors", """listen: &l {http: "127.0.0.1:8080"}
x: &s [*l, *l]
sites:
  - &site {hosts: [a.test], upstreams: ["127.0.0.1:9000"]}
  - <<: *site
    hosts: [b.test]
"""),
    ("dup", """listen: {http: "127.0.0.1:8080"}
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:9000"]
listen: {http: "127.0.0.1:8081"}
"""),
    ("files", """listen: {https: "127.0.0.1:8443"}
log: {access: /nonexistent/dir/a.log}
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:9000"]
    tls: {cert: /etc, key: /etc/hostname}
"""),
]


def h2_seeds():
    import h2.config
    import h2.connection
    cfg = h2.config.H2Configuration(client_side=True, validate_outbound_headers=False,
                                    normalize_outbound_headers=False)

    def client():
        c = h2.connection.H2Connection(cfg)
        c.initiate_connection()
        # The driver sends the magic itself; the client's SETTINGS follow it.
        c.settings_frame = c.data_to_send()[len(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):]
        return c

    def save(name, c, piece=0xff):  # first byte: the size of the pieces fed (x16+1)
        w("h2_frames", name, bytes([piece]) + c.settings_frame + c.data_to_send())

    req = [(":method", "GET"), (":path", "/"), (":scheme", "https"), (":authority", "a.test")]
    c = client()
    c.send_headers(1, req, end_stream=True)
    save("get", c)
    c = client()
    c.send_headers(1, [(":method", "POST"), (":path", "/up"), (":scheme", "https"),
                       (":authority", "x.w.test:443"), ("content-length", "5")])
    c.send_data(1, b"hello", end_stream=True)
    save("post", c, 0)
    c = client()
    c.send_headers(1, [(":method", "GET"), (":path", "/"), (":scheme", "https"), ("host", "a.test")],
                   end_stream=True)
    save("host_only", c)
    c = client()
    for i in range(1, 40, 2):
        c.send_headers(i, req[:2] + [(":scheme", "https"), (":authority", "a.test"), ("x-big", "v" * 100)])
        c.reset_stream(i)
    save("rapid_reset", c, 3)
    c = client()
    c.send_headers(1, req + [("connection", "close"), ("te", "trailers")], end_stream=True)
    save("bad_fields", c)
    c = client()
    c.ping(b"12345678")
    c.increment_flow_control_window(1000)
    c.update_settings({4: 1 << 20})
    save("control", c)
    c = client()
    c.send_headers(1, [(":method", "POST"), (":path", "/t"), (":scheme", "https"), (":authority", "a.test")])
    c.send_data(1, b"x")
    c.send_headers(1, [("x-trailer", "1")], end_stream=True)
    save("trailers", c)


PROXY_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(cmd, fam, body):
    return PROXY_V2_SIG + bytes([0x20 | cmd, fam]) + len(body).to_bytes(2, "big") + body


PROXY_HEADERS = [
    ("v1_tcp4", b"PROXY TCP4 192.0.2.1 198.51.100.2 40000 443\r\n\x16\x03\x01"),
    ("v1_tcp6", b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\nGET / HTTP/1.1\r\n"),
    ("v1_unknown", b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"),
    ("v1_max", b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
               b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
    ("v1_bad_port", b"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n"),
    ("v2_tcp4", proxy_v2(1, 0x11, bytes([192, 0, 2, 1, 198, 51, 100, 2, 0x9c, 0x40, 1, 0xbb]))),
    ("v2_tcp6_tlv", proxy_v2(1, 0x21, bytes(16) + bytes(15) + b"\x01" + b"\x9c\x40\x01\xbb" +
                             b"\x01\x00\x02h2\x04\x00\x03abc")),
    ("v2_local", proxy_v2(0, 0x00, b"")),
    ("v2_unix", proxy_v2(1, 0x31, bytes(216))),
    ("v2_short", proxy_v2(1, 0x11, bytes(4))),
]
def dns_seeds():
    import struct

    def name(n):
        return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"

    def msg(qname, qtype, rrs, flags=0x8400, rcode=0, ar=0):
        head = struct.pack(">HHHHHH", 0x1234, flags | rcode, 1, len(rrs) - ar, 0, ar)
        body = name(qname) + struct.pack(">HH", qtype, 1)
        for owner, t, rdata in rrs:
            body += owner + struct.pack(">HHIH", t, 1, 60, len(rdata)) + rdata
        return head + body
    ptr = b"\xc0\x0c"
    w("dns_answer", "txt", msg("_acme-challenge.example.test", 16, [(ptr, 16, b"\x03abc\x02de")]))
    w("dns_answer", "cname", msg("_acme-challenge.shop.example.test", 5,
                                 [(ptr, 5, name("shop.acme-delegate.test"))]))
    soa = name("ns.example.test") + name("hostmaster.example.test") + struct.pack(">IIIII", 1, 2, 3, 4, 5)
    w("dns_answer", "soa_nx", msg("x.example.test", 6, [(name("example.test"), 6, soa)], rcode=3))
    w("dns_answer", "caa", msg("denied.example.test", 257,
                               [(ptr, 257, b"\x00\x05issueother-ca.example"),
                                (ptr, 257, b"\x80\x03tbsx")]))
    tsig = (name("hmac-sha256") + b"\x00\x00\x65\x53\xf1\x00" + b"\x01\x2c" + b"\x00\x20" + b"\x11" * 32 +
            b"\x12\x34\x00\x00\x00\x00")
    w("dns_answer", "update_tsig", msg("example.test", 6, [(name("portico-key"), 250, tsig)],
                                       flags=0xa800, ar=1))
    w("dns_answer", "loop", struct.pack(">HHHHHH", 1, 0x8000, 1, 0, 0, 0) + b"\xc0\x0c")


def main():
    for n, d in REQUESTS:
        w("h1_request", n, d)
    for i, (n, d) in enumerate(RESPONSES):
        w("h1_response", n, bytes([i % 4]) + d.encode())
    for i, n in enumerate(NAMES):
        w("names", f"name{i}", n)
    for i, b in enumerate([b"", b"f", b"fo", b"foo", bytes(range(256)), b"\xff\xfe"]):
        w("b64url", f"valid{i}", base64.urlsafe_b64encode(b).rstrip(b"="))
    for n, d in [("padded", "Zm8="), ("plus", "a+b/"), ("bits", "Zh"), ("space", "Zm 9v"), ("len5", "AAAAA")]:
        w("b64url", n, d)
    for i, (st, body, ra, links) in enumerate(PROBLEMS):
        w("acme_problem", f"p{i}", bytes([st >> 8, st & 255]) + body.encode() + b"\xff" + ra.encode() +
          b"\xff" + links.encode())
    for n, d in BACKOFFS:
        w("backoff_json", n, d)
    for n, d in JOBS:
        w("job_json", n, d)
    for n, d in CONFIGS:
        w("config", n, d)
    for n, d in PROXY_HEADERS:
        w("proxy_protocol", n, d)
    h2_seeds()
    dns_seeds()


if __name__ == "__main__":
    main()
