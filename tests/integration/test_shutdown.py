"""SIGTERM: stop accepting, finish in-flight requests, exit 0."""
import json
import signal
import threading

import os

import harness
from harness import port_open, site, wait_for


def test_sigterm_lets_in_flight_request_finish(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)])
    result = {}

    def slow():
        result["r"] = p.curl("/slow?delay=2", "-i", name="a.test", check=False)
    t = threading.Thread(target=slow)
    t.start()
    wait_for(lambda: any("/slow" in line for line in backend.requests()), what="request in flight")
    p.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: not port_open(p.https_port), timeout=5, what="listener closed")
    t.join(30)
    code = p.proc.wait(30)
    r = result["r"]
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith("HTTP/1.1 200")
    assert json.loads(r.stdout.decode().split("\r\n\r\n", 1)[1]) == {"slept": True}
    assert code == 0, p.log_text()


def test_sigterm_sends_goaway_and_finishes_h2_stream(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)])
    result = {}

    def slow():
        result["r"] = p.curl("/slow?delay=2", "-w", "\n%{http_code} %{http_version}", name="a.test",
                             http2=True, check=False)
    t = threading.Thread(target=slow)
    t.start()
    wait_for(lambda: any("/slow" in line for line in backend.requests()), what="stream in flight")
    p.proc.send_signal(signal.SIGTERM)
    t.join(30)
    assert p.proc.wait(30) == 0, p.log_text()
    assert result["r"].stdout.decode().endswith("\n200 2"), result["r"]


def test_second_instance_on_the_same_addresses_refuses_to_start(start_portico, certs, backend):
    """SO_REUSEPORT would let a second portico bind the same addresses and
    take part of the traffic; it must exit non-zero naming the address."""
    import subprocess
    from harness import Portico
    first = start_portico([site(["a.test"], backend, certs.a)], workers=1)
    os.makedirs(first.tmp + "-second")
    second = Portico(first.tmp + "-second", [site(["a.test"], backend, certs.a)], workers=1, start=False,
                     https_port=first.https_port, http_port=first.http_port)
    r = subprocess.run([harness.PORTICO, "-c", second.config], capture_output=True, timeout=30)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert f"listen 127.0.0.1:{first.https_port}: another portico (pid {first.pid})" in err, err
    # The first one still serves, alone.
    assert first.curl("/echo", "-o", "/dev/null", "-w", "%{http_code}", name="a.test").stdout == b"200"


def test_sigterm_does_not_wait_for_a_silent_ca(start_portico, certs, backend):
    """A CA that accepts the connection and never answers: SIGTERM ends
    portico at once, not after the ACME request's 30 s timeout (the request
    is abandoned, and says so)."""
    import socket
    import time
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held = []

    def accept():
        try:
            while True:
                held.append(silent.accept()[0])
        except OSError:
            pass
    threading.Thread(target=accept, daemon=True).start()
    extra = (f"acme:\n  directory: \"https://127.0.0.1:{silent.getsockname()[1]}/dir\"\n"
             f"  accept_terms: true\n  email: ops@example.com\n")
    try:
        p = start_portico([site(["a.test"], backend, certs.a),
                           site(["late.test"], backend, tls="acme")], extra=extra)
        wait_for(lambda: held, what="the request for the CA's directory")
        started = time.monotonic()
        assert p.stop(timeout=25) == 0, p.log_text()
        took = time.monotonic() - started
    finally:
        silent.close()
        for c in held:
            c.close()
    assert took < 10, (took, p.log_text())  # the request's own timeout is 30 s
    assert "portico is stopping: the request to the ACME server at" in p.log_text(), p.log_text()
    assert p.sanitizer_reports() == []
