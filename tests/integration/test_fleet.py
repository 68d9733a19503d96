"""Several portico instances sharing one store (docs/fleet.md), against a real
Pebble 2.4 with challtestsrv as its DNS: exactly one order per name whatever
the number of instances, the CA's validation answered by an instance other
than the one that ordered (challenge material in the store), takeover of a
lock whose holder was killed, one ACME account for the fleet, and the same
with Redis as the store (a real redis-server on a free port).

The instances listen on the same ports at 127.0.0.2, .3 and .4; Pebble's
tlsPort and httpPort are those ports, and challtestsrv's /add-a points each
name at the instance that must answer the CA."""
import concurrent.futures
import json
import os
import shutil
import re
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from fleet_env import HOSTS, Fleet, Redis
from harness import wait_for


@pytest.fixture
def fleet_factory(tmp_path):
    made = []

    def make(**kw):
        f = Fleet(str(tmp_path), **kw)
        made.append(f)
        return f
    yield make
    problems = []
    for f in made:
        problems += f.stop()
    assert not problems, problems


def lock_or_cert(storage, name):
    return (os.path.exists(os.path.join(storage, "locks", f"{name}.lock")) or
            os.path.exists(os.path.join(storage, "certs", name, "cert.pem")))


@pytest.mark.parametrize("challenge", ["tls-alpn-01", "http-01"])
def test_three_instances_one_order_per_name(fleet_factory, challenge):
    """60 handshakes for 20 new names over three instances sharing a
    directory: 20 orders, 60 successes, one account, and the CA's validation
    of each name reached an instance that did not order it."""
    f = fleet_factory(challenges=(challenge,))
    names = [f"n{k}.fleet.test" for k in range(20)]
    first = {name: k % 3 for k, name in enumerate(names)}
    for name in names:
        f.point(name, (first[name] + 1) % 3)  # the CA reaches another instance
    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        # Each name's first handshake goes to the instance meant to order it;
        # the two others join while its order runs.
        futs = [pool.submit(f.get, first[n], n) for n in names]
        wait_for(lambda: all(lock_or_cert(f.storage, n) for n in names), timeout=60,
                 what="every name's first instance to take its lock")
        futs += [pool.submit(f.get, (first[n] + d) % 3, n) for n in names for d in (1, 2)]
        results = [x.result() for x in futs]
    failed = [err for ok, err in results if not ok]
    assert not failed, (failed[:3], f.logs())
    assert f.orders() == 20, f.logs()
    assert f.accounts_created() == 1, f.logs()
    for name in names:
        assert f.orderer(name) == [first[name]], (name, f.logs())
    # The CA validated at the instance each name points at, never the orderer.
    for name in names:
        validator = f.instances[(first[name] + 1) % 3]
        if challenge == "tls-alpn-01":
            assert f"answered tls-alpn-01 for {name}" in validator.log_text(), (name, f.logs())
        else:
            pattern = (rf'host="{re.escape(name)}" method=GET '
                       r'path="/\.well-known/acme-challenge/[^"]+" status=200')
            assert re.search(pattern, validator.access_log_text()), \
                (name, validator.access_log_text()[-3000:])
    # Challenge material is removed from the store once the authorizations end.
    wait_for(lambda: not os.listdir(os.path.join(f.storage, "challenges")), timeout=10,
             what="challenges/ to be emptied")


