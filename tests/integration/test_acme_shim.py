"""The ARI shim (acme_shim.py) against a real Pebble 2.4. Pebble has no
renewalInfo and no rate limits, so the lifecycle tests put this SHIM in
front of it; these tests prove the shim itself does what they rely on:
the directory is rewritten, renewalInfo is served with the window the test
sets, signed requests pass through it to Pebble (which accepts the JWS
"url" because the shim forwards Host), `replaces` on newOrder is recorded,
and an injected 429 with Retry-After is answered and then cleared. No
portico here: a minimal ACME client in Python signs with the openssl CLI."""
import base64
import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from acme_shim import AcmeShim
from harness import free_port, run
from pebble_env import Pebble


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class MiniClient:
    """Just enough of RFC 8555 to register and order: ES256 via openssl."""

    def __init__(self, tmp, directory, ca):
        self.ctx = ssl.create_default_context(cafile=ca)
        self.key = os.path.join(tmp, "account.key")
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.key])
        der = run(["openssl", "ec", "-in", self.key, "-pubout", "-outform", "DER"]).stdout
        point = der[-65:]  # the uncompressed point 04 || x || y ends the SPKI
        self.jwk = {"crv": "P-256", "kty": "EC", "x": b64url(point[1:33]), "y": b64url(point[33:])}
        self.kid = None
        self.dir = self.get(directory)[1]

    def get(self, url):
        with urllib.request.urlopen(url, context=self.ctx, timeout=10) as r:
            return r.status, json.load(r), r.headers

    def nonce(self):
        req = urllib.request.Request(self.dir["newNonce"], method="HEAD")
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            return r.headers["Replay-Nonce"]

    def sign(self, data):
        der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=data,
                             check=True, capture_output=True).stdout
        # ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s (RFC 7518 §3.4)
        i, out = 2 if der[1] < 0x80 else 3, b""
        for _ in range(2):
            n = der[i + 1]
            out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
            i += 2 + n
        return out

    def post(self, url, payload):
        protected = {"alg": "ES256", "nonce": self.nonce(), "url": url}
        if self.kid:
            protected["kid"] = self.kid
        else:
            protected["jwk"] = self.jwk
        p64 = b64url(json.dumps(protected).encode())
        b64 = b64url(json.dumps(payload).encode())
        body = json.dumps({"protected": p64, "payload": b64,
                           "signature": b64url(self.sign(f"{p64}.{b64}".encode()))}).encode()
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/jose+json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
                return r.status, json.load(r), r.headers
        except urllib.error.HTTPError as e:
            with e:
                return e.code, json.load(e), e.headers

    def register(self):
        status, _, headers = self.post(self.dir["newAccount"], {"termsOfServiceAgreed": True})
        assert status == 201, status
        self.kid = headers["Location"]


@pytest.fixture
def shim(tmp_path):
    pebble = Pebble(str(tmp_path), free_port(), free_port())
    try:
        with AcmeShim(pebble) as s:
            yield s
    finally:
        pebble.stop()


def test_directory_is_rewritten_through_the_shim(shim):
    with urllib.request.urlopen(shim.directory, context=ssl.create_default_context(cafile=shim.pebble.ca)) as r:
        d = json.load(r)
    assert d["renewalInfo"] == f"{shim.base}/renewalInfo"
    for name in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"):
        assert d[name].startswith(shim.base + "/"), (name, d[name])
    # Pebble's own directory has no renewalInfo: that is why the shim exists.
    with urllib.request.urlopen(shim.pebble.directory, context=shim.upstream_ctx) as r:
        assert "renewalInfo" not in json.load(r)


def test_renewal_info_serves_the_test_window(shim, tmp_path):
    c = MiniClient(str(tmp_path), shim.directory, shim.pebble.ca)
    with pytest.raises(urllib.error.HTTPError) as e:
        c.get(f"{c.dir['renewalInfo']}/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
    assert e.value.code == 404  # no window set yet
    shim.set_window(1700000000, 1700086400, "https://ca.example/why")
    shim.set_window(1800000000, 1800000600, cert_id="other.id")
    status, doc, headers = c.get(f"{c.dir['renewalInfo']}/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
    assert status == 200
    assert doc == {"suggestedWindow": {"start": "2023-11-14T22:13:20Z", "end": "2023-11-15T22:13:20Z"},
                   "explanationURL": "https://ca.example/why"}
    assert headers["Retry-After"] == "21600"
    _, doc, _ = c.get(f"{c.dir['renewalInfo']}/other.id")
    assert doc["suggestedWindow"]["start"] == "2027-01-15T08:00:00Z"
    assert shim.polls == ["aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"] * 2 + ["other.id"]


def test_signed_requests_reach_pebble_and_replaces_is_recorded(shim, tmp_path):
    c = MiniClient(str(tmp_path), shim.directory, shim.pebble.ca)
    c.register()
    assert c.kid.startswith(shim.base + "/")
    ids = [{"type": "dns", "value": "shim.example"}]
    status, order, headers = c.post(c.dir["newOrder"], {"identifiers": ids})
    assert status == 201, order
    assert headers["Location"].startswith(shim.base + "/")
    assert order["finalize"].startswith(shim.base + "/")
    status, _, _ = c.post(c.dir["newOrder"], {"identifiers": ids, "replaces": "aYhb.AIdl"})
    assert status == 201
    assert shim.replaces_sent() == [None, "aYhb.AIdl"]
    # A CA that refuses `replaces` once: 409, then the same order without it passes.
    shim.reject_replaces = True
    status, problem, _ = c.post(c.dir["newOrder"], {"identifiers": ids, "replaces": "aYhb.AIdl"})
    assert status == 409 and problem["type"] == "urn:ietf:params:acme:error:alreadyReplaced"
    status, _, _ = c.post(c.dir["newOrder"], {"identifiers": ids})
    assert status == 201
    assert shim.pebble.new_orders() == 3  # the refused one never reached Pebble


def test_injected_429_with_retry_after_then_cleared(shim, tmp_path):
    c = MiniClient(str(tmp_path), shim.directory, shim.pebble.ca)
    c.register()
    ids = [{"type": "dns", "value": "limited.example"}]
    shim.inject("newOrder", 429, count=2, retry_after=120)
    for _ in range(2):
        status, problem, headers = c.post(c.dir["newOrder"], {"identifiers": ids})
        assert status == 429
        assert problem["type"] == "urn:ietf:params:acme:error:rateLimited"
        assert headers["Retry-After"] == "120"
        assert headers["Replay-Nonce"]  # a client can go on with a fresh nonce
    status, _, _ = c.post(c.dir["newOrder"], {"identifiers": ids})
    assert status == 201  # the count ran out: through to Pebble again
    # 503 on the directory until cleared.
    shim.inject("directory", 503, count=100, retry_after=None)
    with pytest.raises(urllib.error.HTTPError) as e:
        c.get(shim.directory)
    assert e.value.code == 503 and "Retry-After" not in e.value.headers
    shim.clear("directory")
    assert c.get(shim.directory)[0] == 200
    assert shim.pebble.new_orders() == 1
