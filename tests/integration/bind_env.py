"""A real BIND 9 (Debian's `named`) on a free loopback port, authoritative
for a few test zones that take TSIG-signed dynamic updates (RFC 2136), for
the dns-01 tests. Queried with Debian's `dig`; `nsupdate` is there for hook
scripts."""
import base64
import os
import shutil
import subprocess

from harness import free_port, stop_process, wait_for

KEY_NAME = "portico-key"
# Debian installs named in /usr/sbin, which a user's PATH may not hold.
NAMED = shutil.which("named") or "/usr/sbin/named"


class Bind:
    def __init__(self, tmp, zones):
        """`zones`: {"example.test": ["www A 127.0.0.1", ...]}: each zone gets
        an SOA and NS at ns.<first zone> plus the records given (relative
        names or absolute ones ending in a dot)."""
        self.dir = os.path.join(tmp, "bind")
        os.makedirs(self.dir, exist_ok=True)
        self.secret = base64.b64encode(os.urandom(32)).decode()
        self.key_file = os.path.join(self.dir, "portico.key")
        with open(self.key_file, "w") as f:
            f.write(f'key "{KEY_NAME}" {{\n\talgorithm hmac-sha256;\n\tsecret "{self.secret}";\n}};\n')
        os.chmod(self.key_file, 0o600)
        # The same secret alone, as acme.dns.tsig.secret_file also accepts.
        self.secret_file = os.path.join(self.dir, "secret.b64")
        with open(self.secret_file, "w") as f:
            f.write(self.secret + "\n")
        os.chmod(self.secret_file, 0o600)
        self.zones = zones
        self.ns_zone = next(iter(zones))
        self.port = None
        self.proc = None
        for attempt in range(3):
            try:
                self._start()
                break
            except PortTaken:
                self.stop()
                if attempt == 2:
                    raise
        self.address = f"127.0.0.1:{self.port}"

    def _write_zone(self, zone, records):
        path = os.path.join(self.dir, f"{zone}.zone")
        lines = [f"$ORIGIN {zone}.", "$TTL 60",
                 f"@ IN SOA ns.{self.ns_zone}. hostmaster.{self.ns_zone}. 1 3600 600 86400 60",
                 f"@ IN NS ns.{self.ns_zone}."]
        if zone == self.ns_zone:
            lines.append("ns IN A 127.0.0.1")
        lines += records
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _start(self):
        self.port = free_port()
        conf = os.path.join(self.dir, "named.conf")
        zone_stanzas = []
        for zone, records in self.zones.items():
            path = self._write_zone(zone, records)
            # A journal from an earlier attempt would be replayed.
            for ext in (".jnl",):
                if os.path.exists(path + ext):
                    os.unlink(path + ext)
            zone_stanzas.append(
                f'zone "{zone}" {{ type primary; file "{path}"; '
                f'allow-update {{ key "{KEY_NAME}"; }}; }};')
        with open(conf, "w") as f:
            # controls {}: no rndc channel on port 953, which parallel
            # instances would fight over.
            f.write(f'include "{self.key_file}";\n'
                    "controls { };\n"
                    "options {\n"
                    f'  directory "{self.dir}";\n'
                    f'  pid-file "{self.dir}/named.pid";\n'
                    f'  session-keyfile "{self.dir}/session.key";\n'
                    f'  managed-keys-directory "{self.dir}";\n'
                    f"  listen-on port {self.port} {{ 127.0.0.1; }};\n"
                    "  listen-on-v6 { none; };\n"
                    "  recursion no;\n"
                    "  dnssec-validation no;\n"
                    "  notify no;\n"
                    "};\n"
                    + "\n".join(zone_stanzas) + "\n")
        self.log_path = os.path.join(self.dir, "named.log")
        self.log = open(self.log_path, "ab")
        # -g: foreground, log to stderr; -n 1: one worker thread is plenty.
        self.proc = subprocess.Popen([NAMED, "-g", "-n", "1", "-c", conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.proc.poll() is not None or self._answers(), timeout=20, what="named")
        if self.proc.poll() is not None:
            text = self.log_text()
            if "address in use" in text or "address already in use" in text:
                raise PortTaken(text)
            raise AssertionError(text)

    def _answers(self):
        r = subprocess.run(["dig", "+short", "+time=1", "+tries=1", "-p", str(self.port), "@127.0.0.1",
                            self.ns_zone, "SOA"], capture_output=True, text=True)
        return r.returncode == 0 and "hostmaster" in r.stdout

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def txt(self, name):
        """The TXT values at `name`, as the primary answers now."""
        r = subprocess.run(["dig", "+short", "+time=2", "+tries=2", "-p", str(self.port), "@127.0.0.1",
                            name, "TXT"], capture_output=True, text=True, check=True)
        return sorted(v.strip().strip('"') for v in r.stdout.split("\n")
                      if v.strip() and not v.startswith(";"))

    def nsupdate_script(self, path):
        """A dns-01 hook (`SCRIPT present|cleanup NAME VALUE`) that writes
        through nsupdate with the TSIG key."""
        with open(path, "w") as f:
            f.write("#!/bin/sh\n"
                    "set -e\n"
                    'case "$1" in present) op=add; ttl=60;; cleanup) op=delete; ttl=;; '
                    '*) echo "unknown verb $1" >&2; exit 2;; esac\n'
                    f'printf "server 127.0.0.1 {self.port}\\nupdate %s %s %s TXT \\"%s\\"\\nsend\\n" '
                    '"$op" "$2" "$ttl" "$3" | '
                    f'nsupdate -k "{self.key_file}"\n')
        os.chmod(path, 0o755)
        return path

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.log.close()
            self.proc = None


class PortTaken(Exception):
    pass


class Resolver:
    """A second `named`, recursive, that forwards the test zones to a
    Bind: what a CA's validation server uses in real life. BIND 9.18 does
    not follow a CNAME from one of its zones into another when answering
    authoritatively; a resolver does, so CNAME delegation can be tested."""

    def __init__(self, tmp, bind):
        self.dir = os.path.join(tmp, "resolver")
        os.makedirs(self.dir, exist_ok=True)
        for attempt in range(3):
            self.port = free_port()
            conf = os.path.join(self.dir, "named.conf")
            fwd = "\n".join(f'zone "{z}" {{ type forward; forward only; '
                            f'forwarders {{ 127.0.0.1 port {bind.port}; }}; }};' for z in bind.zones)
            with open(conf, "w") as f:
                f.write("controls { };\noptions {\n"
                        f'  directory "{self.dir}";\n'
                        f'  pid-file "{self.dir}/named.pid";\n'
                        f'  session-keyfile "{self.dir}/session.key";\n'
                        f'  managed-keys-directory "{self.dir}";\n'
                        f"  listen-on port {self.port} {{ 127.0.0.1; }};\n"
                        "  listen-on-v6 { none; };\n"
                        "  recursion yes;\n  allow-recursion { 127.0.0.1; };\n"
                        "  dnssec-validation no;\n"
                        # No caching of answers that tests change.
                        "  max-cache-ttl 0;\n  max-ncache-ttl 0;\n"
                        "};\n" + fwd + "\n")
            self.log_path = os.path.join(self.dir, "named.log")
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([NAMED, "-g", "-n", "1", "-c", conf],
                                         stdout=self.log, stderr=subprocess.STDOUT)
            probe = ["dig", "+short", "+time=1", "+tries=1", "-p", str(self.port), "@127.0.0.1",
                     bind.ns_zone, "SOA"]
            wait_for(lambda: self.proc.poll() is not None or
                     "hostmaster" in subprocess.run(probe, capture_output=True, text=True).stdout,
                     timeout=20, what="the resolver")
            if self.proc.poll() is None:
                break
            self.log.close()
            if attempt == 2:
                raise AssertionError(open(self.log_path, errors="replace").read())
        self.address = f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.log.close()
            self.proc = None
