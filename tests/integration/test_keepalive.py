"""Keep-alive as a real client sees it: curl fetching several URLs in one run
uses one connection, and the per-worker upstream pool serves every request,
from both client connections, over one upstream connection (workers: 1 makes
the pool deterministic). Checked for an HTTP/1.1 and an HTTP/2 front."""
import json

import pytest

from harness import site, wait_for

RUNS, PER_RUN = 2, 3


@pytest.mark.parametrize("version", [
    "1.1",
    # HTTP/2 once ended each stream with its upstream connection closed: the
    # stream closed inside response_end and took the exchange with it.
    "2",
])
def test_curl_reuses_client_and_upstream_connections(start_portico, certs, backend, version):
    p = start_portico([site(["a.test"], backend, certs.a)], workers=1)
    seen = []
    for _ in range(RUNS):
        urls = [f"https://a.test:{p.https_port}/echo"] * (PER_RUN - 1)
        r = p.curl("/echo", *urls, "-w", "\n%{http_code} %{http_version} %{num_connects}\n",
                   name="a.test", http2=(version == "2"))
        lines = r.stdout.decode().splitlines()
        bodies = [json.loads(line) for line in lines if line.startswith("{")]
        stats = [line.split() for line in lines if line and not line.startswith("{")]
        assert [s[:2] for s in stats] == [["200", version]] * PER_RUN, r.stdout
        # curl opened one connection and sent the other requests over it.
        assert [int(s[2]) for s in stats] == [1] + [0] * (PER_RUN - 1), stats
        seen += bodies
    assert len(seen) == RUNS * PER_RUN
    upstream = [(b["conn_id"], b["conn_requests"]) for b in seen]
    # One pooled upstream connection served all requests, in order.
    assert upstream == [(seen[0]["conn_id"], n) for n in range(1, RUNS * PER_RUN + 1)], upstream
    assert len(backend.requests()) == RUNS * PER_RUN
    # Each request is logged once, with the status the client got (an HTTP/2
    # stream that closed during the response once logged as 499).
    def echo_lines():
        lines = [l for l in p.access_log_text().splitlines() if "/echo" in l]
        return lines if len(lines) >= RUNS * PER_RUN else None
    log = wait_for(echo_lines, what="access log lines")
    assert len(log) == RUNS * PER_RUN and all("status=200" in l for l in log), log
