"""ACME inside the proxy, against a real Pebble 2.4 with challtestsrv as its
DNS: certificates on demand (tls-alpn-01 and http-01), one order for many
waiting handshakes, the on-disk cache across restarts, policy refusals,
corrupt cache entries, an unreachable CA, and `tls: acme` sites."""
import concurrent.futures
import glob
import os
import ssl
import stat
import subprocess
import time

import pytest

from harness import Backend, Portico, free_port, tls_alert_for_sni
from pebble_env import Pebble


class Env:
    """A backend, Pebble and portico (by default one on-demand "*" site) on
    free ports; Pebble validates against portico's ports."""

    def __init__(self, tmp, extra="", challenges=("tls-alpn-01",), pebble_env=None, sites=None,
                 start=True, pebble_config=None):
        self.tmp = tmp
        self.https_port, self.http_port = free_port(), free_port()
        self.backend = Backend(tmp, "app")
        self.sites = sites or [{"hosts": ["*"], "upstreams": [self.backend.address], "tls": "on_demand"}]
        try:
            self.pebble = Pebble(tmp, self.https_port, self.http_port, env=pebble_env,
                                 config=pebble_config)
        except BaseException:
            self.backend.stop()  # nothing is left running when setup fails
            raise
        self.extra = self.pebble.acme_yaml(challenges) + extra
        self.root = os.path.join(tmp, "pebble-root.pem")
        with open(self.root, "w") as f:
            f.write(self.pebble.root_pem())
        self.portico = None
        if start:
            self.start()

    def start(self, env=None):
        self.portico = Portico(self.tmp, self.sites, extra=self.extra, ca=self.root,
                               https_port=self.https_port, http_port=self.http_port, env=env)

    def stop(self):
        if self.portico:
            self.portico.kill()
        self.pebble.stop()
        self.backend.stop()

    def storage(self):
        return os.path.join(self.tmp, "storage")


def make_env(tmp, **kw):
    return Env(tmp, **kw)


@pytest.fixture
def env(tmp_path):
    e = make_env(str(tmp_path))
    yield e
    reports = e.portico.sanitizer_reports() if e.portico else []
    e.stop()
    assert reports == []  # under TSan the exit code is 0: the log is the verdict


def get(env, name, path="/echo", timeout=60):
    r = env.portico.curl(path, "-w", "\n%{http_code}", name=name, check=False, timeout=timeout)
    if not r.stdout.endswith(b"\n200"):
        # Shown by pytest when the test fails: the whole story, untruncated.
        print(f"--- {name}: curl said {r.stderr!r}\n--- portico log:\n{env.portico.log_text()}")
    return r


def served_serial(env, name):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{env.https_port}", "-servername", name],
                       input=b"", capture_output=True, timeout=60)
    x = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=r.stdout, capture_output=True)
    return x.stdout.decode().strip()


def cert_files(env, name):
    return glob.glob(os.path.join(env.storage(), "certs", name, "*"))


def test_new_name_tls_alpn_01(env):
    r = get(env, "fresh.test")
    body, code = r.stdout.decode().rsplit("\n", 1)
    assert code == "200", (r.stderr, env.portico.log_text())
    assert '"backend": "app"' in body
    assert env.pebble.new_orders() == 1
    assert "acme-tls/1" in env.portico.log_text() or "tls-alpn-01" in env.portico.log_text()
    key = os.path.join(env.storage(), "certs", "fresh.test", "key.pem")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    import json
    with open(os.path.join(env.storage(), "certs", "fresh.test", "meta.json")) as f:
        assert json.load(f)["names"] == ["fresh.test"]


def test_new_name_http_01(tmp_path):
    # Pebble offers an alternate chain too: its URL is kept in meta.json.
    e = make_env(str(tmp_path), challenges=("http-01",), pebble_env={"PEBBLE_ALTERNATE_ROOTS": "1"})
    try:
        r = get(e, "web.test")
        assert r.stdout.decode().endswith("\n200"), (r.stderr, e.portico.log_text())
        assert "answering http-01 for web.test" in e.portico.log_text()
        assert "/.well-known/acme-challenge/" in e.portico.access_log_text()
        import json
        with open(os.path.join(e.storage(), "certs", "web.test", "meta.json")) as f:
            assert len(json.load(f)["alternates"]) >= 1
    finally:
        e.stop()


