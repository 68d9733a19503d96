#!/usr/bin/python3
"""Two portico builds against each other on scenarios 1 (HTTPS/1.1
keep-alive) and 2 (HTTP/2 32x16), in one run against one backend: PAIRS
alternating pairs of h2load runs (A then B, then B then A, ...), so that the
VM's slow stretches fall on both. Prints each build's CPU seconds per 10k
requests (from /proc/PID/stat) per pair and the medians, and B's change
against A.

    bench/ab.py --a OLD/build/portico --b build/portico [--pairs 6] [--secs 3]

With --metrics, one build (--b, default build/portico) runs twice: A with
admin.metrics off, B with it on (scraped once after each of B's runs, as
Prometheus would), and B/A is the cost of counting on the request path.

    bench/ab.py --metrics [--b build/portico] [--pairs 6] [--secs 3]
"""
import argparse
import os
import statistics
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
import harness  # noqa: E402  (bench puts tests/integration on the path)


def start_portico(tmp, name, binary, cert, key, backend_port, metrics_port=None):
    port = harness.free_port()
    cfg = os.path.join(tmp, f"{name}.yaml")
    admin = f'admin: {{metrics: "127.0.0.1:{metrics_port}"}}\n' if metrics_port else ""
    with open(cfg, "w") as f:
        f.write(f"""listen: {{https: "127.0.0.1:{port}"}}
workers: 1
log: {{level: error, access: off}}
{admin}sites:
  - hosts: [bench.test]
    upstreams: ["127.0.0.1:{backend_port}"]
    tls: {{cert: {cert}, key: {key}}}
""")
    return bench.Server(name, [binary, "-c", cfg], port)


def scrape_requests(port):
    """The requests B's /metrics counted (the sum of portico_requests_total)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("portico_requests_total{"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", help="the build to compare against (before)")
    ap.add_argument("--b", help="the build under test (after)")
    ap.add_argument("--metrics", action="store_true",
                    help="one build (--b) with admin.metrics off (A) and on (B)")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--secs", type=int, default=3)
    args = ap.parse_args()
    if args.metrics:
        args.b = args.b or os.path.join(HERE, "..", "build", "portico")
        args.a = args.b
    elif not (args.a and args.b):
        ap.error("--a and --b are required (or --metrics)")
    metrics_port = harness.free_port() if args.metrics else None
    tmp = tempfile.mkdtemp(prefix="portico-ab-")
    os.chmod(tmp, 0o755)
    certs = harness.Certs(os.path.join(tmp, "certs"))
    cert, key = certs.leaf("bench.test", ["bench.test"])
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    with open(os.path.join(www, "small"), "w") as f:
        f.write("hello from the backend\n")
    b_port = harness.free_port()
    bcfg = os.path.join(tmp, "backend.conf")
    with open(bcfg, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {tmp}/backend.pid; error_log /dev/null crit;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 100000;
  server {{ listen 127.0.0.1:{b_port}; root {www}; }} }}
""")
    servers = []
    try:
        servers.append(bench.Server("backend", ["nginx", "-c", bcfg, "-p", tmp], b_port))
        a = start_portico(tmp, "A", args.a, cert, key, b_port)
        servers.append(a)
        b = start_portico(tmp, "B", args.b, cert, key, b_port, metrics_port)
        servers.append(b)
        for name, fn in (("1 https/1.1 keep-alive", bench.s1), ("2 http/2 32x16", bench.s2)):
            cpu = {"A": [], "B": []}
            for i in range(args.pairs):
                for srv in ((a, b) if i % 2 == 0 else (b, a)):
                    r = bench.measure(srv, lambda port: fn(port, secs=args.secs))
                    cpu[srv.name].append(r["cpu_per_10k"])
                    if metrics_port and srv is b:
                        scraped = scrape_requests(metrics_port)
                print(f"{name} pair {i + 1}: A {cpu['A'][-1]:.4f}  B {cpu['B'][-1]:.4f} CPU s/10k", flush=True)
            ma, mb = statistics.median(cpu["A"]), statistics.median(cpu["B"])
            print(f"{name}: median A {ma:.4f}, B {mb:.4f} CPU s/10k requests: B/A {mb / ma:.3f}", flush=True)
        if metrics_port:
            print(f"B's /metrics counted {scraped:.0f} requests", flush=True)
    finally:
        for s in reversed(servers):
            s.stop()


if __name__ == "__main__":
    main()