class Gate:
    """Accepts TCP connections on HOST:PORT and holds them unanswered until
    opened, then relays them to another address. Pebble's validation of the
    first order waits at the gate, so that order (and its lock) is still in
    flight when its instance is killed."""

    def __init__(self, host, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.held, self.to, self.threads = [], None, []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.done.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(c)
            if self.to:
                self._relay_all()

    def open_to(self, host, port):
        self.to = (host, port)
        self._relay_all()

    def _relay_all(self):
        while self.held:
            c = self.held.pop()
            up = socket.create_connection(self.to, timeout=10)
            for a, b in ((c, up), (up, c)):
                t = threading.Thread(target=self._pipe, args=(a, b), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _pipe(a, b):
        a.settimeout(30)
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.done.set()
        self.thread.join()
        for c in self.held:
            c.close()
        self.sock.close()


def test_killed_lock_holder_is_taken_over(fleet_factory):
    """kill -9 of the instance that holds a name's lock mid-order: the other
    instance, whose handshake waits, takes the lock over once it is stale
    (acme.lock_stale_after: 5s), orders, and serves the one certificate."""
    f = fleet_factory(n=2, extra="  lock_stale_after: 5s\n")
    name = "takeover.fleet.test"
    gate = Gate("127.0.0.5", f.https_port)
    try:
        body = json.dumps({"host": name, "addresses": ["127.0.0.5"]}).encode()
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{f.pebble.dns_mgmt_port}/add-a", data=body), timeout=10).read()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            a = pool.submit(f.get, 0, name, 5)
            wait_for(lambda: gate.held, timeout=30, what="Pebble to validate instance 0's order")
            lock = os.path.join(f.storage, "locks", f"{name}.lock")
            assert json.load(open(lock))["pid"] == f.instances[0].pid
            b = pool.submit(f.get, 1, name, 90)
            wait_for(lambda: "another instance is obtaining" in f.instances[1].log_text(),
                     timeout=10, what="instance 1 to wait for the lock")
            killed_at = time.time()
            f.instances[0].kill()
            assert os.path.exists(lock) and not os.path.exists(
                os.path.join(f.storage, "certs", name, "cert.pem"))
            # The dead instance's validation now reaches instance 1, which
            # answers from the store; any new authorization validates there.
            f.point(name, 1)
            gate.open_to(HOSTS[1], f.https_port)
            ok, err = b.result()
            a.result()
        assert ok, (err, f.logs())
        assert time.time() - killed_at >= 4, "taken over before the lock was stale"
        assert f.orderer(name) == [0, 1], f.logs()
        cert = os.path.join(f.storage, "certs", name, "cert.pem")
        x = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", cert],
                           capture_output=True, text=True)
        assert name in x.stdout, x
        assert not os.path.exists(lock), "the lock was not released after the order"
        # One certificate: a fresh instance serves it from the cache, no new order.
        orders = f.orders()
        f.instances[0] = None
        f.start(0)
        assert f.get(0, name)[0]
        assert f.orders() == orders
    finally:
        gate.close()


def test_two_fresh_instances_one_account(fleet_factory):
    """Two instances start on an empty store and both need the account at
    once: one newAccount at the CA, both orders succeed."""
    f = fleet_factory(n=2)
    f.point("acct-a.fleet.test", 0)
    f.point("acct-b.fleet.test", 1)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda a: f.get(*a), [(0, "acct-a.fleet.test"),
                                                      (1, "acct-b.fleet.test")]))
    assert all(ok for ok, _ in results), (results, f.logs())
    assert f.accounts_created() == 1, f.logs()
    assert len(os.listdir(os.path.join(f.storage, "accounts"))) == 1


# ---- Redis -----------------------------------------------------------------------------------


@pytest.fixture
def redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    r = Redis(str(tmp_path))
    yield r
    r.stop()


def served_serial(f, i, name):
    r = subprocess.run(["openssl", "s_client", "-connect", f"{HOSTS[i]}:{f.https_port}",
                        "-servername", name], input=b"", capture_output=True, timeout=30)
    x = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=r.stdout, capture_output=True)
    return x.stdout.decode().strip()


REDIS_LIFETIME = 60  # s: renewed at about half, spread by renew_rate within the next minute


def test_redis_fleet(redis, fleet_factory):
    """Two instances on one Redis: 5 names asked of both at once give 5
    orders (the CA validates at the instance that did not order), and a
    renewal made by either instance is served by the other within 2 s."""
    f = fleet_factory(n=2, storage=redis.url,
                      pebble_config={"certificateValidityPeriod": REDIS_LIFETIME})
    names = [f"r{k}.fleet.test" for k in range(5)]
    for k, name in enumerate(names):
        f.point(name, (k + 1) % 2)
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        futs = [pool.submit(f.get, k % 2, n) for k, n in enumerate(names)]
        futs += [pool.submit(f.get, (k + 1) % 2, n) for k, n in enumerate(names)]
        results = [x.result() for x in futs]
    assert all(ok for ok, _ in results), ([e for ok, e in results if not ok][:3], f.logs())
    assert f.orders() == 5, f.logs()
    assert f.accounts_created() == 1, f.logs()
    # A renewal: whichever instance renews first, the other serves the new
    # certificate within 2 s.
    name = names[0]
    before = [served_serial(f, i, name) for i in (0, 1)]
    assert before[0] == before[1] and before[0], before
    changed = {}

    def one_changed():
        for i in (0, 1):
            s = served_serial(f, i, name)
            if s and s != before[0]:
                changed[i] = (s, time.time())
                return True
        return False
    wait_for(one_changed, timeout=REDIS_LIFETIME + 60, interval=0.2, what="a renewal")
    i, (serial, at) = next(iter(changed.items()))
    other = 1 - i
    wait_for(lambda: served_serial(f, other, name) == serial, timeout=5, interval=0.1,
             what="the other instance to serve the renewed certificate")
    assert time.time() - at <= 2.5, time.time() - at


REDIS_AWAY_S = 30


