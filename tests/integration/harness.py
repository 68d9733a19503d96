"""Helpers for integration tests: free ports, certificates, the backend and
portico processes, and raw TLS clients. Everything runs on loopback and polls
for readiness with a deadline; nothing sleeps to wait."""
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PORTICO = os.environ.get("PORTICO_BIN", os.path.join(HERE, "..", "..", "build", "portico"))
SANITIZED = os.environ.get("PORTICO_SANITIZED") == "1"
PYTHON = "/usr/bin/python3"


_handed_out = set()
_rng = random.Random()  # seeded from os.urandom: other test processes draw differently


def _ephemeral_range():
    """The kernel's range for the local ports of outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port():
    """A port free now for TCP and UDP on 127.0.0.1, never one this process
    handed out before. It is drawn at random outside the kernel's ephemeral
    range: a port from bind(0) is an ephemeral one, and between our check
    and the server's bind an outgoing connection of another test (curl,
    Pebble, a proxied request) could take it as its local port ("address
    already in use", seen in CI)."""
    lo, hi = _ephemeral_range()
    first, last = (10000, lo - 1) if lo > 20000 else (hi + 1, 65535)
    while True:
        port = _rng.randint(first, last)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port


def wait_for(pred, timeout=10.0, what="condition", interval=0.02, context=None):
    """Polls `pred` until it returns a truthy value or the deadline passes.
    `context`, a callable, adds what it returns (a log) to the error."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            extra = f"\n{context()}" if context else ""
            raise TimeoutError(f"timed out waiting for {what}{extra}")
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=0.5):
            return True
    except OSError:
        return False


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class Certs:
    """A test CA and leaf certificates signed by it (EC P-256, openssl CLI)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca = os.path.join(directory, "ca.pem")
        self.ca_key = os.path.join(directory, "ca.key")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", self.ca_key, "-out", self.ca, "-subj", "/CN=portico test CA",
             "-days", "30"])

    def leaf(self, name, sans):
        """Writes NAME.pem/NAME.key for the SANs; returns (cert, key)."""
        base = os.path.join(self.dir, name.replace("*", "_wild"))
        key, csr, pem, ext = base + ".key", base + ".csr", base + ".pem", base + ".ext"
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", f"/CN={sans[0]}"])
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join(f"DNS:{s}" for s in sans) + "\n")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
             "-CAcreateserial", "-out", pem, "-days", "30", "-extfile", ext])
        return pem, key


class Backend:
    """tests/integration/backend.py as a separate process."""

    def __init__(self, tmp, name="backend", unix=False):
        self.ready = os.path.join(tmp, f"{name}.ready")
        self.log = os.path.join(tmp, f"{name}.requests")
        open(self.log, "w").close()
        args = [PYTHON, os.path.join(HERE, "backend.py"), "--ready-file", self.ready,
                "--name", name, "--log", self.log]
        self.unix_path = os.path.join(tmp, f"{name}.sock") if unix else None
        if unix:
            args += ["--unix", self.unix_path]
        self.proc = subprocess.Popen(args)
        wait_for(lambda: os.path.exists(self.ready) or self.proc.poll() is not None,
                 what=f"backend {name}")
        assert self.proc.poll() is None, "backend exited"
        with open(self.ready) as f:
            where = f.read()
        self.port = None if unix else int(where)
        self.address = f"unix:{self.unix_path}" if unix else f"127.0.0.1:{self.port}"

    def requests(self):
        with open(self.log) as f:
            return f.read().splitlines()

    def stop(self):
        stop_process(self.proc)


