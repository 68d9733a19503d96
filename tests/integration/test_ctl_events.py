"""`portico ctl` against a running portico, and certificate events reaching
a real command and a real HTTP receiver, with a real Pebble 2.4 as the CA.

Pebble never answers 503, so the failure (for `ctl retry` and the `failed`
event) is injected by acme_shim.py, a test-only SHIM in front of Pebble;
everything else the shim forwards to Pebble unchanged. Revocation is checked
in Pebble itself (its management interface's cert-status-by-serial)."""
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

import pytest

from acme_shim import AcmeShim
from harness import PORTICO, Portico, free_port, wait_for
from test_acme import Env, get, served_serial

HOOK = """#!/bin/sh
# Appends the event's PORTICO_* environment, one block per event, in one
# write (O_APPEND): commands for two events may run at once.
block=$(env | grep '^PORTICO_' | sort; echo --)
printf '%s\\n' "$block" >> "$0.out"
"""


class Receiver:
    """A webhook receiver: a python http.server on a free loopback port that
    keeps every JSON body POSTed to it."""

    def __init__(self):
        self.bodies = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                outer.bodies.append((self.headers.get("Content-Type"), json.loads(body)))
                self.send_response(204)
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, name):
        return [b["event"] for _, b in self.bodies if name in b["names"]]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def hook_events(path):
    """The hook's blocks as dicts of PORTICO_* variables."""
    if not os.path.exists(path):
        return []
    blocks, cur = [], {}
    for line in open(path).read().splitlines():
        if line == "--":
            blocks.append(cur)
            cur = {}
        elif "=" in line:
            k, v = line.split("=", 1)
            cur[k] = v
    return blocks


def ctl(env, *args):
    return subprocess.run([PORTICO, "ctl", "-c", env.portico.config, *args], capture_output=True,
                          text=True, timeout=30)


