"""Run Ray tests on this machine only: a loopback-only network namespace, a temporary HOME and Ray dir.

Ray learns its own address by probing a public one (8.8.8.8) and would bind
to whatever interface answers; in a namespace whose only interface is `lo`
it falls back to 127.0.0.1, so nothing a test starts is reachable from
outside, and nothing outside is reached. Ray also writes an auth token under
~/.ray and its session files under $RAY_TMPDIR: both go to temp folders.

    from testutils.ray_netns import netns_unavailable_reason, run_python

    reason = netns_unavailable_reason()          # None, or why (not root, no unshare): skip with it
    proc = run_python(["-m", "hida_rt.batch", "in/", "out/", "--weights", w, "--ray"], timeout=90)
    assert proc.returncode == 0, proc.stderr

The command runs as `unshare --net --pid --fork --kill-child --mount-proc`
then `ip link set lo up`: it gets its own PID namespace too, so when it ends,
is killed or times out, every process it started (Ray's GCS, raylet,
workers) dies with it and no Ray process outlives the test. `popen_python`
starts one without waiting (for kill-and-resume tests: SIGKILL the Popen).

A server started in the namespace listens on *its* 127.0.0.1, which the test
process cannot reach; run the client in the same namespace:

    with popen_python(["-m", "hida_rt.serve", ..., "--ray"]) as server:
        client = run_python_beside(server, ["client.py", "http://127.0.0.1:8000"], timeout=60)
"""
from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNSHARE = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
# Unix socket paths (Ray's plasma store and raylet sockets live under its temp dir) are limited to
# 107 bytes, and Ray's session folder names are long: keep the temp dir short, not under pytest's tmp_path.
SHORT_TMP = "/tmp"


@functools.lru_cache(maxsize=1)
def netns_unavailable_reason() -> str | None:
    """Why Ray tests cannot run in a loopback-only namespace here, or None if they can."""
    if not sys.platform.startswith("linux"):
        return f"Ray tests run in a Linux network namespace; this is {sys.platform}"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (util-linux / iproute2); Ray tests need a loopback-only namespace"
    try:
        probe = subprocess.run([*UNSHARE, "sh", "-c", "ip link set lo up && ip -o addr show lo"],
                               capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot create a network namespace ({e})"
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["unshare failed"])[-1]
        return f"cannot create a loopback-only network namespace (needs root or CAP_SYS_ADMIN): {why}"
    if "127.0.0.1" not in probe.stdout:
        return "the namespace's loopback interface has no 127.0.0.1"
    return None


def ray_env(home: Path, ray_tmp: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a Ray run: temp HOME and RAY_TMPDIR, no inherited cluster address, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), RAY_TMPDIR=str(ray_tmp), TMPDIR=str(ray_tmp), RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
               PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def netns_argv(argv: Sequence[str]) -> list[str]:
    """`argv` wrapped to run in a fresh loopback-only network (and PID) namespace."""
    return [*UNSHARE, "sh", "-c", f"ip link set lo up && {shlex.join(argv)}"]


@contextmanager
def ray_dirs() -> Iterator[tuple[Path, Path]]:
    """(HOME, RAY_TMPDIR) for one Ray run, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="rayt", dir=SHORT_TMP))
    try:
        (root / "home").mkdir()
        (root / "r").mkdir()
        yield root / "home", root / "r"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_python(args: Sequence[str], timeout: float = 120, env: Mapping[str, str] | None = None,
               cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run `python ARGS` (a script or `-m module ...`) in the namespace; returns the CompletedProcess
    (text stdout/stderr). On timeout the namespace and everything in it is killed, and the
    CompletedProcess has returncode -9 and what was printed until then."""
    with ray_dirs() as (home, ray_tmp):
        cmd = netns_argv([sys.executable, *args])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=ray_env(home, ray_tmp, env), cwd=cwd or REPO)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()   # unshare --kill-child: the namespace's init, and with it every process in it, dies
            out, err = proc.communicate()
            err += f"\n[ray_netns: killed after {timeout:.0f} s]"
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@contextmanager
def popen_python(args: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None,
                 **popen) -> Iterator[subprocess.Popen]:
    """Start `python ARGS` in the namespace without waiting; on exit it is killed (with all it started)
    if still running, and the temp dirs are removed."""
    with ray_dirs() as (home, ray_tmp):
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen(netns_argv([sys.executable, *args]), env=ray_env(home, ray_tmp, env),
                                cwd=cwd or REPO, text=True, **popen)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


def namespace_pid(proc: subprocess.Popen, timeout: float = 10) -> int:
    """The PID (in this namespace's numbering) of the first process inside `proc`'s namespaces."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        except OSError:
            children = []
        if children:
            return int(children[0])
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    raise RuntimeError(f"no process inside the namespace of PID {proc.pid} (exit {proc.poll()})")


def run_python_beside(proc: subprocess.Popen, args: Sequence[str], timeout: float = 60,
                      env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `python ARGS` in the network namespace of `proc` (one popen_python started), e.g. a client
    of a server running there; returns the CompletedProcess (text)."""
    cmd = ["nsenter", f"--net=/proc/{namespace_pid(proc)}/ns/net", sys.executable, *args]
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO,
                          check=False)
