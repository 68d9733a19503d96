"""A test-only HTTPS reverse proxy in front of Pebble: a SHIM, used only for
what Pebble 2.4 (Debian's package) cannot do.

Pebble 2.4 has no ARI (RFC 9773): its directory lists no `renewalInfo` and it
serves no renewal windows. It has no rate limits either, so it never answers
429 or 503 with Retry-After. This shim adds exactly those and forwards
everything else to the real Pebble unchanged:

- the directory gains `renewalInfo` (at the shim); every URL Pebble hands
  out already points at the shim, because the shim forwards the client's
  Host header and Pebble builds its URLs (and checks the JWS "url", RFC 8555
  §6.4) from the Host it is sent;
- GET renewalInfo/<certID> answers the window the test sets
  (set_window), with a Retry-After, and records each poll;
- newOrder requests are recorded with their payload, so a test can see
  whether `replaces` was sent (new_orders, replaces_sent); with
  reject_replaces the shim refuses an order carrying `replaces` once, as a
  CA that does not accept it would (409 alreadyReplaced);
- inject(resource, status, count, retry_after) answers the next `count`
  requests to a resource with a problem document (429 rateLimited or 503
  serverInternal) and Retry-After, then lets requests through again;
- `profiles` (a dict name -> description), when set, is served as the
  directory's meta.profiles (the ACME profiles extension, which Pebble 2.4
  predates);
- hold(resource) keeps requests to a resource (renewalInfo by default,
  or revokeCert, ...) waiting (a slow CA) until release(), counting them
  in `held`; Pebble always answers at once.

It serves TLS with Pebble's own listener certificate (SAN 127.0.0.1), so a
client that trusts Pebble (`ca_file: pebble.ca`) trusts the shim. It runs
in-process on a thread (python3 stdlib only), binds port 0 so the kernel
picks a free port, and is ready when its directory answers (polled).

    with AcmeShim(pebble) as shim:
        shim.directory            # give this to portico instead of pebble.directory
        shim.set_window(start, end)
        shim.inject("newOrder", 429, count=1, retry_after=120)
"""
import base64
import datetime
import http.server
import json
import os
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request

from harness import wait_for

RESOURCES = ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange")
# Headers the shim sets itself, or that do not survive a hop.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
BODY_MAX = 1 << 20


def rfc3339(t):
    """Seconds since the epoch as an RFC 3339 UTC date-time."""
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64url_json(s):
    return json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))


class AcmeShim:
    def __init__(self, pebble, ari_retry_after=21600):
        self.pebble = pebble
        self.upstream = f"https://127.0.0.1:{pebble.port}"
        self.upstream_ctx = ssl.create_default_context(cafile=pebble.ca)
        self.ari_retry_after = ari_retry_after
        self.lock = threading.Lock()
        self.windows = {}          # certID (or None for any) -> (start, end, explanationURL)
        self.injections = {}       # resource -> [status, count, retry_after]
        self.polls = []            # certIDs asked for, in order
        self.new_orders = []       # newOrder payloads, in order
        self.requests = []         # (method, path) of every request, in order
        self.reject_replaces = False
        self.gate = threading.Event()  # set: every request answers; clear: held
        self.gate.set()
        self.holding = set()           # resources whose requests wait at the gate
        self.held = 0                  # requests that waited at the gate
        self.profiles = None           # meta.profiles to advertise, or None
        self._paths = None         # resource name -> path, from Pebble's directory
        self.server = None
        self.thread = None

    # --- the test's API ---------------------------------------------------
    def start(self):
        shim = self

        class Handler(_Handler):
            pass
        Handler.shim = shim
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(self.pebble.dir, "pebble.pem"),
                            os.path.join(self.pebble.dir, "pebble.key"))
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.base = f"https://127.0.0.1:{self.port}"
        self.directory = f"{self.base}/dir"
        self.renewal_info = f"{self.base}/renewalInfo"
        self.thread = threading.Thread(target=self.server.serve_forever, name="acme-shim", daemon=True)
        self.thread.start()
        wait_for(self._answers, what="acme shim")
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=10)
            self.server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def acme_yaml(self, challenges=("tls-alpn-01",)):
        """Pebble's acme: section with the directory pointing at the shim."""
        return self.pebble.acme_yaml(challenges).replace(self.pebble.directory, self.directory)

    def set_window(self, start, end, explanation_url=None, cert_id=None):
        """The suggestedWindow served for `cert_id` (None: for every ID
        without its own), as seconds since the epoch."""
        with self.lock:
            self.windows[cert_id] = (start, end, explanation_url)

    def inject(self, resource, status, count=1, retry_after=60):
        """Answers the next `count` requests to `resource` (a directory
        name such as "newOrder", "directory", "renewalInfo", or a path
        prefix such as "/order/") with `status` (429 or 503) and a
        Retry-After of `retry_after` seconds (None: no header)."""
        with self.lock:
            self.injections[resource] = [status, count, retry_after]

    def hold(self, resource="renewalInfo"):
        """Keeps requests to `resource` (a directory name such as
        "renewalInfo" or "revokeCert") waiting until release()."""
        with self.lock:
            self.holding.add(resource)
        self.gate.clear()

    def release(self):
        with self.lock:
            self.holding.clear()
        self.gate.set()

    def clear(self, resource=None):
        """Stops injecting errors (for one resource, or all)."""
        with self.lock:
            if resource is None:
                self.injections.clear()
            else:
                self.injections.pop(resource, None)

    def replaces_sent(self):
        """The `replaces` value of each newOrder so far (None when absent)."""
        with self.lock:
            return [o.get("replaces") for o in self.new_orders]

    # --- internals --------------------------------------------------------
    def _answers(self):
        try:
            ctx = ssl.create_default_context(cafile=self.pebble.ca)
            with urllib.request.urlopen(self.directory, context=ctx, timeout=2) as r:
                return r.status == 200
        except (OSError, ssl.SSLError):
            return False

    def paths(self):
        """Pebble's resource paths, read once from its directory."""
        if self._paths is None:
            with urllib.request.urlopen(f"{self.upstream}/dir", context=self.upstream_ctx, timeout=10) as r:
                d = json.load(r)
            self._paths = {k: urllib.parse.urlsplit(v).path for k, v in d.items() if isinstance(v, str)}
            self._paths["directory"] = "/dir"
        return self._paths

    def resource_of(self, path):
        if path == "/dir":
            return "directory"
        if path.startswith("/renewalInfo"):
            return "renewalInfo"
        for name, p in self.paths().items():
            if p == path:
                return name
        return None

    def take_injection(self, path):
        """The (status, retry_after) to answer with, consuming one count."""
        name = self.resource_of(path)
        with self.lock:
            for key, inj in self.injections.items():
                if key == name or (key.startswith("/") and path.startswith(key)):
                    status, count, retry_after = inj
                    if count <= 1:
                        del self.injections[key]
                    else:
                        inj[1] = count - 1
                    return status, retry_after
        return None

    def fresh_nonce(self):
        req = urllib.request.Request(f"{self.upstream}{self.paths()['newNonce']}", method="HEAD")
        with urllib.request.urlopen(req, context=self.upstream_ctx, timeout=10) as r:
            return r.headers.get("Replay-Nonce")

    def window_for(self, cert_id):
        with self.lock:
            self.polls.append(cert_id)
            return self.windows.get(cert_id) or self.windows.get(None)


