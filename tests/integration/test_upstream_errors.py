"""502 when the upstream refuses, 504 when it is too slow; error pages name
no internals."""
import time

from harness import RawBackend, free_port, read_head, site


def test_connect_refused_is_502_without_internals(start_portico, certs):
    dead = f"127.0.0.1:{free_port()}"
    p = start_portico([site(["a.test"], dead, certs.a)])
    t0 = time.monotonic()
    r = p.curl("/echo", "-i", name="a.test")
    assert time.monotonic() - t0 < 3
    text = r.stdout.decode()
    assert text.startswith("HTTP/1.1 502")
    body = text.split("\r\n\r\n", 1)[1].lower()
    for leak in ("127.0.0.1", dead.split(":")[1], "refused", "connect", "errno", "portico"):
        assert leak not in body, leak


def test_slow_upstream_is_504(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)], extra="timeouts: {upstream_read: 1s}")
    t0 = time.monotonic()
    r = p.curl("/slow?delay=5", "-i", name="a.test")
    elapsed = time.monotonic() - t0
    assert r.stdout.decode().startswith("HTTP/1.1 504")
    assert 0.9 < elapsed < 4, elapsed


TCHAR = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def bad_heads():
    """Response heads that break field syntax (RFC 9110 §5.1, §5.5): every
    byte that is no tchar inside a field name, every control byte but HTAB
    inside a value, and a bare CR."""
    heads = []
    for b in range(256):
        if b not in TCHAR and b not in (ord(":"), ord("\r"), ord("\n")):
            heads.append((f"name byte {b:#04x}", b"X" + bytes([b]) + b"A: v"))
        if (b < 0x20 and b not in (ord("\t"), ord("\r"), ord("\n"))) or b == 0x7f:
            heads.append((f"value byte {b:#04x}", b"X-A: b" + bytes([b]) + b"c"))
    heads.append(("bare CR in a value", b"X-A: b\rc"))
    return heads


def raw_backend(answers):
    """A backend that answers a request for /N with answers[N] (bytes) and
    closes."""
    return RawBackend(lambda c: c.sendall(answers[int(read_head(c).split(b" ", 2)[1][1:])]))


def test_malformed_upstream_heads_are_502_on_both_protocols(start_portico, certs):
    """A backend's response head that breaks field syntax is never passed on
    (it could split the response for an HTTP/1.1 client or carry bytes HTTP/2
    forbids): the client gets 502 and none of the bad bytes. obs-fold is
    replaced by a space (RFC 9112 §5.2 allows that or a 502)."""
    bad = bad_heads()
    good = [b"X-A: b\r\n c", b"X-A: b c", b"X-A: caf\xc3\xa9\tok"]
    answers = [b"HTTP/1.1 200 OK\r\n" + field + b"\r\nContent-Length: 2\r\n\r\nok"
               for field in [f for _, f in bad] + good]
    srv = raw_backend(answers)
    try:
        p = start_portico([site(["a.test"], srv.address, certs.a)])
        for http2 in (False, True):
            for i, (what, _) in enumerate(bad):
                text = p.curl(f"/{i}", "-i", name="a.test", http2=http2).stdout
                assert text.startswith(b"HTTP/2 502" if http2 else b"HTTP/1.1 502"), (what, http2, text[:80])
                assert b"x-a" not in text.lower(), (what, http2)
            for j, expect in enumerate((b"x-a: b c", b"x-a: b c", b"x-a: caf\xc3\xa9\tok")):
                text = p.curl(f"/{len(bad) + j}", "-i", name="a.test", http2=http2).stdout
                assert text.startswith(b"HTTP/2 200" if http2 else b"HTTP/1.1 200"), (j, http2, text[:80])
                assert b"\r\n" + expect + b"\r\n" in text.lower() and text.endswith(b"\r\n\r\nok"), (j, text)
    finally:
        srv.close()
