"""IP address certificates (RFC 8738) for `tls: acme` sites, against a real
Pebble 2.4 (which validates "ip" identifiers: http-01 at the address with
Host = the address, tls-alpn-01 with the reverse-DNS name as SNI). A client
of https://127.0.0.1/ sends no SNI (RFC 6066 §3), so portico picks the
certificate by the address the connection arrived on."""
import os
import subprocess

import pytest

from harness import PORTICO, Backend, Portico, free_port, wait_for
from pebble_env import Pebble


class IpEnv:
    def __init__(self, tmp, challenges, addr="127.0.0.1"):
        # `addr`: the address portico listens on and the site's host, as a
        # URL writes it ("[::1]" for IPv6).
        self.addr = addr
        self.tmp = tmp
        self.https_port, self.http_port = free_port(), free_port()
        self.backend = Backend(tmp, "ipapp")
        try:
            self.pebble = Pebble(tmp, self.https_port, self.http_port)
        except BaseException:
            self.backend.stop()
            raise
        self.root = os.path.join(tmp, "pebble-root.pem")
        with open(self.root, "w") as f:
            f.write(self.pebble.root_pem())
        try:
            self.portico = Portico(tmp, [{"hosts": [addr], "upstreams": [self.backend.address],
                                          "tls": "acme"}],
                                   extra=self.pebble.acme_yaml(challenges), ca=self.root,
                                   https_port=self.https_port, http_port=self.http_port, host=addr)
        except BaseException:
            self.pebble.stop()
            self.backend.stop()
            raise

    def stop(self):
        reports = self.portico.sanitizer_reports()
        self.portico.kill()
        self.pebble.stop()
        self.backend.stop()
        assert reports == []


def curl_ip(env):
    """curl https://127.0.0.1:PORT/ as a browser would: no --resolve, so no
    SNI, and the certificate verified against Pebble's root (curl checks
    the address against the iPAddress SAN)."""
    return subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", env.root,
                           "-w", "\n%{http_code}", f"https://{env.addr}:{env.https_port}/echo"],
                          capture_output=True, timeout=30)


def issued_and_served(env, challenge, cache_name="127.0.0.1"):
    result = {}

    def ok():
        result["r"] = curl_ip(env)
        return result["r"].stdout.endswith(b"\n200")
    try:
        wait_for(ok, timeout=60, what="the IP certificate")
    except TimeoutError:
        raise AssertionError(f"curl: {result['r'].stderr!r}\n{env.portico.log_text()}")
    assert b'"backend": "ipapp"' in result["r"].stdout
    log = env.portico.log_text()
    assert f"answering {challenge} for {env.addr}" in log, log
    if challenge == "tls-alpn-01":  # the reverse-DNS SNI was mapped back to the address
        assert f"answered tls-alpn-01 for {env.addr}" in log, log
    # The certificate names the address as an iPAddress, not a dNSName.
    pem = open(os.path.join(env.tmp, "storage", "certs", cache_name, "cert.pem")).read()
    text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName"], input=pem,
                          capture_output=True, text=True).stdout
    want = "IP Address:" + ("0:0:0:0:0:0:0:1" if env.addr == "[::1]" else env.addr)
    assert want in text and "DNS:" not in text, text
    # The cache reads it back as covering the address: nothing set aside.
    quarantine = os.path.join(env.tmp, "storage", "quarantine")
    assert not os.path.exists(quarantine) or os.listdir(quarantine) == []
    assert "set aside" not in log


