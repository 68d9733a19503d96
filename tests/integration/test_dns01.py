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

from bind_env import KEY_NAME, Bind
from harness import PORTICO, Backend, Portico, free_port, wait_for
from pebble_env import Pebble

ZONES = {
    "example.test": [
        "www A 127.0.0.1",
        # CNAME delegation: shop's challenge record lives in another zone.
        "_acme-challenge.shop CNAME shop.acme-delegate.test.",
        "denied CAA 0 issue \"other-ca.example\"",
    ],
    "acme-delegate.test": [],
}


class Env:
    def __init__(self, tmp, sites, dns_yaml=None, extra=""):
        self.tmp = tmp
        self.bind = Bind(tmp, ZONES)
        self.https_port, self.http_port = free_port(), free_port()
        self.backend = Backend(tmp, "app")
        try:
            self.pebble = Pebble(tmp, self.https_port, self.http_port, dns_server=self.bind.address)
        except BaseException:
            self.backend.stop()
            self.bind.stop()
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
    env = make_env([{"hosts": ["*.example.test", "example.test"], "tls": "acme"}])
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
    # A name below the wildcard is served its certificate, never an order.
    orders = env.pebble.new_orders()
    assert served_names(env, "other.example.test") == ["*.example.test", "example.test"]
    assert env.pebble.new_orders() == orders
    assert env.portico.finish() == []
