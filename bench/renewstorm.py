#!/usr/bin/python3
"""Benchmark: a renewal storm. 100,000 certificates sit in portico's
on-disk cache, all due for renewal at once (28-day certificates with 8 days
left, past the "a third of the lifetime left" point and its jitter), served
by a `tls: on_demand` site, with a local Pebble (pebble_env.py) as the CA.
Measured in one run:

- renewals started in each whole clock minute of the storm, counted from
  portico's log ("acme: renewing NAME"), against acme.renew_rate (10 by
  default);
- HTTPS latency (h2load, HTTP/1.1 keep-alive at a fixed request rate,
  against one cached name) while the storm runs, against the same load on
  the same certificates with nothing due: p50 and p99.

The quiet and the storm instance run side by side and are measured at the
same time, each by its own h2load, so whatever else the machine does falls
on both alike (measured one after the other, a busy minute on a shared
machine moved the ratio by more than the storm did). The quiet instance
reads a hard-linked copy of the cache (taken before meta.json is written)
and points at a CA that is not there, so its measured name, due like the
others, is never renewed. Only meta.json differs between the two caches.
The storm instance first reads 100,000 meta.json files into jobs (several
seconds of one core); latency is measured once it logs "ready" (a real
storm finds its jobs known), while renewals go on at renew_rate. Without it the cached names' jobs do not know their expiry until a
handshake reads the certificate, so nothing is scheduled (the measured name
itself is renewed once, at its first handshake). With it, every job is due
at start-up and waits in the renewal backlog.

The certificates are generated once (manynames.py's generator) into
~/.cache/portico/bench-storm-<count> and reused for 5 days. Renewed names
get Pebble's certificates and are no longer due; a run renews a few dozen
of 100,000, and later runs leave them out."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from bench import h2load  # noqa: E402
from manynames import ensure_cache, name_of  # noqa: E402
from pebble_env import Pebble  # noqa: E402

DAY = 86400


def set_meta(cache, count, on):
    """Writes (or removes) meta.json for every certificate: the names and
    validity a job is built from when the cache has no job files."""
    nb, na = int(time.time()) - 20 * DAY, int(time.time()) + 8 * DAY
    generated = os.path.getmtime(os.path.join(cache, ".complete"))
    for i in range(count):
        path = os.path.join(cache, "certs", name_of(i), "meta.json")
        if not on:
            if os.path.exists(path):
                os.unlink(path)
            continue
        # A certificate an earlier run renewed (Pebble's, years long) is
        # not due: left without meta.json, it is not scheduled.
        if os.path.getmtime(os.path.join(cache, "certs", name_of(i), "cert.pem")) > generated:
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"names": [name_of(i)], "issued_at": nb, "not_after": na}, f)


def reset_jobs(cache):
    shutil.rmtree(os.path.join(cache, "jobs"), ignore_errors=True)


def start_portico(tmp, binary, cache, pebble, https_port, http_port, backend, rate, tag="storm",
                  directory=None):
    cfg = os.path.join(tmp, f"portico-{tag}.yaml")
    with open(cfg, "w") as f:
        f.write(f"""listen: {{https: "127.0.0.1:{https_port}", http: "127.0.0.1:{http_port}"}}
workers: 1
storage: "{cache}"
log: {{level: info, access: off}}
acme:
  directory: "{directory or pebble.directory}"
  ca_file: "{pebble.ca}"
  accept_terms: true
  renew_rate: {rate}
sites:
  - hosts: ["*"]
    tls: on_demand
    upstreams: ["{backend.address}"]
""")
    log = os.path.join(tmp, f"portico-{tag}.err")
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "-c", cfg], stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
    harness.wait_for(lambda: harness.port_open(https_port) or proc.poll() is not None,
                     timeout=600, interval=0.01, what="portico")
    if proc.poll() is not None:
        raise RuntimeError("portico exited:\n" + open(log, errors="replace").read()[-2000:])
    return proc, log, time.monotonic() - t0


def load(port, name, secs, conns, rps):
    """HTTP/1.1 keep-alive at a fixed rate (conns x rps per second)."""
    n, r = h2load(port, "/echo", conns, secs=secs, latency=True, rps=rps, host=name)
    r.pop("latencies_us", None)
    return {"ok": n, **r}


def renewals_per_minute(log, since, until):
    """Renewals started in each whole clock minute (the minutes renew_rate
    counts) between `since` and `until` (Unix s), from the log's
    "acme: renewing NAME" lines."""
    first, last = since // 60 + 1, until // 60  # whole minutes only
    per = {m: 0 for m in range(first, last)}
    for line in open(log, errors="replace"):
        if " acme: renewing " not in line:
            continue
        m = int(time.mktime(time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone) // 60
        if m in per:
            per[m] += 1
    return [per[m] for m in sorted(per)]


def lower_priority(pid, nice=19):
    """Renices every thread of `pid` (Linux applies nice per thread). The CA
    runs on another machine in production; here it shares the proxy's two
    cores, and at normal priority its own issuance work would be measured
    as the proxy's latency."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.setpriority(os.PRIO_PROCESS, int(tid), nice)
        except OSError:
            pass


