"""portico --check: exit codes, every error with file:line:key, warnings."""
import subprocess

from harness import PORTICO


def check(tmp_path, text):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    r = subprocess.run([PORTICO, "-c", str(cfg), "--check"], capture_output=True, text=True, timeout=30)
    return r, str(cfg)


def test_good_config_passes(tmp_path, certs):
    r, _ = check(tmp_path, f"""listen: {{https: "127.0.0.1:8443"}}
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8080"]
    tls: {{cert: {certs.a[0]}, key: {certs.a[1]}}}
""")
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stdout


def test_every_error_is_reported_with_line_and_key(tmp_path, certs):
    r, path = check(tmp_path, f"""listen:
  https: "127.0.0.1:8443"
  bogus: 1
workers: 2
sites:
  - hosts: [a.test]
    tls: {{cert: {certs.a[0]}, key: {certs.a[1]}}}
    upstreams:
      - "127.0.0.1:99999"
timeouts: {{keepalive: 10 parsecs}}
""")
    assert r.returncode != 0
    err = r.stderr
    assert f"{path}:3: listen.bogus: unknown key 'bogus'" in err
    assert f"{path}:9: sites[0].upstreams[0]:" in err and "99999" in err
    assert f"{path}:10: timeouts.keepalive:" in err


def test_missing_key_file_is_named(tmp_path, certs):
    r, path = check(tmp_path, f"""listen: {{https: "127.0.0.1:8443"}}
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8080"]
    tls: {{cert: {certs.a[0]}, key: /nonexistent/a.key}}
""")
    assert r.returncode != 0
    assert "sites[0].tls.key" in r.stderr and "/nonexistent/a.key" in r.stderr


def test_hsts_prints_a_warning(tmp_path, certs):
    r, _ = check(tmp_path, f"""listen: {{https: "127.0.0.1:8443"}}
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8080"]
    tls: {{cert: {certs.a[0]}, key: {certs.a[1]}}}
    hsts: true
""")
    assert r.returncode == 0
    assert "warning" in r.stdout and "HSTS" in r.stdout and "cannot be withdrawn" in r.stdout


def test_unreadable_file(tmp_path):
    r = subprocess.run([PORTICO, "-c", str(tmp_path / "missing.yaml"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "missing.yaml: cannot read" in r.stderr
