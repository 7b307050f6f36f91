"""python -m hida_rt.batch --ray, end to end on a local Ray instance in a loopback-only namespace.

One scenario, two Ray starts (each costs ~10-20 s here): a real --ray run
with two actors is SIGKILLed (with every Ray process, by tearing down its
namespace) once some sketches exist; a second --ray run resumes. The result
must be exactly the full set, no temp left, every sketch equal to the
in-process run's within 1 grey level, and the bad file listed, not fatal.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
from testutils.ray_netns import netns_unavailable_reason, popen_python, run_python

pytest.importorskip("ray.data", reason="the ray extra is not installed (pip install 'ray[serve,data]==2.60.0')")
_REASON = netns_unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"Ray tests need a loopback-only namespace: {_REASON}")

RAY_ARGS = ["--ray", "--actors", "2", "--batch-size", "1"]
RUN_TIMEOUT_S = 150


def test_ray_run_killed_halfway_resumes_to_the_in_process_result(batch_data, clean_run, batch_tools, tmp_path):
    out = tmp_path / "sketches"
    with popen_python(["-m", "hida_rt.batch", *batch_data.argv(out, *RAY_ARGS, "-q")]) as proc:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and len(list(out.rglob("*_sketch.png"))) >= 2:
                break
            time.sleep(0.02)
        finished = proc.poll()
        proc.kill()   # the namespace's init dies, and with it the driver, Ray's GCS, raylet and both actors
        _, err = proc.communicate()
    assert finished is None, f"the Ray run ended (exit {finished}) before it could be killed: {err[-1500:]}"
    written = {p.relative_to(out).as_posix() for p in out.rglob("*_sketch.png")}
    assert 2 <= len(written) < len(batch_data.expected), f"killed after {len(written)} sketches: not halfway"

    rerun = run_python(["-m", "hida_rt.batch", *batch_data.argv(out, *RAY_ARGS, "--json", "-q")],
                       timeout=RUN_TIMEOUT_S)
    assert rerun.returncode == 1, rerun.stderr[-3000:]   # 1: broken.png fails again, the rest is done
    s = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert s["mode"].startswith("ray: 2 actor(s)") and s["backend"] == "eager"
    assert s["skipped"] == len(written) and s["sketched"] == len(batch_data.expected) - len(written)
    failed = {f["file"].rsplit("/", 1)[-1]: f["reason"] for f in s["failed"]}
    assert set(failed) == set(batch_tools.bad)
    assert all(reason in failed[name] for name, reason in batch_tools.bad.items())
    assert batch_tools.names(out) == batch_data.expected   # nothing doubled, no temp left behind
    for rel in batch_data.expected:
        diff = np.abs(batch_tools.grey(out / rel) - batch_tools.grey(clean_run.output / rel)).max()
        assert diff <= 1, f"{rel}: the Ray result differs from the in-process one by {diff} grey levels"
