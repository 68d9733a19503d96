"""Reload (docs/reload.md): SIGHUP and `portico ctl reload` re-read the
configuration. A valid one is applied without failing a request or
resetting a connection, under h2load load over HTTP/2 and HTTP/1.1; a
broken one changes nothing and `ctl reload` says why (file, line, key)
with a non-zero exit; listeners are added and removed."""
import os
import re
import signal
import subprocess
import threading

import harness
from harness import PORTICO, SANITIZED, free_port, port_open, wait_for, yaml_quote

RELOADS = 20
# How long a poll waits: generous, since the machine may be busy with
# other load (each poll ends as soon as the condition holds).
POLL = 30


def write_config(p, sites, https_ports=None, http_ports=None, metrics_port=None):
    """Rewrites p's config file: `sites` as for harness.Portico, listening on
    the given ports (p's own by default), serving metrics on
    `metrics_port` when given."""
    https_ports = https_ports or [p.https_port]
    http_ports = http_ports or [p.http_port]
    lines = ["listen:",
             "  https: [" + ", ".join(f'"127.0.0.1:{x}"' for x in https_ports) + "]",
             "  http: [" + ", ".join(f'"127.0.0.1:{x}"' for x in http_ports) + "]",
             "workers: 2", f"storage: {yaml_quote(os.path.join(p.tmp, 'storage'))}",
             f"log: {{level: info, access: {yaml_quote(p.access_log)}}}",
             # The admin socket stays where it was (its default follows the
             # first listen address, and it is read only at start).
             f"admin: {{socket: {yaml_quote(os.path.join(p.tmp, 'admin.sock'))}"
             + (f", metrics: \"127.0.0.1:{metrics_port}\"" if metrics_port else "") + "}",
             "sites:"]
    for s in sites:
        lines.append(f"  - hosts: [{', '.join(yaml_quote(h) for h in s['hosts'])}]")
        lines.append(f"    upstreams: [{', '.join(yaml_quote(u) for u in s['upstreams'])}]")
        if "cert" in s:
            lines.append(f"    tls: {{cert: {yaml_quote(s['cert'])}, key: {yaml_quote(s['key'])}}}")
    with open(p.config, "w") as f:
        f.write("\n".join(lines) + "\n")


def start(start_portico, sites, **kw):
    """A portico whose config came from write_config, so reloads only
    change what the test changes."""
    p = start_portico(sites, start=False, **kw)
    write_config(p, sites)
    p.start()
    return p


def ctl_reload(p):
    return subprocess.run([PORTICO, "ctl", "--socket", os.path.join(p.tmp, "admin.sock"), "reload"],
                          capture_output=True, text=True, timeout=60)


def answers(p, name, path="/echo"):
    r = p.curl(path, "-o", "/dev/null", "-w", "%{http_code}", name=name, check=False, timeout=10)
    return r.returncode == 0 and r.stdout == b"200"


class Load:
    """h2load runs back to back at full speed until stopped: one over
    HTTP/2 (10 streams on each of 8 connections) or one over HTTP/1.1
    (--h1, 8 keep-alive connections). Every run must end with every request
    answered 2xx: h2load counts a reset connection as failed or errored."""

    def __init__(self, p, name, h1):
        self.n = 1000 if SANITIZED else 4000
        self.cmd = ["h2load", "-n", str(self.n), "-c", "8", "-m", "1" if h1 else "10",
                    f"--connect-to=127.0.0.1:{p.https_port}", f"https://{name}:{p.https_port}/echo"]
        if h1:
            self.cmd.insert(1, "--h1")
        self.runs = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop)
        self.thread.start()

    def loop(self):
        while not self.stopping.is_set():
            r = subprocess.run(self.cmd, capture_output=True, text=True, timeout=300)
            self.runs.append(r.stdout + r.stderr)

    def stop(self):
        """Waits for the run in progress to end; returns every run's output
        that was not all 2xx, and how many requests were made."""
        self.stopping.set()
        self.thread.join(330)
        n = self.n
        ok = rf"requests: {n} total, {n} started, {n} done, {n} succeeded, 0 failed, 0 errored, 0 timeout"
        codes = rf"status codes: {n} 2xx, 0 3xx, 0 4xx, 0 5xx"
        bad = [out for out in self.runs if not (re.search(ok, out) and re.search(codes, out))]
        return bad, n * len(self.runs)


