"""acme.preferred_chain against a real Pebble 2.4 that offers an alternate
chain (PEBBLE_ALTERNATE_ROOTS=1): the chain whose topmost issuer is named
is the one saved and served; an unknown name keeps the default chain."""
import glob
import os
import re
import ssl
import subprocess
import urllib.request

from harness import wait_for
from test_acme import Env


def root_cn(pebble, i):
    ctx = ssl.create_default_context(cafile=pebble.ca)
    with urllib.request.urlopen(f"https://127.0.0.1:{pebble.mgmt_port}/roots/{i}", context=ctx) as r:
        pem = r.read()
    out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "multiline"],
                         input=pem, capture_output=True, check=True).stdout.decode()
    return re.search(r"commonName\s*=\s*(.+)", out).group(1).strip()


def top_issuer(tmp, name):
    with open(os.path.join(tmp, "storage", "certs", name, "cert.pem")) as f:
        pems = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", f.read(), re.S)
    out = subprocess.run(["openssl", "x509", "-noout", "-issuer", "-nameopt", "multiline"],
                         input=pems[-1].encode(), capture_output=True, check=True).stdout.decode()
    return re.search(r"commonName\s*=\s*(.+)", out).group(1).strip()


def issue(tmp, preferred):
    env = Env(tmp, pebble_env={"PEBBLE_ALTERNATE_ROOTS": "1"}, start=False,
              sites=[{"hosts": ["chain.test"], "upstreams": ["127.0.0.1:9"], "tls": "acme"}])
    try:
        default_root, alt_root = root_cn(env.pebble, 0), root_cn(env.pebble, 1)
        assert default_root != alt_root
        env.extra += f"  preferred_chain: \"{preferred(default_root, alt_root)}\"\n"
        env.start()
        wait_for(lambda: "certificate for chain.test ready" in env.portico.log_text(), timeout=60,
                 what="the certificate")
        return env, default_root, alt_root, top_issuer(tmp, "chain.test")
    except BaseException:
        env.stop()
        raise


def test_preferred_alternate_chain_is_used(tmp_path):
    env, default_root, alt_root, top = issue(str(tmp_path), lambda d, a: a)
    try:
        assert top == alt_root
        assert f'using the alternate chain to "{alt_root}" (acme.preferred_chain)' in env.portico.log_text()
        assert env.portico.finish() == []
    finally:
        env.stop()


def test_unknown_preferred_chain_keeps_the_default(tmp_path):
    env, default_root, alt_root, top = issue(str(tmp_path), lambda d, a: "No Such Root X9")
    try:
        assert top == default_root
        assert 'no chain\'s top issuer is "No Such Root X9"' in env.portico.log_text()
        assert env.portico.finish() == []
    finally:
        env.stop()