def run(binary, count, minutes, load_secs, rate, conns, rps, keep_logs=None):
    import threading
    cache = ensure_cache(count, tag="storm", not_before_s=-20 * DAY, not_after_s=8 * DAY,
                         max_age_days=5)
    quiet_cache = f"{cache}.quiet-{os.getpid()}"
    tmp = tempfile.mkdtemp(prefix="portico-storm-")
    https_port, http_port = harness.free_port(), harness.free_port()
    pebble = Pebble(tmp, https_port, http_port)
    for p in (pebble.proc, pebble.dns):
        lower_priority(p.pid)
    backend = harness.Backend(tmp, "app")
    name = name_of(0)
    out = {"certificates_on_disk": count, "renew_rate": rate, "load": f"{conns}x{rps} req/s",
           "method": "quiet and storm instances side by side, measured at the same time"}
    procs = []
    try:
        reset_jobs(cache)
        set_meta(cache, count, on=False)
        # The quiet copy: hard links, before the storm's meta.json exists.
        shutil.rmtree(quiet_cache, ignore_errors=True)
        subprocess.run(["cp", "-al", cache, quiet_cache], check=True)
        set_meta(cache, count, on=True)  # every storm job due at start-up
        q_https, q_http = harness.free_port(), harness.free_port()
        qproc, qlog, out["startup_quiet_s"] = start_portico(
            tmp, binary, quiet_cache, pebble, q_https, q_http, backend, rate, tag="quiet",
            directory="https://127.0.0.1:1/dir")
        procs.append(qproc)
        since = int(time.time())
        sproc, log, out["startup_storm_s"] = start_portico(tmp, binary, cache, pebble, https_port,
                                                           http_port, backend, rate)
        procs.append(sproc)
        # Start-up reads 100,000 certificates' meta.json into jobs on the
        # manager thread (several seconds of one core): the bench's way of
        # making them due, not part of a storm (a real one finds its jobs
        # known). "ready" is logged once that scan is over; measure then.
        t0 = time.monotonic()
        harness.wait_for(lambda: " ready: " in open(log, errors="replace").read(), timeout=900,
                         interval=0.5, what="the storm instance's start-up scan")
        out["startup_scan_s"] = round(time.monotonic() - t0, 1)
        since = int(time.time())
        t_end = since + minutes * 60
        results = {}

        def measure(tag, port):
            results[tag] = load(port, name, load_secs, conns, rps)
        threads = [threading.Thread(target=measure, args=a)
                   for a in (("quiet", q_https), ("storm", https_port))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        out.update(results)
        while time.time() < t_end:
            time.sleep(1)
        for p in procs:
            harness.stop_process(p, 30)
        per_min = renewals_per_minute(log, since, int(time.time()))
        text = open(log, errors="replace").read()
        out["renewals_started_per_minute"] = per_min
        out["renewed"] = len(re.findall(r"acme: certificate for \S+ renewed", text))
        out["renewals_failed"] = len(re.findall(r"acme: issuance for \S+ failed", text))
        q, s = out["quiet"].get("p99_ms"), out["storm"].get("p99_ms")
        out["p99_storm_vs_quiet"] = s / q if q and s else None
        q, s = out["quiet"].get("p50_ms"), out["storm"].get("p50_ms")
        out["p50_storm_vs_quiet"] = s / q if q and s else None
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if keep_logs:
            os.makedirs(keep_logs, exist_ok=True)
            for f in ("portico-storm.err", "portico-quiet.err"):
                if os.path.exists(os.path.join(tmp, f)):
                    shutil.copy(os.path.join(tmp, f), keep_logs)
        set_meta(cache, count, on=False)
        reset_jobs(cache)
        shutil.rmtree(quiet_cache, ignore_errors=True)
        backend.stop()
        pebble.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--portico", default=os.path.join(HERE, "..", "build", "portico"))
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--minutes", type=int, default=5, help="storm length observed")
    ap.add_argument("--load-secs", type=int, default=120)
    ap.add_argument("--renew-rate", type=int, default=10)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--rps", type=int, default=50, help="requests per second per connection")
    ap.add_argument("--keep-logs", help="copy portico's logs of both runs into this directory")
    a = ap.parse_args()
    print(json.dumps(run(a.portico, a.count, a.minutes, a.load_secs, a.renew_rate, a.conns,
                         a.rps, a.keep_logs), indent=1))
