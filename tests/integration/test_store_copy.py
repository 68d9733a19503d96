"""`portico store copy` between a cache directory and a real redis-server
(started here on a free port; build.sh installs it): a round trip keeps
every byte, private keys are encrypted at rest in Redis, challenges expire,
and the errors when Redis is away or the URL is rediss:// are clear."""
import hashlib
import subprocess

import pytest

from fleet_env import Redis
from harness import PORTICO

CA_URL = "https://ca.test/dir"
KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


def ca_id(url):
    host = url.split("://", 1)[1].split("/", 1)[0]
    return host + "-" + hashlib.sha256(url.encode()).hexdigest()[:16]


@pytest.fixture
def redis(tmp_path):
    r = Redis(str(tmp_path))
    yield r
    r.stop()


@pytest.fixture
def cache(tmp_path, certs):
    """A cache directory in the documented layout (docs/cache.md)."""
    root = tmp_path / "cache"
    files = {}
    a_cert, a_key = certs.a
    w_cert, w_key = certs.wild
    items = {
        "certs/a.test/cert.pem": open(a_cert, "rb").read(),
        "certs/a.test/key.pem": open(a_key, "rb").read(),
        "certs/a.test/meta.json": b'{"names":["a.test"]}',
        "certs/_wildcard.w.test/cert.pem": open(w_cert, "rb").read(),
        "certs/_wildcard.w.test/key.pem": open(w_key, "rb").read(),
        f"accounts/{ca_id(CA_URL)}/account.json": b'{"kid":"k1","directory":"%s"}' % CA_URL.encode(),
        f"accounts/{ca_id(CA_URL)}/account.key": open(a_key, "rb").read(),
        "failures/b.test.json": b'{"name":"b.test","failures":1}',
        "challenges/tok-EN_1": b"tok-EN_1.thumbprint",
    }
    for rel, data in items.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_bytes(data)
        path.chmod(0o600)
        files[rel] = data
    (root / "version").write_bytes(b"1\n")
    return root, files


def copy(*args):
    return subprocess.run([PORTICO, "store", "copy", *args], capture_output=True, text=True,
                          timeout=60)


def key_file(tmp_path):
    k = tmp_path / "store.key"
    k.write_text(KEY_HEX + "\n")
    k.chmod(0o600)
    return str(k)


def test_round_trip_with_encryption_at_rest(tmp_path, redis, cache):
    root, files = cache
    kf = key_file(tmp_path)
    r = copy(str(root), redis.url, "--key-file", kf)
    assert r.returncode == 0, r.stderr
    assert ("copied 1 account, 2 certificates, 0 jobs, 1 failure record, 1 challenge (9 values); "
            "0 errors") in r.stdout

    # A dump of Redis shows no private key: neither PEM nor the key's bytes.
    for key in ("portico:certs:a.test:key.pem", "portico:certs:_wildcard.w.test:key.pem",
                f"portico:accounts:{ca_id(CA_URL)}:account.key"):
        raw = redis.cli("GET", key)
        assert raw.startswith(b"PXE1"), key
        assert b"BEGIN" not in raw and b"PRIVATE" not in raw
        body = files["certs/a.test/key.pem"].splitlines()[1]
        assert body not in raw
    # Public parts are as they were; challenge material expires.
    assert redis.cli("GET", "portico:certs:a.test:cert.pem") == files["certs/a.test/cert.pem"]
    ttl = int(redis.cli("TTL", "portico:challenges:tok-EN_1"))
    assert 0 < ttl <= 3600

    back = tmp_path / "back"
    r = copy(redis.url, str(back), "--key-file", kf)
    assert r.returncode == 0, r.stderr
    for rel, data in files.items():
        path = back / rel
        assert path.read_bytes() == data, rel
        assert (path.stat().st_mode & 0o777) == 0o600

    # Without the key (or with another) the keys do not come out.
    r = copy(redis.url, str(tmp_path / "nokey"))
    assert r.returncode == 1
    assert "key.pem: cannot read" in r.stderr
    assert "is encrypted and no storage_key_file is set" in r.stderr
    other = tmp_path / "other.key"
    other.write_text("ff" * 32)
    r = copy(redis.url, str(tmp_path / "wrongkey"), "--key-file", str(other))
    assert r.returncode == 1
    assert "does not decrypt" in r.stderr


def test_prefixes_and_plain_copy(tmp_path, redis, cache):
    root, files = cache
    r = copy(str(root), redis.url, "--dst-prefix", "fleet1:")
    assert r.returncode == 0, r.stderr
    assert "unencrypted" in r.stdout
    assert redis.cli("GET", "fleet1:certs:a.test:key.pem") == files["certs/a.test/key.pem"]
    assert redis.cli("EXISTS", "portico:certs:a.test:key.pem") == b"0"
    # Redis to Redis, another prefix.
    r = copy(redis.url, redis.url, "--src-prefix", "fleet1:", "--dst-prefix", "fleet2:")
    assert r.returncode == 0, r.stderr
    assert "2 certificates" in r.stdout
    assert redis.cli("EXISTS", "fleet2:certs:_wildcard.w.test:cert.pem") == b"1"


def test_errors(tmp_path, redis, cache):
    root, _ = cache
    r = copy("rediss://127.0.0.1:6380/0", str(tmp_path / "x"))
    assert r.returncode == 1
    assert "stunnel" in r.stderr
    r = copy(str(root), "redis://u:secret@127.0.0.1:1/0")
    assert r.returncode == 1
    assert "secret" not in r.stderr and "storage_password_file" in r.stderr
    r = copy(str(root), str(tmp_path / "y"), "--dst-key-file", "/nonexistent")
    assert r.returncode == 1
    assert "storage_key_file applies only to a redis:// storage" in r.stderr
    r = copy(str(root))
    assert r.returncode == 2

    redis.stop()
    r = copy(str(root), redis.url)
    assert r.returncode == 1
    assert f"redis://127.0.0.1:{redis.port}/0" in r.stderr
    assert "Connection refused" in r.stderr
    # Back up: the same command works.
    redis.start()
    r = copy(str(root), redis.url)
    assert r.returncode == 0, r.stderr


def check(tmp_path, storage_lines):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(storage_lines + """
listen: {https: "127.0.0.1:8443"}
acme: {directory: "https://ca.test/dir", accept_terms: true}
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8080"]
    tls: acme
""")
    r = subprocess.run([PORTICO, "-c", str(cfg), "--check"], capture_output=True, text=True,
                       timeout=30)
    return r, str(cfg)


def test_config_keys(tmp_path):
    kf = key_file(tmp_path)
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    r, _ = check(tmp_path, f"""storage: "redis://portico@127.0.0.1:6379/2"
storage_prefix: "fleet1:"
storage_password_file: {pw}
storage_key_file: {kf}""")
    assert r.returncode == 0, r.stderr
    r, path = check(tmp_path, f"""storage: {tmp_path}/cache
storage_key_file: {kf}""")
    assert r.returncode == 1
    assert f"{path}:2: storage_key_file: applies only to a redis:// storage" in r.stderr
    r, path = check(tmp_path, """storage: "redis://127.0.0.1:6379"
storage_password_file: /nonexistent/pw""")
    assert r.returncode == 1
    assert f"{path}:2: storage_password_file: cannot read /nonexistent/pw" in r.stderr
    r, path = check(tmp_path, 'storage: "rediss://127.0.0.1:6380"')
    assert r.returncode == 1
    assert f"{path}:1: storage: rediss:// is not supported" in r.stderr and "stunnel" in r.stderr
