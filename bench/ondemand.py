#!/usr/bin/python3
"""Benchmark scenario 8: on-demand certificate latency against a local Pebble.

For portico and for Caddy (Debian's package, 2.6.2), each with its own fresh
Pebble 2.4 + pebble-challtestsrv (tests/integration/pebble_env.py) whose
tlsPort/httpPort point at that server's listeners, on free loopback ports:

- one warm-up name (untimed in the stats, reported as warmup_ms), so that the
  one-time ACME account registration is not counted in the percentiles;
- 20 new names one after another: wall time from the start of the TCP connect
  to the end of the TLS handshake, from a Python client sending SNI=<name>
  (p50/p95 in ms);
- 20 other new names handshaked at once from 20 threads (ok/failed, p50).

A handshake only counts as a success when the leaf it got lists the name in
its SAN and was issued by Pebble (checked with cryptography.x509); the
per-name deadline is 30 s. portico runs with on_demand.rate raised to
1000/min (its default, 20/min, would refuse part of the 41 names); Caddy runs
with its defaults (no `ask`, certmagic's built-in ACME throttle of 10 orders
per 10 s per CA applies), only Pebble as issuer, OCSP stapling off.

Seen with Caddy 2.6.2: part of the simultaneous first handshakes fail at once
with an internal_error alert; its debug log says "on-demand rate limit
exceeded" although no rate limit is configured (same with `ask`, or with
`on_demand_tls {interval 1s burst 1000}`).
"""
import argparse
import collections
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from cryptography import x509

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from pebble_env import Pebble  # noqa: E402

TIMEOUT = 30.0
CADDY = "/usr/bin/caddy"


