"""The quick start without a config file: `portico --from NAME --to ADDR`
gets NAME a certificate from the CA (a real Pebble here, through --ca and
--ca-root), proxies HTTPS to the backend and redirects port 80."""
import os
import subprocess

import pytest

import harness
from harness import Backend, free_port, port_open, stop_process, wait_for
from pebble_env import Pebble


@pytest.fixture
def quick(tmp_path):
    tmp = str(tmp_path)
    https_port, http_port = free_port(), free_port()
    backend = Backend(tmp, "app")
    pebble = Pebble(tmp, https_port, http_port)
    root = os.path.join(tmp, "pebble-root.pem")
    with open(root, "w") as f:
        f.write(pebble.root_pem())
    log = open(os.path.join(tmp, "portico.err"), "wb")
    args = [harness.PORTICO, "--from", "app.test", "--to", backend.address, "--to", backend.address,
            "--ca", pebble.directory, "--ca-root", pebble.ca, "--storage", os.path.join(tmp, "state"),
            "--listen-https", f"127.0.0.1:{https_port}", "--listen-http", f"127.0.0.1:{http_port}"]
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    q = type("Quick", (), {})()
    q.proc, q.https_port, q.http_port, q.root, q.backend, q.tmp = proc, https_port, http_port, root, backend, tmp
    q.log = lambda: open(os.path.join(tmp, "portico.err"), errors="replace").read()
    try:
        wait_for(lambda: proc.poll() is not None or (port_open(https_port) and port_open(http_port)),
                 what="portico to listen")
        assert proc.poll() is None, q.log()
        yield q
        # The operator's stop: SIGTERM, a clean exit, nothing from a sanitizer.
        proc.terminate()
        assert proc.wait(30) == 0, q.log()
        assert not any(m in q.log() for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                              "runtime error:")), q.log()
    finally:
        stop_process(proc, timeout=30)
        log.close()
        pebble.stop()
        backend.stop()


def curl(q, url, *args):
    port = q.https_port if url.startswith("https") else q.http_port
    return subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", q.root, "--resolve",
                           f"app.test:{port}:127.0.0.1", *args, url.format(port=port)],
                          capture_output=True, timeout=30)


def test_from_to_serves_https_with_an_issued_certificate_and_redirects(quick):
    # Issuance takes a few seconds; until then the handshake has no certificate.
    r = wait_for(lambda: (lambda r: r if r.returncode == 0 else None)(
        curl(quick, "https://app.test:{port}/echo", "-w", "\n%{http_code}")), timeout=60,
        what="an answer over HTTPS with Pebble's certificate")
    assert r.stdout.endswith(b"\n200"), r.stdout
    assert b'"/echo"' in r.stdout, r.stdout  # the backend's own answer
    assert any("/echo" in line for line in quick.backend.requests())
    # The certificate in the storage directory given, where a restart finds it.
    assert os.path.isdir(os.path.join(quick.tmp, "state"))
    r = curl(quick, "http://app.test:{port}/x?y=1", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}")
    assert r.stdout.decode() == f"301 https://app.test:{quick.https_port}/x?y=1", r.stdout
    assert "quick start: certificates from https://127.0.0.1:" in quick.log()


def test_quick_start_errors_come_from_the_config_loader():
    r = subprocess.run([harness.PORTICO, "--from", "app.test", "--to", "127.0.0.1:99999", "--check"],
                       capture_output=True, timeout=30)
    assert r.returncode == 1
    assert b'sites[0].upstreams[0]: "127.0.0.1:99999" has no valid port' in r.stderr, r.stderr
    r = subprocess.run([harness.PORTICO, "--from", "*.app.test", "--to", "127.0.0.1:8080", "--check"],
                       capture_output=True, timeout=30)
    assert r.returncode == 1 and b"(tls: acme)" in r.stderr, r.stderr
    r = subprocess.run([harness.PORTICO, "--from", "app.test", "--check"], capture_output=True, timeout=30)
    assert r.returncode == 1 and b"needs --from NAME and at least one --to" in r.stderr
    r = subprocess.run([harness.PORTICO, "--from", "app.test", "--to", "127.0.0.1:8080", "--staging",
                        "--check"], capture_output=True, timeout=30)
    assert r.returncode == 0 and b"configuration ok" in r.stdout, r.stderr