def show(env, name):
    r = ctl(env, "show", name, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def kinds(env, name):
    return [ev["event"] for ev in show(env, name)["events"]]


def revoked_serial(out):
    """The serial `ctl revoke` printed, as an integer."""
    m = re.search(r"^revoked the certificate for \S+ \(serial ([0-9A-Fa-f]+),", out)
    return int(m.group(1), 16) if m else None


def pebble_cert_status(pebble, serial_hex):
    """Pebble's own record of a certificate ("Valid" or "Revoked")."""
    ctx = ssl.create_default_context(cafile=pebble.ca)
    url = f"https://127.0.0.1:{pebble.mgmt_port}/cert-status-by-serial/{serial_hex}"
    with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
        return json.load(r)["Status"]


class World(Env):
    """Pebble behind the shim, a webhook receiver, a hook script, and a
    portico (not started) with one `tls: acme` site and on-demand names."""

    def __init__(self, tmp, pebble_config=None):
        super().__init__(tmp, start=False, pebble_config=pebble_config)
        self.shim = AcmeShim(self.pebble).start()
        now = int(time.time())
        self.shim.set_window(now + 30 * 86400, now + 31 * 86400)  # ARI: nothing due on its own
        self.recv = Receiver()
        hook = os.path.join(tmp, "hook.sh")
        with open(hook, "w") as f:
            f.write(HOOK)
        os.chmod(hook, 0o755)
        self.hook_out = hook + ".out"
        self.extra = self.extra.replace(self.pebble.directory, self.shim.directory)
        self.extra += (f"events:\n  command: [\"{hook}\"]\n  webhook: \"{self.recv.url}\"\n"
                       f"  timeout: 10s\n")
        self.sites = [{"hosts": ["site.test"], "upstreams": [self.backend.address], "tls": "acme"},
                      {"hosts": ["*"], "upstreams": [self.backend.address], "tls": "on_demand"}]

    def stop(self):
        super().stop()
        self.shim.stop()
        self.recv.stop()


@pytest.fixture
def world(tmp_path):
    w = World(str(tmp_path))
    try:
        yield w
    finally:
        w.stop()


def test_ctl_and_events_end_to_end(world):
    e, shim, recv = world, world.shim, world.recv
    e.start()
    wait_for(lambda: ctl(e, "status").returncode == 0 and "valid" in ctl(e, "status").stdout,
             timeout=60, what="site.test issued and shown by ctl status")
    first = served_serial(e, "site.test")
    assert first

    # A failure: the next newOrder gets a 503 (from the shim) without
    # Retry-After, so the job waits out the guide's 1 min backoff.
    shim.inject("newOrder", 503, count=1, retry_after=None)
    r = get(e, "fail.test", timeout=30)
    assert not r.stdout.decode().endswith("\n200")
    wait_for(lambda: show(e, "fail.test")["failures"] == 1, timeout=30, what="the failure")
    job = show(e, "fail.test")
    assert job["state"] == "failed" and job["next_reason"] == "backoff"
    assert "injected by the test shim" in job["last_error"]

    # ctl status: one line per certificate with the documented columns.
    st = ctl(e, "status")
    assert st.returncode == 0, st.stderr
    lines = st.stdout.splitlines()
    assert lines[0].split() == ["NAMES", "NOT", "AFTER", "NEXT", "RENEWAL", "WHY", "STATE",
                                "FAILURES", "LAST", "ERROR"]
    rows = {ln.split()[0]: ln for ln in lines[1:]}
    assert set(rows) == {"site.test", "fail.test"}, st.stdout
    assert "valid" in rows["site.test"] and "ari-window" in rows["site.test"]
    assert "failed" in rows["fail.test"] and "backoff" in rows["fail.test"]
    assert "serverInternal: injected by the test shim" in rows["fail.test"]
    summary = {j["names"][0]: j for j in json.loads(ctl(e, "status", "--json").stdout)}
    assert summary["site.test"]["failures"] == 0 and summary["site.test"]["not_after"].endswith("Z")
    assert summary["fail.test"]["failures"] == 1 and summary["fail.test"]["not_after"] is None

    # ctl retry: the job in backoff gets an attempt now, not in a minute.
    orders = len(shim.new_orders)
    t0 = time.monotonic()
    r = ctl(e, "retry", "fail.test")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: show(e, "fail.test")["state"] == "valid", timeout=30, what="the retry")
    assert time.monotonic() - t0 < 30  # the backoff said 60 s
    assert len(shim.new_orders) == orders + 1
    ks = kinds(e, "fail.test")
    assert ks.index("failed") < ks.index("retry") < ks.index("obtained"), ks
    assert get(e, "fail.test").stdout.decode().endswith("\n200")

    # ctl renew: a new certificate although none is due.
    r = ctl(e, "renew", "site.test")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "renewed" in kinds(e, "site.test"), timeout=30, what="the renewal")
    second = served_serial(e, "site.test")
    assert second and second != first

    # ctl revoke answers once the CA has: Pebble records the certificate as
    # revoked, the job has the event, and a replacement with a new serial
    # is served.
    r = ctl(e, "revoke", "site.test", "--reason", "keyCompromise")
    assert r.returncode == 0, r.stderr
    assert revoked_serial(r.stdout) == int(second.split("=", 1)[1], 16), r.stdout
    assert "reason keyCompromise" in r.stdout and "a replacement is ordered now" in r.stdout
    assert "revoked" in kinds(e, "site.test")
    assert pebble_cert_status(e.pebble, second.split("=", 1)[1]) == "Revoked"
    assert "reason keyCompromise" in [ev for ev in show(e, "site.test")["events"]
                                      if ev["event"] == "revoked"][0]["detail"]
    wait_for(lambda: "renewed" in kinds(e, "site.test")[kinds(e, "site.test").index("revoked"):],
             timeout=30, what="the replacement")
    third = served_serial(e, "site.test")
    assert third not in (first, second)
    assert pebble_cert_status(e.pebble, third.split("=", 1)[1]) == "Valid"

    # A revocation the CA refuses (a 503 from the shim: Pebble always
    # accepts): ctl exits 1 with the CA's problem, and the certificate
    # stays valid and served.
    shim.inject("revokeCert", 503, count=1, retry_after=None)
    r = ctl(e, "revoke", "site.test")
    assert r.returncode == 1 and r.stdout == "", (r.stdout, r.stderr)
    assert r.stderr.startswith("portico ctl: the CA did not revoke the certificate for site.test "
                               "(serial "), r.stderr
    assert "injected by the test shim" in r.stderr and r.stderr.endswith("; it is still served\n")
    assert kinds(e, "site.test")[-1] == "revoke-failed"
    assert pebble_cert_status(e.pebble, third.split("=", 1)[1]) == "Valid"
    assert served_serial(e, "site.test") == third

    # Unknown names: a clear error and a non-zero exit.
    for args in (["show", "nope.test"], ["retry", "nope.test"], ["renew", "nope.test"],
                 ["revoke", "nope.test"]):
        r = ctl(e, *args)
        assert r.returncode == 1 and "unknown name nope.test" in r.stderr, (args, r.stderr)

    # The events reached the command and the webhook. The second `renewed`
    # of site.test (the replacement) came within 5 minutes of the first, so
    # the rate limit holds it back from both.
    want = {"site.test": ["obtained", "renewed", "revoked"], "fail.test": ["failed", "obtained"]}
    wait_for(lambda: all(recv.events(n) == w for n, w in want.items()), timeout=30,
             what=f"the webhook's events {want}, got {recv.bodies}")
    assert all(ct == "application/json" for ct, _ in recv.bodies)
    failed = [b for _, b in recv.bodies if b["event"] == "failed"][0]
    assert failed["error"] == "injected by the test shim"
    assert failed["error_type"] == "urn:ietf:params:acme:error:serverInternal"
    assert failed["attempt"] == 1 and failed["next_attempt"].endswith("Z")

    def hook_by_name():
        got = {}
        for b in hook_events(e.hook_out):
            got.setdefault(b["PORTICO_NAMES"], []).append(b["PORTICO_EVENT"])
        return got
    wait_for(lambda: hook_by_name() == want, timeout=30, what="the command's events")
    blocks = hook_events(e.hook_out)
    failed = [b for b in blocks if b["PORTICO_EVENT"] == "failed"][0]
    assert failed["PORTICO_ERROR"] == "injected by the test shim"
    assert failed["PORTICO_ATTEMPT"] == "1"
    renewed = [b for b in blocks if b["PORTICO_EVENT"] == "renewed"][0]
    assert renewed["PORTICO_NOT_AFTER"].endswith("Z") and "PORTICO_ERROR" not in renewed

    # A stopped portico: ctl says so and exits non-zero.
    assert e.portico.stop() == 0
    assert not os.path.exists(os.path.join(e.storage(), "admin.sock"))
    r = ctl(e, "status")
    assert r.returncode == 1 and "portico is not running" in r.stderr