def test_reload_under_load_applies_sites_and_upstreams_without_failures(start_portico, certs, tmp_path):
    one = harness.Backend(str(tmp_path), "one")
    two = harness.Backend(str(tmp_path), "two")
    base = {"hosts": ["a.test"], "upstreams": [one.address], "cert": certs.a[0], "key": certs.a[1]}
    p = start(start_portico, [base])
    sockets = listening_sockets(p.https_port)
    loads = [Load(p, "a.test", h1=False), Load(p, "a.test", h1=True)]
    try:
        wait_for(lambda: all(load.runs for load in loads) or p.proc.poll() is not None, timeout=120,
                 what="a first run of each load")
        upstream_sets = [[two.address], [one.address, two.address], [one.address]]
        for i in range(1, RELOADS + 1):
            # A site added (the previous one removed) and a.test's upstreams changed.
            added = {"hosts": [f"s{i}.w.test"], "upstreams": [two.address if i % 2 else one.address],
                     "cert": certs.wild[0], "key": certs.wild[1]}
            main = dict(base, upstreams=upstream_sets[i % 3])
            write_config(p, [main, added])
            if i % 2:
                r = ctl_reload(p)
                assert r.returncode == 0, r.stderr
                assert f"generation {i + 1}" in r.stdout, r.stdout
            else:
                p.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: answers(p, f"s{i}.w.test"), timeout=POLL, what=f"site s{i}.w.test after reload {i}")
            if i > 1:  # the site of the previous reload is gone for new connections
                wait_for(lambda: not answers(p, f"s{i - 1}.w.test"), timeout=POLL,
                         what=f"s{i - 1}.w.test gone after reload {i}")
        assert p.proc.poll() is None
        assert listening_sockets(p.https_port) == sockets  # kept open through every reload
    finally:
        results = [load.stop() for load in loads]
        one.stop()
        two.stop()
    for (bad, total), kind in zip(results, ("HTTP/2", "HTTP/1.1")):
        print(f"{kind}: {total} requests across {RELOADS} reloads")
        assert total > 0
        assert bad == [], "a load run had failures:\n" + "\n".join(bad)
    # Every connection of the loads has closed: each old generation was
    # freed with its last connection, the current one is kept.
    wait_for(lambda: all(f"configuration generation {g} freed:" in p.log_text() for g in range(1, RELOADS + 1)),
             timeout=POLL, what="every old generation freed")
    assert f"configuration generation {RELOADS + 1} freed" not in p.log_text()
    log = p.log_text()
    assert log.count("reload: reading") == RELOADS, log[-3000:]
    assert "reload failed" not in log
    # Both backends served a.test at some point: upstream changes took effect.
    assert one.requests() and two.requests()