def stop_process(proc, timeout=5):
    """SIGTERM, then SIGKILL if `proc` has not exited within `timeout` s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def yaml_quote(v):
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


class Portico:
    """build/portico with a generated config, started and polled until its
    ports accept connections."""

    def __init__(self, tmp, sites, https=True, http=True, workers=2, extra="", start=True,
                 level="debug", ca=None, https_port=None, http_port=None, nofile=None,
                 host="127.0.0.1", storage=None, proxy_protocol=False, log_extra="",
                 error_file=False, env=None):
        # `host`: the loopback address to listen on (instances of a fleet
        # share the ports on 127.0.0.2, .3, ...); `storage`: a shared
        # directory or redis:// URL instead of TMP/storage.
        self.host = host
        self.nofile = nofile  # RLIMIT_NOFILE for the process, to test descriptor exhaustion
        self.env = env        # extra environment variables (faketime's, say)
        self.level = level
        self.tmp = tmp
        self.ca = ca
        self.https_port = (https_port or free_port()) if https else None
        self.http_port = (http_port or free_port()) if http else None
        self.access_log = os.path.join(tmp, "access.log")
        self.error_log = os.path.join(tmp, "portico.err")
        self.config = os.path.join(tmp, "portico.yaml")
        # `error_file`: the error log goes to this file (log.error) instead
        # of stderr; `log_extra`: more keys of the log: mapping.
        self.error_file = os.path.join(tmp, "error.log") if error_file else None
        lines = ["listen:"]
        if proxy_protocol:
            lines += ["  https_proxy_protocol: true", "  http_proxy_protocol: true"]
        if https:
            lines.append(f"  https: \"{host}:{self.https_port}\"")
        if http:
            lines.append(f"  http: \"{host}:{self.http_port}\"")
        lines += [f"workers: {workers}", f"storage: {yaml_quote(storage or os.path.join(tmp, 'storage'))}",
                  f"log: {{level: {level}, access: {yaml_quote(self.access_log)}"
                  + (f", error: {yaml_quote(self.error_file)}" if error_file else "")
                  + (f", {log_extra}" if log_extra else "") + "}"]
        if extra:
            lines.append(extra.rstrip("\n"))
        lines.append("sites:")
        for s in sites:
            lines.append(f"  - hosts: [{', '.join(yaml_quote(h) for h in s['hosts'])}]")
            lines.append(f"    upstreams: [{', '.join(yaml_quote(u) for u in s['upstreams'])}]")
            if "cert" in s:
                lines.append(f"    tls: {{cert: {yaml_quote(s['cert'])}, key: {yaml_quote(s['key'])}}}")
            elif "tls" in s:
                lines.append(f"    tls: {s['tls']}")
            for k in ("redirect_http", "hsts"):
                if k in s:
                    lines.append(f"    {k}: {s[k]}")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None
        if start:
            self.start()

    def start(self):
        self.err = open(self.error_log, "ab")
        limit = None
        if self.nofile:
            import resource
            limit = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        env = dict(os.environ, **self.env) if self.env else None
        # "ready" is logged once every worker has bound its listeners (one
        # open port only says that one worker has); at info level or below.
        readies = self.log_text().count(" ready: ") if self.level in ("debug", "info") else None
        self.proc = subprocess.Popen([PORTICO, "-c", self.config], stdout=self.err, stderr=self.err,
                                     preexec_fn=limit, env=env)
        ports = [p for p in (self.https_port, self.http_port) if p]

        def up():
            if not all(port_open(p, self.host) for p in ports):
                return False
            return readies is None or self.log_text().count(" ready: ") > readies
        try:
            wait_for(lambda: self.proc.poll() is not None or up(), what="portico to listen")
        except TimeoutError:
            self.kill()
            raise AssertionError("portico did not start:\n" + self.log_text())
        if self.proc.poll() is not None:
            raise AssertionError("portico exited at start:\n" + self.log_text())

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        with open(self.error_log, errors="replace") as f:
            text = f.read()
        for path in (self.error_file, self.error_file and self.error_file + ".1"):
            if path and os.path.exists(path):  # log.error takes stderr over
                with open(path, errors="replace") as f:
                    text += f.read()
        return text

    def access_log_text(self):
        if not os.path.exists(self.access_log):
            return ""
        with open(self.access_log, errors="replace") as f:
            return f.read()

    def rss_peak_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends `sig` and returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("portico did not exit in time:\n" + self.log_text())
        self.err.close()
        return self.proc.returncode

    def sanitizer_reports(self):
        """Lines where ASan, LSan, UBSan or TSan reported a problem in the log.
        A TSan report about a file descriptor number is left out: Debian's
        libuv closes descriptors with a raw syscall TSan never sees, so when
        another thread reuses the number TSan reports the two uses of the
        number, not of memory (tests/tsan.supp says more). Such a report
        either says its location is a file descriptor, or both of its
        accesses are descriptor calls (close, pipe2, accept4, ...) made
        straight from an interceptor. A TSan report that is kept is returned
        whole, so a failure shows its stacks."""
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                 "WARNING: ThreadSanitizer")
        found = []
        for block in self.log_text().split("==================\n"):
            if "WARNING: ThreadSanitizer" in block:
                if "Location is file descriptor" in block or _fd_number_race(block):
                    continue
                start = block.index("WARNING: ThreadSanitizer")
                found.append(block[start:start + 4000])
                continue
            found += [l for l in block.splitlines() if any(m in l for m in marks)]
        return found

    def finish(self, timeout=30):
        """Ends a test's portico the way an operator would (SIGTERM) and
        returns a list of problems: a non-zero exit, a sanitizer report."""
        if self.proc is None:
            return []
        problems = []
        try:
            code = self.stop(timeout=timeout)
        except AssertionError as e:
            return [str(e)]
        if code != 0:
            problems.append(f"portico exited with {code}")
        problems += self.sanitizer_reports()
        return problems

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def curl(self, url, *args, name=None, port=None, scheme="https", check=True, timeout=60, http2=False):
        """Runs curl against portico, resolving `name` to loopback, over
        HTTP/1.1 unless `http2`. Returns the CompletedProcess (stdout bytes)."""
        port = port or (self.https_port if scheme == "https" else self.http_port)
        trust = ["--cacert", self.ca] if self.ca else ["-k"]
        version = ["--http2"] if http2 else ["--http1.1"]
        cmd = ["curl", "-sS", "--max-time", str(timeout), *trust, *version,
               "--resolve", f"{name}:{port}:{self.host}", f"{scheme}://{name}:{port}{url}", *args]
        return subprocess.run(cmd, capture_output=True, check=check, timeout=timeout + 10)


def tls_connect(port, server_name, ca=None, alpn=("http/1.1",), timeout=10):
    """A raw TLS socket to portico (python's ssl), for byte-exact requests."""
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl._create_unverified_context()
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname=server_name)


