#!/usr/bin/python3
"""portico, nginx and HAProxy side by side: same machine, same backend, same
ECDSA P-256 certificate, one worker each, scenarios run in ABAB order over
several rounds. Prints a table of medians with portico's ratio to the better
peer and writes the same data as JSON under bench/results/.

Throughput is reported with the server's CPU seconds per 10,000 units (from
/proc/PID/stat before and after), since on a 2-core machine the load
generator is often the bottleneck and CPU per unit is the fair comparison.
Scenarios (bench/README.md): 1 HTTPS/1.1 keep-alive, 2 HTTP/2 32x16, 3 new
TLS 1.3 handshakes, 4 TLS 1.3 resumption across two workers, 5 1 MiB bulk
over 1 and 64 connections, 6 RSS per idle TLS connection, 7 100,000 cached
certificates (portico only: bench/manynames.py), 8 on-demand latency against
Pebble, portico vs Caddy (bench/ondemand.py), 9 first handshake for a new
name with 3 instances on a directory and on Redis against one instance, and
the cost of a cache miss (portico only: bench/fleet.py)."""
import argparse
import json
import os
import re
import resource
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
from procstat import cpu_seconds, rss_kib  # noqa: E402

# HAProxy needs two descriptors per connection and refuses to start when
# maxconn does not fit the hard limit (20,000 in some containers, where even
# root cannot raise it); scenario 6 scales down with it and says so.
FD_HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
HAPROXY_MAXCONN = max(1000, min(20000, (FD_HARD - 200) // 2))
IDLE_CONNS = min(10000, HAPROXY_MAXCONN - 500)
IDLE_H2_CONNS = 1000  # each makes 100 requests first: 100,000 in Python's h2


def tool_version(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    return (r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else "?"


class Server:
    def __init__(self, name, cmd, port, worker_procs=0):
        """worker_procs: nginx forks that many workers; their CPU is what
        counts (the master only waits). Others are one process."""
        self.name, self.port = name, port
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        harness.wait_for(lambda: harness.port_open(port), what=name)
        self.pids = [self.proc.pid]
        if worker_procs:
            def kids():
                out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
                return [int(k) for k in out.split()] if len(out.split()) >= worker_procs else None
            self.pids = harness.wait_for(kids, what=f"{name} workers")
        self.pid = self.pids[0]

    def cpu(self):
        return sum(cpu_seconds(p) for p in self.pids)

    def stop(self):
        harness.stop_process(self.proc, 10)


def start_servers(tmp, args, cert, key, backend_port, workers=1, into=None):
    """Starts the three servers into `into` (so a failure part-way leaves the
    ones already started there for the caller to stop)."""
    servers = into if into is not None else {}
    tmp = tempfile.mkdtemp(prefix=f"w{workers}-", dir=tmp)
    os.chmod(tmp, 0o755)
    # portico
    p_port, p_http = harness.free_port(), harness.free_port()
    cfg = os.path.join(tmp, "portico.yaml")
    # The plain-HTTP listener proxies too (redirect_http: false): it measures
    # what a connection costs without TLS (plain_connection_cost).
    with open(cfg, "w") as f:
        f.write(f"""listen: {{https: "127.0.0.1:{p_port}", http: "127.0.0.1:{p_http}"}}
workers: {workers}
log: {{level: error, access: off}}
limits: {{max_connections: 20000}}
sites:
  - hosts: [bench.test]
    upstreams: ["127.0.0.1:{backend_port}"]
    redirect_http: false
    tls: {{cert: {cert}, key: {key}}}
""")
    servers["portico"] = Server("portico", [args.portico, "-c", cfg], p_port)
    servers["portico"].http_port = p_http
    # nginx
    n_port = harness.free_port()
    ncfg = os.path.join(tmp, "nginx.conf")
    with open(ncfg, "w") as f:
        f.write(f"""worker_processes {workers}; daemon off; pid {tmp}/nginx.pid; error_log /dev/null crit;
events {{ worker_connections 20000; }}
http {{ access_log off; keepalive_requests 1000000;
  upstream be {{ server 127.0.0.1:{backend_port}; keepalive 32; }}
  server {{ listen 127.0.0.1:{n_port} ssl http2; server_name bench.test;
    ssl_certificate {cert}; ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3;
    location / {{ proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }} }} }}
""")
    servers["nginx"] = Server("nginx", ["nginx", "-c", ncfg, "-p", tmp], n_port, worker_procs=workers)
    # HAProxy
    h_port = harness.free_port()
    pem = os.path.join(tmp, "haproxy.pem")
    with open(pem, "w") as f:
        f.write(open(cert).read() + open(key).read())
    hcfg = os.path.join(tmp, "haproxy.cfg")
    with open(hcfg, "w") as f:
        f.write(f"""global
  nbthread {workers}
  maxconn {HAPROXY_MAXCONN}
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
    c0 = server.cpu()
    try:
        units, extra = fn(server.port)
    except Exception as e:  # a tool that failed is a result too, not a crash
        print(f"  {server.name}: {fn.__name__ if hasattr(fn, '__name__') else fn}: {e}", file=sys.stderr)
        return {"units": 0, "cpu_s": None, "cpu_per_10k": None, "error": str(e)}
    cpu = server.cpu() - c0
    extra.pop("latencies_us", None)
    return {"units": units, "cpu_s": cpu, "cpu_per_10k": cpu / units * 10000 if units else None, **extra}


# Scenarios 1-3 are measured in slices: each server gets SLICES turns of
# SLICE_S seconds, taken in rotation, and its figures add up over its turns.
# The VM's speed drifts by tens of percent over tens of seconds (other
# tenants); with 5 s per server in a row, one server could get a slow
# stretch the others missed. In rotation all three share it.
SLICES, SLICE_S = 5, 1


def measure_sliced(servers, fn):
    """{name: result} for `servers` (in order), each given SLICES turns of
    fn(port, SLICE_S); results add units and CPU, and merge latencies."""
    acc = {s.name: {"units": 0, "cpu_s": 0.0, "secs": 0.0, "failed": 0, "lat": [], "error": None}
           for s in servers}
    for i in range(SLICES):
        turn = servers[i % len(servers):] + servers[:i % len(servers)]
        for srv in turn:
            a = acc[srv.name]
            if a["error"]:
                continue
            c0, t0 = srv.cpu(), time.monotonic()
            try:
                units, extra = fn(srv.port, SLICE_S)
            except Exception as e:  # a tool that failed is a result too, not a crash
                print(f"  {srv.name}: {fn.__name__}: {e}", file=sys.stderr)
                a["error"] = str(e)
                continue
            a["cpu_s"] += srv.cpu() - c0
            a["secs"] += time.monotonic() - t0
            a["units"] += units
            a["failed"] += extra.get("failed") or 0
            a["lat"] += extra.get("latencies_us") or []
    out = {}
    for name, a in acc.items():
        if a["error"] or not a["units"]:
            out[name] = {"units": 0, "cpu_s": None, "cpu_per_10k": None, "error": a["error"] or "no units"}
            continue
        rate_key = "handshakes_per_s" if fn is s3 else "rps"
        out[name] = {"units": a["units"], "cpu_s": a["cpu_s"], "cpu_per_10k": a["cpu_s"] / a["units"] * 10000,
                     rate_key: a["units"] / a["secs"], "failed": a["failed"], "slices": SLICES,
                     **(latency_summary(a["lat"]) if a["lat"] else {})}
    return out


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q / 100))]


def latency_summary(us):
    return {"p50_ms": percentile(us, 50) / 1000 if us else None,
            "p99_ms": percentile(us, 99) / 1000 if us else None}


def h2load(port, path, conns, secs=None, streams=1, h1=True, n=None, latency=False, rps=None,
           host="bench.test"):
    """h2load gives SNI from the URL's name and connects to loopback with
    --connect-to (wrk and s_time cannot send SNI for an IP address). With
    latency, per-request times come from its --log-file (p50/p99 in ms).
    `rps`: a fixed rate per connection instead of as fast as it can."""
    cmd = ["h2load", f"-c{conns}", f"-m{streams}", f"--connect-to=127.0.0.1:{port}"]
    cmd += [f"--rps={rps}"] if rps else []
    cmd += ["--h1"] if h1 else []
    cmd += [f"-D{secs}"] if secs else [f"-n{n}"]
    logf = None
    if latency:
        fd, logf = tempfile.mkstemp(prefix="h2load-", suffix=".log")
        os.close(fd)
        cmd += [f"--log-file={logf}"]
    r = subprocess.run(cmd + [f"https://{host}:{port}{path}"], capture_output=True, text=True)
    lat = {}
    if logf:
        with open(logf) as f:
            us = [int(line.split("\t")[2]) for line in f if line.count("\t") >= 2]
        os.unlink(logf)
        lat = latency_summary(us)
        lat["latencies_us"] = us  # merged across slices by measure_sliced, then dropped
    m = re.search(r"(\d+) succeeded, (\d+) failed", r.stdout)
    if m is None:
        raise RuntimeError("h2load: " + (r.stdout + r.stderr)[-300:])
    rps = re.search(r"finished in ([\d.]+)(ms|s), ([\d.]+) req/s", r.stdout)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", r.stdout)
    return int(m.group(1)), {"rps": float(rps.group(3)) if rps else None, "failed": int(m.group(2)),
                             "mean_latency": mean.group(1) if mean else None, **lat}


def s1(port, secs=5):
    return h2load(port, "/small", 32, secs=secs, latency=True)


def s2(port, secs=5):
    return h2load(port, "/small", 32, secs=secs, streams=16, h1=False, latency=True)


def h2load_can_resume():
    """h2load offers a session only if it calls SSL_set_session; the symbol
    is absent from its dynamic imports when it cannot resume at all."""
    import shutil
    with open(shutil.which("h2load"), "rb") as f:
        return b"SSL_set_session" in f.read()


def new_connections(port, secs, scheme="https"):
    """New connections with one request each, for `secs` seconds (h2load
    -c50 -n50 in a loop); returns how many succeeded."""
    total, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < secs:
        r = subprocess.run(["h2load", "-c50", "-n50", "--h1", f"--connect-to=127.0.0.1:{port}",
                            f"{scheme}://bench.test:{port}/small"], capture_output=True, text=True)
        m = re.search(r"(\d+) succeeded", r.stdout)
        if m is None:
            raise RuntimeError("h2load: " + (r.stdout + r.stderr)[-300:])
        total += int(m.group(1))
    return total


def s3(port, secs=5):
    """Full TLS 1.3 handshakes: every h2load client is a new connection with
    one request. That no session is resumed is checked once per run
    (h2load_can_resume), since h2load does not report resumption."""
    t0 = time.monotonic()
    total = new_connections(port, secs)
    return total, {"handshakes_per_s": total / (time.monotonic() - t0)}


def resumption_client(port, n):
    """n connections in sequence, each offering the session (ticket) the
    previous one received, as a browser does; returns how many resumed.
    With two workers behind SO_REUSEPORT, about half of the connections
    land on the other worker than the one that issued the ticket."""
    ctx = ssl._create_unverified_context()
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    session, resumed = None, 0
    for _ in range(n + 1):
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="bench.test", session=session) as s:
                s.sendall(b"GET /small HTTP/1.1\r\nHost: bench.test\r\n\r\n")
                s.recv(4096)  # TLS 1.3 tickets arrive after the handshake
                if session is not None and s.session_reused:
                    resumed += 1
                session = s.session
    return resumed


def s4(port, n=1000):
    t0 = time.monotonic()
    resumed = resumption_client(port, n)
    return n, {"resumed_pct": 100.0 * resumed / n, "handshakes_per_s": n / (time.monotonic() - t0)}


def s5(conns):
    def run(port):
        return h2load(port, "/big", conns, secs=5)
    run.__name__ = f"s5x{conns}"
    return run


def rss_per_conn(pid, base, socks):
    """RSS growth of `pid` per connection in `socks` once it stops moving
    (the server finished its writes); the connections are closed after."""
    prev = [rss_kib(pid)]

    def settled():
        now = rss_kib(pid)
        same, prev[0] = now == prev[0], now
        return same
    try:
        harness.wait_for(settled, timeout=5, interval=0.2, what="steady RSS")
    except TimeoutError:
        pass
    per_conn = (rss_kib(pid) - base) / len(socks)
    for s in socks:
        s.close()
    return per_conn


def s6(port, n=IDLE_CONNS):
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
    return n, {"rss_kib_per_conn": rss_per_conn(pid, base, socks)}


def h2_connection_after_requests(port, nreq):
    """An HTTP/2 connection that has made `nreq` requests (sent together,
    read to the end) and is then left open and idle."""
    import h2.config
    import h2.connection
    import h2.events
    ctx = ssl._create_unverified_context()
    ctx.set_alpn_protocols(["h2"])
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="bench.test")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    for i in range(nreq):
        conn.send_headers(1 + 2 * i, [(":method", "GET"), (":scheme", "https"), (":authority", "bench.test"),
                                      (":path", "/small")], end_stream=True)
    s.sendall(conn.data_to_send())
    ended = 0
    while ended < nreq:
        data = s.recv(1 << 16)
        if not data:
            raise ConnectionError("closed")
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.StreamEnded):
                ended += 1
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        s.sendall(conn.data_to_send())
    return s


def s6h2(port, n=IDLE_H2_CONNS):
    """RSS per idle HTTP/2 connection after 100 requests each: what a server
    keeps per long-lived connection (closed-stream state, HPACK tables)."""
    pid = CURRENT["pid"]
    base = rss_kib(pid)
    socks = [h2_connection_after_requests(port, 100) for _ in range(n)]
    return n, {"rss_kib_per_conn": rss_per_conn(pid, base, socks)}


CURRENT = {}


def main():
    import signal
    # A SIGTERM (timeout, Ctrl-C in a wrapper) unwinds through the finally
    # blocks, so no server is left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
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
    # (name, function, workers): scenario 4 runs against a second set of
    # servers with two workers each, so tickets must cross workers. Scenario
    # 6 ("fresh") gets newly started servers every time: an allocator that
    # keeps freed memory would otherwise show no growth after the first round.
    scenarios = [("1 https/1.1 keep-alive small", s1, 1), ("2 http/2 32x16", s2, 1),
                 ("3 new TLS 1.3 handshakes", s3, 1), ("4 TLS 1.3 resumption, 2 workers", s4, 2),
                 ("5 bulk 1 MiB x1", s5(1), 1), ("5 bulk 1 MiB x64", s5(64), 1),
                 ("6 idle connections", s6, "fresh"), ("6 idle http/2 after 100 requests", s6h2, "fresh")]
    wanted = set(args.only.split(",")) if args.only else {"1", "2", "3", "4", "5", "6", "7", "8", "9"}
    scenarios = [sc for sc in scenarios if sc[0].split()[0] in wanted]
    sets = {}
    results = {name: {s: [] for s in ("portico", "nginx", "haproxy")} for name, _, _ in scenarios}
    order = ["portico", "nginx", "haproxy"]
    plain_us = None
    try:
        for w in sorted({w for _, _, w in scenarios if w != "fresh"}):
            sets[w] = {}
            start_servers(tmp, args, cert, key, b_port, workers=w, into=sets[w])
        for rnd in range(args.rounds):
            seq = order if rnd % 2 == 0 else list(reversed(order))  # ABAB...
            for name, fn, w in scenarios:
                if w == "fresh":
                    sets[w] = {}
                    start_servers(tmp, args, cert, key, b_port, workers=1, into=sets[w])
                if fn in (s1, s2, s3):
                    for s, r in measure_sliced([sets[w][s] for s in seq], fn).items():
                        results[name][s].append(r)
                    continue
                for s in seq:
                    CURRENT["pid"] = sets[w][s].pid
                    results[name][s].append(measure(sets[w][s], fn))
                if w == "fresh":
                    for srv in sets.pop(w).values():
                        srv.stop()
        plain_us = plain_connection_cost(sets[1]["portico"]) if "3" in wanted and 1 in sets else None
    finally:
        for servers in sets.values():
            for s in servers.values():
                s.stop()
        backend.stop()
    extra = {}
    if "7" in wanted:
        import manynames
        extra["7 many names (portico only)"] = [manynames.scenario7(args.portico) for _ in range(args.rounds)]
    if "8" in wanted:
        import ondemand
        extra["8 on-demand vs Caddy"] = ondemand.scenario8(args.portico)
    if "9" in wanted:
        import fleet
        extra["9 fleet (portico only)"] = fleet.scenario9(args.portico)
    meta = {"portico": tool_version([args.portico, "--version"]) + " (BoringSSL)",
            "nginx": tool_version(["nginx", "-V"]) + "; " + tool_version(["sh", "-c", "nginx -V 2>&1 | grep -i 'built with'"]),
            "haproxy": tool_version(["haproxy", "-v"]) + "; " + tool_version(["sh", "-c", "haproxy -vv 2>&1 | grep -i 'running on OpenSSL version'"]),
            "h2load": tool_version(["h2load", "--version"]), "h2load_can_resume": h2load_can_resume(),
            "machine": f"{os.cpu_count()} CPUs, descriptor hard limit {FD_HARD}",
            "idle_connections_s6": IDLE_CONNS,
            "bssl_speed": bssl_ceiling()}
    if "3" in wanted:
        floor = library_floor(args.portico, cert, key)
        if floor and floor.get("per_cpu_s") and plain_us:
            # Library alone plus a connection without TLS: no server on this
            # library and kernel does a full handshake cheaper than that.
            floor["plain_connection_us"] = plain_us
            floor["with_connection_per_cpu_s"] = 1 / (1 / floor["per_cpu_s"] + plain_us / 1e6)
        meta["tls_library_floor"] = floor
    table = summarize(results)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", time.strftime("%Y%m%dT%H%M%S") + ".json")
    with open(out, "w") as f:
        json.dump({"meta": meta, "rounds": args.rounds, "results": results, "summary": table, "extra": extra},
                  f, indent=1)
    print(json.dumps(meta, indent=1))
    if table:
        print_table(table, (meta["bssl_speed"] or {}).get("handshake_ceiling_per_core"), meta.get("tls_library_floor"))
    print_extra(extra)
    print(f"\nraw data: {out}")


def metric(name):
    if name.startswith("6"):
        return "rss_kib_per_conn", False
    return "cpu_per_10k", False


def med(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(results):
    table = {}
    for name, by_server in results.items():
        key, _ = metric(name)
        row = {}
        for s, runs in by_server.items():
            vals = [r[key] for r in runs if r.get(key) is not None]
            thr = [r.get("rps") or r.get("handshakes_per_s") for r in runs if (r.get("rps") or r.get("handshakes_per_s"))]
            row[s] = {key: statistics.median(vals) if vals else None,
                      "throughput": statistics.median(thr) if thr else None,
                      "p99_ms": med(runs, "p99_ms"), "resumed_pct": med(runs, "resumed_pct"),
                      "failed": sum(r.get("failed") or 0 for r in runs)}
        peers = [row[s][key] for s in ("nginx", "haproxy") if row[s][key]]
        best = min(peers) if peers else None
        mine = row["portico"][key]
        # Lower is better for CPU per unit and RSS per connection: ratio > 1 means portico leads.
        row["ratio_vs_best_peer"] = best / mine if best and mine else None
        table[name] = row
    return table


def print_table(table, ceiling=None, floor=None):
    print(f"\n{'scenario':34} {'metric':16} {'portico':>9} {'nginx':>9} {'haproxy':>9} {'ratio':>6}  "
          f"{'throughput p/n/h':22} {'p99 ms p/n/h':18} other")
    for name, row in table.items():
        key, _ = metric(name)
        fmt = lambda v: f"{v:9.2f}" if isinstance(v, (int, float)) else f"{'-':>9}"
        peers = ("portico", "nginx", "haproxy")
        thr = "/".join(f"{row[s]['throughput']:.0f}" if row[s]["throughput"] else "-" for s in peers)
        p99 = "/".join(f"{row[s]['p99_ms']:.1f}" if row[s]["p99_ms"] else "-" for s in peers)
        other = ""
        if name.startswith("4"):
            other = "resumed % " + "/".join(f"{row[s]['resumed_pct']:.1f}" if row[s]["resumed_pct"] is not None
                                            else "-" for s in peers)
        if name.startswith("3") and ceiling and row["portico"][key]:
            per_cpu_s = 10000 / row["portico"][key]
            other = f"portico {per_cpu_s:.0f} handshakes/CPU-s = {100 * per_cpu_s / ceiling:.0f}% of the crypto ceiling"
            if floor and floor.get("per_cpu_s"):
                other += (f"; the TLS library alone (hsfloor, no sockets) {floor['per_cpu_s']:.0f} = "
                          f"{100 * floor['per_cpu_s'] / ceiling:.0f}% of it")
            if floor and floor.get("with_connection_per_cpu_s"):
                other += (f"; plus a plain connection ({floor['plain_connection_us']:.0f} us) "
                          f"{floor['with_connection_per_cpu_s']:.0f} = "
                          f"{100 * floor['with_connection_per_cpu_s'] / ceiling:.0f}%")
        failed = sum(row[s]["failed"] for s in peers)
        if failed:
            other += f" failed requests p/n/h: " + "/".join(str(row[s]["failed"]) for s in peers)
        ratio = row["ratio_vs_best_peer"]
        print(f"{name:34} {key:16} {fmt(row['portico'][key])} {fmt(row['nginx'][key])} {fmt(row['haproxy'][key])} "
              f"{(f'{ratio:6.2f}' if ratio else '     -')}  {thr:22} {p99:18} {other}")


def print_extra(extra):
    s7 = extra.get("7 many names (portico only)")
    if s7:
        m = lambda path: statistics.median(r[path[0]] if len(path) == 1 else r[path[0]][path[1]] for r in s7)
        print(f"\n7 many names ({s7[0]['certificates_on_disk']} cached, rotating over {s7[0]['rotating_names']}), "
              f"medians of {len(s7)}:")
        print(f"  start-up {m(['startup_s']):.3f} s, RSS at start {m(['rss_at_start_kib']) / 1024:.1f} MiB, "
              f"{m(['rss_kib_per_cert']):.2f} KiB per certificate in memory")
        print(f"  handshakes per CPU-s: one name {m(['single', 'per_cpu_s']):.0f}, rotating "
              f"{m(['rotating', 'per_cpu_s']):.0f} (x{m(['rotating_vs_single']):.2f}), first touch from disk "
              f"{m(['cold', 'per_cpu_s']):.0f}")
    s8 = extra.get("8 on-demand vs Caddy")
    if s8:
        print("\n8 on-demand first handshake against Pebble (20 names one by one; 20 at once):")
        for who in ("portico", "caddy"):
            r = s8.get(who) or {}
            if "error" in r:
                print(f"  {who:8} error: {r['error']}")
                continue
            print(f"  {who:8} p50 {r.get('p50_ms')} ms, p95 {r.get('p95_ms')} ms, ok {r.get('ok')}/"
                  f"{(r.get('ok') or 0) + (r.get('failed') or 0)}; concurrent ok {r.get('concurrent_ok')}/"
                  f"{(r.get('concurrent_ok') or 0) + (r.get('concurrent_failed') or 0)}, p50 {r.get('concurrent_p50_ms')} ms")
        if s8.get("ratio_p50"):
            print(f"  Caddy p50 / portico p50 = {s8['ratio_p50']:.2f} ({s8.get('caddy_version')})")
    if extra.get("9 fleet (portico only)"):
        import fleet
        fleet.print_result(extra["9 fleet (portico only)"])


def plain_connection_cost(server, secs=3):
    """CPU microseconds per new plain-HTTP connection with one proxied
    request (scenario 3 without TLS): accept, parse, the upstream round trip,
    the response, close. With library_floor it bounds scenario 3 from below."""
    c0 = server.cpu()
    try:
        total = new_connections(server.http_port, secs, scheme="http")
    except RuntimeError:
        return None
    return (server.cpu() - c0) / total * 1e6 if total else None


def library_floor(portico, cert, key):
    """Full TLS 1.3 handshakes per server CPU-second of BoringSSL alone, in
    memory (bench/hsfloor.c, built next to portico): what no server on this
    library can beat, before sockets, the kernel and HTTP add their part."""
    tool = os.path.join(os.path.dirname(os.path.abspath(portico)), "hsfloor")
    if not os.path.exists(tool):
        return None
    r = subprocess.run([tool, cert, key, "3"], capture_output=True, text=True)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"error": (r.stdout + r.stderr)[-300:]}


def bssl_ceiling():
    """bssl speed: P-256 signing, X25519 and AES-128-GCM, and the full TLS 1.3
    handshake ceiling per core they imply for the server (one ECDSA signature,
    one X25519 key generation, one X25519 shared secret)."""
    bssl = os.environ.get("PORTICO_BSSL") or os.path.expanduser("~/.cache/portico/boringssl-13.0.0+r24-2/bin/bssl")
    if not os.path.exists(bssl):
        return None

    def rate(flt, pattern):
        out = subprocess.run([bssl, "speed", "-filter", flt, "-timeout", "1"], capture_output=True, text=True).stdout
        m = re.search(pattern + r" operations in \d+us \(([\d.]+) ops/sec\)(?:: ([\d.]+) MB/s)?", out)
        return (float(m.group(1)), float(m.group(2)) if m.group(2) else None) if m else (None, None)
    sign, _ = rate("ECDSA P-256", r"ECDSA P-256 signing")
    base, _ = rate("Curve25519", r"Curve25519 base-point multiplication")
    arb, _ = rate("Curve25519", r"Curve25519 arbitrary point multiplication")
    _, gcm = rate("AES-128-GCM", r"AES-128-GCM \(16384 bytes\) seal")
    ceiling = 1 / (1 / sign + 1 / base + 1 / arb) if sign and base and arb else None
    return {"p256_sign_per_s": sign, "x25519_keygen_per_s": base, "x25519_shared_per_s": arb,
            "aes128gcm_16k_MB_per_s": gcm, "handshake_ceiling_per_core": ceiling}


if __name__ == "__main__":
    main()
