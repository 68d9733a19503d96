"""A real Pebble 2.4 (Debian's package) with pebble-challtestsrv as its DNS,
on free loopback ports, for ACME tests and the demo.

Pebble validates tls-alpn-01 at NAME:tlsPort and http-01 at NAME:httpPort;
challtestsrv answers every A query with 127.0.0.1, so both reach the portico
under test when tlsPort/httpPort are its HTTPS/HTTP ports."""
import json
import os
import re
import ssl
import subprocess
import urllib.request

from harness import free_port, port_open, run, stop_process, wait_for


class PortTaken(Exception):
    """Pebble or challtestsrv could not bind a port picked for it."""


class Pebble:
    def __init__(self, tmp, https_port, http_port, env=None, config=None, dns_server=None):
        # `config`: extra keys of Pebble's JSON config, such as
        # {"certificateValidityPeriod": 150} for short-lived certificates.
        # `dns_server`: "ip:port" of the DNS server Pebble's VA asks instead
        # of challtestsrv (a real BIND for the dns-01 tests).
        self.extra_config = dict(config or {})
        self.dns_server = dns_server
        self.dir = os.path.join(tmp, "pebble")
        os.makedirs(self.dir, exist_ok=True)
        self.ca, ca_key = os.path.join(self.dir, "ca.pem"), os.path.join(self.dir, "ca.key")
        cert, key = os.path.join(self.dir, "pebble.pem"), os.path.join(self.dir, "pebble.key")
        csr, ext = os.path.join(self.dir, "pebble.csr"), os.path.join(self.dir, "ext")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", ca_key, "-out", self.ca, "-subj", "/CN=pebble listener CA", "-days", "3650"])
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=localhost"])
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key,
             "-CAcreateserial", "-out", cert, "-days", "3650", "-extfile", ext])
        # free_port() only finds a port that was free a moment ago; a test
        # running alongside may take it before Pebble binds. Start again on
        # new ports when that happens (seen once in a parallel ASan run).
        for attempt in range(3):
            try:
                self._start(cert, key, https_port, http_port, env)
                break
            except PortTaken:
                self.stop()
                if attempt == 2:
                    raise
        self.directory = f"https://127.0.0.1:{self.port}/dir"

    def _start(self, cert, key, https_port, http_port, env):
        self.port, self.mgmt_port = free_port(), free_port()
        self.dns_port, self.dns_mgmt_port = free_port(), free_port()
        cfg = os.path.join(self.dir, "pebble.json")
        with open(cfg, "w") as f:
            json.dump({"pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
                "certificate": cert, "privateKey": key,
                "httpPort": http_port, "tlsPort": https_port,
                "ocspResponderURL": "", "externalAccountBindingRequired": False,
                **self.extra_config}}, f)
        self.log_path = os.path.join(self.dir, "pebble.log")
        self.dns_log = open(os.path.join(self.dir, "challtestsrv.log"), "wb")
        self.dns = subprocess.Popen(
            ["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
             "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-management", f"127.0.0.1:{self.dns_mgmt_port}"],
            stdout=self.dns_log, stderr=subprocess.STDOUT)
        penv = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
        penv.update(env or {})
        self.log = open(self.log_path, "wb")
        dns = self.dns_server or f"127.0.0.1:{self.dns_port}"
        self.proc = subprocess.Popen(["pebble", "-config", cfg, "-dnsserver", dns],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=penv)
        # Ready when its directory answers over TLS with our listener CA: a
        # port that merely accepts may belong to another test's process.
        wait_for(lambda: self.proc.poll() is not None or self.dns.poll() is not None or self._answers(),
                 what="pebble")
        if self.proc.poll() is not None or self.dns.poll() is not None:
            text = self.log_text() + open(os.path.join(self.dir, "challtestsrv.log"), errors="replace").read()
            if "address already in use" in text:
                raise PortTaken(text)
            raise AssertionError(text)

    def _answers(self):
        if not (port_open(self.port) and port_open(self.mgmt_port) and port_open(self.dns_port)):
            return False
        try:
            ctx = ssl.create_default_context(cafile=self.ca)
            with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/dir", context=ctx, timeout=2) as r:
                return r.status == 200
        except (OSError, ssl.SSLError):
            return False

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def new_orders(self):
        """How many newOrder requests Pebble served, from its own log."""
        return len(re.findall(r"POST /order-plz", self.log_text()))

    def root_pem(self):
        """Pebble's issuing root (it is generated at each start)."""
        ctx = ssl.create_default_context(cafile=self.ca)
        with urllib.request.urlopen(f"https://127.0.0.1:{self.mgmt_port}/roots/0", context=ctx) as r:
            return r.read().decode()

    def acme_yaml(self, challenges=("tls-alpn-01",)):
        return (f"acme:\n  directory: \"{self.directory}\"\n  ca_file: \"{self.ca}\"\n"
                f"  accept_terms: true\n  email: ops@example.com\n"
                f"  challenges: [{', '.join(challenges)}]\n")

    def stop(self):
        for p in (self.proc, self.dns):
            stop_process(p)
        self.log.close()
        self.dns_log.close()