def handshake(port, name, timeout=TIMEOUT, host="127.0.0.1"):
    """(ok, ms, error): one fresh TLS handshake with SNI=name to host:port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    t0 = time.monotonic()
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.settimeout(max(0.1, timeout - (time.monotonic() - t0)))
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            ms = (time.monotonic() - t0) * 1000
            der = s.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as e:
        return False, (time.monotonic() - t0) * 1000, f"{type(e).__name__}: {e}"
    try:
        cert = x509.load_der_x509_certificate(der)
        issuer = cert.issuer.rfc4514_string()
        dns = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.DNSName)
    except (ValueError, TypeError, x509.ExtensionNotFound) as e:
        return False, ms, f"unreadable certificate: {e}"
    if name not in dns or "Pebble" not in issuer:
        return False, ms, f"wrong certificate: SAN {dns}, issuer {issuer}"
    return True, ms, None


def new_names(tag, n):
    r = secrets.token_hex(3)
    return [f"n{i}-{tag}{r}.bench.test" for i in range(n)]


def p(values, q):
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def measure(port, n):
    """The warm-up, n sequential and n concurrent new names against port."""
    out, errors = {}, []
    ok, ms, err = handshake(port, new_names("w", 1)[0])
    out["warmup_ms"] = round(ms, 1)
    if not ok:
        errors.append(f"warm-up: {err}")
    seq = []
    for name in new_names("s", n):
        ok, ms, err = handshake(port, name)
        if ok:
            seq.append(ms)
        else:
            errors.append(f"{name}: {err}")
    out.update(p50_ms=p(seq, 50), p95_ms=p(seq, 95), ok=len(seq), failed=n - len(seq))
    names, results = new_names("c", n), [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        barrier.wait()
        results[i] = handshake(port, names[i])
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conc = [r[1] for r in results if r[0]]
    errors += [f"{nm}: {r[2]}" for nm, r in zip(names, results) if not r[0]]
    out.update(concurrent_ok=len(conc), concurrent_failed=n - len(conc),
               concurrent_p50_ms=p(conc, 50), concurrent_max_ms=round(max(r[1] for r in results), 1),
               concurrent_wall_ms=round((time.monotonic() - t0) * 1000, 1))
    if errors:  # what went wrong, and how many times
        out["errors"] = dict(collections.Counter(e.split(": ", 1)[1] for e in errors))
    return out


def run_portico(portico_bin, tmp, n):
    https_port, http_port = harness.free_port(), harness.free_port()
    harness.PORTICO = os.path.abspath(portico_bin)
    backend = pebble = srv = None
    try:
        backend = harness.Backend(tmp, "bench-backend")
        pebble = Pebble(tmp, https_port, http_port)
        extra = pebble.acme_yaml(("tls-alpn-01", "http-01")) + "on_demand:\n  rate: 1000/min\n"
        srv = harness.Portico(tmp, [{"hosts": ["*"], "upstreams": [backend.address], "tls": "on_demand"}],
                              extra=extra, level="info", https_port=https_port, http_port=http_port)
        out = measure(https_port, n)
        out["pebble_orders"] = pebble.new_orders()
        return out
    finally:
        try:
            if srv is not None:
                srv.stop()  # SIGTERM; kills it after 30 s
        finally:
            for x in (pebble, backend):
                if x is not None:
                    x.stop()


CADDYFILE = """{{
\tadmin off
\tdefault_bind 127.0.0.1
\thttp_port {http_port}
\thttps_port {https_port}
\tstorage file_system {storage}
\tacme_ca {directory}
\tacme_ca_root {ca}
\temail ops@example.com
\tocsp_stapling off
\tskip_install_trust
}}
https:// {{
\ttls {{
\t\ton_demand
\t}}
\trespond "ok"
}}
"""


def caddy_version():
    r = subprocess.run([CADDY, "version"], capture_output=True, text=True, timeout=10)
    return (r.stdout or r.stderr).strip()


def run_caddy(tmp, n):
    https_port, http_port = harness.free_port(), harness.free_port()
    home = os.path.join(tmp, "home")
    env = dict(os.environ, HOME=home, XDG_DATA_HOME=os.path.join(home, "data"),
               XDG_CONFIG_HOME=os.path.join(home, "config"))
    pebble = proc = log = None
    try:
        pebble = Pebble(tmp, https_port, http_port)
        cfg = os.path.join(tmp, "Caddyfile")
        with open(cfg, "w") as f:
            f.write(CADDYFILE.format(http_port=http_port, https_port=https_port, ca=pebble.ca,
                                     storage=os.path.join(tmp, "caddy-storage"), directory=pebble.directory))
        log_path = os.path.join(tmp, "caddy.log")
        log = open(log_path, "wb")
        proc = subprocess.Popen([CADDY, "run", "--config", cfg, "--adapter", "caddyfile"],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        try:
            harness.wait_for(lambda: proc.poll() is not None or
                             (harness.port_open(https_port) and harness.port_open(http_port)),
                             timeout=20, what="caddy to listen")
        except TimeoutError:
            pass
        if proc.poll() is not None or not harness.port_open(https_port):
            with open(log_path, errors="replace") as f:
                return {"error": "caddy did not start: " + f.read()[-2000:]}
        out = measure(https_port, n)
        with open(log_path, errors="replace") as f:
            text = f.read()
        # Evidence that the certificates came from this Pebble and nothing else.
        out["caddy_log_obtained"] = len(re.findall(r'"msg":"certificate obtained successfully"', text))
        cas = sorted(set(re.findall(r'"ca":"([^"]+)"', text)))
        out["caddy_log_cas"] = cas
        out["caddy_log_only_pebble"] = cas == [pebble.directory] and "zerossl" not in text.lower()
        out["pebble_orders"] = pebble.new_orders()
        return out
    finally:
        if proc is not None:
            harness.stop_process(proc, 10)
        if log is not None:
            log.close()
        if pebble is not None:
            pebble.stop()


def scenario8(portico_bin: str, names: int = 20) -> dict:
    result = {"caddy_version": None}
    tmp = tempfile.mkdtemp(prefix="portico-bench8-")
    try:
        os.makedirs(os.path.join(tmp, "portico"))
        result["portico"] = run_portico(portico_bin, os.path.join(tmp, "portico"), names)
        if not os.path.exists(CADDY):
            subprocess.run(["apt-get", "install", "-y", "caddy"], capture_output=True, timeout=600)
        if not os.path.exists(CADDY):
            result["caddy"] = {"error": f"{CADDY} missing and apt-get install caddy failed"}
        else:
            result["caddy_version"] = caddy_version()
            os.makedirs(os.path.join(tmp, "caddy"))
            try:
                result["caddy"] = run_caddy(os.path.join(tmp, "caddy"), names)
            except Exception as e:  # noqa: BLE001 - caddy's failure must not lose portico's numbers
                result["caddy"] = {"error": f"{type(e).__name__}: {e}"}
        a, b = result["portico"].get("p50_ms"), result["caddy"].get("p50_ms")
        result["ratio_p50"] = round(b / a, 2) if a and b else None
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portico", default=os.path.join(HERE, "..", "build", "portico"))
    ap.add_argument("--names", type=int, default=20)
    args = ap.parse_args()
    print(json.dumps(scenario8(args.portico, args.names), indent=2))
