"""Port 80: redirects, the reserved ACME path, unknown hosts; HSTS on
HTTPS only."""
import json

import pytest

from harness import site


def status_and_headers(r):
    text = r.stdout.decode("latin-1")
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return int(head[0].split()[1]), hdrs


@pytest.fixture
def proxy(start_portico, certs, backend):
    return start_portico([
        site(["a.test"], backend, certs.a, hsts="true"),
        site(["b.test"], backend, certs.b, redirect_http="false",
             hsts="{max_age: 100, include_subdomains: true, preload: false}"),
    ])


def test_get_is_redirected_with_301_and_port(proxy):
    r = proxy.curl("/x?y=1", "-i", name="a.test", scheme="http")
    status, h = status_and_headers(r)
    assert status == 301
    assert h["location"] == [f"https://a.test:{proxy.https_port}/x?y=1"]


def test_head_is_redirected_with_301(proxy):
    r = proxy.curl("/x?y=1", "-I", name="a.test", scheme="http")
    status, h = status_and_headers(r)
    assert status == 301
    assert h["location"] == [f"https://a.test:{proxy.https_port}/x?y=1"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_redirected_with_308(proxy, backend, method):
    r = proxy.curl("/form", "-i", "-X", method, "-d", "a=1", name="a.test", scheme="http")
    status, h = status_and_headers(r)
    assert status == 308
    assert h["location"] == [f"https://a.test:{proxy.https_port}/form"]
    assert backend.requests() == []


def test_acme_challenge_path_is_reserved(proxy):
    r = proxy.curl("/.well-known/acme-challenge/token123", "-i", name="a.test", scheme="http")
    status, h = status_and_headers(r)
    assert status == 404 and "location" not in h


def test_unknown_host_is_404_without_location(proxy, backend):
    r = proxy.curl("/x", "-i", "-H", "Host: unknown.test", name="a.test", scheme="http")
    status, h = status_and_headers(r)
    assert status == 404 and "location" not in h
    assert backend.requests() == []


@pytest.mark.parametrize("host", ["evil.example", "a.test@evil.example", "a.test/x", "a.test.evil.example"])
def test_unknown_or_malicious_host_never_redirects(proxy, host):
    r = proxy.curl("/", "-i", "-H", f"Host: {host}", name="a.test", scheme="http")
    status, h = status_and_headers(r)
    assert status in (400, 404)
    assert "location" not in h


def test_redirect_off_proxies_plain_http_without_hsts(proxy):
    r = proxy.curl("/echo", "-i", name="b.test", scheme="http")
    status, h = status_and_headers(r)
    assert status == 200
    assert h["x-backend"] == ["one"]
    assert "strict-transport-security" not in h


def test_hsts_default_and_custom_on_https(proxy):
    _, h = status_and_headers(proxy.curl("/echo", "-i", name="a.test"))
    assert h["strict-transport-security"] == ["max-age=5184000"]
    _, h = status_and_headers(proxy.curl("/echo", "-i", name="b.test"))
    assert h["strict-transport-security"] == ["max-age=100; includeSubDomains"]


def test_no_hsts_when_not_enabled(start_portico, certs, backend):
    p = start_portico([site(["a.test"], backend, certs.a)])
    _, h = status_and_headers(p.curl("/echo", "-i", name="a.test"))
    assert "strict-transport-security" not in h
    assert json.loads(p.curl("/echo", name="a.test").stdout)["backend"] == "one"
