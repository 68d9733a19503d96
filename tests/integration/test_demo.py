"""./build.sh demo without a terminal: it says it needs one to keep running
and stops after its first request; with --keep it runs until SIGTERM."""
import os
import signal
import subprocess

import harness
from harness import wait_for

DEMO = os.path.join(harness.HERE, "..", "demo.py")


def test_demo_without_a_terminal_says_so_and_stops():
    r = subprocess.run([harness.PYTHON, DEMO, harness.PORTICO], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=120)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert out.startswith("The demo needs a terminal to keep running"), out
    assert "(first request took" in out
    assert "Try another made-up name yourself" not in out  # nothing would answer it
    assert "The demo stops now (no terminal" in out


def test_demo_keep_runs_until_sigterm(tmp_path):
    out_path = str(tmp_path / "demo.out")
    with open(out_path, "wb") as out:
        proc = subprocess.Popen([harness.PYTHON, DEMO, harness.PORTICO, "--keep"], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    read = lambda: open(out_path, errors="replace").read()
    try:
        wait_for(lambda: "stops the demo" in read() or proc.poll() is not None, timeout=120, what="the demo")
        assert proc.poll() is None, read()
        assert "Try another made-up name yourself, while the demo runs" in read()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, read()
        assert "portico exited with status 0" in read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