def read_until_close(sock, timeout=10, limit=1 << 20):
    """Reads until EOF; returns (bytes, closed) where closed is False when
    the deadline passed with the connection still open."""
    sock.settimeout(0.2)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        except (ssl.SSLError, ConnectionResetError, OSError):
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def read_response(sock, timeout=10):
    """Reads one HTTP/1.1 response with Content-Length; returns (head, body)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response head: %r" % buf)
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head.decode("latin-1"), body


def client_hello(sni):
    """A TLS 1.2 ClientHello carrying `sni` (bytes) verbatim, so tests can
    send names that client libraries refuse to (NUL, 300 bytes, "../x")."""
    import struct
    ext = b""
    if sni is not None:
        entry = b"\x00" + struct.pack(">H", len(sni)) + sni
        body = struct.pack(">H", len(entry)) + entry
        ext += struct.pack(">HH", 0, len(body)) + body
    ext += struct.pack(">HHH", 0x000a, 4, 2) + b"\x00\x1d"          # supported_groups: x25519
    ext += struct.pack(">HH", 0x000b, 2) + b"\x01\x00"              # ec_point_formats
    algs = b"\x04\x03\x08\x04\x04\x01"
    ext += struct.pack(">HHH", 0x000d, len(algs) + 2, len(algs)) + algs
    suites = b"\xc0\x2b\xc0\x2f"
    hello = (b"\x03\x03" + os.urandom(32) + b"\x00" + struct.pack(">H", len(suites)) + suites +
             b"\x01\x00" + struct.pack(">H", len(ext)) + ext)
    hs = b"\x01" + struct.pack(">I", len(hello))[1:] + hello
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def tls_alert_for_sni(port, sni, timeout=20):
    """Sends a raw ClientHello and returns the fatal alert's description
    (112 = unrecognized_name), or None when the server answered otherwise."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(client_hello(sni))
        data = b""
        while len(data) < 7:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    if len(data) >= 7 and data[0] == 0x15:
        return data[6]
    return None


# Calls on a descriptor number that TSan intercepts (its fd bookkeeping).
_FD_CALLS = {"close", "pipe", "pipe2", "socket", "socketpair", "accept", "accept4", "open",
             "open64", "openat", "creat", "dup", "dup2", "dup3", "eventfd", "epoll_create",
             "epoll_create1", "epoll_ctl", "inotify_init", "inotify_init1", "fstat", "fstat64",
             "opendir", "closedir", "connect", "bind", "listen", "shutdown", "fcntl"}
# (Not read, write, recv or send: they also touch a buffer, which can race.)


def _fd_number_race(block):
    """True when both accesses of a TSan report are descriptor calls made
    from interceptors (frame #0 in the sanitizer runtime): the race is on a
    reused descriptor number, not on memory."""
    heads = [i for i, l in enumerate(block.splitlines())
             if l.strip().startswith(("Write of size", "Read of size", "Previous write",
                                      "Previous read", "Atomic"))]
    lines = block.splitlines()
    if len(heads) < 2:
        return False
    for i in heads:
        frame = lines[i + 1].split() if i + 1 < len(lines) else []
        # "#0 close ../../../../src/libsanitizer/... (libtsan.so.2+0x...)"
        if len(frame) < 3 or frame[1] not in _FD_CALLS or "libsanitizer" not in frame[2]:
            return False
    return True


def site(names, backend, cert=None, **kw):
    """A site for Portico(): hosts, one upstream (a Backend or an address),
    an optional (cert, key) pair, and any other keys (redirect_http, hsts)."""
    s = {"hosts": names, "upstreams": [backend if isinstance(backend, str) else backend.address]}
    if cert:
        s["cert"], s["key"] = cert
    s.update(kw)
    return s


if __name__ == "__main__":
    sys.exit("import this module from tests")


class RawBackend:
    """A backend on a raw socket, for faults that are the backend's: each
    accepted connection is handed to handle(conn) on its own thread and
    closed after it. .address is "127.0.0.1:PORT"; close() stops it."""

    def __init__(self, handle, threaded=False):
        import threading
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]

        def run(c):
            with c:
                try:
                    handle(c)
                except OSError:
                    pass

        def serve():
            while True:
                try:
                    c, _ = self.sock.accept()
                except OSError:
                    return
                if threaded:
                    threading.Thread(target=run, args=(c,), daemon=True).start()
                else:
                    run(c)
        threading.Thread(target=serve, daemon=True).start()

    def close(self):
        self.sock.close()


def read_head(c):
    """Reads from socket `c` up to the end of a head; returns all read."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
