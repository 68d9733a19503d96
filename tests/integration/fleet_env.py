"""Several portico instances sharing one store (docs/fleet.md), for the
fleet tests and the fleet benchmark: a backend, a real Pebble 2.4 with
challtestsrv as its DNS, and portico instances on 127.0.0.2, .3 and .4 on the
same ports (Pebble's tlsPort and httpPort), each name pointed by
challtestsrv's /add-a at the instance that must answer the CA; and a real
redis-server on a free port for the Redis store."""
import json
import os
import re
import socket
import subprocess
import urllib.request

from harness import Backend, Portico, free_port, port_open, stop_process, wait_for
from pebble_env import Pebble

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]


def ports_free_on(hosts, *ports):
    for h in hosts:
        for p in ports:
            with socket.socket() as s:
                try:
                    s.bind((h, p))
                except OSError:
                    return False
    return True


class Fleet:
    """A backend, Pebble, and `n` portico instances (one on-demand "*" site)
    sharing `storage` (a directory by default)."""

    def __init__(self, tmp, n=3, challenges=("tls-alpn-01",), extra="", storage=None,
                 pebble_config=None, pebble_env=None):
        self.tmp = tmp
        for _ in range(20):
            self.https_port, self.http_port = free_port(), free_port()
            if ports_free_on(HOSTS[:n], self.https_port, self.http_port):
                break
        self.backend = Backend(tmp, "app")
        try:
            self.pebble = Pebble(tmp, self.https_port, self.http_port, config=pebble_config,
                                 env=pebble_env)
        except BaseException:
            self.backend.stop()
            raise
        self.root = os.path.join(tmp, "pebble-root.pem")
        with open(self.root, "w") as f:
            f.write(self.pebble.root_pem())
        self.storage = storage or os.path.join(tmp, "shared")
        self.extra = self.pebble.acme_yaml(challenges) + extra
        self.sites = [{"hosts": ["*"], "upstreams": [self.backend.address], "tls": "on_demand"}]
        self.instances = [None] * n
        for i in range(n):
            self.start(i)

    def start(self, i):
        d = os.path.join(self.tmp, f"portico{i}")
        os.makedirs(d, exist_ok=True)
        self.instances[i] = Portico(d, self.sites, extra=self.extra, ca=self.root,
                                    https_port=self.https_port, http_port=self.http_port,
                                    host=HOSTS[i], storage=self.storage)

    def point(self, name, i):
        """challtestsrv: `name` resolves to instance i (for Pebble's validation)."""
        body = json.dumps({"host": name, "addresses": [HOSTS[i]]}).encode()
        urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{self.pebble.dns_mgmt_port}/add-a", data=body),
            timeout=10).read()

    def get(self, i, name, timeout=90):
        r = self.instances[i].curl("/echo", "-w", "\n%{http_code}", name=name, check=False,
                                   timeout=timeout)
        return r.stdout.decode(errors="replace").endswith("\n200"), r.stderr.decode(errors="replace")

    def orders(self):
        return len(re.findall(r"Added order", self.pebble.log_text()))

    def accounts_created(self):
        return len(re.findall(r"POST /sign-me-up", self.pebble.log_text()))

    def logs(self):
        return "\n".join(f"--- instance {i}:\n{p.log_text()[-6000:]}"
                         for i, p in enumerate(self.instances) if p)

    def orderer(self, name):
        """The instances that placed an order for `name` (from their logs)."""
        return [i for i, p in enumerate(self.instances)
                if p and f"ordering a certificate for {name}\n" in p.log_text()]

    def stop(self):
        problems = []
        for p in self.instances:
            if p and p.proc.poll() is None:
                problems += p.finish()
        self.pebble.stop()
        self.backend.stop()
        return problems


class Redis:
    """A real redis-server on a free port, with nothing saved to disk."""

    def __init__(self, tmp):
        self.port = free_port()
        self.dir = os.path.join(tmp, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.proc = self.log = None
        self.start()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        """Starts (or starts again, on the same port) and waits for PONG."""
        self.log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir], stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.proc.poll() is not None or self.cli("PING") == b"PONG",
                 what="redis-server")
        assert self.proc.poll() is None

    def cli(self, *args):
        """redis-cli's raw answer to one command, without its last newline."""
        r = subprocess.run(["redis-cli", "-p", str(self.port), "--raw", *args],
                           capture_output=True)
        return r.stdout[:-1] if r.stdout.endswith(b"\n") else r.stdout

    def stop(self):
        stop_process(self.proc)
        self.log.close()
