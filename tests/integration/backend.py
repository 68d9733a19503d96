#!/usr/bin/python3
"""The sample backend for tests and the demo: a real HTTP/1.1 server process.

Endpoints:
  GET  /echo              JSON: method, path, headers, conn_id, conn_requests, backend
  POST|PUT /upload        reads the body (Content-Length or chunked), JSON {sha256, length}
  GET  /download?size=N&chunked=0|1   N bytes of a deterministic pattern
  GET  /slow?delay=S      answers after S seconds
  GET  /status/N          answers with status N
  GET  /ask?NAME=BODY&domain=NAME   an on-demand ask endpoint: 200 with BODY
                          (a JSON text) for a listed name, 200 empty otherwise
Every request is appended to --log (one line: METHOD PATH), so tests can
check that a rejected request never reached the backend.
"""
import argparse
import base64
import hashlib
import itertools
import json
import os
import random
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

BLOCK = random.Random(42).randbytes(65536)
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_frame(op, payload, mask=None):
    """One final WebSocket frame (RFC 6455 §5.2), masked when `mask` is given."""
    n = len(payload)
    head = bytes([0x80 | op])
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([bit | 127]) + n.to_bytes(8, "big")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + payload
    return head + payload
_conn_ids = itertools.count(1)
_log_lock = threading.Lock()


def pattern_bytes(size):
    """The download pattern: BLOCK repeated, cut to size."""
    full, rest = divmod(size, len(BLOCK))
    for _ in range(full):
        yield BLOCK
    if rest:
        yield BLOCK[:rest]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "px-test-backend"

    def setup(self):
        super().setup()
        # The head and body go out in separate writes; without this, Nagle
        # holds the body until portico's delayed ACK (40 ms per response).
        if self.connection.family in (socket.AF_INET, socket.AF_INET6):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn_id = next(_conn_ids)
        self.conn_requests = 0

    def log_message(self, fmt, *args):
        pass

    def record(self):
        self.conn_requests += 1
        if self.server.request_log:
            with _log_lock, open(self.server.request_log, "a") as f:
                f.write(f"{self.command} {self.path}\n")

    def send_json(self, obj, status=200):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", self.server.name)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self, sink):
        te = self.headers.get("Transfer-Encoding", "")
        if te.lower() == "chunked":
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    chunk = self.rfile.read(min(left, 65536))
                    if not chunk:
                        raise ConnectionError("short chunk")
                    sink(chunk)
                    left -= len(chunk)
                self.rfile.readline(16)
        else:
            left = int(self.headers.get("Content-Length", "0"))
            while left:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    raise ConnectionError("short body")
                sink(chunk)
                left -= len(chunk)

    def do_GET(self):
        self.record()
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        if url.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket_echo()
        if url.path == "/echo":
            self.read_body(lambda b: None)
            self.send_json({
                "method": self.command, "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "conn_id": self.conn_id, "conn_requests": self.conn_requests,
                "backend": self.server.name,
            })
        elif url.path == "/download":
            size = int(q.get("size", ["0"])[0])
            chunked = q.get("chunked", ["0"])[0] == "1"
            # eof=1: no framing, the body ends when the connection closes
            # (RFC 9112 §6.3, rule 8).
            eof = q.get("eof", ["0"])[0] == "1"
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("X-Backend", self.server.name)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
                if q.get("trailer", ["0"])[0] == "1":
                    self.send_header("Trailer", "X-Checksum")
            elif eof:
                self.send_header("Connection", "close")
                self.close_connection = True
            else:
                self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command == "HEAD":
                return
            for piece in pattern_bytes(size):
                if chunked:
                    self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                else:
                    self.wfile.write(piece)
            if chunked and q.get("trailer", ["0"])[0] == "1":
                h = hashlib.sha256()
                for piece in pattern_bytes(size):
                    h.update(piece)
                self.wfile.write(b"0\r\nX-Checksum: " + h.hexdigest().encode() + b"\r\n\r\n")
            elif chunked:
                self.wfile.write(b"0\r\n\r\n")
        elif url.path == "/slow":
            time.sleep(float(q.get("delay", ["1"])[0]))
            self.send_json({"slept": True})
        elif url.path == "/ask":
            body = q.get(q.get("domain", [""])[0], [""])[0].encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if body else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif url.path.startswith("/status/"):
            self.send_json({"status": int(url.path[8:])}, status=int(url.path[8:]))
        else:
            self.send_json({"error": "not found"}, status=404)

    def websocket_echo(self):
        """RFC 6455 echo: text/binary frames come back unmasked; a close frame
        is answered with a close frame and the connection ends."""
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        close_after = int(parse_qs(urlsplit(self.path).query).get("close_after", ["0"])[0])
        echoed = 0
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            op, ln = head[0] & 0x0F, head[1] & 0x7F
            if ln == 126:
                ln = int.from_bytes(self.rfile.read(2), "big")
            elif ln == 127:
                ln = int.from_bytes(self.rfile.read(8), "big")
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytearray(self.rfile.read(ln))
            for i in range(len(data)):
                data[i] ^= mask[i % 4]
            if op == 8:
                self.wfile.write(ws_frame(8, bytes(data[:2])))
                self.wfile.flush()
                return
            self.wfile.write(ws_frame(op, bytes(data)))
            self.wfile.flush()
            echoed += 1
            if close_after and echoed >= close_after:
                self.wfile.write(ws_frame(8, (1000).to_bytes(2, "big")))
                self.wfile.flush()
                return

    do_HEAD = do_GET
    do_DELETE = do_GET
    do_OPTIONS = do_GET

    def do_POST(self):
        if urlsplit(self.path).path != "/upload":
            return self.do_GET()
        self.record()
        h = hashlib.sha256()
        n = [0]

        def sink(b):
            h.update(b)
            n[0] += len(b)
        self.read_body(sink)
        self.send_json({"sha256": h.hexdigest(), "length": n[0]})

    do_PUT = do_POST
    do_PATCH = do_POST


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 1024

    def get_request(self):
        conn, _ = super().get_request()
        return conn, ("unix", 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--unix")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--name", default="backend")
    ap.add_argument("--log")
    args = ap.parse_args()
    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        srv = UnixServer(args.unix, Handler)
        where = args.unix
    else:
        ThreadingHTTPServer.daemon_threads = True
        # A proxy opens many connections at once: the default backlog of 5
        # would drop SYNs and stall them for seconds.
        ThreadingHTTPServer.request_queue_size = 1024
        srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
        srv.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        where = str(srv.server_address[1])
    srv.name = args.name
    srv.request_log = args.log
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(where)
    os.rename(tmp, args.ready_file)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
