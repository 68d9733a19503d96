"""Portico behind a load balancer, and its logs: trusted_proxies and the
forwarding fields, the PROXY protocol (v1 and v2) on listeners, request ids,
log.format: json, and reopening the log files (SIGUSR1, ctl reopen)."""
import json
import os
import signal
import socket
import ssl
import struct
import subprocess

from harness import PORTICO, read_until_close, site, wait_for


def headers_of(resp_json):
    return {k.lower(): v for k, v in resp_json["headers"]}


FORGED = ["-H", "X-Forwarded-For: 6.6.6.6", "-H", "Forwarded: for=6.6.6.6",
          "-H", "X-Forwarded-Proto: gopher", "-H", "X-Forwarded-Host: evil.test"]


def test_untrusted_client_forwarding_fields_are_replaced(start_portico, certs, backend):
    # Only 127.0.0.2 is trusted; the client connects from 127.0.0.1.
    p = start_portico([site(["a.test"], backend, certs.a)], extra="trusted_proxies: [127.0.0.2/32]")
    for http2 in (False, True):
        h = headers_of(json.loads(p.curl("/echo", *FORGED, name="a.test", http2=http2).stdout))
        assert h["x-forwarded-for"] == "127.0.0.1", h
        assert h["forwarded"] == f'for=127.0.0.1;proto=https;host="a.test:{p.https_port}"', h
        assert h["x-forwarded-proto"] == "https", h
        assert h["x-forwarded-host"] == f"a.test:{p.https_port}", h


def test_trusted_proxy_forwarding_fields_are_kept_and_extended(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)],
                      extra='trusted_proxies: ["10.0.0.0/8", 127.0.0.0/8, "::1"]')
    for http2 in (False, True):
        h = headers_of(json.loads(p.curl("/echo", *FORGED, name="a.test", http2=http2).stdout))
        assert h["x-forwarded-for"] == "6.6.6.6, 127.0.0.1", h
        assert h["forwarded"] == \
            f'for=6.6.6.6, for=127.0.0.1;proto=https;host="a.test:{p.https_port}"', h
        assert h["x-forwarded-proto"] == "gopher", h
        assert h["x-forwarded-host"] == "evil.test", h


def test_trusted_proxies_config_errors_name_file_line_key(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text('listen: {http: "127.0.0.1:8080"}\n'
                   'trusted_proxies:\n  - 10.0.0.0/8\n  - 10.0.0.1/8\n  - "300.1.1.1"\n'
                   'timeouts: {proxy_header: "soon"}\n'
                   'log: {format: xml, request_id_header: "Content-Length"}\n'
                   'sites:\n  - hosts: [a.test]\n    upstreams: ["127.0.0.1:9"]\n')
    r = subprocess.run([PORTICO, "-c", str(cfg), "--check"], capture_output=True, text=True)
    assert r.returncode == 1
    assert f"{cfg}:4: trusted_proxies[1]: \"10.0.0.1/8\" has host bits set" in r.stderr, r.stderr
    assert f"{cfg}:5: trusted_proxies[2]: \"300.1.1.1\" is not" in r.stderr, r.stderr
    assert f"{cfg}:6: timeouts.proxy_header:" in r.stderr, r.stderr
    assert f"{cfg}:7: log.format: expected text or json" in r.stderr, r.stderr
    assert f"{cfg}:7: log.request_id_header:" in r.stderr, r.stderr
