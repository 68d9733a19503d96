"""Certificate selection by SNI: exact, one-label wildcard, catch-all, and
the unrecognized_name alert for no SNI or an unknown name."""
import ssl
import subprocess

import pytest

from harness import site, tls_connect


def peer_names(port, name, ca):
    with tls_connect(port, name, ca=ca) as s:
        cert = s.getpeercert()
    return [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]


def alert_for(port, servername_args):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *servername_args],
                       input=b"", capture_output=True, timeout=20)
    return (r.stdout + r.stderr).decode(errors="replace")


@pytest.fixture
def proxy(start_portico, certs, backend):
    return start_portico([site(["a.test"], backend, certs.a), site(["*.w.test"], backend, certs.wild)])


def test_exact_name_gets_its_certificate(proxy, certs):
    assert peer_names(proxy.https_port, "a.test", certs.ca) == ["a.test"]


def test_wildcard_covers_one_label(proxy, certs):
    assert peer_names(proxy.https_port, "x.w.test", certs.ca) == ["*.w.test"]


@pytest.mark.parametrize("name", ["w.test", "a.b.w.test", "unknown.test"])
def test_names_outside_every_pattern_get_unrecognized_name(proxy, certs, name):
    out = alert_for(proxy.https_port, ["-servername", name])
    assert "alert number 112" in out or "unrecognized name" in out, out
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        peer_names(proxy.https_port, name, certs.ca)


def test_no_sni_gets_unrecognized_name(proxy):
    out = alert_for(proxy.https_port, ["-noservername"])
    assert "alert number 112" in out or "unrecognized name" in out, out


def test_catch_all_site_answers_unknown_names(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a), site(["*"], backend, certs.catchall)])
    assert peer_names(p.https_port, "a.test", certs.ca) == ["a.test"]
    with tls_connect(p.https_port, "unknown.test") as s:
        cert = s.getpeercert(binary_form=True)
    assert cert is not None
    out = alert_for(p.https_port, ["-servername", "unknown.test"])
    assert "catchall.test" in out


def test_tls13_ticket_arrives_without_a_request(proxy):
    """The NewSessionTicket (RFC 8446 §4.6.1) is sent right after the
    handshake, before the client writes anything. BoringSSL holds it until
    the first write unless told otherwise; held back, a client without
    TCP_NODELAY (Python's ssl here) sat 40 ms on its first request (Nagle
    waiting for portico's delayed ACK). Then a resumption with that ticket
    must work."""
    import select
    ctx = ssl._create_unverified_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    import socket
    raw = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="a.test")
    readable, _, _ = select.select([s], [], [], 5)
    assert readable, "no post-handshake data (ticket) within 5 s of the handshake"
    s.setblocking(False)
    try:
        s.recv(1)  # processes the ticket; no application data is expected
    except ssl.SSLWantReadError:
        pass
    session = s.session
    assert session is not None and session.has_ticket
    s.close()
    raw2 = socket.create_connection(("127.0.0.1", proxy.https_port), timeout=10)
    with ctx.wrap_socket(raw2, server_hostname="a.test", session=session) as s2:
        assert s2.session_reused
