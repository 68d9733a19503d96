#!/usr/bin/python3
"""Benchmark scenario 9: first-handshake latency in a fleet, and the cost of
a cache miss, for the directory store and the Redis store (docs/fleet.md).

Four setups, each with its own Pebble 2.4 + pebble-challtestsrv, backend and
store (tests/integration/fleet_env.py, the fleet tests' own setup), all
started before anything is measured:

- "1 instance, directory": one portico on 127.0.0.2;
- "3 instances, directory": three porticos on 127.0.0.2, .3 and .4 sharing
  one storage directory;
- "3 instances, Redis": the same three on one redis-server (free port);
- "1 instance, Redis": one portico on a redis-server of its own, so the
  Redis store's own cost can be told apart from the fleet's.

Every portico is the same: two workers, one on-demand "*" site,
tls-alpn-01, on_demand.rate raised to 1000/min; every Pebble the same
(PEBBLE_VA_NOSLEEP=1 as in the tests, so its validation does not wait a
random 0-15 s).

Phase 1, new names. First one warm-up name per instance (untimed in the
statistics: it creates the fleet's ACME account and each instance's first
contact with the CA). Then N new names per setup, each requested once by a
TLS handshake: name k goes to instance k mod n, and challtestsrv points it
at instance (k+1) mod n, so in a fleet Pebble validates at an instance other
than the one that orders (which answers from the store). The time is from
the start of the TCP connect to the end of the handshake. The setups take
turns name by name, in an order that flips every name (ABCD DCBA ...), so a
slow stretch of this shared machine falls on all of them alike.

Phase 1b, one new name at every instance at once. For 15 more names per
setup, three handshakes released together (a barrier): one at each instance
of a fleet, or all three at the single instance. In a fleet one instance
orders and the others wait on its lock until the certificate is in the
store (the store watch tells them at once). Reported: median and p90 of all
handshakes and of the slowest of each three (every instance serving the
name), orders at Pebble (one per name expected), and for how many names an
instance logged that it waited on another's lock.

Phase 2, cache misses. Every instance is stopped (SIGTERM) and instance 0
started again: the store holds every certificate and the new process none.
After one untimed handshake for a warm-up name (the manager has started),
each of the N names gets two handshakes on it: the first reads the
certificate from the store (a cache miss: directory or Redis), the second
finds it in memory. The setups again take turns name by name.

A handshake counts only when the leaf lists the name and was issued by
Pebble (bench/ondemand.py's check). Reported: median and p90 per setup and
the ratio of each to "1 instance, directory"; orders at Pebble (one per
name expected) and, for the fleets, how many names were validated at an
instance other than the orderer (from that instance's log)."""
import argparse
import datetime
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import harness  # noqa: E402
from fleet_env import HOSTS, Fleet, Redis  # noqa: E402
from ondemand import handshake, new_names, p  # noqa: E402

SETUPS = [("1 instance, directory", 1, False), ("3 instances, directory", 3, False),
          ("3 instances, Redis", 3, True), ("1 instance, Redis", 1, True)]
BASELINE = SETUPS[0][0]
EXTRA = "on_demand:\n  rate: 1000/min\n"