def test_broken_config_under_load_changes_nothing(start_portico, certs, backend):
    base = {"hosts": ["a.test"], "upstreams": [backend.address], "cert": certs.a[0], "key": certs.a[1]}
    p = start(start_portico, [base])
    load = Load(p, "a.test", h1=False)
    load_h1 = Load(p, "a.test", h1=True)
    try:
        wait_for(lambda: load.runs and load_h1.runs, timeout=120, what="a first run of each load")
        with open(p.config) as f:
            good = f.read()
        broken = good.replace(f'"{backend.address}"', '"127.0.0.1:99999"') + \
            "  - hosts: [new.w.test]\n    upstreams: [\"127.0.0.1:1\"]\n"
        with open(p.config, "w") as f:
            f.write(broken)
        line = next(n for n, text in enumerate(broken.splitlines(), 1) if "99999" in text)
        r = ctl_reload(p)
        assert r.returncode == 1, r
        assert f"portico.yaml:{line}: sites[0].upstreams[0]: \"127.0.0.1:99999\"" in r.stderr, r.stderr
        assert "1 error" in r.stderr
        # `ctl -c FILE` reads FILE to find the socket: it finds the same errors.
        r = subprocess.run([PORTICO, "ctl", "-c", p.config, "reload"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 1 and f"portico.yaml:{line}: sites[0].upstreams[0]" in r.stderr, r
        p.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: p.log_text().count("reload failed: the running configuration is unchanged") == 2,
                 timeout=POLL, what="the SIGHUP reload refused")
        assert f"portico.yaml:{line}: sites[0].upstreams[0]" in p.log_text()
        # The old config still serves; the broken one's site does not exist.
        assert answers(p, "a.test")
        assert not answers(p, "new.w.test")
        # Whatever the load ran meanwhile, nothing failed.
        wait_for(lambda: len(load.runs) >= 2 and len(load_h1.runs) >= 2, timeout=120,
                 what="load runs after the refused reloads")
    finally:
        results = [load.stop(), load_h1.stop()]
    for bad, total in results:
        assert bad == [], "a load run had failures:\n" + "\n".join(bad)


def test_in_flight_request_finishes_on_the_config_it_started_with(start_portico, certs, tmp_path):
    """The request's site and upstream are removed by the reload while the
    backend is still answering it: the request completes."""
    old = harness.Backend(str(tmp_path), "old")
    new = harness.Backend(str(tmp_path), "new")
    try:
        p = start(start_portico, [{"hosts": ["a.test"], "upstreams": [old.address],
                                   "cert": certs.a[0], "key": certs.a[1]}])
        result = {}
        t = threading.Thread(target=lambda: result.update(r=p.curl("/slow?delay=2", name="a.test", check=False)))
        t.start()
        wait_for(lambda: any("/slow" in line for line in old.requests()), timeout=POLL, what="request in flight")
        write_config(p, [{"hosts": ["b.test"], "upstreams": [new.address], "cert": certs.b[0], "key": certs.b[1]}])
        r = ctl_reload(p)
        assert r.returncode == 0 and "0 older generations still held" in r.stdout, r
        wait_for(lambda: answers(p, "b.test"), timeout=POLL, what="b.test after the reload")
        assert not answers(p, "a.test")  # new connections: a.test is gone
        r = ctl_reload(p)  # the slow request's connection still holds generation 1
        assert r.returncode == 0 and "1 older generation still held" in r.stdout, r
        assert "generation 1 freed" not in p.log_text()  # the slow request still holds it
        t.join(30)
        assert result["r"].returncode == 0, result["r"].stderr
        assert result["r"].stdout == b'{"slept": true}', result["r"].stdout
        # Its connection closed with curl: the generation goes with it.
        wait_for(lambda: "configuration generation 1 freed" in p.log_text(), timeout=POLL, what="generation 1 freed")
    finally:
        old.stop()
        new.stop()


def listening_sockets(port):
    """The inodes of the sockets listening on 127.0.0.1:port (/proc/net/tcp)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sorted(r[9] for r in rows if r[1] == want and r[3] == "0A")


def test_listeners_added_and_removed_by_reload(start_portico, certs, backend):
    s = [{"hosts": ["a.test"], "upstreams": [backend.address], "cert": certs.a[0], "key": certs.a[1]}]
    p = start(start_portico, s)
    first, second = p.https_port, free_port()
    before = listening_sockets(first)
    assert len(before) == 2  # one per worker (SO_REUSEPORT)
    write_config(p, s, https_ports=[first, second])
    r = ctl_reload(p)
    assert r.returncode == 0, r.stderr
    assert "(1 new, 0 closed)" in r.stdout, r.stdout
    wait_for(lambda: len(listening_sockets(second)) == 2, timeout=POLL, what="a socket per worker on the new address")
    assert listening_sockets(first) == before  # the same sockets: never closed and bound again
    wait_for(lambda: answers(p, "a.test") and
             p.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", name="a.test", port=second,
                    check=False).stdout == b"200", timeout=POLL, what="the added listener to answer")
    # A second portico cannot take the added address: its lock is held.
    os.makedirs(p.tmp + "-other")
    other = harness.Portico(p.tmp + "-other", s, ca=certs.ca, start=False, https_port=second)
    r = subprocess.run([PORTICO, "-c", other.config], capture_output=True, timeout=30)
    assert r.returncode != 0 and f"listen 127.0.0.1:{second}: another portico" in r.stderr.decode()
    # The first address removed: it stops accepting, the other keeps serving.
    write_config(p, s, https_ports=[second])
    r = ctl_reload(p)
    assert r.returncode == 0, r.stderr
    assert "(0 new, 1 closed)" in r.stdout, r.stdout
    wait_for(lambda: not port_open(first), timeout=POLL, what="the removed listener to close")
    assert p.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", name="a.test", port=second).stdout == b"200"
    # Its lock went with it: another portico may now listen there.
    other = harness.Portico(p.tmp + "-other", s, ca=certs.ca, https_port=first)
    try:
        assert other.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", name="a.test").stdout == b"200"
    finally:
        assert other.finish() == []


def test_settings_read_at_start_are_kept_with_a_warning(start_portico, certs, backend):
    s = [{"hosts": ["a.test"], "upstreams": [backend.address], "cert": certs.a[0], "key": certs.a[1]}]
    p = start(start_portico, s)
    b = {"hosts": ["b.test"], "upstreams": [backend.address], "cert": certs.b[0], "key": certs.b[1]}
    write_config(p, s + [b])
    with open(p.config) as f:
        text = f.read().replace("workers: 2", "workers: 3")
    with open(p.config, "w") as f:
        f.write(text)
    r = ctl_reload(p)
    assert r.returncode == 0, r.stderr
    assert "workers: changed, but it is read only at start; the running value stays" in r.stdout, r.stdout
    assert "workers: changed" in p.log_text()
    wait_for(lambda: answers(p, "b.test"), timeout=POLL, what="b.test after the reload")  # the rest applied


def test_reload_that_cannot_bind_changes_nothing(start_portico, certs, backend):
    """A new listen address another process holds: the reload is refused
    as a whole (sites included) and says which address."""
    s = [{"hosts": ["a.test"], "upstreams": [backend.address], "cert": certs.a[0], "key": certs.a[1]}]
    p = start(start_portico, s)
    import socket
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    try:
        b = {"hosts": ["b.test"], "upstreams": [backend.address], "cert": certs.b[0], "key": certs.b[1]}
        write_config(p, s + [b], https_ports=[p.https_port, busy])
        r = ctl_reload(p)
        assert r.returncode == 1
        assert f"listen 127.0.0.1:{busy}: cannot listen" in r.stderr, r.stderr
        assert answers(p, "a.test") and not answers(p, "b.test")
    finally:
        taken.close()


def test_tls_acme_certificates_survive_reload_and_new_names_are_ordered(tmp_path):
    """A reload keeps the certificates in memory and the ACME state (no new
    order for an unchanged site); a site whose names grow gets a new
    certificate ordered in the background while the old one serves."""
    from test_acme import get, make_env, served_serial
    e = make_env(str(tmp_path), start=False)
    try:
        site = {"hosts": ["shop.test"], "upstreams": [e.backend.address], "tls": "acme"}
        e.sites = [site]
        e.start()
        wait_for(lambda: "certificate for shop.test ready" in e.portico.log_text(), timeout=60,
                 what="start-up issuance")
        serial = served_serial(e, "shop.test")

        def reload(sites):
            harness.Portico(e.tmp, sites, extra=e.extra, ca=e.root, https_port=e.https_port,
                            http_port=e.http_port, start=False)  # rewrites the config file
            r = subprocess.run([PORTICO, "ctl", "-c", e.portico.config, "reload"], capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, r.stderr

        b_cert, b_key = harness.Certs(os.path.join(e.tmp, "certs")).leaf("b.test", ["b.test"])
        other = {"hosts": ["b.test"], "upstreams": [e.backend.address], "cert": b_cert, "key": b_key}
        reload([site, other])
        assert served_serial(e, "shop.test") == serial
        assert get(e, "shop.test").stdout.endswith(b"\n200")
        assert e.pebble.new_orders() == 1
        assert "no longer configured" not in e.portico.log_text()
        reload([dict(site, hosts=["shop.test", "www.shop.test"])])
        # The old certificate serves shop.test until the new one is ready.
        assert get(e, "shop.test").stdout.endswith(b"\n200")
        wait_for(lambda: "certificate for shop.test and others renewed" in e.portico.log_text(),
                 timeout=60, what="the certificate for the new name set")
        assert e.pebble.new_orders() == 2
        new = served_serial(e, "www.shop.test")
        assert new != serial and served_serial(e, "shop.test") == new
        assert get(e, "www.shop.test").stdout.endswith(b"\n200")
        # Removed, then configured again: the certificate was kept, no order.
        reload([other])
        wait_for(lambda: "the site of shop.test is no longer configured" in e.portico.log_text(),
                 timeout=POLL, what="the site removed")
        assert not get(e, "shop.test").stdout.endswith(b"\n200")
        reload([dict(site, hosts=["shop.test", "www.shop.test"]), other])
        wait_for(lambda: get(e, "www.shop.test").stdout.endswith(b"\n200"), timeout=POLL, what="the site back")
        assert served_serial(e, "shop.test") == new
        assert e.pebble.new_orders() == 2
        assert e.portico.sanitizer_reports() == []
    finally:
        e.stop()
