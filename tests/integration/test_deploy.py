"""Deployment: sd_notify readiness (a real unix datagram socket standing in
for systemd's, which is what systemd itself reads), dropping root to
`user:`, and the example config shipped in dist/."""
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile

import pytest

import harness
from harness import Backend, Certs, Portico, port_open, site, wait_for

ROOT = os.path.abspath(os.path.join(harness.HERE, "..", ".."))


def notify_socket(tmp, abstract):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = f"@portico-test-{os.getpid()}-{os.path.basename(tmp)}"
        s.bind("\0" + name[1:])
    else:
        name = os.path.join(tmp, "notify.sock")
        s.bind(name)
    s.settimeout(30)
    return s, name


def read_state(sock):
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines() if "=" in line)


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_sd_notify_ready_after_listeners_then_stopping(tmp_path, certs, backend, monkeypatch, abstract):
    sock, name = notify_socket(str(tmp_path), abstract)
    monkeypatch.setenv("NOTIFY_SOCKET", name)
    p = Portico(str(tmp_path), [site(["a.test"], backend, certs.a)], ca=certs.ca, start=False)
    p.start()
    try:
        state = read_state(sock)
        assert state.get("READY") == "1", state
        assert state.get("MAINPID") == str(p.pid), state
        assert "serving 1 https and 1 http listeners" in state.get("STATUS", ""), state
        # READY=1 promises the listeners: a request succeeds at once.
        assert p.curl("/", name="a.test").returncode == 0
        # A reload (SIGHUP, ExecReload) says RELOADING=1 with the monotonic
        # time systemd asks for, then READY=1 again.
        p.proc.send_signal(signal.SIGHUP)
        state = read_state(sock)
        assert state.get("RELOADING") == "1" and int(state.get("MONOTONIC_USEC", "0")) > 0, state
        assert read_state(sock).get("READY") == "1"
        p.proc.send_signal(signal.SIGTERM)
        assert read_state(sock).get("STOPPING") == "1"
        assert p.proc.wait(30) == 0, p.log_text()
        assert p.sanitizer_reports() == []
    finally:
        p.kill()
        sock.close()