class Setup:
    """One setup of the scenario: its store, Pebble and instances."""

    def __init__(self, tmp, label, n, redis):
        self.label, self.n = label, n
        os.makedirs(tmp)
        self.redis = Redis(tmp) if redis else None
        try:
            self.fleet = Fleet(tmp, n=n, extra=EXTRA, storage=self.redis.url if redis else None)
        except BaseException:
            if self.redis:
                self.redis.stop()
            raise
        # Lower case: challtestsrv matches names case-sensitively, and
        # Pebble asks for them in lower case.
        tag = "".join(w[0] for w in label.lower().replace(",", "").split())
        self.warmup = new_names(f"w{tag}", n)
        self.names = []
        self.out = {"store": "redis" if redis else "directory", "instances": n}
        self.errors = []

    def new_name(self, k, name):
        """The first handshake for `name`, at instance k mod n, validated by
        Pebble at instance (k+1) mod n."""
        i = k % self.n
        self.fleet.point(name, (i + 1) % self.n)
        return self.timed(i, name)

    def together(self, k, name):
        """Three handshakes for one new name, released at once: one at each
        instance of a fleet (k mod 3 first), or all three at the single
        instance; Pebble validates at instance (k+1) mod n. Their times in
        ms (None for a failure). In a fleet one instance orders and the
        others wait on its lock until the certificate is in the store."""
        at = [(k + j) % self.n for j in range(3)]
        self.fleet.point(name, (k + 1) % self.n)
        barrier, out = threading.Barrier(3), [None] * 3

        def one(j):
            barrier.wait()
            out[j] = self.timed(at[j], name)
        threads = [threading.Thread(target=one, args=(j,)) for j in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    def timed(self, i, name):
        ok, ms, err = handshake(self.fleet.https_port, name, host=HOSTS[i])
        if not ok:
            self.errors.append(f"{name} at instance {i}: {err}")
        return round(ms, 2) if ok else None

    def validated_elsewhere(self):
        """Names whose tls-alpn-01 validation an instance other than the
        orderer answered (both from the instances' logs)."""
        count = 0
        for name in self.names:
            orderer = self.fleet.orderer(name)
            answered = [i for i, x in enumerate(self.fleet.instances)
                        if f"answered tls-alpn-01 for {name}" in x.log_text()]
            count += bool(orderer and answered and orderer[0] not in answered)
        return count

    def steps(self):
        """Medians over the names of where an order's time goes, from the
        instances' logs (millisecond timestamps): ordering to the first
        tls-alpn-01 answer to Pebble (new order, authorization, challenge
        posted, Pebble connects), that answer to the authorization seen
        valid (portico polls it), to finalized (key, CSR, finalize), to the
        certificate downloaded (portico polls the order)."""
        text = "\n".join(x.log_text() for x in self.fleet.instances)
        marks = {"ordering": "acme: ordering a certificate for {n}\n",
                 "answered": "acme: answered tls-alpn-01 for {n}\n",
                 "valid": "acme: order for {n}: authorization for {n} valid\n",
                 "finalized": "acme: order for {n}: finalized\n",
                 "downloaded": "acme: order for {n}: certificate downloaded"}
        order = list(marks)
        gaps = {f"{a}_to_{b}_ms": [] for a, b in zip(order, order[1:])}
        for name in self.names:
            at = {}
            for key, mark in marks.items():
                m = re.search(r"^(\S+)Z \S+ " + re.escape(mark.format(n=name)), text, re.M)
                if m:
                    at[key] = datetime.datetime.fromisoformat(m.group(1)).timestamp() * 1000
            for a, b in zip(order, order[1:]):
                if a in at and b in at:
                    gaps[f"{a}_to_{b}_ms"].append(at[b] - at[a])
        return {k: p(v, 50) for k, v in gaps.items()}

    def restart_one(self):
        """Stops every instance and starts instance 0 again on the same store."""
        problems = []
        for x in self.fleet.instances:
            problems += x.finish()
        self.fleet.instances = [None] * self.n
        self.fleet.start(0)
        return problems

    def stop(self):
        problems = []
        try:
            problems = self.fleet.stop()
        finally:
            if self.redis:
                self.redis.stop()
        return problems


def stats(values):
    return {"median_ms": p(values, 50), "p90_ms": p(values, 90), "ok": len(values)}


def turns(setups, k):
    """The setups in the order of turn k: ABCD, DCBA, ABCD, ..."""
    return setups if k % 2 == 0 else list(reversed(setups))


def scenario9(portico_bin: str, names: int = 50, together: int = 15) -> dict:
    harness.PORTICO = os.path.abspath(portico_bin)
    tmp = tempfile.mkdtemp(prefix="portico-bench9-")
    setups, problems = [], []
    t0, load_before = time.monotonic(), os.getloadavg()
    try:
        for label, n, redis in SETUPS:
            setups.append(Setup(os.path.join(tmp, str(len(setups))), label, n, redis))
        # Phase 1: warm-up (one name per instance), then N new names.
        for s in setups:
            s.out["warmup_ms"] = [s.new_name(i, nm) for i, nm in enumerate(s.warmup)]
        first = {s.label: [] for s in setups}
        for k in range(names):
            for s in turns(setups, k):
                name = new_names(f"k{k}", 1)[0]
                s.names.append(name)
                ms = s.new_name(k, name)
                if ms is not None:
                    first[s.label].append(ms)
        for s in setups:
            s.out["new_name"] = stats(first[s.label])
            s.out["pebble_orders"] = s.fleet.orders() - len(s.warmup)
            s.out["order_steps_median"] = s.steps()
            if s.n > 1:
                s.out["validated_at_another_instance"] = s.validated_elsewhere()
        # Phase 1b: one new name asked of every instance at once.
        every, slowest = {s.label: [] for s in setups}, {s.label: [] for s in setups}
        joined = {s.label: [] for s in setups}
        for k in range(together):
            for s in turns(setups, k):
                name = new_names(f"t{k}", 1)[0]
                joined[s.label].append(name)
                times = s.together(k, name)
                every[s.label] += [t for t in times if t is not None]
                if None not in times:
                    slowest[s.label].append(max(times))
        for s in setups:
            text = "\n".join(x.log_text() for x in s.fleet.instances)
            s.out["together"] = {"all": stats(every[s.label]), "slowest_of_3": stats(slowest[s.label]),
                                 "pebble_orders": s.fleet.orders() - len(s.warmup) - s.out["pebble_orders"],
                                 # names an instance waited for on another's lock (from the logs)
                                 "waited_on_lock": sum(f"another instance is obtaining {nm};" in text
                                                       for nm in joined[s.label])}
        # Phase 2: a fresh instance on the filled store; miss, then hit.
        for s in setups:
            problems += s.restart_one()
            s.timed(0, s.warmup[0])  # untimed: the new process answers
        miss = {s.label: [] for s in setups}
        hit = {s.label: [] for s in setups}
        for k in range(names):
            for s in turns(setups, k):
                a = s.timed(0, s.names[k])
                b = s.timed(0, s.names[k])
                if a is not None and b is not None:
                    miss[s.label].append(a)
                    hit[s.label].append(b)
        orders_after = {}
        for s in setups:
            s.out["cache_miss"] = stats(miss[s.label])
            s.out["in_memory"] = stats(hit[s.label])
            # The same name's miss minus its hit, one handshake after the other.
            extra = [a - b for a, b in zip(miss[s.label], hit[s.label])]
            s.out["cache_miss"]["extra_ms_median"] = round(statistics.median(extra), 2) if extra else None
            # Phase 2 must order nothing: every name came from the store.
            orders_after[s.label] = (s.fleet.orders() - len(s.warmup) - s.out["pebble_orders"]
                                     - s.out["together"]["pebble_orders"])
            s.out["orders_in_phase_2"] = orders_after[s.label]
    finally:
        for s in setups:
            try:
                problems += s.stop()
            except Exception as e:  # noqa: BLE001 - stop the others too
                problems.append(f"{s.label}: {type(e).__name__}: {e}")
        shutil.rmtree(tmp, ignore_errors=True)
    result = {"names": names, "together": together, "setups": {s.label: s.out for s in setups}}
    base = result["setups"][BASELINE]
    for s in setups:
        o = s.out
        for phase in ("new_name", "cache_miss", ("together", "all"), ("together", "slowest_of_3")):
            mine, theirs = (o[phase[0]][phase[1]], base[phase[0]][phase[1]]) if isinstance(phase, tuple) \
                else (o[phase], base[phase])
            for q in ("median_ms", "p90_ms"):
                a, b = theirs[q], mine[q]
                mine[f"{q[:-3]}_vs_baseline"] = round(b / a, 2) if a and b else None
        a, b = o["in_memory"]["median_ms"], o["cache_miss"]["median_ms"]
        o["cache_miss"]["median_vs_in_memory"] = round(b / a, 2) if a and b else None
        if s.errors:
            o["errors"] = s.errors[:10]
    result["wall_s"] = round(time.monotonic() - t0, 1)
    # The machine is shared: what else ran is part of the figures.
    result["load_average_1_5_15"] = {"before": [round(x, 2) for x in load_before],
                                     "after": [round(x, 2) for x in os.getloadavg()]}
    result["problems"] = problems
    return result


def print_result(r):
    print(f"\n9 fleet: {r['names']} new names per setup, one handshake each; then a fresh instance "
          f"on the filled store ({r['wall_s']} s; load average {r['load_average_1_5_15']['before'][0]} "
          f"before, {r['load_average_1_5_15']['after'][0]} after, {os.cpu_count()} CPUs)")
    print(f"  {'setup':24} {'new name p50/p90 ms':>19} {'x 1 dir':>9} {'orders':>6}  "
          f"{'miss p50/p90 ms':>15} {'x 1 dir':>9} {'memory p50':>10} {'miss-memory':>11}")
    for label, o in r["setups"].items():
        nn, cm, im = o["new_name"], o["cache_miss"], o["in_memory"]
        print(f"  {label:24} {nn['median_ms']:>9}/{nn['p90_ms']:<9} "
              f"{nn['median_vs_baseline']}/{nn['p90_vs_baseline']:<4} {o['pebble_orders']:>6}  "
              f"{cm['median_ms']:>7}/{cm['p90_ms']:<7} {cm['median_vs_baseline']}/{cm['p90_vs_baseline']:<4} "
              f"{im['median_ms']:>10} {cm['extra_ms_median']:>11}")
        t = o["together"]
        print(f"  {'':24} one name at 3 instances at once (3 at the one instance): all p50/p90 "
              f"{t['all']['median_ms']}/{t['all']['p90_ms']} ms (x{t['all']['median_vs_baseline']}/"
              f"{t['all']['p90_vs_baseline']}), slowest of 3 p50/p90 {t['slowest_of_3']['median_ms']}/"
              f"{t['slowest_of_3']['p90_ms']} ms (x{t['slowest_of_3']['median_vs_baseline']}/"
              f"{t['slowest_of_3']['p90_vs_baseline']}), orders {t['pebble_orders']}/{r['together']}, "
              f"an instance waited on another's lock for {t['waited_on_lock']}")
        if "validated_at_another_instance" in o:
            print(f"  {'':24} validated at an instance other than the orderer: "
                  f"{o['validated_at_another_instance']}/{nn['ok']}")
        print(f"  {'':24} order steps (median ms): " +
              ", ".join(f"{k[:-3].replace('_', ' ')} {v}" for k, v in o["order_steps_median"].items()))
        if o.get("errors"):
            print(f"  {'':24} errors: {o['errors'][:3]}")
    if r["problems"]:
        print(f"  problems at stop: {r['problems']}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--portico", default=os.path.join(HERE, "..", "build", "portico"))
    ap.add_argument("--names", type=int, default=50)
    ap.add_argument("--together", type=int, default=15)
    args = ap.parse_args()
    res = scenario9(args.portico, args.names, args.together)
    print(json.dumps(res, indent=2))
    print_result(res)