def test_redis_away_keeps_serving(redis, fleet_factory):
    """Redis stopped (SIGSTOP: it answers nothing) for 30 s under load: every
    request for a name the instances hold succeeds on both; a name neither
    holds is refused meanwhile; once Redis is back, it is issued."""
    import signal
    f = fleet_factory(n=2, storage=redis.url)
    names = [f"away{k}.fleet.test" for k in range(3)]
    for k, name in enumerate(names):
        f.point(name, k % 2)
        assert f.get(k % 2, name)[0], f.logs()
        assert f.get(1 - k % 2, name)[0], f.logs()  # in both instances' memory
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        deadline = time.time() + REDIS_AWAY_S

        def load(k):
            done, failed = 0, []
            while time.time() < deadline:
                ok, err = f.get(k % 2, names[k % 3], timeout=20)
                done += 1
                if not ok:
                    failed.append(err)
            return done, failed
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(load, range(4)))
        f.point("gone.fleet.test", 0)
        assert not f.get(1, "gone.fleet.test", timeout=20)[0]
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    assert sum(d for d, _ in results) > 40, results
    failed = [e for _, fl in results for e in fl]
    assert not failed, (failed[:3], f.logs())
    assert "store redis://" in f.instances[0].log_text() + f.instances[1].log_text()
    # Issuance resumes once Redis answers again.
    f.point("back.fleet.test", 1)
    assert f.orders() == 3
    wait_for(lambda: f.get(0, "back.fleet.test", timeout=30)[0], timeout=60, interval=1,
             what="a new name to be issued after Redis came back")


def test_abandoned_challenge_is_removed(fleet_factory):
    """A challenge item left in the shared directory by an instance that died
    mid-order is removed once it is an hour old; a fresh one is kept."""
    f = fleet_factory(n=1)
    chal = os.path.join(f.storage, "challenges")
    os.makedirs(chal, exist_ok=True)
    for token, age in (("old-token", 7200), ("new-token", 60)):
        path = os.path.join(chal, token)
        with open(path, "w") as fh:
            json.dump({"type": "http-01", "name": "gone.fleet.test", "token": token,
                       "key_authorization": token + ".x"}, fh)
        os.utime(path, (time.time() - age, time.time() - age))
    wait_for(lambda: not os.path.exists(os.path.join(chal, "old-token")), timeout=10,
             what="the abandoned challenge to be removed")
    assert os.path.exists(os.path.join(chal, "new-token"))
    assert "removed challenges/old-token" in f.instances[0].log_text()


def read_responses(sock, count):
    """Reads `count` HTTP/1.1 responses with Content-Length bodies from a
    connection that stays open: [(status, body)]."""
    buf, out = b"", []
    while len(out) < count:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))
            if len(buf) >= end + 4 + length:
                out.append((int(head.split()[1]), buf[end + 4:end + 4 + length]))
                buf = buf[end + 4 + length:]
                continue
        chunk = sock.recv(4096)
        assert chunk, (out, buf)
        buf += chunk
    return out


def test_http01_answer_read_from_store(redis, fleet_factory):
    """The CA may ask an instance for an http-01 answer before that instance
    has mirrored the challenge another instance saved (inotify or the Redis
    message is a moment behind). A token not in memory is read from the
    store while the request waits. Here the item is written to Redis with no
    announcement, so only that read can find it (the listing that would
    catch it runs every 10 s); a wrong Host and an unknown token get 404."""
    f = fleet_factory(n=1, storage=redis.url, challenges=("http-01",))
    p = f.instances[0]

    def ask(token, name="late.fleet.test"):
        r = p.curl(f"/.well-known/acme-challenge/{token}", "-w", "\n%{http_code}", name=name,
                   scheme="http", check=False, timeout=20)
        return r.stdout.decode(errors="replace")

    def save_unannounced(token, ka):
        item = json.dumps({"type": "http-01", "name": "late.fleet.test", "token": token,
                           "key_authorization": ka})
        assert redis.cli("SET", f"portico:challenges:{token}", item, "EX", "3600") == b"OK"

    for k in range(3):
        token = f"readThrough{k}_-tok"
        save_unannounced(token, token + ".thumbprint")
        assert ask(token) == token + ".thumbprint\n200", p.log_text()[-3000:]
    assert "http-01 for late.fleet.test answered from the store" in p.log_text()
    # Pipelined behind a request that waits: answered in order on the same
    # connection, which stays open.
    token = "pipelinedTok"
    save_unannounced(token, token + ".tp")
    with socket.create_connection((p.host, p.http_port), timeout=10) as s:
        s.sendall(b"".join(b"GET /.well-known/acme-challenge/%s HTTP/1.1\r\n"
                           b"Host: late.fleet.test\r\n\r\n" % t
                           for t in (token.encode(), b"unknownTok")))
        responses = read_responses(s, 2)
    assert responses[0][0] == 200 and responses[0][1] == token.encode() + b".tp", responses
    assert responses[1][0] == 404, responses
    assert ask("readThrough0_-tok", name="other.fleet.test").endswith("\n404")
    assert ask("neverSaved").endswith("\n404")
    assert ask("not.a.token").endswith("\n404")
