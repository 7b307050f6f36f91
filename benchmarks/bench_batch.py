"""Images/s of `python -m hida_rt.batch`: in-process vs --ray with 1 and 2 actors, in one run.

    python benchmarks/bench_batch.py [--photos 64] [--backend auto] [--batch-size 8]

Not a pytest-benchmark case (pytest collects no test here): each figure is
a whole command run end to end (Python and torch start-up, backend load,
Ray start, reads, sketching, writes) over a folder of photos, and the three
modes must run back to back on the same machine state; repeating each for
pytest-benchmark's rounds would take many minutes for no new information.

The folder: --photos aligned faces made from the two samples (crops and
mirror images, 256x256, with depth maps; tests/testutils/photo_set.py).
The checkpoint: random weights with the spread gain (the sketch's cost does
not depend on the weights' values). The ONNX export the onnxruntime backend
needs is made once before timing, so no mode pays it.

Each mode gets a fresh output folder; every run must sketch every photo,
and the Ray runs' sketches must equal the in-process ones within 1 grey
level. Ray runs go through tests/testutils/ray_netns.py (a loopback-only
network namespace) where it works, else plainly.

Figures per mode: wall seconds of the command, images/s end to end,
start-up (from the command's start until the first sketch file was
written: Python, backend load, Ray start), and the steady rate: images/s
over the second half of the sketches, from the files' modification times
(what a longer job approaches; not skewed by when Ray hands results to the
driver). The record goes to benchmarks/results/batch-<cpu>-<date>.json and
.md, with the load average before and after each run (the machine may be
shared; a high load makes every figure slower and noisier).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

MODES = [("in-process", []), ("ray, 1 actor", ["--ray", "--actors", "1"]), ("ray, 2 actors", ["--ray", "--actors", "2"])]
TIMEOUT_S = 900


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _run_mode(argv: list[str], ray: bool, use_netns: bool) -> tuple[int, str, str, float]:
    t0 = time.perf_counter()
    if ray and use_netns:
        from testutils.ray_netns import run_python
        proc = run_python(["-m", "hida_rt.batch", *argv], timeout=TIMEOUT_S)
    else:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run([sys.executable, "-m", "hida_rt.batch", *argv], capture_output=True, text=True,
                              timeout=TIMEOUT_S, cwd=REPO, env=env, check=False)
    return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0


def _write_times(out: Path) -> list[float]:
    return sorted(p.stat().st_mtime for p in out.rglob("*_sketch.png"))


def _max_grey_diff(a: Path, b: Path) -> int:
    import numpy as np
    from PIL import Image
    worst = 0
    for p in a.rglob("*_sketch.png"):
        x = np.asarray(Image.open(p), dtype=np.int16)
        y = np.asarray(Image.open(b / p.relative_to(a)), dtype=np.int16)
        worst = max(worst, int(np.abs(x - y).max()))
    return worst


def markdown(record: dict) -> str:
    env = record["environment"]
    lines = [f"# Batch sketching: in-process vs Ray Data ({env['device']})", "",
             f"date {env['date']}, commit {str(env.get('git_commit'))[:10]}, {record['photos']} photos "
             f"{record['size']}x{record['size']}, backend {record['backend']}, batch size {record['batch_size']}, "
             f"{os.cpu_count()} CPUs, ray {record.get('ray')}, "
             f"{'loopback-only namespace' if record['netns'] else 'no namespace'}", "",
             "Whole command runs, end to end. start-up = from the command's start to the first sketch file "
             "(Python, backend load, Ray start); steady = images/s over the second half of the sketches "
             "(from the files' modification times).", "",
             "| mode | wall s | images/s (end to end) | start-up s | steady images/s | CPUs per actor | "
             "load avg before/after | max grey diff vs in-process |",
             "|---|---:|---:|---:|---:|---|---|---:|"]
    for r in record["runs"]:
        lines.append(f"| {r['mode']} | {r['wall_s']:.1f} | {r['images_per_s_end_to_end']:.2f} | "
                     f"{r['startup_s']:.1f} | {r['steady_images_per_s']:.2f} | {r.get('pool', '')} | "
                     f"{r['load_before']} / {r['load_after']} | {r.get('max_grey_diff', '')} |")
    lines += ["", record["note"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/bench_batch.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=int, default=64, help="photos in the folder (default 64)")
    p.add_argument("--backend", default="auto", help="batch --backend (default auto: onnxruntime on a CPU)")
    p.add_argument("--batch-size", type=int, default=8, help="batch --batch-size (default 8)")
    p.add_argument("--results", default=None, help="record JSON (default benchmarks/results/batch-<cpu>-<date>.json)")
    args = p.parse_args(argv)

    import harness
    import torch
    from testutils.photo_set import make_photo_set
    from testutils.ray_netns import netns_unavailable_reason

    from hida_rt.random_weights import random_generator_state
    netns_reason = netns_unavailable_reason()
    if netns_reason:
        print(f"note: Ray runs without a loopback-only namespace ({netns_reason})", file=sys.stderr)
    record = {"environment": harness.environment(torch.device("cpu")), "photos": args.photos, "size": 256,
              "backend": args.backend, "batch_size": args.batch_size, "netns": netns_reason is None, "runs": []}
    try:
        import ray
        record["ray"] = ray.__version__
    except ImportError:
        record["ray"] = None
    with tempfile.TemporaryDirectory(prefix="bench_batch") as tmp:
        root = Path(tmp)
        photo_set = make_photo_set(root, args.photos)
        weights = root / "hida_spread.pth"
        torch.save(random_generator_state(seed=1, gain=1.0), weights)
        from hida_rt.backends import resolve
        if resolve(args.backend, weights=weights) == "onnxruntime":
            from hida_rt.export.onnx_cache import cached_onnx
            print("exporting the ONNX once (not timed)", file=sys.stderr, flush=True)
            cached_onnx(weights, 256, 256, progress=False)
        reference = None
        for mode, extra in MODES:
            if extra and record["ray"] is None:
                print(f"skip {mode}: Ray is not installed", file=sys.stderr)
                continue
            out = root / f"out_{len(record['runs'])}"
            cmd = [str(photo_set.photos), str(out), "--weights", str(weights), "--depth", str(photo_set.depth),
                   "--backend", args.backend, "--batch-size", str(args.batch_size), "--json", "-q", *extra]
            load_before = _load()
            started = time.time()
            code, stdout, stderr, wall = _run_mode(cmd, bool(extra), netns_reason is None)
            if code != 0:
                print(f"{mode}: exit {code}\n{stderr[-3000:]}", file=sys.stderr)
                return 1
            s = json.loads(stdout.strip().splitlines()[-1])
            if s["sketched"] != args.photos:
                print(f"{mode}: sketched {s['sketched']} of {args.photos}: {s['failed'][:3]}", file=sys.stderr)
                return 1
            times = _write_times(out)
            startup = times[0] - started
            half = len(times) // 2
            steady = (len(times) - half) / (times[-1] - times[half - 1]) if half and times[-1] > times[half - 1] \
                else 0.0
            run = {"mode": mode, "wall_s": round(wall, 2), "images_per_s_end_to_end": round(args.photos / wall, 3),
                   "startup_s": round(startup, 2), "steady_images_per_s": round(steady, 3),
                   "summary": s, "load_before": load_before, "load_after": _load()}
            if extra:
                run["pool"] = s["mode"].split(": ", 1)[-1]
            if reference is None:
                reference = out
            else:
                run["max_grey_diff"] = _max_grey_diff(out, reference)
                if run["max_grey_diff"] > 1:
                    print(f"{mode}: sketches differ from in-process by {run['max_grey_diff']} grey levels",
                          file=sys.stderr)
                    return 1
            record["runs"].append(run)
            print(f"{mode}: {wall:.1f} s, {args.photos / wall:.2f} images/s end to end, start-up {startup:.1f} s, "
                  f"steady {steady:.2f} images/s (load {load_before} -> {run['load_after']})", flush=True)
    record["note"] = ("One machine: the Ray actors share the cores the in-process run uses, so Ray can only "
                      "change how they are used (one backend with all threads, or one backend per actor with "
                      "fewer threads each) and adds its start-up (GCS, raylet, workers importing torch and "
                      "loading the model). On a cluster each actor brings its own cores or GPU: the steady rate "
                      "grows with the actors until the shared storage's reads or writes bound it, and the "
                      "start-up stays a fixed cost per run.")
    env = record["environment"]
    path = Path(args.results) if args.results else \
        harness.RESULTS_DIR / f"batch-cpu-{harness.slug(env['cpu'])[:40]}-{env['date'][:10]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    path.with_suffix(".md").write_text(markdown(record))
    print(f"record: {path} (+ {path.with_suffix('.md').name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
