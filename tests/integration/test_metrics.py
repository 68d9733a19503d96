"""admin.metrics: the Prometheus endpoint, scraped and parsed with a real
Prometheus text parser (prometheus_client's, Debian's
python3-prometheus-client), checking that values move as requests are made
over HTTP/1.1 and HTTP/2, as an upstream refuses connections, as handshakes
fail, and as an on-demand certificate is obtained from a real Pebble."""
import socket
import subprocess
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from acme_shim import AcmeShim
from harness import PORTICO, Backend, Portico, free_port, site, tls_alert_for_sni, tls_connect, wait_for
from test_acme import Env, get


def scrape(port, path="/metrics"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return r.read().decode()


class Scrape:
    """One scrape: every sample by (name, sorted labels), and the families'
    types, from the real parser (which fails on malformed text)."""

    def __init__(self, port):
        self.text = scrape(port)
        self.samples, self.types = {}, {}
        for fam in text_string_to_metric_families(self.text):
            self.types[fam.name] = fam.type
            for s in fam.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(self, metric, **labels):
        return self.samples.get((metric, tuple(sorted(labels.items()))), 0.0)

    def has(self, metric, **labels):
        return (metric, tuple(sorted(labels.items()))) in self.samples


def test_renewal_counts_and_lateness(tmp_path):
    """A renewal the scheduler starts is counted with its lateness. ARI
    needs the test-only SHIM in front of Pebble (Pebble 2.4 has no
    renewalInfo): a window in the past makes the first certificate due at
    once (then spread by renew_rate within a minute)."""
    mport = free_port()
    e = Env(str(tmp_path), start=False)
    shim = AcmeShim(e.pebble).start()
    try:
        e.extra = e.extra.replace(e.pebble.directory, shim.directory) + metrics_yaml(mport)
        now = int(time.time())
        first = []

        def window_for(cert_id):
            """A window in the past for the first certificate asked about
            only: its replacement, polled at once, is not due (else a
            second renewal could start before the scrape)."""
            with shim.lock:
                shim.polls.append(cert_id)
                first[:] = first or [cert_id]
                if cert_id == first[0]:
                    return now - 7200, now - 3600, None
                return now + 30 * 86400, now + 31 * 86400, None
        shim.window_for = window_for
        e.sites = [{"hosts": ["ari.test"], "upstreams": [e.backend.address], "tls": "acme"}]
        e.start()
        wait_for(lambda: Scrape(mport).get("portico_acme_orders_total", result="renewed") == 1,
                 timeout=90, what="the renewal")
        s = Scrape(mport)
        assert s.get("portico_acme_orders_total", result="obtained") == 1
        assert s.get("portico_acme_renewals_started_total") == 1
        assert s.get("portico_acme_renewal_lateness_seconds_count") == 1
        assert s.get("portico_acme_renewal_lateness_seconds_sum") >= 0
        assert s.get("portico_acme_events_total", type="renewed", outcome="emitted") == 1
        assert s.get("portico_acme_certificate_expiry_seconds", name="ari.test") > 3600
        assert e.portico.finish() == []
    finally:
        e.stop()
        shim.stop()


def metrics_yaml(port):
    return f"admin:\n  metrics: \"127.0.0.1:{port}\"\n"


def test_values_move_with_traffic(start_portico, backend, certs):
    mport = free_port()
    dead1, dead2 = free_port(), free_port()  # nothing listens there
    p = start_portico([site(["a.test"], backend, certs.a),
                       {"hosts": ["b.test"], "upstreams": [f"127.0.0.1:{dead1}", f"127.0.0.1:{dead2}"],
                        "cert": certs.b[0], "key": certs.b[1]}],
                      extra=metrics_yaml(mport), http=False)
    s0 = Scrape(mport)
    # Every family has its HELP and TYPE, and the parser knows the types.
    assert s0.types["portico_requests"] == "counter"
    assert s0.types["portico_request_duration_seconds"] == "histogram"
    assert s0.types["portico_connections_active"] == "gauge"
    assert s0.text.count("# HELP ") == s0.text.count("# TYPE ")
    assert s0.get("portico_requests_total", site="a.test", protocol="h1", code="2xx") == 0
    assert s0.get("portico_upstream_healthy", site="a.test", upstream=backend.address) == 1
    assert not s0.has("portico_acme_manager_up")  # no ACME site, no ACME metrics

    # HTTP/1.1 over TLS.
    r = p.curl("/echo", "-w", "\n%{http_code}", name="a.test")
    assert r.stdout.endswith(b"\n200")
    s1 = Scrape(mport)
    assert s1.get("portico_requests_total", site="a.test", protocol="h1", code="2xx") == 1
    assert s1.get("portico_upstream_requests_total", site="a.test", upstream=backend.address,
                  code="2xx") == 1
    assert s1.get("portico_request_duration_seconds_count", site="a.test") == 1
    assert s1.get("portico_request_duration_seconds_bucket", site="a.test", le="+Inf") == 1
    assert s1.get("portico_request_duration_seconds_sum", site="a.test") > 0
    assert s1.get("portico_sent_bytes_total", site="a.test") > 0
    assert s1.get("portico_tls_handshakes_total", type="full") == 1
    assert s1.get("portico_connections_total", protocol="h1") == 1

    # HTTP/2, with a request body.
    r = p.curl("/echo", "-d", "x" * 1000, "-w", "\n%{http_code}", name="a.test", http2=True)
    assert r.stdout.endswith(b"\n200")
    s2 = Scrape(mport)
    assert s2.get("portico_requests_total", site="a.test", protocol="h2", code="2xx") == 1
    assert s2.get("portico_connections_total", protocol="h2") == 1
    assert s2.get("portico_received_bytes_total", site="a.test") >= 1000
    assert s2.get("portico_requests_total", site="a.test", protocol="h1", code="2xx") == 1

    # An upstream that refuses: counted, retried on the other, both marked down.
    r = p.curl("/", "-w", "\n%{http_code}", name="b.test", check=False)
    assert r.stdout.endswith(b"\n502")
    s3 = Scrape(mport)
    failures = sum(s3.get("portico_upstream_connect_failures_total", site="b.test",
                          upstream=f"127.0.0.1:{d}") for d in (dead1, dead2))
    assert failures == 2
    assert sum(s3.get("portico_upstream_retries_total", site="b.test",
                      upstream=f"127.0.0.1:{d}") for d in (dead1, dead2)) == 1
    assert s3.get("portico_requests_total", site="b.test", protocol="h1", code="5xx") == 1
    assert [s3.get("portico_upstream_healthy", site="b.test", upstream=f"127.0.0.1:{d}")
            for d in (dead1, dead2)] == [0, 0]

    # A handshake for a name nothing serves: a failure by reason.
    assert tls_alert_for_sni(p.https_port, b"nothing.test") == 112
    s4 = Scrape(mport)
    assert s4.get("portico_tls_handshake_failures_total", reason="unknown_name") == 1

    # An open keep-alive connection is active; closed, it is not.
    c = tls_connect(p.https_port, "a.test", ca=certs.ca)
    c.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\n\r\n")
    assert c.recv(65536).startswith(b"HTTP/1.1 200")
    assert Scrape(mport).get("portico_connections_active", protocol="h1") == 1
    c.close()
    wait_for(lambda: Scrape(mport).get("portico_connections_active", protocol="h1") == 0,
             what="the connection to be counted closed")

    # Portico's own answers, and the public listeners never serve metrics.
    r = p.curl("/metrics", "-H", "Host: nosuch.test", "-w", "\n%{http_code}", name="a.test",
               check=False)
    assert r.stdout.endswith(b"\n421") and b"portico_" not in r.stdout
    assert Scrape(mport).get("portico_local_responses_total", protocol="h1", code="4xx") == 1


def test_endpoint_answers_only_metrics(start_portico, backend, certs):
    mport = free_port()
    start_portico([site(["a.test"], backend, certs.a)], extra=metrics_yaml(mport))
    for path, want in (("/", 404), ("/metricsx", 404), ("/metrics?x=1", 200)):
        try:
            code = urllib.request.urlopen(f"http://127.0.0.1:{mport}{path}", timeout=10).status
        except urllib.error.HTTPError as e:
            code = e.code
        assert code == want, path
    req = urllib.request.Request(f"http://127.0.0.1:{mport}/metrics", data=b"x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=10)
        assert False, "POST answered"
    except urllib.error.HTTPError as e:
        assert e.code == 405 and e.headers["Allow"] == "GET, HEAD"
    # A head over the bound is refused, not buffered.
    with socket.create_connection(("127.0.0.1", mport), timeout=10) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 431")


def test_metrics_port_taken_fails_start(tmp_path, backend, certs):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        p = Portico(str(tmp_path), [site(["a.test"], backend, certs.a)], ca=certs.ca,
                    extra=metrics_yaml(port), start=False)
        proc = subprocess.run([PORTICO, "-c", p.config], capture_output=True, timeout=30)
        assert proc.returncode != 0
        out = proc.stderr.decode() + proc.stdout.decode()
        assert f"admin.metrics: cannot listen on 127.0.0.1:{port}" in out, out


def test_on_demand_certificate(tmp_path):
    mport = free_port()
    e = Env(str(tmp_path), extra=metrics_yaml(mport))
    try:
        s0 = Scrape(mport)
        assert s0.get("portico_acme_manager_up") == 1
        assert s0.get("portico_acme_orders_total", result="obtained") == 0
        r = get(e, "fresh.test")
        assert r.stdout.endswith(b"\n200")
        s1 = Scrape(mport)
        assert s1.get("portico_acme_orders_total", result="obtained") == 1
        left = s1.get("portico_acme_certificate_expiry_seconds", name="fresh.test")
        assert 3600 < left <= 5 * 366 * 86400, left  # Pebble's default lifetime is 5 years
        assert s1.get("portico_acme_certificates", state="valid") == 1
        assert s1.get("portico_acme_renewals_scheduled") == 1
        assert s1.get("portico_acme_on_demand_wait_seconds_count") == 1
        assert s1.get("portico_acme_on_demand_wait_seconds_sum") > 0
        assert s1.get("portico_acme_events_total", type="obtained", outcome="emitted") == 1
        # A name the policy refuses before any work: counted by reason, and
        # never a label (client input stays out of the metrics).
        assert tls_alert_for_sni(e.https_port, b"a_b.test") == 112
        s2 = Scrape(mport)
        assert s2.get("portico_acme_on_demand_refusals_total", reason="invalid_name") == 1
        assert "a_b.test" not in s2.text
        # SIGTERM: a clean exit, and no sanitizer report in a sanitized build.
        assert e.portico.finish() == []
    finally:
        e.stop()


def test_websocket_tunnel_is_an_active_connection(start_portico, backend, certs):
    from test_websocket import upgrade
    mport = free_port()
    p = start_portico([site(["a.test"], backend, certs.a)], extra=metrics_yaml(mport))
    s, _ = upgrade(p)
    assert Scrape(mport).get("portico_connections_active", protocol="websocket") == 1
    s.close()
    wait_for(lambda: Scrape(mport).get("portico_connections_active", protocol="websocket") == 0,
             what="the tunnel to be counted closed")
    assert Scrape(mport).get("portico_requests_total", site="a.test", protocol="h1",
                             code="1xx") == 1


def test_reload_keeps_site_and_upstream_series(start_portico, certs, tmp_path):
    """Series are keyed by their labels, not by a site's place in the
    configuration: a reload that adds a site before an existing one and
    removes another counts each request under its own site and upstream,
    keeps the counts from before (a removed site's too, counters never go
    back), and shows the health gauge of the current upstreams only. A
    site added back continues its series."""
    from test_reload import POLL, answers, ctl_reload, write_config
    one = Backend(str(tmp_path), "one")
    two = Backend(str(tmp_path), "two")
    mport = free_port()
    a = {"hosts": ["a.test"], "upstreams": [one.address], "cert": certs.a[0], "key": certs.a[1]}
    b = {"hosts": ["b.test"], "upstreams": [two.address], "cert": certs.b[0], "key": certs.b[1]}
    c = {"hosts": ["c.w.test"], "upstreams": [two.address],
         "cert": certs.wild[0], "key": certs.wild[1]}

    def requests(s, site, proto="h1"):
        return s.get("portico_requests_total", site=site, protocol=proto, code="2xx")

    def up_requests(s, site, up):
        return s.get("portico_upstream_requests_total", site=site, upstream=up.address, code="2xx")

    def answered(name, tally):
        """One request to `name`; a 200 is noted in `tally` (it is counted)."""
        if answers(p, name):
            tally.append(name)
            return True
        return False

    def reload_to(sites, metrics_port=mport):
        write_config(p, sites, metrics_port=metrics_port)
        r = ctl_reload(p)
        assert r.returncode == 0, r.stderr
        return r

    try:
        p = start_portico([a, b], start=False)
        write_config(p, [a, b], metrics_port=mport)
        p.start()
        for name in ("a.test", "a.test", "b.test"):
            assert answers(p, name)
        s0 = Scrape(mport)
        assert (requests(s0, "a.test"), requests(s0, "b.test")) == (2, 1)

        # c.w.test first (it takes a.test's place), b.test gone.
        reload_to([c, a])
        ok = []  # the polls that got through are counted too
        wait_for(lambda: answered("c.w.test", ok), timeout=POLL, what="c.w.test after the reload")
        s1 = Scrape(mport)
        assert requests(s1, "c.w.test") == len(ok)
        for name in ("a.test", "a.test", "a.test", "c.w.test"):
            assert answers(p, name)
        s2 = Scrape(mport)
        assert requests(s2, "a.test") == 2 + 3
        assert requests(s2, "c.w.test") == len(ok) + 1
        assert requests(s2, "b.test") == 1  # removed, its count stays
        assert s2.get("portico_request_duration_seconds_count", site="a.test") == 5
        assert up_requests(s2, "a.test", one) == 5
        assert up_requests(s2, "c.w.test", two) == len(ok) + 1
        assert up_requests(s2, "b.test", two) == 1  # same address, another site: its own series
        assert s2.get("portico_upstream_healthy", site="c.w.test", upstream=two.address) == 1
        assert s2.get("portico_upstream_healthy", site="a.test", upstream=one.address) == 1
        assert not s2.has("portico_upstream_healthy", site="b.test", upstream=two.address)
        assert s2.has("portico_upstream_requests_total", site="b.test", upstream=two.address,
                      code="2xx")

        # b.test back (c.w.test gone): it continues its series. A changed
        # admin.metrics is read only at start: the listener stays.
        r = reload_to([a, b], metrics_port=free_port())
        assert "admin.metrics: changed, but it is read only at start" in r.stdout, r.stdout
        back = []
        wait_for(lambda: answered("b.test", back), timeout=POLL,
                 what="b.test after the second reload")
        s3 = Scrape(mport)
        assert requests(s3, "b.test") == 1 + len(back)
        assert up_requests(s3, "b.test", two) == 1 + len(back)
        assert requests(s3, "a.test") == 5
        assert requests(s3, "c.w.test") == len(ok) + 1
        assert s3.get("portico_upstream_healthy", site="b.test", upstream=two.address) == 1
        assert not s3.has("portico_upstream_healthy", site="c.w.test", upstream=two.address)
    finally:
        one.stop()
        two.stop()
