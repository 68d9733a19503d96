#!/usr/bin/python3
"""Benchmark scenario 7: many names. 100,000 certificates sit in portico's
on-disk cache (docs/cache.md layout, as portico itself writes it); a
`tls: on_demand` site serves them. Measured:

- start-up: from exec to the HTTPS port accepting, and RSS when ready;
- RSS per certificate in memory: after one handshake each for 10,000 names
  (loaded from disk on first use, then kept in the LRU, cache_size 10000);
- the handshake rate with SNI rotating over those 10,000 names, against the
  rate for one name, both as handshakes per server CPU-second (the Python
  client, two processes, is the bottleneck in wall time).

Portico only: nginx and HAProxy have no on-demand cache to compare. The
certificates are generated once (Debian's python3-cryptography, P-256 keys,
one local CA) into ~/.cache/portico/bench-names-<count> and reused; the CA
behind `acme.directory` is unreachable on purpose, since cached names never
need it."""
import argparse
import json
import multiprocessing
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from procstat import cpu_seconds, rss_kib  # noqa: E402

def name_of(i):
    return f"n{i}.many.test"


def _gen_range(args):
    root, ca_pem, ca_key_pem, start, stop, nb_s, na_s = args
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime
    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, None)
    now = datetime.datetime.now(datetime.timezone.utc)
    for i in range(start, stop):
        name = name_of(i)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now + datetime.timedelta(seconds=nb_s))
                .not_valid_after(now + datetime.timedelta(seconds=na_s))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        d = os.path.join(root, "certs", name)
        os.makedirs(d, mode=0o700, exist_ok=True)
        for fname, data in (("cert.pem", cert.public_bytes(serialization.Encoding.PEM) + ca_pem),
                            ("key.pem", key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))):
            fd = os.open(os.path.join(d, fname), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)


def ensure_cache(count, tag="names", not_before_s=-3600, not_after_s=28 * 86400, max_age_days=20):
    """The cache directory with `count` certificates, generated once: valid
    from now + not_before_s to now + not_after_s (by default an hour ago to
    28 days on, inside the test CA's 30), regenerated after max_age_days."""
    root = os.path.expanduser(f"~/.cache/portico/bench-{tag}-{count}")
    done = os.path.join(root, ".complete")
    if os.path.exists(done) and time.time() - os.path.getmtime(done) < max_age_days * 86400:
        return root
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root, mode=0o700)
    with open(os.path.join(root, "version"), "w") as f:
        f.write("1\n")
    shutil.rmtree(root + "-ca", ignore_errors=True)
    certs = harness.Certs(root + "-ca")
    ca_pem = open(certs.ca, "rb").read()
    ca_key_pem = open(certs.ca_key, "rb").read()
    t0 = time.monotonic()
    step = 1000
    jobs = [(root, ca_pem, ca_key_pem, s, min(s + step, count), not_before_s, not_after_s)
            for s in range(0, count, step)]
    with multiprocessing.Pool(os.cpu_count() or 2) as pool:
        for _ in pool.imap_unordered(_gen_range, jobs):
            pass
    print(f"  generated {count} certificates in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    open(done, "w").close()
    return root


def _handshakes(args):
    port, names, rounds = args
    ctx = ssl._create_unverified_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ok = 0
    for _ in range(rounds):
        for name in names:
            with socket.create_connection(("127.0.0.1", port)) as raw:
                with ctx.wrap_socket(raw, server_hostname=name) as s:
                    if s.version() == "TLSv1.3":
                        ok += 1
    return ok


def handshake_run(pid, port, names, rounds=1, procs=2):
    """Full handshakes (a new context per process, so no resumption) from
    `procs` processes; returns (count, server CPU s, wall s)."""
    parts = [names[k::procs] for k in range(procs)]
    c0, t0 = cpu_seconds(pid), time.monotonic()
    with multiprocessing.Pool(procs) as pool:
        ok = sum(pool.map(_handshakes, [(port, p, rounds) for p in parts]))
    return ok, cpu_seconds(pid) - c0, time.monotonic() - t0


def scenario7(portico_bin, count=100000, rotate=10000):
    cache = ensure_cache(count)
    tmp = tempfile.mkdtemp(prefix="portico-s7-")
    port = harness.free_port()
    cfg = os.path.join(tmp, "portico.yaml")
    with open(cfg, "w") as f:
        f.write(f"""listen: {{https: "127.0.0.1:{port}"}}
workers: 1
storage: "{cache}"
log: {{level: warn, access: off}}
acme: {{directory: "https://127.0.0.1:9/dir", accept_terms: true}}
on_demand: {{cache_size: {rotate}}}
sites:
  - hosts: ["*"]
    tls: on_demand
    upstreams: ["127.0.0.1:9"]
""")
    t0 = time.monotonic()
    proc = subprocess.Popen([portico_bin, "-c", cfg], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(tmp, "portico.err"), "wb"))
    try:
        harness.wait_for(lambda: harness.port_open(port), interval=0.002, what="portico")
        startup = time.monotonic() - t0
        rss0 = rss_kib(proc.pid)
        names = [name_of(i) for i in range(0, count, count // rotate)][:rotate]
        # First pass: each name is loaded from disk once.
        n_cold, cpu_cold, wall_cold = handshake_run(proc.pid, port, names)
        rss1 = rss_kib(proc.pid)
        # Warm passes: rotating SNI over the names now in memory, then one name.
        n_rot, cpu_rot, wall_rot = handshake_run(proc.pid, port, names)
        n_one, cpu_one, wall_one = handshake_run(proc.pid, port, [names[0]] * len(names))
    finally:
        harness.stop_process(proc, 10)
    err = open(os.path.join(tmp, "portico.err"), errors="replace").read()[-2000:]
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "certificates_on_disk": count, "rotating_names": rotate,
        "startup_s": startup, "rss_at_start_kib": rss0, "rss_after_kib": rss1,
        "rss_kib_per_cert": (rss1 - rss0) / rotate,
        "cold": {"ok": n_cold, "per_cpu_s": n_cold / cpu_cold if cpu_cold else None, "per_s": n_cold / wall_cold},
        "rotating": {"ok": n_rot, "per_cpu_s": n_rot / cpu_rot if cpu_rot else None, "per_s": n_rot / wall_rot},
        "single": {"ok": n_one, "per_cpu_s": n_one / cpu_one if cpu_one else None, "per_s": n_one / wall_one},
        "rotating_vs_single": (n_rot / cpu_rot) / (n_one / cpu_one) if cpu_rot and cpu_one else None,
        "portico_log_tail": err.strip().splitlines()[-3:],
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--portico", default=os.path.join(HERE, "..", "build", "portico"))
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--rotate", type=int, default=10000)
    a = ap.parse_args()
    print(json.dumps(scenario7(a.portico, a.count, a.rotate), indent=1))
