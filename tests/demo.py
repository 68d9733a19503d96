#!/usr/bin/python3
"""./build.sh demo: portico on loopback in front of the sample backend.

Generates a test CA and a certificate for demo.test, starts
tests/integration/backend.py and portico on free ports, runs one curl through
it, prints the command to try yourself, and keeps running until Ctrl-C
(or exits at once with --once, or when stdin is not a terminal)."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration"))
import harness  # noqa: E402


def main():
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        harness.PORTICO = os.path.abspath(sys.argv[1])
    once = "--once" in sys.argv or not sys.stdin.isatty()
    tmp = tempfile.mkdtemp(prefix="portico-demo-")
    certs = harness.Certs(os.path.join(tmp, "certs"))
    cert = certs.leaf("demo.test", ["demo.test"])
    backend = harness.Backend(tmp, "demo-backend")
    p = harness.Portico(tmp, [harness.site(["demo.test"], backend, cert, hsts="true")],
                        ca=certs.ca, level="info")
    try:
        cmd = (f"curl --cacert {certs.ca} --resolve demo.test:{p.https_port}:127.0.0.1 "
               f"https://demo.test:{p.https_port}/echo")
        print(f"portico is listening: https on 127.0.0.1:{p.https_port}, http on 127.0.0.1:{p.http_port}")
        print(f"backend: {backend.address}; config: {p.config}; logs: {p.error_log}, {p.access_log}\n")
        print("$ " + cmd)
        r = subprocess.run(cmd.split() + ["-sS", "-i"], capture_output=True, text=True)
        print(r.stdout or r.stderr)
        print(f"$ curl -i --resolve demo.test:{p.http_port}:127.0.0.1 http://demo.test:{p.http_port}/")
        r = subprocess.run(["curl", "-sS", "-i", "--resolve", f"demo.test:{p.http_port}:127.0.0.1",
                            f"http://demo.test:{p.http_port}/"], capture_output=True, text=True)
        print(r.stdout or r.stderr)
        if not once:
            print("Try the commands above. Ctrl-C stops the demo.")
            try:
                p.proc.wait()
            except KeyboardInterrupt:
                pass
    finally:
        code = p.stop()
        backend.stop()
    print(f"portico exited with status {code}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
