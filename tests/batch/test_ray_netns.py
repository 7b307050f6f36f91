"""The loopback-only namespace the Ray tests run in (tests/testutils/ray_netns.py): no Ray needed."""
from __future__ import annotations

import time

import pytest

from testutils.ray_netns import netns_unavailable_reason, popen_python, run_python, run_python_beside

_REASON = netns_unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"no loopback-only namespace here: {_REASON}")

PROBE = """
import json, os, socket
s = socket.socket(); s.settimeout(2)
try:
    s.connect(("8.8.8.8", 53)); outside = "reached"
except OSError as e:
    outside = type(e).__name__
print(json.dumps({"ifaces": sorted(n for _, n in socket.if_nameindex()), "outside": outside,
                  "home": os.environ["HOME"], "ray_tmp": os.environ["RAY_TMPDIR"], "pid": os.getpid()}))
"""


def test_only_loopback_temp_home_and_nothing_outside_reachable():
    import json
    proc = run_python(["-c", PROBE], timeout=30)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["ifaces"] == ["lo"] and info["outside"] != "reached"
    assert info["home"].startswith("/tmp/rayt") and info["ray_tmp"].startswith("/tmp/rayt")
    assert len(info["ray_tmp"]) < 40   # Ray's socket paths under it must stay below 107 bytes
    assert info["pid"] < 10            # its own PID namespace: killing it kills everything it started


def test_a_client_reaches_a_server_inside_and_a_timeout_kills_the_lot():
    server = ["-m", "http.server", "8765", "--bind", "127.0.0.1"]
    with popen_python(server) as proc:
        client = "import time, urllib.request\nfor _ in range(100):\n    try:\n        print(urllib.request.urlopen('http://127.0.0.1:8765/').status); break\n    except OSError:\n        time.sleep(0.05)\n"
        got = run_python_beside(proc, ["-c", client], timeout=30)
        assert got.returncode == 0 and got.stdout.strip() == "200", got.stderr
    t0 = time.monotonic()
    slow = run_python(["-c", "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
                              "'import time; time.sleep(600)']); time.sleep(600)"], timeout=3)
    assert slow.returncode != 0 and "killed after 3 s" in slow.stderr and time.monotonic() - t0 < 20
