"""The certificate lifecycle against a real Pebble 2.4: renewal without any
client traffic, ARI (RFC 9773), the failure backoff persisted in the job,
and the CA's Retry-After.

Pebble 2.4 has no renewalInfo and never answers 429/503, so the ARI,
Retry-After and failure tests put acme_shim.py (a test-only SHIM) in front
of it; everything else reaches Pebble directly. Short lifetimes come from
Pebble's own `certificateValidityPeriod`."""
import http.client
import json
import os
import socket
import ssl
import time

import pytest

from acme_shim import AcmeShim
from harness import wait_for
from test_acme import Env, get, served_serial


def job_of(env, name):
    path = os.path.join(env.storage(), "jobs", f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def keepalive_connection(env, name):
    """An open HTTPS/1.1 connection to portico for `name`, trusting Pebble's root."""
    ctx = ssl.create_default_context(cafile=env.root)
    ctx.check_hostname = False  # the chain is Pebble's; only the connection matters here
    conn = http.client.HTTPSConnection("127.0.0.1", env.https_port, context=ctx, timeout=30)
    conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", env.https_port), timeout=30),
                                server_hostname=name)
    return conn


def request_ok(conn, name):
    conn.request("GET", "/echo", headers={"Host": name})
    r = conn.getresponse()
    r.read()
    return r.status == 200


LIFETIME = 150  # s: half is 75 (+/- 5%), plus at most 59 s for renew_rate's random second


def test_renewal_without_traffic(tmp_path):
    """A `tls: acme` certificate and an on-demand one, both 150 s long, are
    renewed before they expire with no client traffic in between; the new
    serial is served, and a connection opened before the renewal keeps
    working after it."""
    e = Env(str(tmp_path), start=False, pebble_config={"certificateValidityPeriod": LIFETIME})
    try:
        e.extra += "timeouts:\n  keepalive: 10m\n"  # the connection outlives the renewal
        e.sites = [{"hosts": ["site.test"], "upstreams": [e.backend.address], "tls": "acme"},
                   {"hosts": ["*"], "upstreams": [e.backend.address], "tls": "on_demand"}]
        e.start()
        wait_for(lambda: (job_of(e, "site.test") or {}).get("state") == "valid", timeout=60,
                 what="site.test issued at start-up")
        assert get(e, "ondemand.test").stdout.decode().endswith("\n200")
        first = {n: served_serial(e, n) for n in ("site.test", "ondemand.test")}
        not_after = {n: job_of(e, n)["not_after"] for n in first}
        assert all(first.values()), first
        conn = keepalive_connection(e, "site.test")
        assert request_ok(conn, "site.test")
        # No traffic now: only the scheduler can renew. Poll the job files
        # (not the server, which would be traffic) until both are renewed.
        wait_for(lambda: all(job_of(e, n)["not_after"] > not_after[n] for n in first),
                 timeout=LIFETIME, what="both renewals")
        for n in first:
            job = job_of(e, n)
            assert "renewed" in [ev["kind"] for ev in job["events"]], job
            assert time.time() < not_after[n], "renewed only after the old certificate expired"
            assert served_serial(e, n) != first[n]
        assert request_ok(conn, "site.test")  # the old connection was not dropped
        conn.close()
        assert "no renewalInfo" in e.portico.log_text()
    finally:
        e.stop()


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def test_faketime_day_89_of_90_renews_at_start(tmp_path):
    """The issue's report: with faketime, a 90-day certificate kept its
    serial on day 89. Restarted under faketime 89.5 days later (real
    monotonic clock), portico finds less than a day left (the emergency
    rule) and renews the on-demand and the `tls: acme` certificate at once,
    with no client traffic; clients (real time) get the new serials."""
    e = Env(str(tmp_path), start=False, pebble_config={"certificateValidityPeriod": 90 * 86400})
    try:
        e.sites = [{"hosts": ["site.test"], "upstreams": [e.backend.address], "tls": "acme"},
                   {"hosts": ["*"], "upstreams": [e.backend.address], "tls": "on_demand"}]
        # 89 days without a handshake would otherwise forget the name.
        e.extra += "on_demand:\n  forget_after: 365d\n"
        e.start()
        wait_for(lambda: (job_of(e, "site.test") or {}).get("state") == "valid", timeout=60,
                 what="site.test issued at start-up")
        assert get(e, "ondemand.test").stdout.decode().endswith("\n200")
        first = {n: served_serial(e, n) for n in ("site.test", "ondemand.test")}
        assert all(first.values()), first
        assert e.portico.stop() == 0
        # (Under ASan, libfaketime comes before ASan's runtime in the
        # preload list: ASan must be told that is fine.)
        asan = os.environ.get("ASAN_OPTIONS", "")
        e.start(env={"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "+2149h",  # 89.5 days
                     "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1",
                     "ASAN_OPTIONS": f"{asan}:verify_asan_link_order=0".lstrip(":")})
        # (Pebble dates certificates by the real clock: the new not_after
        # may equal the old one to the second, so the events tell.)
        wait_for(lambda: all("renewed" in [ev["kind"] for ev in job_of(e, n)["events"]]
                             for n in first), timeout=60, what="both renewals under faketime")
        for n in first:
            assert served_serial(e, n) != first[n], n
        # Pebble dates the new certificates by the real clock, so under
        # faketime they are due at once too: renewed once each, then held
        # back for an hour with a warning, not renewed in a loop.
        wait_for(lambda: e.portico.log_text().count("is already due for renewal") >= 2,
                 timeout=30, what="the clock warning")
        assert e.pebble.new_orders() == 4
        for n in first:
            job = job_of(e, n)
            assert job["next_run"] >= job["obtained_at"] + 3600, job
    finally:
        e.stop()


