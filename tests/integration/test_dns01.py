"""dns-01 against a real BIND 9 and a real Pebble 2.4 whose VA asks that BIND
for _acme-challenge names: RFC 2136 updates signed with TSIG, wildcard
certificates, CNAME delegation, cleanup (also after kill -9), the hook
provider with a script calling nsupdate, the CAA check before an on-demand
order, and the --check errors."""
import os
import signal
import ssl
import subprocess
import time

import pytest

from bind_env import KEY_NAME, Bind, Resolver
from harness import PORTICO, Backend, Portico, free_port, tls_alert_for_sni, wait_for
from pebble_env import Pebble

ZONES = {
    "example.test": [
        "www A 127.0.0.1",
        # CNAME delegation: shop's challenge record lives in another zone.
        "_acme-challenge.shop CNAME shop.acme-delegate.test.",
        "denied CAA 0 issue \"other-ca.example\"",
        "allowed CAA 0 issue \"pebble.test; validationmethods=dns-01\"",
        # Four stale values of 200 bytes: a TXT answer over 512 bytes, too
        # large for a UDP answer without EDNS (RFC 1035 §4.2.1).
    ] + [f"_acme-challenge.big TXT \"{chr(97 + i) * 200}\"" for i in range(4)],
    "acme-delegate.test": [],
}


class Env:
    def __init__(self, tmp, sites, dns_yaml=None, extra=""):
        self.tmp = tmp
        self.bind = Bind(tmp, ZONES)
        self.resolver = None
        self.https_port, self.http_port = free_port(), free_port()
        self.backend = Backend(tmp, "app")
        try:
            # Pebble's VA asks a recursive resolver in front of the BIND.
            self.resolver = Resolver(tmp, self.bind)
            self.pebble = Pebble(tmp, self.https_port, self.http_port,
                                 dns_server=self.resolver.address)
        except BaseException:
            self.backend.stop()
            self.bind.stop()
            if self.resolver:
                self.resolver.stop()
            raise
        self.root = os.path.join(tmp, "pebble-root.pem")
        with open(self.root, "w") as f:
            f.write(self.pebble.root_pem())
        if dns_yaml is None:
            dns_yaml = self.rfc2136_yaml()
        self.extra = self.pebble.acme_yaml(("dns-01",)) + dns_yaml + extra
        self.sites = [dict(s, upstreams=[self.backend.address]) for s in sites]
        self.portico = None

    def rfc2136_yaml(self, secret_file=None, propagation="20s"):
        return ("  dns:\n    provider: rfc2136\n"
                f"    server: \"{self.bind.address}\"\n"
                f"    tsig: {{name: {KEY_NAME}, algorithm: hmac-sha256, "
                f"secret_file: \"{secret_file or self.bind.key_file}\"}}\n"
                f"    propagation_timeout: {propagation}\n")

    def start(self):
        self.portico = Portico(self.tmp, self.sites, extra=self.extra, ca=self.root,
                               https_port=self.https_port, http_port=self.http_port)
        return self.portico

    def stop(self):
        if self.portico:
            self.portico.kill()
        self.pebble.stop()
        self.backend.stop()
        self.bind.stop()
        self.resolver.stop()


@pytest.fixture
def make_env(tmp_path):
    envs = []

    def make(sites, **kw):
        e = Env(str(tmp_path), sites, **kw)
        envs.append(e)
        return e
    yield make
    for e in envs:
        e.stop()


