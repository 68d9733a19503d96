"""SIGTERM: stop accepting, finish in-flight requests, exit 0."""
import json
import signal
import threading

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