@pytest.fixture
def shim_env(tmp_path):
    """Env whose portico talks to Pebble through the shim (not started yet)."""
    e = Env(str(tmp_path), start=False)
    shim = AcmeShim(e.pebble).start()
    e.extra = e.extra.replace(e.pebble.directory, shim.directory)
    e.shim = shim
    try:
        yield e
    finally:
        e.stop()
        shim.stop()


def test_handshake_during_a_slow_ari_fetch_is_answered(tmp_path):
    """Found under TSan: a restart polls ARI for the cached certificates, and
    a handshake for one of those names while its fetch ran waited for
    on_demand's timeout (60 s), because the fetch marked the job busy and
    then resolved nothing. The shim holds renewalInfo (a slow CA)."""
    import concurrent.futures
    e = Env(str(tmp_path), start=False)
    shim = AcmeShim(e.pebble).start()
    e.extra = e.extra.replace(e.pebble.directory, shim.directory)
    try:
        now = int(time.time())
        shim.set_window(now + 30 * 86400, now + 31 * 86400)
        e.start()
        assert get(e, "slowari.test").stdout.decode().endswith("\n200")
        wait_for(lambda: (job_of(e, "slowari.test") or {}).get("ari"), timeout=30,
                 what="the first ARI window")
        assert e.portico.stop() == 0
        # Due for a poll at start-up, as after a long stop.
        job = job_of(e, "slowari.test")
        job["ari"]["next_poll"] = now - 60
        with open(os.path.join(e.storage(), "jobs", "slowari.test.json"), "w") as f:
            json.dump(job, f)
        shim.hold()
        e.start()
        wait_for(lambda: shim.held >= 1, timeout=30, what="the start-up ARI fetch, held")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            answer = pool.submit(get, e, "slowari.test", "/echo", 20)
            wait_for(lambda: "slowari.test waits for its renewalInfo fetch" in e.portico.log_text(),
                     timeout=20, what="the handshake waiting on the fetch")
            shim.release()
            assert answer.result().stdout.decode().endswith("\n200")
    finally:
        shim.release()
        e.stop()
        shim.stop()


def test_ari_window_in_the_past_renews_at_once_with_replaces(shim_env):
    e, shim = shim_env, shim_env.shim
    now = int(time.time())
    shim.set_window(now - 7200, now - 3600, "https://ca.example/why")  # every certificate
    e.sites = [{"hosts": ["ari.test"], "upstreams": [e.backend.address], "tls": "acme"}]
    e.start()
    # The first order replaces nothing; ARI says "renew now", and the renewal
    # (spread by renew_rate to a second of the current minute) replaces it.
    wait_for(lambda: len([r for r in shim.replaces_sent() if r]) >= 1, timeout=90,
             what="a renewal with replaces")
    shim.set_window(now + 30 * 86400, now + 31 * 86400)  # from now on, far in the future
    sent = shim.replaces_sent()
    assert sent[0] is None
    assert sent[1] == shim.polls[0]  # the ID of the first certificate, as ARI knows it
    assert "the CA explains: https://ca.example/why" in e.portico.log_text()
    # The newest certificate, polled with the future window, is not renewed:
    # its next run lies inside that window.
    def settled():
        job = job_of(e, "ari.test")
        return job and job.get("ari") and job["ari"]["start"] >= now + 30 * 86400 - 1 and \
            job["next_run"] >= now + 30 * 86400
    wait_for(settled, timeout=60, what="the future window in the job")
    job = job_of(e, "ari.test")
    assert job["next_reason"] == "ari-window"
    assert job["next_run"] <= now + 31 * 86400
    assert served_serial(e, "ari.test")