def served_names(env, sni):
    """The certificate's SANs served for `sni`, trusted through Pebble's root."""
    ctx = ssl.create_default_context(cafile=env.root)
    import socket
    with socket.create_connection(("127.0.0.1", env.https_port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            cert = t.getpeercert()
    return sorted(v for k, v in cert.get("subjectAltName", ()) if k == "DNS")


def log_has(env, text):
    return text in env.portico.log_text()


def test_wildcard_and_base_issued_and_records_removed(make_env):
    # With a "*" on-demand site beside it: a name below the wildcard still
    # gets the wildcard's certificate and never an order of its own.
    env = make_env([{"hosts": ["*.example.test", "example.test"], "tls": "acme"},
                    {"hosts": ["*"], "tls": "on_demand"}])
    seen = []
    env.start()
    # The two values share _acme-challenge.example.test: while the order
    # runs both are written (the wildcard's stays until the order ends).
    def watch():
        vals = env.bind.txt("_acme-challenge.example.test")
        if vals:
            seen.append(tuple(vals))
        return "certificate for *.example.test and others ready" in env.portico.log_text()
    wait_for(watch, timeout=60, what="the wildcard certificate", interval=0.05)
    assert served_names(env, "anything.example.test") == ["*.example.test", "example.test"]
    assert served_names(env, "example.test") == ["*.example.test", "example.test"]
    assert any(len(v) == 2 for v in seen), f"never two values at once: {seen}"
    wait_for(lambda: env.bind.txt("_acme-challenge.example.test") == [], timeout=10,
             what="the TXT records to be removed")
    text = env.portico.log_text()
    assert "dns-01: removed the TXT record at _acme-challenge.example.test" in text
    # Without resolvers, propagation is checked at the zone's NS servers
    # (ns.example.test, found by its NS record and glue).
    assert ("dns-01: checking _acme-challenge.example.test at 1 authoritative server of "
            "example.test") in text
    # A name below the wildcard is served its certificate, never an order.
    orders = env.pebble.new_orders()
    assert served_names(env, "other.example.test") == ["*.example.test", "example.test"]
    assert env.pebble.new_orders() == orders
    assert env.portico.finish() == []


def wait_ready(env, first_name, timeout=60):
    wait_for(lambda: f"certificate for {first_name}" in env.portico.log_text() and
             "ready" in env.portico.log_text(), timeout=timeout, what=f"the certificate for {first_name}")


def test_cname_delegation_writes_in_the_target_zone(make_env):
    env = make_env([{"hosts": ["shop.example.test"], "tls": "acme"}])
    seen = []
    env.start()

    def watch():
        seen.extend(env.bind.txt("shop.acme-delegate.test"))
        return "certificate for shop.example.test ready" in env.portico.log_text()
    wait_for(watch, timeout=60, what="the certificate", interval=0.05)
    assert seen, "the record never appeared at the CNAME's target"
    text = env.portico.log_text()
    assert ("dns-01: _acme-challenge.shop.example.test is a CNAME to shop.acme-delegate.test"
            in text)
    assert "written in zone acme-delegate.test" in text
    assert served_names(env, "shop.example.test") == ["shop.example.test"]
    wait_for(lambda: env.bind.txt("shop.acme-delegate.test") == [], timeout=10,
             what="the record to be removed")
    assert env.portico.finish() == []


def test_bad_tsig_secret_fails_the_order_and_leaves_nothing(make_env, tmp_path):
    bad = tmp_path / "wrong.key"
    bad.write_text("c2VjcmV0IHRoYXQgYmluZCBkb2VzIG5vdCBrbm93IGF0IGFsbA==\n")
    os.chmod(bad, 0o600)
    env = make_env([{"hosts": ["www.example.test"], "tls": "acme"}])
    env.extra = env.pebble.acme_yaml(("dns-01",)) + env.rfc2136_yaml(secret_file=str(bad))
    env.start()
    wait_for(lambda: "TSIG" in env.portico.log_text(), timeout=30, what="the TSIG failure")
    text = env.portico.log_text()
    assert "refused the TSIG signature of key portico-key: BADSIG" in text
    # The failure is recorded with its backoff: the next attempt is later.
    wait_for(lambda: "failed (1 in a row)" in env.portico.log_text(), timeout=10, what="the backoff")
    assert "next attempt in 60 s (backoff)" in env.portico.log_text()
    assert env.bind.txt("_acme-challenge.www.example.test") == []
    # Nothing was written, so nothing is noted for removal either.
    assert os.listdir(os.path.join(env.tmp, "storage", "dns")) == []
    # Pebble was never asked to validate: the challenge was not answered.
    assert "POST /chalZ" not in env.pebble.log_text()
    assert env.portico.finish() == []


def test_hook_provider_with_nsupdate(make_env, tmp_path):
    env = make_env([{"hosts": ["*.example.test"], "tls": "acme"}], dns_yaml="")
    script = env.bind.nsupdate_script(str(tmp_path / "hook.sh"))
    env.extra += (f"  dns:\n    provider: hook\n    command: [\"{script}\"]\n"
                  f"    resolvers: [\"{env.bind.address}\"]\n    propagation_timeout: 20s\n")
    env.start()
    seen = []

    def watch():
        seen.extend(env.bind.txt("_acme-challenge.example.test"))
        return "certificate for *.example.test ready" in env.portico.log_text()
    wait_for(watch, timeout=60, what="the certificate", interval=0.05)
    assert seen
    assert "TXT record at _acme-challenge.example.test written (hook)" in env.portico.log_text()
    wait_for(lambda: env.bind.txt("_acme-challenge.example.test") == [], timeout=10,
             what="the record to be removed by the hook")
    assert served_names(env, "x.example.test") == ["*.example.test"]
    assert env.portico.finish() == []


def test_hook_failure_reports_its_stderr(make_env, tmp_path):
    script = tmp_path / "fail.sh"
    script.write_text("#!/bin/sh\necho \"zone API says: quota exceeded for $2\" >&2\nexit 3\n")
    os.chmod(script, 0o755)
    env = make_env([{"hosts": ["www.example.test"], "tls": "acme"}], dns_yaml="")
    env.extra += f"  dns:\n    provider: hook\n    command: [\"{script}\"]\n"
    env.start()
    wait_for(lambda: "quota exceeded" in env.portico.log_text(), timeout=30, what="the hook's stderr")
    text = env.portico.log_text()
    assert ("acme.dns.command present _acme-challenge.www.example.test: exit status 3; it said: "
            "zone API says: quota exceeded for _acme-challenge.www.example.test") in text
    assert env.portico.finish() == []


def test_kill_between_write_and_cleanup_is_cleaned_at_next_start(make_env, tmp_path):
    """The hook writes the record with nsupdate, then blocks until the test
    releases it; portico is killed -9 in that window. The next start
    removes the record the store still notes."""
    real = tmp_path / "real.sh"
    release = tmp_path / "release"
    written = tmp_path / "written"
    env = make_env([{"hosts": ["www.example.test"], "tls": "acme"}], dns_yaml="")
    env.bind.nsupdate_script(str(real))
    script = tmp_path / "hook.sh"
    script.write_text("#!/bin/sh\nset -e\n"
                      f"\"{real}\" \"$@\"\n"
                      f"if [ \"$1\" = present ]; then touch \"{written}\"; "
                      f"while [ ! -e \"{release}\" ]; do sleep 0.05; done; fi\n")
    os.chmod(script, 0o755)
    env.extra += (f"  dns:\n    provider: hook\n    command: [\"{script}\"]\n"
                  f"    resolvers: [\"{env.bind.address}\"]\n")
    env.start()
    wait_for(lambda: written.exists(), timeout=30, what="the hook to write the record")
    assert len(env.bind.txt("_acme-challenge.www.example.test")) == 1
    notes = os.listdir(os.path.join(env.tmp, "storage", "dns"))
    assert len(notes) == 1 and notes[0].startswith("txt-")
    env.portico.proc.send_signal(signal.SIGKILL)
    env.portico.proc.wait()
    release.write_text("")  # the orphaned hook (its own session) ends too
    assert len(env.bind.txt("_acme-challenge.www.example.test")) == 1
    # Next start, with a site that orders nothing: only the cleanup runs.
    env.sites = [dict(s, tls="acme", hosts=["other.test"]) for s in env.sites]
    env.portico.err.close()
    env.portico = Portico(env.tmp, env.sites, extra=env.extra, ca=env.root,
                          https_port=env.https_port, http_port=env.http_port)
    wait_for(lambda: env.bind.txt("_acme-challenge.www.example.test") == [], timeout=20,
             what="the left record to be removed")
    assert "removing the TXT record at _acme-challenge.www.example.test left by an earlier run" \
        in env.portico.log_text()
    wait_for(lambda: os.listdir(os.path.join(env.tmp, "storage", "dns")) == [], timeout=10,
             what="the note to go")
    env.portico.kill()


def check(tmp_path, text):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    r = subprocess.run([PORTICO, "-c", str(cfg), "--check"], capture_output=True, text=True, timeout=30)
    return r, str(cfg)


def test_check_wildcard_needs_dns01(tmp_path):
    r, path = check(tmp_path, """listen: {https: "127.0.0.1:8443"}
sites:
  - hosts: [example.test,
            "*.example.test"]
    upstreams: ["127.0.0.1:8080"]
    tls: acme
""")
    assert r.returncode != 0
    assert (f'{path}:4: sites[0].hosts[1]: "*.example.test" is a wildcard, which can only be '
            "validated by the dns-01 challenge: set up acme.dns") in r.stderr


def test_check_dns_errors_name_file_line_and_key(tmp_path):
    missing = tmp_path / "missing.key"
    r, path = check(tmp_path, f"""listen: {{https: "127.0.0.1:8443"}}
acme:
  challenges: [dns-01]
  dns:
    provider: rfc2136
    server: "127.0.0.1:53"
    tsig:
      name: portico-key
      algorithm: hmac-md5
      secret_file: "{missing}"
sites:
  - hosts: ["*.example.test"]
    upstreams: ["127.0.0.1:8080"]
    tls: acme
""")
    assert r.returncode != 0
    err = r.stderr
    assert (f'{path}:9: acme.dns.tsig.algorithm: "hmac-md5" is not a known algorithm: '
            "hmac-sha256, hmac-sha512 or hmac-sha1") in err
    assert f"{path}:10: acme.dns.tsig.secret_file: cannot read {missing}: No such file" in err
    # acme.dns is there, so the wildcard itself is fine.
    assert "wildcard" not in err


def test_check_dns01_listed_without_acme_dns_and_bad_server(tmp_path):
    r, path = check(tmp_path, """listen: {https: "127.0.0.1:8443"}
acme:
  challenges: [http-01, dns-01]
sites:
  - hosts: [example.test]
    upstreams: ["127.0.0.1:8080"]
    tls: acme
""")
    assert r.returncode != 0
    assert f"{path}:3: acme.challenges: lists dns-01, which needs acme.dns" in r.stderr
    r, path = check(tmp_path, """listen: {https: "127.0.0.1:8443"}
acme:
  dns:
    provider: rfc2136
    server: ns1.example.test
    tsig: {name: k}
sites:
  - hosts: [example.test]
    upstreams: ["127.0.0.1:8080"]
    tls: acme
""")
    assert r.returncode != 0
    assert f'{path}:5: acme.dns.server: "ns1.example.test" is not an IP address' in r.stderr
    assert f"{path}:6: acme.dns.tsig.secret_file: is required" in r.stderr


def test_check_good_dns_config_passes(tmp_path):
    key = tmp_path / "tsig.key"
    key.write_text('key "k" { algorithm hmac-sha256; secret "c2VjcmV0IGJ5dGVz"; };\n')
    hook = tmp_path / "hook"
    r, _ = check(tmp_path, f"""listen: {{https: "127.0.0.1:8443"}}
acme:
  challenges: [tls-alpn-01, http-01, dns-01]
  dns:
    provider: rfc2136
    server: "127.0.0.1:5353"
    zone: example.test
    tsig: {{name: k, algorithm: hmac-sha512, secret_file: "{key}"}}
    propagation_timeout: 2m
    resolvers: ["127.0.0.1", "[::1]:53"]
sites:
  - hosts: ["*.example.test", example.test]
    upstreams: ["127.0.0.1:8080"]
    tls: acme
""")
    assert r.returncode == 0, r.stderr
    r, _ = check(tmp_path, f"""listen: {{https: "127.0.0.1:8443"}}
acme:
  dns: {{provider: hook, command: ["{hook}", "--zone", "example.test"]}}
sites:
  - hosts: ["*.example.test"]
    upstreams: ["127.0.0.1:8080"]
    tls: acme
""")
    assert r.returncode == 0, r.stderr


def test_caa_refuses_before_any_order(make_env):
    env = make_env([{"hosts": ["*"], "tls": "on_demand"}],
                   extra="  caa_identities: [pebble.test]\n")
    env.start()
    alert = tls_alert_for_sni(env.https_port, b"denied.example.test")
    assert alert is not None
    wait_for(lambda: "refused denied.example.test before ordering" in env.portico.log_text(),
             timeout=10, what="the CAA refusal")
    assert ('the CAA records at denied.example.test (RFC 8659) allow "other-ca.example", not this '
            "CA (acme.caa_identities: pebble.test)") in env.portico.log_text()
    assert env.pebble.new_orders() == 0
    # A name whose CAA names this CA, and one below it without any, are issued.
    assert served_names(env, "allowed.example.test") == ["allowed.example.test"]
    assert served_names(env, "sub.allowed.example.test") == ["sub.allowed.example.test"]
    assert env.pebble.new_orders() == 2
    assert env.portico.finish() == []


def test_truncated_answers_are_read_over_tcp(make_env):
    """The TXT set at _acme-challenge.big.example.test is over 512 bytes, so
    the UDP answer to the propagation query is truncated (TC) and portico
    reads it again over TCP, finds its value among the others, and removes
    only its own. Whether Pebble's VA sees the value depends on what the
    recursive resolver in front of BIND has fetched by then (the
    authorization was seen to fail and to pass), so the order may end
    either way: the test checks portico's side."""
    env = make_env([{"hosts": ["big.example.test"], "tls": "acme"}])
    env.start()
    ended = ("issuance for big.example.test failed", "certificate for big.example.test ready")
    wait_for(lambda: any(e in env.portico.log_text() for e in ended), timeout=60,
             what="the order to end", context=env.portico.log_text)
    text = env.portico.log_text()
    assert "is truncated; asking again over TCP" in text
    assert "TXT record at _acme-challenge.big.example.test visible at 1 server" in text
    wait_for(lambda: "removed the TXT record at _acme-challenge.big.example.test" in env.portico.log_text(),
             timeout=10, what="our value to be removed")
    assert len(env.bind.txt("_acme-challenge.big.example.test")) == 4
    assert env.portico.finish() == []