class _Handler(http.server.BaseHTTPRequestHandler):
    shim = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def handle_any(self):
        shim = self.shim
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        if length > BODY_MAX:
            self.reply(413, b"", {})
            return
        body = self.rfile.read(length) if length else b""
        with shim.lock:
            shim.requests.append((self.command, path))
        injected = shim.take_injection(path)
        if injected is not None:
            self.problem(injected[0], "rateLimited" if injected[0] == 429 else "serverInternal",
                         "injected by the test shim", injected[1])
            return
        resource = shim.resource_of(path)
        with shim.lock:
            hold = resource in shim.holding
            if hold:
                shim.held += 1
        if hold:
            shim.gate.wait(60)
        if path.startswith("/renewalInfo/") and self.command == "GET":
            self.renewal_info(path[len("/renewalInfo/"):])
            return
        if self.command == "POST" and path == shim.paths().get("newOrder"):
            payload = self.jws_payload(body)
            with shim.lock:
                shim.new_orders.append(payload)
                refuse = shim.reject_replaces and "replaces" in payload
                if refuse:
                    shim.reject_replaces = False
            if refuse:
                self.problem(409, "alreadyReplaced", "the shim refuses `replaces` once", None)
                return
        self.forward(path, body)

    def jws_payload(self, body):
        try:
            payload = json.loads(body)["payload"]
            return _b64url_json(payload) if payload else {}
        except (ValueError, KeyError, TypeError):
            return {}

    def renewal_info(self, cert_id):
        window = self.shim.window_for(cert_id)
        if window is None:
            self.problem(404, "malformed", "no renewal window set for this certificate", None)
            return
        start, end, url = window
        doc = {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}}
        if url:
            doc["explanationURL"] = url
        self.reply(200, json.dumps(doc).encode(), {"Content-Type": "application/json",
                                                   "Retry-After": str(self.shim.ari_retry_after)})

    def problem(self, status, kind, detail, retry_after):
        headers = {"Content-Type": "application/problem+json"}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        try:
            headers["Replay-Nonce"] = self.shim.fresh_nonce()
        except (OSError, ssl.SSLError):
            pass
        doc = {"type": f"urn:ietf:params:acme:error:{kind}", "detail": detail, "status": status}
        self.reply(status, json.dumps(doc).encode(), headers)

    def forward(self, path, body):
        shim = self.shim
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        # Pebble builds its URLs, and checks the JWS "url", from Host.
        headers["Host"] = f"127.0.0.1:{shim.port}"
        req = urllib.request.Request(f"{shim.upstream}{self.path}", data=body if self.command == "POST" else None,
                                     headers=headers, method=self.command)
        try:
            r = urllib.request.urlopen(req, context=shim.upstream_ctx, timeout=30)
        except urllib.error.HTTPError as e:
            r = e
        with r:
            data = r.read(BODY_MAX + 1)[:BODY_MAX]
            status = r.status if hasattr(r, "status") else r.code
            out = [(k, v) for k, v in r.headers.items() if k.lower() not in HOP_HEADERS]
        if path == "/dir" and status == 200:
            d = json.loads(data)
            d["renewalInfo"] = shim.renewal_info
            if shim.profiles is not None:
                d.setdefault("meta", {})["profiles"] = shim.profiles
            data = json.dumps(d).encode()
        # Anything Pebble names by its own address is rewritten to the shim's.
        data = data.replace(shim.upstream.encode(), shim.base.encode())
        out = [(k, v.replace(shim.upstream, shim.base)) for k, v in out]
        self.reply(status, data, out)

    def reply(self, status, data, headers):
        self.send_response(status)
        items = headers.items() if isinstance(headers, dict) else headers
        for k, v in items:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
