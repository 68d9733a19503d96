"""Requests llhttp 8.1 accepts but RFC 9112 forbids: each gets 400 and a
closed connection, and none reaches the backend."""
import pytest

from harness import read_until_close, site, tls_connect

CASES = {
    "obs-fold": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-A: b\r\n c\r\n\r\n",
    "obs-fold in TE": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: \r\n chunked\r\n\r\n0\r\n\r\n",
    "space in field name": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nBad Name: x\r\n\r\n",
    "bare LF": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-A: b\nX-B: c\r\n\r\n",
    "bare CR": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-A: b\rc\r\n\r\n",
    "CL with TE": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two Host headers": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\n\r\n",
    "HTTP/1.1 without Host": b"GET /echo HTTP/1.1\r\nX-A: b\r\n\r\n",
    "invalid Content-Length": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1x\r\n\r\nx",
    "two different Content-Lengths": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\n"
                                     b"Content-Length: 2\r\n\r\nxx",
    "TE chunked, identity": b"POST /echo HTTP/1.1\r\nHost: a.test\r\n"
                            b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    "TE xchunked": b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "NUL in value": b"GET /echo HTTP/1.1\r\nHost: a.test\r\nX-A: b\x00c\r\n\r\n",
    "absolute-form target": b"GET http://evil.example/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
}


@pytest.fixture(scope="module")
def proxy_env(tmp_path_factory, certs):
    import harness
    d = str(tmp_path_factory.mktemp("smuggle"))
    b = harness.Backend(d, "one")
    p = harness.Portico(d, [site(["a.test"], b, certs.a)], ca=certs.ca)
    yield p, b
    problems = p.finish()
    b.stop()
    assert not problems, "\n".join(problems) + "\n" + p.log_text()[-4000:]


@pytest.mark.parametrize("name", sorted(CASES))
def test_rejected_with_400_and_closed(proxy_env, name):
    p, b = proxy_env
    before = len(b.requests())
    with tls_connect(p.https_port, "a.test") as s:
        s.sendall(CASES[name])
        data, closed = read_until_close(s, timeout=10)
    assert data.startswith(b"HTTP/1.1 400"), data[:200]
    assert b"connection: close" in data.lower()
    assert closed, "connection left open"
    assert len(b.requests()) == before, "the backend saw the request"


def test_valid_request_still_served(proxy_env):
    p, b = proxy_env
    with tls_connect(p.https_port, "a.test") as s:
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        data, closed = read_until_close(s)
    assert data.startswith(b"HTTP/1.1 200") and closed
