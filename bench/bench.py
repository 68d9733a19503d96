#!/usr/bin/python3
"""portico, nginx and HAProxy side by side: same machine, same backend, same
ECDSA P-256 certificate, one worker each, scenarios run in ABAB order over
several rounds. Prints a table of medians with portico's ratio to the better
peer and writes the same data as JSON under bench/results/.

Throughput is reported with the server's CPU seconds per 10,000 units (from
/proc/PID/stat before and after), since on a 2-core machine the load
generator is often the bottleneck and CPU per unit is the fair comparison.
Implemented scenarios: 1 (HTTPS/1.1 keep-alive), 2 (HTTP/2), 3 (new TLS 1.3
handshakes), 5 (1 MiB bulk over 1 and 64 connections), 6 (idle connections:
RSS per connection). Scenarios 4, 7 and 8 are listed in bench/README.md as
not yet implemented."""
import argparse
import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tool_version(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else "?"


class Server:
    def __init__(self, name, cmd, port, pidfile=None):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        harness.wait_for(lambda: harness.port_open(port), what=name)
        self.pid = self.proc.pid
        if pidfile:  # nginx/haproxy: measure the worker, not the master
            time.sleep(0.3)
            kids = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
            if kids:
                self.pid = int(kids[0])

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_servers(tmp, args, cert, key, backend_port):
    servers = {}
    # portico
    p_port = harness.free_port()
    cfg = os.path.join(tmp, "portico.yaml")
    with open(cfg, "w") as f:
        f.write(f"""listen: {{https: "127.0.0.1:{p_port}"}}
workers: 1
log: {{level: error, access: off}}
limits: {{max_connections: 20000}}
sites:
  - hosts: [bench.test]
    upstreams: ["127.0.0.1:{backend_port}"]
    tls: {{cert: {cert}, key: {key}}}
""")
    servers["portico"] = Server("portico", [args.portico, "-c", cfg], p_port)
    # nginx
    n_port = harness.free_port()
    ncfg = os.path.join(tmp, "nginx.conf")
    with open(ncfg, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log /dev/null crit;
events {{ worker_connections 20000; }}
http {{ access_log off;
  upstream be {{ server 127.0.0.1:{backend_port}; keepalive 32; }}
  server {{ listen 127.0.0.1:{n_port} ssl http2; server_name bench.test;
    ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3;
    location / {{ proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
    servers["nginx"] = Server("nginx", ["nginx", "-c", ncfg, "-p", tmp], n_port, pidfile=True)
    # HAProxy
    h_port = harness.free_port()
    pem = os.path.join(tmp, "haproxy.pem")
    with open(pem, "w") as f:
        f.write(open(cert).read() + open(key).read())
    hcfg = os.path.join(tmp, "haproxy.cfg")
    with open(hcfg, "w") as f:
        f.write(f"""global
  nbthread 1
  maxconn 9000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:{h_port} ssl crt {pem} alpn h2,http/1.1
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:{backend_port}
""")
    servers["haproxy"] = Server("haproxy", ["haproxy", "-f", hcfg, "-db"], h_port)
    return servers


def measure(server, fn):
    c0 = cpu_seconds(server.pid)
    try:
        units, extra = fn(server.port)
    except Exception as e:  # a tool that failed is a result too, not a crash
        print(f"  {server.name}: {fn.__name__ if hasattr(fn, '__name__') else fn}: {e}", file=sys.stderr)
        return {"units": 0, "cpu_s": None, "cpu_per_10k": None, "error": str(e)}
    cpu = cpu_seconds(server.pid) - c0
    return {"units": units, "cpu_s": cpu, "cpu_per_10k": cpu / units * 10000 if units else None, **extra}


def h2load(port, path, conns, secs=None, streams=1, h1=True, n=None):
    """h2load gives SNI from the URL's name and connects to loopback with
    --connect-to (wrk and s_time cannot send SNI for an IP address)."""
    cmd = ["h2load", f"-c{conns}", f"-m{streams}", f"--connect-to=127.0.0.1:{port}"]
    cmd += ["--h1"] if h1 else []
    cmd += [f"-D{secs}"] if secs else [f"-n{n}"]
    r = subprocess.run(cmd + [f"https://bench.test:{port}{path}"], capture_output=True, text=True)
    m = re.search(r"(\d+) succeeded, (\d+) failed", r.stdout)
    if m is None:
        raise RuntimeError("h2load: " + (r.stdout + r.stderr)[-300:])
    rps = re.search(r"finished in ([\d.]+)(ms|s), ([\d.]+) req/s", r.stdout)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", r.stdout)
    return int(m.group(1)), {"rps": float(rps.group(3)) if rps else None, "failed": int(m.group(2)),
                             "mean_latency": mean.group(1) if mean else None}


def s1(port):
    return h2load(port, "/small", 32, secs=5)


def s2(port):
    return h2load(port, "/small", 32, secs=5, streams=16, h1=False)


def s3(port):
    """Full TLS 1.3 handshakes: every h2load client is a new connection with
    one request, and h2load does not resume sessions."""
    total, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < 5:
        done, _ = h2load(port, "/small", 50, n=50)
        total += done
    return total, {"handshakes_per_s": total / (time.monotonic() - t0)}


def s5(conns):
    def run(port):
        return h2load(port, "/big", conns, secs=5)
    run.__name__ = f"s5x{conns}"
    return run


def s6(port, n=2000):
    """RSS per idle TLS connection after one request each."""
    ctx = ssl._create_unverified_context()
    socks = []
    pid = CURRENT["pid"]
    base = rss_kib(pid)
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="bench.test")
        s.sendall(b"GET /small HTTP/1.1\r\nHost: bench.test\r\n\r\n")
        s.recv(4096)
        socks.append(s)
    time.sleep(0.5)
    per_conn = (rss_kib(pid) - base) / n
    for s in socks:
        s.close()
    return n, {"rss_kib_per_conn": per_conn}


CURRENT = {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--portico", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", help="comma-separated scenario numbers, e.g. 1,6")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="portico-bench-")
    os.chmod(tmp, 0o755)  # nginx's workers (www-data) read the backend's files
    certs = harness.Certs(os.path.join(tmp, "certs"))
    cert, key = certs.leaf("bench.test", ["bench.test"])
    # The common backend: nginx serving a small body and 1 MiB from memory-backed files.
    www = os.path.join(tmp, "www")
    os.makedirs(www)
    with open(os.path.join(www, "small"), "w") as f:
        f.write("hello from the backend\n")
    with open(os.path.join(www, "big"), "wb") as f:
        f.write(os.urandom(1 << 20))
    b_port = harness.free_port()
    bcfg = os.path.join(tmp, "backend.conf")
    with open(bcfg, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {tmp}/backend.pid; error_log /dev/null crit;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 100000;
  server {{ listen 127.0.0.1:{b_port}; root {www}; }} }}
""")
    backend = Server("backend", ["nginx", "-c", bcfg, "-p", tmp], b_port)
    servers = start_servers(tmp, args, cert, key, b_port)
    scenarios = [("1 https/1.1 keep-alive small", s1), ("2 http/2 32x16", s2), ("3 new TLS 1.3 handshakes", s3),
                 ("5 bulk 1 MiB x1", s5(1)), ("5 bulk 1 MiB x64", s5(64)), ("6 idle connections", s6)]
    if args.only:
        wanted = set(args.only.split(","))
        scenarios = [(n, f) for n, f in scenarios if n.split()[0] in wanted]
    results = {name: {s: [] for s in servers} for name, _ in scenarios}
    order = ["portico", "nginx", "haproxy"]
    try:
        for rnd in range(args.rounds):
            seq = order if rnd % 2 == 0 else list(reversed(order))  # ABAB...
            for name, fn in scenarios:
                for s in seq:
                    CURRENT["pid"] = servers[s].pid
                    results[name][s].append(measure(servers[s], fn))
    finally:
        for s in servers.values():
            s.stop()
        backend.stop()
    meta = {"portico": tool_version([args.portico, "--version"]) + " (BoringSSL)",
            "nginx": tool_version(["nginx", "-V"]) + "; " + tool_version(["sh", "-c", "nginx -V 2>&1 | grep -i 'built with'"]),
            "haproxy": tool_version(["haproxy", "-v"]) + " (OpenSSL 3.0)",
            "bssl_speed": bssl_ceiling()}
    table = summarize(results)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", time.strftime("%Y%m%dT%H%M%S") + ".json")
    with open(out, "w") as f:
        json.dump({"meta": meta, "rounds": args.rounds, "results": results, "summary": table}, f, indent=1)
    print(json.dumps(meta, indent=1))
    print_table(table)
    print(f"\nraw data: {out}")


def metric(name):
    if name.startswith("6"):
        return "rss_kib_per_conn", False
    return "cpu_per_10k", False


def summarize(results):
    table = {}
    for name, by_server in results.items():
        key, _ = metric(name)
        row = {}
        for s, runs in by_server.items():
            vals = [r[key] for r in runs if r.get(key) is not None]
            thr = [r.get("rps") or r.get("handshakes_per_s") for r in runs if (r.get("rps") or r.get("handshakes_per_s"))]
            row[s] = {key: statistics.median(vals) if vals else None,
                      "throughput": statistics.median(thr) if thr else None}
        peers = [row[s][key] for s in ("nginx", "haproxy") if row[s][key]]
        best = min(peers) if peers else None
        mine = row["portico"][key]
        # Lower is better for CPU per unit and RSS per connection: ratio > 1 means portico leads.
        row["ratio_vs_best_peer"] = best / mine if best and mine else None
        table[name] = row
    return table


def print_table(table):
    print(f"\n{'scenario':32} {'metric':18} {'portico':>10} {'nginx':>10} {'haproxy':>10} {'ratio':>7}   throughput p/n/h")
    for name, row in table.items():
        key, _ = metric(name)
        fmt = lambda v: f"{v:10.2f}" if isinstance(v, (int, float)) else f"{'-':>10}"
        thr = "/".join(f"{row[s]['throughput']:.0f}" if row[s]["throughput"] else "-" for s in ("portico", "nginx", "haproxy"))
        ratio = row["ratio_vs_best_peer"]
        print(f"{name:32} {key:18} {fmt(row['portico'][key])} {fmt(row['nginx'][key])} {fmt(row['haproxy'][key])} "
              f"{(f'{ratio:7.2f}' if ratio else '      -')}   {thr}")


def bssl_ceiling():
    bssl = os.environ.get("PORTICO_BSSL") or os.path.expanduser("~/.cache/portico/boringssl-13.0.0+r24-2/bin/bssl")
    if not os.path.exists(bssl):
        return None
    out = subprocess.run([bssl, "speed", "-filter", "P-256", "-timeout", "1"], capture_output=True, text=True).stdout
    m = re.search(r"ECDSA P-256 signing operations in \d+us \(([\d.]+) ops/sec\)", out)
    return {"p256_sign_per_s": float(m.group(1)) if m else None,
            "handshake_ceiling_per_core": float(m.group(1)) if m else None}


if __name__ == "__main__":
    main()