def rewind(env, name, seconds):
    """Moves a stopped instance's job `seconds` into the past, as a clock
    jump would: the backoff's last failure, next run and Retry-After."""
    path = os.path.join(env.storage(), "jobs", f"{name}.json")
    with open(path) as f:
        job = json.load(f)
    for k in ("last_failure", "next_run", "retry_after"):
        if job.get(k):
            job[k] -= seconds
    with open(path, "w") as f:
        json.dump(job, f)


def test_backoff_persisted_across_restarts(shim_env):
    e, shim = shim_env, shim_env.shim
    shim.inject("newOrder", 503, count=1000, retry_after=None)
    e.sites = [{"hosts": ["fail.test"], "upstreams": [e.backend.address], "tls": "acme"}]
    e.start()
    steps = []
    for expected in (60, 600, 6000):
        n = len(steps) + 1
        wait_for(lambda: (job_of(e, "fail.test") or {}).get("failures") == n, timeout=60,
                 what=f"failure {n}")
        job = job_of(e, "fail.test")
        steps.append(job["next_run"] - job["last_failure"])
        assert job["state"] == "failed"
        assert job["last_error"]["status"] == 503
        assert e.portico.stop() == 0
        # A restart alone does not retry early: the schedule is in the job.
        orders = len(shim.new_orders)
        e.start()
        wait_for(lambda: f"acme: fail.test failed {n} time(s)" in e.portico.log_text(), timeout=30,
                 what="the job read at start-up")
        assert job_of(e, "fail.test")["failures"] == n
        assert job_of(e, "fail.test")["next_run"] == job["next_run"]
        assert len(shim.new_orders) == orders
        if n == 3:
            break
        assert e.portico.stop() == 0
        rewind(e, "fail.test", expected + 1)
        e.start()
    assert steps == [60, 600, 6000]


def test_rate_limited_retry_after_is_honoured(shim_env):
    e, shim = shim_env, shim_env.shim
    shim.inject("newOrder", 429, count=1, retry_after=900)
    e.sites = [{"hosts": ["limited.test"], "upstreams": [e.backend.address], "tls": "acme"}]
    t0 = int(time.time())
    e.start()
    wait_for(lambda: (job_of(e, "limited.test") or {}).get("failures") == 1, timeout=60,
             what="the 429")
    job = job_of(e, "limited.test")
    assert job["last_error"]["rate_limited"] is True
    assert job["retry_after"] >= t0 + 900
    assert job["next_run"] >= job["retry_after"]  # not the 1 min backoff
    assert job["next_reason"] == "retry-after"
    assert "the CA rate-limits limited.test" in e.portico.log_text()


def test_profile_not_offered_refuses_start_up_with_the_list(shim_env):
    """acme.profile must be one the CA's directory lists (meta.profiles, the
    profiles extension; the shim advertises them, Pebble 2.4 predates it):
    otherwise portico refuses to start, naming what the CA offers."""
    e, shim = shim_env, shim_env.shim
    shim.profiles = {"classic": "90 days", "shortlived": "6 days"}
    base = e.extra
    e.extra = base + "  profile: tlsserver\n"
    try:
        e.start()  # it may exit before the harness sees the ports open (AssertionError)
        wait_for(lambda: e.portico.proc.poll() is not None, timeout=30, what="portico to exit")
        assert e.portico.proc.returncode != 0
    except AssertionError as exc:
        assert "portico exited at start" in str(exc), exc
    with open(os.path.join(e.tmp, "portico.err")) as f:
        log = f.read()
    assert (f'acme: acme.profile "tlsserver" is not offered by the CA at {shim.directory} '
            '(it offers: classic, shortlived); refusing to start') in log, log
    assert shim.new_orders == []
    # A listed profile is sent with each order (RFC 8555 §7.4 extended).
    e.extra = base + "  profile: shortlived\n"
    e.start()
    assert get(e, "profiled.test").stdout.decode().endswith("\n200")
    assert [o.get("profile") for o in shim.new_orders] == ["shortlived"]


