"""The one benchmark harness: every backend and kernel benchmark times through `Harness.run`.

pytest-benchmark does the timing (its `pedantic` rounds, median); this adds
what a GPU figure needs and one results file per device and day:
- warm-up calls before timing (Triton compiles, cuDNN picks algorithms,
  CUDA graphs are captured there, never inside a timed round);
- optional CUDA-graph capture of the case (`graph=True`);
- on a GPU, each round runs the case k times and then synchronizes, with k
  chosen so a round lasts >= ROUND_MS: launch latency and the final sync
  stay a small part of each figure; the figure is median(round) / k;
- per-op figures: median and min ms, images/s, GB/s (given the bytes one op
  must move) and its fraction of the device copy bandwidth measured in the
  same session, TFLOP/s (given the flops);
- the session's environment (device, driver, versions, git commit) and all
  results go to benchmarks/results/<device>-<date>.json, and a markdown
  table beside it (benchmarks/report.py).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
# A GPU round lasts at least this long (k calls, then one synchronize).
ROUND_MS = 2.0
# Timed rounds: as many as fit the budget, within these bounds.
MIN_ROUNDS, MAX_ROUNDS = 3, 50
ROUND_BUDGET_S = {"cuda": 1.5, "cpu": 8.0}
WARMUP_CALLS = {"cuda": 3, "cpu": 1}


def _run(cmd: list[str]) -> str | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, cwd=REPO).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # not installed, or broken: the record says so
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return re.sub(r"\s+", " ", line.split(":", 1)[1]).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def environment(device: torch.device) -> dict:
    """Device, driver, library versions and git commit of this session."""
    env = dict(
        date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        device_type=device.type,
        cpu=_cpu_model(), cpu_threads=torch.get_num_threads(), python=platform.python_version(),
        torch=torch.__version__, triton=_version("triton"), onnxruntime=_version("onnxruntime"),
        # Where .git did not travel (a lent GPU machine), the session script passes the recorded commit.
        git_commit=_run(["git", "rev-parse", "HEAD"]) or os.environ.get("HIDA_RT_COMMIT"),
        git_dirty=bool(_run(["git", "status", "--porcelain", "--untracked-files=no"])),
    )
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device=props.name, sms=props.multi_processor_count,
                   memory_gib=round(props.total_memory / 2**30, 1),
                   compute_capability=f"{props.major}.{props.minor}",
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   driver=_run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]))
    else:
        env.update(device=f"CPU {env['cpu']}")
    if hasattr(os, "getloadavg"):
        # Other work on the machine shows here (a shared CPU makes its figures noisy).
        env["load_avg_1m_at_start"] = round(os.getloadavg()[0], 2)
    return env


def default_results_path(env: dict, directory: Path = RESULTS_DIR) -> Path:
    name = slug(env["device"])[:48] if env["device_type"] == "cuda" else "cpu-" + slug(env["cpu"])[:40]
    return directory / f"{name}-{env['date'][:10]}.json"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Result:
    group: str           # what is compared, e.g. "model 256x256 batch 8" or "ida up6 batch 1"
    peer: str            # who runs it, e.g. "eager fp32", "triton fp16"
    median_ms: float     # per op
    min_ms: float
    rounds: int
    calls_per_round: int
    items_per_s: float | None = None
    gbps: float | None = None
    frac_copy_bw: float | None = None
    tflops: float | None = None
    info: dict = field(default_factory=dict)


class Harness:
    """One per session: environment, copy bandwidth, results; `run` times one case."""

    def __init__(self, device: torch.device):
        self.device = device
        self.env = environment(device)
        self.results: list[Result] = []
        self.copy_gbps: float | None = None

    def run(self, benchmark, fn: Callable[[], object], *, group: str, peer: str, items: int = 1,
            calls: int = 1, bytes_moved: float | None = None, flops: float | None = None,
            graph: bool = False, **info) -> Result | None:
        """Time `fn` (which performs `calls` ops on `items` images each) with pytest-benchmark.

        graph=True captures `fn` into a CUDA graph after warm-up and times replays.
        Returns None when pytest-benchmark is disabled (fn then runs once).
        """
        dev = self.device.type
        for _ in range(WARMUP_CALLS[dev]):
            fn()
        sync(self.device)
        if graph and dev == "cuda":
            fn = _capture(fn, self.device)
        # Calibrate: k calls per round (GPU), and how many rounds fit the budget.
        t0 = time.perf_counter()
        fn()
        sync(self.device)
        once = max(time.perf_counter() - t0, 1e-6)
        k = max(1, int(ROUND_MS / 1e3 / once)) if dev == "cuda" else 1
        rounds = int(min(MAX_ROUNDS, max(MIN_ROUNDS, ROUND_BUDGET_S[dev] / (once * k))))

        def one_round():
            for _ in range(k):
                fn()
            sync(self.device)

        benchmark.group = group
        benchmark.extra_info.update(dict(group=group, peer=peer, calls_per_round=k * calls, **info))
        benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=1)
        stats = getattr(getattr(benchmark, "stats", None), "stats", None)
        if stats is None:  # --benchmark-disable
            return None
        per_round = list(stats.data)
        n_ops = k * calls
        med_ms = statistics.median(per_round) / n_ops * 1e3
        res = Result(group=group, peer=peer, median_ms=med_ms, min_ms=min(per_round) / n_ops * 1e3,
                     rounds=len(per_round), calls_per_round=n_ops, info=info)
        res.items_per_s = items / (med_ms / 1e3)
        if bytes_moved:
            res.gbps = bytes_moved / (med_ms / 1e3) / 1e9
            if self.copy_gbps:
                res.frac_copy_bw = res.gbps / self.copy_gbps
        if flops:
            res.tflops = flops / (med_ms / 1e3) / 1e12
        benchmark.extra_info.update({k: v for k, v in asdict(res).items() if k != "info"})
        self.results.append(res)
        return res

    def measure_copy_bandwidth(self, benchmark, nbytes: int = 1 << 30) -> Result | None:
        """Device-to-device copy of `nbytes`, counting bytes read plus written."""
        src = torch.randn(nbytes // 2, device=self.device, dtype=torch.float16)
        dst = torch.empty_like(src)
        res = self.run(benchmark, lambda: dst.copy_(src), group="memory", peer="device copy",
                       bytes_moved=2 * nbytes, nbytes=nbytes)
        if res is not None:
            self.copy_gbps = res.gbps
        return res

    def to_json(self) -> dict:
        return dict(environment=self.env, copy_gbps=self.copy_gbps, results=[asdict(r) for r in self.results])

    def write(self, path: Path | None = None) -> Path | None:
        """Write (or merge into, for the same device, day and commit) the results file."""
        if not self.results:
            return None
        path = Path(path) if path else default_results_path(self.env)
        data = self.to_json()
        if path.exists():
            old = json.loads(path.read_text())
            same = all(old.get("environment", {}).get(k) == self.env.get(k) for k in ("device", "git_commit"))
            if same:
                mine = {(r["group"], r["peer"]) for r in data["results"]}
                data["results"] = [r for r in old["results"] if (r["group"], r["peer"]) not in mine] + data["results"]
                data["copy_gbps"] = data["copy_gbps"] or old.get("copy_gbps")
            else:
                path = _free_name(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path


def _free_name(path: Path) -> Path:
    i = 2
    while path.with_name(f"{path.stem}-{i}{path.suffix}").exists():
        i += 1
    return path.with_name(f"{path.stem}-{i}{path.suffix}")


def _capture(fn: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """fn as a CUDA graph replay (fn already warmed up on this device)."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph.replay


def bench_env_flag(name: str, default: str) -> list[str]:
    """A comma-separated list from the environment (e.g. HIDA_BENCH_SIZES=1x256,8x256)."""
    return [s for s in os.environ.get(name, default).split(",") if s]