def unreachable_ca_portico(tmp, extra=""):
    """A portico with one `tls: acme` site whose CA never answers: the
    certificate manager (and its admin socket) runs without any CA."""
    acme = (f"acme:\n  directory: \"https://127.0.0.1:{free_port()}/dir\"\n"
            f"  accept_terms: true\n")
    return Portico(tmp, [{"hosts": ["down.test"], "upstreams": ["127.0.0.1:9"], "tls": "acme"}],
                   extra=acme + extra, start=False)


def test_admin_socket_startup(tmp_path):
    tmp = str(tmp_path)
    storage = os.path.join(tmp, "storage")
    os.makedirs(storage)
    sock_path = os.path.join(tmp, "ctl.sock")
    # A stale socket (its server died without removing it) is replaced.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock_path)
    s.close()
    p = unreachable_ca_portico(tmp, f"admin:\n  socket: \"{sock_path}\"\n")
    p.start()
    try:
        r = subprocess.run([PORTICO, "ctl", "-c", p.config, "status"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr + p.log_text()
        assert "down.test" in r.stdout and "pending" in r.stdout
        assert "removed a stale socket file" in p.log_text()
    finally:
        assert p.stop() == 0
    # A path that is not a socket: start-up fails, naming the path.
    with open(sock_path, "w") as f:
        f.write("not a socket")
    p.start_failed = False
    try:
        p.start()
    except AssertionError:
        p.start_failed = True
    assert p.start_failed or p.proc.wait(timeout=10) != 0
    assert f"admin socket {sock_path}: the path exists and is not a socket" in p.log_text()


def test_admin_socket_off(tmp_path):
    p = unreachable_ca_portico(str(tmp_path), "admin:\n  socket: off\n")
    p.start()
    try:
        assert not os.path.exists(os.path.join(str(tmp_path), "storage", "admin.sock"))
        r = subprocess.run([PORTICO, "ctl", "-c", p.config, "status"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 1 and "admin.socket: off" in r.stderr
    finally:
        p.stop()


def test_expiring_when_renewal_fails_late(tmp_path):
    """A 60 s certificate whose renewal fails with under a third of its
    lifetime left sends `expiring` (with the CA's problem), once: a second
    failure the same day emits `failed` only (and that one is held back
    from the hook and the webhook by the 5-minute rate limit)."""
    e = World(str(tmp_path), pebble_config={"certificateValidityPeriod": 60})
    try:
        e.start()
        wait_for(lambda: "obtained" in e.recv.events("site.test"), timeout=60, what="site.test")
        not_after = show(e, "site.test")["not_after"]
        e.shim.inject("newOrder", 503, count=1000, retry_after=None)
        deadline = time.mktime(time.strptime(not_after, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        # Under a third left (20 s), with room for two attempts before expiry.
        wait_for(lambda: deadline - time.time() < 17, timeout=60, what="a third of the lifetime")
        assert ctl(e, "renew", "site.test").returncode == 0
        wait_for(lambda: "expiring" in e.recv.events("site.test"), timeout=10, what="expiring")
        body = [b for _, b in e.recv.bodies if b["event"] == "expiring"][0]
        assert body["error"] == "injected by the test shim" and body["not_after"] == not_after
        failures = show(e, "site.test")["failures"]
        assert ctl(e, "renew", "site.test").returncode == 0
        wait_for(lambda: show(e, "site.test")["failures"] > failures, timeout=10,
                 what="a second failure")
        # The log line is never rate-limited: it shows what was emitted.
        wait_for(lambda: e.portico.log_text().count("warn event: failed for site.test") == 2,
                 timeout=10, what="the second failed event")
        assert e.portico.log_text().count("warn event: expiring for site.test") == 1
        assert e.recv.events("site.test").count("expiring") == 1
        assert [b["PORTICO_EVENT"] for b in hook_events(e.hook_out)].count("expiring") == 1
    finally:
        e.stop()


def test_revoke_waits_for_the_ca_and_shutdown_ends_the_wait(tmp_path):
    """The CA is slow to answer revokeCert (the shim holds the request;
    Pebble always answers at once): `ctl revoke --wait 2` says the
    revocation is still in progress and exits 3, and the revocation
    completes once the CA answers. A revocation still waiting for the CA
    when portico stops ends the waiting ctl (exit 3, "portico is
    stopping") and frees its state: under the ASan build the harness finds
    no leak report in the log."""
    e = World(str(tmp_path))
    try:
        e.start()
        wait_for(lambda: "obtained" in kinds(e, "site.test"), timeout=60, what="site.test")
        serial = served_serial(e, "site.test").split("=", 1)[1]
        e.shim.hold("revokeCert")
        t0 = time.monotonic()
        r = ctl(e, "revoke", "site.test", "--wait", "2")
        took = time.monotonic() - t0
        assert r.returncode == 3, (r.stdout, r.stderr)
        assert r.stderr == ("portico ctl: revoke site.test: still in progress after 2 s; see "
                            "`portico ctl show site.test`\n")
        assert 1.5 < took < 20
        assert e.shim.held == 1
        e.shim.release()
        wait_for(lambda: "revoked" in kinds(e, "site.test"), timeout=30, what="the revocation")
        assert pebble_cert_status(e.pebble, serial) == "Revoked"
        wait_for(lambda: "renewed" in kinds(e, "site.test"), timeout=30, what="the replacement")

        # Stopped while a revocation waits for the CA.
        e.shim.hold("revokeCert")
        waiting = subprocess.Popen([PORTICO, "ctl", "-c", e.portico.config, "revoke", "site.test"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: e.shim.held == 2, timeout=30, what="the revocation at the CA, held")
        e.portico.proc.send_signal(signal.SIGTERM)
        out, err = waiting.communicate(timeout=30)
        assert waiting.returncode == 3, (out, err)
        assert "portico ctl: revoke site.test: portico is stopping before the outcome is known" in err
        # The request to the CA is abandoned at once (not held for its 30 s
        # timeout): portico exits on that one SIGTERM.
        assert e.portico.proc.wait(20) == 0, e.portico.log_text()
        assert "portico is stopping: the request to the ACME server at" in e.portico.log_text()
        e.shim.release()
        assert e.portico.stop() == 0
        assert e.portico.sanitizer_reports() == []
    finally:
        e.shim.release()
        e.stop()