def test_sd_notify_unset_sends_nothing_and_runs(start_portico, certs, backend, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    p = start_portico([site(["a.test"], backend, certs.a)])
    assert p.curl("/", name="a.test").returncode == 0


def test_example_config_passes_check(tmp_path):
    path = os.path.join(ROOT, "dist", "portico.yaml.example")
    if os.geteuid() != 0:
        # --check makes sure storage can be created; /var/lib needs root,
        # so elsewhere the same file is checked with a storage of its own.
        with open(path) as f:
            text = f.read().replace("storage: /var/lib/portico", f"storage: {tmp_path}/storage")
        path = os.path.join(str(tmp_path), "portico.yaml")
        with open(path, "w") as f:
            f.write(text)
    r = subprocess.run([harness.PORTICO, "-c", path, "--check"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert b"configuration ok" in r.stdout


def test_unknown_user_is_a_config_error(tmp_path, certs, backend):
    p = Portico(str(tmp_path), [site(["a.test"], backend, certs.a)],
                extra="user: no-such-user-portico-test", start=False)
    r = subprocess.run([harness.PORTICO, "-c", p.config, "--check"], capture_output=True, timeout=30)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert f"{p.config}:" in err and 'user: no such user "no-such-user-portico-test"' in err, err


def free_low_port():
    """A free loopback port below 1024 (root only), for the capability check."""
    for port in range(1023, 600, -1):
        if port in harness._handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        harness._handed_out.add(port)
        return port
    pytest.skip("no free port below 1024")


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs the test to run as root")
def test_root_drops_to_user_before_serving(backend):
    """Started as root with `user: nobody`: every uid and gid is nobody's,
    only CAP_NET_BIND_SERVICE is left (a port below 1024 is bound by the
    workers after the switch), the runtime directory portico creates belongs
    to nobody, and the storage directory it creates too."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    # pytest's tmp_path is 0700 root: nobody could not reach anything in it.
    tmp = tempfile.mkdtemp(prefix="portico-drop-")
    try:
        os.chmod(tmp, 0o755)
        c = Certs(os.path.join(tmp, "certs"))
        cert, key = c.leaf("a.test", ["a.test"])
        for f in os.listdir(c.dir):
            os.chmod(os.path.join(c.dir, f), 0o644)  # a test key, readable by nobody
        runtime = os.path.join(tmp, "run")  # created by portico before the switch
        storage = os.path.join(tmp, "storage")
        access = os.path.join(tmp, "access.log")
        open(access, "w").close()
        os.chown(access, nobody.pw_uid, nobody.pw_gid)
        port = free_low_port()
        p = Portico(tmp, [site(["a.test"], backend, (cert, key)),
                          {"hosts": ["acme.test"], "upstreams": [backend.address], "tls": "acme"}],
                    ca=c.ca, https_port=port, start=False, storage=storage,
                    extra=f"user: nobody\nruntime_dir: {harness.yaml_quote(runtime)}\n"
                          f"acme: {{directory: \"https://127.0.0.1:9/dir\"}}")
        p.start()
        try:
            st = proc_status(p.pid)
            uid, gid = str(nobody.pw_uid), str(nobody.pw_gid)
            assert st["Uid"].split() == [uid] * 4, st["Uid"]
            assert st["Gid"].split() == [gid] * 4, st["Gid"]
            assert int(st["CapEff"], 16) == 1 << 10, st["CapEff"]  # CAP_NET_BIND_SERVICE
            assert int(st["CapPrm"], 16) == 1 << 10, st["CapPrm"]
            # Threads too: workers were started after the switch.
            for tid in os.listdir(f"/proc/{p.pid}/task"):
                with open(f"/proc/{p.pid}/task/{tid}/status") as f:
                    assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}" in f.read()
            assert p.curl("/", name="a.test").returncode == 0
            for d in (runtime, storage):
                s = os.stat(d)
                assert (s.st_uid, stat.S_IMODE(s.st_mode)) == (nobody.pw_uid, 0o700), d
            assert "running as user nobody" in p.log_text()
        finally:
            problems = p.finish()
        assert problems == [], problems  # a clean exit as nobody, no sanitizer report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() == 0, reason="checks the refusal of a non-root start")
def test_not_root_with_another_user_refuses(tmp_path, certs, backend):
    p = Portico(str(tmp_path), [site(["a.test"], backend, certs.a)], extra="user: root", start=False)
    r = subprocess.run([harness.PORTICO, "-c", p.config], capture_output=True, timeout=30)
    assert r.returncode == 1
    assert b"not root, and cannot become uid 0" in r.stderr


UNIT = os.path.join(ROOT, "dist", "portico.service")


def unit_settings():
    out = {}
    with open(UNIT) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def test_unit_matches_the_code():
    """The unit's directories are the code's defaults (storage
    /var/lib/portico, runtime_dir $RUNTIME_DIRECTORY), it waits for READY=1
    and reloads with SIGHUP."""
    u = unit_settings()
    assert u["Type"] == ["notify"]
    assert u["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert u["StateDirectory"] == ["portico"] and u["RuntimeDirectory"] == ["portico"]
    assert u["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    with open(os.path.join(ROOT, "dist", "portico.yaml.example")) as f:
        assert "\nstorage: /var/lib/portico\n" in f.read()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_hardening_scores_ok():
    """systemd-analyze rates exposure 0-10 (OK below about 4); 1.4 when this
    was written: fail above 2.0, so a weakened unit is noticed."""
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20", UNIT],
                       capture_output=True, timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, out[-3000:]
    assert "Overall exposure level for portico.service" in out and " OK " in out, out[-500:]


def test_cmake_install_into_destdir(tmp_path):
    """cmake --install puts the binary, the unit (its paths set to the prefix),
    the sysusers entry, the man page and the example config in GNU places."""
    build = os.path.dirname(os.path.abspath(harness.PORTICO))
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        pytest.skip("PORTICO_BIN is not in a CMake build directory")
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        prefix = next(line.split("=", 1)[1].strip() for line in f
                      if line.startswith("CMAKE_INSTALL_PREFIX:"))
    dest = str(tmp_path / "dest")
    r = subprocess.run(["cmake", "--install", build], env=dict(os.environ, DESTDIR=dest),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    root = dest + prefix
    etc = "/etc" if prefix == "/usr" else prefix + "/etc"
    binary = os.path.join(root, "bin", "portico")
    assert os.access(binary, os.X_OK)
    assert os.path.exists(os.path.join(root, "share", "man", "man8", "portico.8"))
    assert os.path.exists(os.path.join(root, "lib", "sysusers.d", "portico.conf"))
    with open(os.path.join(root, "lib", "systemd", "system", "portico.service")) as f:
        unit = f.read()
    assert f"ExecStart={prefix}/bin/portico -c {etc}/portico/portico.yaml\n" in unit, unit
    example = dest + etc + "/portico/portico.yaml.example"
    assert os.path.exists(example)
    r = subprocess.run([binary, "--version"], capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith(b"portico ")
    r = subprocess.run(["man", "-l", "-P", "cat", os.path.join(root, "share", "man", "man8", "portico.8")],
                       capture_output=True, timeout=30, env=dict(os.environ, MANWIDTH="80"))
    if r.returncode == 0:  # man-db may be absent; the page is then only installed
        assert b"QUICK START" in r.stdout and b"--from" in r.stdout
