"""Results JSON (benchmarks/harness.py) -> a short markdown table.

    python benchmarks/report.py benchmarks/results/<device>-<date>.json [-o OUT.md]

One row per (group, peer), groups in the order they first ran; "vs first" is
the group's first peer (the baseline, e.g. eager fp32) divided by this one.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return ""
    return f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"


def render(path: str | Path) -> str:
    data = json.loads(Path(path).read_text())
    env = data["environment"]
    lines = [f"# Benchmarks: {env['device']}", ""]
    facts = [f"date {env['date']}", f"commit {(env.get('git_commit') or '?')[:10]}{' (dirty)' if env.get('git_dirty') else ''}",
             f"torch {env['torch']}", f"triton {env.get('triton')}", f"onnxruntime {env.get('onnxruntime')}"]
    if env["device_type"] == "cuda":
        facts += [f"CUDA {env.get('cuda')}", f"driver {env.get('driver')}", f"{env.get('sms')} SMs"]
    else:
        facts += [f"{env.get('cpu_threads')} threads"]
    if env.get("load_avg_1m_at_start") is not None:
        facts.append(f"load average {env['load_avg_1m_at_start']} at start")
    if data.get("copy_gbps"):
        facts.append(f"device copy {data['copy_gbps']:.0f} GB/s")
    lines += [", ".join(facts), "", "Median per op; img/s = images per second; GB/s = the bytes the op must move "
              "(inputs read once, output written once) per second.", ""]
    lines += ["| group | peer | median ms | min ms | img/s | GB/s | % copy BW | TFLOP/s | vs first |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    groups: dict[str, list[dict]] = {}
    for r in data["results"]:
        groups.setdefault(r["group"], []).append(r)
    for r in (r for rows in groups.values() for r in rows):
        base = groups[r["group"]][0]["median_ms"]
        frac = f"{100 * r['frac_copy_bw']:.0f}%" if r.get("frac_copy_bw") else ""
        lines.append(f"| {r['group']} | {r['peer']} | {_fmt(r['median_ms'])} | {_fmt(r['min_ms'])} | "
                     f"{_fmt(r.get('items_per_s'))} | {_fmt(r.get('gbps'))} | {frac} | {_fmt(r.get('tflops'))} | "
                     f"{base / r['median_ms']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("-o", "--output", type=Path, help="markdown file (default: print)")
    args = ap.parse_args(argv)
    text = render(args.results)
    if args.output:
        args.output.write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