def test_issuance_survives_bad_nonces(tmp_path):
    e = make_env(str(tmp_path), pebble_env={"PEBBLE_WFE_NONCEREJECT": "50"})
    try:
        r = get(e, "nonce.test")
        assert r.stdout.decode().endswith("\n200"), (r.stderr, e.portico.log_text())
        # Pebble rejected some nonces and portico signed again with fresh ones.
        assert "badNonce, retrying" in e.portico.log_text()
    finally:
        e.stop()


def test_fifty_handshakes_share_one_order(env):
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: get(env, "crowd.test"), range(50)))
    codes = [r.stdout.decode().rsplit("\n", 1)[-1] for r in results]
    assert codes == ["200"] * 50, [r.stderr for r in results if not r.stdout.endswith(b"200")][:3]
    assert env.pebble.new_orders() == 1


def test_restart_serves_cached_certificate(env):
    assert get(env, "keep.test").stdout.decode().endswith("\n200")
    serial = served_serial(env, "keep.test")
    assert env.portico.stop() == 0
    env.start()
    assert served_serial(env, "keep.test") == serial
    assert get(env, "keep.test").stdout.decode().endswith("\n200")
    assert env.pebble.new_orders() == 1
    for f in cert_files(env, "keep.test"):
        if f.endswith("key.pem"):
            assert stat.S_IMODE(os.stat(f).st_mode) == 0o600


BAD_NAMES = [b"../x", b"a..b.test", b"127.0.0.1", b"nodot", b"a" * 300, b"a/b.test", b"a\\b.test",
             b"a_b.test", b"*.test", b"a\x00b.test", b"xn--\xc3\xa9.test"]


@pytest.mark.parametrize("name", BAD_NAMES, ids=lambda n: repr(n)[:20])
def test_invalid_names_touch_neither_disk_nor_ca(env, name):
    assert tls_alert_for_sni(env.https_port, name) == 112  # unrecognized_name
    assert env.pebble.new_orders() == 0
    for sub in ("certs", "failures", "quarantine"):
        d = os.path.join(env.storage(), sub)
        assert not os.path.exists(d) or os.listdir(d) == [], sub


def test_no_sni_is_refused_without_work(env):
    assert tls_alert_for_sni(env.https_port, None) == 112
    assert env.pebble.new_orders() == 0


def test_ask_denial(tmp_path):
    # The ask endpoint is the sample backend: /status/403 refuses every name.
    e = make_env(str(tmp_path), start=False)
    try:
        e.extra += f"on_demand:\n  ask: \"http://{e.backend.address}/status/403\"\n"
        e.start()
        r = get(e, "denied.test")
        assert not r.stdout.decode().endswith("\n200")
        assert e.pebble.new_orders() == 0
        assert cert_files(e, "denied.test") == []
        assert any("/status/403?domain=denied.test" in line for line in e.backend.requests())
    finally:
        e.stop()


