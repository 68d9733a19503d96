"""Shared fixtures: one CA and leaf set per session, a backend per test, and
a factory that starts portico with sites pointing at it."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    c = harness.Certs(str(tmp_path_factory.mktemp("certs")))
    c.a = c.leaf("a.test", ["a.test"])
    c.b = c.leaf("b.test", ["b.test"])
    c.wild = c.leaf("wild", ["*.w.test"])
    c.catchall = c.leaf("catchall", ["catchall.test"])
    return c


@pytest.fixture
def backend(tmp_path):
    b = harness.Backend(str(tmp_path), "one")
    yield b
    b.stop()


@pytest.fixture
def start_portico(tmp_path, certs):
    """start_portico(sites, **kw) -> harness.Portico; stopped at teardown."""
    started = []

    def start(sites, **kw):
        d = os.path.join(str(tmp_path), f"portico{len(started)}")
        os.makedirs(d)
        p = harness.Portico(d, sites, ca=certs.ca, **kw)
        started.append(p)
        return p
    yield start
    # SIGTERM, not SIGKILL: a test also fails when portico then exits
    # non-zero or a sanitizer reported anything (leaks show only at exit).
    problems = []
    for p in started:
        problems += [f"{p.tmp}: {m}" for m in p.finish()]
    if problems:
        pytest.fail("portico did not end cleanly:\n" + "\n".join(problems) + "\n" +
                    "\n".join(p.log_text()[-4000:] for p in started), pytrace=False)

