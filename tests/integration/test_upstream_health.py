"""Passive health: an upstream that refuses is marked down and skipped;
idempotent requests are retried elsewhere; it is used again once back."""
import json
import os
import subprocess
import threading
import time

from harness import PYTHON, HERE, Backend, free_port, read_head, read_until_close, site, tls_connect, wait_for


def restart_on_port(tmp, name, port):
    ready = os.path.join(tmp, f"{name}.ready2")
    proc = subprocess.Popen([PYTHON, os.path.join(HERE, "backend.py"), "--port", str(port),
                             "--ready-file", ready, "--name", name])
    wait_for(lambda: os.path.exists(ready), what="backend back up")
    return proc


def test_killed_upstream_is_skipped_and_used_again(start_portico, certs, tmp_path):
    a = Backend(str(tmp_path), "a")
    b = Backend(str(tmp_path), "b")
    back = None
    try:
        s = site(["a.test"], a, certs.a)
        s["upstreams"] = [a.address, b.address]
        p = start_portico([s], workers=1)
        seen = {json.loads(p.curl("/echo", name="a.test").stdout)["backend"] for _ in range(4)}
        assert seen == {"a", "b"}  # round robin over both
        # Load from 4 clients while "b" is killed: only requests in flight at
        # that moment may fail; everything else is retried or sent to "a".
        stop, codes = threading.Event(), []

        def load():
            while not stop.is_set():
                r = p.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", name="a.test", check=False)
                codes.append(r.stdout)
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        wait_for(lambda: len(codes) >= 20, what="load running")
        b.stop()
        done_at_kill = len(codes)
        wait_for(lambda: len(codes) >= done_at_kill + 40, timeout=30, what="load after the kill")
        stop.set()
        for t in threads:
            t.join()
        assert len([c for c in codes if c != b"200"]) <= 4, codes
        for _ in range(5):
            r = p.curl("/echo", name="a.test")
            assert json.loads(r.stdout)["backend"] == "a"
        assert "marked down" in p.log_text()
        back = restart_on_port(str(tmp_path), "b", b.port)
        # Once its backoff expires, "b" serves again.
        wait_for(lambda: json.loads(p.curl("/echo", name="a.test").stdout)["backend"] == "b",
                 timeout=40, interval=0.2, what="upstream b used again")
    finally:
        a.stop()
        if back:
            back.terminate()
            back.wait()


def test_all_upstreams_down_is_a_quick_502(start_portico, certs, tmp_path):
    a = Backend(str(tmp_path), "a")
    s = site(["a.test"], a, certs.a)
    p = start_portico([s], workers=1)
    a.stop()
    assert p.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", name="a.test", check=False).stdout == b"502"
    t0 = time.monotonic()
    assert p.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", name="a.test", check=False).stdout == b"502"
    assert time.monotonic() - t0 < 1.0


def test_post_is_never_replayed(start_portico, certs, tmp_path):
    """A POST whose upstream dies after receiving it is answered 502, not sent twice."""
    a = Backend(str(tmp_path), "a")
    b = Backend(str(tmp_path), "b")
    try:
        s = site(["a.test"], a, certs.a)
        s["upstreams"] = [a.address, b.address]
        p = start_portico([s], workers=1, extra="timeouts: {upstream_read: 1s}")
        r = p.curl("/slow?delay=3", "-X", "POST", "-d", "x=1", "-o", "/dev/null", "-w", "%{http_code}",
                   name="a.test", check=False)
        assert r.stdout == b"504"
        posts = [l for l in a.requests() + b.requests() if l.startswith("POST /slow")]
        assert len(posts) == 1
    finally:
        a.stop()
        b.stop()


def test_only_upstream_is_never_marked_down(start_portico, certs):
    """A site with one upstream keeps trying it after a refused connect (as
    nginx does): marking it down answered every request 502 for a second."""
    import socket
    port = free_port()
    p = start_portico([site(["a.test"], f"127.0.0.1:{port}", certs.a)], workers=1)
    r = p.curl("/x", "-o", "/dev/null", "-w", "%{http_code}", name="a.test")
    assert r.stdout == b"502"
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(8)

    def answer():
        c, _ = srv.accept()
        with c:
            read_head(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    t = threading.Thread(target=answer, daemon=True)
    t.start()
    try:
        r = p.curl("/x", "-o", "/dev/null", "-w", "%{http_code}", name="a.test")
        assert r.stdout == b"200"
        assert "marked down" not in p.log_text()
    finally:
        srv.close()


def test_descriptor_exhaustion_is_logged_at_warn(start_portico, certs, backend):
    """Upstream connects that fail for want of descriptors (EMFILE) leave a
    warn line, so the 502s they cause are explained in the log."""
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1, level="warn", nofile=40)
    held = []
    try:
        # Fill the descriptor table with client connections that send nothing.
        for _ in range(60):
            try:
                held.append(tls_connect(p.https_port, "a.test", timeout=2))
            except OSError:
                break
        s = held.pop(0)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        data, _ = read_until_close(s)
        assert data.startswith(b"HTTP/1.1 502"), data[:60]
        wait_for(lambda: "too many open files" in p.log_text().lower(), what="the EMFILE warning")
        assert " warn " in [l for l in p.log_text().splitlines() if "EMFILE" in l][0]
    finally:
        for s in held:
            s.close()
