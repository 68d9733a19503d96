"""Passive health: an upstream that refuses is marked down and skipped;
idempotent requests are retried elsewhere; it is used again once back."""
import json
import os
import subprocess
import time

from harness import PYTHON, HERE, Backend, site, wait_for


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
        b.stop()
        # Every idempotent request still succeeds: refused connects go to "a".
        for _ in range(20):
            r = p.curl("/echo", "-w", "\n%{http_code}", name="a.test", check=False)
            assert r.stdout.endswith(b"\n200"), r.stdout[-200:]
            assert json.loads(r.stdout.rsplit(b"\n", 1)[0])["backend"] == "a"
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
