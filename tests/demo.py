#!/usr/bin/python3
"""./build.sh demo: the main job on loopback.

Starts Pebble (Let's Encrypt's test CA) with pebble-challtestsrv as its DNS,
the sample backend, and portico with one on-demand site for every name. Then
it connects with a made-up name: the handshake pauses while portico orders a
certificate from Pebble (tls-alpn-01), the request reaches the backend, and
the certificate Pebble issued is shown. In a terminal it keeps running until
Ctrl-C, so more names can be tried. Without one (stdin not a tty: CI, a
pipe) it says so and stops after the first request, unless --keep asks it to
run until SIGINT or SIGTERM; --once stops after the first request anyway."""
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration"))
import harness  # noqa: E402
from pebble_env import Pebble  # noqa: E402


def main():
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        harness.PORTICO = os.path.abspath(sys.argv[1])
    tty = sys.stdin.isatty()
    keep = "--keep" in sys.argv
    once = "--once" in sys.argv or not (tty or keep)
    if once and not tty and "--once" not in sys.argv:
        print("The demo needs a terminal to keep running (stdin is not one): it makes one request\n"
              "and stops. Run ./build.sh demo in a terminal to try names of your own, or\n"
              "./build.sh demo --keep to keep it running until SIGINT or SIGTERM.\n", flush=True)
    if keep:
        # SIGTERM ends it as Ctrl-C does: the finally below stops every process.
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    tmp = tempfile.mkdtemp(prefix="portico-demo-")
    https_port, http_port = harness.free_port(), harness.free_port()
    backend = harness.Backend(tmp, "demo-backend")
    pebble = Pebble(tmp, https_port, http_port)
    root = os.path.join(tmp, "pebble-root.pem")
    with open(root, "w") as f:
        f.write(pebble.root_pem())
    p = harness.Portico(tmp, [{"hosts": ["*"], "upstreams": [backend.address], "tls": "on_demand"}],
                        extra=pebble.acme_yaml(("tls-alpn-01", "http-01")), ca=root, level="info",
                        https_port=https_port, http_port=http_port)
    code = 1
    try:
        name = f"customer{random.randint(1000, 9999)}.demo.test"
        cmd = ["curl", "-sS", "--cacert", root, "--resolve", f"{name}:{https_port}:127.0.0.1",
               f"https://{name}:{https_port}/echo"]
        print(f"Pebble:  {pebble.directory}")
        print(f"backend: {backend.address}")
        print(f"portico: https on 127.0.0.1:{https_port}, http on 127.0.0.1:{http_port}")
        print(f"         config {p.config}, logs {p.error_log} and {p.access_log}\n")
        print("A first request for a name portico has never seen (the certificate is ordered now):")
        print("$ " + " ".join(cmd))
        t0 = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, text=True)
        print(r.stdout or r.stderr)
        print(f"(first request took {time.monotonic() - t0:.2f} s)\n")
        print("The certificate Pebble issued for it:")
        s = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{https_port}", "-servername", name],
                           input=b"", capture_output=True)
        x = subprocess.run(["openssl", "x509", "-noout", "-subject", "-issuer", "-serial", "-ext", "subjectAltName"],
                           input=s.stdout, capture_output=True)
        print((x.stdout or x.stderr).decode(errors="replace"))
        print("portico's log of it:")
        for line in p.log_text().splitlines():
            if name in line:
                print("  " + line)
        code = 0 if r.returncode == 0 else 1
        if once:
            print("\nThe demo stops now" + ("" if tty or "--once" in sys.argv else
                                           " (no terminal: ./build.sh demo --keep keeps it running)") + ".")
        else:
            other = f"another{random.randint(1000, 9999)}.demo.test"
            print("\nTry another made-up name yourself, while the demo runs:")
            print(f"$ curl --cacert {root} --resolve {other}:{https_port}:127.0.0.1 https://{other}:{https_port}/echo")
            print("\n" + ("Ctrl-C stops the demo." if tty else f"SIGINT or SIGTERM (kill {os.getpid()}) stops the demo."),
                  flush=True)
            try:
                p.proc.wait()
            except KeyboardInterrupt:
                pass
    finally:
        status = p.stop()
        pebble.stop()
        backend.stop()
    print(f"portico exited with status {status}")
    return code


if __name__ == "__main__":
    sys.exit(main())
