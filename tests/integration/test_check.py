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
    # Plainly: what browsers will refuse, for how long, and that it sticks.
    assert ("sites[0].hsts: warning: for 5184000 seconds (60 days) after a browser sees this site, "
            "it will refuse to connect to a.test over plain HTTP, and its user can no longer click "
            "through a certificate error for them. This cannot be withdrawn") in r.stdout, r.stdout


def test_unreadable_file(tmp_path):
    r = subprocess.run([PORTICO, "-c", str(tmp_path / "missing.yaml"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "missing.yaml: cannot read" in r.stderr


def tls_site(cert, key):
    return f"""listen: {{https: "127.0.0.1:8443"}}
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8080"]
    tls: {{cert: {cert}, key: {key}}}
"""


def test_key_that_does_not_match_its_certificate(tmp_path, certs):
    r, path = check(tmp_path, tls_site(certs.a[0], certs.b[1]))
    assert r.returncode != 0
    assert f"{path}:5: sites[0].tls.key:" in r.stderr
    assert "does not match" in r.stderr


def test_cert_that_is_a_directory(tmp_path, certs):
    r, path = check(tmp_path, tls_site("/etc", certs.a[1]))
    assert r.returncode != 0
    assert f"{path}:5: sites[0].tls.cert: /etc: is not a regular file" in r.stderr


def test_chain_truncated_inside_a_certificate(tmp_path, certs):
    # The leaf is whole; the intermediate after it stops halfway. Start-up
    # must not serve the leaf alone, so --check must not accept it either.
    leaf = open(certs.a[0]).read()
    ca_lines = open(certs.ca).read().splitlines()
    chain = tmp_path / "chain.pem"
    chain.write_text(leaf + "\n".join(ca_lines[: len(ca_lines) // 2]) + "\n")
    r, path = check(tmp_path, tls_site(str(chain), certs.a[1]))
    assert r.returncode != 0
    assert f"{path}:5: sites[0].tls.cert:" in r.stderr
    assert "certificate 2 of the chain does not parse" in r.stderr


def test_whole_chain_passes(tmp_path, certs):
    chain = tmp_path / "chain.pem"
    chain.write_text(open(certs.a[0]).read() + open(certs.ca).read())
    r, _ = check(tmp_path, tls_site(str(chain), certs.a[1]))
    assert r.returncode == 0, r.stderr


def test_access_log_in_a_missing_directory(tmp_path, certs):
    r, path = check(tmp_path, f"""listen: {{http: "127.0.0.1:8080"}}
log:
  access: {tmp_path}/nonexistent/access.log
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8081"]
""")
    assert r.returncode != 0
    assert f"{path}:3: log.access:" in r.stderr and "does not exist" in r.stderr
    # And start-up agrees: it exits 1 (the same path cannot be opened).
    s = subprocess.run([PORTICO, "-c", path], capture_output=True, text=True, timeout=30)
    assert s.returncode == 1


def test_access_log_in_an_existing_directory_passes(tmp_path):
    r, _ = check(tmp_path, f"""listen: {{http: "127.0.0.1:8080"}}
log: {{access: {tmp_path}/access.log}}
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8081"]
""")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "access.log").exists()  # --check creates nothing


def test_duplicate_top_level_key_names_both_lines(tmp_path):
    r, path = check(tmp_path, """listen:
  http: "127.0.0.1:8080"
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8081"]
listen:
  http: "127.0.0.1:9090"
""")
    assert r.returncode != 0
    assert f"{path}:6: listen: duplicate key 'listen' (first at line 1)" in r.stderr


def test_duplicate_key_in_a_nested_mapping(tmp_path):
    r, path = check(tmp_path, """listen: {http: "127.0.0.1:8080"}
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8081"]
    redirect_http: false
    redirect_http: true
""")
    assert r.returncode != 0
    assert f"{path}:6: sites[0].redirect_http: duplicate key 'redirect_http' (first at line 5)" in r.stderr


def test_storage_that_cannot_be_created_for_acme_sites(tmp_path, certs):
    r, path = check(tmp_path, f"""listen: {{https: "127.0.0.1:8443"}}
storage: {tmp_path}/missing/cache
sites:
  - hosts: [a.test]
    upstreams: ["127.0.0.1:8080"]
    tls: on_demand
""")
    assert r.returncode != 0
    assert f"{path}:2: storage: cannot create {tmp_path}/missing/cache" in r.stderr
    assert not (tmp_path / "missing").exists()


def acme_site(hosts):
    return f"""listen: {{https: "127.0.0.1:8443"}}
acme: {{directory: "https://127.0.0.1:14000/dir", accept_terms: true}}
sites:
  - hosts: {hosts}
    upstreams: ["127.0.0.1:8080"]
    tls: acme
"""


def test_acme_site_with_101_names_is_refused(tmp_path):
    names = ", ".join(f"n{i}.test" for i in range(101))
    r, path = check(tmp_path, acme_site(f"[{names}]"))
    assert r.returncode != 0
    assert f"{path}:4: sites[0].hosts: 101 names, but one ACME order holds at most 100" in r.stderr


def test_acme_site_with_100_names_passes(tmp_path):
    names = ", ".join(f"n{i}.test" for i in range(100))
    r, _ = check(tmp_path, acme_site(f"[{names}]"))
    assert r.returncode == 0, r.stderr


def test_acme_site_with_a_wildcard_needs_dns01(tmp_path):
    r, path = check(tmp_path, acme_site('\n      - wild.test\n      - "*.wild.test"'))
    assert r.returncode != 0
    assert f'{path}:6: sites[0].hosts[1]: "*.wild.test" is a wildcard, which can only be validated ' \
           "by the dns-01 challenge: set up acme.dns" in r.stderr


def test_acme_site_with_an_ip_address_passes(tmp_path):
    # RFC 8738 certificates (test_ip_certs.py has the refusals on demand).
    r, _ = check(tmp_path, acme_site("[a.test, 192.0.2.7]"))
    assert r.returncode == 0, r.stderr


def test_acme_site_with_every_other_name_is_refused(tmp_path):
    r, path = check(tmp_path, acme_site('"*"'))
    assert r.returncode != 0
    assert f'{path}:4: sites[0].hosts: "*" is every other name' in r.stderr


def test_wildcard_and_ip_pass_for_on_demand_and_static_sites(tmp_path, certs):
    r, _ = check(tmp_path, f"""listen: {{https: "127.0.0.1:8443"}}
sites:
  - hosts: ["*.wild.test"]
    upstreams: ["127.0.0.1:8080"]
    tls: on_demand
  - hosts: ["192.0.2.7"]
    upstreams: ["127.0.0.1:8080"]
    tls: {{cert: {certs.a[0]}, key: {certs.a[1]}}}
""")
    assert r.returncode == 0, r.stderr


def test_start_up_refuses_what_check_refuses(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(acme_site('["*.wild.test"]'))
    r = subprocess.run([PORTICO, "-c", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f'{cfg}:4: sites[0].hosts[0]: "*.wild.test" is a wildcard' in r.stderr