def test_ip_certificate_by_http_01(tmp_path):
    env = IpEnv(str(tmp_path), ("http-01",))
    try:
        issued_and_served(env, "http-01")
        assert "/.well-known/acme-challenge/" in env.portico.access_log_text()
        # portico ctl takes the address as a name, as the job knows it.
        r = subprocess.run([PORTICO, "ctl", "-c", env.portico.config, "show", "127.0.0.1"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "127.0.0.1" in r.stdout, r
    finally:
        env.stop()


def test_ip_certificate_by_tls_alpn_01(tmp_path):
    env = IpEnv(str(tmp_path), ("tls-alpn-01",))
    try:
        issued_and_served(env, "tls-alpn-01")
        # A handshake naming another name still gets no certificate.
        r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", env.root, "--resolve",
                            f"other.test:{env.https_port}:127.0.0.1",
                            f"https://other.test:{env.https_port}/"], capture_output=True)
        assert r.returncode != 0
    finally:
        env.stop()


def ipv6_loopback():
    import socket
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback here")
@pytest.mark.parametrize("challenge", ["http-01", "tls-alpn-01"])
def test_ipv6_certificate(tmp_path, challenge):
    # Pebble connects to [::1]; http-01 carries Host: [::1]:port, tls-alpn-01
    # the 32-nibble ip6.arpa name as SNI. The cache names it _ip6.--1.
    env = IpEnv(str(tmp_path), (challenge,), addr="[::1]")
    try:
        issued_and_served(env, challenge, cache_name="_ip6.--1")
        # Another spelling of the same address in Host is the same site
        # (RFC 5952 canonical form), not a misdirected request.
        r = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", env.root, "-H",
                            f"Host: [0:0::1]:{env.https_port}", "-w", "\n%{http_code}",
                            f"https://[::1]:{env.https_port}/echo"], capture_output=True, timeout=30)
        assert r.stdout.endswith(b"\n200"), (r.stdout[-300:], r.stderr)
    finally:
        env.stop()


def test_no_sni_without_ip_site_is_refused(tmp_path, certs):
    # Unchanged: no SNI and no site for the address means no certificate.
    backend = Backend(str(tmp_path), "app")
    p = Portico(str(tmp_path), [{"hosts": ["a.test"], "upstreams": [backend.address],
                                 "cert": certs.a[0], "key": certs.a[1]}])
    try:
        r = subprocess.run(["curl", "-sSk", "--max-time", "10", f"https://127.0.0.1:{p.https_port}/"],
                           capture_output=True)
        assert r.returncode != 0
    finally:
        p.kill()
        backend.stop()


ACME = """acme:
  directory: "https://127.0.0.1:1/dir"
  accept_terms: true
  email: ops@example.com
"""


def check(tmp_path, sites, acme=ACME):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f'listen: {{https: "127.0.0.1:8443", http: "127.0.0.1:8080"}}\n{acme}sites:\n{sites}')
    return subprocess.run([PORTICO, "-c", str(cfg), "--check"], capture_output=True, text=True,
                          timeout=30), str(cfg)


def test_check_accepts_addresses_in_tls_acme(tmp_path):
    r, _ = check(tmp_path, """  - hosts: [203.0.113.5, "2001:DB8::1", "[::1]", www.example.com]
    upstreams: ["127.0.0.1:9000"]
    tls: acme
""")
    assert r.returncode == 0, r.stderr


def test_check_refuses_addresses_on_demand(tmp_path):
    r, path = check(tmp_path, """  - hosts: [www.example.com, 203.0.113.5]
    upstreams: ["127.0.0.1:9000"]
    tls: on_demand
""")
    assert r.returncode != 0
    assert f"{path}:" in r.stderr and "sites[0].hosts[1]" in r.stderr
    assert "203.0.113.5" in r.stderr and "on_demand" in r.stderr, r.stderr


def test_check_refuses_addresses_with_dns_01_only(tmp_path):
    r, path = check(tmp_path, """  - hosts: ["::1"]
    upstreams: ["127.0.0.1:9000"]
    tls: acme
""", acme=ACME + "  challenges: [dns-01]\n  dns: {provider: hook, command: /bin/true}\n")
    assert r.returncode != 0
    assert "[::1]" in r.stderr and "RFC 8738" in r.stderr, r.stderr
