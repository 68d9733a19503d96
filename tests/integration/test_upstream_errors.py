"""502 when the upstream refuses, 504 when it is too slow; error pages name
no internals."""
import time

from harness import free_port, site


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
