"""portico ctl, the client side: output formatting, requests and errors.

These tests put a small fake admin server on a Unix socket in a temporary
directory, to check exactly what the client sends and how it prints
answers a real portico gives only in rare states (control characters from
a CA, many columns). It speaks the same protocol (one JSON request line,
one JSON response line, close). The real server (acme/life/admin.c, with
its operations in acme/life/control.c) is tested end to end against a
running portico and Pebble in test_ctl_events.py.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading

import pytest

from harness import PORTICO

JOBS = [
    {"names": ["example.com", "www.example.com"], "not_after": "2026-12-30T10:00:00Z",
     "next_run": "2026-12-10T04:17:33Z", "next_reason": "1/3 of lifetime left",
     "state": "valid", "failures": 0},
    {"names": ["shop.example.net"], "not_after": "2026-12-01T00:00:00Z",
     "next_run": "2026-11-30T21:00:00Z", "next_reason": "backoff", "state": "failing",
     "failures": 3, "last_error": "urn:ietf:params:acme:error:rateLimited: too many\nnew orders"},
]
JOB = dict(JOBS[1], events=[
    {"time": "2026-11-30T18:00:00Z", "event": "failed", "detail": "rateLimited"},
    {"time": "2026-11-30T19:40:00Z", "event": "failed", "detail": "rateLimited"},
], profile="shortlived")


class FakeAdmin:
    """A fake admin server: answers by command, records each request."""

    def __init__(self, path):
        self.path = path
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def answer(self, req):
        name = req.get("name")
        if req.get("cmd") == "status":
            return JOBS
        if name not in (None, "example.com", "shop.example.net"):
            return {"error": f"unknown name {name}"}
        if req.get("cmd") == "show":
            return JOB
        if req.get("cmd") == "revoke" and name == "shop.example.net":
            # What portico answers when its wait for the CA passed.
            return {"error": "revoke shop.example.net: still in progress after 45 s; see "
                             "`portico ctl show shop.example.net`", "pending": True}
        if req.get("cmd") == "revoke":
            return {"ok": True, "serial": "FA8E2C1B", "reason": req.get("reason", "unspecified"),
                    "replacement": True}
        return {"ok": True}

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                req = json.loads(data)
                self.requests.append(req)
                conn.sendall(json.dumps(self.answer(req)).encode() + b"\n")

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture
def sockdir():
    # Unix socket paths are limited to 108 bytes: keep the directory short.
    d = tempfile.mkdtemp(prefix="px-ctl-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def admin(sockdir):
    server = FakeAdmin(os.path.join(sockdir, "admin.sock"))
    yield server
    server.close()


def ctl(*args):
    return subprocess.run([PORTICO, "ctl", *args], capture_output=True, text=True, timeout=30)


def test_status_prints_an_aligned_table(admin):
    r = ctl("--socket", admin.path, "status")
    assert r.returncode == 0, r.stderr
    assert admin.requests == [{"cmd": "status"}]
    lines = r.stdout.splitlines()
    assert len(lines) == 3
    head = lines[0]
    for col in ("NAMES", "NOT AFTER", "NEXT RENEWAL", "WHY", "STATE", "FAILURES", "LAST ERROR"):
        assert col in head
    # Every column starts where its heading does.
    for col, values in (("NOT AFTER", ("2026-12-30T10:00:00Z", "2026-12-01T00:00:00Z")),
                        ("WHY", ("1/3 of lifetime left", "backoff")),
                        ("FAILURES", ("0", "3"))):
        at = head.index(col)
        for line, value in zip(lines[1:], values):
            assert line[at:at + len(value)] == value, (col, line)
    assert lines[1].startswith("example.com,www.example.com ")
    assert lines[1].rstrip().endswith(" -")  # no last error
    # The CA's text cannot break the table or drive the terminal.
    assert lines[2].endswith("rateLimited: too many?new orders")


def test_show_as_text_and_json(admin):
    r = ctl("--socket", admin.path, "show", "shop.example.net")
    assert r.returncode == 0, r.stderr
    assert admin.requests[-1] == {"cmd": "show", "name": "shop.example.net"}
    out = r.stdout
    assert "names:         shop.example.net\n" in out
    assert "failures:      3\n" in out
    assert "profile:       shortlived\n" in out  # a member the client does not know
    assert "events:\n  2026-11-30T18:00:00Z  failed    rateLimited\n" in out
    r = ctl("--socket", admin.path, "show", "shop.example.net", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == JOB


def test_commands_send_their_requests(admin):
    r = ctl("--socket", admin.path, "retry", "--all")
    assert (r.returncode, r.stdout) == (0, "retry scheduled for every certificate\n")
    r = ctl("--socket", admin.path, "retry", "example.com")
    assert (r.returncode, r.stdout) == (0, "retry scheduled for example.com\n")
    r = ctl("--socket", admin.path, "renew", "example.com")
    assert (r.returncode, r.stdout) == (0, "renewal started for example.com\n")
    r = ctl("--socket", admin.path, "revoke", "example.com", "--reason", "keyCompromise")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("revoked the certificate for example.com (serial FA8E2C1B, reason "
                        "keyCompromise)\na replacement is ordered now; the revoked certificate is "
                        "served until it arrives (see `portico ctl show example.com`)\n")
    r = ctl("--socket", admin.path, "revoke", "example.com", "--wait", "5")
    assert r.returncode == 0, r.stderr
    assert admin.requests == [
        {"cmd": "retry", "all": True},
        {"cmd": "retry", "name": "example.com"},
        {"cmd": "renew", "name": "example.com"},
        {"cmd": "revoke", "name": "example.com", "reason": "keyCompromise"},
        {"cmd": "revoke", "name": "example.com", "wait": 5},
    ]


def test_revoke_still_in_progress_exits_3(admin):
    """portico's wait for the CA passed: the outcome is unknown, which a
    script tells from a refusal (1) by the exit status."""
    r = ctl("--socket", admin.path, "revoke", "shop.example.net")
    assert r.returncode == 3
    assert r.stderr == ("portico ctl: revoke shop.example.net: still in progress after 45 s; "
                        "see `portico ctl show shop.example.net`\n")
    assert r.stdout == ""


def test_wait_is_for_revoke_only(admin):
    for args in (["renew", "example.com", "--wait", "5"], ["revoke", "example.com", "--wait", "0"],
                 ["revoke", "example.com", "--wait", "x"], ["status", "--wait", "5"]):
        r = ctl("--socket", admin.path, *args)
        assert r.returncode == 2 and "usage:" in r.stderr, args
    assert admin.requests == []


def test_unknown_name_is_an_error(admin):
    for cmd in ("show", "retry", "renew", "revoke"):
        r = ctl("--socket", admin.path, cmd, "nope.example")
        assert r.returncode == 1
        assert r.stderr == "portico ctl: unknown name nope.example\n"
        assert r.stdout == ""


def test_not_running():
    r = ctl("status", "--socket", "/nonexistent")
    assert r.returncode != 0
    assert "portico is not running (no admin socket at /nonexistent)" in r.stderr


def test_stale_socket_means_not_running(sockdir):
    path = os.path.join(sockdir, "admin.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)  # bound, never listening: what a crash leaves behind
    s.close()
    r = ctl("--socket", path, "status")
    assert r.returncode == 1
    assert f"portico is not running (no admin socket at {path})" in r.stderr


def test_permission_denied(admin, sockdir):
    # A socket of mode 0600 refuses other users. As root (never refused by
    # file modes), run the client as nobody instead.
    os.chmod(sockdir, 0o755)
    os.chmod(admin.path, 0o600)
    cmd = [PORTICO, "ctl", "--socket", admin.path, "status"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv to become another user")
        cmd = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    else:
        os.chmod(admin.path, 0o000)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"permission denied on {admin.path}" in r.stderr


def test_socket_from_the_config_storage(sockdir, certs):
    """Without --socket, -c gives the default: admin-<first listen
    address>.sock in the config's runtime directory."""
    server = FakeAdmin(os.path.join(sockdir, "admin-127.0.0.1_8443.sock"))
    try:
        cfg = os.path.join(sockdir, "c.yaml")
        with open(cfg, "w") as f:
            f.write(f"""listen: {{https: "127.0.0.1:8443"}}
storage: {sockdir}
runtime_dir: {sockdir}
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8080"]
    tls: {{cert: {certs.a[0]}, key: {certs.a[1]}}}
""")
        r = ctl("-c", cfg, "status")
        assert r.returncode == 0, r.stderr
        assert server.requests == [{"cmd": "status"}]
    finally:
        server.close()


@pytest.mark.parametrize("args", [
    [], ["status", "extra"], ["retry"], ["retry", "a.example", "--all"], ["show"],
    ["renew", "a.example", "--reason", "keyCompromise"], ["frobnicate"], ["status", "--bogus"],
    ["-c", "x.yaml", "--socket", "/x", "status"],
])
def test_bad_usage_exits_2(args):
    r = ctl(*args)
    assert r.returncode == 2, args
    assert r.stderr.startswith("usage: portico ctl")