def ca_id(url):
    """The cache's directory name for a CA (docs/cache.md)."""
    import hashlib
    import re as _re
    import urllib.parse
    host = urllib.parse.urlsplit(url).netloc.split("@")[-1].lower().replace(":", "_")
    host = _re.sub(r"[^a-z0-9._-]", "-", host)[:64] or "ca"
    return f"{host}-{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def test_forgotten_account_is_registered_again(tmp_path):
    """A CA that lost its accounts (here: a fresh Pebble, given the old
    account files as if it were the same CA) answers accountDoesNotExist:
    portico registers a new account once and the order goes on."""
    from pebble_env import Pebble
    e = Env(str(tmp_path))
    try:
        assert get(e, "first.test").stdout.decode().endswith("\n200")
        assert e.portico.stop() == 0
        old_dir = e.pebble.directory
        e.pebble.stop()
        e.pebble = Pebble(str(tmp_path / "second"), e.https_port, e.http_port)
        accounts = os.path.join(e.storage(), "accounts")
        new = os.path.join(accounts, ca_id(e.pebble.directory))
        os.rename(os.path.join(accounts, ca_id(old_dir)), new)
        with open(os.path.join(new, "account.json")) as f:
            acct = json.load(f)
        acct["kid"] = acct["kid"].replace(old_dir.rsplit("/", 1)[0], e.pebble.directory.rsplit("/", 1)[0])
        acct["directory"] = e.pebble.directory
        with open(os.path.join(new, "account.json"), "w") as f:
            json.dump(acct, f)
        with open(e.root, "w") as f:
            f.write(e.pebble.root_pem())
        e.extra = e.pebble.acme_yaml()
        e.start()
        assert get(e, "second.test").stdout.decode().endswith("\n200")
        log = e.portico.log_text()
        assert "no longer knows the account" in log
        assert log.count("account created at") == 2  # the first Pebble's, and the new one
        # newOrder twice: refused (accountDoesNotExist), then placed.
        assert e.pebble.new_orders() == 2
        with open(os.path.join(new, "account.json")) as f:
            assert json.load(f)["kid"] != acct["kid"]  # the new account replaced the old
    finally:
        e.stop()


def test_ca_outage_is_not_a_failure_of_the_name(shim_env):
    """The CA's directory answers 503 at start-up (the shim stands in for
    an outage Pebble cannot simulate without losing its state): the site's
    job counts no failure, the directory is probed on its own backoff
    (30 s first), and when it answers the site is issued at once, with no
    client traffic."""
    e, shim = shim_env, shim_env.shim
    shim.inject("directory", 503, count=2, retry_after=None)  # the start-up probe and the order
    e.sites = [{"hosts": ["outage.test"], "upstreams": [e.backend.address], "tls": "acme"}]
    e.start()
    wait_for(lambda: "ca-unreachable" in [ev["kind"] for ev in (job_of(e, "outage.test") or {}).get("events", [])],
             timeout=30, what="the outage noticed")
    job = job_of(e, "outage.test")
    assert job["failures"] == 0 and job["state"] == "pending", job
    wait_for(lambda: f"the CA at {shim.directory} cannot be reached" in e.portico.log_text(),
             timeout=10, what="the outage logged")
    t0 = time.monotonic()
    wait_for(lambda: (job_of(e, "outage.test") or {}).get("state") == "valid", timeout=60,
             what="issuance once the CA answers")
    assert time.monotonic() - t0 < 40  # the 30 s probe, not the name's backoff
    assert "answers again" in e.portico.log_text()
    assert job_of(e, "outage.test")["failures"] == 0


def test_on_demand_name_not_seen_is_not_renewed(tmp_path):
    """An on-demand name whose last handshake is older than
    on_demand.forget_after is not renewed, even when due; a handshake
    brings it back. The job is moved into the past as a clock jump would."""
    e = Env(str(tmp_path))
    try:
        assert get(e, "quiet.test").stdout.decode().endswith("\n200")
        assert e.portico.stop() == 0
        path = os.path.join(e.storage(), "jobs", "quiet.test.json")
        with open(path) as f:
            job = json.load(f)
        now = int(time.time())
        job["last_seen"] = now - 31 * 86400
        job["next_run"] = now - 60  # due: it would be renewed at once
        with open(path, "w") as f:
            json.dump(job, f)
        orders = e.pebble.new_orders()
        e.start()
        wait_for(lambda: "quiet.test is not renewed: no handshake asked for it" in e.portico.log_text(),
                 timeout=30, what="the forgotten name at start-up")
        assert e.pebble.new_orders() == orders
        # A handshake: served from the cache, remembered again.
        assert get(e, "quiet.test").stdout.decode().endswith("\n200")
        wait_for(lambda: job_of(e, "quiet.test")["last_seen"] >= now, timeout=10,
                 what="last_seen written")
    finally:
        e.stop()