def test_corrupt_certificate_and_mismatched_key_are_reissued_once(env):
    assert get(env, "one.test").stdout.decode().endswith("\n200")
    assert get(env, "two.test").stdout.decode().endswith("\n200")
    assert env.portico.stop() == 0
    store = os.path.join(env.storage(), "certs")
    with open(os.path.join(store, "one.test", "cert.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    # two.test gets one.test's key: it does not match its certificate.
    with open(os.path.join(store, "one.test", "key.pem")) as f:
        other_key = f.read()
    with open(os.path.join(store, "two.test", "key.pem"), "w") as f:
        f.write(other_key)
    orders = env.pebble.new_orders()
    env.start()
    assert get(env, "one.test").stdout.decode().endswith("\n200")
    assert get(env, "two.test").stdout.decode().endswith("\n200")
    assert env.pebble.new_orders() == orders + 2
    assert "set aside" in env.portico.log_text()


def test_unreachable_ca(env):
    assert get(env, "cached.test").stdout.decode().endswith("\n200")
    env.pebble.stop()
    t0 = time.monotonic()
    r = get(env, "new.test", timeout=60)
    assert not r.stdout.decode().endswith("\n200")
    assert time.monotonic() - t0 < 45
    # Backed off: the second try fails at once and the record is on disk.
    t0 = time.monotonic()
    r = get(env, "new.test")
    assert not r.stdout.decode().endswith("\n200")
    assert time.monotonic() - t0 < 3
    # A CA outage is not the name's failure: the job records the event but
    # counts nothing, and the log names the URL and the system error.
    import json
    with open(os.path.join(env.storage(), "jobs", "new.test.json")) as f:
        job = json.load(f)
    assert job["failures"] == 0, job
    assert "ca-unreachable" in [ev["kind"] for ev in job["events"]], job
    assert get(env, "cached.test").stdout.decode().endswith("\n200")
    # The log says which server, what the system said, and what to check.
    assert (f"cannot connect to the ACME server at https://127.0.0.1:{env.pebble.port}/"
            in env.portico.log_text())
    assert "connection refused; check acme.directory" in env.portico.log_text()


def test_untrusted_ca_is_named(tmp_path):
    e = make_env(str(tmp_path), start=False)
    try:
        # Pebble's issuing root is not the CA of its HTTPS listener.
        e.extra = e.extra.replace(e.pebble.ca, e.root)
        e.start()
        assert not get(e, "untrusted.test").stdout.decode().endswith("\n200")
        assert (f"the certificate of the ACME server at {e.pebble.directory} is not trusted: "
                in e.portico.log_text())
        assert "add the CA that issued it to acme.ca_file" in e.portico.log_text()
    finally:
        e.stop()


def test_unreachable_ask_endpoint_is_named(tmp_path):
    e = make_env(str(tmp_path), start=False)
    try:
        port = free_port()  # nothing listens there
        e.extra += f"on_demand:\n  ask: \"http://127.0.0.1:{port}/ask\"\n"
        e.start()
        assert not get(e, "asked.test").stdout.decode().endswith("\n200")
        assert e.pebble.new_orders() == 0
        log = e.portico.log_text()
        assert (f"refused asked.test: the on_demand.ask endpoint failed: cannot connect to "
                f"http://127.0.0.1:{port}/ask: connection refused; check on_demand.ask" in log), log
        assert "ACME server" not in log
    finally:
        e.stop()


def test_tls_acme_site_with_two_names(tmp_path):
    e = make_env(str(tmp_path), start=False)
    try:
        e.sites = [{"hosts": ["shop.test", "www.shop.test"], "upstreams": [e.backend.address],
                    "tls": "acme"}]
        e.start()
        from harness import wait_for
        wait_for(lambda: "certificate for shop.test and others ready" in e.portico.log_text(),
                 timeout=60, what="start-up issuance")
        assert e.pebble.new_orders() == 1
        assert get(e, "shop.test").stdout.decode().endswith("\n200")
        assert get(e, "www.shop.test").stdout.decode().endswith("\n200")
        serial = served_serial(e, "shop.test")
        assert serial == served_serial(e, "www.shop.test")
        assert e.pebble.new_orders() == 1
        # A start-up with a warm cache places no order.
        assert e.portico.stop() == 0
        e.start()
        wait_for(lambda: e.portico.log_text().count("cache: loaded certificate for shop.test") == 1,
                 timeout=30, what="certificate from the cache")
        assert served_serial(e, "www.shop.test") == serial
        assert e.pebble.new_orders() == 1
    finally:
        e.stop()


def test_ask_allows(tmp_path):
    e = make_env(str(tmp_path), start=False)
    try:
        e.extra += f"on_demand:\n  ask: \"http://{e.backend.address}/status/200\"\n"
        e.start()
        assert get(e, "allowed.test").stdout.decode().endswith("\n200")
        assert any("/status/200?domain=allowed.test" in line for line in e.backend.requests())
        assert e.pebble.new_orders() == 1
    finally:
        e.stop()


def test_ask_answer_sets_redirect_and_hsts_per_name(tmp_path):
    """A hosting provider's ask endpoint answers per customer name: its JSON
    sets port 80's redirect and HSTS for that name; a name it says nothing
    about keeps the on-demand site's settings (redirect on, HSTS off)."""
    import json
    from urllib.parse import quote
    answers = {"plain.test": {"redirect_http": False, "hsts": False},
               "strict.test": {"hsts": 600},
               "typo.test": {"hsts": "yes"}}
    query = "&".join(f"{n}={quote(json.dumps(b))}" for n, b in answers.items())
    e = make_env(str(tmp_path), start=False)
    try:
        e.extra += f"on_demand:\n  ask: \"http://{e.backend.address}/ask?{query}\"\n"
        e.start()
        for name in ("plain.test", "strict.test", "quiet.test"):
            assert get(e, name).stdout.decode().endswith("\n200"), name

        def head(name, scheme="https", http2=False):
            r = e.portico.curl("/echo", "-D", "-", "-o", "/dev/null", name=name, scheme=scheme,
                               http2=http2, check=False)
            return r.stdout.decode().lower()

        def status(h):
            return h.split("\r\n", 1)[0].split()[1]

        # Port 80: plain.test is proxied, the others redirect.
        assert status(head("plain.test", "http")) == "200"
        assert status(head("strict.test", "http")) == "301"
        assert status(head("quiet.test", "http")) == "301"
        # HTTPS: only strict.test carries HSTS, with the answer's max-age, on
        # both protocols.
        for http2 in (False, True):
            assert "strict-transport-security: max-age=600\r\n" in head("strict.test", http2=http2)
            assert "strict-transport-security" not in head("plain.test", http2=http2)
            assert "strict-transport-security" not in head("quiet.test", http2=http2)
        # The answer is kept in the name's job.
        with open(os.path.join(e.storage(), "jobs", "strict.test.json")) as f:
            job = json.load(f)
        assert job["hsts"] == 600 and "redirect_http" not in job
        # An answer portico cannot read refuses the name with the reason,
        # rather than issuing with settings nobody meant.
        assert not get(e, "typo.test").stdout.decode().endswith("\n200")
        log = e.portico.log_text()
        assert "refused typo.test: ask endpoint answered 200 with settings portico cannot read: " \
            "\"hsts\" must be true, false or seconds" in log, log
        assert e.pebble.new_orders() == 3
    finally:
        e.stop()


def quarantined(env):
    return sorted(os.listdir(os.path.join(env.storage(), "quarantine")))


def test_cache_faults_are_quarantined_and_reissued(env):
    """Found by fault injection: each of these used to load (or be followed)
    silently. Now each is set aside with a logged reason and re-issued."""
    for name in ("cut.test", "swap.test", "other.test", "link.test"):
        assert get(env, name).stdout.decode().endswith("\n200")
    assert env.portico.stop() == 0
    certs = os.path.join(env.storage(), "certs")
    # A chain cut inside the intermediate: the leaf alone would be served.
    with open(os.path.join(certs, "cut.test", "cert.pem")) as f:
        pem = f.read()
    second = pem.index("-----BEGIN CERTIFICATE-----", 1)
    assert second > 0, "Pebble sends a chain"
    with open(os.path.join(certs, "cut.test", "cert.pem"), "w") as f:
        f.write(pem[:second + 200])
    # other.test's certificate and key, copied over swap.test's.
    for f in ("cert.pem", "key.pem"):
        with open(os.path.join(certs, "other.test", f)) as src, \
                open(os.path.join(certs, "swap.test", f), "w") as dst:
            dst.write(src.read())
    # certs/link.test as a symlink to other.test's directory.
    subprocess.run(["rm", "-r", os.path.join(certs, "link.test")], check=True)
    os.symlink("other.test", os.path.join(certs, "link.test"))
    orders = env.pebble.new_orders()
    env.start()
    for name in ("cut.test", "swap.test", "link.test"):
        assert get(env, name).stdout.decode().endswith("\n200"), name
    assert env.pebble.new_orders() == orders + 3
    log = env.portico.log_text()
    assert "certificate for cut.test set aside: certificate 2 of the chain does not parse" in log
    assert "certificate for swap.test set aside: the certificate" in log and "does not cover swap.test" in log
    assert "link.test is a symlink or not a directory; refused" in log
    q = quarantined(env)
    assert any(x.startswith("certs.cut.test.cert.pem.") for x in q), q
    assert any(x.startswith("certs.swap.test.key.pem.") for x in q), q
    assert any(x.startswith("certs.link.test.symlink.") for x in q), q
    # other.test's files were neither moved nor replaced through the link.
    assert not os.path.islink(os.path.join(certs, "link.test"))
    assert get(env, "other.test").stdout.decode().endswith("\n200")
    assert env.pebble.new_orders() == orders + 3


def test_cache_repairs_modes_and_ignores_garbage_meta(env):
    assert get(env, "modes.test").stdout.decode().endswith("\n200")
    serial = served_serial(env, "modes.test")
    assert env.portico.stop() == 0
    d = os.path.join(env.storage(), "certs", "modes.test")
    os.chmod(os.path.join(d, "key.pem"), 0o644)
    os.chmod(d, 0o755)
    with open(os.path.join(d, "meta.json"), "w") as f:
        f.write("{garbage")
    orders = env.pebble.new_orders()
    env.start()
    assert get(env, "modes.test").stdout.decode().endswith("\n200")
    assert served_serial(env, "modes.test") == serial
    assert env.pebble.new_orders() == orders
    assert stat.S_IMODE(os.stat(os.path.join(d, "key.pem")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    log = env.portico.log_text()
    assert f"{d}/key.pem had mode 0644; set to 0600" in log
    assert f"{d} had mode 0755; set to 0700" in log
    assert "certs/modes.test/meta.json is not valid" in log
    assert not os.path.exists(os.path.join(d, "meta.json"))
    assert any(x.startswith("certs.modes.test.meta.json.") for x in quarantined(env))


def test_wildcard_sites_never_order_without_the_on_demand_policy(tmp_path, certs):
    """A client's SNI under a wildcard host starts an order only through a
    `tls: on_demand` site, and then only after the ask endpoint said yes."""
    from harness import wait_for
    e = make_env(str(tmp_path), start=False)
    try:
        up = [e.backend.address]
        e.sites = [{"hosts": ["shop.test"], "upstreams": up, "tls": "acme"},
                   {"hosts": ["*.w.test"], "upstreams": up, "cert": certs.wild[0], "key": certs.wild[1]},
                   {"hosts": ["*.wild.test"], "upstreams": up, "tls": "on_demand"}]
        e.extra += f"on_demand:\n  ask: \"http://{e.backend.address}/status/403\"\n"
        e.start()
        wait_for(lambda: "certificate for shop.test ready" in e.portico.log_text(), timeout=60,
                 what="start-up issuance")
        assert e.pebble.new_orders() == 1
        # The static wildcard serves its own certificate: no order, no ask.
        r = e.portico.curl("/echo", "-k", "-w", "\n%{http_code}", name="a.w.test", check=False)
        assert r.stdout.decode().endswith("\n200"), r.stderr
        # The on-demand wildcard asks first; the answer is no.
        assert not get(e, "a.wild.test").stdout.decode().endswith("\n200")
        asked = [line for line in e.backend.requests() if "/status/403?domain=" in line]
        assert len(asked) == 1 and "domain=a.wild.test" in asked[0], asked
        assert cert_files(e, "a.wild.test") == [] and cert_files(e, "a.w.test") == []
        assert e.pebble.new_orders() == 1
    finally:
        e.stop()
